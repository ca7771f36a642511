"""The stack's lifecycle: preflight, deploy, plan, execute, diff, status, outputs, drift, delete.

Each command parses its options, calls one step of valohai_cfn.lifecycle (which returns data) with an approval
callback and a console.Report, and renders what came back with valohai_cfn.console. It decides nothing.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from valohai_cfn.cli import common

if TYPE_CHECKING:  # imported where they are used, so that `valohai-cfn build` loads none of them
    from valohai_cfn.console import Output
    from valohai_cfn.lifecycle import Result

# The outputs a finished deploy shows: where to go, how to get in, and the machines that run jobs.
HEADLINE_OUTPUTS = ("AppUrl", "FirstLogin")
WORKER_GROUP_OUTPUT_PREFIXES = ("WorkerGroup", "SpotWorkerGroup")


def _output(output_format: str = "text") -> Output:
    from valohai_cfn.console import Output

    return Output(as_json=output_format == "json")


def _report(out: Output) -> Any:
    from valohai_cfn.console import Report

    return Report(out)


def _aws(options: dict[str, Any]) -> Any:
    return common.aws_clients(options["region"], options["profile"], options["endpoint_url"])


@click.command("preflight")
@click.option("--params", "params_file", required=True, type=click.Path(path_type=Path), help="Parameter file.")
@common.set_option
@common.stack_name_option(required=False)
@common.template_option
@common.output_option()
@common.aws_options
def preflight_command(
    params_file, overrides, stack_name, template_path, output_format, region, profile, endpoint_url
) -> None:
    """Check the account before anything is created: VPC, subnets, zones, routes, image, certificate, key
    pair, instance types, bucket name. One row per check; exit 1 when any failed.

    --stack-name: the stack being updated, if any (its own bucket then counts as free)."""
    from valohai_cfn import lifecycle

    out = _output(output_format)
    source = common.template_source(template_path, region)
    # With --stack-name, a parameter left out may be the deployed stack's (checked once the stack is read).
    parameters = common.checked_parameters(
        params_file,
        source.specs,
        common.key_values(overrides, "--set"),
        footprint=source.footprint,
        required=stack_name is None,
    )

    def run():
        aws = common.aws_clients(region, profile, endpoint_url)
        shown_preflight(out, lifecycle.preflight(aws, source, parameters, stack_name))

    common.guarded(run)


def shown_preflight(out: Output, checks: list) -> None:
    """Preflight's rows (and its JSON); one line and exit 1 when any failed."""
    from valohai_cfn import console

    if out.as_json:
        out.json(console.preflight_json(checks))
    console.show_preflight(out, checks)
    if not all(c.ok for c in checks):
        raise click.ClickException("preflight failed: see the rows marked FAILED")


# -- deploy, plan and execute -------------------------------------------------------------------


def deploy_options(command):
    options = [
        common.stack_name_option(),
        click.option(
            "--params",
            "params_file",
            required=True,
            type=click.Path(path_type=Path),
            help='Parameter file (CloudFormation list, Key=Value list, or {"Parameters": {}}).',
        ),
        common.set_option,
        click.option(
            "--tag",
            "tags",
            multiple=True,
            metavar="KEY=VALUE",
            help="Stack tag; repeat for several (valohai=1 is always added).",
        ),
        common.template_option,
        common.bucket_option("S3 bucket for a template over 51,200 bytes."),
        common.role_arn_option("IAM role CloudFormation assumes for the operation (a service role)."),
        click.option(
            "--allow-replace",
            is_flag=True,
            help="Go ahead even though the database, bucket, a secret or the queue would be replaced or removed: "
            "the stack policy is relaxed for exactly those, for this one update, and put back afterwards.",
        ),
        click.option(
            "--keep",
            is_flag=True,
            help="Keep a change set that is not executed (and the empty stack a new stack's change set makes).",
        ),
        click.option("--skip-preflight", is_flag=True, help="Do not check the account before deploying."),
    ]
    for option in reversed(options):
        command = option(command)
    return common.aws_options(command)


def _refuse_without_approver(options: dict[str, Any], *, to: str) -> None:
    if not options["assume_yes"] and not common.interactive():
        raise click.ClickException(f"nobody to approve the change: no terminal to ask in. Add --yes{to}")


