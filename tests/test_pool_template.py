"""The worker pool's template (SPEC "Worker pools"): built from the installation's own code, fresh, small, clean
for cfn-lint, its names carrying the pool, and its scaling role granting exactly the master role's
worker-management statements, scoped by the pool's tag and trusted by the master role alone."""

from __future__ import annotations

import json

import pytest
from cfn import REPO, Evaluator, parameter_values, resolve
from iam_eval import Request, allowed, role_statements
from troposphere import Template
from troposphere.iam import Role

from valohai_cfn.language_extensions import expand
from valohai_cfn.lint import lint_text
from valohai_cfn.render import TEMPLATE_BODY_LIMIT, render_json, render_yaml
from valohai_cfn.stack.iam import worker_management_statements
from valohai_cfn.stack.parameters import add_pool_parameters
from valohai_cfn.template import build_pool_template

MASTER = "arn:aws:iam::111111111111:role/vh-role-master"
POOL = {
    "PoolName": "gpu",
    "InstallationMasterRoleArn": MASTER,
    "QueueUrl": "rediss://master.vh-queue.abc.euw1.cache.amazonaws.com:6379/0?ssl_cert_reqs=required",
    "VpcId": "vpc-0bbbbbbbbbbbbbbbb",
    "WorkerSubnetIds": "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2",
    "WorkerAmiId": "ami-0bbbbbbbbbbbbbbbb",
    "WorkerInstanceTypes": "g5.xlarge",
    "WorkerSpotInstanceTypes": "g4dn.xlarge",
}


@pytest.fixture(scope="module")
def pool_json() -> str:
    return render_json(build_pool_template())


@pytest.fixture(scope="module")
def pool(pool_json) -> dict:
    """The pool template as CloudFormation resolves it for POOL."""
    return resolve(json.loads(pool_json), POOL)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_committed_pool_templates_are_what_the_code_builds_and_fit_a_template_body(fmt, pool_json):
    committed = (REPO / "templates" / f"valohai-worker-pool.{fmt}").read_text(encoding="utf-8")
    fresh = pool_json if fmt == "json" else render_yaml(build_pool_template())
    assert committed == fresh, "templates/ is stale: run `make template` and commit the result"
    assert len(fresh.encode()) <= TEMPLATE_BODY_LIMIT


def test_cfn_lint_finds_nothing_informational_rules_included(pool_json):
    assert lint_text(pool_json) == []
    processed = json.dumps(expand(json.loads(pool_json), POOL))
    assert lint_text(processed) == [], "the template a StackSet gets: processed for its types"


def test_the_scaling_role_grants_exactly_the_masters_worker_management_statements(template, pool):
    """Evaluated for one name (the installation's prefix and the pool's name both vh): the same statements,
    one by one, as the master role's that the same function made, then the read of the pool's registration
    parameter, and nothing else."""
    installation = resolve(template, {"ResourcePrefix": "vh", "WorkerPoolRoleArns": ""})
    master = role_statements(
        installation, "MasterRole", Evaluator(installation, parameter_values(installation, {"ResourcePrefix": "vh"}))
    )
    scaling = role_statements(pool, "ScalingRole", Evaluator(pool, parameter_values(pool, {**POOL, "PoolName": "vh"})))
    *management, registration = scaling
    assert management == master[: len(management)]
    made = worker_management_statements(
        add_pool_parameters(Template()), Role("WorkerRole", AssumeRolePolicyDocument={})
    )
    assert len(management) == len(made) > 0
    assert registration == {
        "Effect": "Allow",
        "Action": ["ssm:GetParameter"],
        "Resource": ["arn:aws:ssm:eu-west-1:111111111111:parameter/vh/registration"],
    }
    assert "sts:AssumeRole" not in json.dumps(scaling) and "secretsmanager:GetSecretValue" not in json.dumps(scaling)


