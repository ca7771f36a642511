"""The CloudFormation calls the lifecycle (valohai_cfn.lifecycle) is made of, as data: a stack's state and what
a deploy does with it, change sets (create, describe, discard), protections, following an operation's events,
status, outputs, drift, and what a delete keeps.

Nothing here prints or decides: functions return what happened, and a followed operation reports its events
and running tally to a `Progress`. Everything takes a boto3 CloudFormation client, so tests hand it one pointed
at a local server or wrapped in botocore's Stubber. Failures, rollbacks and replacements are read from the
shapes real CloudFormation returns (the local AWS gives them too). Nothing here imports troposphere,
cfn-lint or cfn-flip at import time: commands that build no template stay fast.
"""

from __future__ import annotations

import contextlib
import enum
import json
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from botocore.exceptions import ClientError, HTTPClientError, WaiterError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from valohai_cfn.aws_rules import OWN_TAG
from valohai_cfn.review import PropertyChange, ResourceChange
from valohai_cfn.stack.policy import DATA_RESOURCE_TYPES

# Polling at 1 s: awscli sleeps 5 s between change-set checks and 30 s between stack checks.
POLL_SECONDS = 1.0
THROTTLED_SECONDS_MAX = 30.0
VALOHAI_TAG = OWN_TAG  # the stacks this tool made carry it
# Named IAM roles, and the AWS::LanguageExtensions transform (Fn::ForEach makes the worker groups).
CAPABILITIES = ["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# The messages CloudFormation gives a change set with nothing in it (create-change-set and deploy).
NO_CHANGES_REASONS = ("didn't contain changes", "No updates are to be performed")
CANCELLED_REASONS = ("Resource creation cancelled", "Resource update cancelled", "Resource deletion cancelled")
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"})
# RequiresRecreation, weakest first ("" where CloudFormation gave none).
RECREATION_ORDER = ("", "Never", "Conditionally", "Always")
# A stack operation's first event: the stack's own *_IN_PROGRESS, "User Initiated".
USER_INITIATED = "User Initiated"


class DeployError(Exception):
    """A deploy that cannot go on; the message says why and what to do."""


class WrongInput(DeployError):
    """An input that names something it cannot be (a change set of another stack); nothing was changed."""


class ChangeSetNotFound(DeployError):
    """CloudFormation has no such change set (for that stack)."""


class Interrupted(DeployError):
    """Ctrl-C before any stack operation was under way; the message says what was left and what to do with it."""


class StoppedWatching(Interrupted):
    """Following stopped (Ctrl-C, or AWS out of reach); the operation goes on in AWS."""


def resume_hint(stack_name: str) -> str:
    return f"The stack operation goes on in AWS. Resume watching with: valohai-cfn status {stack_name} --watch"


# -- what a deploy does with a stack in each status ----------------------------------------------


class Plan(enum.Enum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    RECREATE = "RECREATE"  # a first create that failed and left no data: delete (once approved), then CREATE
    WAIT = "WAIT"  # an operation is under way
    REFUSE = "REFUSE"  # a state only an operator can resolve


# Each status a deploy can meet, what it means, and what to do with it. Statuses not listed that end in
# _IN_PROGRESS are waited for.
STATUSES: dict[str, tuple[Plan, str]] = {
    "REVIEW_IN_PROGRESS": (Plan.CREATE, "made for a change set that was never executed; nothing exists yet"),
    "CREATE_COMPLETE": (Plan.UPDATE, "created"),
    "UPDATE_COMPLETE": (Plan.UPDATE, "updated"),
    "UPDATE_ROLLBACK_COMPLETE": (Plan.UPDATE, "its last update failed and was rolled back; it is as before"),
    "IMPORT_COMPLETE": (Plan.UPDATE, "resources were imported into it"),
    "IMPORT_ROLLBACK_COMPLETE": (Plan.UPDATE, "an import failed and was rolled back"),
    "CREATE_FAILED": (
        Plan.UPDATE,
        "its create failed with rollback disabled; what was made is kept. A deploy retries what failed; "
        "or roll it back: aws cloudformation rollback-stack",
    ),
    "UPDATE_FAILED": (
        Plan.UPDATE,
        "its update failed with rollback disabled; a deploy retries what failed. Or roll it back to the last "
        "working state: aws cloudformation rollback-stack",
    ),
    "ROLLBACK_COMPLETE": (
        Plan.RECREATE,
        "its first create failed and was rolled back: it can only be deleted, then created again "
        "(deploy --recreate-failed)",
    ),
    "ROLLBACK_FAILED": (
        Plan.RECREATE,
        "its first create failed and so did the rollback: it can only be deleted, then created again "
        "(deploy --recreate-failed)",
    ),
    "DELETE_FAILED": (
        Plan.REFUSE,
        "a delete stopped at a resource it could not delete (often the database, whose deletion protection "
        "is on). Resolve that resource, then run valohai-cfn delete again; a stack being deleted is never "
        "created again over its data",
    ),
    "UPDATE_ROLLBACK_FAILED": (
        Plan.REFUSE,
        "an update failed and so did its rollback. Fix what the events name, then "
        "aws cloudformation continue-update-rollback, and deploy again",
    ),
    "IMPORT_ROLLBACK_FAILED": (
        Plan.REFUSE,
        "an import failed and so did its rollback. Fix what the events name, then deploy again",
    ),
}


@dataclass(frozen=True)
class StackState:
    name: str
    stack: dict | None  # as DescribeStacks gives it; None: no such stack
    plan: Plan
    meaning: str

    @property
    def status(self) -> str | None:
        return self.stack["StackStatus"] if self.stack else None

    @property
    def parameters(self) -> dict[str, str]:
        return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (self.stack or {}).get("Parameters", [])}

    @property
    def made_by_this_tool(self) -> bool:
        return stack_tags(self.stack).get(VALOHAI_TAG[0]) == VALOHAI_TAG[1]


def stack_tags(stack: dict | None) -> dict[str, str]:
    """A stack's tags (as DescribeStacks gives them), by key."""
    return {t["Key"]: t["Value"] for t in (stack or {}).get("Tags", [])}


def described_or_none(cfn: Any, stack: str) -> dict | None:
    """The stack (by name or id), or None when there is none."""
    try:
        (described,) = cfn.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise
    return described


def describe(cfn: Any, stack_name: str) -> dict:
    described = described_or_none(cfn, stack_name)
    if described is None:
        raise DeployError(f"stack {stack_name} does not exist")
    return described


def data_resources_left(cfn: Any, stack: str) -> list[str]:
    """The stack's data resources that still exist in it (a delete would remove them)."""
    left = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for r in page["StackResourceSummaries"]:
            gone = r["ResourceStatus"] in ("DELETE_COMPLETE", "DELETE_SKIPPED")
            if r["ResourceType"] in DATA_RESOURCE_TYPES and not gone:
                left.append(r["LogicalResourceId"])
    return sorted(left)


def stack_state(cfn: Any, name: str) -> StackState:
    """The stack and what a deploy would do with it."""
    stack = described_or_none(cfn, name)
    if stack is None:
        return StackState(name, None, Plan.CREATE, "does not exist yet")
    status = stack["StackStatus"]
    plan, meaning = STATUSES.get(status, (Plan.REFUSE, f"{status} needs an operator: see the console"))
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        plan, meaning = Plan.WAIT, "an operation is under way"
    if plan is Plan.RECREATE:
        # Never delete what holds data to create it again: a failed rollback can leave the database behind.
        holding = data_resources_left(cfn, stack["StackId"])
        if holding:
            plan = Plan.REFUSE
            meaning += f"; but it still holds {', '.join(holding)}, so it is not deleted for you: delete it yourself"
    return StackState(name, stack, plan, meaning)


# -- the change set ------------------------------------------------------------------------------


@dataclass
class ChangeSet:
    arn: str
    name: str
    stack_id: str
    stack_name: str
    status: str
    execution_status: str = ""
    reason: str = ""
    kind: str = ""  # CREATE or UPDATE (REVIEW_IN_PROGRESS stack: CREATE)
    changes: list[ResourceChange] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)  # the values the stack would have
    tags: dict[str, str] | None = None  # the stack tags it sets (None: it keeps the stack's)

    @property
    def is_empty(self) -> bool:
        return self.status == "FAILED" and any(r in self.reason for r in NO_CHANGES_REASONS)

    @property
    def data_loss(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.loses_data]