def _run_deployment(options: dict, *, execute: bool) -> int:
    from valohai_cfn import lifecycle

    if execute:
        _refuse_without_approver(options, to=" to deploy without asking, or run valohai-cfn plan to only see it")
    source = common.template_source(options["template_path"], options["region"] or common.default_region())
    overrides = common.key_values(options["overrides"], "--set")
    # A parameter without a default may be left out of an update (the lifecycle checks it against the stack).
    read = common.checked_parameter_file(
        options["params_file"], source.specs, overrides, footprint=source.footprint, required=False
    )
    parameters = read.values
    # A template configuration file's Tags, with --tag on top.
    tags = {**read.tags, **common.key_values(options["tags"], "--tag")}
    out = _output(options.get("output_format", "text"))

    def run() -> int:
        request = lifecycle.DeployRequest(
            stack_name=options["stack_name"],
            template=source,
            parameters=parameters,
            tags=tags,
            role_arn=options["role_arn"],
            bucket=options["bucket"],
            allow_replace=options["allow_replace"],
            keep=options["keep"],
            preflight=not options["skip_preflight"],
            termination_protection=not options.get("no_termination_protection", False),
            disable_rollback=options.get("disable_rollback", False),
            recreate_failed=options.get("recreate_failed", False),
        )
        approve = common.approver(options["assume_yes"]) if execute else None
        result = lifecycle.deploy_stack(_aws(options), request, approve=approve, report=_report(out), execute=execute)
        return _rendered(out, result, options)

    return common.guarded(run)


def _change_set_link(options: dict[str, Any], result: Result) -> str | None:
    from valohai_cfn.publish import PublishError, change_set_url

    if options["endpoint_url"] or result.change_set is None:
        return None  # not AWS: there is no console to link to
    region = result.change_set.arn.split(":")[3]
    try:
        return change_set_url(region, result.change_set.stack_id, result.change_set.arn)
    except PublishError:
        return None


def _rendered(out: Output, result: Result, options: dict[str, Any]) -> int:
    """What a deploy, plan or execute ended in, for a person (and for a script with --output json); its exit code."""
    from valohai_cfn import console, lifecycle

    name = result.stack_name
    if result.end is lifecycle.End.UP_TO_DATE:
        if out.as_json and result.review is not None:
            out.json(console.review_json(result.review, stack=name))
        return common.EXIT_OK
    if result.end is lifecycle.End.PLANNED:
        link = _change_set_link(options, result)
        if link:
            out.line(f"Review it in the console: {link}")
        if out.as_json and result.review is not None:
            out.json(
                console.review_json(result.review, result.change_set, stack=name, console_url=link, kept=result.kept)
            )
        return common.EXIT_CHANGES if options.get("exit_code") else common.EXIT_OK
    if result.end is lifecycle.End.DECLINED:
        out.line("Nothing was executed.")
        return common.EXIT_OK
    assert result.outcome is not None
    out.line(f"Stack {name} is {result.outcome.status}.", "bold green")
    headline = {
        k: v for k, v in result.outputs.items() if k in HEADLINE_OUTPUTS or k.startswith(WORKER_GROUP_OUTPUT_PREFIXES)
    }
    if headline:  # another template's outputs are `valohai-cfn outputs`'s to show
        console.show_outputs(out, headline)
    return common.EXIT_OK


@click.command("deploy")
@deploy_options
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Execute without asking.")
@click.option("--no-termination-protection", is_flag=True, help="Leave termination protection off on a new stack.")
@click.option(
    "--disable-rollback",
    is_flag=True,
    help="On failure keep what was made (to debug it) instead of rolling back; the next deploy retries what failed.",
)
@click.option(
    "--recreate-failed",
    is_flag=True,
    help="Delete a stack whose first create failed (ROLLBACK_COMPLETE, and holding no data) and create it "
    "again; lists what is kept and removed, and asks first. Lifts its termination protection for that delete.",
)
def deploy_command(**options) -> int:
    """Create or update the stack through a change set, with live progress.

    Checks the parameter file and the account (preflight) first. Shows the review (parameters, resource,
    property and output changes, security changes) and asks before executing; --yes executes without asking.
    Without a terminal and without --yes it refuses at once (exit 1). Refuses to replace or remove the
    database, bucket, secrets or queue unless --allow-replace. Termination protection and the stack policy
    are applied as part of the approved execution; a declined or refused deploy changes nothing. "No changes"
    is success.
    """
    return _run_deployment(options, execute=True)


@click.command("plan")
@deploy_options
@click.option(
    "--exit-code",
    is_flag=True,
    help=f"Exit {common.EXIT_CHANGES} when there are changes, 0 when there are none (1 on errors).",
)
@common.output_option()
def plan_command(**options) -> int:
    """Create the change set and show its review, without executing it.

    Prints the change set's name and a console link; `valohai-cfn execute` executes exactly it. A new
    stack's change set is deleted afterwards (with the empty stack it made) unless --keep. Never deletes
    a stack.
    """
    return _run_deployment({**options, "assume_yes": False}, execute=False)


