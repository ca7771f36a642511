"""CloudFormation's intrinsic functions, evaluated as CloudFormation does for a stack: Ref, Fn::GetAtt,
Fn::Sub, Fn::Join, Fn::If, Fn::Select, Fn::Split, Fn::FindInMap, Fn::Base64, Fn::GetAZs and the
conditions' Fn::Equals / Fn::And / Fn::Or / Fn::Not; and dynamic references ({{resolve:ssm:…}},
{{resolve:secretsmanager:…}}) when properties go to a service.

moto's own evaluation (parsing.clean_json) turns an AWS::NoValue in a Fn::Join list into the text "None",
evaluates every variable of a Fn::Sub map whether the text uses it or not, and leaves dynamic references
as literal text; this one does what CloudFormation documents instead.

While a change set is computed, a Ref or Fn::GetAtt of a resource that does not exist yet (or is being
changed) has no value: it evaluates to an `Unresolved`, which CloudFormation's change sets call a
"Dynamic" evaluation; what it flows into is unresolved too.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from moto.cloudformation.exceptions import ValidationError

NO_VALUE = object()
"""The value of Ref AWS::NoValue: the property (or list item) it stands in is left out."""

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DYNAMIC_REFERENCE = re.compile(r"\{\{resolve:(ssm|ssm-secure|secretsmanager):([^}]+)\}\}")


@dataclass(frozen=True)
class Unresolved:
    """A value CloudFormation learns only while it executes (the attribute of a resource it makes or
    changes), and what was built from it. `sources` are the "Name" or "Name.Attribute" it waits for."""

    text: str
    sources: frozenset[str] = field(default_factory=frozenset)

    def __str__(self) -> str:
        return self.text


class Scope(Protocol):
    """What an expression can refer to."""

    def parameter(self, name: str) -> Any: ...  # raises KeyError when there is none

    def resource_ref(self, name: str) -> Any: ...  # physical id, or Unresolved

    def resource_attribute(self, name: str, attribute: str) -> Any: ...

    def condition(self, name: str) -> bool: ...

    def mapping(self, name: str) -> dict[str, Any]: ...

    @property
    def region(self) -> str: ...

    def dynamic_reference(self, service: str, reference: str) -> str: ...


def pseudo_parameters(region: str, account_id: str, stack_name: str, stack_id: str) -> dict[str, Any]:
    return {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::StackName": stack_name,
        "AWS::StackId": stack_id,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": [],
        "AWS::NoValue": NO_VALUE,
    }


def _sources(values: Iterable[Any]) -> frozenset[str]:
    found: set[str] = set()
    for value in values:
        if isinstance(value, Unresolved):
            found |= value.sources
        elif isinstance(value, list):
            found |= _sources(value)
    return frozenset(found)


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        raise ValidationError(message=f"Template error: {where} must resolve to a string, not {json.dumps(value)}")
    return str(value)


def _maybe_unresolved(result: str, parts: Iterable[Any]) -> Any:
    sources = _sources(parts)
    return Unresolved(result, sources) if sources else result


def _one(node: dict[str, Any]) -> tuple[str, Any] | None:
    if len(node) != 1:
        return None
    ((key, value),) = node.items()
    # {"Condition": name} is a function only where it names a condition (inside Fn::And / Fn::Or / Fn::Not):
    # an IAM statement's Condition is a map.
    is_function = key == "Ref" or key.startswith("Fn::") or (key == "Condition" and isinstance(value, str))
    return (key, value) if is_function else None


def evaluate(node: Any, scope: Scope) -> Any:
    """The value of a template fragment: dicts and lists with what AWS::NoValue removes left out."""
    if isinstance(node, list):
        items = (evaluate(item, scope) for item in node)
        return [item for item in items if item is not NO_VALUE]
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return node
    function = _one(node)
    if function is None:
        evaluated = {k: evaluate(v, scope) for k, v in node.items()}
        return {k: v for k, v in evaluated.items() if v is not NO_VALUE}
    name, argument = function
    handler = _FUNCTIONS.get(name)
    if handler is None:
        raise ValidationError(message=f"not supported by the local AWS: the intrinsic function {name}")
    return handler(argument, scope)


def _ref(argument: Any, scope: Scope) -> Any:
    if not isinstance(argument, str):
        raise ValidationError(message="Template error: every Ref object must have a single String value.")
    try:
        return scope.parameter(argument)
    except KeyError:
        return scope.resource_ref(argument)


def _get_att(argument: Any, scope: Scope) -> Any:
    if isinstance(argument, str):
        argument = argument.split(".", 1)
    name, attribute = argument[0], evaluate(argument[1], scope)
    return scope.resource_attribute(name, attribute)


def _sub(argument: Any, scope: Scope) -> Any:
    text, variables = (argument, {}) if isinstance(argument, str) else argument
    used: list[Any] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):  # ${!Literal} is the text ${Literal}
            return "${" + name[1:] + "}"
        if name in variables:  # evaluated only when used, as CloudFormation does
            value = evaluate(variables[name], scope)
        elif "." in name and not _is_parameter(scope, name):
            value = scope.resource_attribute(*name.split(".", 1))
        else:
            value = _ref(name, scope)
        used.append(value)
        return _text(value, f"Fn::Sub variable {name}")

    return _maybe_unresolved(_SUB_VARIABLE.sub(one, text), used)


def _is_parameter(scope: Scope, name: str) -> bool:
    try:
        scope.parameter(name)
    except KeyError:
        return False
    return True


def _join(argument: Any, scope: Scope) -> Any:
    separator, items = argument
    values = evaluate(items, scope)
    if isinstance(values, Unresolved):
        return values
    if not isinstance(values, list):
        raise ValidationError(message="Template error: every Fn::Join object requires two parameters")
    flat = [item for value in values for item in (value if isinstance(value, list) else [value])]
    return _maybe_unresolved(separator.join(_text(v, "Fn::Join item") for v in flat), flat)


def _if(argument: Any, scope: Scope) -> Any:
    name, when_true, when_false = argument
    return evaluate(when_true if scope.condition(name) else when_false, scope)


def _select(argument: Any, scope: Scope) -> Any:
    index, items = (evaluate(a, scope) for a in argument)
    if isinstance(items, Unresolved) or isinstance(index, Unresolved):
        return Unresolved(f"{{{{Fn::Select {index}}}}}", _sources([items, index]))
    return items[int(index)]


def _split(argument: Any, scope: Scope) -> Any:
    separator, text = argument[0], evaluate(argument[1], scope)
    if isinstance(text, Unresolved):
        return text
    return text.split(separator)


def _find_in_map(argument: Any, scope: Scope) -> Any:
    mapping, first, second = (evaluate(a, scope) for a in argument)
    try:
        return scope.mapping(mapping)[first][second]
    except KeyError:
        raise ValidationError(
            message=f"Template error: Unable to get mapping for {mapping}::{first}::{second}"
        ) from None


def _base64(argument: Any, scope: Scope) -> Any:
    value = evaluate(argument, scope)
    if isinstance(value, Unresolved):
        return Unresolved(f"{{{{Fn::Base64 {value.text}}}}}", value.sources)
    return base64.b64encode(_text(value, "Fn::Base64").encode()).decode()


def _get_azs(argument: Any, scope: Scope) -> Any:
    region = evaluate(argument, scope) or scope.region
    return [f"{region}{zone}" for zone in "abc"]


def _equals(argument: Any, scope: Scope) -> bool:
    left, right = (evaluate(a, scope) for a in argument)
    return _text(left, "Fn::Equals") == _text(right, "Fn::Equals") if not isinstance(left, list) else left == right


def _and(argument: Any, scope: Scope) -> bool:
    return all(evaluate(a, scope) for a in argument)


def _or(argument: Any, scope: Scope) -> bool:
    return any(evaluate(a, scope) for a in argument)


def _not(argument: Any, scope: Scope) -> bool:
    return not evaluate(argument[0], scope)


def _condition(argument: Any, scope: Scope) -> bool:
    return scope.condition(argument)


_FUNCTIONS: dict[str, Callable[[Any, Scope], Any]] = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::Join": _join,
    "Fn::If": _if,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": _base64,
    "Fn::GetAZs": _get_azs,
    "Fn::Equals": _equals,
    "Fn::And": _and,
    "Fn::Or": _or,
    "Fn::Not": _not,
    "Condition": _condition,
}


def with_dynamic_references(value: Any, scope: Scope) -> Any:
    """The value with each {{resolve:…}} reference replaced by what it names, as CloudFormation does when
    it hands properties to the service (the template, the change set and the stored properties keep the
    reference itself)."""
    if isinstance(value, str) and "{{resolve:" in value:
        return _DYNAMIC_REFERENCE.sub(lambda m: scope.dynamic_reference(m.group(1), m.group(2)), value)
    if isinstance(value, list):
        return [with_dynamic_references(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: with_dynamic_references(v, scope) for k, v in value.items()}
    return value


def references(node: Any) -> set[str]:
    """The names a fragment refers to: Ref, Fn::GetAtt, and ${Name} or ${Name.Attribute} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                variables = {} if isinstance(value, str) else value[1]
                names = {n.split(".")[0] for n in _SUB_VARIABLE.findall(text) if not n.startswith("!")}
                found |= names - set(variables)
            found |= references(value)
    return found


def rendered(value: Any) -> str:
    """A property value as CloudFormation's change sets show it: text as it is, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)
