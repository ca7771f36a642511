"""Worker groups through CloudFormation in the local AWS: made, changed and removed per instance type, and seen
through the Auto Scaling and EC2 APIs, as the app would see them."""

from __future__ import annotations

import base64
import json

from test_deploy_local import run, with_parameter


def worker_groups(autoscaling, prefix: str) -> dict[str, dict]:
    groups = autoscaling.get_paginator("describe_auto_scaling_groups").paginate().build_full_result()
    return {
        g["AutoScalingGroupName"]: g
        for g in groups["AutoScalingGroups"]
        if g["AutoScalingGroupName"].startswith(prefix)
    }


def launch_template_data(ec2, group: dict) -> dict:
    """The group's launch template's $Latest version, as EC2 gives it to the app and to Auto Scaling."""
    spec = group.get("LaunchTemplate") or group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateId=spec["LaunchTemplateId"], Versions=["$Latest"])[
        "LaunchTemplateVersions"
    ]
    return version["LaunchTemplateData"]


def user_data(ec2, group: dict) -> str:
    return base64.b64decode(launch_template_data(ec2, group)["UserData"]).decode()


def test_groups_follow_the_types_and_updates_never_scale_workers_down(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    autoscaling = local_session.client("autoscaling", endpoint_url=endpoint)
    ec2 = local_session.client("ec2", endpoint_url=endpoint)
    prefix = json.loads(demo_params.read_text())[-1]["ParameterValue"]
    four = with_parameter(
        with_parameter(demo_params, "WorkerInstanceTypes", "t3.medium,c5.xlarge"),
        "WorkerSpotInstanceTypes",
        "g4dn.xlarge,m5.large",
    )
    created = run(endpoint, "deploy", "--stack-name", "workers", "--params", str(four), "--yes")
    assert created.exit_code == 0, created.output

    groups = worker_groups(autoscaling, f"{prefix}-worker-")
    assert sorted(groups) == sorted(
        f"{prefix}-worker-{t}" for t in ("t3.medium", "c5.xlarge", "g4dn.xlarge-spot", "m5.large-spot")
    )
    (workers_group,) = [
        g["GroupId"]
        for g in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{prefix}-sg-workers"]}])[
            "SecurityGroups"
        ]
    ]
    for name, group in groups.items():
        assert (group["MinSize"], group["MaxSize"]) == (0, 10), name
        tags = {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in group["Tags"]}
        assert tags["valohai"] == ("1", True) and tags["valohai:workers"] == (prefix, True), name
        queue = name.removeprefix(f"{prefix}-worker-")
        assert f'"QUEUES=us-east-1-{queue}"' in user_data(ec2, group), name
        # No public address whatever the subnet assigns; the worker security group on the one interface.
        (interface,) = launch_template_data(ec2, group)["NetworkInterfaces"]
        assert interface["DeviceIndex"] == 0 and interface["AssociatePublicIpAddress"] is False, name
        assert interface["Groups"] == [workers_group] and interface["DeleteOnTermination"] is True, name
        assert "SecurityGroupIds" not in launch_template_data(ec2, group), name

    # The app scaled a group up; a stack update of WorkerMaxSize alone must leave it as it is.
    autoscaling.set_desired_capacity(AutoScalingGroupName=f"{prefix}-worker-c5.xlarge", DesiredCapacity=3)
    bigger = with_parameter(four, "WorkerMaxSize", "20")
    updated = run(endpoint, "deploy", "--stack-name", "workers", "--params", str(bigger), "--yes")
    assert updated.exit_code == 0, updated.output
    groups = worker_groups(autoscaling, f"{prefix}-worker-")
    assert {g["MaxSize"] for g in groups.values()} == {20}
    assert groups[f"{prefix}-worker-c5.xlarge"]["DesiredCapacity"] == 3

    # One type fewer: exactly that group goes, the others stay as they are.
    three = with_parameter(bigger, "WorkerSpotInstanceTypes", "g4dn.xlarge")
    removed = run(endpoint, "deploy", "--stack-name", "workers", "--params", str(three), "--yes")
    assert removed.exit_code == 0, removed.output
    assert "This change would lose data" not in removed.output, "worker groups are not data"
    after = worker_groups(autoscaling, f"{prefix}-worker-")
    assert sorted(after) == sorted(f"{prefix}-worker-{t}" for t in ("t3.medium", "c5.xlarge", "g4dn.xlarge-spot"))
    assert after[f"{prefix}-worker-c5.xlarge"]["DesiredCapacity"] == 3
    assert (
        after[f"{prefix}-worker-t3.medium"]["AutoScalingGroupARN"]
        == groups[f"{prefix}-worker-t3.medium"]["AutoScalingGroupARN"]
    )


def test_a_duplicate_type_is_refused_before_anything_is_made(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    twice = with_parameter(demo_params, "WorkerInstanceTypes", "t3.medium,t3.medium")
    result = run(endpoint, "deploy", "--stack-name", "twice", "--params", str(twice), "--yes", "--skip-preflight")
    assert result.exit_code == 2
    assert "WorkerInstanceTypes = 't3.medium,t3.medium': t3.medium is listed twice" in result.output
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    assert not [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == "twice"]
