"""What the local AWS cannot produce, played with botocore's Stubber and responses shaped like real
CloudFormation's: statuses only failures reach (DELETE_FAILED, ROLLBACK_FAILED, UPDATE_FAILED), a resource
failing and the rollback after it, a change set replacing the database with property values, the stack
policy relaxed for an approved replacement and put back, Ctrl-C and a lost connection while following,
throttling, events of a machine whose clock is off, and drift detection."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber
from cfn import REPO
from click.testing import CliRunner

from valohai_cfn import deploy as deploy_module
from valohai_cfn.aws import RETRIES
from valohai_cfn.cli import cli
from valohai_cfn.cli import common as cli_common
from valohai_cfn.deploy import (
    ChangeSet,
    DeployError,
    EventFollower,
    Plan,
    Protection,
    Protections,
    StoppedWatching,
    describe_change_set,
    ensure_protections,
    stack_state,
)
from valohai_cfn.lifecycle import Asked, Policies, Promises, Question

STACK = "valohai"
STACK_ID = "arn:aws:cloudformation:eu-west-1:111111111111:stack/valohai/5b1a3c30-0000-11ef-aaaa-0a1b2c3d4e5f"
CHANGE_SET_ID = (
    "arn:aws:cloudformation:eu-west-1:111111111111:changeSet/valohai-cfn-1/0c8b9e0e-1111-4a4a-bbbb-123456789abc"
)
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
POLICY = json.dumps({"Statement": [{"Effect": "Deny", "Action": "Update:*", "Resource": "LogicalResourceId/Database"}]})
RELAXED = json.dumps({"Statement": [{"Effect": "Allow", "Action": "Update:*", "Resource": "*"}]})


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


def event(n: int, logical_id: str, status: str, reason: str = "", resource_type: str = "AWS::RDS::DBInstance", **extra):
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
        **extra,
    }
    if reason:
        e["ResourceStatusReason"] = reason
    return e


def events(*items: dict, **extra) -> dict:
    return {"StackEvents": list(reversed(items)), **extra}  # CloudFormation lists newest first


def resource_change(action: str, logical_id: str, resource_type: str, replacement: str | None = None, details=None):
    rc = {"Action": action, "LogicalResourceId": logical_id, "ResourceType": resource_type, "Details": details or []}
    if replacement:
        rc["Replacement"] = replacement
    return {"Type": "Resource", "ResourceChange": rc}


# DescribeChangeSet with IncludePropertyValues: each detail's Target carries BeforeValue and AfterValue.
DATABASE_REPLACED = resource_change(
    "Modify",
    "Database",
    "AWS::RDS::DBInstance",
    "True",
    [
        {
            "Target": {
                "Attribute": "Properties",
                "Name": "DBInstanceIdentifier",
                "Path": "/Properties/DBInstanceIdentifier",
                "RequiresRecreation": "Always",
                "BeforeValue": "valohai-database",
                "AfterValue": "renamed-database",
                "AttributeChangeType": "Modify",
            },
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
            "Target": {
                "Attribute": "Properties",
                "Name": "InstanceType",
                "Path": "/Properties/InstanceType",
                "RequiresRecreation": "Never",
                "BeforeValue": "m5a.xlarge",
                "AfterValue": "m5a.2xlarge",
            },
            "Evaluation": "Static",
            "ChangeSource": "ParameterReference",
        },
        {  # the same property again, for its other cause: listed once
            "Target": {"Attribute": "Properties", "Name": "InstanceType", "RequiresRecreation": "Never"},
            "Evaluation": "Dynamic",
            "ChangeSource": "DirectModification",
        },
    ],
)


def described_change_set(changes: list[dict], status: str = "CREATE_COMPLETE") -> dict:
    return {
        "ChangeSetName": "valohai-cfn-1",
        "ChangeSetId": CHANGE_SET_ID,
        "StackId": STACK_ID,
        "StackName": STACK,
        "Status": status,
        "ExecutionStatus": "AVAILABLE",
        "Changes": changes,
    }


def a_change_set(*changes: dict) -> ChangeSet:
    return ChangeSet(
        CHANGE_SET_ID,
        "valohai-cfn-1",
        STACK_ID,
        STACK,
        "CREATE_COMPLETE",
        kind="UPDATE",
        changes=[deploy_module._change(c) for c in changes],
    )


class Recorder:
    """A deploy.Progress and lifecycle.Reporter that keeps what it was given."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        self.tallies: list = []
        self.notes: list = []

    def events(self, new: list[dict]) -> None:
        self.seen += new

    def tally(self, tally) -> None:
        self.tallies.append(tally)

    def note(self, note) -> None:
        self.notes.append(note)

    @contextlib.contextmanager
    def progress(self):
        yield self


