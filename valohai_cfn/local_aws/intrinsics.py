"""CloudFormation's intrinsic functions, evaluated as CloudFormation does for a stack: Ref, Fn::GetAtt,
Fn::Sub, Fn::Join, Fn::If, Fn::Select, Fn::Split, Fn::FindInMap, Fn::Base64, Fn::GetAZs and the
conditions' Fn::Equals / Fn::And / Fn::Or / Fn::Not; and dynamic references ({{resolve:ssm:…}},
{{resolve:secretsmanager:…}}) when properties go to a service.

moto's own evaluation (parsing.clean_json) turns an AWS::NoValue in a Fn::Join list into the text "None",
evaluates every variable of a Fn::Sub map whether the text uses it or not, and leaves dynamic references
as literal text; this one does what CloudFormation documents instead. Each function's arguments are
checked as CloudFormation's intrinsic function reference describes them (a literal list of the right
length, a string delimiter, a whole-number index within the list, a list of strings to join), and
refused in CloudFormation's words ("Template error: …"); AWS::NoValue where a function needs a value
(a Fn::Sub variable, the text to split) is refused as not supported, CloudFormation's handling of it
there not being known.

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

    def condition(self, name: str) -> bool: ...  # raises KeyError when there is none

    def mapping(self, name: str) -> dict[str, Any]: ...  # raises KeyError when there is none

    @property
    def region(self) -> str: ...

    def availability_zones(self, region: str) -> list[str]: ...

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


# CloudFormation's refusals of a function's arguments, in its words as users quote them (and as Eucalyptus's
# reimplementation of CloudFormation has them); not checked against AWS from here. Where CloudFormation's
# handling is not known (AWS::NoValue where a function needs a value), the local AWS refuses as
# "not supported by the local AWS" instead of guessing.
JOIN_ARGUMENTS = (
    "Template error: every Fn::Join object requires two parameters, (1) a string delimiter and (2) a list of "
    "strings to be joined or a function that returns a list of strings (such as Fn::GetAZs) to be joined."
)
SELECT_ARGUMENTS = "Template error: Fn::Select requires a list argument with two elements: an integer index and a list"
SELECT_INDEX = "Template error: Fn::Select requires a list argument with a valid index value as its first element"
SPLIT_ARGUMENTS = (
    "Template error: every Fn::Split object requires two parameters, (1) a string delimiter and (2) a string to be "
    "split or a function that returns a string to be split."
)
SUB_ARGUMENTS = (
    "Template error: One or more Fn::Sub intrinsic functions don't specify expected arguments. Specify a string as "
    "first argument, and an optional second argument to specify a mapping of values to replace in the string"
)
SUB_VALUE = (
    "Template error: every value of the context object of every Fn::Sub object must be a string or a function "
    "that returns a string"
)
GET_ATT_ARGUMENTS = (
    "Template error: every Fn::GetAtt object requires two non-empty parameters, the resource name and the resource "
    "attribute"
)
FIND_IN_MAP_ARGUMENTS = (
    "Template error: every Fn::FindInMap object requires three parameters, the map name, map key and the attribute "
    "for return value"
)
IF_ARGUMENTS = "Template error: Fn::If requires a list argument with three elements"
EQUALS_ARGUMENTS = "Template error: Fn::Equals requires a list argument with two elements"
NOT_ARGUMENTS = "Template error: Fn::Not requires a list argument with one element"
BASE64_VALUE = "Template error: every Fn::Base64 object must have a String-typed value."
GET_AZS_VALUE = "Template error: every Fn::GetAZs object must have a String-typed value."


def _refused(message: str) -> ValidationError:
    return ValidationError(message=message)


def _no_value(where: str) -> ValidationError:
    return ValidationError(message=f"not supported by the local AWS: AWS::NoValue as {where}")


def _text(value: Any, where: str, refusal: str | None = None) -> str:
    """A value where CloudFormation needs text: numbers and booleans as the template writes them, an
    Unresolved as its placeholder; a list, a map or AWS::NoValue refused."""
    if value is NO_VALUE:
        raise _no_value(where)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        raise _refused(refusal or f"Template error: {where} must resolve to a string, not {json.dumps(value)}")
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
    """The value of a template fragment: dicts and lists with what AWS::NoValue removes left out. Raises
    CloudFormation's ValidationError for arguments CloudFormation refuses."""
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


