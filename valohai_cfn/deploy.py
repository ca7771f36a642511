"""The change-set lifecycle: decide, create, show, guard, execute, follow — and status and delete.

Everything takes a boto3 CloudFormation client, so tests hand it one pointed at a local server or
wrapped in botocore's Stubber. Failures, rollbacks and replacements are read from the shapes real
CloudFormation returns, which the local AWS cannot produce.
"""

from __future__ import annotations

import contextlib
import enum
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import cfn_flip
from botocore.exceptions import ClientError, WaiterError

from valohai_cfn.publish import upload
from valohai_cfn.render import TEMPLATE_BODY_LIMIT
from valohai_cfn.stack.policy import PROTECTED_TYPES

# Prints one line. An echo may also have `status(text)`, a line redrawn in place (see `follow`).
Echo = Callable[[str], None]

# Polling at 1 s: awscli sleeps 5 s between change-set checks and 30 s between stack checks.
POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
VALOHAI_TAG = ("valohai", "1")
# Named IAM roles, and the AWS::LanguageExtensions transform (Fn::ForEach makes the worker groups).
CAPABILITIES = ["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# Resources whose removal or replacement loses data; the deploy refuses those without --allow-replace.
# The stack policy's protected types plus the queue, whose in-flight jobs a replacement would drop.
DATA_RESOURCE_TYPES = frozenset({*PROTECTED_TYPES, "AWS::ElastiCache::ReplicationGroup"})
# The messages CloudFormation gives a change set with nothing in it (create-change-set and deploy).
NO_CHANGES_REASONS = ("didn't contain changes", "No updates are to be performed")
CANCELLED_REASONS = ("Resource creation cancelled", "Resource update cancelled", "Resource deletion cancelled")
UPDATABLE_STATUSES = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)
FAILED_CREATE_STATUSES = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"})


class DeployError(Exception):
    """A deploy that cannot go on; the message says why and what to do."""


