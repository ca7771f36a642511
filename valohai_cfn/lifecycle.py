"""The stack's lifecycle — deploy (and plan), execute, delete, and recreate a failed first create — as steps
that return data.

A step takes the AWS clients (`aws`: a service name → boto3 client, as valohai_cfn.aws.Clients gives them),
what was asked (a *Request), an `approve` callback (a Question → yes or no; None when nobody can answer) and a
`Reporter` (told each Note of what happens, and given the progress of every operation followed). It returns a
Result, or raises deploy.DeployError (refused or failed; the message says why and what to do),
deploy.WrongInput (an input naming something it cannot be; nothing was changed) or deploy.Interrupted
(Ctrl-C: what was left and what to do with it; StoppedWatching when an operation goes on in AWS). It prints
nothing and asks nothing itself: valohai_cfn.cli.stack parses the options, passes the callback and renders
the notes with valohai_cfn.console.

Its promises, kept in one place (`Promises`, the only code here that changes protections, executes a
change set or deletes):

1. After any step — finished, failed, refused or interrupted — a stack this tool made has termination
   protection and its template's stack policy (each database, bucket and secret denied replacement and
   deletion), unless the user approved removing them for this operation: lifting termination protection to
   delete the stack (delete --force, deploy --recreate-failed), or letting this one update replace what its
   review listed (--allow-replace). Protections change only inside an approved execution or delete, in one
   block with the call it protects that Ctrl-C cannot split (deploy.interrupts_deferred); what an approved
   operation relaxed is put back when the call is refused, the operation fails, or watching is interrupted.
   A refused or declined deploy leaves the stack as it was; one that finds nothing to change mends
   protections a stack this tool made lacks.
2. Only a change set reviewed for the named stack, and approved after that review, is executed. A change
   set given by ARN must belong to the named stack (WrongInput, naming the stack it belongs to).
3. Nothing is deleted that was not listed and approved: a stack only after what its delete keeps and removes
   was reported and the delete approved; a change set only when this run made it and does not execute it;
   the empty stack (REVIEW_IN_PROGRESS) a new stack's change set makes only when this run's change set made
   it. Data held by the stack is never replaced or removed by an update unless approved with --allow-replace.
"""

from __future__ import annotations

import contextlib
import enum
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from valohai_cfn import deploy
from valohai_cfn.deploy import (
    ChangeSet,
    DeployError,
    Interrupted,
    Kept,
    Outcome,
    Plan,
    Progress,
    Protection,
    Protections,
    StackState,
    StoppedWatching,
    WrongInput,
    interrupts_deferred,
)
from valohai_cfn.review import Review

if TYPE_CHECKING:
    from valohai_cfn.images import ResolvedImage
    from valohai_cfn.preflight import Check


class Template(Protocol):
    """The template a step deploys: what is sent, and the same as a document (cli.common.TemplateSource)."""

    body: str
    document: dict[str, Any]

    @property
    def defaults(self) -> dict[str, str | None]: ...


# -- what a step asks, tells and returns ----------------------------------------------------------


class Asked(enum.Enum):
    EXECUTE = "execute"
    DELETE = "delete"
    RECREATE = "recreate"  # delete a failed first create, to create it again


@dataclass(frozen=True)
class Question:
    """What `approve` is asked; the notes before it showed what it is about (the review, the listing)."""

    asked: Asked
    stack_name: str
    stack_id: str = ""
    change_set: ChangeSet | None = None  # EXECUTE
    status: str | None = None  # DELETE and RECREATE: the stack's status
    lifts_termination_protection: bool = False


Approve = Callable[[Question], bool]


@dataclass(frozen=True)
class Waiting:
    stack_name: str
    status: str


@dataclass(frozen=True)
class AccountChecked:
    checks: list[Check]


@dataclass(frozen=True)
class ImagesResolved:
    """What `latest` became for RoiAmiId / WorkerAmiId (valohai_cfn.images)."""

    images: list[ResolvedImage]


@dataclass(frozen=True)
class Stepwise:
    """An update that is one step of a change AWS takes only in steps (the queue's TLS through preferred): what
    this step does, and what comes next (valohai_cfn.transitions)."""

    stack_name: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class CreatingChangeSet:
    stack_name: str
    name: str
    kind: str  # CREATE or UPDATE


@dataclass(frozen=True)
class UpToDate:
    stack_name: str


@dataclass(frozen=True)
class Reviewed:
    stack_name: str
    review: Review
    change_set: ChangeSet | None


@dataclass(frozen=True)
class NotExecuted:
    stack_name: str
    change_set: ChangeSet
    kept: bool  # kept for `valohai-cfn execute`; else deleted
    stack_gone: bool  # the empty stack its CREATE made went with it


@dataclass(frozen=True)
class Relaxed:
    """--allow-replace: the stack policy lets this one update replace or remove these."""

    stack_name: str
    resources: tuple[str, ...]


@dataclass(frozen=True)
class Executing:
    stack_name: str
    change_set: ChangeSet


@dataclass(frozen=True)
class Protected:
    """Protections applied; `denied`: what the stack policy applied denies replacing and deleting."""

    stack_name: str
    applied: tuple[Protection, ...]
    denied: tuple[str, ...]
    mended: bool = False  # put back on a stack that had lost them


