"""valohai_cfn: a self-hosted Valohai installation as one CloudFormation template."""

from valohai_cfn.template import build_template

__all__ = ["build_template"]
