"""Fault injection across every CloudFormation call of deploy (a create, an update, and an update approved to
replace a bucket of a stack that had lost its protections), execute, delete (one that succeeds, one whose
delete fails) and recreate, against the local AWS: for each call in turn, the call fails (an error
shaped like CloudFormation's), or Ctrl-C (a real SIGINT) arrives just before it, or just after it. Whatever
happens, the lifecycle's three promises hold afterwards (valohai_cfn.lifecycle's docstring), checked here from
the local AWS's own state and from the calls that reached it, not from what the lifecycle says about itself:

1. every stack this tool made that is still there has termination protection, and a stack policy that denies
   replacing and deleting each data resource of its deployed template; and when no execution or delete
   reached AWS (refused, declined, failed or interrupted before), the stack is exactly as it was: termination
   protection and policy;
2. every ExecuteChangeSet that reached AWS executed a change set approved after its review, for that stack;
3. every DeleteStack that reached AWS deleted a stack whose delete was approved, or the empty stack this run's
   own change set made; every DeleteChangeSet deleted a change set this run made.

Where AWS refuses the very call that would put a protection back, the error names the command that does (the
next deploy, or valohai-cfn status for a failed delete): that command is run, and the promises checked after it.

Also: nothing escapes but a DeployError or an AWS error; an interruption or error that left a change set names
it; and
"the operation goes on in AWS" is said only of a stack whose operation does (the local AWS runs each to its
end inside the call, so here never).

The local AWS does not enforce termination protection on DeleteStack nor reach ROLLBACK_COMPLETE; botocore
hooks (tests/faults.py) play both as CloudFormation does. Stacks are small (a bucket, a secret, a setting), so
that the ~200 cases stay fast; the installation's own template is deployed by test_deploy_local.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from faults import (
    NO_DATA,
    UNDELETABLE,
    WITH_DATA,
    WITH_MORE_DATA,
    Fault,
    Recorder,
    deployed,
    enforce_termination_protection,
    rolled_back_first_create,
    with_bucket_named,
)

from valohai_cfn import deploy, lifecycle
from valohai_cfn.deploy import DeployError, StoppedWatching
from valohai_cfn.stack.policy import policy_document

DATA_TYPES = ("AWS::S3::Bucket", "AWS::SecretsManager::Secret", "AWS::RDS::DBInstance")


@dataclass(frozen=True)
class Template:
    document: dict

    @property
    def body(self) -> str:
        return json.dumps(self.document)

    @property
    def defaults(self) -> dict[str, str | None]:
        return {k: p.get("Default") for k, p in self.document.get("Parameters", {}).items()}


class Report:
    """A lifecycle.Reporter that keeps the notes; its progress keeps nothing."""

    def __init__(self) -> None:
        self.notes: list = []

    def note(self, note: Any) -> None:
        self.notes.append(note)

    @contextlib.contextmanager
    def progress(self):
        yield self

    def events(self, _events: list) -> None:
        pass

    def tally(self, _tally: Any) -> None:
        pass


@dataclass
class Case:
    """One run of a scenario: its stack, the calls that reached AWS, what was approved, how it ended."""

    name: str
    reader: Any
    recorder: Recorder
    existed: bool
    approved: list[lifecycle.Question] = field(default_factory=list)
    ended: Any = None
    before: tuple | None = None  # the stack's protections before the run (None: no stack)

    def approve(self, question: lifecycle.Question) -> bool:
        self.approved.append(question)
        return True


def deploy_create(aws: Any, case: Case, _context: Any) -> Any:
    request = lifecycle.DeployRequest(case.name, Template(WITH_DATA), {}, preflight=False)
    return lifecycle.deploy_stack(aws, request, approve=case.approve, report=Report())


def deploy_update(aws: Any, case: Case, _context: Any) -> Any:
    request = lifecycle.DeployRequest(case.name, Template(WITH_DATA), {"Setting": "two"}, preflight=False)
    return lifecycle.deploy_stack(aws, request, approve=case.approve, report=Report())


def unprotected(reader: Any, name: str) -> str:
    """A stack this tool made that lost its protections (no termination protection, no stack policy: made by an
    older version, or changed by hand); the name for the bucket the update gives it."""
    reader.create_stack(StackName=name, TemplateBody=json.dumps(WITH_DATA), Tags=[{"Key": "valohai", "Value": "1"}])
    return name


def deploy_replacing(aws: Any, case: Case, bucket_name: str) -> Any:
    """--allow-replace: the bucket Data gets a name, which replaces it (the policy is relaxed for Data alone),
    and a second bucket is added."""
    template = Template(with_bucket_named(bucket_name, WITH_MORE_DATA))
    request = lifecycle.DeployRequest(case.name, template, {}, preflight=False, allow_replace=True)
    return lifecycle.deploy_stack(aws, request, approve=case.approve, report=Report())


def planned_update(reader: Any, name: str) -> str:
    deployed(reader, name, WITH_DATA)
    return reader.create_change_set(
        StackName=name,
        ChangeSetName="planned",
        ChangeSetType="UPDATE",
        TemplateBody=json.dumps(WITH_DATA),
        Parameters=[{"ParameterKey": "Setting", "ParameterValue": "two"}],
        Tags=[{"Key": "valohai", "Value": "1"}],
    )["Id"]


def execute(aws: Any, case: Case, change_set: str) -> Any:
    request = lifecycle.ExecuteRequest(case.name, change_set)
    return lifecycle.execute_change_set(aws, request, approve=case.approve, report=Report())


def delete(aws: Any, case: Case, _context: Any) -> Any:
    return lifecycle.delete_stack(
        aws, lifecycle.DeleteRequest(case.name, force=True), approve=case.approve, report=Report()
    )


def undeletable(reader: Any, name: str) -> None:
    """One stack for every case (a database takes a second to make): protected again before each, its status
    CREATE_COMPLETE the first time, DELETE_FAILED after."""
    try:
        reader.describe_stacks(StackName=name)
    except ClientError:
        deployed(reader, name, UNDELETABLE)
    reader.update_termination_protection(StackName=name, EnableTerminationProtection=True)


def status(aws: Any, case: Case, _context: Any) -> Any:
    """What `valohai-cfn status` does beside showing the stack: it puts back what a failed delete lifted."""
    cfn = aws("cloudformation")
    return lifecycle.put_back_after_failed_delete(cfn, deploy.describe(cfn, case.name), Report())


def recreate(aws: Any, case: Case, _context: Any) -> Any:
    request = lifecycle.DeployRequest(case.name, Template(NO_DATA), {}, preflight=False, recreate_failed=True)
    return lifecycle.deploy_stack(aws, request, approve=case.approve, report=Report())


@dataclass(frozen=True)
class Scenario:
    prepare: Callable[[Any, str], Any]  # (a plain client, the stack's name) → what `act` needs
    act: Callable[[Any, Case, Any], Any]
    calls: int  # CloudFormation calls of an undisturbed run: a change here changes the cases, so it is pinned
    rolled_back: bool = False
    shared: str | None = None  # the one stack every case acts on (else a new one each)
    fails: bool = False  # an undisturbed run ends in a DeployError (the delete fails)
    # The command an error names to put protections back (AWS refused the call that would have): deploy again.
    puts_back: Callable[[Any, Case, Any], Any] | None = None


SCENARIOS = {
    "deploy-create": Scenario(lambda _reader, _name: None, deploy_create, 9, puts_back=deploy_create),
    "deploy-update": Scenario(
        lambda reader, name: deployed(reader, name, WITH_DATA), deploy_update, 10, puts_back=deploy_update
    ),
    "deploy-allow-replace": Scenario(unprotected, deploy_replacing, 13, puts_back=deploy_replacing),
    "execute": Scenario(planned_update, execute, 10),
    "delete": Scenario(lambda reader, name: deployed(reader, name, WITH_DATA), delete, 8),
    "delete-fails": Scenario(undeletable, delete, 9, shared="faults-undeletable", fails=True, puts_back=status),
    "recreate": Scenario(lambda reader, name: deployed(reader, name, NO_DATA), recreate, 18, rolled_back=True),
}
KINDS = ("fail", "before", "after")
REGIONS = dict(
    zip(
        SCENARIOS,
        ("eu-west-1", "eu-west-2", "us-west-1", "eu-west-3", "eu-north-1", "ca-central-1", "eu-central-1"),
        strict=True,
    )
)


@dataclass
class Harness:
    """One scenario's clients, made once (a region of its own, so that no other test's stacks slow the local
    AWS down): a plain one, and one with the recorder, its fault, and CloudFormation's rules as hooks."""

    endpoint: str
    region: str
    scenario: Scenario
    recorder: Recorder = field(default_factory=Recorder)
    rolled_back: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.session = boto3.Session(region_name=self.region)
        self.reader = self.session.client("cloudformation", endpoint_url=self.endpoint)
        self.cfn = self.session.client("cloudformation", endpoint_url=self.endpoint)
        self.recorder.attach(self.cfn)
        enforce_termination_protection(self.cfn, self.reader)
        rolled_back_first_create(self.cfn, self.reader, self.rolled_back)

    def aws(self, service: str) -> Any:
        return self.cfn if service == "cloudformation" else self.session.client(service, endpoint_url=self.endpoint)

    def plain(self, service: str) -> Any:
        """Clients without the recorder and its fault: the next command, as a user runs it."""
        return self.reader if service == "cloudformation" else self.aws(service)

    def next_command(self, case: Case, context: Any) -> None:
        """When the error names the command that puts protections back, that command, undisturbed."""
        named = isinstance(case.ended, DeployError) and (
            "valohai-cfn deploy again" in str(case.ended)
            or f"valohai-cfn status {case.name} puts it back" in str(case.ended)
        )
        if named:
            assert self.scenario.puts_back is not None, f"no command here puts protections back: {case.ended}"
            self.scenario.puts_back(self.plain, dataclasses.replace(case, approved=[]), context)

    def run(self, fault: Fault | None) -> Case:
        """The scenario on a stack of its own (or the shared one), with this fault."""
        name = self.scenario.shared or f"faults-{uuid.uuid4().hex[:10]}"
        context = self.scenario.prepare(self.reader, name)
        if self.scenario.rolled_back:
            self.rolled_back.add(self.reader.describe_stacks(StackName=name)["Stacks"][0]["StackId"])
        self.recorder.reset(fault)
        case = Case(name, self.reader, self.recorder, existed=context is not None or self.scenario.rolled_back)
        case.before = protections_of(self.reader, name)
        try:
            case.ended = self.scenario.act(self.aws, case, context)
        except (DeployError, ClientError) as e:
            case.ended = e
        self.next_command(case, context)
        return case