@dataclass(frozen=True)
class Failed:
    stack_name: str
    outcome: Outcome


@dataclass(frozen=True)
class DeleteListed:
    """What deleting the stack does: what it keeps and what it removes."""

    stack_name: str
    status: str
    kept: list[Kept]
    removed: list[tuple[str, str]]  # (logical id, resource type)
    lifts_termination_protection: bool


@dataclass(frozen=True)
class Deleting:
    stack_name: str
    lifting: bool


@dataclass(frozen=True)
class Deleted:
    stack_name: str
    recreating: bool = False


class Reporter(Protocol):
    """Where a step tells what happens."""

    def note(self, note: Any) -> None: ...

    def progress(self) -> AbstractContextManager[Progress]: ...


class End(enum.Enum):
    EXECUTED = "executed"
    UP_TO_DATE = "up to date"
    PLANNED = "planned"  # plan: reviewed, not executed
    DECLINED = "declined"
    DELETED = "deleted"


@dataclass
class Result:
    stack_name: str
    end: End
    review: Review | None = None
    change_set: ChangeSet | None = None
    kept: bool = False  # the change set was kept, not executed
    outcome: Outcome | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # the stack's, once executed


class DataLoss(DeployError):
    """The review replaces or removes what holds data and --allow-replace was not given; nothing changed."""

    def __init__(self, review: Review) -> None:
        self.review = review
        lines = ["This change would lose data; refusing without --allow-replace:"]
        for c in review.data_loss:
            what = "removed" if c.action == "Remove" else f"replaced (Replacement: {c.replacement})"
            why = f", forced by {', '.join(c.forced_by)}" if c.forced_by else ""
            lines.append(f"  {c.logical_id} ({c.resource_type}) would be {what}{why}")
        super().__init__("\n".join([*lines, "Nothing was changed."]))


# -- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployRequest:
    """A deploy or plan: checked before any AWS call (the role's ARN)."""

    stack_name: str
    template: Template
    parameters: dict[str, str]  # as given: the file, with --set on top
    tags: dict[str, str] = field(default_factory=dict)
    role_arn: str | None = None
    bucket: str | None = None  # for a template over the TemplateBody limit
    allow_replace: bool = False
    keep: bool = False
    preflight: bool = True
    termination_protection: bool = True
    disable_rollback: bool = False
    recreate_failed: bool = False

    def __post_init__(self) -> None:
        from valohai_cfn.aws_rules import tag_problems

        if self.role_arn is not None:
            deploy.check_role_arn(self.role_arn)
        refused = tag_problems({**self.tags, deploy.VALOHAI_TAG[0]: deploy.VALOHAI_TAG[1]})
        if refused:
            raise WrongInput("; ".join(refused))


@dataclass(frozen=True)
class ExecuteRequest:
    stack_name: str
    change_set: str  # its name, or its full ARN
    allow_replace: bool = False
    termination_protection: bool = True
    disable_rollback: bool = False

    def __post_init__(self) -> None:
        deploy.check_change_set(self.change_set)


@dataclass(frozen=True)
class DeleteRequest:
    stack_name: str
    force: bool = False  # lift termination protection
    role_arn: str | None = None

    def __post_init__(self) -> None:
        if self.role_arn is not None:
            deploy.check_role_arn(self.role_arn)


# -- parameters and policies ----------------------------------------------------------------------


@dataclass(frozen=True)
class SentParameters:
    entries: list[dict]  # as CreateChangeSet takes them
    values: dict[str, str]  # the values the stack would have


def resolve_images(aws: Any, parameters: dict[str, str], report: Reporter) -> dict[str, str]:
    """The parameters with `latest` for RoiAmiId / WorkerAmiId replaced by the newest image Valohai shares with
    the account in the clients' region (valohai_cfn.images), what was chosen reported; the parameters as they
    are, and no AWS call, when neither is `latest`. Raises images.ImageNotShared (one line naming the account
    and region) when none is shared."""
    from valohai_cfn.images import resolve_images as newest_shared

    if not any(v == "latest" for v in parameters.values()):
        return parameters
    resolved_parameters, resolved = newest_shared(aws("ec2"), aws("sts"), parameters)
    if resolved:
        report.note(ImagesResolved(resolved))
    return resolved_parameters


def parameters_to_send(
    plan: Plan, given: dict[str, str], template: Template, stack_parameters: dict[str, str]
) -> SentParameters:
    """The one step where the parameters as given (the file, --set) become the ones sent to CloudFormation:
    on CREATE every default too; on UPDATE what is not given, or given as UsePreviousValue, keeps its previous
    value. WrongInput for UsePreviousValue on a CREATE (CloudFormation refuses it: there is no value to keep),
    or for a parameter the deployed stack does not have."""
    from valohai_cfn.params import previous_values

    kept = previous_values(given)
    if kept and plan is not Plan.UPDATE:
        raise WrongInput(
            f"{', '.join(kept)}: UsePreviousValue keeps a deployed stack's value; this is a new stack: give a "
            "ParameterValue"
        )
    missing = [name for name in kept if name not in stack_parameters]
    if missing:
        raise WrongInput(f"{', '.join(missing)}: UsePreviousValue, but the deployed stack has no such parameter")
    given = {name: value for name, value in given.items() if name not in kept}
    entries = deploy.parameters_for(plan, given, template.defaults, stack_parameters)
    return SentParameters(entries, deploy.effective_parameters(entries, stack_parameters))