def _arguments(argument: Any, count: int, refusal: str) -> list[Any]:
    """A function's literal list of arguments (CloudFormation takes no function in its place)."""
    if not isinstance(argument, list) or len(argument) != count:
        raise _refused(refusal)
    return argument


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
    name, attribute = _arguments(argument, 2, GET_ATT_ARGUMENTS)
    attribute = evaluate(attribute, scope)  # the attribute's name may be a Ref
    if not (isinstance(name, str) and name and isinstance(attribute, str) and attribute):
        raise _refused(GET_ATT_ARGUMENTS)
    return scope.resource_attribute(name, attribute)


def _sub(argument: Any, scope: Scope) -> Any:
    if isinstance(argument, str):
        text, variables = argument, {}
    else:
        text, variables = _arguments(argument, 2, SUB_ARGUMENTS)
        if not isinstance(text, str) or not isinstance(variables, dict):
            raise _refused(SUB_ARGUMENTS)
    used: list[Any] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):  # ${!Literal} is the text ${Literal}
            return "${" + name[1:] + "}"
        if name in variables:  # evaluated only when used, as CloudFormation does
            value = evaluate(variables[name], scope)
            refusal = SUB_VALUE
        elif "." in name and not _is_parameter(scope, name):
            value = scope.resource_attribute(*name.split(".", 1))
            refusal = None
        else:
            value = _ref(name, scope)
            refusal = None
        used.append(value)
        return _text(value, f"the value of Fn::Sub variable {name}", refusal)

    return _maybe_unresolved(_SUB_VARIABLE.sub(one, text), used)


def _is_parameter(scope: Scope, name: str) -> bool:
    try:
        scope.parameter(name)
    except KeyError:
        return False
    return True


def _join(argument: Any, scope: Scope) -> Any:
    separator, items = _arguments(argument, 2, JOIN_ARGUMENTS)
    if not isinstance(separator, str):
        raise _refused(JOIN_ARGUMENTS)
    values = evaluate(items, scope)
    if isinstance(values, Unresolved):
        return values
    if not isinstance(values, list):
        raise _refused(JOIN_ARGUMENTS)
    # An AWS::NoValue item is left out (evaluate drops it); a list or map item is refused.
    return _maybe_unresolved(separator.join(_text(v, "an Fn::Join item", JOIN_ARGUMENTS) for v in values), values)


def _if(argument: Any, scope: Scope) -> Any:
    name, when_true, when_false = _arguments(argument, 3, IF_ARGUMENTS)
    if not isinstance(name, str):
        raise _refused(IF_ARGUMENTS)
    try:
        chosen = scope.condition(name)
    except KeyError:
        raise _refused(f"Template error: unresolved condition dependency {name} in Fn::If") from None
    return evaluate(when_true if chosen else when_false, scope)


