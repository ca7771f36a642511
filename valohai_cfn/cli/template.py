"""build, lint and diagram: the template itself, offline."""

from __future__ import annotations

from pathlib import Path

import click

from valohai_cfn.cli import common
from valohai_cfn.render import FORMATS, POOL_TEMPLATE_NAME, SSH_TEMPLATE_NAME, TEMPLATE_NAME

DEFAULT_TEMPLATE_DIR = Path("templates")
# What a fresh build's findings are labelled with: it is not a file (yet).
BUILT_LABEL = f"{TEMPLATE_NAME}.json (fresh build, not a file)"
BUILT_POOL_LABEL = f"{POOL_TEMPLATE_NAME}.json (fresh build, not a file)"
BUILT_SSH_LABEL = f"{SSH_TEMPLATE_NAME}.json (fresh build, not a file)"


@click.command()
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_TEMPLATE_DIR,
    show_default=True,
    help="Directory to write the template files to (made if missing), relative to where you run the command.",
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
@click.option(
    "--processed-for",
    "processed_for",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PARAMS",
    help="Also write the template as CloudFormation processes it for this parameter file (its loops expanded: "
    "one worker group per type), for scanners and reviews.",
)
@click.option(
    "--pool-processed-for",
    "pool_processed_for",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PARAMS",
    help="The same for the worker pool's template and a pool's parameter file.",
)
def build(output_dir: Path, formats: str, processed_for: Path | None, pool_processed_for: Path | None) -> None:
    """Build the templates — the installation, the worker pool and SSH to the app instance — and write each as
    JSON and YAML, with the installation's stack policy (no AWS call).

    Each file is written whole (a temporary file renamed over it); the paths written are printed.
    """
    from valohai_cfn.render import write_templates

    chosen = FORMATS if formats == "all" else (formats,)
    template, pool = common.built(), common.built_pool()
    parameters = None
    if processed_for:
        from valohai_cfn import specs

        # The quotas too: a processed template CloudFormation would refuse is not written as if it were one.
        parameters = common.checked_parameters(
            processed_for, template.to_dict()["Parameters"], footprint=specs.footprint()
        )
    pool_parameters = None
    if pool_processed_for:
        from valohai_cfn.cli.pool import given_specs

        pool_parameters = common.checked_parameters(pool_processed_for, given_specs(pool.to_dict()["Parameters"]))
    try:
        written = write_templates(
            template,
            output_dir,
            chosen,
            parameters,
            pool=pool,
            pool_processed_for=pool_parameters,
            ssh=common.built_ssh(),
        )
    except OSError as e:
        raise click.ClickException(f"cannot write {e.filename or output_dir}: {e.strerror or e}") from e
    for path in written:
        click.echo(f"wrote {path.resolve()} ({path.stat().st_size:,} bytes)")


@click.command()
@click.option(
    "-r",
    "--region",
    "regions",
    multiple=True,
    default=("us-east-1", "eu-west-1", "ap-southeast-2"),
    show_default=True,
    callback=lambda ctx, param, values: tuple(common.region_callback(ctx, param, v) for v in values),
    help="Region to check against; repeat for several.",
)
@click.option(
    "-t",
    "--template",
    "template_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Lint this file instead of a fresh build.",
)
@click.option("--pool", is_flag=True, help="Lint a fresh build of the worker pool's template.")
@click.option("--ssh", is_flag=True, help="Lint a fresh build of the SSH template (SSH to the app instance).")
def lint(regions: tuple[str, ...], template_path: Path | None, pool: bool, ssh: bool) -> None:
    """Run cfn-lint (informational rules included) on the template; exit 1 on any finding.

    Findings name the file linted, or, for a fresh build, say so.
    """
    from valohai_cfn.lint import format_matches, lint_path, lint_text
    from valohai_cfn.render import render_json

    chosen = [name for name, given in (("--template", template_path), ("--pool", pool), ("--ssh", ssh)) if given]
    if len(chosen) > 1:
        raise common.BadInput(f"{' and '.join(chosen)} each choose what to lint: give one (or none: the installation)")
    if template_path:
        matches = lint_path(template_path, regions)
    elif pool:
        matches = lint_text(render_json(common.built_pool()), regions, filename=BUILT_POOL_LABEL)
    elif ssh:
        matches = lint_text(render_json(common.built_ssh()), regions, filename=BUILT_SSH_LABEL)
    else:
        matches = lint_text(render_json(common.built()), regions, filename=BUILT_LABEL)
    if matches:
        click.echo(format_matches(matches))
        raise click.ClickException(f"cfn-lint: {len(matches)} finding(s)")
    built = "the worker pool's fresh build" if pool else "the SSH template's fresh build" if ssh else "the fresh build"
    click.echo(f"cfn-lint: no findings in {template_path or built} ({', '.join(regions)})")


@click.command("diagram")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "svg"]),
    default="mermaid",
    show_default=True,
    help="Mermaid (GitHub renders it), Graphviz DOT, or SVG drawn by Graphviz.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
@click.option("--pool", is_flag=True, help="Draw the worker pool's template (README: Worker pools).")
def diagram_command(fmt: str, output: Path | None, pool: bool) -> None:
    """Draw the architecture from the built template (--pool: the worker pool's): resources by concern,
    security-group flows with their ports, role → instance profile → instance."""
    import json
    import shutil
    import subprocess

    from valohai_cfn import diagram
    from valohai_cfn.files import write_atomically
    from valohai_cfn.render import render_json

    template = json.loads(render_json(common.built_pool() if pool else common.built()))
    if fmt == "svg":
        dot_command = shutil.which("dot")
        if dot_command is None:
            raise click.ClickException("SVG needs Graphviz's dot, which is not installed (Debian package graphviz)")
        text = subprocess.run(
            [dot_command, "-Tsvg"], input=diagram.dot(template), capture_output=True, text=True, check=True
        ).stdout
    else:
        text = diagram.mermaid(template) if fmt == "mermaid" else diagram.dot(template)
    if output:
        try:
            write_atomically(output, text)
        except OSError as e:
            raise click.ClickException(f"cannot write {output}: {e.strerror or e}") from None
        click.echo(f"wrote {output.resolve()}")
    else:
        click.echo(text, nl=False)


COMMANDS = (build, lint, diagram_command)