def _value(detail: dict, key: str) -> str | None:
    value = detail.get(key)
    return None if value is None else str(value)


def _change(entry: dict) -> ResourceChange:
    rc = entry["ResourceChange"]
    # A Dynamic detail's value is known only once the execution evaluates it: it changes at deploy (a value
    # CloudFormation leaves out of it is not a removal).
    properties = tuple(
        PropertyChange(
            path=target.get("Name") or target.get("Attribute", ""),
            before=_value(target, "BeforeValue"),
            after=None if dynamic else _value(target, "AfterValue"),
            requires_recreation=target.get("RequiresRecreation", ""),
            at_deploy=dynamic,
        )
        for target, dynamic in ((d.get("Target", {}), d.get("Evaluation") == "Dynamic") for d in rc.get("Details", []))
    )
    # One entry per property: CloudFormation lists a property once per cause (a parameter, a resource),
    # the values and the strongest recreation with only some of them.
    merged: dict[str, PropertyChange] = {}
    for p in properties:
        known = merged.get(p.path)
        if known is None:
            merged[p.path] = p
            continue
        after = known.after if known.after is not None else p.after  # a Static cause's value is known
        merged[p.path] = PropertyChange(
            p.path,
            known.before if known.before is not None else p.before,
            after,
            max(known.requires_recreation, p.requires_recreation, key=RECREATION_ORDER.index),
            at_deploy=after is None and (known.at_deploy or p.at_deploy),
        )
    unique = tuple(merged.values())
    return ResourceChange(
        action=rc["Action"],
        logical_id=rc["LogicalResourceId"],
        resource_type=rc["ResourceType"],
        replacement=rc.get("Replacement", ""),
        properties=unique,
    )


