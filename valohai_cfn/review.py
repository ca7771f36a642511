"""What a change does, in the terms a person approves it in: parameters old → new, each resource's changed
properties, and what it opens or closes (security group rules, IAM statements), like `cdk diff`'s summary.

Works on templates as documents (dicts): the deployed one (GetTemplate) and the new build or file. Each is
first resolved the way CloudFormation processes it for its parameter values (`resolve`): loops expanded,
conditions evaluated, what a false condition excludes left out, Fn::If chosen, a Ref to a parameter
replaced by its value. References to resources stay symbolic (${Name}), as they are before deployment.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from valohai_cfn.language_extensions import comma_delimited, expand
from valohai_cfn.stack.policy import DATA_RESOURCE_TYPES

NO_VALUE = object()
MASK = "****"
# Resource types whose statements are access: IAM roles and policies, and resource policies.
POLICY_HOLDERS = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy")
# The rule a security group gets to allow no outbound traffic at all (an address no packet goes to).
CLOSED_EGRESS = {"CidrIp": "255.255.255.255/32", "IpProtocol": "icmp"}


# -- parameters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterChange:
    name: str
    old: str | None  # None: the stack has no such parameter yet
    new: str | None  # None: the new template has no such parameter
    masked: bool = False  # NoEcho: values are never shown (the stack only ever returns ****)


def _same(spec: dict, was: str | None, now: str | None) -> bool:
    """Equal as CloudFormation sees them: a list's items compared space-trimmed ("a, b" is "a,b")."""
    if was is None or now is None or not spec.get("Type", "").startswith(("List<", "CommaDelimitedList")):
        return was == now
    return comma_delimited(was) == comma_delimited(now)


def parameter_changes(specs: dict[str, dict], old: dict[str, str] | None, new: dict[str, str]) -> list[ParameterChange]:
    """The parameters whose value changes, in the template's order; `old` is None for a new stack (then
    every value given is a change from nothing)."""
    before = old or {}
    changes = []
    for name in [*specs, *sorted(set(before) - set(specs))]:
        spec = specs.get(name, {})
        masked = str(spec.get("NoEcho", "false")).lower() == "true"
        was, now = before.get(name), new.get(name)
        if _same(spec, was, now) and not (masked and now is not None and old is not None):
            continue
        if masked:
            changes.append(ParameterChange(name, None if was is None else MASK, None if now is None else MASK, True))
        else:
            changes.append(ParameterChange(name, was, now))
    return changes


# -- the template as CloudFormation processes it -------------------------------------------------


def parameter_values(specs: dict[str, dict], given: dict[str, str]) -> dict[str, Any]:
    """Every parameter's value: given, else its default; list types split into lists as Ref gives them."""
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        value = given.get(name, spec.get("Default"))
        if value is None:
            continue
        kind = spec.get("Type", "String")
        values[name] = comma_delimited(str(value)) if kind.startswith(("List<", "CommaDelimitedList")) else str(value)
    return values


def _condition(expr: Any, conditions: dict[str, Any], values: dict[str, Any], memo: dict[str, bool]) -> Any:
    if not isinstance(expr, dict) or len(expr) != 1:
        return expr
    ((fn, arg),) = expr.items()
    if fn == "Condition":
        if arg not in memo:
            memo[arg] = bool(_condition(conditions[arg], conditions, values, memo))
        return memo[arg]
    if fn == "Ref":
        return values.get(arg, f"${{{arg}}}")
    evaluated = [_condition(a, conditions, values, memo) for a in (arg if isinstance(arg, list) else [arg])]
    if fn == "Fn::Equals":
        return evaluated[0] == evaluated[1]
    if fn == "Fn::Not":
        return not evaluated[0]
    if fn == "Fn::And":
        return all(evaluated)
    if fn == "Fn::Or":
        return any(evaluated)
    if fn == "Fn::Join":
        separator, items = evaluated
        return separator.join(items if isinstance(items, list) else [items])
    raise ValueError(f"unsupported in a condition: {fn}")