def execute(cfn, change_set: ChangeSet, *, progress: Recorder, policies: Policies, disable_rollback: bool = False):
    """lifecycle.Promises.execute of a change set approved for its stack (termination protection asked)."""
    promises = Promises(cfn, lambda _question: True, progress)
    assert promises.ask(Question(Asked.EXECUTE, STACK, STACK_ID, change_set))
    with promises.interruptible():  # as every step runs it: Ctrl-C says what goes on
        return promises.execute(change_set, termination=True, policies=policies, disable_rollback=disable_rollback)


# The policies of an update that replaces nothing, and of one approved to replace the database.
KEPT = Policies(POLICY, POLICY, POLICY)
RELAXING = Policies(RELAXED, POLICY, POLICY, frozenset({"Database"}))


# -- what each status means ------------------------------------------------------------------------


def resources(*items: tuple[str, str, str]) -> dict:
    return {
        "StackResourceSummaries": [
            {
                "LogicalResourceId": logical_id,
                "ResourceType": kind,
                "ResourceStatus": status,
                "LastUpdatedTimestamp": T0,
            }
            for logical_id, kind, status in items
        ]
    }


@pytest.mark.parametrize(
    ("status", "plan", "words"),
    [
        ("UPDATE_ROLLBACK_COMPLETE", Plan.UPDATE, "rolled back"),
        ("UPDATE_FAILED", Plan.UPDATE, "rollback-stack"),
        ("CREATE_FAILED", Plan.UPDATE, "retries what failed"),
        ("UPDATE_IN_PROGRESS", Plan.WAIT, "under way"),
        ("REVIEW_IN_PROGRESS", Plan.CREATE, "never executed"),
        ("UPDATE_ROLLBACK_FAILED", Plan.REFUSE, "continue-update-rollback"),
        ("DELETE_FAILED", Plan.REFUSE, "valohai-cfn delete again"),
    ],
)
def test_each_status_is_named_for_what_it_is(cfn, status, plan, words):
    cfn.stubber.add_response("describe_stacks", stack(status), {"StackName": STACK})
    state = stack_state(cfn, STACK)
    assert state.plan is plan and words in state.meaning


def test_a_failed_first_create_is_recreated_only_when_it_holds_no_data(cfn):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    s.add_response(
        "list_stack_resources",
        resources(
            ("Database", "AWS::RDS::DBInstance", "DELETE_COMPLETE"), ("DataBucket", "AWS::S3::Bucket", "DELETE_SKIPPED")
        ),
        {"StackName": STACK_ID},
    )
    assert stack_state(cfn, STACK).plan is Plan.RECREATE
    # A rollback that failed at the database leaves it in the stack: deleting the stack would delete it.
    s.add_response("describe_stacks", stack("ROLLBACK_FAILED"), {"StackName": STACK})
    s.add_response(
        "list_stack_resources",
        resources(("Database", "AWS::RDS::DBInstance", "DELETE_FAILED")),
        {"StackName": STACK_ID},
    )
    state = stack_state(cfn, STACK)
    assert state.plan is Plan.REFUSE and "still holds Database" in state.meaning


# -- the change set ------------------------------------------------------------------------------