# arn:<partition>:cloudformation:<region>:<account>:changeSet/<name>/<uuid>
CHANGE_SET_ARN = re.compile(r"^arn:[a-z-]+:cloudformation:[a-z0-9-]+:\d{12}:changeSet/[A-Za-z][A-Za-z0-9-]*/[\w-]+$")
# CloudFormation's rule for a change set's name.
CHANGE_SET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


# arn:<partition>:iam::<account>:role/<path/><name>, with IAM's rules for the path and the name.
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,64}$")


def check_role_arn(role_arn: str) -> str:
    """An IAM role's ARN, as given; WrongInput for anything else (checked before any call)."""
    if ROLE_ARN.match(role_arn):
        return role_arn
    shown = role_arn if len(role_arn) <= 60 else role_arn[:60] + "…"
    raise WrongInput(f"{shown!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")


def check_change_set(change_set: str) -> str:
    """A change set's name or full ARN, as given; WrongInput for anything CloudFormation could not name."""
    if CHANGE_SET_ARN.match(change_set) or CHANGE_SET_NAME.match(change_set):
        return change_set
    shown = change_set if len(change_set) <= 60 else change_set[:60] + "…"
    raise WrongInput(
        f"{shown!r} is neither a change set name (a letter, then letters, digits and hyphens) nor a change set "
        "ARN (arn:aws:cloudformation:<region>:<account>:changeSet/<name>/<id>)"
    )


def describe_change_set(cfn: Any, change_set: str, stack_name: str | None = None) -> ChangeSet:
    """The change set (by ARN, or by name with its stack), with property values where CloudFormation
    gives them (IncludePropertyValues). An ARN names its stack itself: the stack name is not sent with it."""
    named = {"StackName": stack_name} if stack_name and not change_set.startswith("arn:") else {}
    try:
        pages = list(
            cfn.get_paginator("describe_change_set").paginate(
                ChangeSetName=change_set, IncludePropertyValues=True, **named
            )
        )
    except ClientError as e:
        if e.response["Error"]["Code"] == "ChangeSetNotFound":
            where = f" for stack {stack_name}" if stack_name else ""
            raise ChangeSetNotFound(f"change set {change_set} does not exist{where}") from None
        raise
    first = pages[0]
    return ChangeSet(
        arn=first["ChangeSetId"],
        name=first["ChangeSetName"],
        stack_id=first["StackId"],
        stack_name=first.get("StackName", stack_name or ""),
        status=first["Status"],
        execution_status=first.get("ExecutionStatus", ""),
        reason=first.get("StatusReason", ""),
        changes=[_change(c) for page in pages for c in page.get("Changes", []) if c.get("Type") == "Resource"],
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in first.get("Parameters", [])},
        tags={t["Key"]: t["Value"] for t in first["Tags"]} if "Tags" in first else None,
    )