@dataclass(frozen=True)
class Policies:
    """The stack policies of one execution, as JSON bodies."""

    during: str  # while it runs: every data resource of both templates, but those approved for replacement
    succeeded: str  # once it succeeded: the new template's own
    otherwise: str  # after a refusal, a failure, a rollback or an interruption: every data resource of both


def _policy(templates: list[dict[str, Any]], replaceable: frozenset[str] = frozenset()) -> str:
    from valohai_cfn.stack.policy import stack_policy, stack_policy_document

    if len(templates) == 1:
        return stack_policy(templates[0], replaceable=replaceable)
    # Several templates: the allow of one, and the denials of all (a resource either template has is denied).
    documents = [stack_policy_document(t, replaceable=replaceable) for t in templates]
    statements = [documents[0]["Statement"][0]]
    denied = sorted({r for d in documents for s in d["Statement"][1:] for r in s["Resource"]})
    if denied:
        statements.append({**next(s for d in documents for s in d["Statement"][1:]), "Resource": denied})
    return json.dumps({"Statement": statements}, indent=2, sort_keys=True) + "\n"


def policies_for(old: dict[str, Any] | None, new: dict[str, Any], replaceable: frozenset[str]) -> Policies:
    both = [new] if old is None else [old, new]
    return Policies(_policy(both, replaceable), _policy([new]), _policy(both))


def denied_by(policy: str) -> tuple[str, ...]:
    """The logical ids a stack policy denies replacing and deleting."""
    denied = []
    for statement in json.loads(policy).get("Statement", []):
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        if statement.get("Effect") == "Deny" and {"Update:Replace", "Update:Delete"} <= set(actions):
            resources = statement.get("Resource", [])
            denied += [r.split("/", 1)[1] for r in (resources if isinstance(resources, list) else [resources])]
    return tuple(sorted(denied))


# -- the promises ---------------------------------------------------------------------------------


