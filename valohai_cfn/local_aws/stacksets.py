"""StackSets, run by this package's CloudFormation in each target account and region.

moto keeps a StackSet and its instances, but an instance's stack is made by moto's own CloudFormation (which
runs no transform and fails many of the models this package adds) under a name with a colon, or not at all
(service-managed: a "hidden" stack), and every operation and instance reports SUCCEEDED / CURRENT whatever
happened; updates change no resource. Here each instance is a stack of this package, named as CloudFormation
names them (StackSet-<name>-<id>), made, updated and deleted by its operations in the instance's account and
region, and the instance and the operation report what happened: CURRENT / SUCCEEDED, or OUTDATED / FAILED with
the stack's own reason, and CANCELLED for what a failure stopped (the failure tolerance is 0 unless the request
gives FailureToleranceCount).

What CloudFormation checks first: the capabilities the template needs (CAPABILITY_NAMED_IAM, and
CAPABILITY_AUTO_EXPAND for a transform), no transform with service-managed permissions (its default execution
role cannot run one), accounts as targets only with self-managed permissions and organizational units only
with service-managed ones, and (self-managed) the execution role in each target account.

moto's own answers remain for CreateStackSet's bookkeeping, DescribeStackSet and ListStackSets.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation.exceptions import CloudFormationError, ValidationError
from moto.cloudformation.models import StackSet, cloudformation_backends
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends
from moto.organizations.models import organizations_backends

from . import api, operations
from .template import check_capabilities, parse, process, required_capabilities

SUCCEEDED, FAILED, CANCELLED = "SUCCEEDED", "FAILED", "CANCELLED"
# moto's CreateStackSet, whose bookkeeping (the StackSet, its id) this package's keeps.
_MOTO_CREATE_STACK_SET = CloudFormationResponse.create_stack_set


@dataclass
class Instance:
    """A stack instance: where, its parameter overrides, and its stack in that account and region."""

    account: str
    region: str
    overrides: dict[str, str] = field(default_factory=dict)
    stack_id: str | None = None
    detailed: str = "PENDING"  # SUCCEEDED, FAILED, CANCELLED
    reason: str | None = None
    organizational_unit: str | None = None

    @property
    def status(self) -> str:
        return "CURRENT" if self.detailed == SUCCEEDED else "OUTDATED"


@dataclass
class Operation:
    operation_id: str
    action: str  # CREATE, UPDATE, DELETE
    status: str = "RUNNING"
    reason: str | None = None
    results: list[tuple[str, str, str, str | None]] = field(default_factory=list)  # account, region, status, reason
    created: Any = field(default_factory=utcnow)
    ended: Any = None


@dataclass
class StackSetState:
    capabilities: list[str]
    instances: dict[tuple[str, str], Instance] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)


def _local(stack_set: StackSet) -> StackSetState:
    local = getattr(stack_set, "local", None)
    if local is None:
        local = stack_set.local = StackSetState([])
    return local


def _stack_set(self: CloudFormationResponse) -> StackSet:
    return self.cloudformation_backend.describe_stack_set(self._get_param("StackSetName"))


def _check_template(body: str, permission_model: str, capabilities: list[str]) -> None:
    """What CloudFormation refuses before it runs any operation: a missing capability, a transform with
    service-managed permissions' default execution role."""
    document = parse(body)
    if document.get("Transform") and permission_model == "SERVICE_MANAGED":
        raise ValidationError(
            message="StackSets with service-managed permissions cannot run transforms or macros with the default "
            "execution role: send the processed template, or use a custom execution role"
        )
    # A StackSet's template is created directly, without a change set to review: as CreateStack. What a loop
    # makes is known only for an instance's values; the types its fragments make are known here.
    resources = {"Resources": _with_fragments(document["Resources"])}
    check_capabilities(required_capabilities(document, resources, direct=True), capabilities)


