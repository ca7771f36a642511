"""pool deploy, list and remove: worker pools in other accounts and regions (valohai_cfn.pools).

Each command parses its options, calls one step of valohai_cfn.pools with the pool's clients (--profile,
--region) and the installation's (--installation-profile, --installation-region), an approval callback and a
console.Report, and renders what came back. It decides nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from valohai_cfn.cli import common
from valohai_cfn.cli.stack import _output, _refuse_without_approver, _rendered, _report, shown_preflight


def installation_options(command):
    """--installation and the clients of the installation's account: its own profile and region."""
    command = click.option(
        "--installation-region",
        callback=common.region_callback,
        help="The installation's region (default: the pool's --region).",
    )(command)
    command = click.option(
        "--installation-profile",
        callback=common._profile,
        help="AWS profile of the installation's account (default: the environment's).",
    )(command)
    return click.option(
        "--installation", required=True, metavar="STACK", help="The installation's stack (valohai-cfn deploy made it)."
    )(command)


def _installation_aws(options: dict[str, Any]) -> Any:
    region = options["installation_region"] or options["region"] or common.default_region()
    return common.aws_clients(region, options["installation_profile"], options["endpoint_url"])


def _pool_aws(options: dict[str, Any]) -> Any:
    return common.aws_clients(options["region"], options["profile"], options["endpoint_url"])


def given_specs(specs: dict[str, dict]) -> dict[str, dict]:
    """The pool template's parameters as a pool's parameter file gives them: what pool deploy takes from the
    installation (its master role, its queue's URL) is not required there (and is checked if given)."""
    from valohai_cfn.pools import FROM_INSTALLATION

    return {name: {**spec, "Default": ""} if name in FROM_INSTALLATION else spec for name, spec in specs.items()}


@click.group("pool")
def pool_group() -> None:
    """Worker pools: workers in other accounts and regions, scaled by the installation (README: Worker pools)."""


@pool_group.command("deploy")
@installation_options
@common.stack_name_option()
@click.option(
    "--params",
    "params_file",
    required=True,
    type=click.Path(path_type=Path),
    help="The pool's parameter file (valohai-cfn params init --pool writes one).",
)
@common.set_option
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Stack tag; repeat for several.")
@click.option(
    "--template",
    "template_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this pool template file instead of a fresh build; cfn-lint checks it.",
)
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Execute both changes without asking.")
@click.option("--skip-preflight", is_flag=True, help="Do not check the pool's account and its way to the queue.")
@click.option("--allow-replace", is_flag=True, help="As for deploy.")
@click.option("--no-termination-protection", is_flag=True, help="Leave termination protection off on a new pool.")
@click.option(
    "--accounts",
    metavar="ID,ID",
    callback=lambda ctx, param, value: _listed(value, ACCOUNT_ID, "a 12-digit account id", param),
    help="Deploy the pool as a StackSet (self-managed permissions) to these accounts; --stack-name names it.",
)
@click.option(
    "--organizational-units",
    metavar="OU,OU",
    callback=lambda ctx, param, value: _listed(value, ORGANIZATIONAL_UNIT, "an organizational unit id (ou-…)", param),
    help="Deploy the pool as a StackSet (service-managed permissions) to these units' accounts.",
)
@click.option(
    "--regions",
    metavar="REGION,REGION",
    callback=lambda ctx, param, value: _listed(value, None, "", param),
    help="The StackSet's regions (with --accounts or --organizational-units).",
)
@click.option(
    "--region-params",
    "region_params",
    multiple=True,
    metavar="[ACCOUNT/]REGION=FILE",
    help="A parameter file of what differs there (VpcId, WorkerSubnetIds, WorkerAmiId, WorkerKeyPairName); "
    "repeat for each region (or account and region).",
)
@common.aws_options
def pool_deploy(**options) -> int:
    """Deploy a worker pool's stack with the pool's account (--profile, --region), then register it with the
    installation: an update of the installation's WorkerPoolRoleArns, so that its master role may assume the
    pool's scaling role and its app registers the pool's environments.

    Each of the two is reviewed and asked for (--yes: without asking), with deploy's preflight, guard,
    protections, progress and exit codes. The installation's master role and queue URL come from the
    installation; the queue must use TLS when the pool is in another account.
    """
    from valohai_cfn import pools

    _refuse_without_approver(options, to=" to deploy without asking")
    if options["accounts"] or options["organizational_units"] or options["regions"] or options["region_params"]:
        return _deploy_stack_set(options)
    region = options["region"] or common.default_region()
    source = (
        common.template_source(options["template_path"], region)
        if options["template_path"]
        else (common.built_pool_source())
    )
    parameters = common.checked_parameters(
        options["params_file"], given_specs(source.specs), common.key_values(options["overrides"], "--set")
    )
    tags = common.key_values(options["tags"], "--tag")
    out = _output()

    def run() -> int:
        request = pools.PoolDeployRequest(
            installation=options["installation"],
            stack_name=options["stack_name"],
            template=source,
            parameters=parameters,
            tags=tags,
            preflight=not options["skip_preflight"],
            allow_replace=options["allow_replace"],
            termination_protection=not options["no_termination_protection"],
        )
        result = pools.deploy_pool(
            _pool_aws(options),
            _installation_aws(options),
            request,
            approve=common.approver(options["assume_yes"]),
            report=_report(out),
        )
        assert result.deployed is not None
        code = _rendered(out, result.deployed, options)
        if result.registration is not None:
            out.line(f"Pool {result.pool.name} is registered with {options['installation']}: {result.pool.role_arn}")
        return code

    return common.guarded(run)


