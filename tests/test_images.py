"""`latest` for RoiAmiId and WorkerAmiId: the newest image Valohai's account shares with the account, per region.

Valohai's images are made in the local AWS, in Valohai's own account (635691382966, reached through STS
AssumeRole, as moto gives another account), from an instance as Valohai builds them, and shared with the
customer's account by LaunchPermission; the local AWS lists them to the customer as EC2 does, and to no other
account (STRANGER, which Valohai shared nothing with).
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from valohai_cfn.cli import cli
from valohai_cfn.images import (
    IMAGE_NAMES,
    LATEST,
    VALOHAI_ACCOUNT,
    ImageNotShared,
    newest,
    resolve_images,
)
from valohai_cfn.params import check_parameters, dump_parameters, load_parameters
from valohai_cfn.preflight import Account, check_image, check_queue_engine
from valohai_cfn.template import build_template

REGION = "eu-west-1"
CUSTOMER = "123456789012"  # the local AWS's account for any other credentials
STRANGER = "210987654321"  # an account Valohai has shared no image with
WORKER_AMI = "ami-0fedcba9876543210"
SPECS = build_template().to_dict()["Parameters"]


def _client(service: str, endpoint_url: str, credentials: dict[str, str] | None = None, region: str = REGION):
    keys = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, **keys)


def _account_credentials(endpoint_url: str, account: str) -> dict[str, str]:
    """Credentials that act in `account` (STS AssumeRole of a role there, as the local AWS gives one)."""
    sts = _client("sts", endpoint_url)
    role = f"arn:aws:iam::{account}:role/valohai-image-builder"
    assumed = sts.assume_role(RoleArn=role, RoleSessionName="images")["Credentials"]
    return {
        "aws_access_key_id": assumed["AccessKeyId"],
        "aws_secret_access_key": assumed["SecretAccessKey"],
        "aws_session_token": assumed["SessionToken"],
    }


def _share_images(ec2: object, customer: str, names: tuple[str, ...]) -> dict[str, str]:
    """Images made by Valohai's account (`ec2` its client) from an instance, as Valohai builds them, each
    shared with `customer`; by name."""
    source = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "virtualization-type", "Values": ["hvm"]}])
    builder = ec2.run_instances(ImageId=source["Images"][0]["ImageId"], MinCount=1, MaxCount=1)["Instances"][0]

    def image(name: str) -> str:
        image_id = ec2.create_image(InstanceId=builder["InstanceId"], Name=name)["ImageId"]
        ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": customer}]})
        return image_id

    return {name: image(name) for name in names}


@pytest.fixture(scope="module")
def valohai(local_aws):
    """Valohai's account in the local AWS, its credentials, and the images it has made in REGION."""
    credentials = _account_credentials(local_aws.endpoint_url, VALOHAI_ACCOUNT)
    ec2 = _client("ec2", local_aws.endpoint_url, credentials)
    assert _client("sts", local_aws.endpoint_url, credentials).get_caller_identity()["Account"] == VALOHAI_ACCOUNT
    names = ("valohai-roi-20260101", "valohai-roi-20260301", "valohai-peon-20260301", "valohai-roi-20260401")
    images = _share_images(ec2, CUSTOMER, names)
    # Withdrawn: not available any more, though the newest by name and date.
    ec2.disable_image(ImageId=images["valohai-roi-20260401"])
    # Registered without a virtualization type, which EC2 makes paravirtual: the installer's filter keeps hvm only.
    ec2.register_image(Name="valohai-roi-20260501", RootDeviceName="/dev/sda1")
    stranger = _account_credentials(local_aws.endpoint_url, STRANGER)
    return {"credentials": credentials, "images": images, "endpoint_url": local_aws.endpoint_url, "stranger": stranger}


def test_newest_is_by_creation_date_then_name():
    images = [
        {"ImageId": "ami-1", "Name": "valohai-roi-9", "CreationDate": "2026-03-01T10:00:00.000Z"},
        {"ImageId": "ami-2", "Name": "valohai-roi-10", "CreationDate": "2026-04-01T10:00:00.000Z"},
        {"ImageId": "ami-3", "Name": "valohai-roi-11", "CreationDate": "2026-02-01T10:00:00.000Z"},
    ]
    assert newest(images)["ImageId"] == "ami-2", "by date, though its name sorts first"
    same_second = [
        {"ImageId": "ami-4", "Name": "valohai-roi-20260302", "CreationDate": "2026-03-02T10:00:00.000Z"},
        {"ImageId": "ami-5", "Name": "valohai-roi-20260301", "CreationDate": "2026-03-02T10:00:00.000Z"},
    ]
    assert newest(same_second)["ImageId"] == "ami-4"
    assert newest(list(reversed(same_second)))["ImageId"] == "ami-4"
    assert newest([]) is None