class Plan(enum.Enum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    RECREATE = "RECREATE"  # a failed first create: delete, then CREATE
    WAIT = "WAIT"  # an operation is under way
    REFUSE = "REFUSE"  # a state only an operator can resolve (UPDATE_ROLLBACK_FAILED, …)


def plan_for(status: str | None) -> Plan:
    """What a deploy does with a stack in this status (None: no such stack)."""
    if status is None or status == "REVIEW_IN_PROGRESS":
        return Plan.CREATE
    if status in UPDATABLE_STATUSES:
        return Plan.UPDATE
    if status in FAILED_CREATE_STATUSES:
        return Plan.RECREATE
    if status.endswith("_IN_PROGRESS"):
        return Plan.WAIT
    return Plan.REFUSE


def _described(cfn: Any, stack: str) -> dict | None:
    """The stack (by name or id), or None when there is none."""
    try:
        (described,) = cfn.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise
    return described


def stack_status(cfn: Any, stack: str) -> str | None:
    described = _described(cfn, stack)
    return described["StackStatus"] if described else None


# -- the change set ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    action: str
    logical_id: str
    resource_type: str
    replacement: str  # "True", "False", "Conditional", or "" where CloudFormation gives none
    forced_by: tuple[str, ...] = ()  # properties whose change requires recreation

    @property
    def loses_data(self) -> bool:
        replaced = self.action == "Modify" and self.replacement in ("True", "Conditional")
        return self.resource_type in DATA_RESOURCE_TYPES and (self.action == "Remove" or replaced)


@dataclass
class ChangeSet:
    arn: str
    name: str
    stack_id: str
    status: str
    reason: str = ""
    changes: list[Change] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return self.status == "FAILED" and any(r in self.reason for r in NO_CHANGES_REASONS)


def _change(entry: dict) -> Change:
    rc = entry["ResourceChange"]
    forced = tuple(
        sorted(
            {
                d["Target"].get("Name") or d["Target"].get("Attribute", "")
                for d in rc.get("Details", [])
                if d.get("Target", {}).get("RequiresRecreation") in ("Always", "Conditionally")
            }
        )
    )
    return Change(
        action=rc["Action"],
        logical_id=rc["LogicalResourceId"],
        resource_type=rc["ResourceType"],
        replacement=rc.get("Replacement", ""),
        forced_by=forced,
    )


def describe_change_set(cfn: Any, change_set_arn: str) -> ChangeSet:
    pages = list(cfn.get_paginator("describe_change_set").paginate(ChangeSetName=change_set_arn))
    first = pages[0]
    return ChangeSet(
        arn=first["ChangeSetId"],
        name=first["ChangeSetName"],
        stack_id=first["StackId"],
        status=first["Status"],
        reason=first.get("StatusReason", ""),
        changes=[_change(c) for page in pages for c in page.get("Changes", []) if c.get("Type") == "Resource"],
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


def template_location(template_body: str, s3: Any | None, bucket: str | None, prefix: str = "valohai-cfn") -> dict:
    """TemplateBody when it fits, else an upload to S3 under a content-addressed key."""
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


def create_change_set(
    cfn: Any, *, stack_name: str, plan: Plan, template: dict, parameters: list[dict], tags: dict[str, str], echo: Echo
) -> ChangeSet:
    # Unique per stack: a planned change set that was never executed keeps its name.
    name = f"valohai-cfn-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    response = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=name,
        ChangeSetType="CREATE" if plan is Plan.CREATE else "UPDATE",
        Parameters=parameters,
        Capabilities=CAPABILITIES,
        Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        Description="valohai-cfn deploy",
        **template,
    )
    echo(f"Creating change set {name} ({plan.value}) for stack {stack_name}…")
    change_set = describe_change_set(cfn, response["Id"])
    if change_set.status in ("CREATE_COMPLETE", "FAILED"):
        return change_set
    # A FAILED change set ends the waiter too; it is described below with its reason ("no changes" among them).
    with contextlib.suppress(WaiterError):
        cfn.get_waiter("change_set_create_complete").wait(
            ChangeSetName=response["Id"], WaiterConfig={"Delay": POLL_SECONDS, "MaxAttempts": 900}
        )
    return describe_change_set(cfn, response["Id"])


def change_table(changes: list[Change]) -> str:
    if not changes:
        return "No resource changes: only parameter values or stack tags change."
    rows = [("Action", "Logical ID", "Resource type", "Replacement")]
    rows += [(c.action, c.logical_id, c.resource_type, c.replacement or "-") for c in changes]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def data_loss_refusal(changes: list[Change]) -> str | None:
    """The message refusing a change that removes or replaces a data resource, or None."""
    risky = [c for c in changes if c.loses_data]
    if not risky:
        return None
    lines = ["This change would lose data; refusing without --allow-replace:"]
    for c in risky:
        what = "removed" if c.action == "Remove" else f"replaced (Replacement: {c.replacement})"
        why = f", forced by {', '.join(c.forced_by)}" if c.forced_by else ""
        lines.append(f"  {c.logical_id} ({c.resource_type}) would be {what}{why}")
    return "\n".join(lines)


# -- following a stack operation -----------------------------------------------------------------


def _is_failure(status: str) -> bool:
    return status.endswith("_FAILED")


def _is_stack_event(event: dict) -> bool:
    """An event of the stack itself, not of one of its resources."""
    return event.get("PhysicalResourceId") == event["StackId"]


@dataclass
class EventFollower:
    """Prints each event of one stack operation once, with a running tally, until the stack settles."""

    cfn: Any
    stack: str  # name or id
    echo: Echo
    since: datetime
    client_request_token: str | None = None
    seen: set[str] = field(default_factory=set)
    states: dict[str, str] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)

    def _new_events(self) -> list[dict]:
        fresh = []
        for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=self.stack):
            for event in page["StackEvents"]:  # newest first
                if event["Timestamp"] < self.since:
                    return list(reversed(fresh))
                token = event.get("ClientRequestToken")
                if self.client_request_token and token and token != self.client_request_token:
                    continue
                if event["EventId"] not in self.seen:
                    fresh.append(event)
        return list(reversed(fresh))

    def poll(self) -> int:
        fresh = self._new_events()
        for event in fresh:
            self.seen.add(event["EventId"])
            self.events.append(event)
            if not _is_stack_event(event):
                self.states[event["LogicalResourceId"]] = event["ResourceStatus"]
            reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            self.echo(
                f"{event['Timestamp']:%H:%M:%S}  {event['ResourceStatus']:<28} {event['LogicalResourceId']} "
                f"({event['ResourceType']}){reason}"
            )
        return len(fresh)

    def tally(self, elapsed: float) -> str:
        done = sum(s.endswith("_COMPLETE") for s in self.states.values())
        running = sum(s.endswith("_IN_PROGRESS") for s in self.states.values())
        failed = sum(_is_failure(s) for s in self.states.values())
        return f"[{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] {done} done, {running} in progress, {failed} failed"

    def root_cause(self) -> dict | None:
        """The first failure in time that is not just a cancellation caused by another."""
        failures = [e for e in self.events if _is_failure(e["ResourceStatus"]) and not _is_stack_event(e)]
        for event in failures:
            if not any(c in event.get("ResourceStatusReason", "") for c in CANCELLED_REASONS):
                return event
        return failures[0] if failures else None


