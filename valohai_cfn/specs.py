"""The templates' parameter specifications without building them, for the commands that need only those
(params check/init/import, link): they then answer without importing troposphere. The installation's, and
under "Pool" the worker pool template's.

`make template` writes them beside this module (parameter_specs.json, package data) with a fingerprint of
the sources the build reads. They are used only while that fingerprint matches the sources as they are: a
changed stack module falls back to building the template, so the answer is never older than the code.
tests/test_specs.py fails when the committed file is stale, as tests/test_build.py does for templates/.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent
SPECS_FILE = PACKAGE / "parameter_specs.json"
# Everything building the template reads (tests/test_specs.py checks that the build imports nothing else).
SOURCES = ("__init__.py", "template.py", "stack", "userdata", "render.py")
SOURCE_SUFFIXES = (".py", ".sh", ".config")
INTERFACE = "AWS::CloudFormation::Interface"
POOL = "Pool"


def source_fingerprint() -> str:
    """SHA-256 (hex) of the build's source files: their paths relative to the package, and their bytes."""
    digest = hashlib.sha256()
    for path in sorted(_source_files(), key=lambda p: p.relative_to(PACKAGE).as_posix()):
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _source_files() -> list[Path]:
    found = []
    for name in SOURCES:
        path = PACKAGE / name
        candidates = path.rglob("*") if path.is_dir() else [path]
        found += [p for p in candidates if p.is_file() and p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts]
    return found


def from_template(template: dict[str, Any]) -> dict[str, Any]:
    """What the specs file holds, taken from a template document: its Parameters (in the template's order),
    their labels from the Interface metadata, and how much of CloudFormation's quotas it uses per worker type
    (params.Footprint)."""
    import dataclasses

    from valohai_cfn.params import template_footprint

    footprint = template_footprint(template)
    return {
        "Parameters": template["Parameters"],
        "ParameterLabels": template.get("Metadata", {}).get(INTERFACE, {}).get("ParameterLabels", {}),
        "Footprint": dataclasses.asdict(footprint) if footprint else None,
    }


def _built() -> dict[str, Any]:
    from valohai_cfn.render import template_dict
    from valohai_cfn.template import build_pool_template, build_template

    return {**from_template(template_dict(build_template())), POOL: from_template(template_dict(build_pool_template()))}


def specs_text() -> str:
    """The specs file's text for the code as it is now (builds the template)."""
    return json.dumps({"fingerprint": source_fingerprint(), **_built()}, indent=1, ensure_ascii=False) + "\n"


@functools.cache
def _specs() -> dict[str, Any]:
    try:
        stored = json.loads(SPECS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    if stored.get("fingerprint") == source_fingerprint():
        return stored
    return _built()


def _of(pool: bool) -> dict[str, Any]:
    return _specs()[POOL] if pool else _specs()


def parameters(*, pool: bool = False) -> dict[str, dict]:
    """The template's (the worker pool template's) Parameters section: name -> specification (Type, Default,
    AllowedValues...), in the order the template declares them, exactly as a fresh build has them."""
    return _of(pool)["Parameters"]


def parameter_labels(*, pool: bool = False) -> dict[str, dict]:
    """The Interface metadata's ParameterLabels: name -> {"default": label}."""
    return _of(pool)["ParameterLabels"]


def footprint() -> Any:
    """The template's params.Footprint: CloudFormation's quotas it uses per worker type (None without worker lists)."""
    from valohai_cfn.params import Footprint

    stored = _specs().get("Footprint")
    return Footprint(**stored) if stored else None


def main() -> None:
    """`python -m valohai_cfn.specs`: write the specs file for the code as it is (make template runs it)."""
    from valohai_cfn.files import write_atomically

    write_atomically(SPECS_FILE, specs_text())
    print(f"wrote {SPECS_FILE}")


if __name__ == "__main__":
    main()
