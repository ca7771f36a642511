"""The review shows every change a deploy makes, and nothing it must not, through the CLI against the local
AWS: a resource attribute that changes (a DeletionPolicy that no longer keeps data is refused as data loss),
a NoEcho parameter's value wherever it flows (masked), stack tags (kept when none are given, shown when they
change), a value CloudFormation evaluates only while executing (changes at deploy, never a removal); the stack
policy for the stack's own loop items; and templates written in ways CloudFormation accepts (a policy document
as JSON text, the transform named in a list, a loop over a parameter without a default).

Small templates keep these fast; the installation's own is reviewed by test_review.py and test_review_local.py.
"""

from __future__ import annotations

import json

import pytest
from faults import WITH_DATA, deployed
from test_lifecycle_local import cfn, cli_run, protections  # noqa: F401 - fixtures shared with those tests

EMPTY_PARAMS = {"Parameters": {}}
# A NoEcho password that flows into two settings: through Fn::Sub, and as it is.
WITH_PASSWORD = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Parameters": {"Password": {"Type": "String", "NoEcho": True, "Default": "initial-pw"}},
    "Resources": {
        "Pw": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Type": "String", "Value": {"Fn::Sub": '{"password": "${Password}"}'}},
        },
        "PwCopy": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": {"Ref": "Password"}}},
    },
}
# One bucket per item of Names, which has no default.
LOOP = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Transform": "AWS::LanguageExtensions",
    "Parameters": {"Names": {"Type": "CommaDelimitedList"}},
    "Resources": {
        "Fn::ForEach::Buckets": [
            "N",
            {"Ref": "Names"},
            {"Bucket${N}": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}},
        ]
    },
}
ASSUME = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def role_named(name: str) -> dict:
    """A role (renamed: replaced) and what refers to it: values CloudFormation knows only while executing."""
    inline = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    )
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": name,
                    "AssumeRolePolicyDocument": ASSUME,
                    # A policy document as JSON text, as CloudFormation takes it too.
                    "Policies": [{"PolicyName": "read", "PolicyDocument": inline}],
                },
            },
            "Profile": {"Type": "AWS::IAM::InstanceProfile", "Properties": {"Roles": [{"Ref": "Role"}]}},
        },
    }


@pytest.fixture
def write(tmp_path):
    def written(name: str, document: dict) -> str:
        path = tmp_path / name
        path.write_text(json.dumps(document))
        return str(path)

    return written


def test_a_deletion_policy_that_no_longer_keeps_data_is_shown_and_refused(cli_run, cfn, write):  # noqa: F811
    deployed(cfn, "kept-data")
    data = {**WITH_DATA["Resources"]["Data"], "DeletionPolicy": "Delete"}
    value = {**WITH_DATA["Resources"]["Value"], "Metadata": {"Note": "kept"}}
    weakened = write(
        "weakened.json", {**WITH_DATA, "Resources": {**WITH_DATA["Resources"], "Data": data, "Value": value}}
    )
    given = ["--stack-name", "kept-data", "--params", write("empty.json", EMPTY_PARAMS), "--template", weakened]

    diff = cli_run("diff", *given, "--exit-code")
    assert diff.exit_code == 3, diff.output
    assert "Data.DeletionPolicy: Retain → Delete" in diff.output
    assert 'Value.Metadata: (not set) → {"Note":"kept"}' in diff.output

    refused = cli_run("deploy", *given, "--skip-preflight", "--yes")
    assert refused.exit_code == 1, refused.output
    assert (
        "Data (AWS::S3::Bucket) would no longer be kept: its DeletionPolicy goes from Retain to Delete, so deleting "
        "the stack would delete it" in refused.output
    )
    kept = cfn.get_template(StackName="kept-data")["TemplateBody"]["Resources"]["Data"]["DeletionPolicy"]
    assert kept == "Retain" and cfn.list_change_sets(StackName="kept-data")["Summaries"] == []


def test_a_noecho_value_is_masked_wherever_it_flows(cli_run, cfn, write):  # noqa: F811
    template = write("password.json", WITH_PASSWORD)
    given = ["--stack-name", "masked", "--params", write("empty.json", EMPTY_PARAMS), "--template", template]
    created = cli_run("deploy", *given, "--skip-preflight", "--yes")
    assert created.exit_code == 0, created.output
    secret = "hunter2-SECRET"
    diff = cli_run("diff", *given, "--set", f"Password={secret}")
    planned = cli_run("plan", *given, "--set", f"Password={secret}", "--skip-preflight", "--output", "json")
    for result in (diff, planned):
        assert result.exit_code == 0, result.output
        assert secret not in result.output + result.stderr
    # The text goes to stderr beside the JSON: both are masked.
    assert 'Pw.Value: {"password": "****"} → {"password": "****"}' in diff.stdout + planned.stderr
    assert "PwCopy.Value: **** → ****" in diff.stdout + planned.stderr
    values = {(c["logical_id"], p["after"]) for c in json.loads(planned.stdout)["changes"] for p in c["properties"]}
    assert values == {("Pw", '{"password": "****"}'), ("PwCopy", "****")}


