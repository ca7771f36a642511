"""Updates the live resources cannot take, refused before any change set with the way forward, and the queue's
TLS switched through `preferred` both ways — against the local AWS, which refuses the same as AWS does."""

from __future__ import annotations

import datetime
import json
import re

import boto3
import pytest
from click.testing import CliRunner

from valohai_cfn import transitions
from valohai_cfn.cli import cli
from valohai_cfn.local_aws import create_demo_network, rules
from valohai_cfn.local_aws.updates import Where
from valohai_cfn.params import dump_parameters

STACK = "live-rules"


def deploy(local_aws, path, *extra: str):
    local = ["--endpoint-url", local_aws.endpoint_url, "--region", "us-east-1"]
    options = ["--stack-name", STACK, "--params", str(path), "--yes", "--skip-preflight"]
    return CliRunner().invoke(cli, ["deploy", *options, *extra, *local])


def with_values(path, **values: str | None):
    """The params file with these values (None: UsePreviousValue)."""
    entries = [e for e in json.loads(path.read_text()) if e["ParameterKey"] not in values]
    for key, value in values.items():
        entries.append(
            {"ParameterKey": key, "UsePreviousValue": True}
            if value is None
            else {"ParameterKey": key, "ParameterValue": value}
        )
    changed = path.with_name(f"{'-'.join(values)}-{'-'.join(str(v) for v in values.values())}.json")
    changed.write_text(json.dumps(entries))
    return changed


def clients(local_session, aws_env):
    return lambda service: local_session.client(service, endpoint_url=aws_env.endpoint_url)


def queue_tls(aws, prefix: str) -> tuple[bool, str | None, str]:
    (group,) = aws("elasticache").describe_replication_groups(ReplicationGroupId=f"{prefix}-queue")["ReplicationGroups"]
    url = aws("ssm").get_parameter(Name=f"/{prefix}/queue-url")["Parameter"]["Value"]
    return group["TransitEncryptionEnabled"], group.get("TransitEncryptionMode"), url.split("://")[0]


def no_change_set_was_made(aws) -> bool:
    return aws("cloudformation").list_change_sets(StackName=STACK)["Summaries"] == []