def test_the_registration_parameter_holds_what_the_app_instance_reads(pool):
    """`<vpc id> <subnet ids> <disk GiB> <instance types>`, the order userdata/roi.sh's read_pool reads, under the
    name it reads and the scaling role may read."""
    evaluate = Evaluator(pool, parameter_values(pool, POOL))
    properties = pool["Resources"]["Registration"]["Properties"]
    assert evaluate(properties["Name"]) == "/gpu/registration" and properties["Type"] == "String"
    assert evaluate(properties["Value"]) == (
        f"{POOL['VpcId']} {POOL['WorkerSubnetIds']} 100 g5.xlarge,g4dn.xlarge.spot"
    )


def test_the_scaling_role_is_scoped_by_the_pools_tag_and_trusted_by_the_master_alone(pool):
    properties = pool["Resources"]["ScalingRole"]["Properties"]
    (trust,) = properties["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Ref": "InstallationMasterRoleArn"}} and trust["Action"] == ["sts:AssumeRole"]
    statements = role_statements(pool, "ScalingRole", Evaluator(pool, parameter_values(pool, POOL)))
    mine = {"aws:ResourceTag/valohai": "1", "aws:ResourceTag/valohai:workers": "gpu"}
    installations = {"aws:ResourceTag/valohai": "1", "aws:ResourceTag/valohai:workers": "vh"}
    group = "arn:aws:autoscaling:eu-west-1:111111111111:autoScalingGroup:x:autoScalingGroupName/gpu-worker-g5.xlarge"
    assert allowed(statements, Request("autoscaling:SetDesiredCapacity", group, mine))
    assert not allowed(statements, Request("autoscaling:SetDesiredCapacity", group, installations))
    assert not allowed(
        statements, Request("ec2:TerminateInstances", "arn:aws:ec2:eu-west-1:111111111111:instance/i-1", {})
    )
    assert allowed(statements, Request("iam:PassRole", "<WorkerRole.Arn>"))
    assert not allowed(statements, Request("iam:PassRole", "arn:aws:iam::111111111111:role/vh-role-worker"))


def test_names_carry_the_pool_and_iam_names_its_region(pool):
    evaluate = Evaluator(pool, parameter_values(pool, POOL))
    resources = pool["Resources"]
    assert evaluate(resources["WorkersSecurityGroup"]["Properties"]["GroupName"]) == "gpu-sg-workers"
    assert evaluate(resources["ScalingRole"]["Properties"]["RoleName"]) == "gpu-role-scaling-eu-west-1"
    assert evaluate(resources["WorkerRole"]["Properties"]["RoleName"]) == "gpu-role-worker-eu-west-1"
    assert (
        evaluate(resources["WorkerInstanceProfile"]["Properties"]["InstanceProfileName"])
        == "gpu-profile-worker-eu-west-1"
    )
    groups = {
        evaluate(r["Properties"]["AutoScalingGroupName"])
        for r in resources.values()
        if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"
    }
    assert groups == {"gpu-worker-g5.xlarge", "gpu-worker-g4dn.xlarge-spot"}
    outputs = {name: evaluate(o["Value"]) for name, o in pool["Outputs"].items()}
    assert {outputs["WorkerQueueg5xlarge"], outputs["SpotWorkerQueueg4dnxlarge"]} == {
        "gpu-eu-west-1-g5.xlarge",
        "gpu-eu-west-1-g4dn.xlarge-spot",
    }
    assert outputs["QueueNamePrefix"] == "gpu-" and outputs["GroupNamePrefix"] == "gpu-worker-"
    assert outputs["InstanceTypes"] == "g5.xlarge,g4dn.xlarge.spot"


def test_the_workers_boot_on_the_installations_queue_url(pool):
    evaluate = Evaluator(pool, parameter_values(pool, POOL))
    (template,) = [r for name, r in pool["Resources"].items() if name == "WorkerLaunchTemplateg5xlarge"]
    boot = evaluate(template["Properties"]["LaunchTemplateData"]["UserData"])
    assert '"QUEUES=gpu-eu-west-1-g5.xlarge"' in boot and f'"REDIS_URL={POOL["QueueUrl"]}"' in boot


def test_readme_pool_sections_are_fresh(raw_template, pool_json):
    from valohai_cfn.docs import render_readme

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert render_readme(readme, raw_template, json.loads(pool_json)) == readme, "README is stale: run `make docs`"