class Promises:
    """The one place that executes change sets, deletes, and changes protections: see the module's docstring.
    It also keeps what an interruption would leave, to say so."""

    def __init__(self, cfn: Any, approve: Approve | None, report: Reporter) -> None:
        self.cfn = cfn
        self.approve = approve
        self.report = report
        self._approved_executions: dict[str, str] = {}  # change set ARN → the stack id it was approved for
        self._approved_deletes: set[str] = set()  # stack ids
        self._made: dict[str, tuple[str, str]] = {}  # ARN → (stack, name): made by this run, not yet disposed of
        self._made_stack: dict[str, bool] = {}  # ARN → whether that change set's CREATE made its stack
        self._requested: tuple[str, str] | None = None  # (stack, change set name) asked for, not yet answered
        self._done: list[str] = []  # what this run changed so far, for an interruption's message
        self._under_way: str | None = None  # the stack whose operation goes on in AWS
        self._policy_set: dict[str, str] = {}  # stack id → the policy body this run last set

    # -- interruptions -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Ctrl-C anywhere in the step becomes Interrupted saying what was left and what to do with it (or
        StoppedWatching, when an operation goes on in AWS)."""
        try:
            yield
        except KeyboardInterrupt:
            if self._under_way:
                raise StoppedWatching(deploy.resume_hint(self._under_way)) from None
            raise Interrupted(self.left()) from None

    def left(self) -> str:
        parts = list(self._done)
        if self._requested:
            stack, name = self._requested
            parts.append(
                f"Change set {name} may have been made for stack {stack}: see aws cloudformation list-change-sets "
                f"--stack-name {stack}, and remove it with aws cloudformation delete-change-set --stack-name {stack} "
                f"--change-set-name {name}"
            )
        for arn, (stack, name) in self._made.items():
            empty = self._made_stack[arn]
            parts.append(
                f"Change set {name} of stack {stack} was left, not executed"
                + (f", in the empty stack {stack} (REVIEW_IN_PROGRESS) it made" if empty else "")
                + f". Execute it with: valohai-cfn execute --stack-name {stack} {name}. Or remove it with: "
                f"aws cloudformation delete-change-set --change-set-name {arn}"
                + (f"; aws cloudformation delete-stack --stack-name {stack}" if empty else "")
            )
        return " ".join(parts) if parts else "Nothing was changed."

    # -- approval ----------------------------------------------------------------------------------

    def ask(self, question: Question) -> bool:
        """The user's answer; an approval is recorded for exactly what was asked."""
        if self.approve is None or not self.approve(question):
            return False
        if question.asked is Asked.EXECUTE and question.change_set is not None:
            self._approved_executions[question.change_set.arn] = question.change_set.stack_id
        else:
            self._approved_deletes.add(question.stack_id)
        return True

    # -- change sets -------------------------------------------------------------------------------

    def create_change_set(self, request: deploy.ChangeSetRequest, *, made_stack: bool) -> ChangeSet:
        name = deploy.new_change_set_name()
        self.report.note(CreatingChangeSet(request.stack_name, name, request.plan.value))
        self._requested = (request.stack_name, name)
        with interrupts_deferred():  # a second at most; Ctrl-C then knows the change set it leaves
            arn = deploy.request_change_set(self.cfn, request, name)
            self._made[arn], self._made_stack[arn], self._requested = (request.stack_name, name), made_stack, None
        return deploy.wait_for_change_set(self.cfn, arn, request.plan.value)

    def discard(self, change_set: ChangeSet) -> bool:
        """Delete a change set this run made and will not execute (and the empty stack it made); True when the
        stack went too."""
        if change_set.arn not in self._made:
            raise DeployError(f"change set {change_set.name} was not made by this run: it is not deleted")
        with interrupts_deferred():
            gone = deploy.discard(self.cfn, change_set, made_stack=self._made_stack[change_set.arn])
            del self._made[change_set.arn]
        return gone

    def keep(self, change_set: ChangeSet) -> None:
        """A change set this run made is kept on purpose (plan, --keep): no longer "left"."""
        self._made.pop(change_set.arn, None)

    # -- protections -------------------------------------------------------------------------------

    def _set_policy(self, stack_id: str, policy: str) -> bool:
        """Set the stack policy unless it is that already; True when it was set."""
        current = self._policy_set.get(stack_id)
        if current is None:
            current = self.cfn.get_stack_policy(StackName=stack_id).get("StackPolicyBody")
        if current and json.loads(current) == json.loads(policy):
            self._policy_set[stack_id] = policy
            return False
        self.cfn.set_stack_policy(StackName=stack_id, StackPolicyBody=policy)
        self._policy_set[stack_id] = policy
        return True

    def _termination_on(self, stack_id: str) -> bool:
        """Turn termination protection on unless it is; True when it was turned on."""
        if deploy.describe(self.cfn, stack_id).get("EnableTerminationProtection"):
            return False
        self.cfn.update_termination_protection(EnableTerminationProtection=True, StackName=stack_id)
        return True

    def mend(self, stack: dict, protections: Protections) -> None:
        """Put back what a stack this tool made lacks (an interrupted run, a hand): never weaker than it was."""
        applied = deploy.ensure_protections(self.cfn, stack["StackId"], protections)
        if applied:
            denied = denied_by(protections.stack_policy) if protections.stack_policy else ()
            self.report.note(Protected(stack["StackName"], tuple(applied), denied, mended=True))

    # -- executing ---------------------------------------------------------------------------------

    def execute(
        self, change_set: ChangeSet, *, termination: bool, policies: Policies, disable_rollback: bool
    ) -> Outcome:
        """Execute an approved change set and follow it to its end (see the module's first promise)."""
        stack_id = change_set.stack_id
        if self._approved_executions.get(change_set.arn) != stack_id:
            raise DeployError(f"change set {change_set.name} was not approved for stack {change_set.stack_name}")
        new = change_set.kind == "CREATE"
        after = deploy.newest_event_id(self.cfn, stack_id)
        token = f"valohai-cfn-{uuid.uuid4()}"
        applied: list[Protection] = []
        termination_done = not termination
        with interrupts_deferred():
            if not new:  # a stack in REVIEW_IN_PROGRESS takes no protection: applied right after the execute
                if termination and self._termination_on(stack_id):
                    applied.append(Protection.TERMINATION)
                termination_done = True
                if self._set_policy(stack_id, policies.during) and policies.during == policies.succeeded:
                    applied.append(Protection.STACK_POLICY)
            try:
                self.cfn.execute_change_set(
                    ChangeSetName=change_set.arn, ClientRequestToken=token, DisableRollback=disable_rollback
                )
            except Exception as e:
                if not new:
                    self._put_back(change_set, policies.otherwise)  # what the approval relaxed
                if isinstance(e, ClientError):
                    message = e.response["Error"].get("Message", e)
                    raise DeployError(f"executing change set {change_set.name} failed: {message}") from e
                raise
            self._made.pop(change_set.arn, None)
            self._under_way = change_set.stack_name
            # A state that takes no change yet, or AWS out of reach: applied once the operation ends, below.
            with contextlib.suppress(Exception):
                if new:
                    applied += deploy.ensure_protections(
                        self.cfn, stack_id, Protections(termination, policies.succeeded), new=True
                    )
                    self._policy_set[stack_id] = policies.succeeded
                    termination_done = True
        outcome: Outcome | None = None
        try:
            with deploy.stopped_watching_on_ctrl_c(change_set.stack_name), self.report.progress() as progress:
                outcome = deploy.follow(
                    self.cfn,
                    stack_id,  # by id: a name can come to mean another stack, an id cannot
                    progress=progress,
                    after=after,
                    token=token,
                    total=len(change_set.changes),
                    stack_name=change_set.stack_name,
                )
        finally:
            with interrupts_deferred():
                applied += self._settle(change_set, outcome, policies, termination_done=termination_done)
        if applied:
            denied = denied_by(self._policy_set.get(stack_id, policies.succeeded))
            self.report.note(Protected(change_set.stack_name, tuple(dict.fromkeys(applied)), denied))
        self._under_way = None
        return outcome

    def _settle(
        self, change_set: ChangeSet, outcome: Outcome | None, policies: Policies, *, termination_done: bool
    ) -> list[Protection]:
        """After an execution (or its watching) ended: the policy for how it ended, and what could not be
        applied while the stack was being created."""
        if outcome is not None and outcome.status is None:
            return []  # the stack is gone (a failed create deleted)
        stack_id = change_set.stack_id
        succeeded = outcome is not None and deploy.is_success(outcome.status, change_set.kind)
        want = policies.succeeded if succeeded else policies.otherwise
        applied = []
        try:
            if not termination_done and self._termination_on(stack_id):
                applied.append(Protection.TERMINATION)
            if self._set_policy(stack_id, want):
                applied.append(Protection.STACK_POLICY)
        except Exception as e:
            raise DeployError(
                f"the protections of stack {change_set.stack_name} could not be applied ({e}): run valohai-cfn "
                "deploy again once its operation has ended; it applies them"
            ) from e
        return applied

    def _put_back(self, change_set: ChangeSet, policy: str) -> None:
        try:
            self._set_policy(change_set.stack_id, policy)
        except Exception as e:
            raise DeployError(
                f"the stack policy of {change_set.stack_name} could not be put back ({e}) and still lets this "
                "update's replacements through: run valohai-cfn deploy again; it applies the policy"
            ) from e

    # -- deleting ----------------------------------------------------------------------------------

    def delete(self, stack: dict, *, lift: bool, role_arn: str | None, total: int | None = None) -> Outcome:
        """Delete an approved stack and follow the delete to its end. Lifting termination protection and
        DeleteStack are one step Ctrl-C cannot split; protection is put back when the delete is refused or
        fails."""
        stack_id, name = stack["StackId"], stack["StackName"]
        if stack_id not in self._approved_deletes:
            raise DeployError(f"deleting stack {name} was not approved")
        after = deploy.newest_event_id(self.cfn, stack_id)
        token = f"valohai-cfn-{uuid.uuid4()}"
        self.report.note(Deleting(name, lifting=lift))
        with interrupts_deferred():
            if lift:
                self.cfn.update_termination_protection(EnableTerminationProtection=False, StackName=stack_id)
            try:
                self.cfn.delete_stack(
                    StackName=stack_id, ClientRequestToken=token, **({"RoleARN": role_arn} if role_arn else {})
                )
            except Exception:
                if lift:
                    self._protect_again(stack_id, name)
                raise
            self._under_way = name
            self._done.append(f"Stack {name} is being deleted (approved).")
        with deploy.stopped_watching_on_ctrl_c(name), self.report.progress() as progress:
            outcome = deploy.follow(
                self.cfn, stack_id, progress=progress, after=after, token=token, total=total, stack_name=name
            )
        self._under_way = None
        if not deploy.is_success(outcome.status, "DELETE"):
            self.report.note(Failed(name, outcome))
            cause = outcome.root_cause
            why = f": {cause['LogicalResourceId']} {deploy.cause_text(cause)}" if cause else ""
            again = ""
            if lift:
                with interrupts_deferred():
                    self._protect_again(stack_id, name)
                again = "; its termination protection is on again"
            raise DeployError(f"deleting stack {name} ended in {outcome.status}{why}{again}")
        self._done[-1] = f"Stack {name} was deleted (approved)."
        return outcome

    def _protect_again(self, stack_id: str, name: str) -> None:
        try:
            self.cfn.update_termination_protection(EnableTerminationProtection=True, StackName=stack_id)
        except Exception as e:
            raise DeployError(
                f"stack {name} was not deleted, and its termination protection could not be put back ({e}): "
                f"aws cloudformation update-termination-protection --enable-termination-protection --stack-name {name}"
            ) from e


