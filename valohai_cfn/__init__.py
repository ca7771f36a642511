"""valohai_cfn: a self-hosted Valohai installation as one CloudFormation template."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from valohai_cfn.template import build_template

__all__ = ["build_template"]


def __getattr__(name: str) -> Any:
    # Imported on first use (PEP 562): the package's commands that build no template (status, delete...)
    # then never import troposphere.
    if name == "build_template":
        from valohai_cfn.template import build_template

        return build_template
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
