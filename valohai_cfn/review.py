"""What a change does, in the terms a person approves it in: parameters old → new, each resource's changed
properties, the outputs that change, and what it opens or closes (security group rules, IAM statements),
like `cdk diff`'s summary.

Works on templates as documents (dicts): the deployed one (GetTemplate) and the new build or file, each
processed as CloudFormation processes it for its parameter values (valohai_cfn.intrinsics: loops, conditions,
Fn::Sub, Fn::If, Fn::FindInMap, Fn::Join, Fn::Select…). What only the deploy can know is shown as "changes
at deploy", never as no change: a reference to a resource that is added or replaced, an attribute that every
update of its resource changes (a launch template's version). Whether a Modify replaces its resource comes
from the change set when there is one (CloudFormation's own verdict), else from the resource's schema
(createOnlyProperties: always; conditionalCreateOnlyProperties: conditionally), read through cfn-lint.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from valohai_cfn.intrinsics import EMPTY, Processed, has_secret, process, referenced_resources, references
from valohai_cfn.intrinsics import shown as shown_text
from valohai_cfn.language_extensions import comma_delimited
from valohai_cfn.stack.policy import DATA_RESOURCE_TYPES

MASK = "****"
# The app instance ("roi"): the template's only EC2 instance.
APP_INSTANCE_TYPE = "AWS::EC2::Instance"
# Resource types whose statements are access: IAM roles and policies, and resource policies.
POLICY_HOLDERS = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy")
# The rule a security group gets to allow no outbound traffic at all (an address no packet goes to).
CLOSED_EGRESS = {"CidrIp": "255.255.255.255/32", "IpProtocol": "icmp"}
# Attributes every in-place update of their resource changes (CloudFormation makes a new launch template
# version on each update); any other attribute of a resource updated in place stays what it was.
UPDATED_ATTRIBUTES = {"AWS::EC2::LaunchTemplate": ("LatestVersionNumber", "DefaultVersionNumber")}
# Replacement verdicts under which a resource's id and attributes may be new after the deploy ("" unknown).
RENEWING = ("True", "Conditional", "")
# A resource's attributes beside its Properties: an update changes none of its properties, yet changes what
# the stack does with it (DeletionPolicy, UpdateReplacePolicy) or how it is made and updated.
RESOURCE_ATTRIBUTES = (
    "Condition",
    "CreationPolicy",
    "DeletionPolicy",
    "DependsOn",
    "Metadata",
    "UpdatePolicy",
    "UpdateReplacePolicy",
)
# The attributes that keep a data resource when the stack deletes or replaces it, and the values that keep it.
KEEPING_ATTRIBUTES = ("DeletionPolicy", "UpdateReplacePolicy")
KEEPING = ("Retain", "RetainExceptOnCreate", "Snapshot")
_ABSENT = object()

# (logical id, resource type, top-level properties that change) → "True", "Conditional", "False" or "" (unknown)
Replacement = Callable[[str, str, frozenset[str]], str]


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


# -- showing a value -----------------------------------------------------------------------------


def shown(value: Any) -> str:
    """An evaluated value as a person reads it: what only the deploy knows as ${Name}, lists comma-separated."""
    if isinstance(value, str):
        return shown_text(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(shown_text(v) for v in value)
    # ensure_ascii=False: the markers stay characters for shown_text to find, not escapes of them.
    return shown_text(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


# -- resources, their properties, and the outputs ------------------------------------------------


@dataclass(frozen=True)
class PropertyChange:
    path: str  # e.g. "InstanceType", "Tags", "SecurityGroupIngress"
    before: str | None  # None: not known (the API gave no value) or not set
    after: str | None
    requires_recreation: str = ""  # "Always", "Conditionally", "Never", or "" where unknown
    at_deploy: bool = False  # its value is known only once deployed: it refers to what the deploy renews
    attribute: bool = False  # a resource attribute (DeletionPolicy, Metadata…), not a property


def property_changes(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[PropertyChange]:
    """The properties that differ, dicts compared key by key, anything else as a whole."""
    changes = []
    for key in sorted(set(before) | set(after)):
        path = f"{prefix}{key}"
        old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changes += property_changes(old, new, f"{path}.")
        else:
            changes.append(
                PropertyChange(path, None if old is _ABSENT else shown(old), None if new is _ABSENT else shown(new))
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
    def no_longer_kept(self) -> tuple[PropertyChange, ...]:
        """The DeletionPolicy / UpdateReplacePolicy changes after which a delete or a replacement no longer keeps
        the resource (Retain or Snapshot → Delete)."""
        return tuple(
            p
            for p in self.properties
            if p.attribute
            and p.path in KEEPING_ATTRIBUTES
            and keeps(self.resource_type, p.path, p.before)
            and not keeps(self.resource_type, p.path, p.after)
        )

    @property
    def replaced_or_removed(self) -> bool:
        return self.action == "Remove" or (self.action == "Modify" and self.replacement in ("True", "Conditional"))

    @property
    def loses_data(self) -> bool:
        return self.resource_type in DATA_RESOURCE_TYPES and (self.replaced_or_removed or bool(self.no_longer_kept))


def keeps(resource_type: str, attribute: str, value: str | None) -> bool:
    """Whether a DeletionPolicy or UpdateReplacePolicy value (None: not set) keeps the resource's data. Not set,
    CloudFormation deletes, but an RDS instance's DeletionPolicy, which is Snapshot (for one outside a cluster;
    a cluster's member holds no data of its own)."""
    if value is None:
        return attribute == "DeletionPolicy" and resource_type == "AWS::RDS::DBInstance"
    return value in KEEPING


