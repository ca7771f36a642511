"""Worker pools (SPEC "Worker pools"): workers in other accounts and regions, each pool a stack of the pool
template, and the installation's registration of its pools — as steps that return data, on valohai_cfn.lifecycle.

A pool is known by its scaling role, `arn:<partition>:iam::<account>:role/<pool>-role-scaling-<region>` (the
pool template's name for it): the ARN says the pool's name, account and region. The installation registers its
pools declaratively, in its WorkerPoolRoleArns parameter: the master role may assume exactly those roles, and
the app instance's reconcile step registers each one's environments with Valohai's prep (userdata/roi.sh). So a
pool is added or removed by an update of the installation's stack, reviewed and approved like any other, made
from the template the installation has now (registering a pool never upgrades the installation).

The steps keep the lifecycle's promises (they deploy and delete only through it) and its ways: the clients of
each account come in as `aws` callables (valohai_cfn.aws.Clients), approval through `approve`, what happens
through a lifecycle.Reporter. They raise deploy.WrongInput for an input that cannot be (nothing was changed),
deploy.DeployError for what was refused or failed.

Removing a pool takes it out of use first: the installation's update removes its role from WorkerPoolRoleArns,
so the master role may no longer assume it (the app can no longer start or scale a machine there) and the
reconcile step no longer registers it; only then is the pool's stack deleted, with its groups. What the app does
with environments it can no longer scale is Valohai's (README: Worker pools, limits).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from valohai_cfn import deploy, lifecycle
from valohai_cfn.deploy import DeployError, WrongInput
from valohai_cfn.language_extensions import comma_delimited

# The installation's parameter that registers pools, and the pool template's name for the scaling role.
REGISTRATION_PARAMETER = "WorkerPoolRoleArns"
SCALING_ROLE_MARK = "-role-scaling-"
_SCALING_ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::([0-9]{12}):role/(.+)-role-scaling-([a-z0-9-]+)$")
# What the pool template takes from the installation rather than from the parameter file.
FROM_INSTALLATION = ("InstallationMasterRoleArn", "QueueUrl")


@dataclass(frozen=True)
class Pool:
    """A pool, as its scaling role's ARN names it."""

    name: str
    account: str
    region: str
    partition: str = "aws"

    @property
    def role_arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.name}{SCALING_ROLE_MARK}{self.region}"

    @property
    def group_prefix(self) -> str:
        """prep's asg-name-prefix: the pool's groups are <pool>-worker-<type>[-spot]."""
        return f"{self.name}-worker-"

    @classmethod
    def from_role_arn(cls, arn: str) -> Pool:
        found = _SCALING_ROLE_ARN.match(arn)
        if not found:
            raise WrongInput(f"{arn} is not a worker pool's scaling role (role/<pool>-role-scaling-<region>)")
        partition, account, name, region = found.groups()
        return cls(name, account, region, partition)


@dataclass(frozen=True)
class DeployedTemplate:
    """A stack's template as it is deployed (lifecycle.Template): what an update of only its parameters sends."""

    body: str
    document: dict[str, Any]

    @property
    def defaults(self) -> dict[str, str | None]:
        parameters = self.document.get("Parameters", {})
        return {name: (None if "Default" not in p else str(p["Default"])) for name, p in parameters.items()}


@dataclass(frozen=True)
class Installation:
    """The installation a pool works for, read from its stack in its own account and region."""

    stack: dict[str, Any]  # as DescribeStacks gives it
    template: DeployedTemplate
    region: str
    queue_url: str  # as its workers reach it: redis:// or rediss://

    @property
    def name(self) -> str:
        return self.stack["StackName"]

    @property
    def parameters(self) -> dict[str, str]:
        return {p["ParameterKey"]: p.get("ParameterValue", "") for p in self.stack.get("Parameters", [])}

    @property
    def prefix(self) -> str:
        return self.parameters["ResourcePrefix"]

    @property
    def master_role_arn(self) -> str:
        return deploy.outputs(self.stack)["MasterRoleArn"]

    @property
    def account(self) -> str:
        return self.master_role_arn.split(":")[4]

    @property
    def partition(self) -> str:
        return self.master_role_arn.split(":")[1]

    @property
    def tags(self) -> dict[str, str]:
        """The stack's own tags (an update with no tags would remove them), the tool's own left to deploy."""
        return {t["Key"]: t["Value"] for t in self.stack.get("Tags", []) if t["Key"] != deploy.VALOHAI_TAG[0]}

    @property
    def pools(self) -> list[Pool]:
        """The registered pools, in the order they were registered."""
        return [
            Pool.from_role_arn(arn) for arn in comma_delimited(self.parameters.get(REGISTRATION_PARAMETER, "")) if arn
        ]


