"""An oracle for the review, written apart from valohai_cfn.review and valohai_cfn.intrinsics: which resources
and outputs a parameter change changes, from the two templates as CloudFormation processes them (tests/cfn.py's
resolve and Evaluator) and the resource schemas cfn-lint ships.

CloudFormation's rules it follows: a resource whose evaluated properties differ is modified; a change to one of
its type's createOnlyProperties replaces it (conditionalCreateOnlyProperties: may replace it); a resource added
or (maybe) replaced gets a new physical id and attributes, so every property and output that refers to it
changes when deployed, which may replace the resource holding that property in turn. An SSM parameter's Value
attribute is its Value property (known before the deploy); every other reference is only known once deployed.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from cfn import Evaluator, parameter_values, resolve
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

# What the Evaluator leaves of a Ref or Fn::GetAtt it has no value for: <Name> or <Name.Attribute>.
UNKNOWN = re.compile(r"<([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?>")


@functools.cache
def create_only(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema

    def top(key: str) -> frozenset[str]:
        return frozenset(p.split("/")[2] for p in schema.get(key, []))

    return top("createOnlyProperties"), top("conditionalCreateOnlyProperties")


def evaluated(template: dict, overrides: dict[str, str]) -> tuple[dict[str, tuple[str, dict]], dict[str, Any]]:
    """(type, evaluated properties) of each resource and the evaluated value of each output."""
    resolved = resolve(template, overrides)
    values = parameter_values(template, overrides)
    plain = Evaluator(resolved, values)
    attributes = {
        f"{name}.Value": plain(r["Properties"]["Value"])
        for name, r in resolved["Resources"].items()
        if r["Type"] == "AWS::SSM::Parameter"
    }
    evaluate = Evaluator(resolved, values, attributes)
    resources = {n: (r["Type"], evaluate(r.get("Properties", {}))) for n, r in resolved["Resources"].items()}
    outputs = {n: evaluate(o["Value"]) for n, o in resolved.get("Outputs", {}).items()}
    return resources, outputs


def unknowns(value: Any, names: set[str]) -> set[str]:
    """The resources (among names) whose id or attribute the value is built from."""
    return {m for m in UNKNOWN.findall(json.dumps(value)) if m in names}


def expected_review(template: dict, old: dict[str, str], new: dict[str, str]) -> tuple[set[str], set[str]]:
    """The resources and the outputs a change of parameter values from `old` to `new` changes."""
    before, old_outputs = evaluated(template, old)
    after, new_outputs = evaluated(template, new)
    both = set(before) & set(after)
    changed = {
        n: {k for k in set(before[n][1]) | set(after[n][1]) if before[n][1].get(k) != after[n][1].get(k)} for n in both
    }
    while True:
        renewed = set(after) - set(before)
        for n, keys in changed.items():
            always, conditionally = create_only(after[n][0])
            if keys & (always | conditionally):
                renewed.add(n)
        grown = False
        for n in both:
            for key, value in after[n][1].items():
                if key not in changed[n] and unknowns(value, set(after)) & renewed:
                    changed[n].add(key)
                    grown = True
        if not grown:
            break
    resources = (set(before) ^ set(after)) | {n for n, keys in changed.items() if keys}
    outputs = set(old_outputs) ^ set(new_outputs)
    outputs |= {
        n
        for n in set(old_outputs) & set(new_outputs)
        if old_outputs[n] != new_outputs[n] or unknowns(new_outputs[n], set(after)) & renewed
    }
    return resources, outputs
