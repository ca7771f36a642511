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
    recreating: bool = False  # deleted to be created again (deploy --recreate-failed), not `delete --force`


@dataclass(frozen=True)
class Deleting:
    stack_name: str
    lifting: bool
    recreating: bool = False  # lifted for deploy --recreate-failed, not for delete --force


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
            if c.replaced_or_removed:
                what = "removed" if c.action == "Remove" else f"replaced (Replacement: {c.replacement})"
                why = f", forced by {', '.join(c.forced_by)}" if c.forced_by else ""
                lines.append(f"  {c.logical_id} ({c.resource_type}) would be {what}{why}")
            for p in c.no_longer_kept:
                after = p.after or "not set: Delete"
                lines.append(
                    f"  {c.logical_id} ({c.resource_type}) would no longer be kept: its {p.path} goes from {p.before} "
                    f"to {after}, so {'deleting the stack' if p.path == 'DeletionPolicy' else 'replacing it'} "
                    "would delete it"
                )
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
    # Preflight of another template than the installation's (a worker pool's): the clients → the checks' rows.
    account_checks: Callable[[Any], list[Check]] | None = None

    def __post_init__(self) -> None:
        from valohai_cfn.aws_rules import tag_problems

        if self.role_arn is not None:
            deploy.check_role_arn(self.role_arn)
        refused = tag_problems(self.tags)  # counts valohai-cfn's own tag, and refuses another value of it
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


def resolve_images(
    aws: Any, parameters: dict[str, str], report: Reporter, deployed: dict[str, str] | None = None
) -> dict[str, str]:
    """The parameters with `latest` for RoiAmiId / WorkerAmiId replaced by the newest image Valohai shares with
    the account in the clients' region (valohai_cfn.images), what was chosen reported; the parameters as they
    are, and no AWS call, when neither is `latest`. `deployed`: the stack's values, for an update. Raises
    images.ImageNotShared (one line naming the account and region) when none is shared, images.ImageDowngrade
    when the newest shared is older than the deployed image."""
    from valohai_cfn.images import resolve_images as newest_shared

    if not any(v == "latest" for v in parameters.values()):
        return parameters
    resolved_parameters, resolved = newest_shared(aws("ec2"), aws("sts"), parameters, deployed)
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

    during: str  # while it runs: every data resource the stack has now, but those approved for replacement
    succeeded: str  # once it succeeded: the new template's own
    otherwise: str  # after a failure, a rollback or an interruption: every data resource of both templates
    replaceable: frozenset[str] = frozenset()  # what the approval lets this one update replace or remove


def policies_for(
    old: dict[str, Any] | None,
    old_values: dict[str, str],
    new: dict[str, Any],
    new_values: dict[str, str],
    replaceable: frozenset[str] = frozenset(),
) -> Policies:
    """The policies of an execution from the deployed template (None: a new stack) and the new one, each with
    the data resources it makes for its own parameter values (a loop over a parameter makes one per item).
    Raises language_extensions.TransformError for a loop CloudFormation's transform would refuse."""
    from valohai_cfn.stack.policy import policy_body, protected_resources

    new_data = set(protected_resources(new, new_values))
    old_data = new_data if old is None else set(protected_resources(old, old_values))
    return Policies(
        during=policy_body(old_data - replaceable),
        succeeded=policy_body(new_data),
        otherwise=policy_body(old_data | new_data),
        replaceable=replaceable,
    )


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


def _protects_enough(current: str | None, policies: Policies) -> bool:
    """Whether the stack's policy already is one this tool writes, denying at least what the execution needs
    denied and none of what it was approved to replace: then it is left as it is."""
    from valohai_cfn.stack.policy import policy_document

    if not current:
        return False
    if json.loads(current) == json.loads(policies.during):
        return True
    denied = set(denied_by(current))
    ours = policy_document(denied) == json.loads(current)
    return ours and set(denied_by(policies.during)) <= denied and not denied & policies.replaceable


# What a delete that lifts termination protection sends as its ClientRequestToken: the stack's events carry it,
# so whoever finds the stack DELETE_FAILED later knows the protection was lifted for that delete and puts it back.
LIFTING_TOKEN = "valohai-cfn-lifting-"


# -- the promises ---------------------------------------------------------------------------------