@dataclass(frozen=True)
class OutputChange:
    name: str
    before: str | None  # None: the output is new
    after: str | None  # None: the output goes
    at_deploy: bool = False  # its value is known only once deployed


def schema_replacement(region: str | None) -> Replacement:
    """Whether a Modify replaces its resource, from the resource type's schema as cfn-lint ships it: a change
    to a createOnlyProperties member always does ("True"), to a conditionalCreateOnlyProperties member may
    ("Conditional"); a type cfn-lint does not know gives "" (unknown)."""

    @functools.cache
    def create_only(resource_type: str) -> tuple[frozenset[str], frozenset[str]] | None:
        # cfn-lint is imported only when a Modify is judged: a new stack's review needs no schema.
        from cfnlint.helpers import REGIONS
        from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError

        # A region newer than cfn-lint's data: the commercial partition's first region has every common type.
        known_region = region if region in REGIONS else "us-east-1"
        try:
            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(known_region, resource_type).schema
        except ResourceNotFoundError:
            return None

        def top(key: str) -> frozenset[str]:
            return frozenset(p.split("/")[2] for p in schema.get(key, []) if p.startswith("/properties/"))

        return top("createOnlyProperties"), top("conditionalCreateOnlyProperties")

    def replacement(_logical_id: str, resource_type: str, paths: frozenset[str]) -> str:
        known = create_only(resource_type)
        if known is None:
            return ""
        always, conditionally = known
        return "True" if paths & always else "Conditional" if paths & conditionally else "False"

    return replacement


def change_set_replacement(change_set: list[ResourceChange]) -> Replacement:
    """CloudFormation's own verdicts, from a change set: what it does not list it does not replace."""
    verdicts = {c.logical_id: c.replacement for c in change_set if c.action == "Modify"}
    return lambda logical_id, _type, _paths: verdicts.get(logical_id, "False")


