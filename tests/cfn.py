"""Test helpers that read a rendered CloudFormation template the way CloudFormation does.

`resolve(template, parameters)` evaluates Conditions and Fn::If for given parameter values and
drops the resources whose Condition is false, so condition tests run on the rendered JSON itself.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valohai_cfn.language_extensions import expand

NO_VALUE = object()
# The worker types the `template` fixture expands the loops for.
SAMPLE_WORKERS = {"WorkerInstanceTypes": "t3.medium,c5.xlarge", "WorkerSpotInstanceTypes": "g4dn.xlarge"}


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
            kind = template["Parameters"].get(arg, {}).get("Type", "")
            return (
                [v.strip() for v in values[arg].split(",")] if kind.startswith(("List<", "CommaDelim")) else values[arg]
            )
        if fn == "Fn::Join":
            separator, items = arg
            joined = _evaluate_condition(items, template, values, memo)
            return separator.join(joined if isinstance(joined, list) else [joined])
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
    """The template as CloudFormation would see it for these parameter values (defaults otherwise): its
    loops expanded (the transform), its conditions evaluated, the resources and outputs they exclude gone."""
    values = parameter_values(template, overrides or {})
    template = expand(template, {k: v for k, v in values.items() if v is not None})
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
    """Every statement a policy may have: one behind a Fn::If (the registered worker pools') counts."""
    for where, document in policy_documents(template):
        for statement in document["Statement"]:
            if "Fn::If" in statement:
                yield from ((where, s) for s in statement["Fn::If"][1:] if s != {"Ref": "AWS::NoValue"})
            else:
                yield where, statement


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


REPO = Path(__file__).resolve().parent.parent


# -- evaluating intrinsic functions, as CloudFormation would for given parameter values ------------------

PSEUDO = {"AWS::Region": "eu-west-1", "AWS::AccountId": "111111111111", "AWS::Partition": "aws", "AWS::StackName": "vh"}
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


@dataclass
class Evaluator:
    """Evaluates a resolved template's intrinsic functions to plain values. Refs to resources and GetAtts
    take their values from `attributes` ("Logical" or "Logical.Attribute"), or stay visible as <name>."""

    template: dict
    values: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)

    def parameter(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        spec = self.template["Parameters"].get(name)
        if spec is None:
            return self.attributes.get(name, f"<{name}>")
        value = self.values[name]
        return (
            [item.strip() for item in value.split(",")]
            if spec["Type"].startswith(("List<", "CommaDelimited"))
            else value
        )

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def one(match: re.Match) -> str:
            name = match.group(1)
            if name in variables:  # evaluated when used: the settings' maps hold every setting's value
                return str(self(variables[name]))
            if "." in name and name.split(".")[0] not in self.template["Parameters"]:
                return self.attributes.get(name, f"<{name}>")
            return str(self.parameter(name))

        return _SUB_VARIABLE.sub(one, text)

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Ref", "Fn::")):
            return {k: self(v) for k, v in node.items()}
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return self.parameter(arg)
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            return self._sub(text, variables)
        if fn == "Fn::Join":
            separator, items = arg
            flat: list[str] = []
            for item in self(items):
                flat += item if isinstance(item, list) else [item]
            return separator.join(str(i) for i in flat)
        if fn == "Fn::GetAtt":
            return self.attributes.get(".".join(arg), f"<{'.'.join(arg)}>")
        if fn == "Fn::FindInMap":
            mapping, first, second = self(arg)
            return self.template["Mappings"][mapping][first][second]
        if fn == "Fn::Base64":
            return self(arg)
        raise ValueError(f"not evaluated here: {fn}")


def _references(node: Any, resources: dict) -> set[str]:
    """The resources a node refers to: Ref, Fn::GetAtt, and ${Name} or ${Name.Attribute} in Fn::Sub."""
    found: set[str] = set()
    for item in walk(node):
        if not isinstance(item, dict) or len(item) != 1:
            continue
        ((fn, arg),) = item.items()
        if fn == "Ref" and arg in resources:
            found.add(arg)
        elif fn == "Fn::GetAtt":
            found.add(arg[0])
        elif fn == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            found |= {name.split(".")[0] for name in _SUB_VARIABLE.findall(text)} & set(resources)
    return found


def dependencies(template: dict, name: str, *, direct: bool = False) -> set[str]:
    """What a resource waits for in CloudFormation's graph (references and DependsOn), or only its direct ones."""
    resources = template["Resources"]
    resource = resources[name]
    direct_ones = _references(resource.get("Properties", {}), resources) | set(as_list(resource.get("DependsOn", [])))
    if direct:
        return direct_ones
    every = set(direct_ones)
    for dependency in direct_ones:
        every |= dependencies(template, dependency)
    return every
