"""What the local AWS knows of a stack beyond moto's Stack object: its processed template and parameter
values, and each resource it made — the live object, the properties as last applied, its status — which
ListStackResources, the outputs, the next change set and drift detection read. moto's Stack keeps what
DescribeStacks, ListStacks and the events show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import Event, Stack
from moto.ec2.models import ec2_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from . import models
from .intrinsics import Unresolved, evaluate, pseudo_parameters, references
from .models import physical_id
from .template import Processed, typed


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Resource:
    """One resource of a stack, as CloudFormation tracks it."""

    logical_id: str
    resource_type: str
    status: str
    definition: dict[str, Any]  # the template's entry: DeletionPolicy, UpdateReplacePolicy, Metadata
    made: Any = None  # moto's object of the live resource; None until made, or after deleted
    properties: dict[str, Any] = field(default_factory=dict)  # as applied, dynamic references unresolved
    metadata: Any = None  # the Metadata as evaluated when applied (cfn-init reads it)
    reason: str | None = None
    updated: datetime = field(default_factory=now)

    @property
    def physical_id(self) -> str:
        return physical_id(self.made) if self.made is not None else ""

    def set(self, status: str, reason: str | None = None) -> None:
        self.status, self.reason, self.updated = status, reason, now()


@dataclass
class StackState:
    processed: Processed | None = None  # what the stack is at (None: REVIEW_IN_PROGRESS, nothing yet)
    resources: dict[str, Resource] = field(default_factory=dict)
    status_reason: str | None = None
    updated: datetime | None = None
    drift_status: str = "NOT_CHECKED"
    drift_checked: datetime | None = None
    drift_by_resource: dict[str, dict[str, Any]] = field(default_factory=dict)
    unfinished: Any = None  # operations.Unfinished: what a failed operation left to roll back, if any


def state(stack: Stack) -> StackState:
    if not hasattr(stack, "local"):
        stack.local = StackState()
    return stack.local


class StackScope:
    """What a template's expressions see in a stack: parameters, pseudo parameters, conditions, mappings,
    the resources made. While a change set is computed (`planning`), a resource in `new_ids` (to be
    made or replaced) has no Ref yet, one in `new_attributes` (to be made or changed) no attributes:
    they evaluate to Unresolved."""

    def __init__(
        self,
        stack: Stack,
        processed: Processed,
        resources: dict[str, Resource],
        *,
        planning: bool = False,
        new_ids: set[str] | None = None,
        new_attributes: set[str] | None = None,
    ) -> None:
        self.stack = stack
        self.processed = processed
        self.resources = resources
        self.planning = planning
        self.new_ids = new_ids if new_ids is not None else set()
        self.new_attributes = new_attributes if new_attributes is not None else set()
        self.values = {
            **pseudo_parameters(stack.region_name, stack.account_id, stack.name, stack.stack_id),
            **typed(processed.document, processed.values),
        }

    @property
    def region(self) -> str:
        return self.stack.region_name

    def parameter(self, name: str) -> Any:
        return self.values[name]

    def _made(self, name: str) -> Any:
        if name not in self.processed.resources:
            raise ValidationError(
                message=f"Template format error: Unresolved resource dependencies [{name}] in the Resources block "
                "of the template"
            )
        resource = self.resources.get(name)
        if resource is None or resource.made is None:
            raise ValidationError(message=f"{name} was not made: nothing can refer to it yet")
        return resource.made

    def resource_ref(self, name: str) -> Any:
        if self.planning and (name in self.new_ids or self._not_made(name)):
            return Unresolved(f"{{{{{name}}}}}", frozenset({name}))
        return physical_id(self._made(name))

    def resource_attribute(self, name: str, attribute: str) -> Any:
        resource_type = self.processed.resources.get(name, {}).get("Type", "")
        if self.planning and (name in self.new_attributes or self._not_made(name)):
            if not models.has_attribute(resource_type, attribute):
                raise ValidationError(
                    message=f"Template error: resource {name} does not support attribute type {attribute} in Fn::GetAtt"
                )
            return Unresolved(f"{{{{{name}.{attribute}}}}}", frozenset({f"{name}.{attribute}"}))
        made = self._made(name)
        try:
            return models.attribute(resource_type, made, attribute)
        except KeyError:
            raise ValidationError(
                message=f"Template error: resource {name} does not support attribute type {attribute} in Fn::GetAtt"
            ) from None

    def _not_made(self, name: str) -> bool:
        if name not in self.processed.resources:
            self._made(name)  # raises CloudFormation's error for a resource the template does not have
        resource = self.resources.get(name)
        return resource is None or resource.made is None

    def availability_zones(self, region: str) -> list[str]:
        """Fn::GetAZs: the region's zones as EC2 lists them for the account (none for a region it lacks)."""
        try:
            backend = ec2_backends[self.stack.account_id][region]
        except KeyError:
            return []
        return sorted(zone.name for zone in backend.describe_availability_zones())

    def condition(self, name: str) -> bool:
        return self.processed.conditions[name]

    def mapping(self, name: str) -> dict[str, Any]:
        return self.processed.document.get("Mappings", {})[name]

    def dynamic_reference(self, service: str, reference: str) -> str:
        account, region = self.stack.account_id, self.stack.region_name
        if service == "secretsmanager":
            # secret-id[:SecretString[:json-key[:version-stage[:version-id]]]], the id possibly an ARN.
            parts = reference.split(":")
            split = 7 if reference.startswith("arn:") else 1
            secret_id, rest = ":".join(parts[:split]), parts[split:]
            key = rest[1] if len(rest) > 1 and rest[1] else None
            stage = rest[2] if len(rest) > 2 and rest[2] else None
            version = rest[3] if len(rest) > 3 and rest[3] else None
            value = secretsmanager_backends[account][region].get_secret_value(secret_id, version, stage)
            text = value["SecretString"]
            if not key:
                return text
            found = json.loads(text).get(key) if text.lstrip().startswith("{") else None
            if found is None:
                # CloudFormation refuses a JSON key the secret does not hold; its exact words are not known here.
                raise ValidationError(message=f"The secret {secret_id} has no JSON key {key} in its SecretString")
            return str(found)
        name, _, version = reference.partition(":")
        parameter = ssm_backends[account][region].get_parameter(f"{name}:{version}" if version else name)
        if parameter is None:
            raise ValidationError(message=missing_ssm_parameter(reference))
        return parameter.value

    def properties(self, name: str, definition: dict[str, Any] | None = None) -> dict[str, Any]:
        entry = definition if definition is not None else self.processed.resources[name]
        return evaluate(entry.get("Properties", {}), self)

    def metadata(self, name: str) -> Any:
        return evaluate(self.processed.resources[name].get("Metadata", {}), self)


