#!/bin/bash
# Boot script of the Valohai app instance ("roi"), after Valohai's installer (Module/EC2/config/user_data.sh):
# read every setting, write /etc/roi.config whole, start the services in the installer's order, create
# the first organization and the superuser's API token, register the worker environments, and tell
# CloudFormation (the instance's CreationPolicy) whether the app came up.
#
# The same file serves every installation: the instance learns its region, stack and prefix from the
# metadata service (its tags), and reads every value, the secrets included, with the instance role, so
# no secret is in the template or the user data. The template carries this file with the roi.config
# beside it in place of the @roi.config line, without comment lines, gzip-compressed (cloud-init
# decompresses it): CloudFormation's 51,200-byte template limit.
#
# The same script stays on the instance and runs every few minutes as `reconcile` (a systemd timer):
# when a stack update changed a value the app reads (the URL after adding a certificate, queue TLS,
# worker types), it rewrites the config, restarts the app and registers the environments again.
#
# Never `set -x`, never a value on stdout or stderr: cloud-init logs are readable by operators.
set -euo pipefail
umask 077

mode=boot
if [[ $# -gt 0 ]]; then
  mode=$1
fi
# Tests run the script against a temporary root; on the instance it is /.
root=$(printenv VALOHAI_CFN_ROOT || true)
# How long a read may take: a few minutes for what exists once the stack starts (a new role's
# permissions take a while to apply), much longer for what the database and the queue create.
few_minutes=300
until_the_database_is_up=2700
step="start"
stack=""
# What read_settings reads: SSM parameters and secrets of the same names, hyphens as underscores.
url="" environment_name="" bucket_name="" multipart_role_arn="" organization="" worker_subnet_ids=""
worker_instance_types="" worker_volume_size="" key="" repo="" jwt="" optimo="" app_token="" dbpassword=""
queue_url="" database_host="" worker_pool_role_arns="" pool="" nl=$'\n'

# imds PATH: a value from the instance metadata service (IMDSv2: a session token first).
imds() {
  local token
  token=$(curl -fsS -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
  curl -fsS -H "X-aws-ec2-metadata-token: ${token}" "http://169.254.169.254/latest/meta-data/$1"
}

# Retried as the reads are (a throttled SignalResource would roll back a healthy app, or leave CloudFormation
# waiting out the CreationPolicy); the query's literal gives retry the value it waits for.
signal() {
  retry 60 aws cloudformation signal-resource --stack-name "${stack}" --logical-resource-id RoiInstance \
    --unique-id "$2" --status "$1" --query "'1'" --output text >/dev/null
}

on_exit() {
  local status=$? reason
  if [[ ${status} -eq 0 ]]; then
    return
  fi
  echo "valohai-cfn: the boot stopped at: ${step}" >&2
  # The app is up when the SUCCESS signal fails: a FAILURE would roll back a healthy app.
  if [[ ${mode} == boot && -n ${stack} && ${step} != signal* ]]; then
    # SignalResource has no field for a reason; its unique id (64 characters at most) is shown in the
    # resource's status reason, so it names the step that failed.
    reason=$(printf '%s' "${step}" | cut -c1-64)
    echo "valohai-cfn: telling CloudFormation" >&2
    signal FAILURE "${reason}"
  fi
}
trap on_exit EXIT

# retry SECONDS COMMAND...: run COMMAND every 10 seconds until it prints a value (not empty), for at most
# SECONDS. The value goes to stdout; the last attempt's errors to stderr.
retry() {
  local attempts=$(($1 / 10)) value errors
  shift
  errors=$(mktemp)
  while true; do
    if value=$("$@" 2>"${errors}") && [[ -n ${value} ]]; then
      rm -f "${errors}"
      printf '%s' "${value}"
      return 0
    fi
    attempts=$((attempts - 1))
    if [[ ${attempts} -le 0 ]]; then
      cat "${errors}" >&2
      rm -f "${errors}"
      return 1
    fi
    sleep 10
  done
}

# awscli prints a missing (null) value as the text None; the queries make it empty instead, so that None is
# a value like any other (an organization may be named None).
ssm_parameter() {
  aws ssm get-parameter --name "/${prefix}/$1" --query "Parameter.Value||''" --output text
}

secret_value() {
  aws secretsmanager get-secret-value --secret-id "${prefix}-secret-$1" --query "SecretString||''" --output text
}

# setting NAME SECONDS ssm_parameter|secret_value: the variable NAME (hyphens as underscores) = its value,
# or the boot stops naming what it could not read.
setting() {
  local variable value
  variable=$(printf '%s' "$1" | tr - _)
  case "$3" in
    ssm_parameter) step="read /${prefix}/$1" ;;
    *) step="read secret ${prefix}-secret-$1" ;;
  esac
  value=$(retry "$2" "$3" "$1")
  printf -v "${variable}" '%s' "${value}"
}

# write_file PATH MODE < CONTENT: written whole, then renamed, so nothing ever reads half of it.
write_file() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"${tmp}"
  chmod "$2" "${tmp}"
  mv -f "${tmp}" "$1"
}

