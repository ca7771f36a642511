"""params check, import and init: parameter files, offline (no AWS call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from valohai_cfn.cli import common
from valohai_cfn.images import IMAGE_NAMES, LATEST


def _specs(*, pool: bool = False) -> dict[str, dict]:
    # The build's own parameters, without building (troposphere is slow to import): see valohai_cfn/specs.py.
    from valohai_cfn.specs import parameters

    if pool:  # what pool deploy takes from the installation is not the file's
        from valohai_cfn.cli.pool import given_specs

        return given_specs(parameters(pool=True))
    return parameters()


# The SSH template's own parameter (the installation has it only as an output): a file with it and none of the
# installation's parameters is for that template.
SSH_PARAMETER = "AppSecurityGroupId"

pool_option = click.option(
    "--pool",
    is_flag=True,
    help="A worker pool's parameter file (the pool template's parameters; pool deploy adds the installation's).",
)


def _write_new(path: Path, text: str, *, force: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Write the file whole; never over an existing file without --force, and never over an input."""
    if any(path.resolve() == i.resolve() for i in inputs):
        raise common.BadInput(f"{path}: is the file being read; write to another file")
    if path.exists() and not force:
        raise common.BadInput(f"{path}: exists; give --force to overwrite it")
    from valohai_cfn.files import write_atomically

    try:
        write_atomically(path, text)
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror or e}") from None


force_option = click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")


@click.group("params")
def params_group() -> None:
    """Write, import and check parameter files (offline: no AWS call)."""


@params_group.command("check")
@click.argument("params_file", type=click.Path(path_type=Path))
@pool_option
@click.option(
    "--template",
    "template_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Check against this template file's parameters instead (e.g. templates/valohai-ssh.yaml for SSH to the "
    "app instance); cfn-lint checks it first.",
)
def params_check(params_file: Path, pool: bool, template_path: Path | None) -> None:
    """Check a parameter file against the template and AWS's rules: every problem, one line each; exit 2 on any.
    Besides the template's constraints: the worker types (botocore's and cfn-lint's lists), CloudFormation's
    quotas on what they make (500 resources, 200 outputs, 1 MB; the installation's template), and the stack tags
    a {"Parameters": …} file carries. --pool: the worker pool template; a file with a PoolName is taken for one.
    --template: another template file; a file with AppSecurityGroupId and none of the installation's parameters
    is taken for the SSH template's."""
    from valohai_cfn import specs
    from valohai_cfn.params import load_parameters

    if template_path and pool:
        raise common.BadInput("--template and --pool each choose the template to check against: give one")
    given = common.guarded(lambda: load_parameters(params_file))
    source = common.file_source(template_path, None) if template_path else None
    if source is None and not pool and SSH_PARAMETER in given and not set(given) & set(_specs()):
        # A file with the SSH template's own parameter and none of the installation's is the SSH template's (a
        # misspelt key in it is then named as such); in an installation file, AppSecurityGroupId is misplaced.
        source = common.built_ssh_source()
    if source is not None:
        read = common.checked_parameter_file(params_file, source.specs, footprint=source.footprint)
        return _say_valid(params_file, read, source.label)
    pool = pool or "PoolName" in given
    footprint = None if pool else specs.footprint()
    read = common.checked_parameter_file(params_file, _specs(pool=pool), footprint=footprint)
    _say_valid(params_file, read)


def _say_valid(params_file: Path, read: Any, template: str | None = None) -> None:
    from valohai_cfn.params import previous_values

    kept = previous_values(read.values)
    tags = f", {len(read.tags)} stack tags" if read.tags else ""
    previous = f" ({', '.join(kept)}: UsePreviousValue, the deployed stack's)" if kept else ""
    against = f" for {template}" if template else ""
    click.echo(f"{params_file}: {len(read.values)} parameters{previous}{tags}, all valid{against}")


@params_group.command("import")
@click.argument("config_file", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Parameter file to write (CloudFormation list format).",
)
@force_option
def params_import(config_file: Path, output: Path, force: bool) -> None:
    """Import the original CDK app's config.yaml (valohai-cdk-self-hosted) as a parameter file."""
    from valohai_cfn.params import dump_parameters, import_cdk_config

    parameters = common.guarded(lambda: import_cdk_config(config_file))
    _write_new(output, dump_parameters(parameters), force=force, inputs=(config_file,))
    missing = [n for n, spec in _specs().items() if "Default" not in spec and n not in parameters]
    click.echo(f"wrote {output} ({len(parameters)} parameters)")
    if missing:
        click.echo(f"still required before deploying: {', '.join(missing)} (add them, then `valohai-cfn params check`)")


def _prompt_value(name: str, spec: dict, label: str, default: str | None) -> str:
    from valohai_cfn.params import check_value

    click.echo(f"\n{label} ({name}): {spec['Description']}")
    if default == LATEST:
        click.echo(f"  {LATEST}: the newest image Valohai shares with the account, found in its region at deploy")
    while True:
        value = click.prompt(name, default=default, show_default=True)
        problems = check_value(name, value, spec)
        if not problems:
            return value
        for problem in problems:
            click.echo(f"  {problem}")


@params_group.command("init")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Parameter file to write, e.g. params/prod.json.",
)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A parameter value; repeat for several.")
@force_option
@pool_option
def params_init(output: Path, settings: tuple[str, ...], force: bool, pool: bool) -> None:
    """Write a parameter file with every template parameter.

    In a terminal it asks for each required parameter not given with --set, showing its label and
    description; otherwise every required parameter must come with --set. RoiAmiId and WorkerAmiId default
    to `latest`: deploy, plan, preflight, publish and link resolve it to the newest image Valohai shares
    with the account in the stack's region.

    --pool: a worker pool's file, without the installation's master role and queue URL (pool deploy takes
    them from the installation).
    """
    from valohai_cfn.params import check_parameters, dump_parameters
    from valohai_cfn.specs import parameter_labels

    specs = _specs(pool=pool)
    if pool:  # nothing to write of what pool deploy sets from the installation
        from valohai_cfn.pools import FROM_INSTALLATION

        specs = {name: spec for name, spec in specs.items() if name not in FROM_INSTALLATION}
    labels = parameter_labels(pool=pool)
    given = common.key_values(settings, "--set")
    unknown = [p for p in check_parameters(specs, given) if p.parameter not in specs]
    if unknown:
        raise click.BadParameter("; ".join(str(p) for p in unknown), param_hint="--set")
    if output.exists() and not force:  # before any question is asked
        raise common.BadInput(f"{output}: exists; give --force to overwrite it")
    values = {}
    for name, spec in specs.items():
        if name in given:
            values[name] = given[name]
        elif "Default" in spec:
            values[name] = spec["Default"]
        elif common.interactive():
            values[name] = _prompt_value(name, spec, labels[name]["default"], LATEST if name in IMAGE_NAMES else None)
        elif name in IMAGE_NAMES:
            values[name] = LATEST
    problems = check_parameters(specs, values)
    for problem in problems:
        click.echo(f"{problem}", err=True)
    if problems:
        raise common.ProblemsFound(f"not written: {len(problems)} problem(s); give values with --set KEY=VALUE")
    _write_new(output, dump_parameters(values), force=force)
    click.echo(f"wrote {output} ({len(values)} parameters)")


COMMANDS = (params_group,)
