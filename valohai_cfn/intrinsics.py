"""A template as CloudFormation processes it for given parameter values, before anything is deployed: the
AWS::LanguageExtensions loops expanded, the conditions evaluated, what a false condition excludes left out,
and every intrinsic function evaluated — Ref, Fn::Sub (parameters, pseudo parameters, its own variables),
Fn::If, Fn::FindInMap, Fn::Join, Fn::Select, Fn::Split, Fn::Base64, Fn::Length, Fn::ToJsonString.

What only a deploy can know stays a *reference*: a resource's physical id (Ref) or attribute (Fn::GetAtt),
a pseudo parameter not known yet (the account of a stack not made yet), the Availability Zones, another
stack's export. A reference is a marker inside the value's text (`reference("Queue.PrimaryEndPoint.Address")`),
so text built around it (Fn::Sub, Fn::Join) is still compared and shown as a whole, and `references(value)`
says which resources a value waits for. The markers are characters of Unicode's private use area, which no
template contains. An attribute named like one of the resource's own properties (an SSM parameter's Value)
is that property's value, known before the deploy as CloudFormation returns it.

A NoEcho parameter's value is a *secret*: a marker standing for it (the same value, the same marker), so that
whatever it flows into compares as it would and is shown as **** (`shown`); conditions, mappings and the
functions that look inside a value (Fn::Equals, Fn::FindInMap, Fn::Select, Fn::Split) see the value itself.

Follows CloudFormation's documentation of the intrinsic functions and pseudo parameters
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from valohai_cfn.language_extensions import comma_delimited, expand, transforms

NO_VALUE = type("NoValue", (), {"__repr__": lambda _self: "AWS::NoValue"})()
OPEN, CLOSE = "\ue000", "\ue001"
_REFERENCE = re.compile(f"{OPEN}([^{CLOSE}]*){CLOSE}")
SECRET_OPEN, SECRET_CLOSE = "\ue002", "\ue003"
_SECRET = re.compile(f"{SECRET_OPEN}[^{SECRET_CLOSE}]*{SECRET_CLOSE}")
SECRET_SHOWN = "****"
# The resource attributes evaluated as properties are (the transform lets these hold intrinsic functions).
EVALUATED_ATTRIBUTES = ("Metadata", "DeletionPolicy", "UpdateReplacePolicy")
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
LIST_TYPES = ("List<", "CommaDelimitedList")
# The DNS suffix of each partition (AWS::URLSuffix).
URL_SUFFIXES = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn"}
_STACK_ARN = re.compile(r"^arn:(?P<partition>[^:]+):cloudformation:(?P<region>[^:]+):(?P<account>\d{12}):stack/")


class EvaluationError(ValueError):
    """A template CloudFormation would refuse to process; the message says where."""


def reference(name: str) -> str:
    """A value known only once deployed: a resource ("Name"), its attribute ("Name.Attribute"), a pseudo
    parameter ("AWS::AccountId") or a function ("Fn::GetAZs", its arguments following the marker)."""
    return f"{OPEN}{name}{CLOSE}"


def _unknown(function: str, *arguments: Any) -> str:
    """A function's result known only at deploy, its arguments' own references kept in it."""
    shown_arguments = (a if isinstance(a, str) else json.dumps(a, separators=(",", ":")) for a in arguments)
    return f"{reference(function)}({', '.join(shown_arguments)})"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def references(value: Any) -> set[str]:
    """Every reference in an evaluated value: "Name" for a Ref, "Name.Attribute" for an Fn::GetAtt, "AWS::…"
    for a pseudo parameter, "Fn::…" for a function's result."""
    return {name for text in _strings(value) for name in _REFERENCE.findall(text)}


def referenced_resources(value: Any) -> set[str]:
    """The logical ids of the resources an evaluated value refers to."""
    return {name.split(".")[0] for name in references(value) if "::" not in name}