def data_resources(reader: Any, stack_id: str) -> list[str]:
    body = reader.get_template(StackName=stack_id, TemplateStage="Processed")["TemplateBody"]
    template = body if isinstance(body, dict) else json.loads(body)
    return [n for n, r in template.get("Resources", {}).items() if r["Type"] in DATA_TYPES]


def denies_replacing_and_deleting(policy: dict, logical_id: str) -> bool:
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = set(actions if isinstance(actions, list) else [actions])
        resources = statement.get("Resource", [])
        resources = resources if isinstance(resources, list) else [resources]
        covered = f"LogicalResourceId/{logical_id}" in resources or "*" in resources
        if (
            statement.get("Effect") == "Deny"
            and covered
            and ({"Update:Replace", "Update:Delete"} <= actions or "Update:*" in actions)
        ):
            return True
    return False


def protections_of(reader: Any, name: str) -> tuple | None:
    """Termination protection and the stack policy as a document (none: the allow-all one, which CloudFormation
    treats alike and which is what "no policy" can be put back as); None when there is no such stack."""
    try:
        (stack,) = reader.describe_stacks(StackName=name)["Stacks"]
    except ClientError:
        return None
    body = reader.get_stack_policy(StackName=stack["StackId"]).get("StackPolicyBody")
    return bool(stack.get("EnableTerminationProtection")), json.loads(body) if body else policy_document([])