ACCOUNT_ID = r"[0-9]{12}"
ORGANIZATIONAL_UNIT = r"ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}"


def _listed(value: str | None, pattern: str | None, what: str, param: click.Parameter) -> tuple[str, ...]:
    import re

    items = tuple(v.strip() for v in (value or "").split(",") if v.strip())
    for item in items:
        if pattern and not re.fullmatch(pattern, item):
            raise click.BadParameter(f"{item!r} is not {what}", param=param)
        if pattern is None:
            common.region_callback(None, param, item)  # type: ignore[arg-type]
    return items


def _region_parameters(values: tuple[str, ...], specs: dict[str, dict]) -> dict[tuple[str | None, str], dict[str, str]]:
    """--region-params [ACCOUNT/]REGION=FILE: each file checked against the pool template's parameters."""
    import re

    from valohai_cfn.params import load_parameters
    from valohai_cfn.pools import PER_TARGET_PARAMETERS

    found: dict[tuple[str | None, str], dict[str, str]] = {}
    for value in values:
        where, sep, path = value.partition("=")
        account, slash, region = where.rpartition("/")
        if not sep or not path or (slash and not re.fullmatch(ACCOUNT_ID, account)):
            raise click.BadParameter(f"{value!r} is not [ACCOUNT/]REGION=FILE", param_hint="--region-params")
        common.region_callback(None, None, region)  # type: ignore[arg-type]
        own = {k: v for k, v in specs.items() if k in PER_TARGET_PARAMETERS}
        given = common.guarded(lambda path=path: load_parameters(Path(path)))
        others = sorted(set(given) - set(own))
        if others:
            raise common.BadInput(
                f"{path}: only {', '.join(PER_TARGET_PARAMETERS)} may differ by region, not {', '.join(others)}"
            )
        common.stop_on_problems(path, [p for k, v in given.items() for p in _problems(k, v, own[k])])
        found[(account or None, region)] = given
    return found


def _problems(name: str, value: str, spec: dict) -> list:
    from valohai_cfn.params import check_value

    return check_value(name, value, spec)


def _deploy_stack_set(options: dict[str, Any]) -> int:
    from valohai_cfn import pools

    if bool(options["accounts"]) == bool(options["organizational_units"]):
        raise common.BadInput(
            "a StackSet needs either --accounts (self-managed) or --organizational-units (service-managed)"
        )
    if not options["regions"]:
        raise common.BadInput("a StackSet needs --regions")
    source = common.built_pool_source()
    specs = given_specs(source.specs)
    # What each region's file gives is not required of the shared file.
    shared = {
        k: {**v, "Default": v.get("Default", "")} if k in pools.PER_TARGET_PARAMETERS else v for k, v in specs.items()
    }
    parameters = common.checked_parameters(
        options["params_file"], shared, common.key_values(options["overrides"], "--set")
    )
    request = pools.StackSetRequest(
        installation=options["installation"],
        stack_set_name=options["stack_name"],
        template=source,
        parameters=parameters,
        regions=options["regions"],
        accounts=options["accounts"],
        organizational_units=options["organizational_units"],
        region_parameters=_region_parameters(options["region_params"], specs),
        tags=common.key_values(options["tags"], "--tag"),
    )
    out = _output()

    def run() -> int:
        made, _ = pools.deploy_stack_set(
            _pool_aws(options),
            _installation_aws(options),
            request,
            approve=common.approver(options["assume_yes"]),
            report=_report(out),
        )
        for pool in made:
            out.line(f"Pool {pool.name} ({pool.account}, {pool.region}) is registered with {options['installation']}.")
        return common.EXIT_OK

    return common.guarded(run)


