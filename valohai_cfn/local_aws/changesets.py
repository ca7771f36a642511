"""Change sets as CloudFormation computes them: each resource of the processed template compared with the
stack's, its properties evaluated for the new parameter values and compared with what was applied, so a
parameter reached through Fn::Sub or a condition is a change too (moto compares Refs only); a change to a
create-only property (the resource provider schemas cfn-lint ships) is a replacement, with Details and
property values; a value known only while executing (the attribute of a resource made or changed) is a
Dynamic evaluation. moto lists every resource as "Add", misses such changes, and has no Replacement or
Details.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.cloudformation.exceptions import CloudFormationError
from moto.cloudformation.models import Stack

from . import rules, updates
from .intrinsics import NO_VALUE, Unresolved, dynamic_references, evaluate, references, rendered
from .stacks import StackScope, StackState, creation_order, now
from .template import Processed

NO_CHANGES = "The submitted information didn't contain changes. Submit different information to create a change set."


class ChangeSetNotFound(CloudFormationError):
    code = "ChangeSetNotFound"

    def __init__(self, name: str) -> None:
        super().__init__(f"ChangeSet [{name}] does not exist")


class InvalidChangeSetStatus(CloudFormationError):
    code = "InvalidChangeSetStatus"


@dataclass
class Detail:
    attribute: str  # Properties, Metadata, Tags
    name: str | None  # the property
    requires_recreation: str  # Never, Conditionally, Always
    evaluation: str  # Static, Dynamic
    source: str  # DirectModification, ParameterReference, ResourceReference, ResourceAttribute
    causing_entity: str | None
    before: Any
    after: Any

    def shape(self, with_values: bool) -> dict[str, Any]:
        target: dict[str, Any] = {"Attribute": self.attribute, "RequiresRecreation": self.requires_recreation}
        if self.name:
            target["Name"] = self.name
        if with_values:
            if self.before is not None:
                target["BeforeValue"] = rendered(self.before)
            if self.after is not None:
                target["AfterValue"] = rendered(self.after)
        detail = {"Target": target, "Evaluation": self.evaluation, "ChangeSource": self.source}
        if self.causing_entity:
            detail["CausingEntity"] = self.causing_entity
        return detail


@dataclass
class ResourceChange:
    action: str  # Add, Modify, Remove
    logical_id: str
    resource_type: str
    physical_id: str = ""
    replacement: str | None = None  # True, False, Conditional (Modify only)
    details: list[Detail] = field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    @property
    def replaces(self) -> bool:
        return self.replacement == "True"

    def shape(self, with_values: bool) -> dict[str, Any]:
        change: dict[str, Any] = {
            "Action": self.action,
            "LogicalResourceId": self.logical_id,
            "ResourceType": self.resource_type,
            "Scope": sorted({d.attribute for d in self.details}),
            "Details": [d.shape(with_values) for d in self.details],
        }
        if self.physical_id:
            change["PhysicalResourceId"] = self.physical_id
        if self.replacement is not None:
            change["Replacement"] = self.replacement
        if with_values:
            if self.before is not None:
                change["BeforeContext"] = rendered({"Properties": self.before})
            if self.after is not None:
                change["AfterContext"] = rendered({"Properties": self.after})
        return {"Type": "Resource", "ResourceChange": change}


@dataclass
class ChangeSet:
    change_set_id: str
    change_set_name: str
    stack: Stack
    kind: str  # CREATE, UPDATE
    processed: Processed
    changes: list[ResourceChange]
    description: str | None
    tags: dict[str, str]
    capabilities: list[str]
    role_arn: str | None
    notification_arns: list[str]
    status: str = "CREATE_COMPLETE"
    execution_status: str = "AVAILABLE"
    status_reason: str | None = None
    on_failure: str = "ROLLBACK"  # OnStackFailure of a CREATE change set: ROLLBACK, DELETE, DO_NOTHING
    creation_time: datetime = field(default_factory=now)

    @property
    def stack_id(self) -> str:
        return self.stack.stack_id

    def parameters(self) -> list[dict[str, str]]:
        hidden = self.processed.no_echo()
        return [
            {"ParameterKey": k, "ParameterValue": "****" if k in hidden else v}
            for k, v in self.processed.values.items()
        ]

    def described(self, with_values: bool) -> dict[str, Any]:
        described = {
            "ChangeSetName": self.change_set_name,
            "ChangeSetId": self.change_set_id,
            "StackId": self.stack.stack_id,
            "StackName": self.stack.name,
            "Parameters": self.parameters(),
            "CreationTime": self.creation_time,
            "ExecutionStatus": self.execution_status,
            "Status": self.status,
            "NotificationARNs": self.notification_arns,
            "Capabilities": self.capabilities,
            "Tags": [{"Key": k, "Value": v} for k, v in self.tags.items()],
            "Changes": [c.shape(with_values) for c in self.changes],
            "IncludeNestedStacks": False,
        }
        if self.description:
            described["Description"] = self.description
        if self.status_reason:
            described["StatusReason"] = self.status_reason
        if self.role_arn:
            described["RoleARN"] = self.role_arn
        return described

    def summary(self) -> dict[str, Any]:
        summary = {
            "StackId": self.stack.stack_id,
            "StackName": self.stack.name,
            "ChangeSetId": self.change_set_id,
            "ChangeSetName": self.change_set_name,
            "ExecutionStatus": self.execution_status,
            "Status": self.status,
            "CreationTime": self.creation_time,
            "IncludeNestedStacks": False,
        }
        if self.description:
            summary["Description"] = self.description
        if self.status_reason:
            summary["StatusReason"] = self.status_reason
        return summary


def _contains_unresolved(value: Any) -> list[Unresolved]:
    if isinstance(value, Unresolved):
        return [value]
    if isinstance(value, list):
        return [u for v in value for u in _contains_unresolved(v)]
    if isinstance(value, dict):
        return [u for v in value.values() for u in _contains_unresolved(v)]
    return []


def _parameters_in(node: Any, processed: Processed) -> list[str]:
    return sorted(references(node) & set(processed.document.get("Parameters", {})))


def _details(
    resource_type: str,
    old: dict[str, Any],
    new: dict[str, Any],
    old_definition: dict[str, Any],
    new_definition: dict[str, Any],
    previous: Processed | None,
    processed: Processed,
) -> list[Detail]:
    details = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        attribute = "Tags" if name == "Tags" else "Properties"
        unresolved = _contains_unresolved(after)
        recreation = rules.recreation(resource_type, name, before, after)
        if unresolved:
            for source in sorted({s for u in unresolved for s in u.sources}):
                kind = "ResourceAttribute" if "." in source else "ResourceReference"
                details.append(Detail(attribute, name, recreation, "Dynamic", kind, source, before, None))
            continue
        expression_before = old_definition.get("Properties", {}).get(name)
        expression_after = new_definition.get("Properties", {}).get(name)
        changed_parameters = [
            p
            for p in _parameters_in(expression_after, processed)
            if previous is None or previous.values.get(p) != processed.values.get(p)
        ]
        if expression_before == expression_after and changed_parameters:
            for parameter in changed_parameters:
                details.append(
                    Detail(attribute, name, recreation, "Static", "ParameterReference", parameter, before, after)
                )
        else:
            details.append(Detail(attribute, name, recreation, "Static", "DirectModification", None, before, after))
    return details


def plan(stack: Stack, local: StackState, processed: Processed) -> list[ResourceChange]:
    """What executing the processed template would do to the stack's resources."""
    previous = local.processed
    made = {name: r for name, r in local.resources.items() if r.made is not None}
    new_ids: set[str] = set()
    new_attributes: set[str] = set()
    scope = StackScope(stack, processed, local.resources, planning=True, new_ids=new_ids, new_attributes=new_attributes)
    changes = []
    for name in creation_order(processed.resources):
        definition = processed.resources[name]
        resource_type = definition["Type"]
        after = scope.properties(name)
        for service, reference in dynamic_references(after):
            if service in ("ssm", "ssm-secure"):  # CloudFormation reads these when it takes the template
                scope.dynamic_reference(service, reference)
        missing = rules.unsupported(resource_type, after)
        if missing:
            raise rules.not_supported(f"{resource_type} {', '.join(missing)} (resource {name})")
        current = made.get(name)
        if current is not None and current.resource_type != resource_type:
            raise rules.not_supported(f"changing the type of {name} ({current.resource_type} → {resource_type})")
        if current is None:
            changes.append(ResourceChange("Add", name, resource_type, after=after))
            new_ids.add(name)
            new_attributes.add(name)
            continue
        details = _details(
            resource_type, current.properties, after, current.definition, definition, previous, processed
        )
        if _plain(scope.metadata(name)) != _plain(current.metadata):
            details.append(Detail("Metadata", None, "Never", "Static", "DirectModification", None, None, None))
        if not details:
            continue
        replacement = _replacement(details, new_ids)
        if replacement != "True":
            _check_in_place(name, resource_type, details)
        if replacement != "False":
            new_ids.add(name)
        new_attributes.add(name)
        changes.append(
            ResourceChange(
                "Modify",
                name,
                resource_type,
                current.physical_id,
                replacement,
                details,
                before=current.properties,
                after=after,
            )
        )
    for name, current in made.items():
        if name not in processed.resources:
            changes.append(
                ResourceChange("Remove", name, current.resource_type, current.physical_id, before=current.properties)
            )
    _check_outputs(processed, scope)
    return changes


