"""The rules AWS enforces that the local AWS enforces too, each where AWS does, with AWS's words.

CloudFormation's own:
- a property the resource provider schema marks create-only (cfn-lint ships the schemas) makes a new
  physical resource (`replacement`), and a custom-named resource cannot be replaced under the same name;
- the stack policy decides each Update:Modify, Update:Replace and Update:Delete (`stack_policy_denial`);
- termination protection refuses DeleteStack (`check_termination_protection`);
- a resource's properties are checked against the string/array/object kinds of its provider schema
  before its handler runs (`check_property_types`).

The services', checked on the resource's properties before the local AWS creates or changes it: add one
with `@rule("create" | "update", resource type)`; the function returns AWS's message when AWS refuses,
else None. The local AWS fails that resource with the message, as CloudFormation reports a service's
refusal.

And the local AWS's own limit: a property it cannot apply, or a part of one (`updates.parts`), is refused
(`unsupported`), never dropped.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from functools import cache
from typing import Any

from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER
from moto.cloudformation.exceptions import ValidationError

from valohai_cfn.aws_rules import ec2_description_problem

from . import models, services, updates
from .models import as_bool

# -- replacement -----------------------------------------------------------------------------------


@cache
def create_only(resource_type: str) -> frozenset[str]:
    """The top-level properties whose change replaces the resource, from the resource provider schema."""
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    except Exception:  # cfn-lint has no schema for the type: nothing is known to replace it
        return frozenset()
    return frozenset(p.split("/")[2] for p in schema.get("createOnlyProperties", []))


def _volumes_replace(old: Any, new: Any) -> bool:
    """AWS::EC2::Instance BlockDeviceMappings: "After the instance is running, you can modify only the
    DeleteOnTermination parameter for the attached volumes without interrupting the instance. Modifying
    any other parameter results in instance replacement." (CloudFormation's property reference; the
    schema cannot say "conditionally".)"""

    def without_delete_on_termination(mappings: Any) -> list:
        return [
            {**m, "Ebs": {k: v for k, v in m.get("Ebs", {}).items() if k != "DeleteOnTermination"}}
            for m in mappings or []
        ]

    return without_delete_on_termination(old) != without_delete_on_termination(new)


_CONDITIONAL: dict[tuple[str, str], Callable[[Any, Any], bool]] = {
    ("AWS::EC2::Instance", "BlockDeviceMappings"): _volumes_replace,
}


@cache
def _schema_properties(resource_type: str) -> dict[str, Any]:
    try:
        return PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema.get("properties", {})
    except Exception:  # cfn-lint has no schema for the type: nothing to check against
        return {}


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "JSONArray"
    if isinstance(value, dict):
        return "JSONObject"
    return "String" if isinstance(value, str) else type(value).__name__.capitalize()


_SCHEMA_TYPES = {"string": "String", "array": "JSONArray", "object": "JSONObject"}


def check_property_types(logical_id: str, resource_type: str, properties: dict[str, Any]) -> None:
    """CloudFormation validates a resource's properties against its provider schema before the handler runs:
    a list where text belongs (an SSM parameter's Value from a list parameter) fails the resource instead of
    reaching the service as Python's text of a list. Only the top-level string/array/object kinds are checked;
    the words are CloudFormation's as users quote them."""
    schema = _schema_properties(resource_type)
    for name, value in properties.items():
        declared = schema.get(name, {}).get("type")
        kinds = {_SCHEMA_TYPES.get(k) for k in (declared if isinstance(declared, list) else [declared])}
        if None in kinds or type(value).__name__ == "Unresolved":
            continue
        found = _json_type(value)
        mismatched = (found in ("JSONArray", "JSONObject") and found not in kinds) or (
            kinds <= {"JSONArray", "JSONObject"} and found not in kinds
        )
        if mismatched:
            raise Refused(
                f"Properties validation failed for resource {logical_id} with message: #/{name}: expected type: "
                f"{'/'.join(sorted(kinds))}, found: {found}"
            )


def recreation(resource_type: str, name: str, old: Any, new: Any) -> str:
    """RequiresRecreation of a changed property, in CloudFormation's change-set words."""
    if name in create_only(resource_type):
        return "Always"
    conditional = _CONDITIONAL.get((resource_type, name))
    if conditional is not None:
        return "Always" if conditional(old, new) else "Never"
    return "Never"


def name_property(resource_type: str) -> str | None:
    """The property that names a resource of this type (its physical name when given)."""
    model = models.model_class(resource_type)
    name = model.cloudformation_name_type() if model else ""
    return name or None


def check_custom_name(logical_id: str, resource_type: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """A resource to be replaced whose custom name stays the same would collide with itself: CloudFormation
    refuses the update."""
    name = name_property(resource_type)
    if name and name in new and old.get(name) == new[name]:
        raise Refused(
            "CloudFormation cannot update a stack when a custom-named resource requires replacing. "
            f"Rename {new[name]} and update the stack again."
        )


# -- the stack policy ------------------------------------------------------------------------------


def _listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def _statement_matches(statement: dict[str, Any], action: str, logical_id: str, resource_type: str) -> bool:
    resource = f"LogicalResourceId/{logical_id}"
    if "Action" in statement and not any(fnmatch.fnmatchcase(action, a) for a in _listed(statement["Action"])):
        return False
    if "NotAction" in statement and any(fnmatch.fnmatchcase(action, a) for a in _listed(statement["NotAction"])):
        return False
    if "Resource" in statement and not any(fnmatch.fnmatchcase(resource, r) for r in _listed(statement["Resource"])):
        return False
    if "NotResource" in statement and any(fnmatch.fnmatchcase(resource, r) for r in _listed(statement["NotResource"])):
        return False
    for operator, tests in statement.get("Condition", {}).items():
        wanted = _listed(tests.get("ResourceType", []))
        if operator == "StringEquals" and resource_type not in wanted:
            return False
        if operator == "StringLike" and not any(fnmatch.fnmatchcase(resource_type, w) for w in wanted):
            return False
    return True


def stack_policy_denial(policy: str, action: str, logical_id: str, resource_type: str) -> str | None:
    """Why the stack policy refuses this update action on the resource (Update:Modify, Update:Replace,
    Update:Delete), or None. As in CloudFormation: an explicit Deny wins; without a policy everything is
    allowed; with one, what no statement allows is denied."""
    if not policy:
        return None
    statements = _listed(json.loads(policy).get("Statement", []))
    allowed = False
    for number, statement in enumerate(statements):
        if not _statement_matches(statement, action, logical_id, resource_type):
            continue
        if statement.get("Effect") == "Deny":
            return (
                f"Action denied by stack policy: Statement [#{number}] does not allow [{action}] "
                f"for resource [LogicalResourceId/{logical_id}]"
            )
        allowed = True
    if allowed:
        return None
    return (
        f"Action not allowed by stack policy: no statement allows [{action}] "
        f"for resource [LogicalResourceId/{logical_id}]"
    )


def check_termination_protection(stack: Any) -> None:
    if stack.enable_termination_protection:
        raise ValidationError(message=f"Stack [{stack.name}] cannot be deleted while TerminationProtection is enabled")


# -- the services' rules ---------------------------------------------------------------------------


class Refused(Exception):
    """A service (or CloudFormation) refuses the resource's create or update; the message is AWS's."""


Rule = Callable[[updates.Where, dict[str, Any], dict[str, Any]], "str | None"]
_RULES: dict[tuple[str, str], list[Rule]] = {}


def rule(when: str, resource_type: str) -> Callable[[Rule], Rule]:
    """Register `function(where, old_properties, new_properties) -> AWS's message or None`, checked before
    the resource is made ("create": old is empty) or changed in place ("update"). `where` (account id,
    region) reaches the services' moto backends, for a rule that needs what exists."""

    def register(function: Rule) -> Rule:
        _RULES.setdefault((when, resource_type), []).append(function)
        return function

    return register


def check(when: str, resource_type: str, where: updates.Where, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Raise Refused with AWS's message when a rule refuses the create or update."""
    for function in _RULES.get((when, resource_type), []):
        message = function(where, old, new)
        if message:
            raise Refused(message)


@rule("update", "AWS::ElastiCache::ReplicationGroup")
def _transit_encryption_steps(where: updates.Where, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """ModifyReplicationGroup: "If you are enabling in-transit encryption for an existing cluster, you must
    also set TransitEncryptionMode to preferred"; required comes in a later modification, and off goes
    the same way back, through preferred."""
    was, now = as_bool(old.get("TransitEncryptionEnabled", False)), as_bool(new.get("TransitEncryptionEnabled", False))
    mode_changes = (was, old.get("TransitEncryptionMode")) != (now, new.get("TransitEncryptionMode"))
    live = str(old.get("EngineVersion") or "")
    if mode_changes and live and tuple(int(p) for p in live.split(".")[:2] if p.isdigit()) < (7, 0):
        # "Enabling in-transit encryption on an existing cluster": Redis OSS 7.0 or later.
        return (
            f"InvalidParameterCombination: in-transit encryption of an existing replication group changes only on "
            f"Redis OSS 7.0 or later (it runs {live})"
        )
    if not was and now and new.get("TransitEncryptionMode") != "preferred":
        return (
            "InvalidParameterCombination: to enable in-transit encryption on an existing replication group, "
            "set TransitEncryptionMode to preferred (then to required in a later modification)"
        )
    if was and not now and old.get("TransitEncryptionMode") != "preferred":
        return (
            "InvalidParameterCombination: to disable in-transit encryption, first set TransitEncryptionMode "
            "to preferred in a modification of its own"
        )
    return None


@rule("create", "AWS::ElastiCache::ReplicationGroup")
@rule("update", "AWS::ElastiCache::ReplicationGroup")
def _engine_offered(where: updates.Where, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    engine, version = new.get("Engine", "redis"), new.get("EngineVersion")
    if version and not services.offered(engine, version):
        return f"InvalidParameterCombination: Cannot find version {version} for {engine}"
    return None


def _version(text: Any) -> tuple[int, ...]:
    return tuple(int(part) for part in str(text).split(".") if part.isdigit())


@rule("update", "AWS::ElastiCache::ReplicationGroup")
def _engine_only_upgrades(where: updates.Where, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """ElastiCache upgrades an engine in place; it cannot downgrade one."""
    before, after = old.get("EngineVersion"), new.get("EngineVersion")
    if before and after and _version(after) < _version(before):
        return f"InvalidParameterCombination: cannot downgrade the engine from {before} to {after}"
    return None


@rule("update", "AWS::RDS::DBInstance")
def _storage_only_grows(where: updates.Where, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    before, after = old.get("AllocatedStorage"), new.get("AllocatedStorage")
    if before is not None and after is not None and int(after) < int(before):
        return (
            "InvalidParameterCombination: Invalid storage size: RDS cannot decrease allocated storage "
            f"({before} → {after} GiB)"
        )
    # RDS: "the new value must be at least 10 percent greater than the current value".
    if before is not None and after is not None and int(before) < int(after) and int(after) * 10 < int(before) * 11:
        return (
            "InvalidParameterCombination: Invalid storage size: an increase of allocated storage must be at least "
            f"10 percent ({before} → {after} GiB)"
        )
    return None


@rule("create", "AWS::RDS::DBInstance")
@rule("update", "AWS::RDS::DBInstance")
def _db_engine_offered(where: updates.Where, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """RDS creates (and modifies to) only the versions DescribeDBEngineVersions lists, in the classes
    DescribeOrderableDBInstanceOptions lists for the version in the region."""
    engine, version, db_class = new.get("Engine", "postgres"), new.get("EngineVersion"), new.get("DBInstanceClass")
    if not version or engine in ("aurora-postgresql", "neptune"):
        return None
    if str(version) not in services.db_engine_versions(engine):
        return f"InvalidParameterCombination: Cannot find version {version} for {engine}"
    if db_class and db_class not in services.db_instance_classes(engine, str(version), where.region):
        return (
            "InvalidParameterCombination: RDS does not support creating a DB instance with the following "
            f"combination: DBInstanceClass={db_class}, Engine={engine}, EngineVersion={version}"
        )
    return None


@rule("update", "AWS::RDS::DBInstance")
def _db_engine_only_upgrades(where: updates.Where, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """RDS upgrades an engine in place, and a new major version only with AllowMajorVersionUpgrade; it never
    downgrades one."""
    before, after = old.get("EngineVersion"), new.get("EngineVersion")
    if not before or not after or str(before) == str(after):
        return None
    if _version(after) < _version(before):
        return f"InvalidParameterCombination: Cannot upgrade {new.get('Engine', 'postgres')} from {before} to {after}"
    if _version(after)[:1] != _version(before)[:1] and not as_bool(new.get("AllowMajorVersionUpgrade", False)):
        return (
            "InvalidParameterCombination: The AllowMajorVersionUpgrade flag must be present when upgrading to a "
            "new major version."
        )
    return None


def _ec2_descriptions(properties: dict[str, Any]) -> list[str]:
    texts = [properties.get("GroupDescription"), properties.get("Description")]
    for key in ("SecurityGroupIngress", "SecurityGroupEgress"):
        texts += [rule.get("Description") for rule in properties.get(key) or [] if isinstance(rule, dict)]
    return [t for t in texts if isinstance(t, str)]


@rule("create", "AWS::EC2::SecurityGroup")
@rule("update", "AWS::EC2::SecurityGroup")
@rule("create", "AWS::EC2::SecurityGroupIngress")
@rule("update", "AWS::EC2::SecurityGroupIngress")
@rule("create", "AWS::EC2::SecurityGroupEgress")
@rule("update", "AWS::EC2::SecurityGroupEgress")
def _ec2_description_characters(where: updates.Where, old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """EC2 takes only letters, digits, spaces and ._-:/()#,@[]+=&;{}!$* in a group's or a rule's description."""
    for text in _ec2_descriptions(new):
        problem = ec2_description_problem(text)
        if problem:
            return (
                "InvalidParameterValue: Invalid rule description. Valid descriptions are strings less than 256 "
                f"characters from the following set: a-zA-Z0-9. _-:/()#,@[]+=&;{{}}!$* ({text!r}: {problem})"
            )
    return None


# -- the local AWS's own limit ---------------------------------------------------------------------


def unsupported(resource_type: str, properties: dict[str, Any]) -> list[str]:
    """The properties (and parts of them: "LifecycleConfiguration.Rules[0].ObjectSizeGreaterThan") the local
    AWS could not apply to a resource of this type (none for a type it makes with everything it is given)."""
    if models.model_class(resource_type) is None:
        return ["(the resource type)"]
    applied = models.MADE_WITH[resource_type] | updates.in_place(resource_type)
    return sorted(set(properties) - applied) + updates.unapplied_parts(resource_type, properties)


NOT_SUPPORTED = "not supported by the local AWS"


def not_supported(what: str) -> ValidationError:
    """CloudFormation's error shape for what the local AWS refuses to pretend."""
    return ValidationError(message=f"{NOT_SUPPORTED}: {what}")
