"""The stack's lifecycle: preflight, deploy, plan, execute, diff, status, outputs, drift, delete.

Each command parses its options, calls valohai_cfn.deploy (which returns data) in the order the command
means, asks where a person decides, and hands what came back to valohai_cfn.console.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from valohai_cfn.cli import common

if TYPE_CHECKING:  # imported where they are used, so that `valohai-cfn build` loads none of them
    from valohai_cfn.console import Output
    from valohai_cfn.deploy import ChangeSet, Plan, Protections, StackState
    from valohai_cfn.preflight import Check
    from valohai_cfn.review import Review

# The outputs a finished deploy shows: where to go, how to get in, and the machines that run jobs.
HEADLINE_OUTPUTS = ("AppUrl", "FirstLogin")
WORKER_GROUP_OUTPUT_PREFIX = "WorkerGroup"


def _output(output_format: str = "text") -> Output:
    from valohai_cfn.console import Output

    return Output(as_json=output_format == "json")


def _preflight(aws: Any, source: common.TemplateSource, params: dict[str, str], stack_name: str | None) -> list[Check]:
    from valohai_cfn.preflight import Account, run_checks

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
    defaults = {n: d for n, d in source.defaults.items() if d is not None}
    return run_checks(account, {**defaults, **params})


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
    from valohai_cfn import console

    out = _output(output_format)
    source = common.template_source(template_path, region)
    parameters = common.checked_parameters(params_file, source.specs, common.key_values(overrides, "--set"))

    def run():
        checks = _preflight(common.aws_clients(region, profile, endpoint_url), source, parameters, stack_name)
        if out.as_json:
            out.json(console.preflight_json(checks))
        console.show_preflight(out, checks)
        if not all(c.ok for c in checks):
            raise click.ClickException("preflight failed: see the rows marked FAILED")

    common.guarded(run)


# -- deploy and plan ----------------------------------------------------------------------------


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
        click.option("--bucket", help="S3 bucket for a template over 51,200 bytes."),
        click.option("--role-arn", help="IAM role CloudFormation assumes for the operation (a service role)."),
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


@dataclass
class Deployment:
    """One deploy or plan: what it was given and what it found."""

    options: dict[str, Any]
    out: Output
    source: common.TemplateSource
    parameters: dict[str, str]
    aws: Any

    @property
    def name(self) -> str:
        return self.options["stack_name"]

    @property
    def cfn(self) -> Any:
        return self.aws("cloudformation")


def _prepare(options: dict, *, execute: bool) -> Deployment:
    """Everything checked that can be without AWS: approval possible, template, parameters."""
    if execute and not options["assume_yes"] and not common.interactive():
        raise click.ClickException(
            "nobody to approve the change: no terminal to ask in. Add --yes to deploy without asking, "
            "or run valohai-cfn plan to only see the change"
        )
    source = common.template_source(options["template_path"], options["region"] or common.default_region())
    overrides = common.key_values(options["overrides"], "--set")
    parameters = common.checked_parameters(options["params_file"], source.specs, overrides)
    tags = common.key_values(options["tags"], "--tag")
    options = {**options, "tags": tags}
    out = _output(options.get("output_format", "text"))
    aws = common.aws_clients(options["region"], options["profile"], options["endpoint_url"])
    return Deployment(options, out, source, parameters, aws)


def _settled_state(d: Deployment, *, execute: bool) -> StackState:
    """The stack's state once no operation is under way, a failed first create deleted (when approved)."""
    from valohai_cfn import deploy

    state = deploy.stack_state(d.cfn, d.name)
    if state.plan is deploy.Plan.WAIT:
        d.out.line(f"Stack {d.name} is {state.status}; waiting for that operation to end (Ctrl-C stops waiting)…")
        with d.out.progress() as progress:
            state = deploy.wait_until_settled(d.cfn, d.name, progress)
    if state.plan is deploy.Plan.RECREATE:
        state = _recreate(d, state, execute=execute)
    if state.plan is deploy.Plan.REFUSE:
        raise click.ClickException(f"stack {d.name} is {state.status}: {state.meaning}")
    return state