def test_property_values_and_the_data_loss_they_cause_are_read(cfn):
    cfn.stubber.add_response(
        "describe_change_set",
        described_change_set([DATABASE_REPLACED, INSTANCE_MODIFIED]),
        {"ChangeSetName": CHANGE_SET_ID, "IncludePropertyValues": True},
    )
    change_set = describe_change_set(cfn, CHANGE_SET_ID)
    database, instance = change_set.changes
    assert [(p.path, p.before, p.after) for p in instance.properties] == [("InstanceType", "m5a.xlarge", "m5a.2xlarge")]
    assert database.forced_by == ("DBInstanceIdentifier",)
    assert [c.logical_id for c in change_set.data_loss] == ["Database"]


# -- executing: protections first, whatever happens to the watching -------------------------------


def expect_execute(s, *, protected: bool, policy: str | None, during: str = POLICY, rollback: bool = False) -> None:
    """An update in one step: the policy it runs under (set only when the stack's is not that already), then
    ExecuteChangeSet, then termination protection (after the execute: a refused one changes nothing)."""
    s.add_response("describe_stack_events", events(event(1, STACK, "UPDATE_COMPLETE")), {"StackName": STACK_ID})
    s.add_response("get_stack_policy", {"StackPolicyBody": policy} if policy else {}, {"StackName": STACK_ID})
    if policy != during:
        s.add_response("set_stack_policy", {}, {"StackName": STACK_ID, "StackPolicyBody": during})
    s.add_response(
        "execute_change_set",
        {},
        {"ChangeSetName": CHANGE_SET_ID, "ClientRequestToken": ANY, "DisableRollback": rollback},
    )
    s.add_response(
        "describe_stacks", stack("UPDATE_IN_PROGRESS", EnableTerminationProtection=protected), {"StackName": STACK_ID}
    )
    if not protected:
        s.add_response(
            "update_termination_protection",
            {"StackId": STACK_ID},
            {"EnableTerminationProtection": True, "StackName": STACK_ID},
        )


def interrupt_the_watch(monkeypatch) -> None:
    def interrupt(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy_module.time, "sleep", interrupt)


def test_ctrl_c_while_following_leaves_a_protected_stack(cfn, monkeypatch):
    s = cfn.stubber
    expect_execute(s, protected=False, policy=None)
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(event(2, STACK, "UPDATE_IN_PROGRESS")), {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})  # looked at once more
    interrupt_the_watch(monkeypatch)
    with pytest.raises(StoppedWatching) as stopped:
        execute(cfn, a_change_set(INSTANCE_MODIFIED), progress=Recorder(), policies=KEPT)
    assert "valohai-cfn status valohai --watch" in str(stopped.value)
    # The Stubber's queue is empty only if UpdateTerminationProtection and SetStackPolicy were called: both
    # happened with the execute, before the first poll, so no interruption of the watch can skip them.


def test_ensuring_protections_only_mends_what_is_missing(cfn):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE", EnableTerminationProtection=True), {"StackName": STACK})
    s.add_response("get_stack_policy", {"StackPolicyBody": POLICY}, {"StackName": STACK})
    assert ensure_protections(cfn, STACK, Protections(True, POLICY)) == []
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE", EnableTerminationProtection=False), {"StackName": STACK})
    s.add_response(
        "update_termination_protection",
        {"StackId": STACK_ID},
        {"EnableTerminationProtection": True, "StackName": STACK},
    )
    s.add_response("get_stack_policy", {"StackPolicyBody": RELAXED}, {"StackName": STACK})  # edited by hand
    s.add_response("set_stack_policy", {}, {"StackName": STACK, "StackPolicyBody": POLICY})
    assert ensure_protections(cfn, STACK, Protections(True, POLICY)) == [
        Protection.TERMINATION,
        Protection.STACK_POLICY,
    ]


def test_allow_replace_relaxes_the_policy_for_one_update_and_puts_it_back_on_ctrl_c(cfn, monkeypatch):
    s = cfn.stubber
    expect_execute(s, protected=True, policy=POLICY, during=RELAXED)
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(event(2, STACK, "UPDATE_IN_PROGRESS")), {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})  # looked at once more
    s.add_response("set_stack_policy", {}, {"StackName": STACK_ID, "StackPolicyBody": POLICY})  # put back
    interrupt_the_watch(monkeypatch)
    with pytest.raises(StoppedWatching) as stopped:
        execute(cfn, a_change_set(DATABASE_REPLACED), progress=Recorder(), policies=RELAXING)
    assert "The stack policy denies replacing Database again" in str(stopped.value)


