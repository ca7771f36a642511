#!/bin/bash
# Boot script of the Valohai app instance ("roi").
#
# CloudFormation renders this file with Fn::Sub: only ${ResourcePrefix}, ${AWS::Region} and
# ${QueueUrlScheme} are filled in at deploy time. Every other value, the secrets included, is read
# here at boot with the instance role, so no secret is ever part of the template or the user data.
# Shell variables are written without braces so that Fn::Sub leaves them alone.
set -euo pipefail

export AWS_DEFAULT_REGION="${AWS::Region}"
prefix="${ResourcePrefix}"
config=/etc/roi.config

param() {
  aws ssm get-parameter --name "/$prefix/$1" --query Parameter.Value --output text
}

secret() {
  aws secretsmanager get-secret-value --secret-id "$prefix-secret-$1" --query SecretString --output text
}

json_field() {
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# Replace KEY=... in the config, or add it: values are written verbatim, whatever characters they hold.
set_config() {
  local tmp
  tmp=$(mktemp)
  grep -v "^$1=" "$config" >"$tmp" || true
  printf '%s=%s\n' "$1" "$2" >>"$tmp"
  install -m 600 "$tmp" "$config"
  rm -f "$tmp"
}

umask 077
touch "$config"

database_password=$(secret dbpassword | json_field password)
queue_url="${QueueUrlScheme}://$(param queue-host):6379/0"
case "$queue_url" in
  rediss://*) queue_url="$queue_url?ssl_cert_reqs=required" ;;
esac

set_config URL_BASE "$(param url)"
set_config AWS_REGION "$AWS_DEFAULT_REGION"
set_config AWS_S3_BUCKET_NAME "$(param bucket-name)"
set_config AWS_S3_MULTIPART_UPLOAD_IAM_ROLE "$(param multipart-role-arn)"
set_config CELERY_BROKER "$queue_url"
set_config DATABASE_URL "psql://roi:$database_password@$(param database-host):5432/roidb"
set_config PLATFORM_LONG_NAME "$(param environment-name)"
set_config REPO_PRIVATE_KEY_SECRET "$(secret repo)"
set_config SECRET_KEY "$(secret key)"
set_config STATS_JWT_KEY "$(secret jwt)"

systemctl stop roi || true
docker run --rm --net=host --env-file="$config" valohai/roi:latest python manage.py migrate
systemctl start roi

# Session Manager is how operators reach the instance (no SSH unless SshIngressCidr is set).
snap start amazon-ssm-agent 2>/dev/null || systemctl start amazon-ssm-agent || true
