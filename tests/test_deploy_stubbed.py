"""What moto cannot produce, played with botocore's Stubber and responses shaped like real CloudFormation's:
a resource failing and the rollback after it, a change set replacing the database, a stack left in
ROLLBACK_COMPLETE, a stack still in progress, Ctrl-C while following; and a throttled call retried."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import ANY, Stubber
from cfn import REPO
from click.testing import CliRunner

from valohai_cfn import cli as cli_module
from valohai_cfn import deploy as deploy_module
from valohai_cfn.aws import RETRIES
from valohai_cfn.cli import cli
from valohai_cfn.deploy import DeployError, DeployRequest, Plan, StoppedWatching, deploy, plan_for

STACK = "valohai"
STACK_ID = "arn:aws:cloudformation:eu-west-1:111111111111:stack/valohai/5b1a3c30-0000-11ef-aaaa-0a1b2c3d4e5f"
CHANGE_SET_ID = (
    "arn:aws:cloudformation:eu-west-1:111111111111:changeSet/valohai-cfn-1/0c8b9e0e-1111-4a4a-bbbb-123456789abc"
)
# Events of "this" deploy are newer than its start, however long the test session has run.
T0 = datetime.now(timezone.utc) + timedelta(hours=1)


@pytest.fixture
def cfn():
    client = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    monkeypatch.setattr(deploy_module.time, "sleep", lambda _seconds: None)


def stack(status: str, **extra) -> dict:
    return {"Stacks": [{"StackName": STACK, "StackId": STACK_ID, "CreationTime": T0, "StackStatus": status, **extra}]}


def event(n: int, logical_id: str, status: str, reason: str = "", resource_type: str = "AWS::RDS::DBInstance") -> dict:
    is_stack = logical_id == STACK
    e = {
        "StackId": STACK_ID,
        "EventId": f"event-{n}",
        "StackName": STACK,
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": STACK_ID if is_stack else f"{logical_id.lower()}-physical",
        "ResourceType": "AWS::CloudFormation::Stack" if is_stack else resource_type,
        "Timestamp": T0 + timedelta(seconds=n),
        "ResourceStatus": status,
    }
    if reason:
        e["ResourceStatusReason"] = reason
    return e


def events(*items: dict) -> dict:
    return {"StackEvents": list(reversed(items))}  # CloudFormation lists newest first


def change_set(status: str, changes: list[dict], reason: str = "") -> dict:
    response = {
        "ChangeSetName": "valohai-cfn-1",
        "ChangeSetId": CHANGE_SET_ID,
        "StackId": STACK_ID,
        "StackName": STACK,
        "Status": status,
        "ExecutionStatus": "AVAILABLE" if status == "CREATE_COMPLETE" else "UNAVAILABLE",
        "Changes": changes,
    }
    if reason:
        response["StatusReason"] = reason
    return response


# What DescribeChangeSet says right after CreateChangeSet: still being computed.
CREATING = change_set("CREATE_IN_PROGRESS", [])


def resource_change(
    action: str, logical_id: str, resource_type: str, replacement: str | None = None, details: list | None = None
) -> dict:
    rc = {"Action": action, "LogicalResourceId": logical_id, "ResourceType": resource_type, "Details": details or []}
    if replacement:
        rc["Replacement"] = replacement
    return {"Type": "Resource", "ResourceChange": rc}


DATABASE_REPLACED = resource_change(
    "Modify",
    "Database",
    "AWS::RDS::DBInstance",
    "True",
    [
        {
            "Target": {"Attribute": "Properties", "Name": "DBInstanceIdentifier", "RequiresRecreation": "Always"},
            "Evaluation": "Static",
            "ChangeSource": "DirectModification",
        }
    ],
)
INSTANCE_MODIFIED = resource_change(
    "Modify",
    "RoiInstance",
    "AWS::EC2::Instance",
    "False",
    [
        {
            "Target": {"Attribute": "Properties", "Name": "InstanceType", "RequiresRecreation": "Never"},
            "Evaluation": "Static",
            "ChangeSource": "DirectModification",
        }
    ],
)


def request(**overrides) -> DeployRequest:
    fields = {
        "stack_name": STACK,
        "template_body": "{}",
        "template_defaults": {"Domain": None, "RoiInstanceType": "m5a.xlarge"},
        "parameters": {"Domain": "valohai.example.com"},
    }
    return DeployRequest(**{**fields, **overrides})


def expect_update_change_set(cfn, changes: list[dict]) -> None:
    s = cfn.stubber
    s.add_response(
        "describe_stacks",
        stack(
            "UPDATE_COMPLETE",
            Parameters=[
                {"ParameterKey": "Domain", "ParameterValue": "valohai.example.com"},
                {"ParameterKey": "RoiInstanceType", "ParameterValue": "m5a.xlarge"},
            ],
        ),
        {"StackName": STACK},
    )
    s.add_response(
        "create_change_set",
        {"Id": CHANGE_SET_ID, "StackId": STACK_ID},
        {
            "StackName": STACK,
            "ChangeSetName": ANY,
            "ChangeSetType": "UPDATE",
            "Capabilities": ["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            "Parameters": [
                {"ParameterKey": "Domain", "ParameterValue": "valohai.example.com"},
                {"ParameterKey": "RoiInstanceType", "UsePreviousValue": True},
            ],
            "Tags": [{"Key": "valohai", "Value": "1"}],
            "Description": ANY,
            "TemplateBody": "{}",
        },
    )
    s.add_response("describe_change_set", CREATING, {"ChangeSetName": CHANGE_SET_ID})
    s.add_response("describe_change_set", change_set("CREATE_COMPLETE", changes), {"ChangeSetName": CHANGE_SET_ID})
    s.add_response("describe_change_set", change_set("CREATE_COMPLETE", changes), {"ChangeSetName": CHANGE_SET_ID})


def test_plans_follow_the_stack_status():
    assert plan_for(None) is Plan.CREATE
    assert plan_for("REVIEW_IN_PROGRESS") is Plan.CREATE
    assert plan_for("UPDATE_ROLLBACK_COMPLETE") is Plan.UPDATE
    assert plan_for("ROLLBACK_COMPLETE") is Plan.RECREATE
    assert plan_for("UPDATE_IN_PROGRESS") is Plan.WAIT
    assert plan_for("UPDATE_ROLLBACK_FAILED") is Plan.REFUSE


def test_replacing_the_database_is_refused_without_allow_replace(cfn):
    expect_update_change_set(cfn, [DATABASE_REPLACED, INSTANCE_MODIFIED])
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET_ID})
    out: list[str] = []
    with pytest.raises(DeployError) as refused:
        deploy(cfn, request(), echo=out.append, confirm=lambda _q: True)
    message = str(refused.value)
    assert (
        "Database (AWS::RDS::DBInstance) would be replaced (Replacement: True), forced by DBInstanceIdentifier"
        in message
    )
    assert "RoiInstance" not in message and "Nothing was changed" in message
    assert any("Modify  Database" in line and "True" in line for line in "\n".join(out).splitlines())


def test_replacing_the_database_goes_ahead_with_allow_replace(cfn):
    expect_update_change_set(cfn, [DATABASE_REPLACED])
    outcome = deploy(cfn, request(allow_replace=True), echo=lambda _m: None, confirm=None)
    assert outcome == "planned", "allowed, then stopped only because nobody could confirm"


def test_a_failed_resource_and_its_rollback_report_the_root_cause(cfn):
    expect_update_change_set(cfn, [INSTANCE_MODIFIED])
    s = cfn.stubber
    s.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET_ID, "ClientRequestToken": ANY})
    # The cancellation of Queue comes first here: events in the same second can be listed in either order.
    failing = [
        event(1, STACK, "UPDATE_IN_PROGRESS", "User Initiated"),
        event(2, "RoiInstance", "UPDATE_IN_PROGRESS", resource_type="AWS::EC2::Instance"),
        event(3, "Queue", "UPDATE_IN_PROGRESS", resource_type="AWS::ElastiCache::ReplicationGroup"),
        event(
            4, "Queue", "UPDATE_FAILED", "Resource update cancelled", resource_type="AWS::ElastiCache::ReplicationGroup"
        ),
        event(
            5,
            "RoiInstance",
            "UPDATE_FAILED",
            'Resource handler returned message: "The requested configuration is currently not supported."',
            resource_type="AWS::EC2::Instance",
        ),
        event(
            6, STACK, "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [Queue, RoiInstance]."
        ),
    ]
    rolled_back = [
        *failing,
        event(7, "RoiInstance", "UPDATE_COMPLETE", resource_type="AWS::EC2::Instance"),
        event(8, STACK, "UPDATE_ROLLBACK_COMPLETE"),
    ]
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(*failing[:3]), {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("UPDATE_ROLLBACK_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(*failing), {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(*rolled_back), {"StackName": STACK_ID})
    out: list[str] = []
    with pytest.raises(DeployError, match="ended in UPDATE_ROLLBACK_COMPLETE"):
        deploy(cfn, request(), echo=out.append, confirm=lambda _q: True)
    text = "\n".join(out)
    assert (
        'Root cause: RoiInstance (AWS::EC2::Instance) UPDATE_FAILED: Resource handler returned message: "The requested'
        in text
    )
    event_lines = [line for line in out if not line.startswith("Root cause")]
    for logical_id, status in (
        ("Queue", "UPDATE_FAILED"),
        ("RoiInstance", "UPDATE_FAILED"),
        ("RoiInstance", "UPDATE_COMPLETE"),
    ):
        assert sum(f"{status} " in line and f" {logical_id} (" in line for line in event_lines) == 1, "each event once"
    assert any(line.endswith("0 done, 0 in progress, 2 failed; stack UPDATE_ROLLBACK_IN_PROGRESS") for line in out)


def test_rollback_complete_must_be_deleted_first(cfn):
    cfn.stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    with pytest.raises(DeployError) as refused:
        deploy(cfn, request(), echo=lambda _m: None, confirm=lambda _q: True)
    assert "ROLLBACK_COMPLETE" in str(refused.value)
    assert "valohai-cfn delete valohai" in str(refused.value) and "--recreate-failed" in str(refused.value)


def test_a_stack_in_progress_is_waited_for_then_deployed(cfn):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    s.add_response("describe_stack_events", events(event(1, "RoiInstance", "UPDATE_IN_PROGRESS")), {"StackName": STACK})
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    s.add_response(
        "describe_stack_events",
        events(event(1, "RoiInstance", "UPDATE_IN_PROGRESS"), event(2, "RoiInstance", "UPDATE_COMPLETE")),
        {"StackName": STACK},
    )
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE", Parameters=[]), {"StackName": STACK})
    s.add_response("create_change_set", {"Id": CHANGE_SET_ID, "StackId": STACK_ID}, None)
    no_changes = change_set(
        "FAILED",
        [],
        "The submitted information didn't contain changes. Submit different information to create a change set.",
    )
    s.add_response("describe_change_set", CREATING, {"ChangeSetName": CHANGE_SET_ID})
    s.add_response("describe_change_set", no_changes, {"ChangeSetName": CHANGE_SET_ID})
    s.add_response("describe_change_set", no_changes, {"ChangeSetName": CHANGE_SET_ID})
    s.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET_ID})
    out: list[str] = []
    assert deploy(cfn, request(), echo=out.append, confirm=lambda _q: True) == "up-to-date"
    assert "waiting for it to settle" in out[0]
    assert any("1 done, 0 in progress" in line for line in out)


def test_ctrl_c_while_following_leaves_the_stack_alone(cfn, monkeypatch):
    expect_update_change_set(cfn, [INSTANCE_MODIFIED])
    s = cfn.stubber
    s.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET_ID, "ClientRequestToken": ANY})
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(event(1, STACK, "UPDATE_IN_PROGRESS")), {"StackName": STACK_ID})

    def interrupt(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy_module.time, "sleep", interrupt)
    with pytest.raises(StoppedWatching) as stopped:
        deploy(cfn, request(), echo=lambda _m: None, confirm=lambda _q: True)
    assert "valohai-cfn status valohai --watch" in str(stopped.value)


THROTTLED = b"""<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>
  <RequestId>2b8a9c1e-0000-4000-8000-000000000001</RequestId>