def test_allow_replace_puts_the_policy_back_when_the_execute_is_refused(cfn):
    s = cfn.stubber
    s.add_response("describe_stack_events", events(event(1, STACK, "UPDATE_COMPLETE")), {"StackName": STACK_ID})
    s.add_response("get_stack_policy", {"StackPolicyBody": POLICY}, {"StackName": STACK_ID})
    s.add_response("set_stack_policy", {}, {"StackName": STACK_ID, "StackPolicyBody": RELAXED})
    s.add_client_error(
        "execute_change_set",
        "InvalidChangeSetStatus",
        "ChangeSet [valohai-cfn-1] cannot be executed in its current status",
    )
    s.add_response("set_stack_policy", {}, {"StackName": STACK_ID, "StackPolicyBody": POLICY})  # as it was
    with pytest.raises(DeployError, match=r"cannot be executed in its current status\. Stack valohai is as it was\."):
        execute(cfn, a_change_set(DATABASE_REPLACED), progress=Recorder(), policies=RELAXING)


def test_allow_replace_puts_the_policy_back_when_aws_is_out_of_reach_at_the_execute(cfn, monkeypatch):
    s = cfn.stubber
    s.add_response("describe_stack_events", events(event(1, STACK, "UPDATE_COMPLETE")), {"StackName": STACK_ID})
    s.add_response("get_stack_policy", {"StackPolicyBody": POLICY}, {"StackName": STACK_ID})
    s.add_response("set_stack_policy", {}, {"StackName": STACK_ID, "StackPolicyBody": RELAXED})
    s.add_response("set_stack_policy", {}, {"StackName": STACK_ID, "StackPolicyBody": POLICY})

    def unreachable(**_kwargs):
        raise EndpointConnectionError(endpoint_url="https://cloudformation.eu-west-1.amazonaws.com/")

    monkeypatch.setattr(cfn, "execute_change_set", unreachable)
    with pytest.raises(EndpointConnectionError):
        execute(cfn, a_change_set(DATABASE_REPLACED), progress=Recorder(), policies=RELAXING)
    # The Stubber's queue is empty only if the relaxed policy was replaced by the kept one.