def read_installation(aws: Any, stack_name: str) -> Installation:
    """The installation stack `stack_name`, read with its account's clients. WrongInput when there is no such
    stack or it is not a Valohai installation; DeployError when its template predates worker pools."""
    cfn = aws("cloudformation")
    region = cfn.meta.region_name
    stack = deploy.stack_state(cfn, stack_name).stack
    if stack is None:
        raise WrongInput(f"installation stack {stack_name} does not exist in {region}")
    parameters = {p["ParameterKey"] for p in stack.get("Parameters", [])}
    if "MasterRoleArn" not in deploy.outputs(stack) or "ResourcePrefix" not in parameters:
        raise WrongInput(
            f"stack {stack_name} is not a Valohai installation: it has no MasterRoleArn output or ResourcePrefix "
            "parameter (is it still being created?)"
        )
    document = deploy.template_of(cfn, StackName=stack["StackId"])
    if REGISTRATION_PARAMETER not in document.get("Parameters", {}):
        raise DeployError(
            f"installation {stack_name} was deployed from a template without worker pools (no "
            f"{REGISTRATION_PARAMETER} parameter): deploy this version's template to it first"
        )
    body = json.dumps(document, separators=(",", ":"), sort_keys=True)
    prefix = next(p["ParameterValue"] for p in stack["Parameters"] if p["ParameterKey"] == "ResourcePrefix")
    # The one URL the app and the workers use (SSM /<prefix>/queue-url), scheme and options included.
    queue_url = aws("ssm").get_parameter(Name=f"/{prefix}/queue-url")["Parameter"]["Value"]
    return Installation(stack, DeployedTemplate(body, document), region, queue_url)


# -- a pool's name and parameters ------------------------------------------------------------------------


def _overlap(one: str, other: str) -> bool:
    """Whether either prefix is the start of the other: prep, finding names by one, would take the other's."""
    return one.startswith(other) or other.startswith(one)


def check_name(installation: Installation, pool: Pool) -> None:
    """WrongInput when the pool's names would meet another's, which prep and the app tell apart by prefix:
    its queue and environment prefix `<pool>-` (prep's queue-name-prefix, valohai-env-name-prefix) with another
    registered pool's anywhere (one queue, one app; one name in two regions has queues of its own region), and
    its group prefix `<pool>-worker-` (asg-name-prefix; also `<pool>-sg-workers`) with the installation's own
    `<ResourcePrefix>-worker-` in the installation's account and region."""
    for other in installation.pools:
        if other.role_arn == pool.role_arn:
            continue  # this pool itself, deployed again
        what = f"pool {other.name} of account {other.account}"
        if (other.name, other.region) == (pool.name, pool.region):
            raise WrongInput(
                f"pool name {pool.name} in {pool.region} is taken by {what}: their queues ({pool.name}-{pool.region}-"
                "<type>) would be one; choose another PoolName"
            )
        if other.name != pool.name and _overlap(f"{pool.name}-", f"{other.name}-"):
            raise WrongInput(
                f"pool name {pool.name} collides with {what} ({other.region}): prep finds queues and environments by "
                f"the prefixes {pool.name}- and {other.name}-, one the start of the other; choose another PoolName"
            )
    own = Pool(installation.prefix, installation.account, installation.region, installation.partition)
    if (own.account, own.region) == (pool.account, pool.region) and _overlap(pool.group_prefix, own.group_prefix):
        raise WrongInput(
            f"pool name {pool.name} collides with the installation's ResourcePrefix {own.name} in account "
            f"{own.account}, {own.region}: prep finds groups by the prefixes {pool.group_prefix} and "
            f"{own.group_prefix}, one the start of the other; choose another PoolName"
        )


def check_name_free(aws: Any, pool: Pool, stack_name: str) -> None:
    """WrongInput when the pool's own names in its account and region — its registration parameter
    `/<pool>/registration` and its scaling role — exist and are not stack `stack_name`'s: another stack of the
    same PoolName there would fail on them (CloudFormation: AlreadyExists) and be left rolled back. `aws`: the
    pool's clients. The holder is the stack CloudFormation finds the name in (DescribeStackResources)."""
    from valohai_cfn.preflight import Found, _holder_in

    parameters = aws("ssm").get_parameters(Names=[f"/{pool.name}/registration"])["Parameters"]
    found = [p["Name"] for p in parameters]
    iam, role = aws("iam"), f"{pool.name}-role-scaling-{pool.region}"
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        found.append(iam.get_role(RoleName=role)["Role"]["RoleName"])
    for name in found:
        holder = _holder_in(aws("cloudformation"), Found(frozenset({name}), {}))
        if holder != stack_name:
            where = f"held by stack {holder}" if holder else "in no stack"
            raise WrongInput(
                f"pool name {pool.name} is taken in account {pool.account}, {pool.region}: {name} exists ({where}); "
                "choose another PoolName"
                + (f", or deploy to stack {holder} to update that pool" if holder else ", or delete it")
            )


def pool_parameters(installation: Installation, given: dict[str, str], pool_account: str) -> dict[str, str]:
    """The pool's parameters: the file's, with what the installation decides (its master role, its queue's
    URL). WrongInput when the file says otherwise, or when the queue would be reached from another account
    without TLS."""
    derived = {"InstallationMasterRoleArn": installation.master_role_arn, "QueueUrl": installation.queue_url}
    for name, value in derived.items():
        if name in given and given[name] != value:
            raise WrongInput(
                f"{name} = {given[name]!r} is not installation {installation.name}'s ({value}): leave it out, pool "
                "deploy sets it"
            )
    if pool_account != installation.account and not installation.queue_url.startswith("rediss://"):
        raise WrongInput(
            f"installation {installation.name}'s queue is not encrypted in transit and the pool is in another account "
            f"({pool_account}): deploy the installation with QueueTransitEncryption=true first"
        )
    return {**given, **derived}