def _check_outputs(processed: Processed, scope: StackScope) -> None:
    """The outputs evaluated now, so that what CloudFormation refuses in them is refused with the template,
    not found once the stack is made."""
    for key, output in processed.outputs.items():
        for part in ("Value", "Export"):
            if part in output and evaluate(output[part], scope) is NO_VALUE:
                raise rules.not_supported(f"an output whose {part} is AWS::NoValue (output {key})")


def _check_in_place(name: str, resource_type: str, details: list[Detail]) -> None:
    """A property changed in place must be one the local AWS changes in place: else it would report an
    update it did not make."""
    changing = {d.name for d in details if d.name and d.requires_recreation != "Always"}
    missing = sorted(changing - updates.in_place(resource_type))
    if missing:
        raise rules.not_supported(f"changing {', '.join(missing)} of {resource_type} in place (resource {name})")


def _replacement(details: list[Detail], new_ids: set[str]) -> str:
    """True when a create-only property changes for sure (a new value, or a resource made anew), Conditional
    when it follows an attribute of a resource changed in place (it may keep its value), else False."""
    recreating = [d for d in details if d.requires_recreation == "Always"]
    if any(d.evaluation == "Static" or str(d.causing_entity).split(".")[0] in new_ids for d in recreating):
        return "True"
    return "Conditional" if recreating else "False"


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