@dataclass
class _Settled:
    """Which resources a deploy renews (new ids and attributes), and which properties therefore change."""

    old: Processed
    new: Processed
    replacement: Replacement
    at_deploy: dict[str, set[str]] = field(default_factory=dict)  # logical id → top-level properties
    verdicts: dict[str, str] = field(default_factory=dict)  # logical id → replacement, for each Modify
    renewed: set[str] = field(default_factory=set)
    updated_attributes: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.kept = sorted(self.old.resources.keys() & self.new.resources.keys())
        before, after = self.old.resources, self.new.resources
        self.textual = {
            n: property_changes(before[n].get("Properties", {}), after[n].get("Properties", {})) for n in self.kept
        }
        self.attributes = {n: attribute_changes(before[n], after[n]) for n in self.kept}
        self.at_deploy = {n: set() for n in self.kept}
        # Each round may find a property that refers to a renewed resource, which may renew its own resource.
        while self._judge():
            pass

    def waits(self, value: Any) -> bool:
        """Whether an evaluated value is known only once deployed."""
        return any(r.split(".")[0] in self.renewed or r in self.updated_attributes for r in references(value))

    def _judge(self) -> bool:
        before, after = self.old.resources, self.new.resources
        self.verdicts = {}
        for n in self.kept:
            paths = frozenset({p.path.split(".")[0] for p in self.textual[n]} | self.at_deploy[n])
            if before[n]["Type"] != after[n]["Type"]:
                self.verdicts[n] = "True"
            elif paths:
                self.verdicts[n] = self.replacement(n, after[n]["Type"], paths)
            elif self.attributes[n]:
                self.verdicts[n] = "False"  # an attribute alone changes: nothing of the resource is updated
        self.renewed = (after.keys() - before.keys()) | {n for n, v in self.verdicts.items() if v in RENEWING}
        self.updated_attributes = {
            f"{n}.{attribute}"
            for n in self.verdicts
            if n not in self.renewed and (self.textual[n] or self.at_deploy[n])
            for attribute in UPDATED_ATTRIBUTES.get(after[n]["Type"], ())
        }
        grew = False
        for n in self.kept:
            for key, value in after[n].get("Properties", {}).items():
                if key not in self.at_deploy[n] and self.waits(value):
                    self.at_deploy[n].add(key)
                    grew = True
        return grew

    def properties(self, name: str) -> tuple[PropertyChange, ...]:
        old = self.old.resources[name].get("Properties", {})
        new = self.new.resources[name].get("Properties", {})
        deploying = self.at_deploy[name]
        changes = [dataclasses.replace(p, at_deploy=p.path.split(".")[0] in deploying) for p in self.textual[name]]
        textual_keys = {p.path.split(".")[0] for p in self.textual[name]}
        changes += [
            PropertyChange(key, shown(old[key]) if key in old else None, shown(new[key]), at_deploy=True)
            for key in sorted(deploying - textual_keys)
        ]
        return tuple(sorted(changes, key=lambda p: p.path)) + self.attributes[name]

    def resources(self) -> list[ResourceChange]:
        before, after = self.old.resources, self.new.resources
        changes = []
        for name in sorted(before.keys() | after.keys()):
            if name not in before:
                changes.append(ResourceChange("Add", name, after[name]["Type"]))
            elif name not in after:
                changes.append(ResourceChange("Remove", name, before[name]["Type"]))
            elif name in self.verdicts:
                verdict = self.verdicts[name]
                changes.append(ResourceChange("Modify", name, after[name]["Type"], verdict, self.properties(name)))
        return changes

    def outputs(self) -> list[OutputChange]:
        before, after = self.old.outputs, self.new.outputs
        changes = []
        for name in sorted(before.keys() | after.keys()):
            old, new = before.get(name, _ABSENT), after.get(name, _ABSENT)
            deploying = new is not _ABSENT and self.waits(new)
            if old != new or deploying:
                changes.append(
                    OutputChange(
                        name, None if old is _ABSENT else shown(old), None if new is _ABSENT else shown(new), deploying
                    )
                )
        return changes


def attribute_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[PropertyChange, ...]:
    """A resource's attributes that differ (RESOURCE_ATTRIBUTES), each as a whole: None where not set."""
    changes = []
    for name in RESOURCE_ATTRIBUTES:
        old, new = _attribute(before, name), _attribute(after, name)
        if old != new:
            changes.append(
                PropertyChange(
                    name, None if old is None else shown(old), None if new is None else shown(new), attribute=True
                )
            )
    return tuple(changes)


def _attribute(resource: dict[str, Any], name: str) -> Any:
    value = resource.get(name)
    if name == "DependsOn" and value is not None:
        return sorted(value) if isinstance(value, list) else [value]  # one name, or a list in any order
    return value


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


def _group_of(value: Any) -> str:
    """The logical id a security group reference names (GroupId: a Ref or Fn::GetAtt of the group)."""
    named = referenced_resources(value)
    return next(iter(named)) if len(named) == 1 else shown(value)


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


def _rules(resources: dict[str, dict]) -> set[tuple[str, str, str, bool]]:
    found = set()
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::EC2::SecurityGroup":
            for direction, key in (("ingress", "SecurityGroupIngress"), ("egress", "SecurityGroupEgress")):
                for rule in _as_list(props.get(key, [])):
                    if isinstance(rule, dict):
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