# -- preflight: the pool's account, and the way to the installation's queue ---------------------------------


def queue_network(aws: Any, installation: Installation) -> Any:
    """Where the installation's queue is (preflight.QueueNetwork), read with the installation's clients."""
    from valohai_cfn.preflight import QueueNetwork, routes_by_subnet

    ec2 = aws("ec2")
    parameters = installation.parameters
    vpc_id = parameters["VpcId"]
    subnet_ids = [s for s in comma_delimited(parameters.get("CacheSubnetIds", "")) if s]
    subnets = {s["SubnetId"]: s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]}
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [f"{installation.prefix}-sg-queue"]},
        ]
    )["SecurityGroups"]
    return QueueNetwork(
        account=installation.account,
        region=installation.region,
        vpc_id=vpc_id,
        tls=installation.queue_url.startswith("rediss://"),
        subnets=subnets,
        routes=routes_by_subnet(ec2, vpc_id, sorted(subnets)),
        security_group=groups[0] if groups else None,
    )


def pool_checks(parameters: dict[str, str], template: Any, queue: Any) -> Callable[[Any], list]:
    """lifecycle.DeployRequest.account_checks of a pool: its checks with the pool's clients."""
    from valohai_cfn.preflight import Account, run_pool_checks

    def run(aws: Any) -> list:
        cfn = aws("cloudformation")
        account = Account(ec2=aws("ec2"), acm=None, s3=None, sts=aws("sts"), cfn=cfn, region=cfn.meta.region_name)
        values = {**{n: d for n, d in template.defaults.items() if d is not None}, **parameters}
        return run_pool_checks(account, values, queue)

    return run


# -- what the steps tell ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registering:
    """The installation's update that registers (or deregisters) pools is next."""

    installation: str
    added: tuple[Pool, ...]
    removed: tuple[Pool, ...]


@dataclass(frozen=True)
class Deregistered:
    """The pool is no longer registered: the master may not assume its role; its stack goes next."""

    installation: str
    pool: Pool


@dataclass
class PoolResult:
    pool: Pool
    deployed: lifecycle.Result | None = None  # the pool's stack
    registration: lifecycle.Result | None = None  # the installation's update
    deleted: lifecycle.Result | None = None  # the pool's stack, removed
    stack_gone: bool = False  # pool remove found its stack already deleted


# -- registration: an update of the installation's stack ---------------------------------------------------


def register(
    aws: Any,
    installation: Installation,
    *,
    add: Iterable[Pool] = (),
    remove: Iterable[Pool] = (),
    approve: lifecycle.Approve | None,
    report: lifecycle.Reporter,
) -> lifecycle.Result:
    """Update the installation's WorkerPoolRoleArns — and nothing else: its deployed template, its other
    parameters' values, its tags and its termination protection as they are — through the lifecycle (change
    set, review, approval, protections). Up to date (no change set executed) when nothing changes."""
    current = [p.role_arn for p in installation.pools]
    gone = {p.role_arn for p in remove}
    new = [p for p in add if p.role_arn not in current]
    wanted = [arn for arn in current if arn not in gone] + [p.role_arn for p in new]
    removed = tuple(p for p in installation.pools if p.role_arn in gone)
    report.note(Registering(installation.name, tuple(new), removed))
    request = lifecycle.DeployRequest(
        stack_name=installation.name,
        template=installation.template,
        parameters={REGISTRATION_PARAMETER: ",".join(wanted)},
        tags=installation.tags,
        preflight=False,
        termination_protection=bool(installation.stack.get("EnableTerminationProtection")),
    )
    return lifecycle.deploy_stack(aws, request, approve=approve, report=report)


def _registered(result: lifecycle.Result, installation: Installation) -> None:
    if result.end is lifecycle.End.DECLINED:
        raise DeployError(f"the update of installation {installation.name} was declined: its pools are as they were")


# -- deploy, remove, list ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolDeployRequest:
    installation: str  # its stack's name, in the installation's account and region
    stack_name: str  # the pool's stack
    template: Any  # lifecycle.Template: the pool template
    parameters: dict[str, str]  # as given: the file, with --set on top
    tags: dict[str, str] = field(default_factory=dict)
    preflight: bool = True
    allow_replace: bool = False
    termination_protection: bool = True


def caller(aws: Any) -> tuple[str, str, str]:
    """The account, partition and region the clients act in."""
    identity = aws("sts").get_caller_identity()
    return identity["Account"], identity["Arn"].split(":")[1], aws("cloudformation").meta.region_name


def prepared(
    pool_aws: Any, installation_aws: Any, installation: str, given: dict[str, str], template: Any
) -> tuple[Installation, Pool, dict[str, str], Callable[[Any], list]]:
    """What deploying a pool starts from: the installation, the pool (its name, account and region), its
    parameters with the installation's, and its preflight (lifecycle.DeployRequest.account_checks). WrongInput
    for a name that collides or a queue without TLS across accounts."""
    facts = read_installation(installation_aws, installation)
    account, partition, region = caller(pool_aws)
    pool = Pool(given.get("PoolName", ""), account, region, partition)
    check_name(facts, pool)
    parameters = pool_parameters(facts, given, account)
    return facts, pool, parameters, pool_checks(parameters, template, queue_network(installation_aws, facts))