def _with_fragments(resources: dict[str, Any]) -> dict[str, Any]:
    """The resources, a Fn::ForEach loop's fragments among them."""
    found = {}
    for key, value in resources.items():
        if key.startswith("Fn::ForEach::") and isinstance(value, list) and len(value) == 3:
            found.update(_with_fragments(value[2]))
        elif isinstance(value, dict):
            found[key] = value
    return found


def _parameters(entries: list[dict[str, Any]], previous: dict[str, str] | None = None) -> dict[str, str]:
    values = {}
    for entry in entries or []:
        key = entry["ParameterKey"]
        if str(entry.get("UsePreviousValue", "")).lower() == "true":
            values[key] = (previous or {}).get(key, "")
        else:
            values[key] = str(entry.get("ParameterValue", ""))
    return values


# -- targets -------------------------------------------------------------------------------------------


def _organization_accounts(stack_set: StackSet, ous: list[str]) -> list[tuple[str, str]]:
    """(account, the OU it was targeted through) for every account in the OUs and their children."""
    organizations = organizations_backends[stack_set.instances.account_id][stack_set.instances.partition]
    found = []
    for ou in ous:
        pending, seen = [ou], set()
        while pending:
            current = pending.pop()
            seen.add(current)
            pending += [o.id for o in organizations.ou if o.parent_id == current and o.id not in seen]
            found += [(a.id, ou) for a in organizations.accounts if a.parent_id == current]
    return found


def _targets(self: CloudFormationResponse, stack_set: StackSet) -> list[tuple[str, str | None]]:
    """The accounts a request targets, each with the OU it came through (service-managed)."""
    accounts = self._get_param("Accounts", []) or []
    targets = self._get_params().get("DeploymentTargets") or {}
    if stack_set.permission_model == "SERVICE_MANAGED":
        ous = targets.get("OrganizationalUnitIds") or []
        if accounts or not ous:
            raise ValidationError(
                message="StackSets with SERVICE_MANAGED permission model can only have OrganizationalUnit as target"
            )
        listed = set(targets.get("Accounts") or [])
        in_ous = _organization_accounts(stack_set, ous)
        kind = targets.get("AccountFilterType") or "NONE"
        if kind == "INTERSECTION":
            in_ous = [(a, ou) for a, ou in in_ous if a in listed]
        elif kind == "DIFFERENCE":
            in_ous = [(a, ou) for a, ou in in_ous if a not in listed]
        elif kind == "UNION":
            in_ous += [(a, None) for a in sorted(listed)]
        return list({a: (a, ou) for a, ou in in_ous}.values())
    if targets.get("OrganizationalUnitIds"):
        raise ValidationError(message="StackSets with SELF_MANAGED permission model can only have accounts as target")
    return [(a, None) for a in [*accounts, *(targets.get("Accounts") or [])]]


def _execution_role_missing(stack_set: StackSet, account: str) -> str | None:
    """Self-managed: the execution role must be in the target account (AWS's message when it is not)."""
    if stack_set.permission_model == "SERVICE_MANAGED":
        return None
    roles = iam_backends[account][stack_set.instances.partition].roles.values()
    if any(role.name == stack_set.execution_role_name for role in roles):
        return None
    administration = stack_set.administration_role_arn.rsplit("/", 1)[-1]
    return (
        f"Account {account} should have '{stack_set.execution_role_name}' role with trust relationship to Role "
        f"'{administration}'."
    )


# -- running an operation ------------------------------------------------------------------------------


def _stack_failure(stack: Any) -> str:
    """Why a stack's operation failed: the first failed resource's reason, as the instance's StatusReason."""
    for event in stack.events:
        if event.resource_status.endswith("_FAILED") and event.resource_status_reason:
            return f"ResourceLogicalId:{event.logical_resource_id}, ResourceType:{event.resource_type}, " + (
                f"ResourceStatusReason:{event.resource_status_reason}."
            )
    return f"The stack is {stack.status}."