def _resolve(node: Any, conditions: dict[str, bool], values: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if len(node) == 1 and "Fn::If" in node:
            name, if_true, if_false = node["Fn::If"]
            return _resolve(if_true if conditions[name] else if_false, conditions, values)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        if len(node) == 1 and isinstance(node.get("Ref"), str) and node["Ref"] in values:
            return copy.deepcopy(values[node["Ref"]])
        out = {k: _resolve(v, conditions, values) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}
    if isinstance(node, list):
        return [v for v in (_resolve(item, conditions, values) for item in node) if v is not NO_VALUE]
    return node


def resolve(template: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    """The template as CloudFormation processes it for these parameter values (defaults fill the rest)."""
    specs = template.get("Parameters", {})
    values = parameter_values(specs, given)
    expanded = expand(copy.deepcopy(template), {k: v for k, v in given.items() if k in specs})
    raw_conditions = expanded.get("Conditions", {})
    memo: dict[str, bool] = {}
    conditions = {name: bool(_condition({"Condition": name}, raw_conditions, values, memo)) for name in raw_conditions}
    kept = {}
    for section in ("Resources", "Outputs"):
        items = expanded.get(section, {})
        kept[section] = {k: v for k, v in items.items() if conditions.get(v.get("Condition"), True)}
    return _resolve({**expanded, **kept}, conditions, values)


# -- showing a value -----------------------------------------------------------------------------


def shown(value: Any) -> str:
    """A property value as a person reads it: references as ${Name}, Fn::Sub as its text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return f"${{{arg}}}"
        if fn == "Fn::GetAtt":
            return "${" + (".".join(arg) if isinstance(arg, list) else str(arg)) + "}"
        if fn == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
    if isinstance(value, list) and all(isinstance(v, (str, dict)) for v in value):
        return ", ".join(shown(v) for v in value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# -- resources and their properties --------------------------------------------------------------


@dataclass(frozen=True)
class PropertyChange:
    path: str  # e.g. "InstanceType", "Tags", "SecurityGroupIngress"
    before: str | None  # None: not known (the API gave no value) or not set
    after: str | None
    requires_recreation: str = ""  # "Always", "Conditionally", "Never", or "" where unknown


def property_changes(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[PropertyChange]:
    """The properties that differ, dicts compared key by key, anything else as a whole."""
    changes = []
    for key in sorted(set(before) | set(after)):
        path = f"{prefix}{key}"
        old, new = before.get(key, NO_VALUE), after.get(key, NO_VALUE)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changes += property_changes(old, new, f"{path}.")
        else:
            changes.append(
                PropertyChange(path, None if old is NO_VALUE else shown(old), None if new is NO_VALUE else shown(new))
            )
    return changes


@dataclass(frozen=True)
class ResourceChange:
    action: str  # Add, Modify, Remove (and Import, Dynamic where a change set says so)
    logical_id: str
    resource_type: str
    replacement: str = ""  # "True", "False", "Conditional", or "" where CloudFormation gives none or none is known
    properties: tuple[PropertyChange, ...] = ()

    @property
    def forced_by(self) -> tuple[str, ...]:
        """The properties whose change makes CloudFormation replace the resource."""
        recreating = ("Always", "Conditionally")
        return tuple(sorted({p.path for p in self.properties if p.requires_recreation in recreating}))

    @property
    def loses_data(self) -> bool:
        replaced = self.action == "Modify" and self.replacement in ("True", "Conditional")
        return self.resource_type in DATA_RESOURCE_TYPES and (self.action == "Remove" or replaced)


def resource_diffs(old: dict[str, Any], new: dict[str, Any]) -> list[ResourceChange]:
    """Each resource added, removed, or whose properties change, between two resolved templates."""
    before, after = old.get("Resources", {}), new.get("Resources", {})
    diffs = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            diffs.append(ResourceChange("Add", name, after[name]["Type"]))
        elif name not in after:
            diffs.append(ResourceChange("Remove", name, before[name]["Type"]))
        else:
            changed = property_changes(before[name].get("Properties", {}), after[name].get("Properties", {}))
            if changed or before[name]["Type"] != after[name]["Type"]:
                diffs.append(ResourceChange("Modify", name, after[name]["Type"], properties=tuple(changed)))
    return diffs


# -- security: what is opened or closed ----------------------------------------------------------


@dataclass(frozen=True, order=True)
class SecurityChange:
    kind: str  # "ingress", "egress", "iam"
    change: str  # "+" added (or widened), "-" removed (or narrowed)
    owner: str  # the security group's or the role's logical id
    text: str  # what the rule or statement allows
    stands_out: bool = False  # reachable from an address range, or a wildcard permission

    @property
    def opens(self) -> bool:
        return self.change == "+"


def _group_of(reference: Any) -> str:
    if isinstance(reference, dict) and "Ref" in reference:
        return reference["Ref"]
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        return reference["Fn::GetAtt"][0]
    return shown(reference)


def _rule(direction: str, owner: str, rule: dict[str, Any]) -> tuple[str, str, bool]:
    if rule.get("CidrIp") == CLOSED_EGRESS["CidrIp"] and str(rule.get("IpProtocol")) == CLOSED_EGRESS["IpProtocol"]:
        return owner, "nothing (outbound traffic closed)", False
    protocol = str(rule.get("IpProtocol", "-1"))
    low, high = rule.get("FromPort"), rule.get("ToPort")
    ports = f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"
    ports = "all traffic" if protocol == "-1" else ports
    cidr = rule.get("CidrIp") or rule.get("CidrIpv6")
    peer = rule.get("SourceSecurityGroupId") or rule.get("DestinationSecurityGroupId")
    if cidr is not None:
        other = shown(cidr)
    elif peer is not None:
        other = f"security group {_group_of(peer)}"
    else:
        other = shown(rule.get("SourcePrefixListId") or rule.get("DestinationPrefixListId") or "?")
    preposition = "from" if direction == "ingress" else "to"
    # Rules from an address range face the internet (or a network beyond the VPC): the ones to read twice.
    return owner, f"{ports} {preposition} {other}", cidr is not None and direction == "ingress"


def _rules(template: dict[str, Any]) -> set[tuple[str, str, str, bool]]:
    found = set()
    for name, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::EC2::SecurityGroup":
            for direction, key in (("ingress", "SecurityGroupIngress"), ("egress", "SecurityGroupEgress")):
                for rule in props.get(key, []):
                    found.add((direction, *_rule(direction, name, rule)))
        elif kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            direction = "ingress" if kind.endswith("Ingress") else "egress"
            found.add((direction, *_rule(direction, _group_of(props.get("GroupId")), props)))
    return found


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _statement_text(statement: dict[str, Any]) -> tuple[str, bool]:
    effect = statement.get("Effect", "Allow")
    actions = sorted(shown(a) for a in _as_list(statement.get("Action", statement.get("NotAction", []))))
    resources = sorted(shown(r) for r in _as_list(statement.get("Resource", statement.get("NotResource", "*"))))
    text = f"{effect} {', '.join(actions)} on {', '.join(resources)}"
    if "Principal" in statement:
        text += f" for {shown(statement['Principal'])}"
    if "Condition" in statement:
        text += f" when {shown(statement['Condition'])}"
    wildcard = any(a == "*" or a.endswith(":*") for a in actions) or statement.get("Principal") == "*"
    return text, effect == "Allow" and wildcard


def _statements(template: dict[str, Any]) -> set[tuple[str, str, str, bool]]:
    found = set()
    for name, resource in template.get("Resources", {}).items():
        if resource["Type"] not in POLICY_HOLDERS:
            continue
        props = resource.get("Properties", {})
        documents = [p.get("PolicyDocument", {}) for p in props.get("Policies", [])]
        documents.append(props.get("PolicyDocument", {}))
        for document in documents:
            for statement in _as_list(document.get("Statement", [])):
                found.add(("iam", name, *_statement_text(statement)))
        for arn in props.get("ManagedPolicyArns", []):
            found.add(("iam", name, f"Attach {shown(arn)}", False))
    return found


def security_changes(old: dict[str, Any], new: dict[str, Any]) -> list[SecurityChange]:
    """Security group rules and IAM statements in one resolved template and not the other. A statement
    that grew (another action or resource) shows as the wider one added and the narrower one removed."""
    before = _rules(old) | _statements(old)
    after = _rules(new) | _statements(new)
    changes = [SecurityChange(kind, "+", owner, text, risky) for kind, owner, text, risky in after - before]
    changes += [SecurityChange(kind, "-", owner, text, False) for kind, owner, text, _ in before - after]
    return sorted(changes, key=lambda c: (c.kind != "ingress", c.kind, c.owner, c.change, c.text))


# -- a review, whole -----------------------------------------------------------------------------


@dataclass
class Review:
    """What a person approves: the parameters, the resources and the security changes."""

    parameters: list[ParameterChange] = field(default_factory=list)
    resources: list[ResourceChange] = field(default_factory=list)
    security: list[SecurityChange] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.parameters or self.resources)

    @property
    def data_loss(self) -> list[ResourceChange]:
        return [c for c in self.resources if c.loses_data]


def review(
    old_template: dict[str, Any] | None,
    old_parameters: dict[str, str] | None,
    new_template: dict[str, Any],
    new_parameters: dict[str, str],
) -> Review:
    """The difference between what is deployed (None for a new stack) and what would be, from the two
    templates alone (no change set: `valohai-cfn diff`)."""
    specs = new_template.get("Parameters", {})
    new = resolve(new_template, new_parameters)
    old = resolve(old_template, old_parameters or {}) if old_template else {"Resources": {}}
    effective = parameter_values(specs, new_parameters)
    shown_new = {k: ",".join(v) if isinstance(v, list) else v for k, v in effective.items()}
    return Review(
        parameters=parameter_changes(specs, old_parameters if old_template else None, shown_new),
        resources=resource_diffs(old, new),
        security=security_changes(old, new),
    )


def with_change_set(from_templates: Review, change_set_changes: list[ResourceChange]) -> Review:
    """The review of a change set: its own changes (actions, replacements, and property values where the
    API gives them), each Modify without values given the ones the templates show."""
    known = {c.logical_id: c for c in from_templates.resources}
    merged = []
    for change in change_set_changes:
        values_known = any(p.before is not None or p.after is not None for p in change.properties)
        if change.action == "Modify" and not values_known and change.logical_id in known:
            # The change set names top-level properties; the templates' paths may go deeper (Tags, UserData).
            recreation = {p.path: p.requires_recreation for p in change.properties}
            valued = known[change.logical_id].properties
            covered = {p.path.split(".")[0] for p in valued}
            properties = tuple(
                dataclasses.replace(p, requires_recreation=recreation.get(p.path.split(".")[0], "")) for p in valued
            ) + tuple(p for p in change.properties if p.path not in covered)
            change = dataclasses.replace(change, properties=properties)
        merged.append(change)
    return Review(parameters=from_templates.parameters, resources=merged, security=from_templates.security)
