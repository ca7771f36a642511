"""The `valohai-cfn` command line.

Heavy imports (cfn-lint, boto3) happen inside the commands that need them, so `build` stays fast.
"""

from __future__ import annotations

import functools
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
@click.option(
    "--processed-for",
    "processed_for",
    type=click.Path(path_type=Path),
    metavar="PARAMS",
    help="Also write the template as CloudFormation processes it for this parameter file (its loops expanded: "
    "one worker group per type), for scanners and reviews.",
)
def build(output_dir: Path, formats: str, processed_for: Path | None) -> None:
    """Build the template and write it as JSON and YAML (no AWS call)."""
    from valohai_cfn.render import write_templates

    chosen = FORMATS if formats == "all" else (formats,)
    parameters = _guarded(lambda: _checked_parameters(processed_for)) if processed_for else None
    try:
        written = write_templates(_template(), output_dir, chosen, parameters)
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

    if template_path:
        matches = lint_path(template_path, regions)
    else:
        label = str(DEFAULT_TEMPLATE_DIR / f"{TEMPLATE_NAME}.json")
        matches = lint_text(render_json(_template()), regions, filename=label)
    if matches:
        click.echo(format_matches(matches))
        raise click.ClickException(f"cfn-lint: {len(matches)} finding(s)")
    click.echo(f"cfn-lint: no findings ({', '.join(regions)})")


# -- talking to AWS ------------------------------------------------------------------------------


def aws_options(command):
    """--region, --profile and --endpoint-url, shared by every command that talks to AWS."""
    command = click.option("--endpoint-url", help="AWS endpoint to talk to instead (e.g. valohai-cfn local-aws).")(
        command
    )
    command = click.option("--profile", help="AWS profile to use (default: the environment's).")(command)
    return click.option("--region", help="AWS region (default: the profile's or AWS_DEFAULT_REGION).")(command)


def _aws(region: str | None, profile: str | None, endpoint_url: str | None):
    from valohai_cfn.aws import Clients

    return Clients(profile, region, endpoint_url)


def _guarded(run):
    """Run a command body, turning AWS, deploy and parameter-file errors into one-line errors."""
    from valohai_cfn.aws import AwsError, aws_errors
    from valohai_cfn.deploy import DeployError, StoppedWatching
    from valohai_cfn.params import ParamsError
    from valohai_cfn.publish import PublishError

    try:
        with aws_errors():
            return run()
    except StoppedWatching as e:
        click.echo(f"\nStopped watching. {e}", err=True)
        sys.exit(130)
    except (AwsError, DeployError, ParamsError, PublishError) as e:
        raise click.ClickException(str(e)) from None


def _interactive() -> bool:
    """Whether a person can answer: standard input is a terminal."""
    return sys.stdin.isatty()


class TerminalEcho:
    """Output for a terminal: lines scroll as usual, and `status` is one line redrawn in place, so the
    progress of a stack operation reads as a live display."""

    CLEAR_LINE = "\r\033[K"

    def __init__(self) -> None:
        self._status_shown = False

    def __call__(self, line: str) -> None:
        if self._status_shown:
            click.echo(self.CLEAR_LINE, nl=False, color=True)
            self._status_shown = False
        click.echo(line)

    def status(self, text: str) -> None:
        click.echo(self.CLEAR_LINE + text, nl=False, color=True)
        self._status_shown = True


def _echo():
    """A live display on a terminal (stdout), plain lines elsewhere (logs, CI, pipes)."""
    return TerminalEcho() if sys.stdout.isatty() else click.echo


def _confirm(assume_yes: bool):
    """Who approves executing: --yes, a person at a terminal, or nobody (None)."""
    if assume_yes:
        return lambda _question: True
    if _interactive():
        return lambda question: click.confirm(question, default=False)
    return None