def _index(value: Any) -> int:
    """Fn::Select's index: a whole number, or text of one."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not re.fullmatch(r"-?\d+", str(value)):
        raise _refused(SELECT_INDEX)
    return int(value)


def _select(argument: Any, scope: Scope) -> Any:
    index_node, items_node = _arguments(argument, 2, SELECT_ARGUMENTS)
    index = evaluate(index_node, scope)
    if isinstance(items_node, list):
        # "The list of objects to select from ... can't have null entries": CloudFormation's handling of an
        # AWS::NoValue entry is not known, so it is refused rather than dropped (which would shift the index).
        items = [evaluate(item, scope) for item in items_node]
        if any(item is NO_VALUE for item in items):
            raise _no_value("an entry of the list Fn::Select selects from")
    else:
        items = evaluate(items_node, scope)
    if isinstance(items, Unresolved) or isinstance(index, Unresolved):
        return Unresolved(f"{{{{Fn::Select {index}}}}}", _sources([items, index]))
    position = _index(index)
    if not isinstance(items, list):
        raise _refused(SELECT_ARGUMENTS)
    if not 0 <= position < len(items):
        raise _refused(f"Template error: Fn::Select cannot select nonexistent value at index {position}")
    return items[position]


def _split(argument: Any, scope: Scope) -> Any:
    separator, source = _arguments(argument, 2, SPLIT_ARGUMENTS)
    if not isinstance(separator, str) or not separator:
        raise _refused(SPLIT_ARGUMENTS)
    text = evaluate(source, scope)
    if isinstance(text, Unresolved):
        return text
    if text is NO_VALUE:
        raise _no_value("the text Fn::Split splits")
    if not isinstance(text, str):
        raise _refused(SPLIT_ARGUMENTS)
    return text.split(separator)


def _find_in_map(argument: Any, scope: Scope) -> Any:
    if isinstance(argument, list) and len(argument) == 4:
        raise ValidationError(message="not supported by the local AWS: Fn::FindInMap with a default value")
    keys = [evaluate(a, scope) for a in _arguments(argument, 3, FIND_IN_MAP_ARGUMENTS)]
    if any(isinstance(k, Unresolved) for k in keys):
        return Unresolved("{{Fn::FindInMap}}", _sources(keys))
    if any(k is NO_VALUE or isinstance(k, (list, dict)) for k in keys):
        raise _refused(FIND_IN_MAP_ARGUMENTS)
    mapping, first, second = (_text(k, "Fn::FindInMap") for k in keys)
    try:
        table = scope.mapping(mapping)
    except KeyError:
        raise _refused(
            f"Template error: Mapping named '{mapping}' is not present in the 'Mappings' section of template"
        ) from None
    try:
        return table[first][second]
    except (KeyError, TypeError):
        raise _refused(f"Template error: Unable to get mapping for {mapping}::{first}::{second}") from None


def _base64(argument: Any, scope: Scope) -> Any:
    value = evaluate(argument, scope)
    if isinstance(value, Unresolved):
        return Unresolved(f"{{{{Fn::Base64 {value.text}}}}}", value.sources)
    return base64.b64encode(_text(value, "the value of Fn::Base64", BASE64_VALUE).encode()).decode()


def _get_azs(argument: Any, scope: Scope) -> Any:
    region = evaluate(argument, scope)
    if isinstance(region, Unresolved):
        return region
    region = _text(region, "the region of Fn::GetAZs", GET_AZS_VALUE)
    return scope.availability_zones(region or scope.region)


def _equals(argument: Any, scope: Scope) -> bool:
    left, right = (evaluate(a, scope) for a in _arguments(argument, 2, EQUALS_ARGUMENTS))
    if isinstance(left, list) or isinstance(right, list):
        return left == right
    return _text(left, "a value Fn::Equals compares") == _text(right, "a value Fn::Equals compares")


def _conditions(name: str, argument: Any) -> list[Any]:
    if not isinstance(argument, list) or not 2 <= len(argument) <= 10:
        raise _refused(
            f"Template error: every {name} object requires a list of at least 2 and at most 10 boolean parameters."
        )
    return argument


def _and(argument: Any, scope: Scope) -> bool:
    return all(evaluate(a, scope) for a in _conditions("Fn::And", argument))


def _or(argument: Any, scope: Scope) -> bool:
    return any(evaluate(a, scope) for a in _conditions("Fn::Or", argument))


def _not(argument: Any, scope: Scope) -> bool:
    (condition,) = _arguments(argument, 1, NOT_ARGUMENTS)
    return not evaluate(condition, scope)


def _condition(argument: Any, scope: Scope) -> bool:
    try:
        return scope.condition(argument)
    except KeyError:
        raise _refused(f"Template format error: Unresolved condition dependency {argument}") from None


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


def dynamic_references(value: Any) -> list[tuple[str, str]]:
    """The (service, reference) of each {{resolve:…}} in an evaluated value's text (not in Unresolved text)."""
    if isinstance(value, str):
        return [(m.group(1), m.group(2)) for m in _DYNAMIC_REFERENCE.finditer(value)]
    if isinstance(value, list):
        return [r for v in value for r in dynamic_references(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in dynamic_references(v)]
    return []


def _sub_shaped(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], dict)


def references(node: Any) -> set[str]:
    """The names a fragment refers to: Ref, Fn::GetAtt, and ${Name} or ${Name.Attribute} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            # Malformed arguments are left to the function's own refusal when it is evaluated.
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt" and isinstance(value, (list, str)) and value:
                name = value[0] if isinstance(value, list) else value.split(".")[0]
                found |= {name} if isinstance(name, str) else set()
            elif key == "Fn::Sub":
                text, variables = value if _sub_shaped(value) else (value, {})
                if isinstance(text, str):
                    names = {n.split(".")[0] for n in _SUB_VARIABLE.findall(text) if not n.startswith("!")}
                    found |= names - set(variables)
            found |= references(value)
    return found


def rendered(value: Any) -> str:
    """A property value as CloudFormation's change sets show it: text as it is, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)