def deploy_pool(
    pool_aws: Any,
    installation_aws: Any,
    request: PoolDeployRequest,
    *,
    approve: lifecycle.Approve | None,
    report: lifecycle.Reporter,
) -> PoolResult:
    """Deploy the pool's stack with the pool's clients (its preflight, review, approval and protections), then
    register it with the installation (an update of the installation's stack, reviewed and approved too)."""
    installation, pool, parameters, checks = prepared(
        pool_aws, installation_aws, request.installation, request.parameters, request.template
    )
    check_name_free(pool_aws, pool, request.stack_name)
    deployed = lifecycle.deploy_stack(
        pool_aws,
        lifecycle.DeployRequest(
            stack_name=request.stack_name,
            template=request.template,
            parameters=parameters,
            tags=request.tags,
            allow_replace=request.allow_replace,
            preflight=request.preflight,
            termination_protection=request.termination_protection,
            account_checks=checks,
        ),
        approve=approve,
        report=report,
    )
    result = PoolResult(pool, deployed=deployed)
    if deployed.end not in (lifecycle.End.EXECUTED, lifecycle.End.UP_TO_DATE):
        return result  # declined: nothing to register
    made = deployed.outputs.get("ScalingRoleArn") or deploy.outputs(
        deploy.describe(pool_aws("cloudformation"), request.stack_name)
    ).get("ScalingRoleArn")
    if made != pool.role_arn:
        raise DeployError(
            f"stack {request.stack_name} is not a worker pool of this version: its scaling role is {made}"
        )
    try:
        result.registration = register(installation_aws, installation, add=[pool], approve=approve, report=report)
    except (KeyboardInterrupt, deploy.Interrupted) as e:
        raise _registration_interrupted(e, request, pool, installation.name) from None
    _registered(result.registration, installation)
    return result


def _registration_interrupted(
    e: BaseException, request: PoolDeployRequest, pool: Pool, installation: str
) -> deploy.Interrupted:
    """Ctrl-C once the pool's stack is deployed, while it is being registered: the pool's stack is there (and
    protected) and not registered, or its registration goes on in AWS (StoppedWatching), with what the
    installation's step left (lifecycle's message) and that `pool deploy` again registers it."""
    protected = " and protected (termination protection on)" if request.termination_protection else ""
    done = f"Pool stack {request.stack_name} is deployed{protected} in account {pool.account}, {pool.region};"
    if isinstance(e, deploy.StoppedWatching):
        return deploy.StoppedWatching(
            f"{done} its registration with installation {installation} goes on in AWS: {e} Once it ends, valohai-cfn "
            "pool list shows it; if it failed, the same pool deploy again registers it."
        )
    left = str(e) if isinstance(e, deploy.Interrupted) else ""
    installation_left = "" if left in ("", "Nothing was changed.") else f" {left}"
    return deploy.Interrupted(
        f"{done} it is not registered with installation {installation} (its WorkerPoolRoleArns are as they were)."
        f"{installation_left} The same pool deploy again registers it."
    )


def pool_of_stack(aws: Any, stack_name: str) -> tuple[dict[str, Any], Pool]:
    """The pool stack `stack_name` (the clients' account and region) and the pool it is. WrongInput when it is
    not there or not a pool."""
    stack = deploy.stack_state(aws("cloudformation"), stack_name).stack
    account, partition, region = caller(aws)
    if stack is None:
        raise WrongInput(f"pool stack {stack_name} does not exist in account {account}, {region}")
    names = [p.get("ParameterValue", "") for p in stack.get("Parameters", []) if p["ParameterKey"] == "PoolName"]
    if not names:
        raise WrongInput(f"stack {stack_name} is not a worker pool: it has no PoolName parameter")
    return stack, Pool(names[0], account, region, partition)


def deleted_pool_stacks(cfn: Any, stack_name: str | None = None) -> Iterable[tuple[str, str]]:
    """The deleted stacks (CloudFormation keeps them 90 days; `stack_name`'s only, when given), newest first,
    that were pools: (stack name, PoolName). Read one by one (DescribeStacks by the stack's id), as asked."""
    pages = cfn.get_paginator("list_stacks").paginate(StackStatusFilter=["DELETE_COMPLETE"])
    summaries = [s for page in pages for s in page["StackSummaries"] if stack_name in (None, s["StackName"])]
    for summary in sorted(summaries, key=lambda s: str(s.get("DeletionTime", "")), reverse=True):
        (stack,) = cfn.describe_stacks(StackName=summary["StackId"])["Stacks"]
        names = [p.get("ParameterValue", "") for p in stack.get("Parameters", []) if p["ParameterKey"] == "PoolName"]
        if names:
            yield summary["StackName"], names[0]


def _gone_pool(pool_aws: Any, facts: Installation, stack_name: str) -> Pool:
    """The registered pool a deleted stack named `stack_name` (the pool's account and region) was. WrongInput
    when there is none: not a pool's stack, live or gone."""
    account, partition, region = caller(pool_aws)
    registered = {p.role_arn for p in facts.pools}
    for _, name in deleted_pool_stacks(pool_aws("cloudformation"), stack_name):
        pool = Pool(name, account, region, partition)
        if pool.role_arn in registered:
            return pool
    raise WrongInput(f"pool stack {stack_name} does not exist in account {account}, {region}")


