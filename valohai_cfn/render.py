"""Deterministic JSON and YAML renderings of the template.

Keys are sorted and nothing depends on dict or set order, so building twice gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

from troposphere import Template

from valohai_cfn.stack.policy import stack_policy

TEMPLATE_NAME = "valohai-self-hosted"
FORMATS = ("json", "yaml")
STACK_POLICY_NAME = "stack-policy.json"
# What CreateStack/CreateChangeSet accept as TemplateBody; larger templates must go through S3.
TEMPLATE_BODY_LIMIT = 51_200


def render_json(t: Template) -> str:
    # indent=0: one key per line for readable diffs, while staying under the TemplateBody limit
    # so `aws cloudformation deploy` works without an S3 bucket. The YAML is the one to read.
    return json.dumps(t.to_dict(), indent=0, sort_keys=True, ensure_ascii=False) + "\n"


def render_yaml(t: Template) -> str:
    # Long form (Fn::GetAtt: [A, B.C]) rather than !GetAtt A.B.C, which some tools misread.
    return t.to_yaml(long_form=True)


RENDERERS = {"json": render_json, "yaml": render_yaml}


def write_templates(t: Template, output_dir: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write the template in each format, and its stack policy; returns the paths written."""
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {f"{TEMPLATE_NAME}.{fmt}": RENDERERS[fmt](t) for fmt in formats}
    files[STACK_POLICY_NAME] = stack_policy(t)
    written = []
    for name, text in files.items():
        path = output_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