def test_latest_is_the_newest_available_hvm_image_of_valohais_account(valohai):
    """DescribeImages for real, as Valohai's account sees its own images: name, owner, state and hvm filters."""
    ec2 = _client("ec2", valohai["endpoint_url"], valohai["credentials"])
    sts = _client("sts", valohai["endpoint_url"], valohai["credentials"])
    given = {"RoiAmiId": LATEST, "WorkerAmiId": LATEST, "Domain": "valohai.example.com"}
    parameters, resolved = resolve_images(ec2, sts, given)
    images = valohai["images"]
    assert parameters == {
        "RoiAmiId": images["valohai-roi-20260301"],
        "WorkerAmiId": images["valohai-peon-20260301"],
        "Domain": "valohai.example.com",
    }
    assert [(r.parameter, r.image_id, r.name) for r in resolved] == [
        ("RoiAmiId", images["valohai-roi-20260301"], "valohai-roi-20260301"),
        ("WorkerAmiId", images["valohai-peon-20260301"], "valohai-peon-20260301"),
    ]
    assert given["RoiAmiId"] == LATEST, "the caller's parameters are not changed"


def test_an_image_id_is_kept_and_nothing_is_asked():
    """No AWS call at all when nothing is `latest`: a Stubber with no responses fails on any call."""
    ec2, sts = boto3.client("ec2", region_name=REGION), boto3.client("sts", region_name=REGION)
    with Stubber(ec2), Stubber(sts):
        given = {"RoiAmiId": "ami-0123456789abcdef0", "WorkerAmiId": WORKER_AMI}
        assert resolve_images(ec2, sts, given) == (given, [])


def test_in_the_customers_account_the_newest_shared_image_is_chosen(valohai):
    """The customer's own DescribeImages, as EC2 lists the images another account shares with it: the newest
    available hvm one of each name (the withdrawn and the paravirtual ones are not chosen)."""
    ec2, sts = _client("ec2", valohai["endpoint_url"]), _client("sts", valohai["endpoint_url"])
    assert sts.get_caller_identity()["Account"] == CUSTOMER
    parameters, resolved = resolve_images(ec2, sts, {"RoiAmiId": LATEST, "WorkerAmiId": WORKER_AMI})
    roi = valohai["images"]["valohai-roi-20260301"]
    assert parameters == {"RoiAmiId": roi, "WorkerAmiId": WORKER_AMI}
    assert [(r.parameter, r.image_id, r.name) for r in resolved] == [("RoiAmiId", roi, "valohai-roi-20260301")]


def test_none_shared_names_the_account_and_region_to_ask_valohai_for(valohai):
    """An account Valohai shared nothing with sees none of its images (as EC2 shows it)."""
    ec2 = _client("ec2", valohai["endpoint_url"], valohai["stranger"])
    sts = _client("sts", valohai["endpoint_url"], valohai["stranger"])
    with pytest.raises(ImageNotShared) as raised:
        resolve_images(ec2, sts, {"RoiAmiId": "ami-0123456789abcdef0", "WorkerAmiId": LATEST})
    assert str(raised.value) == (
        f"WorkerAmiId=latest: no valohai-peon-* image of Valohai's account {VALOHAI_ACCOUNT} is shared with this "
        f"account; ask Valohai to share the images with account {STRANGER} in region {REGION}"
    )


def _account(endpoint_url: str, credentials: dict[str, str] | None = None) -> Account:
    def client(service: str):
        return _client(service, endpoint_url, credentials)

    return Account(ec2=client("ec2"), acm=None, s3=None, sts=client("sts"), cfn=None, region=REGION, elasticache=None)


def test_preflight_fails_naming_the_account_and_region_when_none_is_shared(valohai):
    account = _account(valohai["endpoint_url"], valohai["stranger"])
    rows = check_image(account, {"RoiAmiId": LATEST, "WorkerAmiId": LATEST})
    assert [(row.name, row.ok) for row in rows] == [
        ("App image is available", False),
        ("Worker image is available", False),
    ]
    for row, pattern in zip(rows, IMAGE_NAMES.values(), strict=True):
        assert f"no {pattern} image" in row.detail
        assert row.detail.endswith(f"ask Valohai to share the images with account {STRANGER} in region {REGION}")