def _deploy(options: dict, *, execute: bool) -> None:
    """deploy and plan: check the parameters, run preflight, then the change set."""
    from valohai_cfn.deploy import DeployRequest, deploy
    from valohai_cfn.render import render_json
    from valohai_cfn.stack.policy import stack_policy

    def run():
        template = _template()
        parameters = _checked_parameters(options["params_file"])
        aws = _aws(options["region"], options["profile"], options["endpoint_url"])
        if not options["skip_preflight"] and not _preflight(aws, parameters, options["stack_name"]):
            raise click.ClickException("preflight failed: fix the rows marked FAILED, or deploy with --skip-preflight")
        request = DeployRequest(
            stack_name=options["stack_name"],
            template_body=render_json(template),
            template_defaults={name: p.properties.get("Default") for name, p in template.parameters.items()},
            parameters=parameters,
            tags=_key_values(options["tags"], "--tag"),
            bucket=options["bucket"],
            allow_replace=options["allow_replace"],
            recreate_failed=options["recreate_failed"],
            termination_protection=not options.get("no_termination_protection", False),
            execute=execute,
            stack_policy=stack_policy(template),
        )
        s3 = aws("s3") if options["bucket"] else None
        confirm = _confirm(options.get("assume_yes", False)) if execute else None
        deploy(aws("cloudformation"), request, echo=_echo(), confirm=confirm, s3=s3)

    _guarded(run)


def deploy_options(command):
    options = [
        click.option("--stack-name", required=True, help="Name of the CloudFormation stack."),
        click.option(
            "--params",
            "params_file",
            required=True,
            type=click.Path(path_type=Path),
            help='Parameter file (CloudFormation list, Key=Value list, or {"Parameters": {}}).',
        ),
        click.option(
            "--tag",
            "tags",
            multiple=True,
            metavar="KEY=VALUE",
            help="Stack tag; repeat for several (valohai=1 is always added).",
        ),
        click.option("--bucket", help="S3 bucket for a template over 51,200 bytes."),
        click.option(
            "--allow-replace",
            is_flag=True,
            help="Execute even when the database, bucket, a secret or the queue would be replaced or removed.",
        ),
        click.option(
            "--recreate-failed",
            is_flag=True,
            help="Delete a stack whose first create failed (ROLLBACK_COMPLETE) and create it again.",
        ),
        click.option("--skip-preflight", is_flag=True, help="Do not check the account before deploying."),
    ]
    for option in reversed(options):
        command = option(command)
    return aws_options(command)


@cli.command("deploy")
@deploy_options
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Execute without asking.")
@click.option("--no-termination-protection", is_flag=True, help="Leave termination protection off on a new stack.")
def deploy_command(**options) -> None:
    """Create or update the stack through a change set, with live progress.

    Checks the parameter file and the account (preflight) first. Shows the change set; asks before
    executing (or executes with --yes). Without a terminal and without --yes it only creates and shows
    the change set. Refuses to replace or remove the database, bucket, secrets or queue unless
    --allow-replace is given. "No changes" is success.
    """
    _deploy(options, execute=True)


@cli.command("plan")
@deploy_options
def plan_command(**options) -> None:
    """Create the change set and show it, without executing it."""
    _deploy(options, execute=False)


@cli.command("status")
@click.argument("stack_name")
@aws_options
@click.option("--watch", is_flag=True, help="Follow the stack's events until no operation is in progress.")
@click.option("--events", "event_count", default=10, show_default=True, help="How many recent events to show.")
def status_command(stack_name, region, profile, endpoint_url, watch, event_count) -> None:
    """Show a stack's status, outputs and last events."""
    from datetime import datetime, timezone

    from valohai_cfn.deploy import describe, follow, last_events

    def run():
        cfn = _aws(region, profile, endpoint_url)("cloudformation")
        stack = describe(cfn, stack_name)
        click.echo(f"Stack {stack_name}: {stack['StackStatus']}")
        outputs = stack.get("Outputs", [])
        for output in sorted(outputs, key=lambda o: o["OutputKey"]):
            click.echo(f"  {output['OutputKey']:<28} {output['OutputValue']}")
        if not outputs:
            click.echo("  (no outputs)")
        click.echo("Last events:")
        for e in last_events(cfn, stack_name, event_count):
            reason = f"  {e['ResourceStatusReason']}" if e.get("ResourceStatusReason") else ""
            click.echo(
                f"  {e['Timestamp']:%Y-%m-%d %H:%M:%S}  {e['ResourceStatus']:<28} {e['LogicalResourceId']}{reason}"
            )
        if watch and stack["StackStatus"].endswith("_IN_PROGRESS"):
            follow(cfn, stack_name, since=datetime.now(timezone.utc), echo=_echo())

    _guarded(run)