</ErrorResponse>"""
DESCRIBED = b"""<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
  <DescribeStacksResult><Stacks><member>
    <StackName>valohai</StackName><StackId>%s</StackId>
    <CreationTime>2026-11-25T00:00:00.000Z</CreationTime><StackStatus>UPDATE_COMPLETE</StackStatus>
  </member></Stacks></DescribeStacksResult>
  <ResponseMetadata><RequestId>2b8a9c1e-0000-4000-8000-000000000002</RequestId></ResponseMetadata>
</DescribeStacksResponse>""" % STACK_ID.encode()


def test_a_throttled_call_is_retried():
    """Stubber answers before botocore's retry logic runs, so here the raw HTTP answers of real
    CloudFormation (a 400 Throttling, then the result) are given at `before-send`, where retries apply."""
    client = boto3.client(
        "cloudformation", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b", config=RETRIES
    )
    answers = [(400, THROTTLED), (400, THROTTLED), (200, DESCRIBED)]
    sent = []

    def answer(request, **_kwargs):
        sent.append(request.url)
        status, body = answers[len(sent) - 1]
        return AWSResponse(request.url, status, {"Content-Type": "text/xml"}, _Raw(body))

    client.meta.events.register("before-send.cloudformation.DescribeStacks", answer)
    assert deploy_module.stack_status(client, STACK) == "UPDATE_COMPLETE"
    assert len(sent) == 3


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_kwargs):
        yield self.body


# -- the same paths through the CLI: exit codes and messages ----------------------------------------


@pytest.fixture
def stubbed_cli(cfn, monkeypatch):
    """The CLI with its CloudFormation client swapped for the stubbed one; preflight is off (no EC2 stubs)."""
    monkeypatch.setattr(cli_module, "_aws", lambda *_args: {"cloudformation": cfn}.__getitem__)
    params = REPO / "params" / "example.json"

    def invoke(*args: str):
        return CliRunner().invoke(cli, [*args, "--stack-name", STACK, "--params", str(params), "--skip-preflight"])

    return invoke


def test_cli_rollback_complete_exits_1_with_how_to_fix(stubbed_cli, cfn):
    cfn.stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    result = stubbed_cli("deploy", "--yes")
    assert result.exit_code == 1
    assert (
        result.output.startswith("Error: stack valohai is ROLLBACK_COMPLETE") and "--recreate-failed" in result.output
    )


def expect_cli_update(cfn, changes: list[dict]) -> None:
    """The calls of a CLI update up to the change set; the CLI sends the real template and parameters."""
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE", Parameters=[]), {"StackName": STACK})
    s.add_response("create_change_set", {"Id": CHANGE_SET_ID, "StackId": STACK_ID}, None)
    s.add_response("describe_change_set", CREATING, {"ChangeSetName": CHANGE_SET_ID})
    s.add_response("describe_change_set", change_set("CREATE_COMPLETE", changes), {"ChangeSetName": CHANGE_SET_ID})
    s.add_response("describe_change_set", change_set("CREATE_COMPLETE", changes), {"ChangeSetName": CHANGE_SET_ID})


def test_cli_refuses_database_replacement(stubbed_cli, cfn):
    expect_cli_update(cfn, [DATABASE_REPLACED])
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET_ID})
    result = stubbed_cli("deploy", "--yes")
    assert result.exit_code == 1
    assert "Error: This change would lose data; refusing without --allow-replace:" in result.output
    assert "Database (AWS::RDS::DBInstance) would be replaced" in result.output


def test_cli_failed_update_exits_1_with_root_cause(stubbed_cli, cfn):
    expect_cli_update(cfn, [INSTANCE_MODIFIED])
    s = cfn.stubber
    s.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET_ID, "ClientRequestToken": ANY})
    failed = [
        event(
            1,
            "RoiInstance",
            "UPDATE_FAILED",
            "Instance type not supported in this zone",
            resource_type="AWS::EC2::Instance",
        ),
        event(2, STACK, "UPDATE_ROLLBACK_COMPLETE"),
    ]
    s.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(*failed), {"StackName": STACK_ID})
    result = stubbed_cli("deploy", "--yes")
    assert result.exit_code == 1
    assert "Root cause: RoiInstance (AWS::EC2::Instance) UPDATE_FAILED: Instance type not supported" in result.output
    assert result.output.rstrip().endswith("Error: stack valohai ended in UPDATE_ROLLBACK_COMPLETE")


def test_cli_ctrl_c_exits_130_with_resume_hint(stubbed_cli, cfn, monkeypatch):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    s.add_response("describe_stack_events", events(event(1, STACK, "UPDATE_IN_PROGRESS")), {"StackName": STACK})

    def interrupt(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy_module.time, "sleep", interrupt)
    result = stubbed_cli("deploy", "--yes")
    assert result.exit_code == 130
    assert "Resume watching with: valohai-cfn status valohai --watch" in result.output


def test_recreate_failed_deletes_then_creates(cfn):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    s.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    s.add_response("delete_stack", {}, {"StackName": STACK_ID, "ClientRequestToken": ANY})
    s.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(event(1, STACK, "DELETE_COMPLETE")), {"StackName": STACK_ID})
    s.add_response(
        "create_change_set",
        {"Id": CHANGE_SET_ID, "StackId": STACK_ID},
        {
            "StackName": STACK,
            "ChangeSetName": ANY,
            "ChangeSetType": "CREATE",
            "Capabilities": ["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            "Parameters": [
                {"ParameterKey": "Domain", "ParameterValue": "valohai.example.com"},
                {"ParameterKey": "RoiInstanceType", "ParameterValue": "m5a.xlarge"},
            ],
            "Tags": [{"Key": "valohai", "Value": "1"}],
            "Description": ANY,
            "TemplateBody": "{}",
        },
    )
    added = [resource_change("Add", "Database", "AWS::RDS::DBInstance")]
    s.add_response("describe_change_set", CREATING, {"ChangeSetName": CHANGE_SET_ID})
    s.add_response("describe_change_set", change_set("CREATE_COMPLETE", added), {"ChangeSetName": CHANGE_SET_ID})
    s.add_response("describe_change_set", change_set("CREATE_COMPLETE", added), {"ChangeSetName": CHANGE_SET_ID})
    out: list[str] = []
    assert deploy(cfn, request(recreate_failed=True), echo=out.append, confirm=None) == "planned"
    assert any("deleting it to create it again" in line for line in out)
    assert any("Stack valohai is deleted" in line for line in out)


class LiveEcho:
    """An echo with a redrawn status line, as the CLI's TerminalEcho has in a terminal."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.statuses: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def status(self, text: str) -> None:
        self.statuses.append(text)


