"""What CloudFormation's AWS::LanguageExtensions transform does with Fn::ForEach, for the places that
must see the template as CloudFormation will after it: the local AWS (moto runs no transforms) and
the checks that read the rendered template (one worker group per instance type).

Only what the template uses is implemented: Fn::ForEach in Resources, Outputs and Conditions, over a
literal list or a Ref to a CommaDelimitedList parameter, with ${Identifier} (the value as it is) and
&{Identifier} (the value without its non-alphanumeric characters, for logical ids) replaced in every
key and string of the fragment, and a Ref to the identifier replaced by the value, nested loops
included. Anything else is left as CloudFormation's to do.
"""

from __future__ import annotations

import re
from typing import Any

TRANSFORM = "AWS::LanguageExtensions"
FOR_EACH = "Fn::ForEach::"
LOOP_SECTIONS = ("Conditions", "Outputs", "Resources")


class TransformError(ValueError):
    """A loop CloudFormation's transform would refuse too; the message says which and why."""


def comma_delimited(value: str) -> list[str]:
    """A CommaDelimitedList parameter's items as CloudFormation splits them: each one space-trimmed."""
    return [item.strip() for item in value.split(",")]


def _collection(loop: str, collection: Any, parameters: dict[str, str]) -> list[str]:
    if isinstance(collection, list):
        return [str(item) for item in collection]
    if isinstance(collection, dict) and set(collection) == {"Ref"}:
        name = collection["Ref"]
        if name not in parameters:
            raise TransformError(f"{loop}: the collection names parameter {name}, which has no value")
        return comma_delimited(parameters[name])
    raise TransformError(f"{loop}: the collection must be a list or a Ref to a CommaDelimitedList parameter")


def _substitute(node: Any, identifier: str, value: str) -> Any:
    """The fragment with ${identifier} and &{identifier} replaced in every key and string, and a Ref to the
    identifier replaced by the value (a new fragment: the template's own is left as it is)."""
    replacements = (f"${{{identifier}}}", value), (f"&{{{identifier}}}", re.sub(r"[^A-Za-z0-9]", "", value))
    reference = {"Ref": identifier}

    def substituted(node: Any) -> Any:
        if isinstance(node, str):
            for placeholder, text in replacements:
                if placeholder in node:
                    node = node.replace(placeholder, text)
            return node
        if isinstance(node, list):
            return [substituted(item) for item in node]
        if isinstance(node, dict):
            if node == reference:
                return value
            return {substituted(k): substituted(v) for k, v in node.items()}
        return node

    return substituted(node)


def _expand_section(section: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    expanded: dict[str, Any] = {}
    for key, value in section.items():
        if not key.startswith(FOR_EACH):
            if key in expanded:
                raise TransformError(f"{key} is defined twice")
            expanded[key] = value
            continue
        identifier, collection, fragment = value
        for item in _collection(key, collection, parameters):
            for generated, body in _expand_section(_substitute(fragment, identifier, item), parameters).items():
                if generated in expanded:
                    raise TransformError(f"{key}: {generated} is generated twice (is {item!r} listed twice?)")
                expanded[generated] = body
    return expanded


def transforms(template: dict[str, Any]) -> list[str]:
    """The transforms a template names: CloudFormation takes one name or a list of them."""
    named = template.get("Transform", [])
    if isinstance(named, str):
        return [named]
    return [t for t in named if isinstance(t, str)] if isinstance(named, list) else []


def expand(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The template after the transform, for these parameter values (defaults fill the rest); the other
    transforms it names, if any, are left in its Transform."""
    named = transforms(template)
    if TRANSFORM not in named:
        return template
    values = {name: str(p["Default"]) for name, p in template.get("Parameters", {}).items() if "Default" in p}
    values.update(parameters)
    result = {k: v for k, v in template.items() if k != "Transform"}
    others = [t for t in named if t != TRANSFORM]
    if others:
        result["Transform"] = others
    for section in LOOP_SECTIONS:
        if section in template:
            result[section] = _expand_section(template[section], values)
    return result
