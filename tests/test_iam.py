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


def test_pass_role_names_the_worker_role_only(template):
    pass_role = [s for _, s in allow_statements(template) if "iam:PassRole" in as_list(s["Action"])]
    assert pass_role, "the master must be able to pass the worker role"
    for statement in pass_role:
        assert as_list(statement["Resource"]) == [{"Fn::GetAtt": ["WorkerRole", "Arn"]}]


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


def test_tag_conditions_use_string_equals_on_the_valohai_tag(template):
    conditioned = [s for _, s in allow_statements(template) if "Condition" in s]
    tag_keys = set()
    for statement in conditioned:
        for operator, pairs in statement["Condition"].items():
            assert not operator.startswith("ForAllValues"), statement
            tag_keys |= {k for k in pairs if "Tag/" in k}
    assert tag_keys == {"aws:RequestTag/valohai", "aws:ResourceTag/valohai"}


def test_master_reads_only_this_installations_secrets_and_parameters(template):
    resources = {}
    for _, statement in allow_statements(template):
        if "Resource" not in statement:  # a trust policy
            continue
        for action in as_list(statement["Action"]):
            resources.setdefault(action, []).extend(as_list(statement["Resource"]))
    arn = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${ResourcePrefix}-secret-*"
    assert resources["secretsmanager:GetSecretValue"] == [{"Fn::Sub": arn}]
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


def test_master_has_session_manager_without_a_region(template):
    arns = template["Resources"]["MasterRole"]["Properties"]["ManagedPolicyArns"]
    assert arns == [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"}]


def test_role_names_follow_the_prefix(template):
    for logical_id, suffix in (("MasterRole", "master"), ("WorkerRole", "worker"), ("MultipartRole", "multipart")):
        assert template["Resources"][logical_id]["Properties"]["RoleName"] == {
            "Fn::Sub": f"${{ResourcePrefix}}-role-{suffix}"
        }