@cli.command("delete")
@click.argument("stack_name")
@aws_options
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Delete without asking.")
@click.option("--force", is_flag=True, help="Lift termination protection first.")
def delete_command(stack_name, region, profile, endpoint_url, assume_yes, force) -> None:
    """Delete the stack. Lists what is kept (the bucket, the final database snapshot, the secrets) first."""
    from valohai_cfn.deploy import delete_stack, prepare_delete

    def run():
        cfn = _aws(region, profile, endpoint_url)("cloudformation")
        kept, protected = prepare_delete(cfn, stack_name, force=force)
        click.echo("Kept after the delete:")
        for k in kept:
            what = "final snapshot of" if k.policy == "Snapshot" else "kept:"
            click.echo(f"  {what} {k.logical_id} ({k.resource_type}) {k.physical_id}")
        confirm = _confirm(assume_yes)
        if confirm is None:
            raise click.ClickException("not deleting without confirmation: run in a terminal or add --yes")
        if not confirm(f"Delete stack {stack_name}?"):
            click.echo("Nothing deleted.")
            return
        delete_stack(cfn, stack_name, echo=_echo(), lift_protection=protected)

    _guarded(run)


@cli.command("local-aws")
@click.option("--port", default=5055, show_default=True, help="Port on 127.0.0.1 (0 picks a free one).")
@click.option(
    "--demo-params",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also create a demo VPC, subnets and image, and write their parameters to this file.",
)
@click.option("--region", default="us-east-1", show_default=True, help="Region of the demo network.")
def local_aws_command(port: int, demo_params: Path | None, region: str) -> None:
    """Serve a local AWS, able to deploy this template, on 127.0.0.1 until Ctrl-C.

    Needs the `local` extra: pip install 'valohai-cfn[local]'.
    """
    import threading

    try:
        from valohai_cfn.local_aws import LocalAws, create_demo_network
    except ImportError as e:
        raise click.ClickException(f"local-aws needs the local extra (pip install 'valohai-cfn[local]'): {e}") from e
    from valohai_cfn.params import dump_parameters

    server = LocalAws(port)
    try:
        endpoint = server.start()
    except OSError as e:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}") from None
    click.echo(f"Local AWS at {endpoint} (use --endpoint-url {endpoint}; any access key works). Ctrl-C stops it.")
    if demo_params:
        import boto3

        ec2 = boto3.client(
            "ec2", endpoint_url=endpoint, region_name=region, aws_access_key_id="local", aws_secret_access_key="local"
        )
        # Written whole, then renamed: whoever waits for the file never reads half of it.
        partial = demo_params.with_name(demo_params.name + ".partial")
        partial.write_text(dump_parameters(create_demo_network(ec2, region)), encoding="utf-8")
        partial.replace(demo_params)
        click.echo(f"Wrote {demo_params}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        click.echo("Stopping.")
    finally:
        server.stop()


# -- parameter files and preflight -------------------------------------------------------------------


class ProblemsFound(click.ClickException):
    """Problems were printed one per line already; exit 2 with a summary."""

    exit_code = 2


@functools.cache
def _template():
    """The built template, built once per command (the build is deterministic)."""
    from valohai_cfn.template import build_template

    return build_template()


def _template_parameters() -> dict[str, dict]:
    return _template().to_dict()["Parameters"]


def _stop_on_problems(params_file: Path, problems: list) -> None:
    """Print each problem on a line of its own; any problem ends the command with exit 2."""
    for problem in problems:
        click.echo(f"{params_file}: {problem}", err=True)
    if problems:
        raise ProblemsFound(f"{params_file}: {len(problems)} problem(s)")


def _checked_parameters(params_file: Path) -> dict[str, str]:
    """The file's parameters, checked against the template offline."""
    from valohai_cfn.params import check_parameters, load_parameters

    given = load_parameters(params_file)
    _stop_on_problems(params_file, check_parameters(_template_parameters(), given))
    return given


@cli.group("params")
def params_group() -> None:
    """Write, import and check parameter files (offline: no AWS call)."""


@params_group.command("check")
@click.argument("params_file", type=click.Path(path_type=Path))
def params_check(params_file: Path) -> None:
    """Check a parameter file against the template: every problem, one line each; exit 2 on any."""
    from valohai_cfn.params import ParamsError

    try:
        given = _checked_parameters(params_file)
    except ParamsError as e:
        raise ProblemsFound(str(e)) from None
    click.echo(f"{params_file}: {len(given)} parameters, all valid")


@params_group.command("import")
@click.argument("config_file", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Parameter file to write (CloudFormation list format).",
)
def params_import(config_file: Path, output: Path) -> None:
    """Import the original CDK app's config.yaml (valohai-cdk-self-hosted) as a parameter file."""
    from valohai_cfn.params import dump_parameters, import_cdk_config

    parameters = _guarded(lambda: import_cdk_config(config_file))
    _write(output, dump_parameters(parameters))
    missing = [n for n, spec in _template_parameters().items() if "Default" not in spec and n not in parameters]
    click.echo(f"wrote {output} ({len(parameters)} parameters)")
    if missing:
        click.echo(f"still required before deploying: {', '.join(missing)} (add them, then `valohai-cfn params check`)")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror or e}") from None


