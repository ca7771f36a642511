"""local-aws: a local AWS on 127.0.0.1 to deploy the template to, no account needed."""

from __future__ import annotations

from pathlib import Path

import click

from valohai_cfn.cli import common


def _writable(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """A file that can be written, checked before the server starts (a probe file, removed at once)."""
    import tempfile

    if value is None:
        return None
    if not value.parent.is_dir():
        raise click.BadParameter(f"{value}: directory {value.parent} does not exist")
    try:
        with tempfile.TemporaryFile(dir=value.parent):
            pass
    except OSError as e:
        raise click.BadParameter(f"{value}: cannot write in {value.parent}: {e.strerror or e}") from None
    return value


@click.command("local-aws")
@click.option(
    "--port",
    default=5055,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option(
    "--demo-params",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_writable,
    help="Also create a demo VPC, subnets and image, and write their parameters to this file.",
)
@common.region_option(default="us-east-1", show_default=True, help="Region of the demo network.")
def local_aws_command(port: int, demo_params: Path | None, region: str) -> None:
    """Serve a local AWS, able to deploy this template, on 127.0.0.1 until Ctrl-C.

    Needs the `local` extra: pip install 'valohai-cfn[local]'.
    """
    import threading

    try:
        from valohai_cfn.local_aws import NOT_APPLIED, LocalAws, create_demo_network
    except ImportError as e:
        raise click.ClickException(f"local-aws needs the local extra (pip install 'valohai-cfn[local]'): {e}") from e
    from valohai_cfn.files import write_atomically
    from valohai_cfn.params import dump_parameters

    server = LocalAws(port)
    try:
        endpoint = server.start()
    except OSError as e:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {e.strerror or e}") from None
    click.echo(f"Local AWS at {endpoint} (use --endpoint-url {endpoint}; any access key works). Ctrl-C stops it.")
    try:
        if demo_params:
            import boto3

            ec2 = boto3.client(
                "ec2",
                endpoint_url=endpoint,
                region_name=region,
                aws_access_key_id="local",
                aws_secret_access_key="local",
            )
            parameters = create_demo_network(ec2, region)
            # Written whole: whoever waits for the file never reads half of it.
            try:
                write_atomically(demo_params, dump_parameters(parameters))
            except OSError as e:
                raise click.ClickException(f"{demo_params}: cannot write it: {e.strerror or e}") from None
            click.echo(f"Wrote {demo_params}")
            for name in sorted(set(parameters) & set(NOT_APPLIED)):
                click.echo(f"Note: the local AWS does not apply {name} as AWS would: {NOT_APPLIED[name]}.")
        threading.Event().wait()
    except KeyboardInterrupt:
        common._ignore_further_interrupts()  # stopping takes a moment; a second Ctrl-C would only interrupt it
        click.echo("Stopping.")
    finally:
        server.stop()


COMMANDS = (local_aws_command,)