def remove_pool(
    pool_aws: Any,
    installation_aws: Any,
    *,
    installation: str,
    stack_name: str,
    force: bool,
    approve: lifecycle.Approve | None,
    report: lifecycle.Reporter,
) -> PoolResult:
    """Take the pool out of use, then delete it: first the installation's update that deregisters it (the
    master may no longer assume its role; reviewed, approved), then — only once that update has succeeded —
    the pool's stack (listed, approved; --force lifts its termination protection)."""
    facts = read_installation(installation_aws, installation)
    if deploy.stack_state(pool_aws("cloudformation"), stack_name).stack is None:
        # Its stack is gone (deleted by hand?) but the installation still registers it: deregister it only.
        result = PoolResult(_gone_pool(pool_aws, facts, stack_name), stack_gone=True)
        result.registration = register(installation_aws, facts, remove=[result.pool], approve=approve, report=report)
        _registered(result.registration, facts)
        report.note(Deregistered(facts.name, result.pool))
        return result
    stack, pool = pool_of_stack(pool_aws, stack_name)
    if stack.get("EnableTerminationProtection") and not force:
        # The delete would refuse it after the deregistration: refuse before the installation changes.
        raise DeployError(
            f"pool stack {stack_name} has termination protection on; add --force to lift it and delete. Nothing was "
            "changed: the pool is still registered"
        )
    result = PoolResult(pool)
    if any(p.role_arn == pool.role_arn for p in facts.pools):
        result.registration = register(installation_aws, facts, remove=[pool], approve=approve, report=report)
        _registered(result.registration, facts)
    report.note(Deregistered(facts.name, pool))
    result.deleted = lifecycle.delete_stack(
        pool_aws, lifecycle.DeleteRequest(stack["StackName"], force=force), approve=approve, report=report
    )
    return result


@dataclass(frozen=True)
class Group:
    """A pool's worker group as Auto Scaling reports it."""

    name: str
    instance_type: str  # as prep takes it: <type>, or <type>.spot
    desired: int
    maximum: int
    in_service: int
    unhealthy: int


@dataclass(frozen=True)
class PoolStatus:
    pool: Pool
    groups: list[Group] | None  # None: not readable with the clients given
    note: str = ""  # why not


def _groups(autoscaling: Any, pool: Pool) -> list[Group]:
    pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
        Filters=[{"Name": "tag:valohai:workers", "Values": [pool.name]}]
    )
    groups = []
    for page in pages:
        for g in page["AutoScalingGroups"]:
            kind = g["AutoScalingGroupName"].removeprefix(pool.group_prefix)
            instance_type = kind.removesuffix("-spot") + (".spot" if kind.endswith("-spot") else "")
            instances = g.get("Instances", [])
            groups.append(
                Group(
                    name=g["AutoScalingGroupName"],
                    instance_type=instance_type,
                    desired=g["DesiredCapacity"],
                    maximum=g["MaxSize"],
                    in_service=sum(i["LifecycleState"] == "InService" for i in instances),
                    unhealthy=sum(i["HealthStatus"] != "Healthy" for i in instances),
                )
            )
    return sorted(groups, key=lambda g: g.name)


def _stack_gone(aws: Any, pool: Pool, installation: str) -> str:
    """What to do about a registered pool whose scaling role is gone (its stack deleted), or "" when it is
    there: the command that deregisters it, with the deleted stack's name when CloudFormation still has it."""
    iam = aws("iam")
    try:
        iam.get_role(RoleName=pool.role_arn.rsplit("/", 1)[1])
        return ""
    except iam.exceptions.NoSuchEntityException:
        pass
    stack = next((s for s, name in deleted_pool_stacks(aws("cloudformation")) if name == pool.name), "STACK")
    return (
        f"stack gone: valohai-cfn pool remove --installation {installation} --stack-name {stack} --region "
        f"{pool.region} (with a profile of account {pool.account}) deregisters it"
    )


def list_pools(
    installation_aws: Any, installation: str, clients_for: Callable[[Pool], Any]
) -> tuple[Installation, list[PoolStatus]]:
    """The installation's registered pools, each with its groups (types and health) read with the clients
    `clients_for(pool)` gives for its account and region (None: none were given for that account). A pool out
    of reach is a row saying why, not the end of the list; so is a pool whose stack is gone (what deregisters it)."""
    from valohai_cfn.aws import AwsError, aws_errors

    facts = read_installation(installation_aws, installation)
    statuses = []
    for pool in facts.pools:
        aws = clients_for(pool)
        if aws is None:
            statuses.append(PoolStatus(pool, None, f"no --profile for account {pool.account}"))
            continue
        try:
            with aws_errors():
                gone = _stack_gone(aws, pool, installation)
                statuses.append(
                    PoolStatus(pool, None, gone) if gone else PoolStatus(pool, _groups(aws("autoscaling"), pool))
                )
        except AwsError as e:
            statuses.append(PoolStatus(pool, None, str(e)))
    return facts, statuses


# -- many accounts and regions: a StackSet ------------------------------------------------------------------
#
# The StackSet gets the pool template as CloudFormation would process it for the given instance types (the
# AWS::LanguageExtensions transform expanded here, as `build --processed-for` does): a template without a
# transform deploys with self-managed permissions and with service-managed ones alike (the default execution role
# of service-managed StackSets runs no transform; a transform would also need CAPABILITY_AUTO_EXPAND). Changing
# the types is an update of the StackSet with a template processed for the new ones.

