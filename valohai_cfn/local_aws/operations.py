"""Stack operations as CloudFormation runs them, with the events it emits: executing a change set (create
in dependency order, update in place, replace — new resource first, the old one removed in the cleanup
phase under its UpdateReplacePolicy — and remove), deleting a stack (DeletionPolicy: Retain skips,
Snapshot has the service take a final snapshot as part of a delete it accepts), and when a resource fails,
the failure reported against that resource and the stack rolled back (or left as it is with rollback
disabled, for RollbackStack to roll back later); a rollback a service stops (it refuses an undo) is
UPDATE_ROLLBACK_FAILED, with what is left to undo kept for ContinueUpdateRollback.

moto's own execute applied what its models could and reported UPDATE_COMPLETE for the rest, raised a
resource's failure from the API call itself, and rolled nothing back.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack
from moto.cloudformation.parsing import generate_resource_name
from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import ServiceException
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource
from moto.moto_api._internal import mock_random

from . import models, rules, updates
from .changesets import ChangeSet, ResourceChange
from .intrinsics import with_dynamic_references
from .stacks import Resource, StackScope, add_event, creation_order, depends_on, stack_event, state
from .template import Processed

logger = logging.getLogger(__name__)

REPLACING = "Requested update requires the creation of a new physical resource; hence creating one."


class Failed(Exception):
    """A resource failed; the operation stops there."""

    def __init__(self, logical_id: str, verb: str) -> None:
        super().__init__(logical_id)
        self.logical_id = logical_id
        self.verb = verb  # create, update, delete


def _reason(error: Exception) -> str:
    """A resource's failure reason, as CloudFormation words it: its own refusals as they are, a service's
    with the handler's framing; what the local AWS did not foresee, without Python's internals."""
    if isinstance(error, rules.Refused):
        return str(error)
    if isinstance(error, ValidationError):  # CloudFormation's own (a template error, a parameter not found)
        return error.message
    message = getattr(error, "message", None)
    code = error.code if isinstance(error, ServiceException) else getattr(error, "error_type", None)
    if message and code:  # a service's refusal, whatever moto raised it as
        return f'Resource handler returned message: "{message}" (HandlerErrorCode: {code})'
    if str(error).startswith(rules.NOT_SUPPORTED):
        return str(error)
    logger.error("the local AWS failed on a resource", exc_info=error)
    return f"{rules.NOT_SUPPORTED}: the resource's handler met what the local AWS does not model (see its log)"


def _where(stack: Stack) -> updates.Where:
    return updates.Where(stack.account_id, stack.region_name)


# -- one resource ----------------------------------------------------------------------------------


def _cloudformation_tags(stack: Stack, logical_id: str, made: Any) -> None:
    """The aws:cloudformation:* tags CloudFormation puts on what it makes (the app instance's boot reads
    the stack name from its instance's tags)."""
    target = getattr(made, "instance", made)
    if isinstance(target, TaggedEC2Resource):
        ec2_backends[stack.account_id][stack.region_name].create_tags(
            [target.id],
            {
                "aws:cloudformation:stack-name": stack.name,
                "aws:cloudformation:stack-id": stack.stack_id,
                "aws:cloudformation:logical-id": logical_id,
            },
        )


def make(stack: Stack, logical_id: str, resource_type: str, properties: dict[str, Any], scope: StackScope) -> Any:
    """Make the resource through its service; the live object."""
    rules.check_property_types(logical_id, resource_type, properties)
    rules.check("create", resource_type, _where(stack), {}, properties)
    model = models.model_class(resource_type)
    assert model is not None  # the change set refused a type without one
    given = copy.deepcopy(with_dynamic_references(properties, scope))
    name_property = rules.name_property(resource_type)
    physical_name = (
        given[name_property]
        if name_property and name_property in given
        else generate_resource_name(resource_type, stack.name, logical_id)
    )
    # The model gets what it applies; `updates.complete` applies the rest, each property once (moto's own
    # security group model, given SecurityGroupIngress, authorized the rules the update then added again).
    made_with = {k: v for k, v in given.items() if k in models.MADE_WITH[resource_type]}
    made = model.create_from_cloudformation_json(
        physical_name,
        {"Type": resource_type, "Properties": made_with},
        stack.account_id,
        stack.region_name,
        LogicalId=logical_id,
        StackId=stack.stack_id,
        ResourceType=resource_type,
    )
    made.cf_resource_type = resource_type
    made.logical_resource_id = logical_id
    try:
        made = updates.complete(_where(stack), resource_type, made, given)
    except Exception:
        # Half made is not made: the handler removes what it made before it reports the failure.
        _delete_made(stack, Resource(logical_id, resource_type, "CREATE_FAILED", {}, made, given))
        raise
    _cloudformation_tags(stack, logical_id, made)
    return made


SNAPSHOT_TYPES = frozenset({"AWS::RDS::DBInstance", "AWS::ElastiCache::ReplicationGroup"})


def _delete_made(stack: Stack, resource: Resource, final_snapshot: str | None = None) -> None:
    """Delete through the service; `final_snapshot` names the snapshot the service takes as part of a delete it
    accepts (RDS DeleteDBInstance FinalDBSnapshotIdentifier, ElastiCache DeleteReplicationGroup
    FinalSnapshotIdentifier): a refused delete leaves none."""
    made = resource.made
    prepare = models.BEFORE_DELETE.get(resource.resource_type)
    if prepare is not None:
        prepare(made, stack.account_id)
    if final_snapshot is not None:
        made.delete(stack.account_id, stack.region_name, final_snapshot=final_snapshot)
    elif resource.resource_type in models.DELETED_BY:
        models.DELETED_BY[resource.resource_type](made, stack.account_id, stack.region_name)
    elif callable(getattr(made, "delete", None)):
        made.delete(stack.account_id, stack.region_name)
    elif _deletes_nothing(type(made)):
        # moto's base class deletes nothing: saying DELETE_COMPLETE would be untrue (a type to add to DELETED_BY).
        raise ValueError(f"{rules.NOT_SUPPORTED}deleting a {resource.resource_type}")
    else:
        type(made).delete_from_cloudformation_json(
            resource.physical_id,
            {"Type": resource.resource_type, "Properties": copy.deepcopy(resource.properties)},
            stack.account_id,
            stack.region_name,
        )


def _deletes_nothing(model: type) -> bool:
    return getattr(model.delete_from_cloudformation_json, "__func__", None) is getattr(
        CloudFormationModel.delete_from_cloudformation_json, "__func__", object()
    )


def _snapshot_name(stack: Stack, resource: Resource) -> str:
    return f"{stack.name}-{resource.logical_id}-{mock_random.get_random_hex(12)}".lower()


def remove(stack: Stack, resource: Resource, policy: str | None, token: str | None) -> None:
    """Remove a live resource under its policy (Retain and RetainExceptOnCreate keep it); raises what the
    service raised, after the DELETE_FAILED event."""
    physical_id = resource.physical_id
    if policy in ("Retain", "RetainExceptOnCreate"):
        resource.set("DELETE_SKIPPED")
        add_event(stack, resource.logical_id, resource.resource_type, "DELETE_SKIPPED", token, physical_id=physical_id)
        return
    add_event(stack, resource.logical_id, resource.resource_type, "DELETE_IN_PROGRESS", token, physical_id=physical_id)
    try:
        _delete_made(stack, resource, _snapshot_name(stack, resource) if policy == "Snapshot" else None)
    except Exception as e:  # the service's refusal, whatever moto raised: the event carries its message
        resource.set("DELETE_FAILED", _reason(e))
        add_event(
            stack,
            resource.logical_id,
            resource.resource_type,
            "DELETE_FAILED",
            token,
            physical_id=physical_id,
            reason=_reason(e),
        )
        raise
    resource.made = None
    resource.set("DELETE_COMPLETE")
    add_event(stack, resource.logical_id, resource.resource_type, "DELETE_COMPLETE", token, physical_id=physical_id)


# -- executing a change set ------------------------------------------------------------------------


@dataclass
class _Undo:
    kind: str  # created, updated, replaced
    logical_id: str
    before: Resource | None = None  # the resource as it was (updated, replaced)


@dataclass
class _Run:
    stack: Stack
    processed: Processed
    token: str | None
    policy: str
    journal: list[_Undo] = field(default_factory=list)
    replaced: list[Resource] = field(default_factory=list)

    @property
    def resources(self) -> dict[str, Resource]:
        return state(self.stack).resources

    def scope(self) -> StackScope:
        return StackScope(self.stack, self.processed, self.resources)

    def event(self, resource: Resource, status: str, reason: str | None = None) -> None:
        add_event(
            self.stack,
            resource.logical_id,
            resource.resource_type,
            status,
            self.token,
            physical_id=resource.physical_id,
            reason=reason,
        )

    def fail(self, resource: Resource, verb: str, error: Exception) -> Failed:
        status = "CREATE_FAILED" if verb == "create" else "UPDATE_FAILED"
        resource.set(status, _reason(error))
        self.event(resource, status, _reason(error))
        return Failed(resource.logical_id, verb)

    def create(self, name: str) -> None:
        definition = self.processed.resources[name]
        scope = self.scope()
        resource = Resource(name, definition["Type"], "CREATE_IN_PROGRESS", definition)
        self.resources[name] = resource
        self.event(resource, "CREATE_IN_PROGRESS")
        try:
            resource.properties = scope.properties(name)
            resource.metadata = scope.metadata(name)
            self.journal.append(_Undo("created", name))
            resource.made = make(self.stack, name, resource.resource_type, resource.properties, scope)
        except Exception as e:  # a service's refusal, whatever moto raised: the resource fails with its message
            raise self.fail(resource, "create", e) from None
        resource.set("CREATE_COMPLETE")
        self.event(resource, "CREATE_COMPLETE")

    def update(self, name: str) -> None:
        resource = self.resources[name]
        before = copy.copy(resource)
        definition = self.processed.resources[name]
        scope = self.scope()
        self.event(resource, "UPDATE_IN_PROGRESS")
        try:
            new = scope.properties(name)
            changed = {k for k in set(new) | set(resource.properties) if new.get(k) != resource.properties.get(k)}
            replace = any(
                rules.recreation(resource.resource_type, k, resource.properties.get(k), new.get(k)) == "Always"
                for k in changed
            )
            action = "Update:Replace" if replace else "Update:Modify"
            denial = changed and rules.stack_policy_denial(self.policy, action, name, resource.resource_type)
            if denial:
                raise rules.Refused(denial)
            if replace:
                rules.check_custom_name(name, resource.resource_type, resource.properties, new)
                self.event(resource, "UPDATE_IN_PROGRESS", REPLACING)
                self.journal.append(_Undo("replaced", name, before))
                resource.made = make(self.stack, name, resource.resource_type, new, scope)
                self.replaced.append(before)
            elif changed:
                rules.check_property_types(name, resource.resource_type, new)
                rules.check("update", resource.resource_type, _where(self.stack), resource.properties, new)
                self.journal.append(_Undo("updated", name, before))
                resource.made = updates.apply(
                    _where(self.stack),
                    resource.resource_type,
                    resource.made,
                    with_dynamic_references(new, scope),
                    resource.properties,
                    changed,
                )
            resource.properties = new
            resource.metadata = scope.metadata(name)
            resource.definition = definition
        except Exception as e:  # a service's refusal, whatever moto raised: the resource fails with its message
            raise self.fail(resource, "update", e) from None
        resource.set("UPDATE_COMPLETE")
        self.event(resource, "UPDATE_COMPLETE")

    def cleanup(self, removed: list[Resource]) -> None:
        """After success: the replaced resources' old physical ones, then what the template no longer has."""
        for old in self.replaced:
            _quietly(self.stack, old, old.definition.get("UpdateReplacePolicy"), self.token)
        for resource in removed:
            _quietly(self.stack, resource, resource.definition.get("DeletionPolicy"), self.token)
            self.resources.pop(resource.logical_id, None)


def _quietly(stack: Stack, resource: Resource, policy: str | None, token: str | None) -> None:
    """A removal in a cleanup phase: a failure there is an event, not a failed operation (CloudFormation)."""
    with contextlib.suppress(Exception):  # reported in the DELETE_FAILED event; the operation itself succeeded
        remove(stack, resource, policy, token)


def _check_removals(run: _Run, changes: list[ResourceChange]) -> None:
    """Update:Delete of what the template no longer has, before anything changes (the removals themselves
    come in the cleanup phase, after the rest succeeded)."""
    for change in changes:
        if change.action == "Remove":
            resource = run.resources[change.logical_id]
            denial = rules.stack_policy_denial(run.policy, "Update:Delete", change.logical_id, change.resource_type)
            if denial:
                raise run.fail(resource, "update", rules.Refused(denial))


def execute(
    backend: CloudFormationBackend,
    change_set: ChangeSet,
    token: str | None,
    *,
    disable_rollback: bool,
    policy_during_update: str | None = None,
) -> None:
    """Run the change set to the state CloudFormation would reach: *_COMPLETE, or the failed resource's
    event and a rollback (*_FAILED with rollback disabled)."""
    stack = change_set.stack
    local = state(stack)
    operation = "CREATE" if change_set.kind == "CREATE" else "UPDATE"
    previous = local.processed
    # A retry from CREATE_FAILED / UPDATE_FAILED (rollback disabled) adds to what RollbackStack would undo.
    carried = local.unfinished if stack.status in ("CREATE_FAILED", "UPDATE_FAILED") else None
    run = _Run(
        stack, change_set.processed, token, policy_during_update if policy_during_update is not None else stack.policy
    )
    stack_event(stack, f"{operation}_IN_PROGRESS", token, "User Initiated")
    changes = {c.logical_id: c for c in change_set.changes}
    try:
        if operation == "UPDATE":
            _check_removals(run, change_set.changes)
        local.processed = change_set.processed
        for name in creation_order(change_set.processed.resources):
            change = changes.get(name)
            if change is None:
                continue
            if change.action == "Add":
                run.create(name)
            else:
                run.update(name)
    except Failed as failure:
        _failed(backend, run, previous, operation, failure, disable_rollback, carried)
        return
    local.unfinished = None
    removed = [local.resources[c.logical_id] for c in change_set.changes if c.action == "Remove"]
    removed.sort(key=lambda r: -_position(previous, r.logical_id))
    if operation == "UPDATE":
        stack_event(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", token)
    run.cleanup(removed)
    stack.template = change_set.processed.body
    stack.parameters = dict(change_set.processed.values)
    stack_event(stack, f"{operation}_COMPLETE", token)
    forget_change_sets(backend, stack)


def _position(processed: Processed | None, name: str) -> int:
    order = creation_order(processed.resources) if processed else []
    return order.index(name) if name in order else len(order)


def forget_change_sets(backend: CloudFormationBackend, stack: Stack) -> None:
    """CloudFormation removes a stack's change sets once one of them is executed."""
    for arn, other in list(backend.change_sets.items()):
        if other.stack_id == stack.stack_id:
            del backend.change_sets[arn]


@dataclass
class Unfinished:
    """What a failed operation left for a rollback to undo (RollbackStack after a failure with rollback
    disabled; ContinueUpdateRollback after a rollback that failed)."""

    operation: str  # CREATE: the rollback removes every resource; UPDATE: it undoes the journal
    stable: Processed | None  # the template of the last stable state the rollback returns to
    journal: list[_Undo]  # what is still to undo, oldest first
    made_during: list[Resource] = field(default_factory=list)  # made by the update: removed in the cleanup


def _failed(
    backend: CloudFormationBackend,
    run: _Run,
    previous: Processed | None,
    operation: str,
    failure: Failed,
    disable_rollback: bool,
    carried: Unfinished | None,
) -> None:
    stack, token = run.stack, run.token
    why = f"The following resource(s) failed to {failure.verb}: [{failure.logical_id}]. "
    forget_change_sets(backend, stack)
    if disable_rollback:
        # What was made stays, as it is: the next update retries from here, RollbackStack undoes it all.
        stack.template = run.processed.body
        stack.parameters = dict(run.processed.values)
        state(stack).unfinished = (
            Unfinished(carried.operation, carried.stable, carried.journal + run.journal)
            if carried is not None
            else Unfinished(operation, previous, list(run.journal))
        )
        stack_event(stack, f"{operation}_FAILED", token, why)
        return
    reason = why + "Rollback requested by user." if operation == "CREATE" else why
    roll_back(stack, Unfinished(operation, previous, list(run.journal)), token, reason)


def roll_back(stack: Stack, unfinished: Unfinished, token: str | None, reason: str | None) -> None:
    """Return the stack to its last stable state: a failed create's resources removed (ROLLBACK_COMPLETE),
    an update's changes undone and what it made removed (UPDATE_ROLLBACK_COMPLETE); where a service refuses
    an undo, UPDATE_ROLLBACK_FAILED with the rest kept for ContinueUpdateRollback."""
    local = state(stack)
    local.unfinished = None
    if unfinished.operation == "CREATE":
        stack_event(stack, "ROLLBACK_IN_PROGRESS", token, reason)
        failed = _remove_all(stack, token, on_create_rollback=True)
        if failed:
            stack_event(
                stack, "ROLLBACK_FAILED", token, f"The following resource(s) failed to delete: [{', '.join(failed)}]. "
            )
            return
        stack_event(stack, "ROLLBACK_COMPLETE", token)
        return
    stack_event(stack, "UPDATE_ROLLBACK_IN_PROGRESS", token, reason)
    local.processed = unfinished.stable
    try:
        _undo(stack, unfinished, token)
    except Exception as e:  # a service refused to undo a change: the rollback stops there, resumable
        local.unfinished = unfinished
        stack_event(stack, "UPDATE_ROLLBACK_FAILED", token, _reason(e))
        return
    stack_event(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", token)
    for resource in unfinished.made_during:
        policy = resource.definition.get("DeletionPolicy")
        _quietly(stack, resource, None if policy == "RetainExceptOnCreate" else policy, token)
    stack_event(stack, "UPDATE_ROLLBACK_COMPLETE", token)


def skip_in_rollback(stack: Stack, unfinished: Unfinished, names: list[str], token: str | None) -> None:
    """ContinueUpdateRollback's ResourcesToSkip: "CloudFormation sets the status of the specified resources
    to UPDATE_COMPLETE and continues to roll back the stack" — they keep what the update made of them."""
    resources = state(stack).resources
    for name in names:
        resource = resources.get(name)
        if resource is None or resource.status != "UPDATE_FAILED":
            # CloudFormation takes only resources whose rollback failed; its exact words are not known here.
            raise ValidationError(
                message=f"Resource {name} cannot be skipped: only a resource whose rollback failed "
                "(UPDATE_FAILED) can be"
            )
    for name in names:
        unfinished.journal = [u for u in unfinished.journal if u.logical_id != name]
        resources[name].set("UPDATE_COMPLETE")
        add_event(
            stack,
            name,
            resources[name].resource_type,
            "UPDATE_COMPLETE",
            token,
            physical_id=resources[name].physical_id,
        )


def _undo(stack: Stack, unfinished: Unfinished, token: str | None) -> None:
    """Put back what the update changed, newest first, each entry leaving the journal once undone; the
    resources it made go to `made_during`. The services' rules apply to an undo as to any change (RDS storage
    does not shrink back): a refused undo is the resource's UPDATE_FAILED, and raises."""
    resources = state(stack).resources
    while unfinished.journal:
        undo = unfinished.journal[-1]
        resource = resources.get(undo.logical_id)
        if undo.kind == "created":
            if resource is not None and resource.made is not None:
                unfinished.made_during.append(copy.copy(resource))
            resources.pop(undo.logical_id, None)
            unfinished.journal.pop()
            continue
        assert undo.before is not None and resource is not None
        add_event(
            stack,
            resource.logical_id,
            resource.resource_type,
            "UPDATE_IN_PROGRESS",
            token,
            physical_id=resource.physical_id,
        )
        if undo.kind == "replaced":
            if resource.made is not undo.before.made and resource.made is not None:
                unfinished.made_during.append(copy.copy(resource))
        else:
            _undo_update(stack, resource, undo.before, token)
        resources[undo.logical_id] = undo.before
        undo.before.set("UPDATE_COMPLETE")
        add_event(
            stack,
            undo.logical_id,
            undo.before.resource_type,
            "UPDATE_COMPLETE",
            token,
            physical_id=undo.before.physical_id,
        )
        unfinished.journal.pop()


def _undo_update(stack: Stack, resource: Resource, before: Resource, token: str | None) -> None:
    changed = {
        k
        for k in set(before.properties) | set(resource.properties)
        if before.properties.get(k) != resource.properties.get(k)
    } or set(before.properties)
    local = state(stack)
    scope = StackScope(stack, local.processed, local.resources) if local.processed else None
    try:
        rules.check("update", resource.resource_type, _where(stack), resource.properties, before.properties)
        updates.apply(
            _where(stack),
            resource.resource_type,
            before.made,
            with_dynamic_references(before.properties, scope) if scope else before.properties,
            resource.properties,
            changed,
        )
    except Exception as e:  # the service's refusal: the resource's event carries it
        resource.set("UPDATE_FAILED", _reason(e))
        add_event(
            stack,
            resource.logical_id,
            resource.resource_type,
            "UPDATE_FAILED",
            token,
            physical_id=resource.physical_id,
            reason=_reason(e),
        )
        raise


# -- deleting --------------------------------------------------------------------------------------


def _dependencies(processed: Processed | None, names: set[str]) -> set[str]:
    """What these resources refer to or depend on, transitively: it cannot go while they stay."""
    if processed is None:
        return set()
    found: set[str] = set()
    todo = list(names)
    while todo:
        for name in depends_on(processed.resources.get(todo.pop(), {})) & set(processed.resources) - found:
            found.add(name)
            todo.append(name)
    return found


def _remove_all(stack: Stack, token: str | None, *, on_create_rollback: bool = False) -> list[str]:
    """Remove the stack's resources, dependents first; the ones that failed (and what they hold)."""
    local = state(stack)
    order = creation_order(local.processed.resources) if local.processed else []
    order = [n for n in order if n in local.resources] + [n for n in local.resources if n not in order]
    failed: list[str] = []
    held: set[str] = set()
    for name in reversed(order):
        resource = local.resources[name]
        if resource.made is None or name in held:
            continue
        policy = resource.definition.get("DeletionPolicy")
        if on_create_rollback and policy == "RetainExceptOnCreate":
            policy = "Delete"
        try:
            remove(stack, resource, policy, token)
        except Exception:  # reported in the resource's DELETE_FAILED event
            failed.append(name)
            held |= _dependencies(local.processed, {name})
    return failed


def delete(backend: CloudFormationBackend, stack: Stack, token: str | None) -> None:
    """Delete the stack: DELETE_COMPLETE, or DELETE_FAILED naming what the services refused to delete."""
    stack_event(stack, "DELETE_IN_PROGRESS", token, "User Initiated")
    failed = _remove_all(stack, token)
    if failed:
        stack_event(
            stack, "DELETE_FAILED", token, f"The following resource(s) failed to delete: [{', '.join(failed)}]. "
        )
        return
    stack_event(stack, "DELETE_COMPLETE", token)
    forget_change_sets(backend, stack)
    backend.stacks.pop(stack.stack_id, None)
    backend.deleted_stacks[stack.stack_id] = stack