# -- the steps ------------------------------------------------------------------------------------


def check_account(aws: Any, template: Template, parameters: dict[str, str], stack_name: str | None) -> list[Check]:
    """Preflight: every check of the account, for the parameters given and the template's defaults. WrongInput
    for a template without the parameters the checks read."""
    from valohai_cfn.preflight import Account, run_checks

    cfn = aws("cloudformation")
    account = Account(
        ec2=aws("ec2"),
        acm=aws("acm"),
        s3=aws("s3"),
        sts=aws("sts"),
        cfn=cfn,
        region=cfn.meta.region_name,
        stack_name=stack_name,
        elasticache=aws("elasticache"),
        aws=aws,
        in_region=getattr(aws, "in_region", None),
        template=template.document,
    )
    given = _with_previous_values(cfn, stack_name, parameters)
    values = {**{n: d for n, d in template.defaults.items() if d is not None}, **given}
    try:
        return run_checks(account, values)
    except KeyError as e:
        if e.args[0] in values:
            raise
        # A template that is not this installation's (--template): it lacks what the checks look at.
        raise WrongInput(
            f"preflight checks this installation's template, and this template has no parameter {e.args[0]}: "
            "deploy it with --skip-preflight"
        ) from None


def _with_previous_values(cfn: Any, stack_name: str | None, parameters: dict[str, str]) -> dict[str, str]:
    """The parameters with each UsePreviousValue replaced by the deployed stack's value (preflight checks the
    values the stack would have). WrongInput when there is no deployed stack to take them from."""
    from valohai_cfn.params import previous_values

    kept = previous_values(parameters)
    if not kept:
        return parameters
    state = deploy.stack_state(cfn, stack_name) if stack_name else None
    if state is None or state.stack is None or state.status == "REVIEW_IN_PROGRESS":
        where = f"stack {stack_name} does not exist yet" if stack_name else "no --stack-name names the stack"
        raise WrongInput(f"{', '.join(kept)}: UsePreviousValue keeps a deployed stack's value, and {where}")
    return {**parameters, **{name: state.parameters.get(name, "") for name in kept}}


