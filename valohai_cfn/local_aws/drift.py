"""Drift detection, as CloudFormation's DetectStackDrift: each resource's properties as the stack last
applied them compared with the live resource read through its service (moto's backend), for the types
the local AWS can read back — security groups and their ingress rules, SSM parameters, Auto Scaling
groups; every other type is NOT_CHECKED, as CloudFormation reports a type it does not support. moto has
no drift detection at all (its DetectStackDrift answered a raw HTTP 500 page).

Only the properties the template sets are compared, as CloudFormation does (within a map too: a
service's defaults for what the template leaves out are no drift); list order is ignored where the
service keeps no order (rules, subnets, tags). A resource whose live state cannot be read fails its own
detection (DETECTION_FAILED), not the call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.cloudformation.models import Stack
from moto.ec2.models import ec2_backends
from moto.moto_api._internal import mock_random
from moto.ssm.models import ssm_backends

from .stacks import Resource, now, state

logger = logging.getLogger(__name__)

Reader = Callable[[Stack, Resource], dict[str, Any] | None]
_READERS: dict[str, Reader] = {}


def reads(resource_type: str) -> Callable[[Reader], Reader]:
    """Register `function(stack, resource) -> the live properties, or None when the resource is gone`."""

    def register(function: Reader) -> Reader:
        _READERS[resource_type] = function
        return function

    return register


def _rule(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) for k, v in rule.items() if v not in (None, "")}


def _live_rules(rules: list[Any], peer_key: str) -> list[dict[str, Any]]:
    """A group's rules in the template's shape (moto keeps one per address range or peer group)."""
    found = []
    for r in rules:
        base = {"IpProtocol": r.ip_protocol, "FromPort": r.from_port, "ToPort": r.to_port}
        if r.ip_range:
            found.append(
                _rule({**base, "CidrIp": r.ip_range.get("CidrIp"), "Description": r.ip_range.get("Description")})
            )
        if r.source_group:
            found.append(
                _rule(
                    {**base, peer_key: r.source_group.get("GroupId"), "Description": r.source_group.get("Description")}
                )
            )
    return found


@reads("AWS::EC2::SecurityGroup")
def _security_group(stack: Stack, resource: Resource) -> dict[str, Any] | None:
    group = ec2_backends[stack.account_id][stack.region_name].get_security_group_from_id(resource.physical_id)
    if group is None:
        return None
    return {
        "GroupDescription": group.description,
        "GroupName": group.name,
        "VpcId": group.vpc_id,
        "SecurityGroupEgress": _live_rules(group.egress_rules, "DestinationSecurityGroupId"),
        "Tags": [{"Key": t["key"], "Value": t["value"]} for t in group.get_tags()],
    }


@reads("AWS::EC2::SecurityGroupIngress")
def _ingress(stack: Stack, resource: Resource) -> dict[str, Any] | None:
    made = resource.made
    group = ec2_backends[stack.account_id][stack.region_name].get_security_group_from_id(made.group_id)
    rule = next((r for r in group.ingress_rules if r.id == made.rule_id), None) if group else None
    if rule is None:
        return None
    (live,) = _live_rules([rule], "SourceSecurityGroupId")[:1]
    return {**live, "GroupId": group.id}


@reads("AWS::SSM::Parameter")
def _parameter(stack: Stack, resource: Resource) -> dict[str, Any] | None:
    parameter = ssm_backends[stack.account_id][stack.region_name].get_parameter(resource.physical_id)
    if parameter is None:
        return None
    return {
        "Name": parameter.name,
        "Type": parameter.parameter_type,
        "Value": parameter.value,
        "Description": parameter.description,
        "AllowedPattern": parameter.allowed_pattern,
    }


@reads("AWS::AutoScaling::AutoScalingGroup")
def _auto_scaling_group(stack: Stack, resource: Resource) -> dict[str, Any] | None:
    group = autoscaling_backends[stack.account_id][stack.region_name].autoscaling_groups.get(resource.physical_id)
    if group is None:
        return None
    live: dict[str, Any] = {
        "AutoScalingGroupName": group.name,
        "MinSize": group.min_size,
        "MaxSize": group.max_size,
        "DesiredCapacity": group.desired_capacity,
        "Cooldown": group.default_cooldown,
        "TerminationPolicies": group.termination_policies,
        "VPCZoneIdentifier": sorted(filter(None, (group.vpc_zone_identifier or "").split(","))),
        "Tags": [
            {"Key": t["Key"], "PropagateAtLaunch": str(t.get("PropagateAtLaunch", False)).lower(), "Value": t["Value"]}
            for t in group.tags
        ],
    }
    # A group with a MixedInstancesPolicy names its launch template there (moto's `launch_template` property
    # raises for such a group: it has no provided version).
    if group.mixed_instances_policy:
        live["MixedInstancesPolicy"] = group.mixed_instances_policy
    elif group.ec2_launch_template is not None:
        live["LaunchTemplate"] = {
            "LaunchTemplateId": group.ec2_launch_template.id,
            "Version": group.provided_launch_template_version or "$Default",
        }
    return live


def _normalised(name: str, value: Any) -> Any:
    """A value as drift compares it: text for scalars, no order where the service keeps none, no aws:*
    tags (AWS's own, such as aws:cloudformation:stack-name: never the template's, never drift)."""
    if name == "Tags":
        tags = [{"Key": k, "Value": v} for k, v in value.items()] if isinstance(value, dict) else value or []
        own = (t for t in tags if not t["Key"].startswith("aws:"))
        return sorted(({k: _normalised("", v) for k, v in t.items()} for t in own), key=lambda t: t["Key"])
    if name in ("SecurityGroupEgress", "SecurityGroupIngress"):
        return sorted((_rule(r) for r in value), key=json.dumps)
    if name == "VPCZoneIdentifier":
        return sorted(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return {k: _normalised(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised("", v) for v in value]
    return value


def _as_set(expected: Any, actual: Any) -> Any:
    """The live value restricted to what the template sets, map by map: a service's defaults for what the
    template leaves out (an Auto Scaling group's InstancesDistribution) are no drift."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: _as_set(v, actual.get(k)) for k, v in expected.items()}
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [_as_set(e, a) for e, a in zip(expected, actual, strict=True)]
    return actual


def _differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    for name, wanted in expected.items():
        want, have = _normalised(name, wanted), _normalised(name, _as_set(wanted, actual.get(name)))
        if want == have:
            continue
        if isinstance(want, list) and isinstance(have, list):
            for index, item in enumerate(want):
                if item not in have:
                    found.append(_difference(f"/{name}/{index}", item, None, "REMOVE"))
            for index, item in enumerate(have):
                if item not in want:
                    found.append(_difference(f"/{name}/{index}", None, item, "ADD"))
        else:
            found.append(_difference(f"/{name}", want, have, "NOT_EQUAL"))
    return found


def _difference(path: str, expected: Any, actual: Any, kind: str) -> dict[str, str]:
    def text(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    entry = {"PropertyPath": path, "DifferenceType": kind}
    if expected is not None:
        entry["ExpectedValue"] = text(expected)
    if actual is not None:
        entry["ActualValue"] = text(actual)
    return entry


@dataclass
class Detection:
    detection_id: str
    stack: Stack
    timestamp: datetime
    drifts: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the resources whose live state could not be read

    @property
    def stack_status(self) -> str:
        statuses = {d["StackResourceDriftStatus"] for d in self.drifts}
        if statuses & {"MODIFIED", "DELETED"}:
            return "DRIFTED"
        return "IN_SYNC" if "IN_SYNC" in statuses else "NOT_CHECKED"

    def status(self) -> dict[str, Any]:
        status = {
            "StackId": self.stack.stack_id,
            "StackDriftDetectionId": self.detection_id,
            "StackDriftStatus": self.stack_status,
            "DetectionStatus": "DETECTION_FAILED" if self.failed else "DETECTION_COMPLETE",
            "DriftedStackResourceCount": sum(
                d["StackResourceDriftStatus"] in ("MODIFIED", "DELETED") for d in self.drifts
            ),
            "Timestamp": self.timestamp,
        }
        if self.failed:
            # DETECTION_FAILED: "the stack drift detection operation has failed for at least one resource in
            # the stack"; CloudFormation's exact reason text is not known here.
            status["DetectionStatusReason"] = f"Failed to detect drift on resource(s): [{', '.join(self.failed)}]"
        return status


def resource_drift(stack: Stack, resource: Resource, timestamp: datetime) -> dict[str, Any]:
    drift: dict[str, Any] = {
        "StackId": stack.stack_id,
        "LogicalResourceId": resource.logical_id,
        "PhysicalResourceId": resource.physical_id,
        "ResourceType": resource.resource_type,
        "ExpectedProperties": json.dumps(resource.properties, default=str, sort_keys=True),
        "Timestamp": timestamp,
    }
    reader = _READERS.get(resource.resource_type)
    if reader is None:
        return {**drift, "StackResourceDriftStatus": "NOT_CHECKED", "PropertyDifferences": []}
    actual = reader(stack, resource)
    if actual is None:
        return {**drift, "StackResourceDriftStatus": "DELETED", "PropertyDifferences": []}
    compared = {k: actual.get(k) for k in resource.properties if k in actual}
    differences = _differences({k: resource.properties[k] for k in compared}, compared)
    return {
        **drift,
        "ActualProperties": json.dumps({**resource.properties, **compared}, default=str, sort_keys=True),
        "PropertyDifferences": differences,
        "StackResourceDriftStatus": "MODIFIED" if differences else "IN_SYNC",
    }


def detect(stack: Stack, only: str | None = None) -> Detection:
    """Compare every live resource of the stack (or only the one named) with what the stack applied."""
    local = state(stack)
    detection = Detection(str(mock_random.uuid4()), stack, now())
    for resource in local.resources.values():
        if resource.made is None or (only and resource.logical_id != only):
            continue
        try:
            detection.drifts.append(resource_drift(stack, resource, detection.timestamp))
        except Exception:  # a live state the reader cannot read: that resource's detection failed, not the call
            logger.exception("the local AWS could not read %s for drift", resource.logical_id)
            detection.failed.append(resource.logical_id)
    if only is None:
        local.drift_status, local.drift_checked = detection.stack_status, detection.timestamp
        local.drift_by_resource = {d["LogicalResourceId"]: d for d in detection.drifts}
    return detection
