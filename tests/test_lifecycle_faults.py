"""Fault injection across every CloudFormation call of deploy (a create and an update), execute, delete and
recreate, against the local AWS: for each call in turn, the call fails (an error shaped like CloudFormation's),
or Ctrl-C (a real SIGINT) arrives just before it, or just after it. Whatever happens, the lifecycle's three
promises hold afterwards (valohai_cfn.lifecycle's docstring), checked here from the local AWS's own state and
from the calls that reached it, not from what the lifecycle says about itself:

1. every stack this tool made has termination protection, and a stack policy that denies replacing and deleting
   each data resource of its deployed template — unless its approved delete reached AWS;
2. every ExecuteChangeSet that reached AWS executed a change set approved after its review, for that stack;
3. every DeleteStack that reached AWS deleted a stack whose delete was approved, or the empty stack this run's
   own change set made; every DeleteChangeSet deleted a change set this run made.

Also: nothing escapes but a DeployError or an AWS error, and an interruption that left a change set names it.

The local AWS does not enforce termination protection on DeleteStack nor reach ROLLBACK_COMPLETE; botocore
hooks (tests/faults.py) play both as CloudFormation does. Stacks are small (a bucket, a secret, a setting), so
that the ~200 cases stay fast; the installation's own template is deployed by test_deploy_local.py.
"""

from __future__ import annotations

import contextlib
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
    WITH_DATA,
    Fault,
    Recorder,
    deployed,
    enforce_termination_protection,
    rolled_back_first_create,
)

from valohai_cfn import deploy, lifecycle
from valohai_cfn.deploy import DeployError, Interrupted, StoppedWatching

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

    def approve(self, question: lifecycle.Question) -> bool:
        self.approved.append(question)
        return True


def deploy_create(aws: Any, case: Case, _context: Any) -> Any:
    request = lifecycle.DeployRequest(case.name, Template(WITH_DATA), {}, preflight=False)
    return lifecycle.deploy_stack(aws, request, approve=case.approve, report=Report())


def deploy_update(aws: Any, case: Case, _context: Any) -> Any:
    request = lifecycle.DeployRequest(case.name, Template(WITH_DATA), {"Setting": "two"}, preflight=False)
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


def recreate(aws: Any, case: Case, _context: Any) -> Any:
    request = lifecycle.DeployRequest(case.name, Template(NO_DATA), {}, preflight=False, recreate_failed=True)
    return lifecycle.deploy_stack(aws, request, approve=case.approve, report=Report())


@dataclass(frozen=True)
class Scenario:
    prepare: Callable[[Any, str], Any]  # (a plain client, the stack's name) → what `act` needs
    act: Callable[[Any, Case, Any], Any]
    calls: int  # CloudFormation calls of an undisturbed run: a change here changes the cases, so it is pinned
    rolled_back: bool = False


SCENARIOS = {
    "deploy-create": Scenario(lambda _reader, _name: None, deploy_create, 9),
    "deploy-update": Scenario(lambda reader, name: deployed(reader, name, WITH_DATA), deploy_update, 10),
    "execute": Scenario(planned_update, execute, 10),
    "delete": Scenario(lambda reader, name: deployed(reader, name, WITH_DATA), delete, 8),
    "recreate": Scenario(lambda reader, name: deployed(reader, name, NO_DATA), recreate, 18, rolled_back=True),
}
KINDS = ("fail", "before", "after")
REGIONS = dict(zip(SCENARIOS, ("eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "eu-central-1"), strict=True))


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

    def run(self, fault: Fault | None) -> Case:
        """The scenario on a stack of its own, with this fault."""
        name = f"faults-{uuid.uuid4().hex[:10]}"
        context = self.scenario.prepare(self.reader, name)
        if self.scenario.rolled_back:
            self.rolled_back.add(self.reader.describe_stacks(StackName=name)["Stacks"][0]["StackId"])
        self.recorder.reset(fault)
        case = Case(name, self.reader, self.recorder, existed=context is not None or self.scenario.rolled_back)
        try:
            case.ended = self.scenario.act(self.aws, case, context)
        except (DeployError, ClientError) as e:
            case.ended = e
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
    # 1. Protections: lifted only for an approved delete that reached AWS (one that did not puts them back).
    deleting = {p["StackName"] for op, p, _ in recorder.succeeded if op == "DeleteStack"} & approved_deletes
    for stack in live_stacks(reader, case):
        tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
        if tags.get("valohai") != "1" or stack["StackId"] in deleting:
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
    # An interruption names the change sets it left.
    if isinstance(case.ended, Interrupted) and not isinstance(case.ended, StoppedWatching):
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
    assert isinstance(undisturbed.ended, lifecycle.Result), undisturbed.ended
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