read_identity() {
  step="read the instance's identity and tags from the metadata service"
  instance=$(retry 60 imds instance-id)
  region=$(retry 60 imds placement/region)
  # At once: the FAILURE signal of a read that fails next needs the region too.
  export AWS_DEFAULT_REGION=${region}
  # CloudFormation tags the instance with its stack's name; the template tags it with its prefix.
  stack=$(retry 60 imds tags/instance/aws:cloudformation:stack-name)
  prefix=$(retry 60 imds tags/instance/valohai:installation)
  # The workers live in the app instance's VPC.
  mac=$(retry 60 imds mac)
  vpc_id=$(retry 60 imds "network/interfaces/macs/${mac}/vpc-id")
}

read_settings() {
  local name
  for name in url environment-name bucket-name multipart-role-arn organization worker-subnet-ids \
    worker-instance-types worker-volume-size worker-pool-role-arns; do
    setting "${name}" "${few_minutes}" ssm_parameter
  done
  for name in key repo jwt optimo app-token dbpassword; do
    setting "${name}" "${few_minutes}" secret_value
  done
  # Created in parallel with this instance: the boot waits for them instead of CloudFormation.
  for name in queue-url database-host; do
    setting "${name}" "${until_the_database_is_up}" ssm_parameter
  done
  step="read the database password from secret ${prefix}-secret-dbpassword"
  database_password=$(printf '%s' "${dbpassword}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])')
  [[ -n ${database_password} ]]
  domain=$(printf '%s' "${url}" | sed 's|^[a-z]*://||')
}

# Valohai's installer keeps the image's own optimo unit (it runs optimo on docker-network-vhnet, where the
# app reaches it as optimo.service) and writes only the password into it, in place of the empty value the
# image ships. The same here, from the generated secret, with bash alone: `sed -i` would carry the password
# in its arguments, which any process on the instance can read. The unit then holds it: mode 600. (The
# image's unit hands it to `docker run -e`, as in the installer: that is the image's choice, not ours.)
write_optimo_password() {
  local unit="${root}/etc/systemd/system/optimo.service" line text="" found=""
  step="write the optimo password into /etc/systemd/system/optimo.service"
  while IFS= read -r line || [[ -n ${line} ]]; do
    # Not in a comment: a line that only mentions the setting is not the setting.
    if [[ ${line} =~ ^([^#]*OPTIMO_BASIC_AUTH_PASSWORD=)[^[:space:]\"\']*(.*)$ ]]; then
      line="${BASH_REMATCH[1]}${optimo}${BASH_REMATCH[2]}"
      found=yes
    fi
    text+="${line}"$'\n'
  done <"${unit}"
  # An image whose unit has no password to fill in is not the image this boot knows.
  [[ -n ${found} ]]
  printf '%s' "${text}" | write_file "${unit}" 600
}

# Enabled, so that a reboot brings the app back.
start_service() {
  step="start $1"
  systemctl enable "$1"
  systemctl restart "$1"
}

render_roi_config() {
  cat <<ROI_CONFIG
@roi.config
ROI_CONFIG
}

# render_prep_config [SCALING_ROLE_ARN]: the installation's own environments, or with a worker pool's scaling
# role the pool's (read_pool): its names, queues and environments prefixed with the pool's name.
render_prep_config() {
  local subnets types role=""
  if [[ -n ${1:-} ]]; then
    role="${nl}  scaling-role-arn: '$1'"
  fi
  subnets=$(printf '%s' "${worker_subnet_ids}" | tr ',' '\n' | sed "s/^/    - '/; s/$/'/")
  types=$(printf '%s' "${worker_instance_types}" | tr ',' '\n' | sed 's/^/    - /')
  # Valohai's environment tool (prep) on the image; the keys are those of the installer's
  # prep_template.yaml. No key-pair-name: prep does not create launch templates (update-aws: false).
  cat <<PREP_CONFIG
prep:
  valohai-url: '${url}'
  valohai-token: '${app_token}'
  roi-env-mode: 'CREATE_OR_UPDATE'
  valohai-env-owner-id: '${organization_id}'
  valohai-env-name-prefix: '${pool:+${pool}-}'
  superuser: true
aws:
  aws-profile: 'default'
  update-aws: false${role}
  asg-name-prefix: '${pool:-${prefix}}-worker-'
  queue-name-prefix: '${pool:+${pool}-}'
  verify-redis: false
  installation-type: private-worker
  disk-size-gb: ${worker_volume_size}
  region: '${AWS_DEFAULT_REGION}'
  roi-redis-url: '${queue_url}'
  security-group-name: '${pool:-${prefix}}-sg-workers'
  vpc-id: '${vpc_id}'
  vpc-subnets:
${subnets}
  instance-types:
${types}
PREP_CONFIG
}

healthz() {
  curl -fsS -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/healthz
}

wait_until_healthy() {
  step="wait for the app to answer /healthz"
  retry 900 healthz >/dev/null
}

# The app's Django: values go in through the environment (docker exec -e NAME copies it), never argv.
organization_id() {
  VH_ORGANIZATION=${organization} docker exec -e VH_ORGANIZATION roi.service python manage.py shell -c \
    'import os; from roi.models import User; print(User.objects.filter(username=os.environ["VH_ORGANIZATION"], is_organization=True).values_list("id", flat=True).first() or "")'
}

create_organization() {
  step="create organization ${organization}"
  organization_id=$(organization_id)
  if [[ -z ${organization_id} ]]; then
    # --skip-checks as in Valohai's installer since its change #13: no Django system checks for this command.
    docker exec roi.service python manage.py roi_create_organization --name="${organization}" --for-superuser \
      --skip-checks >/dev/null
    organization_id=$(organization_id)
  fi
  [[ -n ${organization_id} ]]
  step="register the superuser's API token"
  VH_TOKEN=${app_token} docker exec -e VH_TOKEN roi.service python manage.py shell -c \
    'import os; from roi.models import User; User.objects.filter(is_superuser=True).first().tokens.get_or_create(key=os.environ["VH_TOKEN"])' >/dev/null
}

# register_environments CONFIG: prep with that config.
register_environments() {
  step="register the worker environments${pool:+ of pool ${pool}}"
  local file="${root}/home/ubuntu/valohai-prep.yaml"
  # The installer runs prep as ubuntu, whose AWS profile is the instance role; the file holds the token.
  write_file "${file}" 600 <"$1"
  chown ubuntu "${file}"
  # The file goes whether prep succeeds or not: it holds the token.
  runuser -u ubuntu -- python3 -m prep --config-yaml "${file}" aws >/dev/null || {
    rm -f "${file}"
    return 1
  }
  rm -f "${file}"
}

# register_changed CONFIG [SCALING_ROLE_ARN]: the environments registered again when their config changed.
register_changed() {
  local wanted current=""
  wanted=$(render_prep_config "${2:-}")
  if [[ -e $1 ]]; then
    current=$(cat "$1")
  fi
  if [[ ${wanted} != "${current}" ]]; then
    printf '%s\n' "${wanted}" | write_file "$1" 600
    register_environments "$1"
  fi
}

# read_pool SCALING_ROLE_ARN: a registered worker pool (SPEC "Worker pools"). The ARN names the pool and its
# region (role/<pool>-role-scaling-<region>); the rest is the pool stack's parameter /<pool>/registration
# (valohai_cfn/stack/config.py, add_pool_registration), read with the role's credentials, which prep also runs
# with, as Valohai's installer registers a worker account's environments.
read_pool() {
  local name=${1##*/} credentials registration
  pool=${name%-role-scaling-*}
  # In the installation's region: STS answers there whatever regions the installation's account has enabled.
  step="assume $1"
  credentials=$(retry "${few_minutes}" aws sts assume-role --role-arn "$1" --role-session-name valohai-cfn \
    --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
  read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN <<<"${credentials}"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_DEFAULT_REGION=${name##*-role-scaling-}
  step="read worker pool ${pool} in ${AWS_DEFAULT_REGION}"
  registration=$(retry "${few_minutes}" aws ssm get-parameter --name "/${pool}/registration" \
    --query "Parameter.Value||''" --output text)
  # Written in another account and copied into a config that holds the app's token: ids, names, numbers only.
  [[ ${registration} =~ ^[[:alnum:][:blank:].,-]+$ ]]
  read -r vpc_id worker_subnet_ids worker_volume_size worker_instance_types <<<"${registration}"
}

# register_pool SCALING_ROLE_ARN: with the pool's credentials and values as locals, gone when it returns.
register_pool() {
  local AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION} pool \
    vpc_id worker_subnet_ids worker_instance_types worker_volume_size
  read_pool "$1"
  register_changed "${root}/etc/valohai-cfn/pool-${1##*/}.yaml" "$1"
}

# Each registered pool; one no longer registered is not registered again: its config goes.
register_pools() {
  local arn file
  for file in "${root}"/etc/valohai-cfn/pool-*.yaml; do
    arn=$(basename "${file}" .yaml)
    [[ ${worker_pool_role_arns}, == *"/${arn#pool-},"* ]] || rm -f "${file}"
  done
  for arn in ${worker_pool_role_arns//,/ }; do
    register_pool "${arn}"
  done
}

install_reconcile_timer() {
  step="install the reconcile timer"
  install -m 700 "$0" "${root}/usr/local/sbin/valohai-cfn-roi"
  write_file "${root}/etc/systemd/system/valohai-cfn-reconcile.service" 644 <<'RECONCILE_SERVICE'
[Unit]
Description=Apply the CloudFormation stack's current settings to the Valohai app
After=roi.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/valohai-cfn-roi reconcile
RECONCILE_SERVICE
  write_file "${root}/etc/systemd/system/valohai-cfn-reconcile.timer" 644 <<'RECONCILE_TIMER'
[Unit]
Description=Apply the CloudFormation stack's current settings to the Valohai app, every few minutes

[Timer]
OnBootSec=5min
OnUnitActiveSec=5min

[Install]
WantedBy=timers.target
RECONCILE_TIMER
  systemctl daemon-reload
  systemctl enable --now valohai-cfn-reconcile.timer
}

boot() {
  read_settings
  # In Valohai's installer's order: the app stopped while its config is written, the image's docker network
  # before the containers on it (optimo and roi), then optimo, roi-setup (migrations) and roi. Every value is
  # read and checked first (above), so a failed read stops the boot before anything is changed.
  step="stop roi"
  systemctl stop roi
  start_service docker-network-vhnet
  step="write /etc/roi.config"
  render_roi_config | write_file "${root}/etc/roi.config" 600
  write_optimo_password
  # systemd reads a changed unit file only after a reload.
  step="reload systemd"
  systemctl daemon-reload
  start_service optimo
  start_service roi-setup
  start_service roi
  wait_until_healthy
  create_organization
  step="write the environments' registration"
  mkdir -p "${root}/etc/valohai-cfn"
  register_changed "${root}/etc/valohai-cfn/prep.yaml"
  register_pools
  install_reconcile_timer
  # Session Manager is how operators reach the instance (no SSH unless the SSH template opens port 22).
  step="start the SSM agent"
  snap start amazon-ssm-agent
  step="signal success to CloudFormation"
  signal SUCCESS "${instance}"
}

# A stack update changed what the app reads: apply it. A failed read leaves the running app alone.
reconcile() {
  local config="${root}/etc/roi.config" current wanted
  read_settings
  step="compare /etc/roi.config"
  current=$(cat "${config}")
  wanted=$(render_roi_config)
  if [[ ${wanted} != "${current}" ]]; then
    printf '%s\n' "${wanted}" | write_file "${config}" 600
    # A new optimo password goes to optimo's unit too (read by bash: no command line holds it).
    if [[ $(<"${root}/etc/systemd/system/optimo.service") != *"=${optimo}"* ]]; then
      write_optimo_password
      systemctl daemon-reload
      start_service optimo
    fi
    start_service roi
    wait_until_healthy
  fi
  step="find organization ${organization}"
  organization_id=$(organization_id)
  [[ -n ${organization_id} ]]
  register_changed "${root}/etc/valohai-cfn/prep.yaml"
  register_pools
}

case "${mode}" in
  boot | reconcile)
    read_identity
    "${mode}"
    ;;
  *)
    echo "usage: $0 [boot|reconcile]" >&2
    exit 2
    ;;
esac