STACK_SET_CAPABILITIES = ["CAPABILITY_NAMED_IAM"]
# Each account's pool is <PoolName>-<account id>: pools of one name would share queues across accounts.
STACK_SET_POOL_NAME_MAX_LENGTH = 23
# What may differ between a StackSet's accounts and regions (--region-params files).
PER_TARGET_PARAMETERS = ("VpcId", "WorkerSubnetIds", "WorkerAmiId", "WorkerKeyPairName")
OPERATION_DONE = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass(frozen=True)
class Target:
    """A stack instance to be: where, and the parameters that are its own there."""

    account: str
    region: str
    overrides: dict[str, str]


@dataclass(frozen=True)
class StackSetRequest:
    installation: str
    stack_set_name: str
    template: Any  # the pool template (lifecycle.Template), with its transform: processed here
    parameters: dict[str, str]  # the file, with --set on top: what every instance shares
    regions: tuple[str, ...]
    accounts: tuple[str, ...] = ()  # self-managed permissions
    organizational_units: tuple[str, ...] = ()  # service-managed permissions
    region_parameters: dict[tuple[str | None, str], dict[str, str]] = field(default_factory=dict)  # (account, region)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def permission_model(self) -> str:
        return "SERVICE_MANAGED" if self.organizational_units else "SELF_MANAGED"


@dataclass(frozen=True)
class StackSetQuestion:
    """What `approve` is asked before a StackSet operation: the instances it makes and those it updates."""

    stack_set: str
    creating: tuple[Target, ...]
    updating: tuple[Target, ...]
    new: bool  # the StackSet itself is made


@dataclass(frozen=True)
class StackSetDeleteQuestion:
    """What `approve` is asked before a StackSet's instances (their stacks) and the StackSet are deleted."""

    stack_set: str
    instances: tuple[tuple[str, str], ...]  # (account, region)


@dataclass(frozen=True)
class StackSetPlanned:
    """What the StackSet operation will do, before it is asked for (the review of a StackSet)."""

    stack_set: str
    template_changes: bool
    question: StackSetQuestion


@dataclass(frozen=True)
class InstanceDone:
    """A stack instance, once its operation ended."""

    stack_set: str
    account: str
    region: str
    status: str  # CURRENT, OUTDATED
    detailed: str  # SUCCEEDED, FAILED, CANCELLED
    reason: str | None


@dataclass(frozen=True)
class OperationWaiting:
    stack_set: str
    operation_id: str
    action: str
    where: str


def organization_accounts(organizations: Any, units: Iterable[str]) -> list[str]:
    """The accounts of the organizational units and of the units under them, as StackSets targets them."""
    accounts: list[str] = []
    pending = list(units)
    while pending:
        unit = pending.pop()
        for page in organizations.get_paginator("list_accounts_for_parent").paginate(ParentId=unit):
            accounts += [a["Id"] for a in page["Accounts"] if a.get("Status", "ACTIVE") == "ACTIVE"]
        for page in organizations.get_paginator("list_organizational_units_for_parent").paginate(ParentId=unit):
            pending += [u["Id"] for u in page["OrganizationalUnits"]]
    return sorted(set(accounts))


def stack_set_targets(request: StackSetRequest, accounts: list[str]) -> list[Target]:
    """Each account and region with its own parameters: the pool's name with the account's id, and what the
    --region-params files give (the account's own file first, then the region's). WrongInput for a target
    without its VPC and subnets, or with WorkerAmiId=latest (the images shared with another account cannot be
    seen from here)."""
    base = request.parameters.get("PoolName", "")
    if len(base) > STACK_SET_POOL_NAME_MAX_LENGTH:
        raise WrongInput(
            f"PoolName {base!r} is longer than {STACK_SET_POOL_NAME_MAX_LENGTH} characters: a StackSet names each "
            "account's pool <PoolName>-<account id>"
        )
    targets = []
    for account in accounts:
        for region in request.regions:
            own = {
                **request.region_parameters.get((None, region), {}),
                **request.region_parameters.get((account, region), {}),
            }
            values = {**request.parameters, **own}
            missing = [p for p in ("VpcId", "WorkerSubnetIds", "WorkerAmiId") if not values.get(p)]
            if missing:
                raise WrongInput(
                    f"no {', '.join(missing)} for account {account} in {region}: give them with --region-params "
                    f"{region}=FILE or {account}/{region}=FILE"
                )
            if values["WorkerAmiId"] == "latest":
                raise WrongInput(
                    f"WorkerAmiId=latest cannot be resolved for account {account} in {region} from here: give the "
                    "image's id with --region-params"
                )
            overrides = {k: v for k, v in own.items() if k in PER_TARGET_PARAMETERS}
            targets.append(Target(account, region, {**overrides, "PoolName": f"{base}-{account}"}))
    return targets


def processed_template(template: Any, parameters: dict[str, str]) -> str:
    """The pool template as CloudFormation processes it for the parameter file's instance types: no transform."""
    from valohai_cfn.language_extensions import expand

    document = expand(template.document, parameters)
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def _entries(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())]