def _prompt_value(name: str, spec: dict, label: str) -> str:
    from valohai_cfn.params import check_value

    click.echo(f"\n{label} ({name}): {spec['Description']}")
    while True:
        value = click.prompt(name, default=spec.get("Default"), show_default=True)
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
def params_init(output: Path, settings: tuple[str, ...]) -> None:
    """Write a parameter file with every template parameter.

    In a terminal it asks for each required parameter not given with --set, showing its label and
    description; otherwise every required parameter must come with --set.
    """
    from valohai_cfn.params import check_parameters, dump_parameters

    template = _template().to_dict()
    specs = template["Parameters"]
    labels = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterLabels"]
    given = _key_values(settings, "--set")
    unknown = [p for p in check_parameters(specs, given) if p.parameter not in specs]
    if unknown:
        raise click.BadParameter("; ".join(str(p) for p in unknown), param_hint="--set")
    values = {}
    for name, spec in specs.items():
        if name in given:
            values[name] = given[name]
        elif "Default" in spec:
            values[name] = spec["Default"]
        elif _interactive():
            values[name] = _prompt_value(name, spec, labels[name]["default"])
    problems = check_parameters(specs, values)
    for problem in problems:
        click.echo(f"{problem}", err=True)
    if problems:
        raise ProblemsFound(f"not written: {len(problems)} problem(s); give values with --set KEY=VALUE")
    _write(output, dump_parameters(values))
    click.echo(f"wrote {output} ({len(values)} parameters)")