def _apply(stack_set: StackSet, instance: Instance, action: str) -> None:
    """Create, update or delete the instance's stack through this package's CloudFormation; the instance's
    status from how it ended."""
    capabilities = _local(stack_set).capabilities
    backend = cloudformation_backends[instance.account][instance.region]
    stack = backend.stacks.get(instance.stack_id) if instance.stack_id else None
    token = f"stackset-{uuid.uuid4()}"
    missing_role = _execution_role_missing(stack_set, instance.account)
    if missing_role:
        instance.detailed, instance.reason = FAILED, missing_role
        return
    if action == "DELETE":
        if stack is not None:
            operations.delete(backend, stack, token)
            if stack.status != "DELETE_COMPLETE":
                instance.detailed, instance.reason = FAILED, _stack_failure(stack)
                return
        instance.detailed, instance.reason = SUCCEEDED, None
        return
    values = {**stack_set.parameters, **instance.overrides}
    if stack is not None and stack.status == "ROLLBACK_COMPLETE":
        # A stack whose create rolled back can only be deleted: the instance's next operation makes it anew.
        operations.delete(backend, stack, token)
        stack = None
    try:
        if stack is None:
            name = f"StackSet-{stack_set.name}-{uuid.uuid4()}"
            stack = api.new_stack(backend, name, tags=dict(stack_set.tags or {}))
            processed = _processed(stack, stack_set, values, capabilities)
            api.create(backend, stack, processed, token, rollback=True)
            instance.stack_id = stack.stack_id
        else:
            api.update(
                backend, stack, _processed(stack, stack_set, values, capabilities), token, disable_rollback=False
            )
    except CloudFormationError as e:  # refused before the stack ran (a parameter, a capability)
        instance.detailed, instance.reason = FAILED, str(getattr(e, "message", e))
        return
    if stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        instance.detailed, instance.reason = SUCCEEDED, None
    else:
        instance.detailed, instance.reason = FAILED, _stack_failure(stack)


def _processed(stack: Any, stack_set: StackSet, values: dict[str, str], capabilities: list[str]) -> Any:
    return process(
        stack_set.template,
        values,
        region=stack.region_name,
        account_id=stack.account_id,
        stack_name=stack.name,
        capabilities=capabilities,
        direct=True,
        ec2=ec2_backends[stack.account_id][stack.region_name],
    )


def _tolerance(self: CloudFormationResponse) -> int:
    preferences = self._get_params().get("OperationPreferences") or {}
    return int(preferences.get("FailureToleranceCount") or 0)


def _run(self: CloudFormationResponse, stack_set: StackSet, action: str, instances: list[Instance]) -> Operation:
    """One operation over the instances, in order; once more instances failed than tolerated, the rest are
    cancelled, as StackSets stops an operation."""
    local = _local(stack_set)
    operation = Operation(self._get_param("OperationId") or str(uuid.uuid4()), action)
    local.operations[operation.operation_id] = operation
    failures, tolerated = 0, _tolerance(self)
    for instance in instances:
        if failures > tolerated:
            instance.detailed, instance.reason = CANCELLED, "Cancelled since failure tolerance has exceeded"
        else:
            _apply(stack_set, instance, action)
            failures += instance.detailed == FAILED
        operation.results.append((instance.account, instance.region, instance.detailed, instance.reason))
        if action == "DELETE" and instance.detailed == SUCCEEDED:
            local.instances.pop((instance.account, instance.region), None)
    operation.status = FAILED if failures > tolerated else SUCCEEDED
    if operation.status == FAILED:
        operation.reason = "The Operation failed because it exceeded the failure tolerance."
    operation.ended = utcnow()
    return operation