def parameters_for(
    plan: Plan, given: dict[str, str], template_defaults: dict[str, str | None], stack_parameters: Iterable[str]
) -> list[dict]:
    """The file's parameters. On CREATE, every default is sent too, so the stack records each value
    explicitly; on UPDATE, a parameter the file leaves out keeps its previous value (UsePreviousValue)."""
    entries = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(given.items())]
    if plan is Plan.CREATE:
        entries += [
            {"ParameterKey": k, "ParameterValue": default}
            for k, default in sorted(template_defaults.items())
            if k not in given and default is not None
        ]
    else:
        kept = sorted((set(template_defaults) & set(stack_parameters)) - set(given))
        entries += [{"ParameterKey": k, "UsePreviousValue": True} for k in kept]
    return entries


def effective_parameters(entries: list[dict], previous: dict[str, str]) -> dict[str, str]:
    """The values a change set's parameter entries give the stack (UsePreviousValue: the stack's own)."""
    return {
        e["ParameterKey"]: previous.get(e["ParameterKey"], "") if e.get("UsePreviousValue") else e["ParameterValue"]
        for e in entries
    }


# Parameters a deployed stack cannot change: every resource lives in the VPC (a database cannot move to
# another VPC without being replaced), and every name derives from the prefix (the bucket, the secrets and
# the database would all be replaced under new names). Refused before any change set.
FIXED_PARAMETERS = {
    "VpcId": "the database, queue, instances and security groups live in that VPC; make a new stack for another",
    "ResourcePrefix": "every name (bucket, database, secrets, roles) derives from it; make a new stack instead",
}


def fixed_parameter_changes(previous: dict[str, str], effective: dict[str, str]) -> list[str]:
    """One line per FIXED_PARAMETERS value the update would change."""
    return [
        f"{name} cannot change on a deployed stack ({previous[name]} → {effective[name]}): {why}"
        for name, why in FIXED_PARAMETERS.items()
        if name in previous and name in effective and previous[name] != effective[name]
    ]


def template_location(template_body: str, s3: Any | None, bucket: str | None, prefix: str = "valohai-cfn") -> dict:
    """TemplateBody when it fits, else an upload to S3 under a content-addressed key."""
    from valohai_cfn.publish import upload
    from valohai_cfn.render import TEMPLATE_BODY_LIMIT

    if len(template_body.encode()) <= TEMPLATE_BODY_LIMIT:
        return {"TemplateBody": template_body}
    if not bucket or s3 is None:
        raise DeployError(
            f"the template is {len(template_body.encode()):,} bytes, over CloudFormation's "
            f"{TEMPLATE_BODY_LIMIT:,}-byte TemplateBody limit: give --bucket to upload it to S3 first"
        )
    key = upload(s3, bucket, template_body.encode(), prefix)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
    return {"TemplateURL": url}


@dataclass(frozen=True)
class ChangeSetRequest:
    stack_name: str
    plan: Plan  # CREATE or UPDATE
    template: dict[str, str]  # TemplateBody or TemplateURL
    parameters: list[dict]
    tags: dict[str, str]
    role_arn: str | None = None


def new_change_set_name() -> str:
    # Unique per stack: a planned change set that was never executed keeps its name.
    return f"valohai-cfn-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def request_change_set(cfn: Any, request: ChangeSetRequest, name: str) -> str:
    """Ask CloudFormation for the change set; its ARN. (It is computed afterwards: wait_for_change_set.)"""
    role = {"RoleARN": request.role_arn} if request.role_arn else {}
    response = cfn.create_change_set(
        StackName=request.stack_name,
        ChangeSetName=name,
        ChangeSetType=request.plan.value,
        Parameters=request.parameters,
        Capabilities=CAPABILITIES,
        Tags=[{"Key": k, "Value": v} for k, v in sorted({**request.tags, VALOHAI_TAG[0]: VALOHAI_TAG[1]}.items())],
        Description="valohai-cfn deploy",
        **role,
        **request.template,
    )
    return response["Id"]