def _change_set_argument(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    from valohai_cfn.deploy import WrongInput, check_change_set

    try:
        return check_change_set(value)
    except WrongInput as e:
        raise click.BadParameter(str(e)) from None


@click.command("execute")
@common.stack_name_option()
@click.argument("change_set_name", callback=_change_set_argument)
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Execute without asking.")
@click.option("--allow-replace", is_flag=True, help="As for deploy.")
@click.option("--no-termination-protection", is_flag=True, help="Leave termination protection off on a new stack.")
@click.option("--disable-rollback", is_flag=True, help="As for deploy.")
@common.aws_options
def execute_command(**options) -> int:
    """Execute a change set made by `valohai-cfn plan` (or anyone) for the stack --stack-name: the same review,
    data-loss guard, following and protections as deploy. CHANGE_SET_NAME is its name or its full ARN; a change
    set of another stack is refused (exit 2)."""
    from valohai_cfn import lifecycle

    _refuse_without_approver(options, to="")
    out = _output()

    def run() -> int:
        request = lifecycle.ExecuteRequest(
            stack_name=options["stack_name"],
            change_set=options["change_set_name"],
            allow_replace=options["allow_replace"],
            termination_protection=not options["no_termination_protection"],
            disable_rollback=options["disable_rollback"],
        )
        approve = common.approver(options["assume_yes"])
        result = lifecycle.execute_change_set(_aws(options), request, approve=approve, report=_report(out))
        return _rendered(out, result, options)

    return common.guarded(run)


@click.command("diff")
@common.stack_name_option()
@click.option("--params", "params_file", required=True, type=click.Path(path_type=Path), help="Parameter file.")
@common.set_option
@common.template_option
@click.option("--exit-code", is_flag=True, help=f"Exit {common.EXIT_CHANGES} when there are changes, 0 when none.")
@common.output_option()
@common.aws_options
def diff_command(
    stack_name, params_file, overrides, template_path, exit_code, output_format, region, profile, endpoint_url
) -> int:
    """What a deploy would change, without a change set: the deployed template and parameters against the
    new build (or --template) and the params file, each evaluated as CloudFormation would. Parameters
    old → new, resources and their properties (what only the deploy can know marked "changes at deploy"),
    outputs, security changes. Changes nothing."""
    from valohai_cfn import console, lifecycle

    out = _output(output_format)
    source = common.template_source(template_path, region or common.default_region())
    overrides = common.key_values(overrides, "--set")
    parameters = common.checked_parameters(
        params_file, source.specs, overrides, footprint=source.footprint, required=False
    )

    def run() -> int:
        aws = common.aws_clients(region, profile, endpoint_url)
        difference = lifecycle.difference(aws, stack_name, source, parameters, _report(out))
        if out.as_json:
            out.json(console.review_json(difference.review, stack=stack_name, exists=difference.exists))
        if not difference.exists:
            out.line(f"Stack {stack_name} does not exist: everything would be created.")
        console.show_review(out, difference.review, from_change_set=False)
        return common.EXIT_CHANGES if exit_code and difference.review.has_changes else common.EXIT_OK

    return common.guarded(run)


# -- status, outputs, drift, delete -------------------------------------------------------------


@click.command("status")
@common.stack_name_argument()
@common.aws_options
@click.option("--watch", is_flag=True, help="Follow the stack's events until no operation is in progress.")
@click.option(
    "--events",
    "event_count",
    default=10,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="How many recent events to show.",
)
@common.output_option()
def status_command(stack_name, region, profile, endpoint_url, watch, event_count, output_format) -> None:
    """Show a stack's status (and what it means), outputs and last events; the root cause of a failed or
    rolled-back operation. A stack a `delete --force` left DELETE_FAILED gets back the termination protection
    that delete lifted."""
    from botocore.exceptions import ClientError

    from valohai_cfn import console, deploy, lifecycle

    out = _output(output_format)

    def run() -> None:
        cfn = common.aws_clients(region, profile, endpoint_url)("cloudformation")
        state = deploy.stack_state(cfn, stack_name)
        if state.stack is None:
            raise click.ClickException(f"stack {stack_name} does not exist")
        stack = state.stack
        try:
            stack = lifecycle.put_back_after_failed_delete(cfn, stack, _report(out))
        except ClientError as e:  # a reader's rights: said, and the status shown all the same
            out.warn(
                f"Termination protection is off: the delete that lifted it failed, and putting it back was refused "
                f"({e.response['Error'].get('Code')}): aws cloudformation update-termination-protection "
                f"--enable-termination-protection --stack-name {stack_name}"
            )
        status = state.status or ""
        cause = deploy.root_cause(deploy.last_operation_events(cfn, stack_name)) if deploy.has_failed(status) else None
        events = deploy.last_events(cfn, stack_name, event_count) if event_count else []
        if out.as_json:
            out.json(
                {
                    "stack": stack_name,
                    "status": status,
                    "meaning": state.meaning,
                    "termination_protection": bool(stack.get("EnableTerminationProtection")),
                    "outputs": deploy.outputs(stack),
                    "root_cause": console.event_json(cause) if cause else None,
                    "events": [console.event_json(e) for e in events],
                }
            )
        out.console.print(f"Stack {stack_name}: ", end="")
        out.line(status, console.status_style(status))
        out.line(f"  {state.meaning}")
        console.show_outputs(out, deploy.outputs(stack))
        if cause:
            out.line(f"Root cause: {console.root_cause_text(cause)}", "bold red")
        if events:
            out.line("Last events:")
            console.show_events(out, events)
        if watch:
            _watch(out, cfn, stack_name, status)

    common.guarded(run)


def _watch(out: Output, cfn: Any, stack_name: str, status: str) -> None:
    from valohai_cfn import console, deploy

    if status == "REVIEW_IN_PROGRESS":
        out.line("Waiting for a change set to be executed: nothing runs until then (valohai-cfn execute).")
        return
    if not status.endswith("_IN_PROGRESS"):
        return
    with deploy.stopped_watching_on_ctrl_c(stack_name), out.progress() as progress:
        outcome = deploy.follow(
            cfn, stack_name, progress=progress, after=deploy.newest_event_id(cfn, stack_name), stack_name=stack_name
        )
    if outcome.status and deploy.has_failed(outcome.status):
        console.show_root_cause(out, outcome)


@click.command("outputs")
@common.stack_name_argument()
@common.output_option("env")
@common.aws_options
def outputs_command(stack_name, output_format, region, profile, endpoint_url) -> None:
    """Print the stack's outputs: a table, JSON (--output json), or KEY=value lines a shell can source
    (--output env)."""
    from valohai_cfn import console, deploy

    out = _output(output_format)

    def run() -> None:
        cfn = common.aws_clients(region, profile, endpoint_url)("cloudformation")
        values = deploy.outputs(deploy.describe(cfn, stack_name))
        if output_format == "json":
            out.json(values)
        elif output_format == "env":
            for key, value in values.items():
                click.echo(f"{key}={shlex.quote(value)}")
        else:
            console.show_outputs(out, values)

    common.guarded(run)


@click.command("drift")
@common.stack_name_argument()
@common.output_option()
@common.aws_options
def drift_command(stack_name, output_format, region, profile, endpoint_url) -> int:
    """Detect drift: resources changed outside CloudFormation (a security group rule edited in the console)
    with expected → actual. Exit 0 when in sync, 3 when anything drifted."""
    from valohai_cfn import console, deploy

    out = _output(output_format)

    def run() -> int:
        cfn = common.aws_clients(region, profile, endpoint_url)("cloudformation")
        out.line(f"Detecting drift of {stack_name}…")
        status, drifted, unchecked = deploy.detect_drift(
            cfn, stack_name, on_wait=console.heartbeat(out, "still detecting drift")
        )
        if out.as_json:
            out.json(console.drift_json(stack_name, status, drifted, unchecked))
        console.show_drift(out, status, drifted, unchecked)
        return common.EXIT_CHANGES if drifted else common.EXIT_OK

    return common.guarded(run)


@click.command("delete")
@common.stack_name_argument()
@common.aws_options
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Delete without asking.")
@click.option(
    "--force",
    is_flag=True,
    help="Lift termination protection, together with the delete (put back if the delete is refused or fails).",
)
@common.role_arn_option("IAM role CloudFormation assumes for the delete.")
def delete_command(stack_name, region, profile, endpoint_url, assume_yes, force, role_arn) -> None:
    """Delete the stack. Lists what is kept (the bucket, the final database snapshot, the secrets) and what is
    removed first, and asks (--yes: without asking; no terminal and no --yes: refused)."""
    from valohai_cfn import lifecycle

    out = _output()

    def run() -> None:
        request = lifecycle.DeleteRequest(stack_name, force=force, role_arn=role_arn)
        aws = common.aws_clients(region, profile, endpoint_url)
        result = lifecycle.delete_stack(aws, request, approve=common.approver(assume_yes), report=_report(out))
        if result.end is lifecycle.End.DECLINED:
            out.line("Nothing deleted.")

    common.guarded(run)


COMMANDS = (
    preflight_command,
    deploy_command,
    plan_command,
    execute_command,
    diff_command,
    status_command,
    outputs_command,
    drift_command,
    delete_command,
)