def _chosen(self: CloudFormationResponse, stack_set: StackSet) -> list[Instance]:
    """The existing instances a request names (Accounts or DeploymentTargets, and Regions)."""
    local = _local(stack_set)
    regions = self._get_param("Regions", []) or []
    accounts = {a for a, _ in _targets(self, stack_set)}
    chosen = [local.instances[(a, r)] for a in sorted(accounts) for r in regions if (a, r) in local.instances]
    missing = [(a, r) for a in sorted(accounts) for r in regions if (a, r) not in local.instances]
    if missing:
        account, region = missing[0]
        raise ValidationError(message=f"Stack instance in account {account}, region {region} does not exist")
    return chosen


# -- the API calls -------------------------------------------------------------------------------------


@api._answered
def create_stack_set(self: CloudFormationResponse) -> ActionResult:
    body = self._get_param("TemplateBody") or (
        self._get_stack_from_s3_url(self._get_param("TemplateURL")) if self._get_param("TemplateURL") else ""
    )
    if not body:
        raise ValidationError(message="Either Template URL or Template Body must be specified.")
    capabilities = self._get_param("Capabilities", []) or []
    _check_template(body, self._get_param("PermissionModel") or "SELF_MANAGED", capabilities)
    answer = _MOTO_CREATE_STACK_SET(self)
    stack_set = _stack_set(self)
    stack_set.local = StackSetState(capabilities)
    return answer


@api._answered
def create_stack_instances(self: CloudFormationResponse) -> ActionResult:
    stack_set = _stack_set(self)
    local = _local(stack_set)
    overrides = _parameters(self._get_param("ParameterOverrides", []))
    new = []
    for region in self._get_param("Regions", []) or []:
        for account, ou in _targets(self, stack_set):
            if (account, region) in local.instances:
                continue  # CloudFormation leaves an existing instance as it is
            instance = Instance(account, region, overrides, organizational_unit=ou)
            local.instances[(account, region)] = instance
            new.append(instance)
    return ActionResult({"OperationId": _run(self, stack_set, "CREATE", new).operation_id})


@api._answered
def update_stack_instances(self: CloudFormationResponse) -> ActionResult:
    stack_set = _stack_set(self)
    chosen = _chosen(self, stack_set)
    overrides = _parameters(self._get_param("ParameterOverrides", []))
    for instance in chosen:
        instance.overrides = {**instance.overrides, **overrides}
    return ActionResult({"OperationId": _run(self, stack_set, "UPDATE", chosen).operation_id})


@api._answered
def update_stack_set(self: CloudFormationResponse) -> ActionResult:
    stack_set = _stack_set(self)
    local = _local(stack_set)
    previous = str(self._get_param("UsePreviousTemplate", "")).lower() == "true"
    body = stack_set.template if previous else self._get_param("TemplateBody") or stack_set.template
    capabilities = self._get_param("Capabilities", []) or []
    _check_template(body, stack_set.permission_model, capabilities)
    stack_set.template = body
    stack_set.parameters = _parameters(self._get_param("Parameters", []), stack_set.parameters)
    local.capabilities = capabilities
    # Regions (and accounts) given: those instances; else every one.
    chosen = _chosen(self, stack_set) if self._get_param("Regions") else list(local.instances.values())
    return ActionResult({"OperationId": _run(self, stack_set, "UPDATE", chosen).operation_id})


@api._answered
def delete_stack_instances(self: CloudFormationResponse) -> ActionResult:
    stack_set = _stack_set(self)
    chosen = _chosen(self, stack_set)
    if str(self._get_param("RetainStacks", "")).lower() == "true":
        for instance in chosen:  # the stacks stay, no longer the StackSet's
            _local(stack_set).instances.pop((instance.account, instance.region), None)
        chosen = []
    return ActionResult({"OperationId": _run(self, stack_set, "DELETE", chosen).operation_id})


@api._answered
def delete_stack_set(self: CloudFormationResponse) -> ActionResult:
    stack_set = _stack_set(self)
    if _local(stack_set).instances:
        raise ValidationError(message="StackSet is not empty")  # moto's StackSetNotEmpty, in its words
    stack_set.delete()
    return EmptyResult()


