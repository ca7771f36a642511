"""cfn-lint through its Python API, in-process, with the informational (I) rules included."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from cfnlint.api import ManualArgs, lint, lint_file
from cfnlint.formatters import Formatter
from cfnlint.match import Match

DEFAULT_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


def _config(regions: Sequence[str]) -> ManualArgs:
    return ManualArgs(regions=list(regions), include_checks=["I"])


def lint_text(template_text: str, regions: Sequence[str] = DEFAULT_REGIONS, filename: str = "template") -> list[Match]:
    """Lint a rendered template; `filename` labels the findings as cfn-lint would label a file."""
    return [dataclasses.replace(m, filename=filename) for m in lint(template_text, config=_config(regions))]


def lint_path(path: Path, regions: Sequence[str] = DEFAULT_REGIONS) -> list[Match]:
    return lint_file(path, config=_config(regions))


def format_matches(matches: list[Match]) -> str:
    """The findings in cfn-lint's own default output format."""
    return Formatter().print_matches(matches, None, None) or ""