def _policy_document(document: Any) -> dict[str, Any]:
    """A policy document as a dict: IAM and S3 take one as JSON text too (a Json property)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return {}  # text that is not JSON: CloudFormation's to refuse; no statement to show
    return document if isinstance(document, dict) else {}


def _statements(resources: dict[str, dict]) -> set[tuple[str, str, str, bool]]:
    found = set()
    for name, resource in resources.items():
        if resource["Type"] not in POLICY_HOLDERS:
            continue
        props = resource.get("Properties", {})
        documents = [p.get("PolicyDocument") for p in props.get("Policies", []) if isinstance(p, dict)]
        documents.append(props.get("PolicyDocument"))
        for document in map(_policy_document, documents):
            for statement in _as_list(document.get("Statement", [])):
                if isinstance(statement, dict):
                    found.add(("iam", name, *_statement_text(statement)))
        for arn in props.get("ManagedPolicyArns", []):
            found.add(("iam", name, f"Attach {shown(arn)}", False))
    return found


def security_changes(old: Processed, new: Processed) -> list[SecurityChange]:
    """Security group rules and IAM statements in one processed template and not the other. A statement
    that grew (another action or resource) shows as the wider one added and the narrower one removed."""
    before = _rules(old.resources) | _statements(old.resources)
    after = _rules(new.resources) | _statements(new.resources)
    changes = [SecurityChange(kind, "+", owner, text, risky) for kind, owner, text, risky in after - before]
    changes += [SecurityChange(kind, "-", owner, text, False) for kind, owner, text, _ in before - after]
    return sorted(changes, key=lambda c: (c.kind != "ingress", c.kind, c.owner, c.change, c.text))


# -- stack tags ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagChange:
    key: str
    before: str | None  # None: the stack has no such tag yet
    after: str | None  # None: the tag is removed


def tag_changes(before: dict[str, str], after: dict[str, str]) -> list[TagChange]:
    """The stack tags that an operation adds, changes or removes, by key."""
    return [
        TagChange(key, before.get(key), after.get(key))
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]


# -- a review, whole -----------------------------------------------------------------------------


@dataclass
class Review:
    """What a person approves: the parameters, the resources, the outputs, the stack's tags and the security
    changes."""

    parameters: list[ParameterChange] = field(default_factory=list)
    resources: list[ResourceChange] = field(default_factory=list)
    security: list[SecurityChange] = field(default_factory=list)
    outputs: list[OutputChange] = field(default_factory=list)
    tags: list[TagChange] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.parameters or self.resources or self.outputs or self.tags)

    @property
    def data_loss(self) -> list[ResourceChange]:
        return [c for c in self.resources if c.loses_data]

    @property
    def replaces_app_instance(self) -> bool:
        """Whether the update makes a new app instance (a new RoiAmiId: Valohai's next release, or another
        instance type): the template's only EC2 instance is the app's ("roi")."""
        return any(
            c.resource_type == APP_INSTANCE_TYPE and c.action == "Modify" and c.replacement in ("True", "Conditional")
            for c in self.resources
        )


def review(
    old_template: dict[str, Any] | None,
    old_parameters: dict[str, str] | None,
    new_template: dict[str, Any],
    new_parameters: dict[str, str],
    *,
    pseudo: dict[str, str] | None = None,
    replacement: Replacement | None = None,
    change_set: list[ResourceChange] | None = None,
) -> Review:
    """The difference between what is deployed (`old_template` None for a new stack) and what would be.

    `pseudo`: the pseudo parameters known (intrinsics.pseudo_parameters). With `change_set` (its resource
    changes), the change set's list of changes and its replacement verdicts are CloudFormation's and win; the
    templates add the property values it does not give, and the outputs. Without one (`valohai-cfn diff`),
    `replacement` judges whether a Modify replaces its resource (default: the schemas, schema_replacement).
    Values a NoEcho parameter flows into are shown as ****, the change set's too. Raises
    intrinsics.EvaluationError for a template CloudFormation would refuse to process."""
    specs = new_template.get("Parameters", {})
    new = process(new_template, new_parameters, pseudo)
    old = process(old_template, old_parameters or {}, pseudo) if old_template else EMPTY
    if change_set is not None:
        replacement = change_set_replacement(change_set)
    elif replacement is None:
        replacement = schema_replacement((pseudo or {}).get("AWS::Region"))
    settled = _Settled(old, new, replacement)
    shown_new = {k: ",".join(v) if isinstance(v, list) else v for k, v in new.parameters.items()}
    resources = settled.resources()
    if change_set is not None:
        secret = {
            n: _secret_properties(old, n) | _secret_properties(new, n)
            for n in old.resources.keys() | new.resources.keys()
        }
        resources = with_change_set(resources, masked(change_set, secret_values(specs, new_parameters)), secret)
    return Review(
        parameters=parameter_changes(specs, old_parameters if old_template else None, shown_new),
        resources=resources,
        security=security_changes(old, new),
        outputs=settled.outputs(),
    )


def _secret_properties(processed: Processed, logical_id: str) -> set[str]:
    """The top-level properties of a resource that a NoEcho parameter's value flows into."""
    properties = processed.resources.get(logical_id, {}).get("Properties", {})
    return {key for key, value in properties.items() if has_secret(value)} if isinstance(properties, dict) else set()


