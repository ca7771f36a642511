"""publish and link: the template in S3 and the console's quick-create link."""

from __future__ import annotations

from pathlib import Path

import click

from valohai_cfn.cli import common


def _link_parameters(params_file: Path | None, specs: dict[str, dict]) -> dict[str, str]:
    """The values to prefill: checked against the template, though required ones may be left to the user."""
    from valohai_cfn.params import check_parameters, load_parameter_file, previous_values

    if params_file is None:
        return {}
    read = common.guarded(lambda: load_parameter_file(params_file))
    given = read.values
    problems = [p for p in check_parameters(specs, given) if p.parameter in given]
    # A quick-create link makes a new stack: there is no value to keep, and the console takes no tags from it.
    problems += [f"{name}: UsePreviousValue: a new stack has no value to keep" for name in previous_values(given)]
    if read.tags:
        problems.append("Tags: a quick-create link cannot carry stack tags; add them in the console's form")
    common.stop_on_problems(str(params_file), problems)
    return given


def _resolve_images(aws, parameters: dict[str, str]) -> dict[str, str]:
    """RoiAmiId / WorkerAmiId `latest` as the image ids it stands for in the link's region (a link carries
    plain ids: the console cannot resolve `latest`); one line per image resolved."""
    from valohai_cfn.images import resolve_images

    resolved_parameters, resolved = resolve_images(aws("ec2"), aws("sts"), parameters)
    for image in resolved:
        click.echo(f"{image.parameter}: latest = {image.image_id} ({image.name}, {image.created})")
    return resolved_parameters


def _print_link(url: str) -> None:
    from valohai_cfn.publish import launch_button

    click.echo(f"Quick-create link:\n{url}\n")
    click.echo(f"Markdown for a README:\n{launch_button(url)}")


def link_options(command):
    command = common.stack_name_option(required=False)(command)
    return click.option("--params", "params_file", type=click.Path(path_type=Path), help="Values to prefill.")(command)


@click.command("publish")
@common.bucket_option("S3 bucket to upload the template to.", required=True)
@click.option("--prefix", default="", help="Key prefix in the bucket.")
@link_options
@common.template_option
@common.aws_options
def publish_command(bucket, prefix, params_file, stack_name, template_path, region, profile, endpoint_url) -> None:
    """Upload the template (a fresh build, or --template) under a content-addressed key and print its
    quick-create link (RoiAmiId or WorkerAmiId `latest` resolved to the image id first). The template's URL
    names the bucket's own region (GetBucketLocation); the link opens the console in --region, with a warning
    when the two differ."""
    from valohai_cfn.publish import bucket_region, object_url, quick_create_url, region_warning, upload

    source = common.template_source(template_path, region)
    parameters = _link_parameters(params_file, source.specs)

    def run():
        aws = common.aws_clients(region, profile, endpoint_url)
        s3 = aws("s3")
        resolved = _resolve_images(aws, parameters)
        located = bucket_region(s3, bucket)
        warning = region_warning(bucket, located, s3.meta.region_name)  # another partition: refused first
        key = upload(s3, bucket, source.body.encode(), prefix)
        url = object_url(s3, bucket, key, located, endpoint_url)
        click.echo(f"Uploaded s3://{bucket}/{key}")
        if warning:
            click.echo(f"Warning: {warning}", err=True)
        _print_link(
            quick_create_url(
                region=s3.meta.region_name,
                template_url=url,
                stack_name=stack_name,
                parameters=resolved,
                template_parameters=source.specs,
            )
        )

    common.guarded(run)


@click.command("link")
@click.option("--template-url", required=True, help="HTTPS URL of the template in S3.")
@link_options
@common.region_option(required=True, help="Region whose console the link opens.")
@common.profile_options
def link_command(template_url, params_file, stack_name, region, profile, endpoint_url) -> None:
    """Print the quick-create link for an uploaded template (no upload). No AWS call, unless RoiAmiId or
    WorkerAmiId is `latest`: that is resolved in the region, with --profile's account."""
    from valohai_cfn.publish import quick_create_url
    from valohai_cfn.specs import parameters as built_parameters

    # The built template's parameters without building it (valohai_cfn/specs.py), keys sorted as in its JSON.
    specs = dict(sorted(built_parameters().items()))
    parameters = _link_parameters(params_file, specs)

    def run():
        resolved = _resolve_images(common.aws_clients(region, profile, endpoint_url), parameters)
        _print_link(
            quick_create_url(
                region=region,
                template_url=template_url,
                stack_name=stack_name,
                parameters=resolved,
                template_parameters=specs,
            )
        )

    common.guarded(run)


COMMANDS = (publish_command, link_command)