def test_a_failed_resource_and_its_rollback_report_the_root_cause(cfn):
    s = cfn.stubber
    expect_execute(s, protected=True, policy=POLICY)
    # The cancellation of Queue comes first here: events in the same second can be listed in either order.
    failing = [
        event(2, STACK, "UPDATE_IN_PROGRESS", "User Initiated"),
        event(3, "RoiInstance", "UPDATE_IN_PROGRESS", resource_type="AWS::EC2::Instance"),
        event(4, "Queue", "UPDATE_IN_PROGRESS", resource_type="AWS::ElastiCache::ReplicationGroup"),
        event(
            5, "Queue", "UPDATE_FAILED", "Resource update cancelled", resource_type="AWS::ElastiCache::ReplicationGroup"
        ),
        event(
            6,
            "RoiInstance",
            "UPDATE_FAILED",
            'Resource handler returned message: "The requested configuration is currently not supported."',
            resource_type="AWS::EC2::Instance",
        ),
        event(
            7, STACK, "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [Queue, RoiInstance]."
        ),
    ]
    rolled_back = [
        *failing,
        event(8, "RoiInstance", "UPDATE_COMPLETE", resource_type="AWS::EC2::Instance"),
        event(9, STACK, "UPDATE_ROLLBACK_COMPLETE"),
    ]
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(*failing[:3]), {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("UPDATE_ROLLBACK_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(*failing), {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(*rolled_back), {"StackName": STACK_ID})
    progress = Recorder()
    outcome = execute(cfn, a_change_set(INSTANCE_MODIFIED), progress=progress, policies=KEPT)
    assert outcome.status == "UPDATE_ROLLBACK_COMPLETE"
    cause = outcome.root_cause
    assert (cause["LogicalResourceId"], cause["ResourceStatus"]) == ("RoiInstance", "UPDATE_FAILED")
    assert [e["EventId"] for e in progress.seen] == [e["EventId"] for e in rolled_back], "each event once, in order"
    assert any(t.failed == 2 and t.total == 1 for t in progress.tallies)


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
def test_a_failed_boot_is_the_root_cause_in_its_own_words(reason, shown):
    """Events shaped like real CloudFormation's for a CreationPolicy that failed (the local AWS sends no signal)."""
    failed = [
        event(1, STACK, "UPDATE_IN_PROGRESS", "User Initiated"),
        event(2, "RoiInstance", "UPDATE_FAILED", reason, resource_type="AWS::EC2::Instance"),
        event(3, STACK, "UPDATE_ROLLBACK_COMPLETE"),
    ]
    cause = deploy_module.root_cause(failed)
    text = deploy_module.cause_text(cause)
    assert text.startswith(shown) and "/var/log/cloud-init-output.log" in text


# -- following: tokens not clocks, paging, throttling, a lost connection ---------------------------


def test_events_are_chosen_by_token_and_paging_stops_at_what_was_seen(cfn):
    """A clock an hour off changes nothing: no timestamp is compared. Page two is never asked for (the Stubber
    has no answer for it), because page one already reaches the operation's start."""
    ours, other = {"ClientRequestToken": "ours"}, {"ClientRequestToken": "someone-else"}
    skewed = [
        event(-3600, STACK, "UPDATE_IN_PROGRESS", "User Initiated", **ours),
        event(-3599, "RoiInstance", "UPDATE_IN_PROGRESS", resource_type="AWS::EC2::Instance", **ours),
        event(-3598, "Stray", "UPDATE_IN_PROGRESS", **other),
    ]
    before = event(-7200, STACK, "UPDATE_COMPLETE")
    s = cfn.stubber
    s.add_response("describe_stack_events", events(before, *skewed, NextToken="page-2"), {"StackName": STACK_ID})
    follower = EventFollower(cfn, STACK_ID, after=before["EventId"], token="ours")
    assert [e["LogicalResourceId"] for e in follower.poll()] == [STACK, "RoiInstance"]
    later = event(-3500, "RoiInstance", "UPDATE_COMPLETE", resource_type="AWS::EC2::Instance", **ours)
    s.add_response("describe_stack_events", events(before, *skewed, later, NextToken="page-2"), {"StackName": STACK_ID})
    assert [e["EventId"] for e in follower.poll()] == [later["EventId"]]


def test_a_throttled_poll_waits_and_polls_again(cfn):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_client_error("describe_stack_events", "Throttling", "Rate exceeded", http_status_code=400)
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    s.add_response("describe_stack_events", events(event(1, STACK, "UPDATE_COMPLETE")), {"StackName": STACK_ID})
    outcome = deploy_module.follow(cfn, STACK_ID, progress=Recorder(), after=None)
    assert outcome.status == "UPDATE_COMPLETE"


def test_a_lost_connection_stops_watching_with_the_resume_hint(cfn, monkeypatch):
    def unreachable(**_kwargs):
        raise EndpointConnectionError(endpoint_url="https://cloudformation.eu-west-1.amazonaws.com/")

    monkeypatch.setattr(cfn, "describe_stacks", unreachable)
    with pytest.raises(StoppedWatching) as stopped:
        deploy_module.follow(cfn, STACK_ID, progress=Recorder(), after=None, stack_name=STACK)
    assert "lost the connection" in str(stopped.value) and "valohai-cfn status valohai --watch" in str(stopped.value)


def test_clients_give_up_on_an_unreachable_endpoint_within_seconds():
    client = boto3.client("cloudformation", region_name="eu-west-1", config=RETRIES)
    assert client.meta.config.connect_timeout <= 3 and client.meta.config.retries["total_max_attempts"] <= 3


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
    assert stack_state(client, STACK).status == "UPDATE_COMPLETE"
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
    monkeypatch.setattr(cli_common, "aws_clients", lambda *_args: {"cloudformation": cfn}.__getitem__)
    params = REPO / "params" / "example.json"

    def invoke(*args: str, stack_options: bool = True):
        extra = ["--stack-name", STACK, "--params", str(params), "--skip-preflight"] if stack_options else []
        return CliRunner().invoke(cli, [*args, *extra])

    return invoke


def test_cli_rollback_complete_needs_recreate_failed(stubbed_cli, cfn):
    cfn.stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    cfn.stubber.add_response("list_stack_resources", resources(), {"StackName": STACK_ID})
    result = stubbed_cli("deploy", "--yes")
    assert result.exit_code == 1
    assert (
        result.output.startswith("Error: stack valohai is ROLLBACK_COMPLETE") and "--recreate-failed" in result.output
    )


def test_cli_plan_never_deletes(stubbed_cli, cfn):
    cfn.stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    cfn.stubber.add_response("list_stack_resources", resources(), {"StackName": STACK_ID})
    result = stubbed_cli("plan")
    assert result.exit_code == 1 and "plan never deletes" in result.output
    # No DeleteStack was stubbed: had plan called it, the Stubber would have failed the command.


def test_cli_delete_failed_is_never_recreated(stubbed_cli, cfn):
    cfn.stubber.add_response("describe_stacks", stack("DELETE_FAILED"), {"StackName": STACK})
    result = stubbed_cli("deploy", "--yes", "--recreate-failed")
    assert result.exit_code == 1
    assert "a delete stopped at a resource" in result.output and "valohai-cfn delete again" in result.output


def test_cli_recreate_lists_what_is_kept_before_deleting(stubbed_cli, cfn, monkeypatch):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    s.add_response("list_stack_resources", resources(), {"StackName": STACK_ID})
    template = {"Resources": {"DataBucket": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"}}}
    s.add_response(
        "get_template", {"TemplateBody": json.dumps(template)}, {"StackName": STACK_ID, "TemplateStage": "Processed"}
    )
    s.add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": "DataBucket",
                    "PhysicalResourceId": "valohai-data-111111111111-eu-west-1",
                    "ResourceType": "AWS::S3::Bucket",
                    "ResourceStatus": "DELETE_SKIPPED",
                    "LastUpdatedTimestamp": T0,
                }
            ]
        },
        {"StackName": STACK_ID},
    )
    monkeypatch.setattr(cli_common, "interactive", lambda: True)
    result = CliRunner().invoke(
        cli,
        [
            "deploy",
            "--stack-name",
            STACK,
            "--params",
            str(REPO / "params" / "example.json"),
            "--skip-preflight",
            "--recreate-failed",
        ],
        input="n\n",
    )
    assert result.exit_code == 1, result.output
    kept = result.output.index("kept: DataBucket (AWS::S3::Bucket) valohai-data-111111111111-eu-west-1")
    assert kept < result.output.index("Delete stack valohai (ROLLBACK_COMPLETE) to create it again?")
    assert "nothing deleted or created" in result.output