def wait_for_change_set(cfn: Any, arn: str, kind: str) -> ChangeSet:
    """The change set once CloudFormation has computed it (or found nothing to change); `kind` is its type
    (CREATE or UPDATE), which DescribeChangeSet does not give."""
    change_set = describe_change_set(cfn, arn)
    if change_set.status not in ("CREATE_COMPLETE", "FAILED"):
        # A FAILED change set ends the waiter too; it is described below with its reason ("no changes" among them).
        with contextlib.suppress(WaiterError):
            cfn.get_waiter("change_set_create_complete").wait(
                ChangeSetName=arn, WaiterConfig={"Delay": POLL_SECONDS, "MaxAttempts": 900}
            )
        change_set = describe_change_set(cfn, arn)
    change_set.kind = kind
    return change_set


def create_change_set(cfn: Any, request: ChangeSetRequest, name: str) -> ChangeSet:
    """Create the change set and wait until CloudFormation has computed it (or found nothing to change)."""
    return wait_for_change_set(cfn, request_change_set(cfn, request, name), request.plan.value)


def discard(cfn: Any, change_set: ChangeSet, *, made_stack: bool) -> bool:
    """Delete a change set that will not be executed and, when `made_stack` (its CREATE made the stack: it did
    not exist before), the stack it made, if that is still empty (REVIEW_IN_PROGRESS) and no other change set
    waits in it. True when the stack went too."""
    cfn.delete_change_set(ChangeSetName=change_set.arn)
    if not made_stack:
        return False
    stack = described_or_none(cfn, change_set.stack_id)
    if stack and stack["StackStatus"] == "REVIEW_IN_PROGRESS":
        left = cfn.list_change_sets(StackName=change_set.stack_id).get("Summaries", [])
        if not left:  # another plan's change set still waits for review: keep the stack for it
            cfn.delete_stack(StackName=change_set.stack_id)
            return True
    return False


def as_document(body: Any) -> dict[str, Any]:
    """A template body as GetTemplate gives it: botocore parses a JSON body into a dict; a YAML body (short-form
    tags included) is text, read with cfn-flip."""
    if isinstance(body, dict):
        return body
    import cfn_flip

    return cfn_flip.load(body)[0]


def template_of(cfn: Any, **which: str) -> dict[str, Any]:
    """A deployed template (StackName=…) or a change set's (ChangeSetName=…), as CloudFormation stores it
    (the original, loops and all), as a document."""
    return as_document(cfn.get_template(TemplateStage="Original", **which)["TemplateBody"])


# -- protections ---------------------------------------------------------------------------------


class Protection(enum.Enum):
    TERMINATION = "termination protection"
    STACK_POLICY = "stack policy"


@dataclass(frozen=True)
class Protections:
    """What every stack this tool makes carries: termination protection (unless declined) and the stack
    policy that stops an update from replacing or deleting what holds data."""

    termination: bool
    stack_policy: str | None


def ensure_protections(cfn: Any, stack: str, protections: Protections, *, new: bool = False) -> list[Protection]:
    """Apply what is missing or was changed; returns what had to be (re)applied. Idempotent, so it runs as
    soon as a stack exists and again on every deploy: a deploy interrupted before it could apply them, or a
    policy edited by hand, is mended by the next one. A `new` stack has neither: nothing is looked up."""
    applied = []
    if protections.termination and (new or not describe(cfn, stack).get("EnableTerminationProtection")):
        cfn.update_termination_protection(EnableTerminationProtection=True, StackName=stack)
        applied.append(Protection.TERMINATION)
    if protections.stack_policy:
        current = None if new else cfn.get_stack_policy(StackName=stack).get("StackPolicyBody")
        if not current or json.loads(current) != json.loads(protections.stack_policy):
            cfn.set_stack_policy(StackName=stack, StackPolicyBody=protections.stack_policy)
            applied.append(Protection.STACK_POLICY)
    return applied


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C waits until the block is done, then takes effect: the calls inside (execute, then protect)
    happen together or not at all. Only the main thread receives signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