def _described_stack_set(cfn: Any, name: str) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        stack_set = cfn.describe_stack_set(StackSetName=name)["StackSet"]
    except ClientError as e:
        if e.response["Error"]["Code"] in ("StackSetNotFoundException", "StackSetNotFound"):
            return None
        raise
    return None if stack_set.get("Status") == "DELETED" else stack_set


def _instances(cfn: Any, name: str) -> dict[tuple[str, str], dict]:
    pages = cfn.get_paginator("list_stack_instances").paginate(StackSetName=name)
    return {(i["Account"], i["Region"]): i for page in pages for i in page["Summaries"]}


def _follow_operation(cfn: Any, name: str, operation_id: str, action: str, where: str, report: Any) -> str:
    """Wait for a StackSet operation to end (a line first, then polls); its status. Ctrl-C stops watching
    only: the operation goes on in AWS."""
    import time

    report.note(OperationWaiting(name, operation_id, action, where))
    try:
        while True:
            operation = cfn.describe_stack_set_operation(StackSetName=name, OperationId=operation_id)
            status = operation["StackSetOperation"]["Status"]
            if status in OPERATION_DONE:
                return status
            time.sleep(deploy.POLL_SECONDS)
    except KeyboardInterrupt:
        raise deploy.StoppedWatching(
            f"StackSet {name}'s operation {operation_id} goes on in AWS: see aws cloudformation "
            f"describe-stack-set-operation --stack-set-name {name} --operation-id {operation_id}"
        ) from None


def deploy_stack_set(
    admin_aws: Any,
    installation_aws: Any,
    request: StackSetRequest,
    *,
    approve: lifecycle.Approve | None,
    report: lifecycle.Reporter,
) -> tuple[list[Pool], lifecycle.Result]:
    """Deploy the pool as a StackSet over accounts and regions (self-managed: --accounts; service-managed:
    --organizational-units), following each operation, then register every instance's pool with the
    installation (one update, reviewed and approved). The StackSet lives in the administrator's account and
    region (`admin_aws`). Returns the pools and the registration's result; DeployError naming each instance
    that failed (nothing is registered then)."""
    installation = read_installation(installation_aws, request.installation)
    cfn = admin_aws("cloudformation")
    accounts = list(request.accounts) or organization_accounts(admin_aws("organizations"), request.organizational_units)
    if not accounts:
        raise WrongInput(f"no account in {', '.join(request.organizational_units)}")
    targets = stack_set_targets(request, accounts)
    pools = [Pool(t.overrides["PoolName"], t.account, t.region, installation.partition) for t in targets]
    for pool in pools:
        check_name(installation, pool)
        pool_parameters(installation, request.parameters, pool.account)
    common = {
        k: v
        for k, v in pool_parameters(installation, request.parameters, installation.account).items()
        if k != "PoolName"
    }
    body = processed_template(request.template, common)
    existing = _described_stack_set(cfn, request.stack_set_name)
    instances = _instances(cfn, request.stack_set_name) if existing else {}
    creating = tuple(t for t in targets if (t.account, t.region) not in instances)
    updating = tuple(t for t in targets if (t.account, t.region) in instances)
    changed = (
        existing is None
        or existing.get("TemplateBody") != body
        or {p["ParameterKey"]: p.get("ParameterValue", "") for p in existing.get("Parameters", [])} != common
    )
    # An instance whose own parameters changed, or that an earlier operation left OUTDATED, is updated too.
    moved = tuple(t for t in updating if _stale(cfn, request.stack_set_name, instances[(t.account, t.region)], t))
    question = StackSetQuestion(request.stack_set_name, creating, updating if changed else moved, existing is None)
    report.note(StackSetPlanned(request.stack_set_name, changed, question))
    if (creating or question.updating) and (approve is None or not approve(question)):
        if approve is None:
            raise DeployError("nobody to approve the StackSet's operation: no terminal to ask in. Add --yes")
        raise DeployError(f"StackSet {request.stack_set_name}: declined, nothing was changed")
    if existing is None:
        cfn.create_stack_set(
            StackSetName=request.stack_set_name,
            Description="Valohai worker pools (valohai-cfn pool deploy)",
            TemplateBody=body,
            Parameters=_entries(common),
            Capabilities=STACK_SET_CAPABILITIES,
            PermissionModel=request.permission_model,
            Tags=[
                {"Key": k, "Value": v}
                for k, v in sorted({**request.tags, deploy.VALOHAI_TAG[0]: deploy.VALOHAI_TAG[1]}.items())
            ],
            **({"AutoDeployment": {"Enabled": False}} if request.permission_model == "SERVICE_MANAGED" else {}),
        )
    elif question.updating:
        operation = cfn.update_stack_set(
            StackSetName=request.stack_set_name,
            TemplateBody=body,
            Parameters=_entries(common),
            Capabilities=STACK_SET_CAPABILITIES,
            **_where(request, [t.account for t in updating], sorted({t.region for t in updating})),
        )["OperationId"]
        _follow_operation(cfn, request.stack_set_name, operation, "UPDATE", "every instance", report)
    # One operation per instance: each has parameters of its own (its VPC, its subnets, its pool's name).
    for action, call, chosen in (
        ("UPDATE", cfn.update_stack_instances, moved),
        ("CREATE", cfn.create_stack_instances, creating),
    ):
        for target in chosen:
            operation = call(
                StackSetName=request.stack_set_name,
                ParameterOverrides=_entries(target.overrides),
                **_where(request, [target.account], [target.region]),
            )["OperationId"]
            where = f"{target.account}, {target.region}"
            _follow_operation(cfn, request.stack_set_name, operation, action, where, report)
    instances = _instances(cfn, request.stack_set_name)
    failed = []
    for target in targets:
        instance = instances.get((target.account, target.region), {})
        detailed = instance.get("StackInstanceStatus", {}).get("DetailedStatus", "")
        report.note(
            InstanceDone(
                request.stack_set_name, target.account, target.region, instance.get("Status", ""), detailed,
                instance.get("StatusReason"),
            )
        )  # fmt: skip
        if instance.get("Status") != "CURRENT":
            failed.append(f"{target.account}, {target.region}: {instance.get('StatusReason') or detailed}")
    if failed:
        raise DeployError(
            f"StackSet {request.stack_set_name}: {len(failed)} instance(s) failed, no pool was registered: "
            + "; ".join(failed)
        )
    registration = register(installation_aws, installation, add=pools, approve=approve, report=report)
    _registered(registration, installation)
    return pools, registration