def test_cli_status_of_a_rolled_back_stack_prints_the_root_cause(stubbed_cli, cfn):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK})
    history = [
        event(1, STACK, "UPDATE_COMPLETE"),
        event(2, STACK, "UPDATE_IN_PROGRESS", "User Initiated"),
        event(
            3,
            "RoiInstance",
            "UPDATE_FAILED",
            "Instance type not supported in this zone",
            resource_type="AWS::EC2::Instance",
        ),
        event(4, STACK, "UPDATE_ROLLBACK_COMPLETE"),
    ]
    s.add_response("describe_stack_events", events(*history), {"StackName": STACK})
    s.add_response("describe_stack_events", events(*history), {"StackName": STACK})
    result = stubbed_cli("status", STACK, stack_options=False)
    assert result.exit_code == 0, result.output
    assert "Root cause: RoiInstance (AWS::EC2::Instance) UPDATE_FAILED: Instance type not supported" in result.output
    assert "last update failed and was rolled back" in result.output


def test_cli_status_watch_of_a_stack_under_review_stops_at_once(stubbed_cli, cfn):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("REVIEW_IN_PROGRESS"), {"StackName": STACK})
    s.add_response("describe_stack_events", events(event(1, STACK, "REVIEW_IN_PROGRESS")), {"StackName": STACK})
    result = stubbed_cli("status", STACK, "--watch", stack_options=False)
    assert result.exit_code == 0 and "waiting for a change set to be executed" in result.output.lower()


