"""A template as CloudFormation takes it, before it makes anything: the body parsed (JSON, or YAML with
short-form tags), the AWS::LanguageExtensions transform run (moto runs no transform: its CreateStack
answered HTTP 500 on Fn::ForEach), the capabilities it needs checked, the parameter values checked
against their constraints and AWS-specific types, the conditions evaluated and what a false one
excludes left out; and what GetTemplateSummary and ValidateTemplate tell of a template before any
parameter value is given (`summary`), the resources of its Fn::ForEach loops included.

The transform itself is valohai_cfn.language_extensions, the project's own reading of it.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

import cfn_flip
from moto.cloudformation.exceptions import CloudFormationError, ValidationError

from valohai_cfn.language_extensions import TRANSFORM, TransformError, comma_delimited, expand

from .intrinsics import evaluate, pseudo_parameters

IAM_TYPES = {
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::UserToGroupAddition": None,
}
"""The types CloudFormation asks CAPABILITY_IAM for, and the property whose custom value asks for
CAPABILITY_NAMED_IAM (CreateStack / CreateChangeSet, Capabilities)."""

# AWS-specific parameter types CloudFormation checks against the account (the EC2 backend's lookups).
_EXISTING = {
    "AWS::EC2::VPC::Id": "vpc",
    "AWS::EC2::Subnet::Id": "subnet",
    "AWS::EC2::SecurityGroup::Id": "security group",
    "AWS::EC2::KeyPair::KeyName": "key pair",
}


class InsufficientCapabilities(CloudFormationError):
    code = "InsufficientCapabilitiesException"


def parse(body: str) -> dict[str, Any]:
    """The template as a document; CloudFormation's words when it is not one."""
    try:
        document = cfn_flip.load(body)[0]
    except Exception as e:  # whatever the JSON or YAML parser raised: the body is not a template
        raise ValidationError(message=f"Template format error: {e}") from None
    if not isinstance(document, dict):
        raise ValidationError(message="Template format error: not a JSON or YAML object")
    document = json.loads(json.dumps(document))  # plain dicts, whatever the parser's mapping type
    if not isinstance(document.get("Resources"), dict) or not document["Resources"]:
        raise ValidationError(message="Template format error: At least one Resources member must be defined.")
    _check_unique_names(document)
    return document


def _check_unique_names(document: dict[str, Any]) -> None:
    """A Ref names a parameter or a resource: CloudFormation refuses a template where a name is both (its
    words as Eucalyptus's reimplementation reproduces them)."""
    shared = sorted(set(document.get("Parameters") or {}) & set(document["Resources"]))
    if shared:
        raise ValidationError(
            message="Template error: all resources and parameters must have unique names. "
            f"Common name(s):[{', '.join(shared)}]"
        )


def _iam_capability(resources: list[Any]) -> tuple[str | None, list[str]]:
    """The IAM capability these resource entries need (None: none), and the IAM types among them."""
    iam = [r for r in resources if isinstance(r, dict) and r.get("Type") in IAM_TYPES]
    types = list(dict.fromkeys(r["Type"] for r in iam))
    if any(IAM_TYPES[r["Type"]] and IAM_TYPES[r["Type"]] in (r.get("Properties") or {}) for r in iam):
        return "CAPABILITY_NAMED_IAM", types
    return ("CAPABILITY_IAM" if iam else None), types


def required_capabilities(original: dict[str, Any], processed: dict[str, Any], *, direct: bool) -> list[str]:
    """What the caller must acknowledge. CAPABILITY_AUTO_EXPAND only when a transform runs outside a
    change set (CreateChangeSet's documentation: it "doesn't apply to creating change sets")."""
    capability, _ = _iam_capability(list(processed["Resources"].values()))
    needed = [capability] if capability else []
    if direct and original.get("Transform"):
        needed.append("CAPABILITY_AUTO_EXPAND")
    return needed