def _instance_summary(stack_set: StackSet, instance: Instance) -> dict[str, Any]:
    summary = {
        "StackSetId": stack_set.id,
        "Region": instance.region,
        "Account": instance.account,
        "Status": instance.status,
        "StackInstanceStatus": {"DetailedStatus": instance.detailed},
        "ParameterOverrides": [{"ParameterKey": k, "ParameterValue": v} for k, v in instance.overrides.items()],
    }
    if instance.stack_id:
        summary["StackId"] = instance.stack_id
    if instance.reason:
        summary["StatusReason"] = instance.reason
    if instance.organizational_unit:
        summary["OrganizationalUnitId"] = instance.organizational_unit
    return summary


@api._answered
def list_stack_instances(self: CloudFormationResponse) -> ActionResult:
    stack_set = _stack_set(self)
    return ActionResult({"Summaries": [_instance_summary(stack_set, i) for i in _local(stack_set).instances.values()]})


@api._answered
def describe_stack_instance(self: CloudFormationResponse) -> ActionResult:
    stack_set = _stack_set(self)
    key = (self._get_param("StackInstanceAccount"), self._get_param("StackInstanceRegion"))
    instance = _local(stack_set).instances.get(key)
    if instance is None:
        raise ValidationError(message=f"Stack instance in account {key[0]}, region {key[1]} does not exist")
    return ActionResult({"StackInstance": _instance_summary(stack_set, instance)})


def _operation(self: CloudFormationResponse) -> tuple[StackSet, Operation]:
    stack_set = _stack_set(self)
    operation_id = self._get_param("OperationId")
    operation = _local(stack_set).operations.get(operation_id)
    if operation is None:
        raise ValidationError(message=f"Operation {operation_id} does not exist")  # OperationNotFoundException
    return stack_set, operation


def _operation_summary(stack_set: StackSet, operation: Operation) -> dict[str, Any]:
    summary = {
        "OperationId": operation.operation_id,
        "StackSetId": stack_set.id,
        "Action": operation.action,
        "Status": operation.status,
        "CreationTimestamp": operation.created,
        "EndTimestamp": operation.ended,
        "AdministrationRoleARN": stack_set.administration_role_arn,
        "ExecutionRoleName": stack_set.execution_role_name,
    }
    if operation.reason:
        summary["StatusReason"] = operation.reason
    return summary


@api._answered
def describe_stack_set_operation(self: CloudFormationResponse) -> ActionResult:
    stack_set, operation = _operation(self)
    return ActionResult({"StackSetOperation": _operation_summary(stack_set, operation)})


@api._answered
def list_stack_set_operations(self: CloudFormationResponse) -> ActionResult:
    stack_set = _stack_set(self)
    return ActionResult(
        {"Summaries": [_operation_summary(stack_set, o) for o in _local(stack_set).operations.values()]}
    )


@api._answered
def list_stack_set_operation_results(self: CloudFormationResponse) -> ActionResult:
    _, operation = _operation(self)
    return ActionResult(
        {
            "Summaries": [
                {"Account": account, "Region": region, "Status": status, **({"StatusReason": reason} if reason else {})}
                for account, region, status, reason in operation.results
            ]
        }
    )


HANDLERS = {
    "create_stack_set": create_stack_set,
    "create_stack_instances": create_stack_instances,
    "update_stack_instances": update_stack_instances,
    "update_stack_set": update_stack_set,
    "delete_stack_instances": delete_stack_instances,
    "delete_stack_set": delete_stack_set,
    "list_stack_instances": list_stack_instances,
    "describe_stack_instance": describe_stack_instance,
    "describe_stack_set_operation": describe_stack_set_operation,
    "list_stack_set_operations": list_stack_set_operations,
    "list_stack_set_operation_results": list_stack_set_operation_results,
}


def install() -> None:
    """Answer the StackSet calls here; CreateStackSet keeps moto's bookkeeping after this package's checks."""
    for name, handler in HANDLERS.items():
        setattr(CloudFormationResponse, name, handler)