def live_stacks(reader: Any, case: Case) -> list[dict]:
    ids = {p["StackName"] for _, p, _ in case.recorder.succeeded if p.get("StackName")} | {case.name}
    stacks = {}
    for stack in ids:
        with contextlib.suppress(ClientError):
            for s in reader.describe_stacks(StackName=stack)["Stacks"]:
                stacks[s["StackId"]] = s
    return [s for s in stacks.values() if s["StackStatus"] not in ("DELETE_COMPLETE", "REVIEW_IN_PROGRESS")]


def check_promises(case: Case) -> None:
    reader, recorder = case.reader, case.recorder
    assert isinstance(case.ended, (lifecycle.Result, DeployError, ClientError)), case.ended
    approved_deletes = {q.stack_id for q in case.approved if q.asked is not lifecycle.Asked.EXECUTE}
    approved_executions = {
        q.change_set.arn: q.change_set.stack_id for q in case.approved if q.asked is lifecycle.Asked.EXECUTE
    }
    # 1. Protections: as they were, when nothing was executed or deleted; else on, on every stack still there.
    reached = {op for op, _, _ in recorder.succeeded} & {"ExecuteChangeSet", "DeleteStack"}
    if not reached and case.before is not None:
        assert protections_of(reader, case.name) == case.before, "not as it was"
    for stack in live_stacks(reader, case):
        tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
        if tags.get("valohai") != "1" or (not reached and case.before is not None):
            continue
        assert stack.get("EnableTerminationProtection") is True, f"{stack['StackName']} lost termination protection"
        policy = json.loads(reader.get_stack_policy(StackName=stack["StackId"]).get("StackPolicyBody") or "{}")
        for logical_id in data_resources(reader, stack["StackId"]):
            assert denies_replacing_and_deleting(policy, logical_id), f"{logical_id} unprotected: {policy}"
    # 2. Executions.
    made_change_sets = {r["Id"]: r["StackId"] for op, _, r in recorder.succeeded if op == "CreateChangeSet"}
    for op, params, _ in recorder.succeeded:
        if op == "ExecuteChangeSet":
            arn = params["ChangeSetName"]
            (described,) = reader.describe_stacks(StackName=approved_executions.get(arn, "-"))["Stacks"]
            assert described["StackName"] == case.name, f"{arn} executed without approval for {case.name}"
    # 3. Deletions.
    made_stacks = set(made_change_sets.values()) if not case.existed else set()
    for op, params, _ in recorder.succeeded:
        if op == "DeleteStack":
            assert params["StackName"] in approved_deletes | made_stacks, f"deleted {params['StackName']} unapproved"
        if op == "DeleteChangeSet":
            assert params["ChangeSetName"] in made_change_sets, f"deleted change set {params['ChangeSetName']}"
    # "Goes on in AWS" only of an operation that does.
    if isinstance(case.ended, StoppedWatching) or "goes on in AWS" in str(case.ended):
        status = reader.describe_stacks(StackName=case.name)["Stacks"][0]["StackStatus"]
        assert status.endswith("_IN_PROGRESS"), f"said to go on, but {status}: {case.ended}"
    # An interruption or an error names the change sets it left (a plan's or --keep's are kept on purpose).
    if not isinstance(case.ended, (lifecycle.Result, StoppedWatching)):
        for arn, stack_id in made_change_sets.items():
            with contextlib.suppress(ClientError):
                left = reader.describe_change_set(ChangeSetName=arn)
                if left["ExecutionStatus"] == "AVAILABLE":
                    assert left["ChangeSetName"] in str(case.ended), (str(case.ended), stack_id)


@pytest.fixture
def fast_polls(monkeypatch):
    monkeypatch.setattr(deploy, "POLL_SECONDS", 0.01)


@pytest.mark.parametrize(
    "scenario",
    list(SCENARIOS),
    ids=[f"{name}:{len(KINDS) * s.calls}-cases" for name, s in SCENARIOS.items()],
)
def test_every_call_failed_or_interrupted_keeps_the_promises(aws_env, fast_polls, scenario):
    harness = Harness(aws_env.endpoint_url, REGIONS[scenario], SCENARIOS[scenario])
    undisturbed = harness.run(None)
    operations = undisturbed.recorder.operations()
    ends_in = DeployError if SCENARIOS[scenario].fails else lifecycle.Result
    assert isinstance(undisturbed.ended, ends_in), undisturbed.ended
    check_promises(undisturbed)
    assert len(operations) == SCENARIOS[scenario].calls, operations
    for index in range(SCENARIOS[scenario].calls):
        for kind in KINDS:
            case = harness.run(Fault(index, kind))
            where = f"{kind} {operations[index]} (call {index}): ended {case.ended!r}"
            assert case.recorder.fired, where
            try:
                check_promises(case)
            except AssertionError as e:
                raise AssertionError(f"{where}: {e}") from None