def follow(cfn: Any, stack: str, *, since: datetime, echo: Echo, client_request_token: str | None = None) -> str | None:
    """Follow the stack (name or id) until no operation is in progress; the final status (None: gone).

    Polls every POLL_SECONDS and prints each new event once. The tally (done, in progress, failed,
    elapsed) goes to `echo.status` where the echo has one (a terminal: one line redrawn every poll);
    otherwise it is printed as a line whenever events came, or every HEARTBEAT_SECONDS when none did."""
    clock = time.monotonic
    status_line = getattr(echo, "status", None)
    follower = EventFollower(cfn, stack, echo, since, client_request_token)
    start = last_print = clock()
    while True:
        status = stack_status(cfn, stack)
        if status is None:
            echo(f"{follower.tally(clock() - start)}; the stack is gone")
            return None
        fresh = follower.poll()
        tally = follower.tally(clock() - start) + f"; stack {status}"
        settled = not status.endswith("_IN_PROGRESS")
        if status_line and not settled:
            status_line(tally)
        elif fresh or settled or clock() - last_print >= HEARTBEAT_SECONDS:
            echo(tally)
            last_print = clock()
        if settled:
            # The events were read after this status, so they already include the operation's last ones.
            _report_outcome(follower, status, echo)
            return status
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


def _report_outcome(follower: EventFollower, status: str, echo: Echo) -> None:
    if _is_failure(status) or "ROLLBACK" in status:
        cause = follower.root_cause()
        if cause:
            echo(
                f"Root cause: {cause['LogicalResourceId']} ({cause['ResourceType']}) {cause['ResourceStatus']}: "
                f"{cause_text(cause)}"
            )


def is_success(status: str | None, action: str) -> bool:
    if action == "DELETE":
        return status in (None, "DELETE_COMPLETE")
    return status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")


def wait_until_settled(cfn: Any, stack_name: str, echo: Echo) -> str | None:
    echo(f"Stack {stack_name} has an operation in progress; waiting for it to settle (Ctrl-C to stop waiting)…")
    return follow(cfn, stack_name, since=datetime.now(timezone.utc), echo=echo)


def execute(cfn: Any, change_set: ChangeSet, echo: Echo) -> str | None:
    token = f"valohai-cfn-{uuid.uuid4()}"
    since = datetime.now(timezone.utc)
    echo(f"Executing change set {change_set.name}…")
    try:
        cfn.execute_change_set(ChangeSetName=change_set.arn, ClientRequestToken=token)
    except ClientError as e:
        raise DeployError(f"executing the change set failed: {e.response['Error'].get('Message', e)}") from e
    # Followed by id: a name can come to mean another stack (deleted and made again), an id cannot.
    return follow(cfn, change_set.stack_id, since=since, echo=echo, client_request_token=token)


def resume_hint(stack_name: str) -> str:
    return f"The stack operation goes on in AWS. Resume watching with: valohai-cfn status {stack_name} --watch"