def test_in_a_terminal_the_tally_is_redrawn_every_poll(cfn):
    s = cfn.stubber
    started = events(event(1, "RoiInstance", "UPDATE_IN_PROGRESS"))
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", started, {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", started, {"StackName": STACK_ID})  # nothing new: redrawn all the same
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    done = events(event(1, "RoiInstance", "UPDATE_IN_PROGRESS"), event(2, "RoiInstance", "UPDATE_COMPLETE"))
    s.add_response("describe_stack_events", done, {"StackName": STACK_ID})
    echo = LiveEcho()
    since = T0 - timedelta(seconds=1)
    assert deploy_module.follow(cfn, STACK_ID, since=since, echo=echo) == "UPDATE_COMPLETE"
    assert len(echo.statuses) == 2 and all("0 done, 1 in progress, 0 failed" in t for t in echo.statuses)
    assert echo.lines[-1].endswith("1 done, 0 in progress, 0 failed; stack UPDATE_COMPLETE"), "the last tally stays"
    assert sum("UPDATE_IN_PROGRESS" in line and "RoiInstance" in line for line in echo.lines) == 1


def test_terminal_echo_clears_the_status_line_before_a_line(capsys):
    from valohai_cfn.cli import TerminalEcho

    echo = TerminalEcho()
    echo.status("[00:01] 0 done")
    echo.status("[00:02] 1 done")
    echo("12:00:00  CREATE_COMPLETE  Database")
    assert capsys.readouterr().out == (
        "\r\033[K[00:01] 0 done\r\033[K[00:02] 1 done\r\033[K12:00:00  CREATE_COMPLETE  Database\n"
    )


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        # SignalResource with the failed step as its unique id, as the app instance's boot sends it.
        (
            "Received FAILURE signal with UniqueId read /valohai/database-host",
            "the app instance's boot stopped at: read /valohai/database-host",
        ),
        (
            "Failed to receive 1 resource signal(s) within the specified duration",
            "Failed to receive 1 resource signal(s) within the specified duration: the app instance's boot did not",
        ),
    ],
)
def test_a_failed_boot_is_the_root_cause_in_its_own_words(cfn, reason, shown):
    """Events shaped like real CloudFormation's for a CreationPolicy that failed (the local AWS sends no signal)."""
    expect_update_change_set(cfn, [INSTANCE_MODIFIED])
    s = cfn.stubber
    s.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET_ID, "ClientRequestToken": ANY})
    failed = [
        event(1, STACK, "UPDATE_IN_PROGRESS", "User Initiated"),
        event(2, "RoiInstance", "UPDATE_FAILED", reason, resource_type="AWS::EC2::Instance"),
        event(3, STACK, "UPDATE_ROLLBACK_COMPLETE"),
    ]
    s.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(*failed), {"StackName": STACK_ID})
    lines: list[str] = []
    with pytest.raises(DeployError):
        deploy(cfn, request(), echo=lines.append, confirm=lambda _q: True)
    (cause,) = [line for line in lines if line.startswith("Root cause:")]
    assert cause.startswith("Root cause: RoiInstance (AWS::EC2::Instance) UPDATE_FAILED: " + shown)
    assert "/var/log/cloud-init-output.log" in cause
