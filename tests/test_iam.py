"""IAM: least privilege as SPEC.md states it, and the original's IAM bugs fixed."""

from __future__ import annotations

import importlib
import json
import re

import pytest
from cfn import as_list, statements, walk

AWS_REGION_NAME = re.compile(r"\b(us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov|us-iso[a-z]?)-[a-z]+-[0-9]\b")
ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")


def allow_statements(template):
    return [(w, s) for w, s in statements(template) if s["Effect"] == "Allow"]


def test_no_wildcard_actions(template):
    # Deny statements may name s3:* (the bucket's deny-without-TLS does, as AWS recommends); no Allow may.
    for where, statement in allow_statements(template):
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{where}: {action}"


def test_every_action_is_an_awacs_constant(template):
    for where, statement in statements(template):
        for action in as_list(statement["Action"]):
            service, name = action.split(":")
            if name == "*":
                continue
            module = importlib.import_module(f"awacs.{service.replace('-', '_')}")
            assert getattr(module, name).JSONrepr() == action, f"{where}: {action}"


def test_pass_role_names_the_worker_role_and_the_ssm_host_management_role_only(template):
    """The worker role to EC2 (the original named a role that did not exist), and SSM's own role to SSM only."""
    pass_role = [s for _, s in allow_statements(template) if "iam:PassRole" in as_list(s["Action"])]
    resources = sorted(json.dumps(as_list(s["Resource"])) for s in pass_role)
    assert resources == [
        json.dumps([{"Fn::GetAtt": ["WorkerRole", "Arn"]}]),
        json.dumps(
            [
                {
                    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/service-role/"
                    "AWSSystemsManagerDefaultEC2InstanceManagementRole"
                }
            ]
        ),
    ]
    (ssm,) = [s for s in pass_role if "Condition" in s]
    assert ssm["Condition"] == {"StringEquals": {"iam:PassedToService": "ssm.amazonaws.com"}}


def test_multipart_role_is_trusted_by_the_master_role(template):
    trust = template["Resources"]["MultipartRole"]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"AWS": {"Fn::GetAtt": ["MasterRole", "Arn"]}}
    assert statement["Action"] == ["sts:AssumeRole"]


def test_instance_roles_are_trusted_by_ec2(template):
    for name in ("MasterRole", "WorkerRole"):
        (statement,) = template["Resources"][name]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": ["ec2.amazonaws.com"]}


def test_no_region_or_account_typed_as_text(template):
    text = json.dumps(template["Resources"]) + json.dumps(template["Outputs"])
    assert not AWS_REGION_NAME.search(text), AWS_REGION_NAME.search(text)
    assert not ACCOUNT_ID.search(text), ACCOUNT_ID.search(text)
    for node in walk(template["Resources"]):
        if isinstance(node, str) and node.startswith("arn:") and not node.startswith("arn:${AWS::Partition}:"):
            pytest.fail(f"literal ARN {node}: build it with ${{AWS::Partition}}")


def test_tag_conditions_use_string_equals_on_the_valohai_tag_and_the_workers_tag(template):
    conditioned = [s for _, s in allow_statements(template) if "Condition" in s]
    tag_keys = set()
    for statement in conditioned:
        for operator, pairs in statement["Condition"].items():
            assert not operator.startswith("ForAllValues"), statement
            tag_keys |= {k for k in pairs if "Tag/" in k}
            if any("Tag/" in k for k in pairs):
                # Both tags in one operator: both must hold.
                assert {k.split("/")[1] for k in pairs} == {"valohai", "valohai:workers"}, statement
                assert operator == "StringEquals"
    assert tag_keys == {
        "aws:RequestTag/valohai",
        "aws:RequestTag/valohai:workers",
        "aws:ResourceTag/valohai",
        "aws:ResourceTag/valohai:workers",
    }