def test_preflight_shows_the_image_latest_stands_for(valohai):
    rows = check_image(
        _account(valohai["endpoint_url"], valohai["credentials"]), {"RoiAmiId": LATEST, "WorkerAmiId": LATEST}
    )
    images = valohai["images"]
    assert [(row.ok, row.detail) for row in rows] == [
        (True, f"latest = {images['valohai-roi-20260301']} (valohai-roi-20260301)"),
        (True, f"latest = {images['valohai-peon-20260301']} (valohai-peon-20260301)"),
    ]


# -- the queue's engine, against the local AWS's DescribeCacheEngineVersions (ElastiCache's Redis versions) -----


@pytest.mark.parametrize(
    ("version", "ok", "detail"),
    [
        ("7.1", True, f"redis 7.1 in {REGION}"),
        ("7.2", False, f"redis 7.2 is not offered in {REGION}; offered: 4.0.10, 5.0.6, 6.0, 6.2, 7.0, 7.1"),
    ],
)
def test_preflight_checks_the_queues_engine_version_is_offered(local_aws, version, ok, detail):
    elasticache = _client("elasticache", local_aws.endpoint_url)
    account = Account(ec2=None, acm=None, s3=None, sts=None, cfn=None, region=REGION, elasticache=elasticache)
    (row,) = check_queue_engine(account, {"QueueEngineVersion": version})
    assert (row.name, row.ok, row.detail) == ("Queue engine version is offered", ok, detail)


def test_every_queue_version_runs_on_every_node_type():
    """The claim the preflight row rests on: Graviton2 node types need Redis 5.0.6 or later (ElastiCache's
    documentation); every version the template allows is newer."""
    versions = SPECS["QueueEngineVersion"]["AllowedValues"]
    assert all(tuple(int(n) for n in v.split(".")) >= (5, 0, 6) for v in versions)


# -- the command line --------------------------------------------------------------------------------


def test_params_check_accepts_latest_for_the_images_only():
    assert not [p for p in check_parameters(SPECS, {"RoiAmiId": LATEST, "WorkerAmiId": LATEST}) if "AmiId" in str(p)]
    (problem,) = [p for p in check_parameters(SPECS, {"VpcId": LATEST}) if p.parameter == "VpcId"]
    assert "not an AWS::EC2::VPC::Id" in str(problem)
    (problem,) = [p for p in check_parameters(SPECS, {"RoiAmiId": "Latest"}) if p.parameter == "RoiAmiId"]
    assert "not an AWS::EC2::Image::Id" in str(problem)


def test_params_init_offers_latest_for_the_images(tmp_path):
    output = tmp_path / "prod.json"
    required = {
        "OrganizationName": "acme",
        "VpcId": "vpc-0123456789abcdef0",
        "LoadBalancerSubnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
        "RoiSubnetId": "subnet-0bbbbbbbbbbbbbbb1",
        "DatabaseSubnetIds": "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2",
        "CacheSubnetIds": "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2",
        "WorkerSubnetIds": "subnet-0ccccccccccccccc1,subnet-0ccccccccccccccc2",
        "Domain": "valohai.example.com",
    }
    arguments = [item for k, v in required.items() for item in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(cli, ["params", "init", "-o", str(output), *arguments])
    assert result.exit_code == 0, result.output
    written = load_parameters(output)
    assert (written["RoiAmiId"], written["WorkerAmiId"]) == (LATEST, LATEST)
    assert written["QueueEngineVersion"] == "7.1"


def _link(valohai, tmp_path, credentials: dict[str, str], monkeypatch) -> tuple[int, str]:
    params = tmp_path / "p.json"
    params.write_text(dump_parameters({"RoiAmiId": LATEST, "WorkerAmiId": WORKER_AMI}))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["aws_secret_access_key"])
    if "aws_session_token" in credentials:
        monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["aws_session_token"])
    else:
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    arguments = ["--params", str(params), "--region", REGION, "--endpoint-url", valohai["endpoint_url"]]
    result = CliRunner().invoke(cli, ["link", "--template-url", "https://b.s3.amazonaws.com/t.json", *arguments])
    return result.exit_code, result.output


def test_link_resolves_latest_before_building_the_link(valohai, tmp_path, monkeypatch):
    exit_code, output = _link(valohai, tmp_path, valohai["credentials"], monkeypatch)
    assert exit_code == 0, output
    roi = valohai["images"]["valohai-roi-20260301"]
    assert f"RoiAmiId: latest = {roi} (valohai-roi-20260301, " in output
    assert f"param_RoiAmiId={roi}" in output and f"param_WorkerAmiId={WORKER_AMI}" in output
    assert "latest" not in output.split("Quick-create link:")[1]