def _check_live(
    aws: Any, state: StackState, deployed: dict | None, document: dict, values: dict[str, str], report: Reporter
) -> None:
    """Refuse (DeployError; nothing executed) an update of the `deployed` template (None: a new stack, nothing to
    refuse) the live resources cannot take, read from the services (valohai_cfn.transitions: the queue's TLS
    steps, engine downgrades, storage that cannot shrink), with the way forward; report the step an update is
    of a stepwise change."""
    from valohai_cfn import transitions
    from valohai_cfn.intrinsics import EvaluationError, process, pseudo_parameters
    from valohai_cfn.language_extensions import TransformError

    if deployed is None or state.stack is None:
        return
    cfn = aws("cloudformation")
    stack_id = state.stack["StackId"]
    pseudo = pseudo_parameters(region=cfn.meta.region_name, stack_name=state.name, stack_id=stack_id)
    try:
        old = process(deployed, state.parameters, pseudo)
        new = process(document, values, pseudo)
    except (EvaluationError, TransformError):
        return  # a template this module cannot evaluate: CloudFormation's own checks stand
    verdict = transitions.check(aws, state.stack, old.resources, new.resources)
    if verdict.refusals:
        raise DeployError(
            "\n".join(["The live resources cannot take this update:", *verdict.refusals, "Nothing was changed."])
        )
    if verdict.steps:
        report.note(Stepwise(state.name, tuple(verdict.steps)))


def _deployed_template(cfn: Any, change_set: ChangeSet) -> dict | None:
    """The template the change set's stack has now (None for a new stack's change set)."""
    return deploy.template_of(cfn, StackName=change_set.stack_id) if change_set.kind == "UPDATE" else None


def _review(
    cfn: Any, state: StackState, change_set: ChangeSet, deployed: dict | None, document: dict, values: dict[str, str]
) -> Review:
    """The change set's review: CloudFormation's changes, with the templates' values, and the outputs."""
    from valohai_cfn import review
    from valohai_cfn.intrinsics import EvaluationError, pseudo_parameters
    from valohai_cfn.language_extensions import TransformError

    pseudo = pseudo_parameters(
        region=cfn.meta.region_name, stack_name=change_set.stack_name, stack_id=change_set.stack_id
    )
    old_values = state.parameters if deployed else None
    try:
        return review.review(deployed, old_values, document, values, pseudo=pseudo, change_set=change_set.changes)
    except (EvaluationError, TransformError):
        # A template this module cannot evaluate (CloudFormation could): CloudFormation's changes as they are.
        specs = document.get("Parameters", {})
        return Review(review.parameter_changes(specs, old_values, values), list(change_set.changes))


@dataclass(frozen=True)
class Difference:
    review: Review
    exists: bool  # the stack exists (REVIEW_IN_PROGRESS: nothing does yet)


def difference(
    aws: Any, stack_name: str, template: Template, parameters: dict[str, str], report: Reporter
) -> Difference:
    """`diff`: what a deploy would change, from the deployed template and parameter values and the new ones,
    with no change set (nothing is changed). Replacements are judged from the resource schemas."""
    from valohai_cfn import review
    from valohai_cfn.intrinsics import EvaluationError, pseudo_parameters
    from valohai_cfn.language_extensions import TransformError

    cfn = aws("cloudformation")
    state = deploy.stack_state(cfn, stack_name)
    exists = state.stack is not None and state.status != "REVIEW_IN_PROGRESS"
    parameters = resolve_images(aws, parameters, report)
    sent = parameters_to_send(Plan.UPDATE if exists else Plan.CREATE, parameters, template, state.parameters)
    stack_id = state.stack["StackId"] if state.stack else None
    deployed = deploy.template_of(cfn, StackName=stack_id) if exists and stack_id else None
    pseudo = pseudo_parameters(region=cfn.meta.region_name, stack_name=stack_name, stack_id=stack_id)
    try:
        reviewed = review.review(
            deployed, state.parameters if exists else None, template.document, sent.values, pseudo=pseudo
        )
    except (EvaluationError, TransformError) as e:
        raise DeployError(f"cannot review the template: {e}") from None
    return Difference(reviewed, exists)


def _executed(
    promises: Promises,
    change_set: ChangeSet,
    reviewed: Review,
    *,
    old_template: dict | None,
    new_template: dict,
    termination: bool,
    disable_rollback: bool,
) -> Result:
    replaceable = frozenset(c.logical_id for c in reviewed.data_loss)
    if replaceable:
        promises.report.note(Relaxed(change_set.stack_name, tuple(sorted(replaceable))))
    promises.report.note(Executing(change_set.stack_name, change_set))
    outcome = promises.execute(
        change_set,
        termination=termination,
        policies=policies_for(old_template, new_template, replaceable),
        disable_rollback=disable_rollback,
    )
    if not deploy.is_success(outcome.status, change_set.kind):
        promises.report.note(Failed(change_set.stack_name, outcome))
        raise DeployError(f"stack {change_set.stack_name} ended in {outcome.status}")
    described = outcome.stack or deploy.describe(promises.cfn, change_set.stack_id)
    return Result(
        change_set.stack_name,
        End.EXECUTED,
        reviewed,
        change_set,
        outcome=outcome,
        outputs=deploy.outputs(described),
    )