def test_master_reads_only_this_installations_secrets_and_parameters(template):
    resources = {}
    for _, statement in allow_statements(template):
        if "Resource" not in statement:  # a trust policy
            continue
        for action in as_list(statement["Action"]):
            resources.setdefault(action, []).extend(as_list(statement["Resource"]))
    arn = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${ResourcePrefix}-secret-*"
    assert resources["secretsmanager:GetSecretValue"] == [{"Fn::Sub": arn}]
    # The worker role reads no secret at all: of this installation's roles, only the master reads the app token.
    worker = template["Resources"]["WorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert not any(a.startswith("secretsmanager:") for s in worker for a in as_list(s["Action"]))
    assert resources["ssm:GetParameter"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${ResourcePrefix}/*"}
    ]


def test_s3_access_is_on_the_data_bucket_only(template):
    for where, statement in allow_statements(template):
        if any(a.startswith("s3:") for a in as_list(statement["Action"])):
            for resource in as_list(statement["Resource"]):
                assert resource in ({"Fn::GetAtt": ["DataBucket", "Arn"]}, {"Fn::Sub": "${DataBucket.Arn}/*"}), where


def test_multipart_role_has_exactly_the_spec_actions(template):
    (policy,) = template["Resources"]["MultipartRole"]["Properties"]["Policies"]
    actions = {a for s in policy["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert actions == {
        "s3:AbortMultipartUpload",
        "s3:GetBucketLocation",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
        "s3:ListBucketVersions",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
    }


@pytest.mark.parametrize("role", ["MasterRole", "WorkerRole"])
def test_instance_roles_have_session_manager_without_a_region(template, role):
    arns = template["Resources"][role]["Properties"]["ManagedPolicyArns"]
    assert arns == [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}]


def test_role_names_follow_the_prefix(template):
    for logical_id, suffix in (("MasterRole", "master"), ("WorkerRole", "worker"), ("MultipartRole", "multipart")):
        assert template["Resources"][logical_id]["Properties"]["RoleName"] == {
            "Fn::Sub": f"${{ResourcePrefix}}-role-{suffix}"
        }


# -- what the roles may do, evaluated on the rendered policies ------------------------------------------------

# Every action Valohai's own master policies grant: Module/IAM/Master/main.tf of its Terraform installer and the
# CDK app's (valohai-cdk-self-hosted). s3:* on the bucket is narrowed to the S3 actions listed below it.
VALOHAI_MASTER_ACTIONS = [
    "ec2:DescribeInstances",
    "ec2:DescribeVpcs",
    "ec2:DescribeKeyPairs",
    "ec2:DescribeImages",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeInstanceAttribute",
    "ec2:DescribeRouteTables",
    "ec2:DescribeInternetGateways",
    "ec2:CreateTags",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeScalingActivities",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:ModifyLaunchTemplate",
    "ec2:RunInstances",
    "ec2:RebootInstances",
    "autoscaling:UpdateAutoScalingGroup",
    "autoscaling:CreateOrUpdateTags",
    "autoscaling:SetDesiredCapacity",
    "autoscaling:CreateAutoScalingGroup",
    "iam:CreateServiceLinkedRole",
    "iam:PassRole",
    "iam:GetRole",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:DescribeParameters",
    "secretsmanager:GetRandomPassword",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecretVersionIds",
    "ssm:GetServiceSetting",
    "ssm:ResetServiceSetting",
    "ssm:UpdateServiceSetting",
    "ssm:DescribeAssociation",
    "ssm:GetDeployablePatchSnapshotForInstance",
    "ssm:GetDocument",
    "ssm:DescribeDocument",
    "ssm:GetManifest",
    "ssm:ListAssociations",
    "ssm:ListInstanceAssociations",
    "ssm:PutInventory",
    "ssm:PutComplianceItems",
    "ssm:PutConfigurePackageResult",
    "ssm:UpdateAssociationStatus",
    "ssm:UpdateInstanceAssociationStatus",
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
    "ssm:StartSession",
    "ssm:TerminateSession",
    "ssm:ResumeSession",
    # s3:* narrowed: the object calls the app makes, with versions and tags (the bucket is versioned).
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:GetObjectVersion",
    "s3:DeleteObjectVersion",
    "s3:GetObjectTagging",
    "s3:PutObjectTagging",
    "s3:GetObjectVersionTagging",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:AbortMultipartUpload",
]
ACCOUNT = "111111111111"
REGION = "eu-west-1"


def _evaluator(template, pools: str = ""):
    from cfn import Evaluator

    return Evaluator(
        template,
        {"ResourcePrefix": "vh", "WorkerPoolRoleArns": pools},
        {"WorkerRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/vh-role-worker", "DataBucket.Arn": "arn:aws:s3:::vh-data"},
    )


# A registered worker pool's scaling role (WorkerPoolRoleArns).
POOL_ROLE = "arn:aws:iam::222222222222:role/gpu-role-scaling-us-west-2"


@pytest.fixture(scope="module")
def master(template):
    """The master role's statements with one worker pool registered."""
    from cfn import resolve
    from iam_eval import role_statements

    resolved = resolve(template, {"WorkerPoolRoleArns": POOL_ROLE})
    return role_statements(resolved, "MasterRole", _evaluator(resolved, POOL_ROLE))


def test_the_master_may_assume_the_registered_pools_roles_and_no_other(template, master):
    from cfn import resolve
    from iam_eval import Request, allowed, role_statements

    assert allowed(master, Request("sts:AssumeRole", POOL_ROLE))
    for other in (
        "arn:aws:iam::222222222222:role/gpu-role-scaling-eu-west-1",
        "arn:aws:iam::333333333333:role/gpu-role-scaling-us-west-2",
        f"arn:aws:iam::{ACCOUNT}:role/vh-role-multipart",
        f"arn:aws:iam::{ACCOUNT}:role/vh-role-master",
    ):
        assert not allowed(master, Request("sts:AssumeRole", other)), other
    # None registered: no AssumeRole at all (an empty list would be a statement IAM refuses).
    none = resolve(template, {"WorkerPoolRoleArns": ""})
    statements = role_statements(none, "MasterRole", _evaluator(none))
    assert not [s for s in statements if "sts:AssumeRole" in as_list(s["Action"])]


def _worker_tags(prefix: str) -> dict[str, str]:
    return {"valohai": "1", "valohai:installation": prefix, "valohai:workers": prefix}


def _resource_tags(tags: dict[str, str]) -> dict[str, str]:
    return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}


@pytest.mark.parametrize("action", VALOHAI_MASTER_ACTIONS)
def test_every_action_of_valohais_master_policy_is_granted(master, action):
    granted = [s for s in master if s["Effect"] == "Allow" and action in as_list(s["Action"])]
    assert granted, f"{action}: the app breaks at run time without it"


# What Valohai's installer (Module/IAM/Master/main.tf at f60087b) grants besides, on "*", and this template does not:
# its boot stores the superuser's API token as an SSM parameter it writes itself; here the token is a secret the
# template generates (<prefix>-secret-app-token), which the instance only reads. README "The master role" says so.
LEFT_OUT_OF_VALOHAIS_MASTER_POLICY = ["ssm:PutParameter", "ssm:AddTagsToResource"]


@pytest.mark.parametrize("action", LEFT_OUT_OF_VALOHAIS_MASTER_POLICY)
def test_the_actions_left_out_of_valohais_master_policy_are_granted_nowhere(master, action):
    from iam_eval import Request, allowed

    parameter = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/vh/app-token"
    assert allowed(master, Request("ssm:GetParameter", parameter, {})), "the same request shape, read: allowed"
    assert not allowed(master, Request(action, parameter, {}))
    assert not allowed(master, Request(action, "*", {}))


MUTATING = [
    ("ec2:TerminateInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"),
    ("ec2:RebootInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"),
    ("ec2:CreateTags", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"),
    ("ec2:ModifyLaunchTemplate", f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/lt-0123456789abcdef0"),
    ("ec2:CreateLaunchTemplateVersion", f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/lt-0123456789abcdef0"),
    (
        "autoscaling:SetDesiredCapacity",
        f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:1234:autoScalingGroupName/vh-worker-t3.medium",
    ),
    (
        "autoscaling:UpdateAutoScalingGroup",
        f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:1234:autoScalingGroupName/vh-worker-t3.medium",
    ),
    (
        "autoscaling:CreateOrUpdateTags",
        f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:1234:autoScalingGroupName/vh-worker-t3.medium",
    ),
    ("ssm:StartSession", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"),
]


@pytest.mark.parametrize(("action", "resource"), MUTATING, ids=[a for a, _ in MUTATING])
def test_the_master_changes_its_own_workers_only(master, action, resource):
    from iam_eval import Request, allowed

    assert allowed(master, Request(action, resource, _resource_tags(_worker_tags("vh"))))
    # Another installation's worker in the same account: the shared valohai=1 alone does not open it.
    assert not allowed(master, Request(action, resource, _resource_tags(_worker_tags("other"))))
    # Its own roi instance (every resource of the installation carries valohai=1 and the installation's tag).
    roi = {"valohai": "1", "valohai:installation": "vh", "Name": "vh-roi"}
    assert not allowed(master, Request(action, resource, _resource_tags(roi)))
    assert not allowed(master, Request(action, resource, {}))


@pytest.mark.parametrize(
    "action", ["ec2:CreateLaunchTemplate", "ec2:RunInstances", "autoscaling:CreateAutoScalingGroup"]
)
def test_the_master_creates_worker_resources_only_tagged_as_its_own(master, action):
    from iam_eval import Request, allowed

    resource = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"
    request_tags = {f"aws:RequestTag/{k}": v for k, v in _worker_tags("vh").items()}
    assert allowed(master, Request(action, resource, request_tags))
    other = {f"aws:RequestTag/{k}": v for k, v in _worker_tags("other").items()}
    assert not allowed(master, Request(action, resource, other))
    assert not allowed(master, Request(action, resource, {}))


def test_the_master_tags_nothing_into_a_worker(master):
    """Tagging is granted on existing workers and at launch only: no tag can make the roi instance a worker."""
    from iam_eval import Request, allowed

    roi = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0roi"
    tagging = {f"aws:RequestTag/{k}": v for k, v in _worker_tags("vh").items()}
    assert not allowed(master, Request("ec2:CreateTags", roi, tagging | {"aws:ResourceTag/valohai": "1"}))
    group = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:1:autoScalingGroupName/other-worker-x"
    assert not allowed(master, Request("autoscaling:CreateOrUpdateTags", group, tagging))
    assert allowed(master, Request("ec2:CreateTags", roi, {"ec2:CreateAction": "RunInstances"}))


def test_the_master_signals_its_own_stack_only(master):
    from iam_eval import Request, allowed

    own = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/vh/0d1e2f30-aaaa-bbbb-cccc-000000000000"
    other = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/another/0d1e2f30-aaaa-bbbb-cccc-000000000000"
    assert allowed(master, Request("cloudformation:SignalResource", own))
    assert not allowed(master, Request("cloudformation:SignalResource", other))


def test_a_worker_protects_itself_in_this_installations_groups_only(template):
    from iam_eval import Request, allowed, role_statements

    worker = role_statements(template, "WorkerRole", _evaluator(template))
    group = f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:1:autoScalingGroupName/vh-worker-t3.medium"
    assert allowed(worker, Request("autoscaling:SetInstanceProtection", group))
    assert not allowed(worker, Request("autoscaling:SetInstanceProtection", group.replace("/vh-", "/other-")))
    assert allowed(worker, Request("ec2:DescribeInstances", "*"))