def test_stack_tags_are_kept_when_none_are_given_and_shown_when_they_change(cli_run, cfn, write):  # noqa: F811
    given = ["--stack-name", "tagged", "--params", write("empty.json", EMPTY_PARAMS)]
    given += ["--template", write("data.json", WITH_DATA), "--skip-preflight"]
    assert cli_run("deploy", *given, "--tag", "team=qa", "--yes").exit_code == 0

    untagged = cli_run("deploy", *given, "--set", "Setting=two", "--yes")
    assert untagged.exit_code == 0, untagged.output
    assert "Stack tags that change" not in untagged.output
    (stack,) = cfn.describe_stacks(StackName="tagged")["Stacks"]
    assert {t["Key"]: t["Value"] for t in stack["Tags"]} == {"team": "qa", "valohai": "1"}

    retagged = cli_run("plan", *given, "--set", "Setting=three", "--tag", "team=ml", "--output", "json")
    assert retagged.exit_code == 0, retagged.output
    assert json.loads(retagged.stdout)["tags"] == [{"key": "team", "before": "qa", "after": "ml"}]
    assert "Stack tags that change:" in retagged.stderr and "team: qa → ml" in retagged.stderr


def test_a_value_known_only_while_executing_changes_at_deploy_and_is_never_removed(cli_run, cfn, write):  # noqa: F811
    params = write("empty.json", EMPTY_PARAMS)
    given = ["--stack-name", "dynamic", "--params", params, "--skip-preflight"]
    assert cli_run("deploy", *given, "--template", write("one.json", role_named("dynamic-one")), "--yes").exit_code == 0
    renamed = ["--template", write("two.json", role_named("dynamic-two"))]

    planned = cli_run("plan", *given, *renamed, "--output", "json")
    assert planned.exit_code == 0, planned.output
    (profile,) = [c for c in json.loads(planned.stdout)["changes"] if c["logical_id"] == "Profile"]
    (roles,) = profile["properties"]
    assert roles["at_deploy"] and roles["before"] == '["dynamic-one"]', roles
    (line,) = [line for line in planned.stderr.splitlines() if "Profile.Roles: " in line]
    assert line.endswith("(changes at deploy)") and "→ -" not in line, line


def test_the_stack_policy_protects_every_item_of_a_loop_over_a_parameter_without_default(cli_run, cfn, write):  # noqa: F811
    given = ["--stack-name", "looped", "--params", write("empty.json", EMPTY_PARAMS), "--skip-preflight"]
    deployed_loop = cli_run("deploy", *given, "--template", write("loop.json", LOOP), "--set", "Names=a,b,c", "--yes")
    assert deployed_loop.exit_code == 0, deployed_loop.output
    assert protections(cfn, "looped") == (True, ["Bucketa", "Bucketb", "Bucketc"])

    # The transform named in a list, as CloudFormation takes it too.
    listed = write("listed.json", {**LOOP, "Transform": ["AWS::LanguageExtensions"]})
    diff = cli_run("diff", *given[:-1], "--template", listed, "--set", "Names=a,b,c,d")
    assert diff.exit_code == 0, diff.output
    assert "Bucketd" in diff.stdout and "Traceback" not in diff.output


def test_a_policy_document_given_as_json_text_is_reviewed(cli_run, cfn, write):  # noqa: F811
    given = ["--stack-name", "json-text", "--params", write("empty.json", EMPTY_PARAMS), "--skip-preflight"]
    planned = cli_run("plan", *given, "--template", write("role.json", role_named("json-text")))
    assert planned.exit_code == 0, planned.output
    assert "+ iam     Role: Allow s3:GetObject on *" in planned.stdout
    assert cfn.list_stacks(StackStatusFilter=["REVIEW_IN_PROGRESS"])["StackSummaries"] == [] or all(
        s["StackName"] != "json-text"
        for s in cfn.list_stacks(StackStatusFilter=["REVIEW_IN_PROGRESS"])["StackSummaries"]
    ), "a new stack's plan leaves nothing behind"