def _deletion(cfn: Any, stack: dict) -> DeleteListed:
    kept, removed = deploy.deletion(cfn, stack["StackId"])
    protected = bool(stack.get("EnableTerminationProtection"))
    return DeleteListed(stack["StackName"], stack["StackStatus"], kept, removed, protected)


def _recreated(promises: Promises, state: StackState, request: DeployRequest) -> StackState:
    """Delete a stack whose first create failed (listed, approved), to create it again."""
    assert state.stack is not None
    listed = _deletion(promises.cfn, state.stack)
    promises.report.note(listed)
    question = Question(
        Asked.RECREATE,
        state.name,
        state.stack["StackId"],
        status=state.status,
        lifts_termination_protection=listed.lifts_termination_protection,
    )
    if not promises.ask(question):
        why = "" if promises.approve else ": nobody to approve it (no terminal; add --yes)"
        raise DeployError(f"nothing deleted or created{why}")
    promises.delete(
        state.stack,
        lift=listed.lifts_termination_protection,
        role_arn=request.role_arn,
        total=len(listed.kept) + len(listed.removed),
    )
    promises.report.note(Deleted(state.name, recreating=True))
    return deploy.stack_state(promises.cfn, state.name)


def _settled(promises: Promises, request: DeployRequest, *, execute: bool) -> StackState:
    """The stack's state once no operation is under way, a failed first create deleted (when approved)."""
    cfn, name = promises.cfn, request.stack_name
    state = deploy.stack_state(cfn, name)
    if state.plan is Plan.WAIT:
        promises.report.note(Waiting(name, state.status or ""))
        with promises.report.progress() as progress:
            state = deploy.wait_until_settled(cfn, name, progress)
    if state.plan is Plan.RECREATE:
        if not execute:
            raise DeployError(f"stack {name} is {state.status}: {state.meaning}; plan never deletes")
        if not request.recreate_failed:
            raise DeployError(f"stack {name} is {state.status}: {state.meaning}")
        state = _recreated(promises, state, request)
    if state.plan is Plan.REFUSE:
        raise DeployError(f"stack {name} is {state.status}: {state.meaning}")
    return state


def deploy_stack(
    aws: Any, request: DeployRequest, *, approve: Approve | None, report: Reporter, execute: bool = True
) -> Result:
    """Deploy (execute=True) or plan (False): preflight, the stack's state, a change set, its review and the
    data-loss guard, then approval and the execution — or, for plan, the change set kept or discarded."""
    from valohai_cfn.stack.policy import stack_policy

    cfn = aws("cloudformation")
    promises = Promises(cfn, approve, report)
    with promises.interruptible():
        if request.preflight:
            checks = check_account(aws, request.template, request.parameters, request.stack_name)
            report.note(AccountChecked(checks))
            if not all(c.ok for c in checks):
                raise DeployError(
                    "preflight failed: fix the rows marked FAILED, or deploy with --skip-preflight"
                    if execute
                    else "preflight failed: fix the rows marked FAILED, or plan with --skip-preflight"
                )
        # After preflight, whose rows say what `latest` stands for (or that nothing is shared).
        parameters = resolve_images(aws, request.parameters, report)
        state = _settled(promises, request, execute=execute)
        plan = Plan.UPDATE if state.plan is Plan.UPDATE else Plan.CREATE
        sent = parameters_to_send(plan, parameters, request.template, state.parameters)
        if plan is Plan.UPDATE:
            refused = deploy.fixed_parameter_changes(state.parameters, sent.values)
            if refused:
                raise DeployError("; ".join(refused))
        # The deployed template, for the live check here (before any change set) and the review below.
        deployed = (
            deploy.template_of(cfn, StackName=state.stack["StackId"]) if state.stack and plan is Plan.UPDATE else None
        )
        _check_live(aws, state, deployed, request.template.document, sent.values, report)
        location = deploy.template_location(
            request.template.body, aws("s3") if request.bucket else None, request.bucket
        )
        change_set_request = deploy.ChangeSetRequest(
            request.stack_name, plan, location, sent.entries, request.tags, request.role_arn
        )
        change_set = promises.create_change_set(change_set_request, made_stack=state.stack is None)
        if change_set.is_empty:
            promises.discard(change_set)
            report.note(UpToDate(request.stack_name))
            if execute and state.stack is not None and state.made_by_this_tool:
                policy = stack_policy(request.template.document)
                promises.mend(state.stack, Protections(request.termination_protection, policy))
            return Result(request.stack_name, End.UP_TO_DATE, Review())
        if change_set.status != "CREATE_COMPLETE":
            promises.discard(change_set)
            raise DeployError(f"change set {change_set.name} is {change_set.status}: {change_set.reason}")
        if change_set.stack_name != request.stack_name:
            raise DeployError(f"change set {change_set.name} is stack {change_set.stack_name}'s")
        reviewed = _review(cfn, state, change_set, deployed, request.template.document, sent.values)
        report.note(Reviewed(request.stack_name, reviewed, change_set))
        if reviewed.data_loss and not request.allow_replace:
            promises.discard(change_set)
            raise DataLoss(reviewed)
        if not execute:
            return _not_executed(promises, change_set, reviewed, End.PLANNED, keep=request.keep or plan is Plan.UPDATE)
        if not promises.ask(Question(Asked.EXECUTE, request.stack_name, change_set.stack_id, change_set)):
            result = _not_executed(promises, change_set, reviewed, End.DECLINED, keep=request.keep)
            if promises.approve is None:
                raise DeployError("nobody to approve the change: no terminal to ask in. Add --yes")
            return result
        return _executed(
            promises,
            change_set,
            reviewed,
            old_template=deployed,
            new_template=request.template.document,
            termination=request.termination_protection,
            disable_rollback=request.disable_rollback,
        )