def test_link_refuses_with_one_line_when_no_image_is_shared(valohai, tmp_path, monkeypatch):
    exit_code, output = _link(valohai, tmp_path, valohai["stranger"], monkeypatch)
    assert exit_code == 1
    assert output.strip().splitlines() == [
        f"Error: RoiAmiId=latest: no valohai-roi-* image of Valohai's account {VALOHAI_ACCOUNT} is shared with this "
        f"account; ask Valohai to share the images with account {STRANGER} in region {REGION}"
    ]
    assert "Quick-create link" not in output


def test_the_example_parameters_keep_plain_ids():
    """params/example.json is also for `aws cloudformation create-stack --parameters`, which cannot resolve
    `latest`."""
    entries = json.loads((Path(__file__).parents[1] / "params" / "example.json").read_text())
    example = {e["ParameterKey"]: e["ParameterValue"] for e in entries}
    assert example["RoiAmiId"].startswith("ami-") and example["WorkerAmiId"].startswith("ami-")


# -- an upgrade: deploy and plan resolve `latest` (lifecycle.resolve_images), the review says what replacing the
# -- app instance means -------------------------------------------------------------------------------------


def _run(endpoint: str, *args: str):
    return CliRunner().invoke(cli, [*args, "--endpoint-url", endpoint, "--region", "us-east-1"])


def test_deploy_resolves_latest_and_an_upgrade_says_the_app_instance_is_replaced(aws_env, local_session, demo_params):
    """The demo deployed with RoiAmiId=latest: the stack gets the newest image Valohai shares; Valohai's next
    release, then `plan --set RoiAmiId=latest`: the review replaces the app instance and says what that means."""
    endpoint = aws_env.endpoint_url
    valohai_ec2 = _client("ec2", endpoint, _account_credentials(endpoint, VALOHAI_ACCOUNT), region="us-east-1")
    first = _share_images(valohai_ec2, CUSTOMER, ("valohai-roi-20260601",))["valohai-roi-20260601"]
    deployed = _run(
        endpoint, "deploy", "--stack-name", "upgrade", "--params", str(demo_params), "--set", "RoiAmiId=latest", "--yes"
    )
    assert deployed.exit_code == 0, deployed.output
    assert f"RoiAmiId=latest: {first} (valohai-roi-20260601, made " in deployed.output
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    (stack,) = cfn.describe_stacks(StackName="upgrade")["Stacks"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["RoiAmiId"] == first
    assert "The app instance is replaced" not in deployed.output, "a new stack replaces nothing"

    newer = _share_images(valohai_ec2, CUSTOMER, ("valohai-roi-20260701",))["valohai-roi-20260701"]
    planned = _run(
        endpoint,
        "plan",
        "--stack-name",
        "upgrade",
        "--params",
        str(demo_params),
        "--set",
        "RoiAmiId=latest",
        "--output",
        "json",
    )
    assert planned.exit_code == 0, planned.output
    review = json.loads(planned.stdout)
    assert {"name": "RoiAmiId", "old": first, "new": newer, "masked": False} in review["parameters"]
    (instance,) = [c for c in review["changes"] if c["logical_id"] == "RoiInstance"]
    assert (instance["action"], instance["replacement"]) == ("Modify", "True")
    assert review["replaces_app_instance"] is True and review["data_loss"] == []
    assert "The app instance is replaced" in planned.stderr
    assert "database, bucket and secrets are kept" in planned.stderr

    # Deployed, then Valohai withdraws it: `latest` now stands for an older image, which would run an older
    # app on a database the newer one migrated (QA). Refused, with the way forward; nothing planned.
    executed = _run(
        endpoint, "deploy", "--stack-name", "upgrade", "--params", str(demo_params), "--set", "RoiAmiId=latest", "--yes"
    )
    assert executed.exit_code == 0, executed.output
    valohai_ec2.disable_image(ImageId=newer)
    older = _run(endpoint, "plan", "--stack-name", "upgrade", "--params", str(demo_params), "--set", "RoiAmiId=latest")
    assert older.exit_code == 1, older.output
    said = " ".join(older.output.split())
    assert f"the newest image Valohai shares now, {first} (valohai-roi-20260601" in said
    assert f"is older than the deployed {newer} (valohai-roi-20260701" in said
    assert f"Keep RoiAmiId={newer} (or UsePreviousValue)" in said
    (stack,) = cfn.describe_stacks(StackName="upgrade")["Stacks"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["RoiAmiId"] == newer