def test_cli_status_watch_ctrl_c_exits_130_with_the_resume_hint(stubbed_cli, cfn, monkeypatch):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    s.add_response("describe_stack_events", events(event(1, STACK, "UPDATE_IN_PROGRESS")), {"StackName": STACK})
    s.add_response("describe_stack_events", events(event(1, STACK, "UPDATE_IN_PROGRESS")), {"StackName": STACK})
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    s.add_response("describe_stack_events", events(event(1, STACK, "UPDATE_IN_PROGRESS")), {"StackName": STACK})
    interrupt_the_watch(monkeypatch)
    result = stubbed_cli("status", STACK, "--watch", stack_options=False)
    assert result.exit_code == 130
    assert "Resume watching with: valohai-cfn status valohai --watch" in result.output


# -- drift ---------------------------------------------------------------------------------------


def expect_drift(s, drifts: list[dict]) -> None:
    s.add_response("detect_stack_drift", {"StackDriftDetectionId": "drift-1"}, {"StackName": STACK})
    s.add_response(
        "describe_stack_drift_detection_status",
        {
            "StackId": STACK_ID,
            "StackDriftDetectionId": "drift-1",
            "DetectionStatus": "DETECTION_IN_PROGRESS",
            "Timestamp": T0,
        },
        {"StackDriftDetectionId": "drift-1"},
    )
    s.add_response(
        "describe_stack_drift_detection_status",
        {
            "StackId": STACK_ID,
            "StackDriftDetectionId": "drift-1",
            "StackDriftStatus": "DRIFTED" if drifts else "IN_SYNC",
            "DetectionStatus": "DETECTION_COMPLETE",
            "DriftedStackResourceCount": len(drifts),
            "Timestamp": T0,
        },
        {"StackDriftDetectionId": "drift-1"},
    )
    # With the resources drift detection did not check (a type it does not cover), as AWS lists them.
    s.add_response(
        "describe_stack_resource_drifts",
        {"StackResourceDrifts": [*drifts, NOT_CHECKED]},
        {"StackName": STACK, "StackResourceDriftStatusFilters": ["MODIFIED", "DELETED", "NOT_CHECKED"]},
    )


NOT_CHECKED = {
    "StackId": STACK_ID,
    "LogicalResourceId": "Certificate",
    "PhysicalResourceId": "arn:aws:acm:us-east-1:123456789012:certificate/1",
    "ResourceType": "AWS::CertificateManager::Certificate",
    "StackResourceDriftStatus": "NOT_CHECKED",
    "Timestamp": T0,
}


# A security group rule opened in the console: what DescribeStackResourceDrifts says about it.
SSH_OPENED = {
    "StackId": STACK_ID,
    "LogicalResourceId": "MasterSecurityGroup",
    "PhysicalResourceId": "sg-0123456789abcdef0",
    "ResourceType": "AWS::EC2::SecurityGroup",
    "StackResourceDriftStatus": "MODIFIED",
    "Timestamp": T0,
    "PropertyDifferences": [
        {
            "PropertyPath": "/SecurityGroupIngress/1",
            "ExpectedValue": "null",
            "ActualValue": '{"CidrIp":"0.0.0.0/0","FromPort":22,"IpProtocol":"tcp","ToPort":22}',
            "DifferenceType": "ADD",
        }
    ],
}


