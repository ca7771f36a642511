"""The boot scripts as real files (shellcheck-able, tested by running them), and the form the template
carries them in."""

from __future__ import annotations

from importlib.resources import files


def read(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def without_comments(script: str) -> str:
    """The script without comment lines and blank lines (the shebang stays): the template carries this
    form, to stay under CloudFormation's 51,200-byte TemplateBody limit. Comments after code stay."""
    first, *rest = script.splitlines(keepends=True)
    return first + "".join(line for line in rest if line.strip() and not line.lstrip().startswith("#"))