# -- following a stack operation -----------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    done: int
    in_progress: int
    failed: int
    total: int | None  # resources the operation touches, when known (the change set's changes)
    elapsed: float
    stack_status: str | None


class Progress(Protocol):
    """Where a followed operation reports: new events (oldest first), and the tally after every poll."""

    def events(self, events: list[dict]) -> None: ...

    def tally(self, tally: Tally) -> None: ...


def _is_failure(status: str) -> bool:
    return status.endswith("_FAILED")


def _is_stack_event(event: dict) -> bool:
    """An event of the stack itself, not of one of its resources."""
    return event.get("PhysicalResourceId") == event["StackId"] or event.get("ResourceType") == (
        "AWS::CloudFormation::Stack"
    )


def newest_event_id(cfn: Any, stack: str) -> str | None:
    """The stack's newest event now: what is newer belongs to the operation about to start."""
    try:
        page = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise
    return page[0]["EventId"] if page else None


@dataclass
class EventFollower:
    """The events of one stack operation, each once: those newer than `after` (the newest event before the
    operation started) and, when the operation's ClientRequestToken is known, carrying it. No clock is
    compared: a machine whose clock is off sees the same events."""

    cfn: Any
    stack: str  # name or id
    after: str | None
    token: str | None = None
    seen: set[str] = field(default_factory=set)
    states: dict[str, str] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)

    def _is_ours(self, event: dict) -> bool:
        token = event.get("ClientRequestToken")
        return not (self.token and token and token != self.token)

    def poll(self) -> list[dict]:
        """The new events, oldest first; paging stops at the first event already seen."""
        fresh: list[dict] = []
        for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=self.stack):
            for event in page["StackEvents"]:  # newest first
                if event["EventId"] in self.seen or event["EventId"] == self.after:
                    break
                if self._is_ours(event):
                    fresh.append(event)
            else:
                continue
            break
        fresh.reverse()
        for event in fresh:
            self.seen.add(event["EventId"])
            self.events.append(event)
            if not _is_stack_event(event):
                self.states[event["LogicalResourceId"]] = event["ResourceStatus"]
        return fresh

    def tally(self, total: int | None, elapsed: float, stack_status: str | None) -> Tally:
        states = self.states.values()
        return Tally(
            done=sum(s.endswith(("_COMPLETE", "_SKIPPED")) for s in states),
            in_progress=sum(s.endswith("_IN_PROGRESS") for s in states),
            failed=sum(_is_failure(s) for s in states),
            total=total,
            elapsed=elapsed,
            stack_status=stack_status,
        )


def root_cause(events: list[dict]) -> dict | None:
    """The first failure in time that is not just a cancellation caused by another; the stack's own failure
    when no resource failed (a template the operation refused as a whole)."""
    failures = [e for e in events if _is_failure(e["ResourceStatus"]) and not _is_stack_event(e)]
    for event in failures:
        if not any(c in event.get("ResourceStatusReason", "") for c in CANCELLED_REASONS):
            return event
    if failures:
        return failures[0]
    stack_failures = [e for e in events if _is_failure(e["ResourceStatus"]) and e.get("ResourceStatusReason")]
    return stack_failures[0] if stack_failures else None


@dataclass
class Outcome:
    """How a followed operation ended."""

    status: str | None  # None: the stack is gone
    events: list[dict] = field(default_factory=list)
    protections: list[Protection] = field(default_factory=list)
    stack: dict | None = None  # as last described (its Outputs among it)
    interrupted: bool = False  # Ctrl-C came once the operation's end had been seen

    @property
    def root_cause(self) -> dict | None:
        return root_cause(self.events)