@pool_group.command("preflight")
@installation_options
@click.option(
    "--params", "params_file", required=True, type=click.Path(path_type=Path), help="The pool's parameter file."
)
@common.set_option
@common.output_option()
@common.aws_options
def pool_preflight(**options) -> None:
    """Check a pool's account before anything is made: its VPC, subnets, image, key pair and types, and its way
    to the installation's queue (TLS across accounts; routes both ways through a peering connection or a transit
    gateway; the queue's security group admitting the pool's subnets). One row per check; exit 1 when any
    failed, 2 for a name that collides with another pool's."""
    from valohai_cfn import pools

    out = _output(options["output_format"])
    source = common.built_pool_source()
    parameters = common.checked_parameters(
        options["params_file"], given_specs(source.specs), common.key_values(options["overrides"], "--set")
    )

    def run() -> None:
        pool_aws = _pool_aws(options)
        *_, checks = pools.prepared(pool_aws, _installation_aws(options), options["installation"], parameters, source)
        shown_preflight(out, checks(pool_aws))

    common.guarded(run)


@pool_group.command("remove")
@installation_options
@common.stack_name_option()
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Deregister and delete without asking.")
@click.option("--force", is_flag=True, help="Lift the pool stack's termination protection, together with its delete.")
@click.option(
    "--stack-set",
    is_flag=True,
    help="--stack-name is a StackSet pool deploy made: every instance's pool is deregistered, then the instances "
    "and the StackSet are deleted (--profile and --region: its administrator's).",
)
@common.aws_options
def pool_remove(**options) -> None:
    """Take a worker pool out of use, then delete it: first the installation's update that deregisters it (its
    master role may no longer assume the pool's scaling role, its app no longer registers the pool), then —
    only once that succeeded — the pool's stack with its groups. Each is listed or reviewed and asked for. A
    registered pool whose stack is already gone (CloudFormation still lists it deleted) is deregistered only."""
    from valohai_cfn import lifecycle, pools

    _refuse_without_approver(options, to=" to remove without asking")
    out = _output()

    def run() -> None:
        if options["stack_set"]:
            gone = pools.remove_stack_set(
                _pool_aws(options),
                _installation_aws(options),
                installation=options["installation"],
                stack_set_name=options["stack_name"],
                approve=common.approver(options["assume_yes"]),
                report=_report(out),
            )
            out.line(f"StackSet {options['stack_name']} is deleted, with its {len(gone)} pool(s).")
            return
        result = pools.remove_pool(
            _pool_aws(options),
            _installation_aws(options),
            installation=options["installation"],
            stack_name=options["stack_name"],
            force=options["force"],
            approve=common.approver(options["assume_yes"]),
            report=_report(out),
        )
        if result.stack_gone:
            pool = result.pool
            out.line(
                f"Pool {pool.name} is deregistered; its stack {options['stack_name']} was already gone "
                f"({pool.account}, {pool.region})."
            )
        if result.deleted is not None and result.deleted.end is lifecycle.End.DECLINED:
            out.line(f"Pool {result.pool.name} is deregistered; its stack was not deleted.")

    common.guarded(run)


@pool_group.command("list")
@installation_options
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    callback=lambda ctx, param, values: tuple(common._profile(ctx, param, v) for v in values),
    help="AWS profile of a pool's account, to read its groups; repeat for several (default: the environment's).",
)
@click.option("--region", callback=common.region_callback, envvar="AWS_REGION", help="Default installation region.")
@click.option("--endpoint-url", callback=common._endpoint, help="AWS endpoint to talk to instead.")
@common.output_option()
def pool_list(**options) -> None:
    """The installation's registered pools: name, account, region, and each one's worker groups (types and
    health: in service / desired / max) read with the profile of its account."""
    from valohai_cfn import console, pools
    from valohai_cfn.aws import Clients

    out = _output(options["output_format"])

    def run() -> None:
        accounts: dict[str, str | None] = {}
        for profile in options["profiles"] or (None,):
            identity = common.aws_clients(options["region"], profile, options["endpoint_url"])("sts")
            accounts.setdefault(identity.get_caller_identity()["Account"], profile)

        def clients_for(pool: pools.Pool) -> Any:
            if pool.account not in accounts:
                return None
            return Clients(accounts[pool.account], pool.region, options["endpoint_url"])

        installation, statuses = pools.list_pools(_installation_aws(options), options["installation"], clients_for)
        if out.as_json:
            out.json(console.pools_json(installation, statuses))
        console.show_pools(out, installation, statuses)

    common.guarded(run)


COMMANDS = (pool_group,)