def test_cli_drift_shows_expected_and_actual_and_exits_3(stubbed_cli, cfn):
    expect_drift(cfn.stubber, [SSH_OPENED])
    result = stubbed_cli("drift", STACK, stack_options=False)
    assert result.exit_code == 3, result.output
    assert "MasterSecurityGroup (AWS::EC2::SecurityGroup) MODIFIED" in result.output
    assert '/SecurityGroupIngress/1 (ADD): null → {"CidrIp":"0.0.0.0/0","FromPort":22' in result.output


def test_cli_drift_in_sync_exits_0_and_json_has_the_documented_keys(stubbed_cli, cfn):
    expect_drift(cfn.stubber, [])
    result = stubbed_cli("drift", STACK, "--output", "json", stack_options=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "stack": STACK,
        "drift_status": "IN_SYNC",
        "drifted": [],
        "not_checked": [{"logical_id": "Certificate", "resource_type": "AWS::CertificateManager::Certificate"}],
    }


# -- what the options send -----------------------------------------------------------------------


def test_a_service_role_and_disabled_rollback_are_sent(cfn):
    s = cfn.stubber
    s.add_response(
        "create_change_set",
        {"Id": CHANGE_SET_ID, "StackId": STACK_ID},
        {
            "StackName": STACK,
            "ChangeSetName": "valohai-cfn-1",
            "ChangeSetType": "UPDATE",
            "Parameters": [],
            "Capabilities": ["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
            "Tags": [{"Key": "valohai", "Value": "1"}],
            "Description": ANY,
            "RoleARN": "arn:aws:iam::111111111111:role/cfn-service",
            "TemplateBody": "{}",
        },
    )
    s.add_response(
        "describe_change_set",
        described_change_set([INSTANCE_MODIFIED]),
        {"ChangeSetName": CHANGE_SET_ID, "IncludePropertyValues": True},
    )
    request = deploy_module.ChangeSetRequest(
        STACK, Plan.UPDATE, {"TemplateBody": "{}"}, [], {}, role_arn="arn:aws:iam::111111111111:role/cfn-service"
    )
    change_set = deploy_module.create_change_set(cfn, request, "valohai-cfn-1")
    assert change_set.kind == "UPDATE" and len(change_set.changes) == 1

    expect_execute(s, protected=True, policy=POLICY, rollback=True)
    s.add_response("describe_stacks", stack("UPDATE_FAILED"), {"StackName": STACK_ID})
    s.add_response(
        "describe_stack_events", events(event(2, STACK, "UPDATE_FAILED", "kept for debugging")), {"StackName": STACK_ID}
    )
    outcome = execute(cfn, change_set, progress=Recorder(), policies=KEPT, disable_rollback=True)
    assert outcome.status == "UPDATE_FAILED" and outcome.root_cause["ResourceStatusReason"] == "kept for debugging"


def test_aws_region_comes_before_aws_default_region(monkeypatch):
    seen = {}

    def clients(region, profile, endpoint_url):
        seen["region"] = region
        raise cli_common.click.ClickException("stop here")

    monkeypatch.setattr(cli_common, "aws_clients", clients)
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    CliRunner().invoke(cli, ["status", STACK])
    assert seen["region"] == "eu-north-1"


def test_the_summary_after_a_deploy_lists_every_worker_group(capsys):
    from valohai_cfn.cli.stack import _rendered
    from valohai_cfn.console import Output
    from valohai_cfn.deploy import Outcome
    from valohai_cfn.lifecycle import End, Result

    outputs = {
        "AppUrl": "https://valohai.example.com",
        "DatabaseEndpoint": "db.internal",
        "SpotWorkerGroupg4dnxlarge": "valohai-worker-g4dn.xlarge-spot",
        "WorkerGroupt3medium": "valohai-worker-t3.medium",
    }
    result = Result(STACK, End.EXECUTED, outcome=Outcome("UPDATE_COMPLETE"), outputs=outputs)
    assert _rendered(Output(), result, {}) == 0
    shown = capsys.readouterr().out
    assert "valohai-worker-g4dn.xlarge-spot" in shown and "valohai-worker-t3.medium" in shown
    assert "https://valohai.example.com" in shown and "db.internal" not in shown