def _not_executed(promises: Promises, change_set: ChangeSet, reviewed: Review, end: End, *, keep: bool) -> Result:
    """A change set this run made and does not execute: kept for `valohai-cfn execute`, or deleted."""
    if keep:
        promises.keep(change_set)
        gone = False
    else:
        gone = promises.discard(change_set)
    promises.report.note(NotExecuted(change_set.stack_name, change_set, keep, gone))
    return Result(change_set.stack_name, end, reviewed, change_set, kept=keep)


def execute_change_set(aws: Any, request: ExecuteRequest, *, approve: Approve | None, report: Reporter) -> Result:
    """Execute a change set made by `plan` (or anyone) for the named stack: the same review, data-loss guard,
    protections and following as a deploy."""
    cfn = aws("cloudformation")
    promises = Promises(cfn, approve, report)
    with promises.interruptible():
        change_set = deploy.describe_change_set(cfn, request.change_set, request.stack_name)
        state = deploy.stack_state(cfn, request.stack_name)
        if state.stack is None or state.stack["StackId"] != change_set.stack_id:
            raise WrongInput(
                f"change set {change_set.name} belongs to stack {change_set.stack_name}, not to "
                f"{request.stack_name}: nothing was executed"
            )
        if change_set.status != "CREATE_COMPLETE" or change_set.execution_status not in ("AVAILABLE", ""):
            raise DeployError(
                f"change set {change_set.name} cannot be executed: it is {change_set.status}, "
                f"{change_set.execution_status or 'not available'}"
                + (f" ({change_set.reason})" if change_set.reason else "")
            )
        if state.plan not in (Plan.CREATE, Plan.UPDATE):
            raise DeployError(f"stack {request.stack_name} is {state.status}: {state.meaning}")
        change_set.kind = "CREATE" if state.status == "REVIEW_IN_PROGRESS" else "UPDATE"
        document = deploy.template_of(cfn, StackName=change_set.stack_id, ChangeSetName=change_set.arn)
        deployed = _deployed_template(cfn, change_set)
        reviewed = _review(cfn, state, change_set, deployed, document, change_set.parameters)
        report.note(Reviewed(request.stack_name, reviewed, change_set))
        if reviewed.data_loss and not request.allow_replace:
            raise DataLoss(reviewed)
        _check_live(aws, state, deployed, document, change_set.parameters, report)
        if not promises.ask(Question(Asked.EXECUTE, request.stack_name, change_set.stack_id, change_set)):
            if promises.approve is None:
                raise DeployError("nobody to approve the change: no terminal to ask in. Add --yes")
            return Result(request.stack_name, End.DECLINED, reviewed, change_set, kept=True)
        return _executed(
            promises,
            change_set,
            reviewed,
            old_template=deployed,
            new_template=document,
            termination=request.termination_protection,
            disable_rollback=request.disable_rollback,
        )


def delete_stack(aws: Any, request: DeleteRequest, *, approve: Approve | None, report: Reporter) -> Result:
    """Delete the stack: what it keeps and removes listed, approval asked, termination protection lifted only
    with --force and only together with DeleteStack, the delete followed to its end."""
    cfn = aws("cloudformation")
    promises = Promises(cfn, approve, report)
    with promises.interruptible():
        stack = deploy.describe(cfn, request.stack_name)
        if stack.get("EnableTerminationProtection") and not request.force:
            raise DeployError(
                f"stack {request.stack_name} has termination protection on; add --force to lift it and delete"
            )
        listed = _deletion(cfn, stack)
        report.note(listed)
        question = Question(
            Asked.DELETE,
            request.stack_name,
            stack["StackId"],
            status=stack["StackStatus"],
            lifts_termination_protection=listed.lifts_termination_protection,
        )
        if not promises.ask(question):
            if promises.approve is None:
                raise DeployError("not deleting without confirmation: run in a terminal or add --yes")
            return Result(request.stack_name, End.DECLINED)
        outcome = promises.delete(
            stack,
            lift=listed.lifts_termination_protection,
            role_arn=request.role_arn,
            total=len(listed.kept) + len(listed.removed),
        )
        report.note(Deleted(request.stack_name))
        return Result(request.stack_name, End.DELETED, outcome=outcome)