def missing_ssm_parameter(reference: str) -> str:
    """CloudFormation's refusal of {{resolve:ssm:…}} naming no parameter (as users quote it)."""
    return f"Parameters: [ssm:{reference}] cannot be found."


def creation_order(resources: dict[str, dict[str, Any]]) -> list[str]:
    """The resources in the order CloudFormation creates them: each after what it refers to or depends on."""
    names = set(resources)
    waits_for = {name: depends_on(r) & names - {name} for name, r in resources.items()}
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(resources):
        ready = sorted(n for n in resources if n not in done and waits_for[n] <= done)
        if not ready:
            cycle = sorted(n for n in resources if n not in done)
            raise ValidationError(message=f"Circular dependency between resources: {cycle}")
        order += ready
        done |= set(ready)
    return order


def depends_on(resource: dict[str, Any]) -> set[str]:
    """The names a resource's entry refers to (in its properties or its metadata) or depends on."""
    found = references(resource.get("Properties", {})) | references(resource.get("Metadata", {}))
    return found | set(_listed(resource.get("DependsOn", [])))


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def outputs(stack: Stack) -> list[dict[str, Any]] | None:
    """The stack's outputs, evaluated against the resources as they are now."""
    local = state(stack)
    if local.processed is None or not stack.status.endswith("COMPLETE") or stack.status.startswith("DELETE"):
        return None
    scope = StackScope(stack, local.processed, local.resources)
    result = []
    for key, output in local.processed.outputs.items():
        try:
            value = evaluate(output.get("Value"), scope)
        except ValidationError:
            continue  # refers to what is not made (a failed create kept with rollback disabled)
        entry = {"OutputKey": key, "OutputValue": ",".join(value) if isinstance(value, list) else str(value)}
        if "Description" in output:
            entry["Description"] = output["Description"]
        if "Export" in output:
            entry["ExportName"] = evaluate(output["Export"]["Name"], scope)
        result.append(entry)
    return result or None


def add_event(
    stack: Stack,
    logical_id: str,
    resource_type: str,
    status: str,
    token: str | None,
    *,
    physical_id: str = "",
    reason: str | None = None,
) -> None:
    event = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=physical_id,
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )
    event.client_request_token = token
    stack.events.append(event)


def stack_event(stack: Stack, status: str, token: str | None, reason: str | None = None) -> None:
    """The stack's own status change, and its event."""
    stack.status = status
    local = state(stack)
    local.status_reason = reason
    if not status.startswith(("CREATE", "REVIEW")):
        local.updated = now()
    add_event(stack, stack.name, "AWS::CloudFormation::Stack", status, token, physical_id=stack.stack_id, reason=reason)