def shown(text: str) -> str:
    """The text with each reference as ${Name}, as Fn::Sub writes it, and each secret as ****."""
    return _SECRET.sub(SECRET_SHOWN, _REFERENCE.sub(lambda m: "${" + m.group(1) + "}", text))


def has_secret(value: Any) -> bool:
    """Whether a NoEcho parameter's value flows into an evaluated value."""
    return any(_SECRET.search(text) for text in _strings(value))


def _secret(name: str, value: str, revealed: dict[str, str]) -> str:
    """The marker of a NoEcho parameter's value; `revealed` learns what it stands for."""
    digest = hashlib.sha256(f"{name}\0{value}".encode()).hexdigest()[:16]
    marker = f"{SECRET_OPEN}{digest}{SECRET_CLOSE}"
    revealed[marker] = value
    return marker


def pseudo_parameters(*, region: str | None, stack_name: str | None, stack_id: str | None) -> dict[str, str]:
    """The pseudo parameters known before a deploy: the region, the stack's name, and (from an existing
    stack's ARN, arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>) its id, account and
    partition. The others stay references."""
    known = {"AWS::Region": region, "AWS::StackName": stack_name, "AWS::StackId": stack_id}
    arn = _STACK_ARN.match(stack_id or "")
    if arn:
        known |= {"AWS::AccountId": arn["account"], "AWS::Partition": arn["partition"], "AWS::Region": arn["region"]}
        if arn["partition"] in URL_SUFFIXES:
            known["AWS::URLSuffix"] = URL_SUFFIXES[arn["partition"]]
    return {k: v for k, v in known.items() if v}


def parameter_values(
    specs: dict[str, dict], given: dict[str, str], revealed: dict[str, str] | None = None
) -> dict[str, Any]:
    """Every parameter's value, as Ref gives it: given, else its default; list types as lists of
    space-trimmed items. With `revealed` (a dict it fills), a NoEcho parameter's value is its secret's
    marker (each item of a list its own)."""
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        value = given.get(name, spec.get("Default"))
        if value is None:
            continue
        text = str(value)
        typed: Any = comma_delimited(text) if str(spec.get("Type", "String")).startswith(LIST_TYPES) else text
        if revealed is not None and str(spec.get("NoEcho", "false")).lower() == "true":
            typed = (
                [_secret(name, t, revealed) for t in typed]
                if isinstance(typed, list)
                else _secret(name, typed, revealed)
            )
        values[name] = typed
    return values


def _text(value: Any, where: str) -> str:
    if value is NO_VALUE:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise EvaluationError(f"{where}: expected a string, got {json.dumps(value, default=str)[:80]}")