def secret_values(specs: dict[str, dict], values: dict[str, str]) -> list[str]:
    """The values of the NoEcho parameters given (the stack's own are **** already), longest first."""
    secrets = {
        v
        for name, v in values.items()
        if str(specs.get(name, {}).get("NoEcho", "false")).lower() == "true" and v and v != MASK
    }
    return sorted(secrets, key=len, reverse=True)


def masked(changes: list[ResourceChange], secrets: list[str]) -> list[ResourceChange]:
    """A change set's changes with every NoEcho value given replaced by **** in its property values."""

    def mask(text: str | None) -> str | None:
        for secret in secrets:
            text = None if text is None else text.replace(secret, MASK)
        return text

    if not secrets:
        return changes
    return [
        dataclasses.replace(
            c,
            properties=tuple(dataclasses.replace(p, before=mask(p.before), after=mask(p.after)) for p in c.properties),
        )
        for c in changes
    ]


def with_change_set(
    from_templates: list[ResourceChange],
    change_set: list[ResourceChange],
    secret: dict[str, set[str]] | None = None,
) -> list[ResourceChange]:
    """A change set's resource changes (actions, replacements, and property values where the API gives them),
    each property without values given the ones the templates show — as are the properties a NoEcho value
    flows into (`secret`: logical id → top-level properties; the templates show them masked, and a value the
    templates do not show is ****) and those only the execution evaluates (Dynamic: changes at deploy).
    Attribute changes (DeletionPolicy…) come from the templates, for the resources the change set lists and
    for those it does not list (CloudFormation may list no change for an attribute alone)."""
    known = {c.logical_id: c for c in from_templates}
    secret = secret or {}
    merged = []
    for change in change_set:
        if change.action == "Modify" and change.logical_id in known:
            merged.append(_merged(change, known[change.logical_id], secret.get(change.logical_id, set())))
        else:
            merged.append(change)
    listed = {c.logical_id for c in change_set}
    for c in from_templates:
        attributes = tuple(p for p in c.properties if p.attribute)
        if c.action == "Modify" and c.logical_id not in listed and attributes:
            merged.append(dataclasses.replace(c, replacement="False", properties=attributes))
    return merged


def _merged(change: ResourceChange, from_templates: ResourceChange, hidden: set[str]) -> ResourceChange:
    # The change set names top-level properties; the templates' paths may go deeper (Tags, UserData).
    recreation = {p.path: p.requires_recreation for p in change.properties}
    dynamic = {p.path for p in change.properties if p.at_deploy}
    # What a Dynamic entry had before is known (CloudFormation gives it); only what it becomes is not.
    dynamic_before = {p.path: p.before for p in change.properties if p.at_deploy and p.before is not None}
    valued = {
        p.path
        for p in change.properties
        if (p.before is not None or p.after is not None) and p.path not in dynamic | hidden
    }
    templates = [p for p in from_templates.properties if p.path.split(".")[0] not in valued]
    covered = {p.path.split(".")[0] for p in templates} | valued

    def secret(p: PropertyChange) -> PropertyChange:
        return dataclasses.replace(
            p, before=None if p.before is None else MASK, after=None if p.after is None else MASK
        )

    properties = (
        tuple(p for p in change.properties if p.path in valued)
        + tuple(
            dataclasses.replace(
                p,
                before=p.before if p.path.split(".")[0] in hidden else dynamic_before.get(p.path, p.before),
                requires_recreation=recreation.get(p.path.split(".")[0], p.requires_recreation),
                at_deploy=p.at_deploy or p.path.split(".")[0] in dynamic,
            )
            for p in templates
        )
        + tuple(secret(p) if p.path in hidden else p for p in change.properties if p.path not in covered)
    )
    return dataclasses.replace(change, properties=tuple(sorted(properties, key=lambda p: p.path)))
