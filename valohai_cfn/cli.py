"""The `valohai-cfn` command line.

Heavy imports (cfn-lint, boto3) happen inside the commands that need them, so `build` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from valohai_cfn.render import FORMATS, TEMPLATE_NAME

DEFAULT_TEMPLATE_DIR = Path("templates")


class ValohaiCfnGroup(click.Group):
    """A click group whose errors are one line on stderr and an exit code, never a traceback or usage dump."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
            click.echo(f"Error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=ValohaiCfnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="valohai-cfn")
def cli() -> None:
    """Build, check and deploy a self-hosted Valohai installation as one CloudFormation template.

    Start with `valohai-cfn build` (writes templates/) and `valohai-cfn lint`.
    """


@cli.command()
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_TEMPLATE_DIR,
    show_default=True,
    help="Directory to write the template files to.",
)
@click.option(
    "-f",
    "--format",
    "formats",
    type=click.Choice([*FORMATS, "all"]),
    default="all",
    show_default=True,
    help="Which rendering to write.",
)
def build(output_dir: Path, formats: str) -> None:
    """Build the template and write it as JSON and YAML (no AWS call)."""
    from valohai_cfn.render import write_templates
    from valohai_cfn.template import build_template

    chosen = FORMATS if formats == "all" else (formats,)
    try:
        written = write_templates(build_template(), output_dir, chosen)
    except OSError as e:
        raise click.ClickException(f"cannot write to {output_dir}: {e.strerror or e}") from e
    for path in written:
        click.echo(f"wrote {path} ({path.stat().st_size:,} bytes)")


@cli.command()
@click.option(
    "-r",
    "--region",
    "regions",
    multiple=True,
    default=("us-east-1", "eu-west-1", "ap-southeast-2"),
    show_default=True,
    help="Region to check against; repeat for several.",
)
@click.option(
    "-t",
    "--template",
    "template_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Lint this file instead of a fresh build.",
)
def lint(regions: tuple[str, ...], template_path: Path | None) -> None:
    """Run cfn-lint (informational rules included) on the template; exit 1 on any finding."""
    from valohai_cfn.lint import format_matches, lint_path, lint_text
    from valohai_cfn.render import render_json
    from valohai_cfn.template import build_template

    if template_path:
        matches = lint_path(template_path, regions)
    else:
        label = str(DEFAULT_TEMPLATE_DIR / f"{TEMPLATE_NAME}.json")
        matches = lint_text(render_json(build_template()), regions, filename=label)
    if matches:
        click.echo(format_matches(matches))
        raise click.ClickException(f"cfn-lint: {len(matches)} finding(s)")
    click.echo(f"cfn-lint: no findings ({', '.join(regions)})")


def main() -> None:
    cli(prog_name="valohai-cfn")