def _recreate(d: Deployment, state: StackState, *, execute: bool) -> StackState:
    """Delete a stack whose first create failed, to create it again: listed, asked, never by plan."""
    from valohai_cfn import console, deploy

    if not execute:
        raise click.ClickException(f"stack {d.name} is {state.status}: {state.meaning}; plan never deletes")
    if not d.options.get("recreate_failed"):
        raise click.ClickException(f"stack {d.name} is {state.status}: {state.meaning}")
    console.show_kept(d.out, deploy.kept_on_delete(d.cfn, d.name))
    approve = common.approver(d.options["assume_yes"])
    if approve is None or not approve(f"Delete stack {d.name} ({state.status}) to create it again?"):
        raise click.ClickException("nothing deleted or created")
    with d.out.progress() as progress:
        deploy.delete_stack(d.cfn, d.name, progress=progress, role_arn=d.options["role_arn"])
    d.out.line(f"Stack {d.name} is deleted; creating it again.")
    return deploy.stack_state(d.cfn, d.name)


def _protections(d: Deployment) -> Protections:
    from valohai_cfn.deploy import Protections
    from valohai_cfn.stack.policy import stack_policy

    return Protections(
        termination=not d.options.get("no_termination_protection", False),
        stack_policy=stack_policy(d.source.document),
    )


def _review(d: Deployment, state: StackState, change_set: ChangeSet, effective: dict[str, str]) -> Review:
    """The change set's review: its changes, with the templates' property values and security summary."""
    from valohai_cfn import deploy, review

    deployed = None
    if change_set.kind == "UPDATE":
        deployed = deploy.template_of(d.cfn, StackName=state.stack["StackId"])
    from_templates = review.review(deployed, state.parameters if deployed else None, d.source.document, effective)
    return review.with_change_set(from_templates, change_set.changes)


def _change_set_link(d: Deployment, change_set: ChangeSet) -> str | None:
    from valohai_cfn.publish import PublishError, change_set_url

    if d.options["endpoint_url"]:
        return None  # not AWS: there is no console to link to
    try:
        return change_set_url(d.cfn.meta.region_name, change_set.stack_id, change_set.arn)
    except PublishError:
        return None


def _not_executed(d: Deployment, change_set: ChangeSet, *, why: str) -> bool:
    """A change set that is not executed: kept with --keep (or when it updates a stack), else deleted with
    the empty stack a new stack's change set made. True when it was kept."""
    from valohai_cfn import deploy

    if d.options["keep"] or (change_set.kind == "UPDATE" and why == "planned"):
        d.out.line(
            f"Change set {change_set.name} is ready and was not executed. Execute exactly it with: "
            f"valohai-cfn execute --stack-name {d.name} {change_set.name}"
        )
        return True
    stack_gone = deploy.discard(d.cfn, change_set)
    d.out.line(
        f"Change set {change_set.name} was not executed and is deleted"
        + (f", with the empty stack {d.name} it made" if stack_gone else "")
        + " (--keep keeps it)."
    )
    return False


def _check_account(d: Deployment) -> None:
    from valohai_cfn import console

    if d.options["skip_preflight"]:
        return
    checks = _preflight(d.aws, d.source, d.parameters, d.name)
    console.show_preflight(d.out, checks)
    if not all(c.ok for c in checks):
        raise click.ClickException("preflight failed: fix the rows marked FAILED, or deploy with --skip-preflight")