def _throttled(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in THROTTLING_CODES


def follow(
    cfn: Any,
    stack: str,
    *,
    progress: Progress,
    after: str | None,
    token: str | None = None,
    total: int | None = None,
    stack_name: str | None = None,
) -> Outcome:
    """Follow the stack (name or id) until no operation is in progress. Polls every POLL_SECONDS; a
    throttled poll waits longer and tries again; AWS out of reach stops watching (StoppedWatching), the
    operation going on in AWS."""
    clock = time.monotonic
    follower = EventFollower(cfn, stack, after, token)
    start = clock()
    wait = POLL_SECONDS
    while True:
        ended, interrupted = False, False
        try:
            described = described_or_none(cfn, stack)
            status = described["StackStatus"] if described else None
            ended = status is None or not status.endswith("_IN_PROGRESS")
            fresh = follower.poll() if status else []
            wait = POLL_SECONDS
            if fresh:
                progress.events(fresh)
            progress.tally(follower.tally(total, clock() - start, status))
        except ClientError as e:
            if not _throttled(e):
                raise
            wait = min(wait * 2, THROTTLED_SECONDS_MAX)
            time.sleep(wait)
            continue
        except (BotocoreConnectionError, HTTPClientError) as e:
            raise StoppedWatching(f"lost the connection to AWS ({e}). {resume_hint(stack_name or stack)}") from None
        except KeyboardInterrupt:
            if not ended:
                raise
            interrupted = True  # the end was seen: nothing goes on in AWS, whatever the last events say
        if ended:
            # The events were read after this status, so they already include the operation's last ones.
            return Outcome(status, follower.events, stack=described, interrupted=interrupted)
        time.sleep(POLL_SECONDS)


# The app instance's boot signals FAILURE with the step that failed as the signal's unique id (SignalResource has
# no other field for it); CloudFormation shows it in the instance's status reason.
BOOT_FAILURE = re.compile(r"Received FAILURE signal with UniqueId (?P<step>.+)$")
BOOT_TIMEOUT = "Failed to receive"
BOOT_LOG = "its log is /var/log/cloud-init-output.log on the instance (Session Manager)"


def cause_text(event: dict) -> str:
    """An event's reason as the root cause of a failure: the boot's own words when the app instance failed."""
    reason = event.get("ResourceStatusReason", "no reason given")
    if event.get("ResourceType") != "AWS::EC2::Instance":
        return reason
    boot = BOOT_FAILURE.search(reason)
    if boot:
        return f"the app instance's boot stopped at: {boot.group('step')} ({BOOT_LOG})"
    if reason.startswith(BOOT_TIMEOUT):
        return f"{reason}: the app instance's boot did not finish in time ({BOOT_LOG})"
    return reason


def is_success(status: str | None, action: str) -> bool:
    if action == "DELETE":
        return status in (None, "DELETE_COMPLETE")
    return status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")


@contextlib.contextmanager
def stopped_watching_on_ctrl_c(stack_name: str) -> Iterator[None]:
    """Ctrl-C while following leaves the stack's operation alone and says how to resume watching."""
    try:
        yield
    except KeyboardInterrupt:
        raise StoppedWatching(resume_hint(stack_name)) from None


def wait_until_settled(cfn: Any, stack_name: str, progress: Progress) -> StackState:
    """Follow another operation (not ours: no token) to its end; the stack's state afterwards."""
    with stopped_watching_on_ctrl_c(stack_name):
        follow(cfn, stack_name, progress=progress, after=newest_event_id(cfn, stack_name), stack_name=stack_name)
    return stack_state(cfn, stack_name)


# -- status, outputs, drift and delete -----------------------------------------------------------


def last_events(cfn: Any, stack_name: str, count: int = 10) -> list[dict]:
    events: list[dict] = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack_name):
        events.extend(page["StackEvents"])
        if len(events) >= count:
            break
    return list(reversed(events[:count]))


def last_operation_events(cfn: Any, stack: str, limit: int = 2000) -> list[dict]:
    """The events of the stack's latest operation, oldest first: back to its User Initiated start."""
    events: list[dict] = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack):
        for event in page["StackEvents"]:
            events.append(event)
            started = event["ResourceStatus"].endswith("_IN_PROGRESS") and USER_INITIATED in event.get(
                "ResourceStatusReason", ""
            )
            if (_is_stack_event(event) and started) or len(events) >= limit:
                return list(reversed(events))
    return list(reversed(events))


def has_failed(status: str) -> bool:
    return _is_failure(status) or "ROLLBACK" in status


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in sorted(stack.get("Outputs", []), key=lambda o: o["OutputKey"])}


