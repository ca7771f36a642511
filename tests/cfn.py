"""Test helpers that read a rendered CloudFormation template the way CloudFormation does.

`resolve(template, parameters)` evaluates Conditions and Fn::If for given parameter values and
drops the resources whose Condition is false, so condition tests run on the rendered JSON itself.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NO_VALUE = object()


def parameter_values(template: dict, overrides: dict[str, str]) -> dict[str, Any]:
    values = {name: p.get("Default") for name, p in template["Parameters"].items()}
    values.update(overrides)
    return values


def _evaluate_condition(expr: Any, template: dict, values: dict, memo: dict[str, bool]) -> Any:
    if isinstance(expr, dict) and len(expr) == 1:
        ((fn, arg),) = expr.items()
        if fn == "Condition":
            return condition_value(arg, template, values, memo)
        if fn == "Ref":
            return values[arg]
        if fn == "Fn::Equals":
            left, right = (_evaluate_condition(a, template, values, memo) for a in arg)
            return left == right
        if fn == "Fn::Not":
            return not _evaluate_condition(arg[0], template, values, memo)
        if fn == "Fn::And":
            return all(_evaluate_condition(a, template, values, memo) for a in arg)
        if fn == "Fn::Or":
            return any(_evaluate_condition(a, template, values, memo) for a in arg)
        raise ValueError(f"unsupported in a condition: {fn}")
    return expr


def condition_value(name: str, template: dict, values: dict, memo: dict[str, bool] | None = None) -> bool:
    memo = {} if memo is None else memo
    if name not in memo:
        memo[name] = bool(_evaluate_condition(template["Conditions"][name], template, values, memo))
    return memo[name]


def _resolve_ifs(node: Any, conditions: dict[str, bool]) -> Any:
    if isinstance(node, dict):
        if len(node) == 1 and "Fn::If" in node:
            name, if_true, if_false = node["Fn::If"]
            return _resolve_ifs(if_true if conditions[name] else if_false, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        out = {k: _resolve_ifs(v, conditions) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}
    if isinstance(node, list):
        return [v for v in (_resolve_ifs(item, conditions) for item in node) if v is not NO_VALUE]
    return node


def resolve(template: dict, overrides: dict[str, str] | None = None) -> dict:
    """The template as CloudFormation would see it for these parameter values (defaults otherwise)."""
    values = parameter_values(template, overrides or {})
    memo: dict[str, bool] = {}
    conditions = {name: condition_value(name, template, values, memo) for name in template.get("Conditions", {})}
    resolved = copy.deepcopy(template)
    resolved["Resources"] = {
        name: r for name, r in resolved["Resources"].items() if conditions.get(r.get("Condition"), True)
    }
    resolved["Outputs"] = {
        name: o for name, o in resolved.get("Outputs", {}).items() if conditions.get(o.get("Condition"), True)
    }
    return _resolve_ifs(resolved, conditions)


def resources_of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def walk(node: Any) -> Iterator[Any]:
    """Every dict, list and scalar inside node, depth first."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def policy_documents(template: dict) -> Iterator[tuple[str, dict]]:
    """(where, document) for every IAM policy document in the template."""
    for name, r in template["Resources"].items():
        props = r.get("Properties", {})
        if "AssumeRolePolicyDocument" in props:
            yield f"{name} trust", props["AssumeRolePolicyDocument"]
        for policy in props.get("Policies", []):
            yield f"{name} {policy['PolicyName']}", policy["PolicyDocument"]
        if "PolicyDocument" in props:
            yield name, props["PolicyDocument"]


def statements(template: dict) -> Iterator[tuple[str, dict]]:
    for where, document in policy_documents(template):
        for statement in document["Statement"]:
            yield where, statement


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


REPO = Path(__file__).resolve().parent.parent
