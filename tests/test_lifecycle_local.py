"""The lifecycle's promises through the command line, against the local AWS, each case one that broke them:
protections replaced before the review, a delete that lifted termination protection and failed (or was
interrupted), a recreate AWS refuses while termination protection is on, another stack's change set executed,
and what an interruption says it left. Where the local AWS cannot act as CloudFormation does (DeleteStack
refused while termination protection is on, a ROLLBACK_COMPLETE stack, a refused call), botocore hooks
(tests/faults.py) answer as CloudFormation would; everything else is the local AWS.

Small templates (a bucket, a secret, a setting) keep these fast; the installation's own is deployed by
test_deploy_local.py.
"""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner
from faults import (
    NO_DATA,
    UNDELETABLE,
    WITH_DATA,
    ctrl_c,
    deployed,
    enforce_termination_protection,
    error_response,
    on_calls,
    operation_under_way,
    rolled_back_first_create,
)

from valohai_cfn.cli import cli
from valohai_cfn.cli import common as cli_common


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, content in (("data.json", WITH_DATA), ("other.json", NO_DATA), ("empty.json", {"Parameters": {}})):
        paths[name] = tmp_path / name
        paths[name].write_text(json.dumps(content))
    return paths


@pytest.fixture
def cfn(aws_env, local_session):
    return local_session.client("cloudformation", endpoint_url=aws_env.endpoint_url)


@pytest.fixture
def cli_run(aws_env):
    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(
            cli, [*args, "--endpoint-url", aws_env.endpoint_url, "--region", "us-east-1"], input=input
        )

    return run


@pytest.fixture
def hooked(monkeypatch):
    """The CLI's clients, with `install(cfn)` run on its CloudFormation client when it is made."""
    installs = []
    real = cli_common.aws_clients

    def clients(region, profile, endpoint_url):
        made = real(region, profile, endpoint_url)
        cfn = made("cloudformation")
        for install in installs:
            install(cfn)
        return made

    monkeypatch.setattr(cli_common, "aws_clients", clients)
    return installs.append


def protections(cfn, name: str) -> tuple[bool, list[str]]:
    """Termination protection, and the resources the stack policy denies replacing and deleting."""
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    policy = json.loads(cfn.get_stack_policy(StackName=name).get("StackPolicyBody") or "{}")
    denied = [
        r.split("/", 1)[1]
        for s in policy.get("Statement", [])
        if s["Effect"] == "Deny" and {"Update:Replace", "Update:Delete"} <= set(s["Action"])
        for r in s["Resource"]
    ]
    return bool(stack.get("EnableTerminationProtection")), sorted(denied)


# -- protections change only inside an approved execution -----------------------------------------


def test_another_template_refused_or_declined_leaves_the_stack_as_it_was(cli_run, cfn, files, monkeypatch):
    deployed(cfn, "kept-as-it-was")
    before = protections(cfn, "kept-as-it-was")
    assert before == (True, ["Data", "Secret"])
    deploy_other = ["deploy", "--stack-name", "kept-as-it-was", "--params", str(files["empty.json"])]
    deploy_other += ["--template", str(files["other.json"]), "--skip-preflight"]

    refused = cli_run(*deploy_other, "--yes")
    assert refused.exit_code == 1 and "would be removed" in refused.output and "Nothing was changed." in refused.output
    assert "Stack policy applied" not in refused.output
    assert protections(cfn, "kept-as-it-was") == before
    assert cfn.list_change_sets(StackName="kept-as-it-was")["Summaries"] == []

    monkeypatch.setattr(cli_common, "interactive", lambda: True)
    declined = cli_run(*deploy_other, "--allow-replace", input="n\n")
    assert declined.exit_code == 0, declined.output
    assert "Execute change set" in declined.output and "Stack policy applied" not in declined.output
    assert protections(cfn, "kept-as-it-was") == before
    assert cfn.list_change_sets(StackName="kept-as-it-was")["Summaries"] == []


def test_the_policy_message_says_what_the_policy_denies(cli_run, cfn, files):
    result = cli_run(
        "deploy", "--stack-name", "no-data", "--params", str(files["empty.json"]), "--template",
        str(files["other.json"]), "--skip-preflight", "--yes",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "Stack policy applied: it protects nothing (the template has no database, bucket or secret)." in result.output
    )
    assert "database, bucket and secrets cannot" not in result.output
    assert protections(cfn, "no-data") == (True, [])


# -- delete: every input checked first; lifting and deleting one step; a refused delete protects again ------


def test_a_role_arn_that_is_not_one_is_refused_before_any_call(cli_run, cfn, files):
    deployed(cfn, "role-checked")
    result = cli_run("delete", "role-checked", "--force", "--yes", "--role-arn", "not-an-arn")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and "not an IAM role ARN" in result.stderr
    assert protections(cfn, "role-checked") == (True, ["Data", "Secret"])


