"""The `valohai-cfn` command line: one module per group of commands, each parsing options and calling the
library (template: build, lint, diagram; params; stack: preflight, deploy, plan, execute, diff, status,
outputs, drift, delete; pool; publish: publish, link; local: local-aws). What is shown is console.py's.

A command's module is imported only when that command runs (click's lazily loaded subcommands): `build`
does not pay for the AWS commands' imports, nor `status` for the template's.
"""

from __future__ import annotations

import gc
import importlib

import click

from valohai_cfn.cli.common import ValohaiCfnGroup

# Each command's name, and the module of valohai_cfn.cli and the attribute that define it (each module lists
# its own in COMMANDS; a test checks the two agree).
LAZY_COMMANDS = {
    "build": ("template", "build"),
    "lint": ("template", "lint"),
    "diagram": ("template", "diagram_command"),
    "params": ("params", "params_group"),
    "preflight": ("stack", "preflight_command"),
    "deploy": ("stack", "deploy_command"),
    "plan": ("stack", "plan_command"),
    "execute": ("stack", "execute_command"),
    "diff": ("stack", "diff_command"),
    "status": ("stack", "status_command"),
    "outputs": ("stack", "outputs_command"),
    "drift": ("stack", "drift_command"),
    "delete": ("stack", "delete_command"),
    "pool": ("pool", "pool_group"),
    "publish": ("publish", "publish_command"),
    "link": ("publish", "link_command"),
    "local-aws": ("local", "local_aws_command"),
}


class LazyGroup(ValohaiCfnGroup):
    """The group whose commands are imported by name when asked for (click's "Lazily Loading Subcommands")."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(LAZY_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in LAZY_COMMANDS:
            return None
        module, attribute = LAZY_COMMANDS[cmd_name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as e:
            # click suggests close names from the commands it holds, which a lazy group leaves empty.
            raise click.exceptions.NoSuchCommand(e.command_name, possibilities=LAZY_COMMANDS, ctx=ctx) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="valohai-cfn")
def cli() -> None:
    """Build, check and deploy a self-hosted Valohai installation as one CloudFormation template.

    Start with `valohai-cfn build` (writes templates/) and `valohai-cfn lint`; `valohai-cfn params init`
    writes a parameter file; `valohai-cfn deploy` makes the installation.

    Exit codes: 0 success, 1 failed or refused, 2 bad input (nothing was called or changed), 3 changes
    found (plan/diff --exit-code) or drift found, 130 interrupted (a stack operation goes on in AWS).
    """


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