def _overrides(cfn: Any, name: str, account: str, region: str) -> dict[str, str]:
    """A stack instance's own parameters (DescribeStackInstance: ListStackInstances does not give them)."""
    instance = cfn.describe_stack_instance(StackSetName=name, StackInstanceAccount=account, StackInstanceRegion=region)
    return {
        o["ParameterKey"]: o.get("ParameterValue", "") for o in instance["StackInstance"].get("ParameterOverrides", [])
    }


def _stale(cfn: Any, name: str, instance: dict, target: Target) -> bool:
    if instance.get("Status") != "CURRENT":
        return True
    return _overrides(cfn, name, target.account, target.region) != target.overrides


def _where(request: StackSetRequest, accounts: list[str], regions: list[str]) -> dict[str, Any]:
    """The targets of an operation: accounts (self-managed), or the accounts within the organizational units
    (service-managed, INTERSECTION)."""
    if request.permission_model == "SELF_MANAGED":
        return {"Accounts": accounts, "Regions": regions} if regions else {"Accounts": accounts}
    targets = {
        "OrganizationalUnitIds": list(request.organizational_units),
        "Accounts": accounts,
        "AccountFilterType": "INTERSECTION",
    }
    return {"DeploymentTargets": targets, **({"Regions": regions} if regions else {})}


def remove_stack_set(
    admin_aws: Any,
    installation_aws: Any,
    *,
    installation: str,
    stack_set_name: str,
    approve: lifecycle.Approve | None,
    report: lifecycle.Reporter,
) -> list[Pool]:
    """Take every pool of the StackSet out of use (one installation update that deregisters them all), then
    — only once that succeeded — delete its instances (their stacks, with the groups) and the StackSet."""
    facts = read_installation(installation_aws, installation)
    cfn = admin_aws("cloudformation")
    existing = _described_stack_set(cfn, stack_set_name)
    if existing is None:
        raise WrongInput(f"StackSet {stack_set_name} does not exist")
    instances = _instances(cfn, stack_set_name)
    gone = [
        Pool(_overrides(cfn, stack_set_name, *where).get("PoolName", ""), *where, facts.partition)
        for where in sorted(instances)
    ]
    registered = [p for p in gone if any(r.role_arn == p.role_arn for r in facts.pools)]
    if registered:
        _registered(register(installation_aws, facts, remove=registered, approve=approve, report=report), facts)
    for pool in gone:
        report.note(Deregistered(facts.name, pool))
    if approve is None or not approve(StackSetDeleteQuestion(stack_set_name, tuple(sorted(instances)))):
        raise DeployError(f"StackSet {stack_set_name}: its pools are deregistered; nothing was deleted")
    accounts = sorted({account for account, _ in instances})
    regions = sorted({region for _, region in instances})
    if instances:
        where = _where_existing(existing, instances, accounts, regions)
        operation = cfn.delete_stack_instances(StackSetName=stack_set_name, RetainStacks=False, **where)["OperationId"]
        status = _follow_operation(cfn, stack_set_name, operation, "DELETE", "every instance", report)
        if status != "SUCCEEDED":
            left = _instances(cfn, stack_set_name)
            raise DeployError(
                f"StackSet {stack_set_name}: deleting its instances ended {status}; left: "
                + "; ".join(f"{a}, {r}: {i.get('StatusReason', '')}" for (a, r), i in sorted(left.items()))
            )
    cfn.delete_stack_set(StackSetName=stack_set_name)
    return gone


def _where_existing(
    stack_set: dict, instances: dict[tuple[str, str], dict], accounts: list[str], regions: list[str]
) -> dict[str, Any]:
    """An operation's targets for instances that exist, by the StackSet's own permission model."""
    if stack_set.get("PermissionModel") == "SERVICE_MANAGED":
        units = sorted({i["OrganizationalUnitId"] for i in instances.values() if i.get("OrganizationalUnitId")})
        targets = {"OrganizationalUnitIds": units, "Accounts": accounts, "AccountFilterType": "INTERSECTION"}
        return {"DeploymentTargets": targets, "Regions": regions}
    return {"Accounts": accounts, "Regions": regions}