# -- status and delete ---------------------------------------------------------------------------


def describe(cfn: Any, stack_name: str) -> dict:
    described = _described(cfn, stack_name)
    if described is None:
        raise DeployError(f"stack {stack_name} does not exist")
    return described


def last_events(cfn: Any, stack_name: str, count: int = 10) -> list[dict]:
    events: list[dict] = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack_name):
        events.extend(page["StackEvents"])
        if len(events) >= count:
            break
    return list(reversed(events[:count]))


@dataclass(frozen=True)
class Kept:
    logical_id: str
    resource_type: str
    physical_id: str
    policy: str


def kept_on_delete(cfn: Any, stack_name: str) -> list[Kept]:
    """Resources that outlive the stack: DeletionPolicy Retain, or Snapshot (a final snapshot stays)."""
    # Processed: after the transform, with the loops' resources as they were made (the original has the loops).
    body = cfn.get_template(StackName=stack_name, TemplateStage="Processed")["TemplateBody"]
    # botocore parses a JSON body into a dict; a YAML body (short-form tags included) goes through cfn_flip.
    template = body if isinstance(body, dict) else cfn_flip.load(body)[0]
    policies = {
        name: r["DeletionPolicy"]
        for name, r in template.get("Resources", {}).items()
        if r.get("DeletionPolicy") in ("Retain", "Snapshot", "RetainExceptOnCreate")
    }
    kept = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for r in page["StackResourceSummaries"]:
            if r["LogicalResourceId"] in policies:
                kept.append(
                    Kept(
                        r["LogicalResourceId"],
                        r["ResourceType"],
                        r.get("PhysicalResourceId", ""),
                        policies[r["LogicalResourceId"]],
                    )
                )
    return sorted(kept, key=lambda k: k.logical_id)


# -- the whole deploy ----------------------------------------------------------------------------


class StoppedWatching(DeployError):
    """Ctrl-C while following: the operation goes on in AWS."""


@dataclass(frozen=True)
class DeployRequest:
    stack_name: str
    template_body: str
    template_defaults: dict[str, str | None]  # every template parameter, with its Default (None: required)
    parameters: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)
    bucket: str | None = None
    allow_replace: bool = False
    recreate_failed: bool = False
    termination_protection: bool = True
    execute: bool = True  # False: create the change set, show it and stop (`valohai-cfn plan`)
    stack_policy: str | None = None


@contextlib.contextmanager
def _ctrl_c_stops_watching(stack_name: str) -> Iterator[None]:
    """Ctrl-C while following leaves the stack's operation alone and says how to resume watching."""
    try:
        yield
    except KeyboardInterrupt:
        raise StoppedWatching(resume_hint(stack_name)) from None


def _settle(cfn: Any, request: DeployRequest, echo: Echo) -> tuple[Plan, dict | None]:
    """What to do with the stack, and the stack as last described (None when it is to be created)."""
    stack = _described(cfn, request.stack_name)
    plan = plan_for(stack["StackStatus"] if stack else None)
    if plan is Plan.WAIT:
        with _ctrl_c_stops_watching(request.stack_name):
            wait_until_settled(cfn, request.stack_name, echo)
        stack = _described(cfn, request.stack_name)
        plan = plan_for(stack["StackStatus"] if stack else None)
    status = stack["StackStatus"] if stack else None
    if plan is Plan.RECREATE:
        if not request.recreate_failed:
            raise DeployError(
                f"stack {request.stack_name} is {status}: a stack whose first create failed cannot be updated. "
                f"Delete it (valohai-cfn delete {request.stack_name}) or deploy with --recreate-failed"
            )
        echo(f"Stack {request.stack_name} is {status}; deleting it to create it again (--recreate-failed)…")
        delete_stack(cfn, request.stack_name, echo=echo)
        return Plan.CREATE, None
    if plan is Plan.REFUSE:
        raise DeployError(
            f"stack {request.stack_name} is {status}, which needs an operator: resolve it in the console "
            "(for UPDATE_ROLLBACK_FAILED, `aws cloudformation continue-update-rollback`) and deploy again"
        )
    return plan, stack