def _resource_drifts(cfn: Any, stack: str, statuses: tuple[str, ...]) -> Iterator[dict]:
    """The resources of these drift statuses, every page (boto3 has no paginator for this call)."""
    token: dict[str, str] = {}
    while True:
        page = cfn.describe_stack_resource_drifts(
            StackName=stack, StackResourceDriftStatusFilters=list(statuses), **token
        )
        yield from page["StackResourceDrifts"]
        if not page.get("NextToken"):
            return
        token = {"NextToken": page["NextToken"]}


@dataclass(frozen=True)
class Drift:
    logical_id: str
    resource_type: str
    status: str  # MODIFIED, DELETED
    differences: tuple[tuple[str, str, str, str], ...]  # (property path, expected, actual, ADD/REMOVE/NOT_EQUAL)


def detect_drift(cfn: Any, stack: str, on_wait: Any = None) -> tuple[str, list[Drift], list[tuple[str, str]]]:
    """Run drift detection and wait for it; the stack's drift status, each drifted resource, and the resources
    it did not check (NOT_CHECKED: a type drift detection does not cover; "in sync" says nothing of them) as
    (logical id, resource type), each list sorted. CloudFormation has no waiter for drift detection, so it is
    polled; `on_wait(elapsed)` sees each poll."""
    detection = cfn.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
    start = time.monotonic()
    while True:
        status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
        if status["DetectionStatus"] != "DETECTION_IN_PROGRESS":
            break
        if on_wait:
            on_wait(time.monotonic() - start)
        time.sleep(POLL_SECONDS)
    if status["DetectionStatus"] == "DETECTION_FAILED" and "StackDriftStatus" not in status:
        raise DeployError(f"drift detection failed: {status.get('DetectionStatusReason', 'no reason given')}")
    drifted, unchecked = [], set()
    for d in _resource_drifts(cfn, stack, ("MODIFIED", "DELETED", "NOT_CHECKED")):
        if d["StackResourceDriftStatus"] == "NOT_CHECKED":
            unchecked.add((d["LogicalResourceId"], d["ResourceType"]))
            continue
        differences = tuple(
            (p["PropertyPath"], p.get("ExpectedValue", ""), p.get("ActualValue", ""), p["DifferenceType"])
            for p in d.get("PropertyDifferences", [])
        )
        drifted.append(Drift(d["LogicalResourceId"], d["ResourceType"], d["StackResourceDriftStatus"], differences))
    return (
        status.get("StackDriftStatus", "UNKNOWN"),
        sorted(drifted, key=lambda d: d.logical_id),
        sorted(unchecked),
    )


@dataclass(frozen=True)
class Kept:
    logical_id: str
    resource_type: str
    physical_id: str
    policy: str


def deletion(cfn: Any, stack_id: str) -> tuple[list[Kept], list[tuple[str, str]]]:
    """What deleting the stack does: the resources that outlive it (DeletionPolicy Retain, or Snapshot: a
    final snapshot stays), and those it removes, as (logical id, resource type)."""
    # Processed: after the transform, with the loops' resources as they were made (the original has the loops).
    template = as_document(cfn.get_template(StackName=stack_id, TemplateStage="Processed")["TemplateBody"])
    policies = {
        name: r["DeletionPolicy"]
        for name, r in template.get("Resources", {}).items()
        if r.get("DeletionPolicy") in ("Retain", "Snapshot", "RetainExceptOnCreate")
    }
    kept, removed = [], []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id):
        for r in page["StackResourceSummaries"]:
            logical_id, status = r["LogicalResourceId"], r["ResourceStatus"]
            physical_id = r.get("PhysicalResourceId", "")
            if logical_id in policies:
                if status != "DELETE_COMPLETE":  # DELETE_SKIPPED: retained by an earlier delete, still there
                    kept.append(Kept(logical_id, r["ResourceType"], physical_id, policies[logical_id]))
            elif status not in ("DELETE_COMPLETE", "DELETE_SKIPPED"):
                removed.append((logical_id, r["ResourceType"]))
    return sorted(kept, key=lambda k: k.logical_id), sorted(removed)