class Promises:
    """The one place that executes change sets, deletes, and changes protections: see the module's docstring.
    It also keeps what an interruption or an error would leave, to say so."""

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
        self._under_way: str | None = None  # what Ctrl-C leaves going on in AWS, and what to do about it
        self._policy_set: dict[str, str] = {}  # stack id → the policy body this run last set

    # -- interruptions and errors ------------------------------------------------------------------

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Ctrl-C anywhere in the step becomes Interrupted saying what was left and what to do with it (or
        StoppedWatching, when an operation goes on in AWS). A DeployError that leaves a change set this run made
        names it too; any other error (AWS's, a template's) says as well what this run changed and what goes on."""
        try:
            yield
        except KeyboardInterrupt:
            if self._under_way:
                raise StoppedWatching(self._under_way) from None
            raise Interrupted(self.left()) from None
        except Interrupted:
            raise
        except DeployError as e:
            if self._made or self._requested:
                e.args = (f"{_error_text(e)} {self.left()}",)  # the same error (its class is its exit code)
            raise
        except Exception as e:
            if not (self._made or self._requested or self._done or self._under_way):
                raise
            raise DeployError(f"{_error_text(e)}. {self._under_way or self.left()}") from e

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
            try:
                arn = deploy.request_change_set(self.cfn, request, name)
            except ClientError:
                self._requested = None  # refused: nothing was made (out of reach: it may have been)
                raise
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

    def _policy_for_execution(self, stack_id: str, policies: Policies) -> str | None:
        """Before an update executes: the policy it runs under, set only when the stack's own does not already
        deny what it must and let through what was approved. The policy to put back should the execute be
        refused (allow-all for a stack that had none: CloudFormation cannot remove a policy), or None when
        nothing was set."""
        from valohai_cfn.stack.policy import policy_body

        current = self.cfn.get_stack_policy(StackName=stack_id).get("StackPolicyBody")
        if _protects_enough(current, policies):
            self._policy_set[stack_id] = current
            return None
        self.cfn.set_stack_policy(StackName=stack_id, StackPolicyBody=policies.during)
        self._policy_set[stack_id] = policies.during
        return current or policy_body([])

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
        """Execute an approved change set and follow it to its end (see the module's first promise): an update
        runs under `policies.during`, set in one step with the execute; termination protection follows the
        execute (a refused execute changes nothing); whatever ends the execution or its watching — success,
        failure, refusal, Ctrl-C — puts the policy for that end in place before anything else happens."""
        stack_id, name = change_set.stack_id, change_set.stack_name
        if self._approved_executions.get(change_set.arn) != stack_id:
            raise DeployError(f"change set {change_set.name} was not approved for stack {name}")
        new = change_set.kind == "CREATE"
        after = deploy.newest_event_id(self.cfn, stack_id)
        token = f"valohai-cfn-{uuid.uuid4()}"
        applied: list[Protection] = []
        termination_done = not termination
        executed = False
        outcome: Outcome | None = None
        try:
            with interrupts_deferred():
                # A stack in REVIEW_IN_PROGRESS takes no protection: applied right after the execute.
                put_back = None if new else self._policy_for_execution(stack_id, policies)
                try:
                    self.cfn.execute_change_set(
                        ChangeSetName=change_set.arn, ClientRequestToken=token, DisableRollback=disable_rollback
                    )
                except Exception as e:
                    if put_back is not None:
                        self._put_back(change_set, put_back)
                    if isinstance(e, ClientError):
                        message = e.response["Error"].get("Message", e)
                        raise DeployError(
                            f"executing change set {change_set.name} was refused: {message}. Stack {name} is as it was."
                        ) from e
                    raise
                executed = True
                # A recreate's delete is no longer the last word: the stack is being created again.
                self._done = [d.replace(NOT_CREATED_YET, ".") for d in self._done]
                self._made.pop(change_set.arn, None)
                self._under_way = _watching_text(name, policies.replaceable)
                # A state that takes no change yet, or AWS out of reach: applied once the operation ends, below.
                with contextlib.suppress(Exception):
                    if new:
                        applied += deploy.ensure_protections(
                            self.cfn, stack_id, Protections(termination, policies.succeeded), new=True
                        )
                        self._policy_set[stack_id] = policies.succeeded
                    elif termination and self._termination_on(stack_id):
                        applied.append(Protection.TERMINATION)
                    termination_done = True
            with self.report.progress() as progress:
                outcome = deploy.follow(
                    self.cfn,
                    stack_id,  # by id: a name can come to mean another stack, an id cannot
                    progress=progress,
                    after=after,
                    token=token,
                    total=len(change_set.changes),
                    stack_name=name,
                )
            self._under_way = None
            self._done.append(f"Change set {change_set.name} was executed: stack {name} is {outcome.status or 'gone'}.")
        finally:
            if executed:
                with interrupts_deferred():
                    seen = outcome or self._execution_seen_once_more(change_set)
                    applied += self._settle(change_set, seen, policies, termination_done=termination_done)
        if applied:
            denied = denied_by(self._policy_set.get(stack_id, policies.succeeded))
            self.report.note(Protected(name, tuple(dict.fromkeys(applied)), denied))
        if outcome.interrupted:
            raise KeyboardInterrupt  # after the operation's end was seen: said as what happened, not as going on
        return outcome

    def _execution_seen_once_more(self, change_set: ChangeSet) -> Outcome | None:
        """Watching stopped (Ctrl-C, an error) before the end was seen: the end, if the operation has ended by
        now (then said as what happened, not as going on); None while it goes on or AWS is out of reach."""
        try:
            stack = deploy.described_or_none(self.cfn, change_set.stack_id)
        except Exception:
            return None
        status = stack["StackStatus"] if stack else None
        if status and status.endswith("_IN_PROGRESS"):
            return None
        self._under_way = None
        self._done.append(
            f"Change set {change_set.name} was executed: stack {change_set.stack_name} is {status or 'gone'}."
        )
        return Outcome(status, stack=stack)

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
                f"the protections of stack {change_set.stack_name} could not be applied ({_error_text(e)}): run "
                "valohai-cfn deploy again once its operation has ended; it applies them"
            ) from e
        return applied

    def _put_back(self, change_set: ChangeSet, policy: str) -> None:
        try:
            self.cfn.set_stack_policy(StackName=change_set.stack_id, StackPolicyBody=policy)
            self._policy_set[change_set.stack_id] = policy
        except Exception as e:
            raise DeployError(
                f"executing change set {change_set.name} failed, and the stack policy of {change_set.stack_name} "
                f"could not be put back as it was ({_error_text(e)}): run valohai-cfn deploy again; it applies the "
                "template's policy"
            ) from e

    # -- deleting ----------------------------------------------------------------------------------

    def delete(
        self, stack: dict, *, lift: bool, role_arn: str | None, total: int | None = None, recreating: bool = False
    ) -> Outcome:
        """Delete an approved stack and follow the delete to its end. Lifting termination protection and
        DeleteStack are one step Ctrl-C cannot split; protection is put back when the delete is refused or
        fails — and, should the delete fail after Ctrl-C stopped the watching, by the next valohai-cfn status,
        delete or deploy of the stack (the delete's token says it lifted the protection)."""
        stack_id, name = stack["StackId"], stack["StackName"]
        if stack_id not in self._approved_deletes:
            raise DeployError(f"deleting stack {name} was not approved")
        after = deploy.newest_event_id(self.cfn, stack_id)
        token = f"{LIFTING_TOKEN if lift else 'valohai-cfn-'}{uuid.uuid4()}"
        self.report.note(Deleting(name, lifting=lift, recreating=recreating))
        deleting = False
        try:
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
                deleting = True
                self._under_way = _deleting_text(name, lifted=lift, recreating=recreating)
                self._done.append(f"Stack {name} is being deleted (approved).")
            with self.report.progress() as progress:
                outcome = deploy.follow(
                    self.cfn, stack_id, progress=progress, after=after, token=token, total=total, stack_name=name
                )
        except BaseException:  # Ctrl-C, or AWS failing a poll: how the delete stands now, said exactly
            if deleting:
                with interrupts_deferred():
                    self._delete_seen_once_more(stack_id, name, lifted=lift, recreating=recreating)
            raise
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
            self._done[-1] = f"Deleting stack {name} ended in {outcome.status}{again}."
            raise DeployError(f"deleting stack {name} ended in {outcome.status}{why}{again}")
        self._done[-1] = _deleted_text(name, recreating=recreating)
        if outcome.interrupted:
            raise KeyboardInterrupt
        return outcome

    def _delete_seen_once_more(self, stack_id: str, name: str, *, lifted: bool, recreating: bool) -> None:
        """Ctrl-C while a delete was followed: how it stands now, said exactly; a delete that already failed
        gets its termination protection back. AWS out of reach: what was said stands."""
        try:
            stack = deploy.described_or_none(self.cfn, stack_id)
        except Exception:
            return
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if status == "DELETE_COMPLETE":
            self._under_way, self._done[-1] = None, _deleted_text(name, recreating=recreating)
        elif status == "DELETE_FAILED":
            again = ""
            if lifted:
                with contextlib.suppress(Exception):
                    self.cfn.update_termination_protection(EnableTerminationProtection=True, StackName=stack_id)
                    again = "; its termination protection is on again"
            if lifted and not again:
                again = f"; its termination protection is still lifted: valohai-cfn status {name} puts it back"
            self._under_way, self._done[-1] = None, f"Deleting stack {name} ended in DELETE_FAILED{again}."

    def _protect_again(self, stack_id: str, name: str) -> None:
        try:
            self.cfn.update_termination_protection(EnableTerminationProtection=True, StackName=stack_id)
        except Exception as e:
            raise DeployError(
                f"stack {name} was not deleted, and its termination protection could not be put back "
                f"({_error_text(e)}): valohai-cfn status {name} puts it back, or aws cloudformation "
                f"update-termination-protection --enable-termination-protection --stack-name {name}"
            ) from e


def _error_text(error: Exception) -> str:
    """An error as one line: AWS's own message for a refused call."""
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        return f"{error.operation_name}: {detail.get('Code', 'Error')}: {detail.get('Message', '')}".rstrip(": ")
    text = " ".join(str(error).split())
    return text if isinstance(error, (DeployError, ValueError)) else f"{type(error).__name__}: {text}"


def _watching_text(stack_name: str, relaxed: frozenset[str]) -> str:
    """What Ctrl-C while an execution is followed leaves: the operation, and the policy put back at once."""
    text = deploy.resume_hint(stack_name)
    if relaxed:
        text += (
            f" The stack policy denies replacing {', '.join(sorted(relaxed))} again (put back at Ctrl-C): should "
            "the update still need to, it fails and is rolled back; deploy again with --allow-replace."
        )
    return text


def _deleting_text(stack_name: str, *, lifted: bool, recreating: bool) -> str:
    text = (
        f"The delete of stack {stack_name} goes on in AWS. Resume watching with: valohai-cfn status {stack_name} "
        "--watch."
    )
    if recreating:
        text += " The stack is not created again by this run: once it is deleted, run the deploy again."
    if lifted:
        text += (
            f" Its termination protection stays lifted for the delete; should the delete fail, valohai-cfn status "
            f"{stack_name} (or delete, or deploy) puts it back."
        )
    return text


def _deleted_text(stack_name: str, *, recreating: bool) -> str:
    if recreating:
        return f"Stack {stack_name} was deleted (approved) to be created again{NOT_CREATED_YET}"
    return f"Stack {stack_name} was deleted (approved)."


# Said of a recreate's delete until a change set of the stack is executed: then the stack exists again.
NOT_CREATED_YET = "; it was not created: run the deploy again."


def put_back_after_failed_delete(cfn: Any, stack: dict, report: Reporter) -> dict:
    """A stack left DELETE_FAILED by a delete this tool made lifting its termination protection (its token says
    so) gets the protection back, said as a Protected note: what watching that delete would have done, had
    Ctrl-C not stopped it. The stack as it is now. Raises the AWS error when the protection cannot be set."""
    if stack["StackStatus"] != "DELETE_FAILED" or stack.get("EnableTerminationProtection"):
        return stack
    events = deploy.last_operation_events(cfn, stack["StackId"])
    if not events or not str(events[0].get("ClientRequestToken", "")).startswith(LIFTING_TOKEN):
        return stack
    cfn.update_termination_protection(EnableTerminationProtection=True, StackName=stack["StackId"])
    report.note(Protected(stack["StackName"], (Protection.TERMINATION,), (), mended=True))
    return {**stack, "EnableTerminationProtection": True}


# -- the steps ------------------------------------------------------------------------------------


class MissingParameter(KeyError):
    """A parameter preflight reads that has no value (the template has no such parameter)."""


class _Values(dict):
    """Parameter values whose missing key is a MissingParameter, told apart from any other KeyError."""

    def __missing__(self, key: str) -> str:
        raise MissingParameter(key)


def check_account(
    aws: Any, template: Template, parameters: dict[str, str], stack_name: str | None, *, skip_hint: str = ""
) -> list[Check]:
    """Preflight: every check of the account, for the parameters given and the template's defaults. WrongInput
    for a template without the parameters the checks read (`skip_hint`: what the caller can do instead)."""
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
    values = _Values({**{n: d for n, d in template.defaults.items() if d is not None}, **given})
    try:
        return run_checks(account, values)
    except MissingParameter as e:
        # A template that is not this installation's (--template): it lacks what the checks look at.
        raise WrongInput(
            f"preflight checks this installation's template, and this template has no parameter {e.args[0]}"
            + (f": {skip_hint}" if skip_hint else "")
        ) from None


def preflight(aws: Any, template: Template, parameters: dict[str, str], stack_name: str | None) -> list[Check]:
    """The preflight command: the account checked for the values the stack would have — for a stack that exists
    (--stack-name), what the file leaves out keeps the deployed value, as plan and deploy keep it (the template's
    defaults would check names and values the stack does not use). WrongInput for a parameter without a value."""
    if stack_name:
        _updating, parameters = values_it_would_have(
            deploy.stack_state(aws("cloudformation"), stack_name), parameters, template
        )
    return check_account(aws, template, parameters, stack_name)


def values_it_would_have(
    state: StackState, parameters: dict[str, str], template: Template
) -> tuple[bool, dict[str, str]]:
    """Whether a deploy updates the stack (REFUSE, WAIT: said once settled), and the values it would have: on an
    update, what `parameters` leave out keeps the deployed value. WrongInput (check_required) for a parameter
    without a value."""
    updating = state.plan in (Plan.UPDATE, Plan.WAIT, Plan.REFUSE)
    check_required(Plan.UPDATE if updating else Plan.CREATE, parameters, template, state)
    return updating, {**(state.parameters if updating else {}), **parameters}


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
    cfn: Any,
    state: StackState,
    change_set: ChangeSet,
    deployed: dict | None,
    document: dict,
    values: dict[str, str],
    tags: dict[str, str] | None,
) -> Review:
    """The change set's review: CloudFormation's changes, with the templates' values, the outputs, and the
    stack tags it sets (`tags`; None: it keeps the stack's)."""
    from valohai_cfn import review
    from valohai_cfn.intrinsics import EvaluationError, pseudo_parameters
    from valohai_cfn.language_extensions import TransformError

    pseudo = pseudo_parameters(
        region=cfn.meta.region_name, stack_name=change_set.stack_name, stack_id=change_set.stack_id
    )
    old_values = state.parameters if deployed else None
    try:
        reviewed = review.review(deployed, old_values, document, values, pseudo=pseudo, change_set=change_set.changes)
    except (EvaluationError, TransformError):
        # A template this module cannot evaluate (CloudFormation could): CloudFormation's changes as they are.
        specs = document.get("Parameters", {})
        secrets = review.secret_values(specs, values)
        reviewed = Review(
            review.parameter_changes(specs, old_values, values), review.masked(change_set.changes, secrets)
        )
    if tags is not None:
        reviewed.tags = review.tag_changes(deploy.stack_tags(state.stack) if deployed else {}, tags)
    return reviewed


@dataclass(frozen=True)
class Difference:
    review: Review
    exists: bool  # the stack exists (REVIEW_IN_PROGRESS: nothing does yet)


def difference(
    aws: Any, stack_name: str, template: Template, parameters: dict[str, str], report: Reporter
) -> Difference:
    """`diff`: what a deploy would change, from the deployed template and parameter values and the new ones,
    with no change set (nothing is changed). Replacements are judged from the resource schemas. The stack's
    tags are kept, as a deploy without --tag keeps them. DeployError for an update the live resources cannot
    take (as plan)."""
    from valohai_cfn import review
    from valohai_cfn.intrinsics import EvaluationError, pseudo_parameters
    from valohai_cfn.language_extensions import TransformError

    cfn = aws("cloudformation")
    state = deploy.stack_state(cfn, stack_name)
    exists = state.stack is not None and state.status != "REVIEW_IN_PROGRESS"
    plan = Plan.UPDATE if exists else Plan.CREATE
    check_required(plan, parameters, template, state)
    parameters = resolve_images(aws, parameters, report, state.parameters if exists else None)
    sent = parameters_to_send(plan, parameters, template, state.parameters)
    stack_id = state.stack["StackId"] if state.stack else None
    deployed = deploy.template_of(cfn, StackName=stack_id) if exists and stack_id else None
    # What the live resources cannot take is refused here as plan refuses it: a diff that shows it as a plain
    # Modify (and --exit-code 3) would promise an update that cannot be made.
    _check_live(aws, state, deployed, template.document, sent.values, report)
    pseudo = pseudo_parameters(region=cfn.meta.region_name, stack_name=stack_name, stack_id=stack_id)
    try:
        reviewed = review.review(
            deployed, state.parameters if exists else None, template.document, sent.values, pseudo=pseudo
        )
    except (EvaluationError, TransformError) as e:
        raise DeployError(f"cannot review the template: {e}") from None
    return Difference(reviewed, exists)


def check_required(plan: Plan, given: dict[str, str], template: Template, state: StackState) -> None:
    """WrongInput naming the parameters without a default that have no value: on a create, each one not
    given; on an update, each one neither given nor the stack's (it keeps its deployed value)."""
    kept = set(state.parameters) if plan is Plan.UPDATE else set()
    missing = [
        name
        for name, default in template.defaults.items()
        if default is None and name not in given and name not in kept
    ]
    if not missing:
        return
    where = f"nor a value in stack {state.name}" if plan is Plan.UPDATE else f"and stack {state.name} is created"
    raise WrongInput(
        f"{', '.join(missing)}: required (the template has no default {where}): give "
        + ("it" if len(missing) == 1 else "them")
        + " in the params file or with --set"
    )


def _executed(
    promises: Promises,
    change_set: ChangeSet,
    reviewed: Review,
    *,
    old_template: dict | None,
    old_values: dict[str, str],
    new_template: dict,
    new_values: dict[str, str],
    termination: bool,
    disable_rollback: bool,
) -> Result:
    # What the approval lets this update replace or remove; a DeletionPolicy weakened needs no relaxing.
    replaceable = frozenset(c.logical_id for c in reviewed.data_loss if c.replaced_or_removed)
    policies = policies_for(old_template, old_values, new_template, new_values, replaceable)
    if replaceable:
        promises.report.note(Relaxed(change_set.stack_name, tuple(sorted(replaceable))))
    promises.report.note(Executing(change_set.stack_name, change_set))
    outcome = promises.execute(
        change_set, termination=termination, policies=policies, disable_rollback=disable_rollback
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


def _deletion(cfn: Any, stack: dict, *, recreating: bool = False) -> DeleteListed:
    kept, removed = deploy.deletion(cfn, stack["StackId"])
    protected = bool(stack.get("EnableTerminationProtection"))
    return DeleteListed(stack["StackName"], stack["StackStatus"], kept, removed, protected, recreating)


def _recreated(promises: Promises, state: StackState, request: DeployRequest) -> StackState:
    """Delete a stack whose first create failed (listed, approved), to create it again."""
    assert state.stack is not None
    listed = _deletion(promises.cfn, state.stack, recreating=True)
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
        recreating=True,
    )
    promises.report.note(Deleted(state.name, recreating=True))
    return deploy.stack_state(promises.cfn, state.name)


def _settled(promises: Promises, request: DeployRequest, state: StackState, *, execute: bool) -> StackState:
    """The stack's state once no operation is under way, a failed first create deleted (when approved)."""
    cfn, name = promises.cfn, request.stack_name
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
        if state.stack is not None and state.made_by_this_tool:
            put_back_after_failed_delete(cfn, state.stack, promises.report)
        raise DeployError(f"stack {name} is {state.status}: {state.meaning}")
    return state


def _tags_to_send(request: DeployRequest, state: StackState, plan: Plan) -> dict[str, str]:
    """The stack tags the change set sets: those given (--tag), or, when none are given, the stack's own, as
    a parameter the params file leaves out keeps its value. valohai=1 is added when the change set is made."""
    if request.tags or plan is not Plan.UPDATE:
        return dict(request.tags)
    return {k: v for k, v in deploy.stack_tags(state.stack).items() if k != deploy.VALOHAI_TAG[0]}


def deploy_stack(
    aws: Any, request: DeployRequest, *, approve: Approve | None, report: Reporter, execute: bool = True
) -> Result:
    """Deploy (execute=True) or plan (False): the stack's state, the parameters it needs, preflight, a change
    set, its review and the data-loss guard, then approval and the execution — or, for plan, the change set
    kept or discarded."""
    from valohai_cfn.stack.policy import stack_policy

    cfn = aws("cloudformation")
    promises = Promises(cfn, approve, report)
    with promises.interruptible():
        state = deploy.stack_state(cfn, request.stack_name)
        # What an update leaves out keeps the stack's value: preflight checks that one.
        updating, values = values_it_would_have(state, request.parameters, request.template)
        if request.preflight:
            hint = f"{'deploy' if execute else 'plan'} it with --skip-preflight"
            if request.account_checks is not None:  # a worker pool's own checks
                checks = request.account_checks(aws)
            else:
                checks = check_account(aws, request.template, values, request.stack_name, skip_hint=hint)
            report.note(AccountChecked(checks))
            if not all(c.ok for c in checks):
                raise DeployError(f"preflight failed: fix the rows marked FAILED, or {hint}")
        # After preflight, whose rows say what `latest` stands for (or that nothing is shared).
        parameters = resolve_images(aws, request.parameters, report, state.parameters if updating else None)
        state = _settled(promises, request, state, execute=execute)
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
        tags = _tags_to_send(request, state, plan)
        change_set_request = deploy.ChangeSetRequest(
            request.stack_name, plan, location, sent.entries, tags, request.role_arn
        )
        change_set = promises.create_change_set(change_set_request, made_stack=state.stack is None)
        if change_set.is_empty:
            promises.discard(change_set)
            report.note(UpToDate(request.stack_name))
            if execute and state.stack is not None and state.made_by_this_tool:
                policy = stack_policy(request.template.document, parameters=sent.values)
                promises.mend(state.stack, Protections(request.termination_protection, policy))
            return Result(request.stack_name, End.UP_TO_DATE, Review())
        if change_set.status != "CREATE_COMPLETE":
            promises.discard(change_set)
            raise DeployError(f"change set {change_set.name} is {change_set.status}: {change_set.reason}")
        if change_set.stack_name != request.stack_name:
            raise DeployError(f"change set {change_set.name} is stack {change_set.stack_name}'s")
        sent_tags = {**tags, deploy.VALOHAI_TAG[0]: deploy.VALOHAI_TAG[1]}
        reviewed = _review(cfn, state, change_set, deployed, request.template.document, sent.values, sent_tags)
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
            old_values=state.parameters,
            new_template=request.template.document,
            new_values=sent.values,
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
    protections and following as a deploy. WrongInput for a change set the named stack does not have."""
    cfn = aws("cloudformation")
    promises = Promises(cfn, approve, report)
    with promises.interruptible():
        try:
            change_set = deploy.describe_change_set(cfn, request.change_set, request.stack_name)
        except deploy.ChangeSetNotFound as e:
            raise WrongInput(f"{e}: nothing was executed") from None
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
        reviewed = _review(cfn, state, change_set, deployed, document, change_set.parameters, change_set.tags)
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
            old_values=state.parameters,
            new_template=document,
            new_values=change_set.parameters,
            termination=request.termination_protection,
            disable_rollback=request.disable_rollback,
        )


def delete_stack(aws: Any, request: DeleteRequest, *, approve: Approve | None, report: Reporter) -> Result:
    """Delete the stack: what it keeps and removes listed, approval asked, termination protection lifted only
    with --force and only together with DeleteStack, the delete followed to its end. A stack an earlier
    delete left DELETE_FAILED gets the termination protection that delete lifted back first."""
    cfn = aws("cloudformation")
    promises = Promises(cfn, approve, report)
    with promises.interruptible():
        stack = deploy.describe(cfn, request.stack_name)
        stack = put_back_after_failed_delete(cfn, stack, report)
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