def _key_values(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        pairs[key] = item
    return pairs


def _preflight(aws, params: dict[str, str], stack_name: str | None) -> bool:
    """Run the preflight checks, print their table; True when all passed."""
    from valohai_cfn.preflight import Account, check_table, run_checks

    cfn = aws("cloudformation")
    account = Account(
        ec2=aws("ec2"),
        acm=aws("acm"),
        s3=aws("s3"),
        sts=aws("sts"),
        cfn=cfn,
        region=cfn.meta.region_name,
        stack_name=stack_name,
    )
    defaults = {n: spec["Default"] for n, spec in _template_parameters().items() if "Default" in spec}
    checks = run_checks(account, {**defaults, **params})
    click.echo(check_table(checks))
    return all(c.ok for c in checks)


@cli.command("preflight")
@click.option("--params", "params_file", required=True, type=click.Path(path_type=Path), help="Parameter file.")
@click.option("--stack-name", help="The stack being updated, if any (its own bucket then counts as free).")
@aws_options
def preflight_command(params_file: Path, stack_name, region, profile, endpoint_url) -> None:
    """Check the account before anything is created: VPC, subnets, zones, routes, image, certificate, key
    pair, instance type, bucket name. One row per check; exit 1 when any failed."""

    def run():
        parameters = _checked_parameters(params_file)
        if not _preflight(_aws(region, profile, endpoint_url), parameters, stack_name):
            raise click.ClickException("preflight failed: see the rows marked FAILED")

    _guarded(run)


# -- publishing ---------------------------------------------------------------------------------------


def _link_parameters(params_file: Path | None) -> dict[str, str]:
    """The values to prefill: checked against the template, though required ones may be left to the user."""
    from valohai_cfn.params import check_parameters, load_parameters

    if params_file is None:
        return {}
    given = load_parameters(params_file)
    _stop_on_problems(params_file, [p for p in check_parameters(_template_parameters(), given) if p.parameter in given])
    return given


def _print_link(url: str) -> None:
    click.echo(f"Quick-create link:\n{url}\n")
    from valohai_cfn.publish import launch_button

    click.echo(f"Markdown for a README:\n{launch_button(url)}")


def link_options(command):
    command = click.option("--stack-name", help="Stack name to prefill (a letter, then letters, digits, hyphens).")(
        command
    )
    return click.option("--params", "params_file", type=click.Path(path_type=Path), help="Values to prefill.")(command)


@cli.command("publish")
@click.option("--bucket", required=True, help="S3 bucket to upload the template to.")
@click.option("--prefix", default="", help="Key prefix in the bucket.")
@link_options
@aws_options
def publish_command(bucket, prefix, params_file, stack_name, region, profile, endpoint_url) -> None:
    """Upload the built template under a content-addressed key and print its quick-create link."""
    from valohai_cfn.publish import object_url, quick_create_url, upload
    from valohai_cfn.render import render_json

    def run():
        parameters = _link_parameters(params_file)
        s3 = _aws(region, profile, endpoint_url)("s3")
        body = render_json(_template()).encode()
        key = upload(s3, bucket, body, prefix)
        url = object_url(s3, bucket, key, s3.meta.region_name, endpoint_url)
        click.echo(f"Uploaded s3://{bucket}/{key}")
        _print_link(
            quick_create_url(
                region=s3.meta.region_name,
                template_url=url,
                stack_name=stack_name,
                parameters=parameters,
                template_parameters=_template_parameters(),
            )
        )

    _guarded(run)


@cli.command("link")
@click.option("--template-url", required=True, help="HTTPS URL of the template in S3.")
@link_options
@click.option("--region", required=True, help="Region whose console the link opens.")
def link_command(template_url, params_file, stack_name, region) -> None:
    """Print the quick-create link for an uploaded template (no upload, no AWS call)."""
    from valohai_cfn.publish import quick_create_url

    def run():
        _print_link(
            quick_create_url(
                region=region,
                template_url=template_url,
                stack_name=stack_name,
                parameters=_link_parameters(params_file),
                template_parameters=_template_parameters(),
            )
        )

    _guarded(run)


@cli.command("diagram")
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
def diagram_command(fmt: str, output: Path | None) -> None:
    """Draw the architecture from the built template: resources by concern, security-group flows with
    their ports, role → instance profile → instance."""
    import json
    import shutil
    import subprocess

    from valohai_cfn import diagram
    from valohai_cfn.render import render_json

    template = json.loads(render_json(_template()))
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
        _write(output, text)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


def main() -> None:
    cli(prog_name="valohai-cfn")