def _finish_create(cfn: Any, request: DeployRequest, echo: Echo) -> None:
    if request.termination_protection:
        cfn.update_termination_protection(EnableTerminationProtection=True, StackName=request.stack_name)
        echo("Termination protection is on (valohai-cfn delete --force lifts it).")
    if request.stack_policy:
        cfn.set_stack_policy(StackName=request.stack_name, StackPolicyBody=request.stack_policy)
        echo("Stack policy applied: the database, bucket and secrets cannot be replaced or deleted by an update.")


def deploy(
    cfn: Any, request: DeployRequest, *, echo: Echo, confirm: Callable[[str], bool] | None, s3: Any | None = None
) -> str:
    """Create or update the stack through a change set. Returns "up-to-date", "planned", "created" or
    "updated"; raises DeployError (StoppedWatching on Ctrl-C) when it cannot finish.

    `confirm` asks the user; None means nobody can be asked (no terminal and no --yes).
    """
    plan, stack = _settle(cfn, request, echo)
    stack_parameters = [p["ParameterKey"] for p in stack.get("Parameters", [])] if plan is Plan.UPDATE else []
    change_set = create_change_set(
        cfn,
        stack_name=request.stack_name,
        plan=plan,
        template=template_location(request.template_body, s3, request.bucket),
        parameters=parameters_for(plan, request.parameters, request.template_defaults, stack_parameters),
        tags={**request.tags, VALOHAI_TAG[0]: VALOHAI_TAG[1]},
        echo=echo,
    )
    if change_set.is_empty:
        cfn.delete_change_set(ChangeSetName=change_set.arn)
        echo(f"Stack {request.stack_name} is up to date: no changes.")
        return "up-to-date"
    if change_set.status != "CREATE_COMPLETE":
        raise DeployError(f"change set {change_set.name} is {change_set.status}: {change_set.reason}")
    echo(change_table(change_set.changes))
    refusal = data_loss_refusal(change_set.changes)
    if refusal and not request.allow_replace:
        cfn.delete_change_set(ChangeSetName=change_set.arn)
        raise DeployError(refusal + "\nNothing was changed.")
    if not request.execute or confirm is None or not confirm(f"Execute change set {change_set.name}?"):
        echo(
            f"Change set {change_set.name} is ready and was not executed. Execute it with "
            f"`valohai-cfn deploy ... --yes`, or in the console."
        )
        return "planned"
    with _ctrl_c_stops_watching(request.stack_name):
        final = execute(cfn, change_set, echo)
    if not is_success(final, plan.value):
        raise DeployError(f"stack {request.stack_name} ended in {final}")
    if plan is Plan.CREATE:
        _finish_create(cfn, request, echo)
    echo(f"Stack {request.stack_name} is {final}.")
    return "created" if plan is Plan.CREATE else "updated"


def delete_stack(cfn: Any, stack_name: str, *, echo: Echo, lift_protection: bool = False) -> None:
    stack_id = describe(cfn, stack_name)["StackId"]
    if lift_protection:
        cfn.update_termination_protection(EnableTerminationProtection=False, StackName=stack_name)
        echo("Termination protection lifted (--force).")
    token = f"valohai-cfn-{uuid.uuid4()}"
    since = datetime.now(timezone.utc)
    cfn.delete_stack(StackName=stack_id, ClientRequestToken=token)
    with _ctrl_c_stops_watching(stack_name):
        final = follow(cfn, stack_id, since=since, echo=echo, client_request_token=token)
    if not is_success(final, "DELETE"):
        raise DeployError(f"deleting stack {stack_name} ended in {final}")
    echo(f"Stack {stack_name} is deleted.")


def prepare_delete(cfn: Any, stack_name: str, *, force: bool) -> tuple[list[Kept], bool]:
    """What deleting would keep, and whether termination protection must be lifted (refused without force)."""
    protected = bool(describe(cfn, stack_name).get("EnableTerminationProtection"))
    if protected and not force:
        raise DeployError(f"stack {stack_name} has termination protection on; add --force to lift it and delete")
    return kept_on_delete(cfn, stack_name), protected