def _change_set(d: Deployment, state: StackState, plan: Plan) -> tuple[ChangeSet | None, dict[str, str]]:
    """The change set (None: nothing to change) and the parameter values it gives the stack."""
    from valohai_cfn import deploy

    entries = deploy.parameters_for(plan, d.parameters, d.source.defaults, state.parameters)
    effective = deploy.effective_parameters(entries, state.parameters)
    if plan is deploy.Plan.UPDATE:
        refused = deploy.fixed_parameter_changes(state.parameters, effective)
        if refused:
            raise click.ClickException("; ".join(refused))
    s3 = d.aws("s3") if d.options["bucket"] else None
    request = deploy.ChangeSetRequest(
        stack_name=d.name,
        plan=plan,
        template=deploy.template_location(d.source.body, s3, d.options["bucket"]),
        parameters=entries,
        tags=d.options["tags"],
        role_arn=d.options["role_arn"],
    )
    name = deploy.new_change_set_name()
    d.out.line(f"Creating change set {name} ({plan.value}) for stack {d.name}…")
    change_set = deploy.create_change_set(d.cfn, request, name)
    if change_set.is_empty:
        d.cfn.delete_change_set(ChangeSetName=change_set.arn)
        d.out.line(f"Stack {d.name} is up to date: no changes.")
        return None, effective
    if change_set.status != "CREATE_COMPLETE":
        deploy.discard(d.cfn, change_set)
        raise click.ClickException(f"change set {change_set.name} is {change_set.status}: {change_set.reason}")
    return change_set, effective


def _refuse_data_loss(d: Deployment, change_set: ChangeSet, review: Review) -> None:
    from valohai_cfn import console, deploy

    if review.data_loss and not d.options["allow_replace"]:
        deploy.discard(d.cfn, change_set)
        raise click.ClickException(console.data_loss_text(review) + "\nNothing was changed.")


def _planned(d: Deployment, change_set: ChangeSet, review: Review) -> int:
    """plan's end: the link, the change set kept or discarded, the JSON, the exit code."""
    from valohai_cfn import console

    link = _change_set_link(d, change_set)
    if link:
        d.out.line(f"Review it in the console: {link}")
    kept = _not_executed(d, change_set, why="planned")
    if d.out.as_json:
        d.out.json(console.review_json(review, change_set, stack=d.name, console_url=link, kept=kept))
    return common.EXIT_CHANGES if d.options.get("exit_code") else common.EXIT_OK


def _deployment(d: Deployment, *, execute: bool) -> int:
    from valohai_cfn import console, deploy
    from valohai_cfn.review import Review

    _check_account(d)
    state = _settled_state(d, execute=execute)
    plan = state.plan if state.plan is deploy.Plan.UPDATE else deploy.Plan.CREATE
    protections = _protections(d)
    if execute and plan is deploy.Plan.UPDATE and state.made_by_this_tool:
        # Every deploy mends what an interrupted one (or a hand) left off.
        console.show_protections(d.out, deploy.ensure_protections(d.cfn, d.name, protections), restored=True)
    change_set, effective = _change_set(d, state, plan)
    if change_set is None:
        if d.out.as_json:
            d.out.json(console.review_json(Review(), stack=d.name))
        return common.EXIT_OK
    review = _review(d, state, change_set, effective)
    console.show_review(d.out, review)
    _refuse_data_loss(d, change_set, review)
    if not execute:
        return _planned(d, change_set, review)
    approve = common.approver(d.options["assume_yes"])
    if approve is None or not approve(f"Execute change set {change_set.name}?"):
        _not_executed(d, change_set, why="declined")
        return common.EXIT_OK
    return _execute(d, change_set, review, protections)


def _run_deployment(options: dict, *, execute: bool) -> int:
    d = _prepare(options, execute=execute)
    return common.guarded(lambda: _deployment(d, execute=execute))


