"""The `valohai-cfn` command line: one module per group of commands, each parsing options and calling the
library (template: build, lint, diagram; params; stack: preflight, deploy, plan, execute, diff, status,
outputs, drift, delete; publish: publish, link; local: local-aws). What is shown is console.py's."""

from __future__ import annotations

import gc

import click

from valohai_cfn.cli import local, params, pool, publish, stack, template
from valohai_cfn.cli.common import ValohaiCfnGroup


@click.group(cls=ValohaiCfnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="valohai-cfn")
def cli() -> None:
    """Build, check and deploy a self-hosted Valohai installation as one CloudFormation template.

    Start with `valohai-cfn build` (writes templates/) and `valohai-cfn lint`; `valohai-cfn params init`
    writes a parameter file; `valohai-cfn deploy` makes the installation.

    Exit codes: 0 success, 1 failed or refused, 2 bad input (nothing was called or changed), 3 changes
    found (plan/diff --exit-code) or drift found, 130 interrupted (a stack operation goes on in AWS).
    """


for module in (template, params, stack, pool, publish, local):
    for command in module.COMMANDS:
        cli.add_command(command)


def main() -> None:
    from valohai_cfn.cli import common

    common.OWNS_PROCESS = True
    try:
        cli(prog_name="valohai-cfn")
    finally:
        # The process ends here. Python's last act would be a full garbage collection over every object the
        # command made and imported (tens of milliseconds: a fifth of a build); frozen, they are left to the
        # exit. Files are closed and flushed before this (write_atomically), never by a finalizer.
        gc.freeze()
