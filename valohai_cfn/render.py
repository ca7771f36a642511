"""Deterministic JSON and YAML renderings of the template.

Keys are sorted and nothing depends on dict or set order, so building twice gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from troposphere import Template

from valohai_cfn.files import write_atomically
from valohai_cfn.language_extensions import expand
from valohai_cfn.stack.policy import stack_policy

TEMPLATE_NAME = "valohai-self-hosted"
FORMATS = ("json", "yaml")
STACK_POLICY_NAME = "stack-policy.json"
# What CreateStack/CreateChangeSet accept as TemplateBody; larger templates must go through S3.
TEMPLATE_BODY_LIMIT = 51_200


def template_dict(t: Template) -> dict[str, Any]:
    """The template as plain JSON types, the one form both renderings are made from."""
    return json.loads(json.dumps(t.to_dict()))


def render_json(t: Template) -> str:
    # Minified: the JSON is for machines, and only so does it stay under the TemplateBody limit, so that
    # `aws cloudformation deploy --template-file` works without an S3 bucket. The YAML is the one to read.
    return json.dumps(template_dict(t), separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n"


# A mapping or list whose one-line form is at most this long is written on one line, wrapped at LINE_WIDTH
# ({Ref: X}, [A, B.C], the tags of a resource): the YAML stays readable and under the TemplateBody limit.
FLOW_LENGTH = 300
LINE_WIDTH = 1000


class _TemplateDumper(yaml.SafeDumper):
    """Block style for the structure, flow style for small subtrees and scalar lists, literal blocks for
    multi-line text, keys sorted, no aliases (CloudFormation refuses them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _one_line_length(data: Any) -> int:
    return len(yaml.dump(data, Dumper=_FlowDumper, width=10**6).strip())


class _FlowDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _flow(data: dict | list) -> bool:
    values = data.values() if isinstance(data, dict) else data
    if "\n" in json.dumps(data):  # multi-line text keeps its literal block
        return False
    scalars = all(not isinstance(v, (dict, list)) for v in values)
    return (scalars and isinstance(data, list)) or _one_line_length(data) <= FLOW_LENGTH


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", sorted(data.items()), flow_style=_flow(data))


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_flow(data))


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_TemplateDumper.add_representer(dict, _represent_dict)
_TemplateDumper.add_representer(list, _represent_list)
_TemplateDumper.add_representer(str, _represent_str)
_FlowDumper.add_representer(
    dict, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", sorted(data.items()), flow_style=True)
)
_FlowDumper.add_representer(list, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


def render_yaml(t: Template) -> str:
    # Long form (Fn::GetAtt: [A, B.C]) rather than !GetAtt A.B.C, which some tools misread; keys sorted.
    return yaml.dump(template_dict(t), Dumper=_TemplateDumper, width=LINE_WIDTH, allow_unicode=True, sort_keys=False)


RENDERERS = {"json": render_json, "yaml": render_yaml}


def render_processed(t: Template, parameters: dict[str, str]) -> str:
    """The template as CloudFormation processes it for these parameter values: the transform's loops expanded
    (one worker group per type...). For scanners and reviewers that do not run the transform themselves."""
    return json.dumps(expand(template_dict(t), parameters), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_templates(
    t: Template, output_dir: Path, formats: tuple[str, ...] = FORMATS, processed_for: dict[str, str] | None = None
) -> list[Path]:
    """Write the template in each format, and its stack policy; returns the paths written. With
    `processed_for`, also the template as processed for those parameter values."""
    files = {f"{TEMPLATE_NAME}.{fmt}": RENDERERS[fmt](t) for fmt in formats}
    files[STACK_POLICY_NAME] = stack_policy(t.to_dict())
    if processed_for is not None:
        files[f"{TEMPLATE_NAME}.processed.json"] = render_processed(t, processed_for)
    written = []
    for name, text in files.items():
        path = output_dir / name
        write_atomically(path, text)
        written.append(path)
    return written