def _execute(d: Deployment, change_set: ChangeSet, review: Review, protections: Protections) -> int:
    from valohai_cfn import console, deploy
    from valohai_cfn.stack.policy import stack_policy

    replaceable = frozenset(c.logical_id for c in review.data_loss)
    temporary = stack_policy(d.source.document, replaceable=replaceable) if replaceable else None
    if temporary:
        d.out.warn(
            f"--allow-replace: the stack policy lets this update replace {', '.join(sorted(replaceable))}; "
            "it is put back afterwards."
        )
    d.out.line(f"Executing change set {change_set.name}…")
    with d.out.progress() as progress:
        outcome = deploy.execute(
            d.cfn,
            change_set,
            progress=progress,
            protections=protections,
            temporary_policy=temporary,
            disable_rollback=d.options.get("disable_rollback", False),
        )
    console.show_protections(d.out, outcome.protections)
    if not deploy.is_success(outcome.status, change_set.kind):
        console.show_root_cause(d.out, outcome)
        raise click.ClickException(f"stack {d.name} ended in {outcome.status}")
    d.out.line(f"Stack {d.name} is {outcome.status}.", "bold green")
    _show_headline(d.out, outcome.stack or deploy.describe(d.cfn, change_set.stack_id))
    return common.EXIT_OK