@dataclass
class Evaluator:
    """Evaluates intrinsic functions for one set of parameter values. `resources` are the template's
    (after the loops) by logical id; Fn::GetAtt of an attribute named like one of a resource's properties
    gives that property's evaluated value."""

    parameters: dict[str, Any]
    pseudo: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)  # the template's Conditions section
    mappings: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, dict] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # a NoEcho value's marker → the value
    _condition_values: dict[str, bool] = field(default_factory=dict)
    _in_progress: set[str] = field(default_factory=set)

    # -- conditions ---------------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self.conditions:
                raise EvaluationError(f"condition {name} is not defined")
            if name in self._in_progress:
                raise EvaluationError(f"condition {name} refers to itself")
            self._in_progress.add(name)
            self._condition_values[name] = bool(self(self.conditions[name]))
            self._in_progress.discard(name)
        return self._condition_values[name]

    # -- references ---------------------------------------------------------------------------------

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return copy.deepcopy(self.parameters[name])
        if name.startswith("AWS::"):
            return self.pseudo.get(name, reference(name))
        return reference(name)

    def get_att(self, name: str, attribute: str) -> Any:
        properties = self.resources.get(name, {}).get("Properties", {})
        key = f"{name}.{attribute}"
        if "." not in attribute and isinstance(properties, dict) and attribute in properties:
            if key in self._in_progress:
                raise EvaluationError(f"Fn::GetAtt {key} refers to itself")
            self._in_progress.add(key)
            try:
                return self(properties[attribute])
            finally:
                self._in_progress.discard(key)
        return reference(key)

    # -- secrets ------------------------------------------------------------------------------------

    def revealed(self, value: Any) -> Any:
        """The value with each secret's marker replaced by the value it stands for."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return _SECRET.sub(lambda m: self.secrets.get(m.group(0), m.group(0)), value)
        if isinstance(value, list):
            return [self.revealed(v) for v in value]
        if isinstance(value, dict):
            return {k: self.revealed(v) for k, v in value.items()}
        return value

    # -- the functions ------------------------------------------------------------------------------

    def sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            text, variables = argument, {}
        elif isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            text, variables = argument
        else:
            raise EvaluationError("Fn::Sub takes a string or [string, {variables}]")

        def one(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} is written as ${Literal}
            if name in variables:  # evaluated only when used: a map may hold other settings' values
                return _text(self(variables[name]), f"Fn::Sub ${{{name}}}")
            if name in self.parameters or name.startswith("AWS::"):
                return _text(self.ref(name), f"Fn::Sub ${{{name}}}")
            if "." in name:
                resource, attribute = name.split(".", 1)
                return _text(self.get_att(resource, attribute), f"Fn::Sub ${{{name}}}")
            return reference(name)

        return _SUB_VARIABLE.sub(one, self(text) if isinstance(text, dict) else text)

    def join(self, argument: Any) -> str:
        separator, items = argument
        evaluated = self(items)
        if isinstance(evaluated, str):  # a list known only at deploy (Fn::GetAZs, an attribute)
            return _unknown("Fn::Join", separator, evaluated)
        return self(separator).join(_text(item, "Fn::Join") for item in evaluated if item is not NO_VALUE)

    def select(self, argument: Any) -> Any:
        index, items = (self(a) for a in argument)
        index = self.revealed(index)
        if isinstance(items, str):
            return _unknown("Fn::Select", index, items)
        try:
            return items[int(index)]
        except (IndexError, ValueError, TypeError):
            raise EvaluationError(f"Fn::Select: no item {index} in a list of {len(items)}") from None

    def split(self, argument: Any) -> Any:
        delimiter, text = (self(a) for a in argument)
        if references(text):
            return _unknown("Fn::Split", delimiter, text)
        pieces = _text(self.revealed(text), "Fn::Split").split(self.revealed(delimiter))
        # The pieces of a secret are secrets too.
        return [_secret("Fn::Split", piece, self.secrets) for piece in pieces] if has_secret(text) else pieces

    def find_in_map(self, argument: Any) -> Any:
        mapping, first, second, *rest = (self.revealed(self(a)) for a in argument)
        try:
            return copy.deepcopy(self.mappings[mapping][first][second])
        except (KeyError, TypeError):
            default = rest[0].get("DefaultValue", NO_VALUE) if rest and isinstance(rest[0], dict) else NO_VALUE
            if default is NO_VALUE:
                raise EvaluationError(f"Fn::FindInMap: {mapping}/{first}/{second} is not in the mappings") from None
            return default

    def if_(self, argument: Any) -> Any:
        name, if_true, if_false = argument
        return self(if_true if self.condition(name) else if_false)

    def get_att_of(self, argument: Any) -> Any:
        name, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
        return self.get_att(name, self(attribute))

    def equals(self, argument: Any) -> bool:
        left, right = (self.revealed(self(a)) for a in argument)
        return left == right

    def length(self, argument: Any) -> Any:
        items = self(argument)
        return len(items) if isinstance(items, list) else _unknown("Fn::Length", items)

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((fn, argument),) = node.items()
            function = FUNCTIONS.get(fn)
            if function is not None:
                return function(self, argument)
            if fn == "Fn::GetAZs" and self(argument) == "":
                return _unknown(fn, self.ref("AWS::Region"))  # "": the stack's own region
            if fn in KNOWN_AT_DEPLOY:
                return _unknown(fn, self(argument))
        evaluated = {k: self(v) for k, v in node.items()}
        return {k: v for k, v in evaluated.items() if v is not NO_VALUE}


FUNCTIONS: dict[str, Callable[[Evaluator, Any], Any]] = {
    "Ref": lambda e, a: e.ref(e(a)),
    "Condition": lambda e, a: e.condition(a),
    "Fn::If": Evaluator.if_,
    "Fn::GetAtt": Evaluator.get_att_of,
    "Fn::Sub": Evaluator.sub,
    "Fn::Join": Evaluator.join,
    "Fn::Select": Evaluator.select,
    "Fn::Split": Evaluator.split,
    "Fn::FindInMap": Evaluator.find_in_map,
    "Fn::Equals": Evaluator.equals,
    "Fn::Not": lambda e, a: not e(a[0]),
    "Fn::And": lambda e, a: all(e(item) for item in a),
    "Fn::Or": lambda e, a: any(e(item) for item in a),
    "Fn::Base64": lambda e, a: e(a),  # shown as the text it encodes: the same text is the same value
    "Fn::Length": Evaluator.length,
    "Fn::ToJsonString": lambda e, a: json.dumps(e(a), separators=(",", ":")),
}
# Functions whose result only the deploy knows: the account's zones, another stack's export, a subnet plan.
KNOWN_AT_DEPLOY = ("Fn::GetAZs", "Fn::ImportValue", "Fn::Cidr")


@dataclass(frozen=True)
class Processed:
    """A template processed for parameter values: its parameters' values (as Ref gives them), its conditions,
    and the resources and outputs its conditions keep, every value evaluated."""

    parameters: dict[str, Any]
    conditions: dict[str, bool]
    resources: dict[str, dict]  # logical id → the resource, Properties evaluated (Type and policies as they are)
    outputs: dict[str, Any]  # output name → its evaluated Value


EMPTY = Processed({}, {}, {}, {})


def process(template: dict[str, Any], given: dict[str, str], pseudo: dict[str, str] | None = None) -> Processed:
    """The template as CloudFormation processes it for these parameter values (its defaults fill the rest).
    Raises EvaluationError (or language_extensions.TransformError) where CloudFormation would refuse it."""
    specs = template.get("Parameters", {})
    expanded = expand(copy.deepcopy(template), {k: v for k, v in given.items() if k in specs})
    others = transforms(expanded)
    if others:
        raise EvaluationError(f"the template uses the transform {', '.join(others)}, which is not evaluated here")
    secrets: dict[str, str] = {}
    evaluate = Evaluator(
        parameters=parameter_values(specs, given, secrets),
        pseudo=pseudo or {},
        conditions=expanded.get("Conditions", {}),
        mappings=expanded.get("Mappings", {}),
        resources=expanded.get("Resources", {}),
        secrets=secrets,
    )
    conditions = {name: evaluate.condition(name) for name in evaluate.conditions}

    def kept(section: str) -> dict[str, dict]:
        items = expanded.get(section, {})
        for name, item in items.items():
            if not isinstance(item, dict):
                raise EvaluationError(f"{section}: {name} is not an object")
        return {k: v for k, v in items.items() if "Condition" not in v or evaluate.condition(v["Condition"])}

    def evaluated(resource: dict) -> dict:
        attributes = {a: evaluate(resource[a]) for a in EVALUATED_ATTRIBUTES if a in resource}
        return {**resource, **attributes, "Properties": evaluate(resource.get("Properties", {}))}

    resources = {name: evaluated(r) for name, r in kept("Resources").items()}
    outputs = {name: evaluate(o.get("Value")) for name, o in kept("Outputs").items()}
    return Processed(evaluate.parameters, conditions, resources, outputs)