def test_a_refused_delete_puts_termination_protection_back(cli_run, cfn, files, hooked):
    deployed(cfn, "refused-delete")

    def refuse_delete(client):
        message = "User is not authorized to perform: iam:PassRole on resource: cfn-service"
        client.meta.events.register(
            "before-call.cloudformation.DeleteStack", lambda **_: error_response("AccessDenied", message, 403)
        )

    hooked(refuse_delete)
    result = cli_run("delete", "refused-delete", "--force", "--yes")
    assert result.exit_code == 1 and "AccessDenied" in result.output
    assert protections(cfn, "refused-delete") == (True, ["Data", "Secret"])


def test_ctrl_c_between_lifting_and_deleting_cannot_split_them(cli_run, cfn, files, hooked):
    deployed(cfn, "unsplit")
    hooked(lambda client: on_calls(client, "UpdateTerminationProtection", ctrl_c))
    result = cli_run("delete", "unsplit", "--force", "--yes")
    assert result.exit_code == 130, result.output
    # The local AWS deletes inside the call: Ctrl-C, seen after it, says the delete is done, not that it goes on.
    assert "Interrupted. Stack unsplit was deleted (approved)." in result.output
    assert "goes on in AWS" not in result.output
    live = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == "unsplit"]
    assert {s["StackStatus"] for s in live} == {"DELETE_COMPLETE"}, "lifted, then deleted: one step"


def test_a_delete_that_fails_after_ctrl_c_gets_its_termination_protection_back_from_status(cli_run, cfn, hooked):
    """AWS deletes for minutes: Ctrl-C while following is the normal case, and the delete may fail afterwards.
    The local AWS deletes (and fails) inside the call; a hook shows it going on until the watching stopped."""
    deployed(cfn, "failing-delete", UNDELETABLE)
    watching = [True]
    hooked(lambda client: on_calls(client, "DeleteStack", ctrl_c))
    hooked(lambda client: watching[0] and operation_under_way(client, "failing-delete"))
    stopped = cli_run("delete", "failing-delete", "--force", "--yes")
    assert stopped.exit_code == 130, stopped.output
    assert (
        "Its termination protection stays lifted for the delete; should the delete fail, valohai-cfn status "
        "failing-delete (or delete, or deploy) puts it back." in stopped.output
    )
    (stack,) = cfn.describe_stacks(StackName="failing-delete")["Stacks"]
    assert stack["StackStatus"] == "DELETE_FAILED" and not stack.get("EnableTerminationProtection")

    watching[0] = False
    status = cli_run("status", "failing-delete")
    assert status.exit_code == 0, status.output
    assert "Re-applied: Termination protection is on" in status.output
    assert protections(cfn, "failing-delete")[0] is True