@pytest.fixture(scope="module")
def deployed(local_aws, tmp_path_factory):
    """One installation for the module (queue TLS false, EnvironmentName "Prod ML"); each test leaves it as it
    found it. Its params file."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            patch.setenv(name, value)
        patch.setenv("AWS_CONFIG_FILE", "/nonexistent")
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        session = boto3.Session(region_name="us-east-1")
        parameters = create_demo_network(session.client("ec2", endpoint_url=local_aws.endpoint_url), "us-east-1")
        parameters |= {"DatabaseDeletionProtection": "false", "ResourcePrefix": "live", "EnvironmentName": "Prod ML"}
        path = tmp_path_factory.mktemp("live") / "params.json"
        path.write_text(dump_parameters(parameters))
        created = deploy(local_aws, path)
        assert created.exit_code == 0, created.output
    return path


def test_queue_tls_goes_on_and_off_through_preferred(aws_env, local_session, deployed, monkeypatch):
    aws = clients(local_session, aws_env)
    demo_params, prefix = deployed, "live"
    assert queue_tls(aws, prefix) == (False, None, "redis")
    # A worker booted now reads redis:// once, at boot.
    group = f"{prefix}-worker-t3.medium"
    aws("autoscaling").set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=1)

    straight = deploy(aws_env, with_values(demo_params, QueueTransitEncryption="true"))
    assert straight.exit_code == 1, straight.output
    assert "only through TransitEncryptionMode preferred: deploy with QueueTransitEncryption=preferred first" in (
        " ".join(straight.output.split())
    )
    assert no_change_set_was_made(aws) and queue_tls(aws, prefix) == (False, None, "redis")

    preferred = deploy(aws_env, with_values(demo_params, QueueTransitEncryption="preferred"))
    assert preferred.exit_code == 0, preferred.output
    assert "QueueTransitEncryption=preferred: the queue" in preferred.output
    assert "takes TLS and plain connections" in " ".join(preferred.output.split())
    assert queue_tls(aws, prefix) == (True, "preferred", "rediss")

    early = deploy(aws_env, with_values(demo_params, QueueTransitEncryption="true"))
    assert early.exit_code == 1, early.output
    said = " ".join(early.output.split())
    assert "QueueTransitEncryption=true: 1 running worker(s) use redis:// and would lose the queue" in said
    assert "the app moves to rediss:// at its next reconcile (every 5 minutes): deploy again after" in said
    assert no_change_set_was_made(aws) and queue_tls(aws, prefix) == (True, "preferred", "rediss")

    # The app scaled the old worker in, and its reconcile has run.
    aws("autoscaling").set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=0)
    monkeypatch.setattr(transitions, "APP_RECONCILE", datetime.timedelta(0))
    required = deploy(aws_env, with_values(demo_params, QueueTransitEncryption="true"))
    assert required.exit_code == 0, required.output
    assert queue_tls(aws, prefix) == (True, "required", "rediss")

    assert deploy(aws_env, with_values(demo_params, QueueTransitEncryption="false")).exit_code == 1
    back = deploy(aws_env, with_values(demo_params, QueueTransitEncryption="preferred"))
    assert back.exit_code == 0, back.output
    said = " ".join(back.output.split())
    # Turning TLS off, the clients keep rediss:// until the last step (QA: the words promised a move here).
    assert "the app and the workers keep rediss:// until QueueTransitEncryption=false" in said
    assert "workers launched from now on use rediss://" not in said
    # UsePreviousValue in the file keeps the deployed value on an update.
    off = deploy(aws_env, with_values(demo_params, QueueTransitEncryption="false", EnvironmentName=None))
    assert off.exit_code == 0, off.output
    assert queue_tls(aws, prefix) == (False, None, "redis")
    (stack,) = aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    assert {"ParameterKey": "EnvironmentName", "ParameterValue": "Prod ML"} in stack["Parameters"]


def test_what_the_database_and_the_queue_cannot_take_is_refused_with_the_way_forward(aws_env, local_session, deployed):
    aws = clients(local_session, aws_env)
    prefix = "live"
    down = deploy(
        aws_env,
        with_values(deployed, DatabaseEngineVersion="16.9", DatabaseAllocatedStorage="40", QueueEngineVersion="7.0"),
    )
    assert down.exit_code == 1, down.output
    said = " ".join(down.output.split())
    assert f"the database {prefix}-database runs PostgreSQL 16.15, and RDS never downgrades" in said
    assert "has 80 GiB, and RDS storage never shrinks: keep DatabaseAllocatedStorage at 80 or more" in said
    assert f"the queue {prefix}-queue runs Redis 7.1" in said and "ElastiCache never downgrades" in said
    assert "Nothing was changed." in said and no_change_set_was_made(aws)
    # diff refuses it too, rather than showing a Modify that cannot be made (QA).
    local = ["--endpoint-url", aws_env.endpoint_url, "--region", "us-east-1"]
    changed = with_values(deployed, DatabaseEngineVersion="16.9")
    diffed = CliRunner().invoke(cli, ["diff", "--stack-name", STACK, "--params", str(changed), "--exit-code", *local])
    assert diffed.exit_code == 1, diffed.output
    assert "RDS never downgrades" in " ".join(diffed.output.split())

    up = deploy(aws_env, with_values(deployed, DatabaseEngineVersion="17.6", DatabaseAllocatedStorage="84"))
    assert up.exit_code == 1, up.output
    said = " ".join(up.output.split())
    assert "needs AllowMajorVersionUpgrade, which the template does not set" in said
    assert "--allow-major-version-upgrade" in said
    assert "RDS grows storage by 10% at least" in said and "give 88 or more" in said


def test_the_local_aws_refuses_what_rds_and_ec2_refuse(aws_env, local_session):
    where = Where("123456789012", "us-east-1")
    database = {"Engine": "postgres", "EngineVersion": "16.15", "DBInstanceClass": "db.m5.large"}
    with pytest.raises(rules.Refused, match=re.escape("Cannot find version 16.1 for postgres")):
        rules.check("create", "AWS::RDS::DBInstance", where, {}, {**database, "EngineVersion": "16.1"})
    with pytest.raises(rules.Refused, match=re.escape("DBInstanceClass=db.x9.huge")):
        rules.check("create", "AWS::RDS::DBInstance", where, {}, {**database, "DBInstanceClass": "db.x9.huge"})
    with pytest.raises(rules.Refused, match=re.escape("Cannot upgrade postgres from 16.15 to 16.9")):
        rules.check("update", "AWS::RDS::DBInstance", where, database, {**database, "EngineVersion": "16.9"})
    with pytest.raises(rules.Refused, match="AllowMajorVersionUpgrade"):
        rules.check("update", "AWS::RDS::DBInstance", where, database, {**database, "EngineVersion": "17.6"})
    with pytest.raises(rules.Refused, match="at least 10 percent"):
        rules.check("update", "AWS::RDS::DBInstance", where, {"AllocatedStorage": 80}, {"AllocatedStorage": 84})
    plain = {"EngineVersion": "6.2", "TransitEncryptionEnabled": False}
    with pytest.raises(rules.Refused, match=re.escape("only on Redis OSS 7.0 or later (it runs 6.2)")):
        rules.check(
            "update",
            "AWS::ElastiCache::ReplicationGroup",
            where,
            plain,
            {**plain, "TransitEncryptionEnabled": True, "TransitEncryptionMode": "preferred"},
        )

    cfn = local_session.client("cloudformation", endpoint_url=aws_env.endpoint_url)
    ec2 = local_session.client("ec2", endpoint_url=aws_env.endpoint_url)
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    group = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {"GroupDescription": "SSH from the operator's network", "VpcId": vpc},
    }
    cfn.create_stack(StackName="apostrophe", TemplateBody=json.dumps({"Resources": {"Group": group}}))
    (stack,) = cfn.describe_stacks(StackName="apostrophe")["Stacks"]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = [
        e.get("ResourceStatusReason", "") for e in cfn.describe_stack_events(StackName="apostrophe")["StackEvents"]
    ]
    assert any("Invalid rule description" in r and '"\'" not allowed' in r for r in reasons)


def test_queue_tls_on_a_redis_6_queue_is_refused_before_any_change_set():
    """ElastiCache changes a live queue's TLS only on Redis OSS 7.0 or later (QA: a 6.2 queue's false → preferred
    passed the review and reached ElastiCache). The live version is read from the cluster; no AWS call here."""
    group = {"ReplicationGroupId": "old-queue", "TransitEncryptionEnabled": False}
    wanted = {"TransitEncryptionEnabled": True, "TransitEncryptionMode": "preferred"}
    verdict = transitions._queue_tls(None, group, wanted, [], lambda: None, "6.2")
    (refusal,) = verdict.refusals
    assert "runs Redis 6.2" in refusal and "deploy QueueEngineVersion 7.1 first" in refusal
    assert transitions._queue_tls(None, group, wanted, [], lambda: None, "7.1").refusals == []