def declared_resources(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's resource entries, those an Fn::ForEach loop repeats included (once each): what a template
    declares, read without the parameter values a loop's collection may need."""
    found: list[dict[str, Any]] = []
    for name, entry in resources.items():
        if name.startswith("Fn::ForEach::") and isinstance(entry, list) and len(entry) == 3:
            found += declared_resources(entry[2]) if isinstance(entry[2], dict) else []
        elif isinstance(entry, dict):
            found.append(entry)
    return found


def transforms(document: dict[str, Any]) -> list[str]:
    declared = document.get("Transform") or []
    return [declared] if isinstance(declared, str) else list(declared)


def summary(body: str) -> dict[str, Any]:
    """What GetTemplateSummary tells of a template (ValidateTemplate tells a part of it), as CloudFormation
    reads it before any parameter value is given: its parameters, the resource types it declares (those in
    Fn::ForEach loops too), the IAM capability they need and why, and its transforms. Raises CloudFormation's
    "Template format error" for a body that is not a template.

    Whether CloudFormation also lists CAPABILITY_AUTO_EXPAND for a transform is not known here: it is left
    out, and DeclaredTransforms names the transform."""
    document = parse(body)
    resources = declared_resources(document["Resources"])
    capability, iam_types = _iam_capability(resources)
    found: dict[str, Any] = {
        "Parameters": [_declaration(name, spec) for name, spec in document.get("Parameters", {}).items()],
        "Capabilities": [capability] if capability else [],
        "ResourceTypes": list(dict.fromkeys(r["Type"] for r in resources if isinstance(r.get("Type"), str))),
        "DeclaredTransforms": transforms(document),
    }
    if capability:
        found["CapabilitiesReason"] = f"The following resource(s) require capabilities: [{', '.join(iam_types)}]"
    if "Description" in document:
        found["Description"] = document["Description"]
    if "AWSTemplateFormatVersion" in document:
        found["Version"] = str(document["AWSTemplateFormatVersion"])
    if "Metadata" in document:
        found["Metadata"] = json.dumps(document["Metadata"])
    return found


def _declaration(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    declaration: dict[str, Any] = {
        "ParameterKey": name,
        "ParameterType": spec.get("Type", "String"),
        "NoEcho": str(spec.get("NoEcho", "false")).lower() == "true",
    }
    if "Default" in spec:
        declaration["DefaultValue"] = str(spec["Default"])
    if "Description" in spec:
        declaration["Description"] = spec["Description"]
    if "AllowedValues" in spec:
        declaration["ParameterConstraints"] = {"AllowedValues": [str(v) for v in spec["AllowedValues"]]}
    return declaration


def check_capabilities(needed: list[str], given: list[str]) -> None:
    # CAPABILITY_NAMED_IAM covers CAPABILITY_IAM.
    acknowledged = set(given) | ({"CAPABILITY_IAM"} if "CAPABILITY_NAMED_IAM" in given else set())
    missing = [c for c in needed if c not in acknowledged]
    if missing:
        raise InsufficientCapabilities(f"Requires capabilities : [{', '.join(missing)}]")


def _constraint(name: str, spec: dict[str, Any], message: str) -> ValidationError:
    if "ConstraintDescription" in spec:
        return ValidationError(
            message=f"Parameter '{name}' failed to satisfy constraint: {spec['ConstraintDescription']}"
        )
    return ValidationError(message=f"Parameter '{name}' {message}")


def _check_value(name: str, spec: dict[str, Any], value: str) -> None:
    kind = spec.get("Type", "String")
    items = comma_delimited(value) if kind.startswith("List<") or kind == "CommaDelimitedList" else [value]
    for item in items:
        if "AllowedValues" in spec and item not in [str(v) for v in spec["AllowedValues"]]:
            raise _constraint(name, spec, "must be one of AllowedValues")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], item):
            raise _constraint(name, spec, f"must match pattern {spec['AllowedPattern']}")
        if "MinLength" in spec and len(item) < int(spec["MinLength"]):
            raise _constraint(name, spec, f"must contain at least {spec['MinLength']} characters")
        if "MaxLength" in spec and len(item) > int(spec["MaxLength"]):
            raise _constraint(name, spec, f"must contain at most {spec['MaxLength']} characters")
        if kind in ("Number", "List<Number>"):
            try:
                number = float(item)
            except ValueError:
                raise _constraint(name, spec, "must be a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise _constraint(name, spec, f"must be a number not less than {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise _constraint(name, spec, f"must be a number not greater than {spec['MaxValue']}")


def _check_exists(name: str, kind: str, value: str, ec2: Any) -> None:
    element = kind[len("List<") : -1] if kind.startswith("List<") else kind
    what = _EXISTING.get(element)
    if what is None or ec2 is None:
        return
    lookups = {
        "vpc": lambda v: ec2.describe_vpcs(vpc_ids=[v]),
        "subnet": lambda v: ec2.describe_subnets(subnet_ids=[v]),
        "security group": lambda v: ec2.describe_security_groups(group_ids=[v]),
        "key pair": lambda v: ec2.describe_key_pairs(key_names=[v]),
    }
    for item in comma_delimited(value) if kind.startswith("List<") else [value]:
        try:
            found = lookups[what](item)
        except Exception:  # moto's not-found errors differ by type; any of them means "does not exist"
            found = []
        if not found:
            raise ValidationError(
                message=f"Parameter validation failed: parameter value {item} for parameter name {name} does not exist"
            )


def parameter_values(document: dict[str, Any], given: dict[str, str], ec2: Any = None) -> dict[str, str]:
    """Every declared parameter's value as text (given, else its default), checked as CloudFormation
    checks them (constraints; VPC, subnet, security group and key pair ids exist)."""
    declared = document.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValidationError(message=f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    values: dict[str, str] = {}
    missing = []
    for name, spec in declared.items():
        if name in given:
            value = str(given[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            missing.append(name)
            continue
        _check_value(name, spec, value)
        _check_exists(name, spec.get("Type", "String"), value, ec2)
        values[name] = value
    if missing:
        raise ValidationError(message=f"Parameters: [{', '.join(missing)}] must have values")
    return values


def typed(document: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The values as a Ref gives them: lists for list types, text otherwise (a Number too)."""
    declared = document.get("Parameters", {})
    return {
        name: comma_delimited(value)
        if declared[name].get("Type", "String").startswith("List<") or declared[name]["Type"] == "CommaDelimitedList"
        else value
        for name, value in values.items()
    }


@dataclass
class _ConditionScope:
    """Conditions see parameters, pseudo parameters, mappings and other conditions; nothing else."""

    document: dict[str, Any]
    values: dict[str, Any]
    region: str
    memo: dict[str, bool] = field(default_factory=dict)

    def parameter(self, name: str) -> Any:
        return self.values[name]

    def resource_ref(self, name: str) -> Any:
        raise ValidationError(message=f"Template format error: Unresolved resource dependency {name} in Conditions")

    resource_attribute = resource_ref

    def condition(self, name: str) -> bool:
        if name not in self.memo:
            if name not in self.document.get("Conditions", {}):
                raise ValidationError(message=f"Template format error: Unresolved condition dependency {name}")
            self.memo[name] = bool(evaluate(self.document["Conditions"][name], self))
        return self.memo[name]

    def mapping(self, name: str) -> dict[str, Any]:
        return self.document.get("Mappings", {})[name]

    def availability_zones(self, region: str) -> list[str]:
        raise ValidationError(message="not supported by the local AWS: Fn::GetAZs in Conditions")

    def dynamic_reference(self, service: str, reference: str) -> str:
        raise ValidationError(message="Template format error: dynamic references are not allowed in Conditions")


@dataclass(frozen=True)
class Processed:
    """A template processed for one set of parameter values."""

    body: str  # as given: GetTemplate's Original stage
    document: dict[str, Any]  # after the transform, conditions and all: the Processed stage
    values: dict[str, str]  # every parameter's value, as text
    conditions: dict[str, bool]
    resources: dict[str, dict[str, Any]]  # the resources the conditions keep
    outputs: dict[str, dict[str, Any]]

    def no_echo(self) -> set[str]:
        return {n for n, p in self.document.get("Parameters", {}).items() if str(p.get("NoEcho", "")).lower() == "true"}


def process(
    body: str,
    given: dict[str, str],
    *,
    region: str,
    account_id: str,
    stack_name: str,
    capabilities: list[str] | None,
    direct: bool,
    ec2: Any = None,
) -> Processed:
    """The template as CloudFormation processes it for these parameter values. `direct` is CreateStack /
    UpdateStack (no change set to review). Raises CloudFormation's errors (ValidationError,
    InsufficientCapabilities) for what it would refuse."""
    original = parse(body)
    values = parameter_values(original, given, ec2)
    document = original
    if original.get("Transform"):
        unsupported = [t for t in transforms(original) if t != TRANSFORM]
        if unsupported:
            raise ValidationError(message=f"not supported by the local AWS: the transform {', '.join(unsupported)}")
        try:
            document = expand(copy.deepcopy(original), values)
        except TransformError as e:
            raise ValidationError(message=f"Transform {TRANSFORM} failed with: {e}") from None
        _check_unique_names(document)
    if capabilities is not None:
        check_capabilities(required_capabilities(original, document, direct=direct), capabilities)
    scope = _ConditionScope(
        document, {**pseudo_parameters(region, account_id, stack_name, ""), **typed(document, values)}, region
    )
    conditions = {name: scope.condition(name) for name in document.get("Conditions", {})}
    for section in ("Resources", "Outputs"):
        for name, entry in document.get(section, {}).items():
            if "Condition" in entry and entry["Condition"] not in conditions:
                raise ValidationError(
                    message=f"Template format error: Unresolved condition {entry['Condition']} in {name}"
                )
    return Processed(
        body=body,
        document=document,
        values=values,
        conditions=conditions,
        resources={n: r for n, r in document["Resources"].items() if conditions.get(r.get("Condition"), True)},
        outputs={n: o for n, o in document.get("Outputs", {}).items() if conditions.get(o.get("Condition"), True)},
    )