def test_recreate_lifts_termination_protection_as_part_of_the_approved_delete(cli_run, cfn, files, hooked):
    """The local AWS cannot fail a first create nor refuse DeleteStack while termination protection is on;
    hooks play CloudFormation for both (ROLLBACK_COMPLETE, its resources deleted; DeleteStack refused)."""
    first = deployed(cfn, "recreated", NO_DATA)
    hooked(lambda client: enforce_termination_protection(client, cfn))
    hooked(lambda client: rolled_back_first_create(client, cfn, {first}))
    result = cli_run(
        "deploy", "--stack-name", "recreated", "--params", str(files["empty.json"]), "--template",
        str(files["other.json"]), "--skip-preflight", "--yes", "--recreate-failed",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Delete stack recreated" not in result.output, "--yes asks nobody"
    assert "Lifting termination protection" in result.output and "creating it again" in result.output
    assert "lifted for the delete (--recreate-failed)" in result.output and "(--force)" not in result.output
    (stack,) = cfn.describe_stacks(StackName="recreated")["Stacks"]
    assert stack["StackId"] != first and stack["StackStatus"] == "CREATE_COMPLETE"
    assert protections(cfn, "recreated") == (True, [])


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_recreate_interrupted_at_its_execute_says_the_stack_was_created_again(cli_run, cfn, files, hooked, when):
    """Ctrl-C just before or after ExecuteChangeSet of a recreate: the execute is one step with its protections,
    so the stack is created again, and the message must not also say it was not (QA: both were said)."""
    name = f"recreated-stopped-{when}"
    first = deployed(cfn, name, NO_DATA)
    hooked(lambda client: enforce_termination_protection(client, cfn))
    hooked(lambda client: rolled_back_first_create(client, cfn, {first}))
    hooked(lambda client: on_calls(client, "ExecuteChangeSet", ctrl_c, when=when))
    result = cli_run(
        "deploy", "--stack-name", name, "--params", str(files["empty.json"]), "--template",
        str(files["other.json"]), "--skip-preflight", "--yes", "--recreate-failed",
    )  # fmt: skip
    assert result.exit_code == 130, result.output
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackId"] != first and stack["StackStatus"] == "CREATE_COMPLETE"
    assert "was deleted (approved) to be created again" in result.output
    assert "it was not created" not in result.output, result.output
    assert protections(cfn, name) == (True, [])


# -- the change set that runs is the one reviewed, for the stack named ------------------------------


def test_a_change_set_of_another_stack_is_refused(cli_run, cfn, files):
    deployed(cfn, "named-stack")
    planned = cli_run(
        "plan", "--stack-name", "other-stack", "--params", str(files["empty.json"]), "--template",
        str(files["data.json"]), "--skip-preflight", "--keep", "--output", "json",
    )  # fmt: skip
    assert planned.exit_code == 0, planned.output
    arn = json.loads(planned.stdout)["change_set"]["id"]
    result = cli_run("execute", "--stack-name", "named-stack", arn, "--yes")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and "belongs to stack other-stack, not to named-stack" in result.stderr
    assert cfn.describe_stacks(StackName="other-stack")["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    assert cfn.describe_change_set(ChangeSetName=arn)["ExecutionStatus"] == "AVAILABLE"
    assert cfn.describe_stacks(StackName="named-stack")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    # By its name: the named stack has no such change set, which is as wrong an input.
    name = json.loads(planned.stdout)["change_set"]["name"]
    by_name = cli_run("execute", "--stack-name", "named-stack", name, "--yes")
    assert by_name.exit_code == 2, by_name.output
    assert by_name.stderr.splitlines() == [
        f"Error: change set {name} does not exist for stack named-stack: nothing was executed"
    ]


def test_an_update_keeps_what_the_params_file_leaves_out_a_create_needs_it(cli_run, cfn, files, tmp_path):
    required = {**WITH_DATA, "Parameters": {"Setting": {"Type": "String"}, "Other": {"Type": "String"}}}
    required["Resources"] = {
        **WITH_DATA["Resources"],
        "OtherValue": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Name": {"Fn::Sub": "/${AWS::StackName}/other"},
                "Type": "String",
                "Value": {"Ref": "Other"},
            },
        },
    }
    template = tmp_path / "required.json"
    template.write_text(json.dumps(required))
    given = ["--stack-name", "partial", "--params", str(files["empty.json"]), "--template", str(template)]
    missing = cli_run("deploy", *given, "--set", "Setting=one", "--skip-preflight", "--yes")
    assert missing.exit_code == 2, missing.output
    assert missing.stderr.splitlines() == [
        "Error: Other: required (the template has no default and stack partial is created): give it in the "
        "params file or with --set"
    ]
    created = cli_run("deploy", *given, "--set", "Setting=one", "--set", "Other=x", "--skip-preflight", "--yes")
    assert created.exit_code == 0, created.output
    updated = cli_run("deploy", *given, "--set", "Setting=two", "--skip-preflight", "--yes")
    assert updated.exit_code == 0, updated.output
    (stack,) = cfn.describe_stacks(StackName="partial")["Stacks"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {"Setting": "two", "Other": "x"}


# -- interruptions say what is true ----------------------------------------------------------------


def test_ctrl_c_during_the_execute_call_says_the_operation_goes_on(cli_run, cfn, files, hooked):
    hooked(lambda client: on_calls(client, "ExecuteChangeSet", ctrl_c, when="before"))
    hooked(lambda client: operation_under_way(client, "executing"))
    result = cli_run(
        "deploy", "--stack-name", "executing", "--params", str(files["empty.json"]), "--template",
        str(files["data.json"]), "--skip-preflight", "--yes",
    )  # fmt: skip
    assert result.exit_code == 130, result.output
    assert "Stopped watching. The stack operation goes on in AWS." in result.output
    assert "Resume watching with: valohai-cfn status executing --watch" in result.output
    assert protections(cfn, "executing") == (True, ["Data", "Secret"])


def test_ctrl_c_during_change_set_creation_names_what_was_left(cli_run, cfn, files, hooked):
    hooked(lambda client: on_calls(client, "CreateChangeSet", ctrl_c))
    result = cli_run(
        "deploy", "--stack-name", "left-behind", "--params", str(files["empty.json"]), "--template",
        str(files["data.json"]), "--skip-preflight", "--yes",
    )  # fmt: skip
    assert result.exit_code == 130, result.output
    (summary,) = cfn.list_change_sets(StackName="left-behind")["Summaries"]
    name = summary["ChangeSetName"]
    assert f"Change set {name} of stack left-behind was left, not executed" in result.output
    assert "empty stack left-behind (REVIEW_IN_PROGRESS)" in result.output
    assert f"valohai-cfn execute --stack-name left-behind {name}" in result.output
    assert (
        "aws cloudformation delete-change-set" in result.output
        and "delete-stack --stack-name left-behind" in result.output
    )


def test_ctrl_c_at_the_approval_prompt_names_what_was_left(cli_run, cfn, files, monkeypatch):
    def interrupted(*_args, **_kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise click.Abort from None  # as click.confirm turns Ctrl-C into Abort

    monkeypatch.setattr(cli_common, "interactive", lambda: True)
    monkeypatch.setattr(click, "confirm", interrupted)
    result = cli_run(
        "deploy", "--stack-name", "at-the-prompt", "--params", str(files["empty.json"]), "--template",
        str(files["data.json"]), "--skip-preflight",
    )  # fmt: skip
    assert result.exit_code == 130, result.output
    (summary,) = cfn.list_change_sets(StackName="at-the-prompt")["Summaries"]
    assert f"Change set {summary['ChangeSetName']} of stack at-the-prompt was left, not executed" in result.output