def _show_headline(out: Output, stack: dict) -> None:
    """The app's address, the first login, and the worker groups: what a person does next."""
    from valohai_cfn import console, deploy

    values = deploy.outputs(stack)
    headline = {k: v for k, v in values.items() if k in HEADLINE_OUTPUTS or k.startswith(WORKER_GROUP_OUTPUT_PREFIX)}
    console.show_outputs(out, headline)


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
    "again; lists what is kept and asks first.",
)
def deploy_command(**options) -> int:
    """Create or update the stack through a change set, with live progress.

    Checks the parameter file and the account (preflight) first. Shows the review (parameters, resource
    and property changes, security changes) and asks before executing; --yes executes without asking.
    Without a terminal and without --yes it refuses at once (exit 1). Refuses to replace or remove the
    database, bucket, secrets or queue unless --allow-replace. Termination protection and the stack policy
    are applied as soon as the stack exists, and re-applied by every deploy. "No changes" is success.
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


@click.command("execute")
@common.stack_name_option()
@click.argument("change_set_name")
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Execute without asking.")
@click.option("--allow-replace", is_flag=True, help="As for deploy.")
@click.option("--no-termination-protection", is_flag=True, help="Leave termination protection off on a new stack.")
@click.option("--disable-rollback", is_flag=True, help="As for deploy.")
@common.aws_options
def execute_command(**options) -> int:
    """Execute a change set made by `valohai-cfn plan` (or anyone): the same review, the same data-loss
    guard, the same following and protections as deploy."""
    from valohai_cfn import console, deploy, review

    if not options["assume_yes"] and not common.interactive():
        raise click.ClickException("nobody to approve the change: no terminal to ask in. Add --yes")
    out = _output()
    aws = common.aws_clients(options["region"], options["profile"], options["endpoint_url"])
    cfn = aws("cloudformation")

    def run() -> int:
        change_set = deploy.describe_change_set(cfn, options["change_set_name"], options["stack_name"])
        if change_set.status != "CREATE_COMPLETE" or change_set.execution_status not in ("AVAILABLE", ""):
            raise click.ClickException(
                f"change set {change_set.name} cannot be executed: it is {change_set.status}, "
                f"{change_set.execution_status or 'not available'}"
                + (f" ({change_set.reason})" if change_set.reason else "")
            )
        state = deploy.stack_state(cfn, options["stack_name"])
        change_set.kind = "CREATE" if state.status == "REVIEW_IN_PROGRESS" else "UPDATE"
        document = deploy.template_of(cfn, StackName=change_set.stack_id, ChangeSetName=change_set.arn)
        source = common.TemplateSource("", document, f"change set {change_set.name}")
        parameters = change_set.parameters
        d = Deployment({**options, "keep": True}, out, source, parameters, aws)
        deployed = deploy.template_of(cfn, StackName=change_set.stack_id) if change_set.kind == "UPDATE" else None
        the_review = review.with_change_set(
            review.review(deployed, state.parameters if deployed else None, document, parameters),
            change_set.changes,
        )
        console.show_review(out, the_review)
        if the_review.data_loss and not options["allow_replace"]:
            raise click.ClickException(console.data_loss_text(the_review) + "\nNothing was changed.")
        approve = common.approver(options["assume_yes"])
        if approve is None or not approve(f"Execute change set {change_set.name}?"):
            out.line("Nothing was executed.")
            return common.EXIT_OK
        return _execute(d, change_set, the_review, _protections(d))

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
    new build (or --template) and the params file. Parameters old → new, resources and their properties,
    security changes. Changes nothing."""
    from valohai_cfn import console, deploy, review

    out = _output(output_format)
    source = common.template_source(template_path, region or common.default_region())
    parameters = common.checked_parameters(params_file, source.specs, common.key_values(overrides, "--set"))
    cfn = common.aws_clients(region, profile, endpoint_url)("cloudformation")

    def run() -> int:
        state = deploy.stack_state(cfn, stack_name)
        exists = state.stack is not None and state.status != "REVIEW_IN_PROGRESS"
        plan = deploy.Plan.UPDATE if exists else deploy.Plan.CREATE
        entries = deploy.parameters_for(plan, parameters, source.defaults, state.parameters)
        effective = deploy.effective_parameters(entries, state.parameters)
        deployed = deploy.template_of(cfn, StackName=state.stack["StackId"]) if exists else None
        the_review = review.review(deployed, state.parameters if exists else None, source.document, effective)
        if out.as_json:
            out.json(console.review_json(the_review, stack=stack_name, exists=exists))
        if not exists:
            out.line(f"Stack {stack_name} does not exist: everything would be created.")
        console.show_review(out, the_review)
        return common.EXIT_CHANGES if exit_code and the_review.has_changes else common.EXIT_OK

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
    rolled-back operation."""
    from valohai_cfn import console, deploy

    out = _output(output_format)
    cfn = common.aws_clients(region, profile, endpoint_url)("cloudformation")

    def run() -> None:
        state = deploy.stack_state(cfn, stack_name)
        if state.stack is None:
            raise click.ClickException(f"stack {stack_name} does not exist")
        stack = state.stack
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
    cfn = common.aws_clients(region, profile, endpoint_url)("cloudformation")

    def run() -> None:
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
    cfn = common.aws_clients(region, profile, endpoint_url)("cloudformation")

    def run() -> int:
        out.line(f"Detecting drift of {stack_name}…")
        status, drifted = deploy.detect_drift(cfn, stack_name, on_wait=console.heartbeat(out, "still detecting drift"))
        if out.as_json:
            out.json(console.drift_json(stack_name, status, drifted))
        console.show_drift(out, status, drifted)
        return common.EXIT_CHANGES if drifted else common.EXIT_OK

    return common.guarded(run)


@click.command("delete")
@common.stack_name_argument()
@common.aws_options
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Delete without asking.")
@click.option("--force", is_flag=True, help="Lift termination protection first.")
@click.option("--role-arn", help="IAM role CloudFormation assumes for the delete.")
def delete_command(stack_name, region, profile, endpoint_url, assume_yes, force, role_arn) -> None:
    """Delete the stack. Lists what is kept (the bucket, the final database snapshot, the secrets) first."""
    from valohai_cfn import console, deploy

    out = _output()
    cfn = common.aws_clients(region, profile, endpoint_url)("cloudformation")

    def run() -> None:
        kept, protected = deploy.prepare_delete(cfn, stack_name, force=force)
        console.show_kept(out, kept)
        approve = common.approver(assume_yes)
        if approve is None:
            raise click.ClickException("not deleting without confirmation: run in a terminal or add --yes")
        if not approve(f"Delete stack {stack_name}?"):
            out.line("Nothing deleted.")
            return
        if protected:
            out.line("Lifting termination protection (--force)…")
        with out.progress() as progress:
            deploy.delete_stack(cfn, stack_name, progress=progress, lift_protection=protected, role_arn=role_arn)
        out.line(f"Stack {stack_name} is deleted.")

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
