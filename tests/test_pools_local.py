"""Worker pools end to end on the local AWS, through the command line: the installation in account A (us-east-1),
pools in accounts B and C (moto gives them through STS AssumeRole) and in two regions, each account's clients
from a profile of its own, as a user would have them."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml
from click.testing import CliRunner
from iam_eval import Request, allowed

from valohai_cfn import lifecycle, pools
from valohai_cfn.cli import cli
from valohai_cfn.local_aws import create_demo_network
from valohai_cfn.params import dump_parameters
from valohai_cfn.stack.compute import roi_boot_script

INSTALLATION = "vh-pools"
PREFIX = "vhp"
ACCOUNT_A, ACCOUNT_B, ACCOUNT_C = "123456789012", "222222222222", "333333333333"
HOME, POOL_REGION = "us-east-1", "us-west-2"
BIN = str(Path(sys.executable).parent)


@dataclass
class World:
    endpoint: str
    directory: Path
    sessions: dict[str, boto3.Session]  # profile → session (a: the installation's account)
    networks: dict[tuple[str, str], dict[str, str]]  # (profile, region) → demo network parameters

    def client(self, profile: str, service: str, region: str = HOME):
        return self.sessions[profile].client(service, region_name=region, endpoint_url=self.endpoint)

    def pool_params(self, profile: str, region: str, name: str, **extra: str) -> Path:
        network = self.networks[(profile, region)]
        parameters = {
            "PoolName": name,
            "VpcId": network["VpcId"],
            "WorkerSubnetIds": network["WorkerSubnetIds"],
            "WorkerAmiId": network["WorkerAmiId"],
            "WorkerInstanceTypes": "g5.xlarge",
            "WorkerSpotInstanceTypes": "g4dn.xlarge",
            **extra,
        }
        path = self.directory / f"{name}-{profile}-{region}.json"
        path.write_text(dump_parameters(parameters))
        return path

    def run(self, *args: str):
        return CliRunner().invoke(cli, [*args, "--endpoint-url", self.endpoint])

    def pool(self, command: str, profile: str, region: str, *args: str):
        return self.run(
            "pool", command, "--installation", INSTALLATION, "--installation-profile", "a",
            "--installation-region", HOME, "--profile", profile, "--region", region, *args,
        )  # fmt: skip

    def registered(self) -> list[str]:
        (stack,) = self.client("a", "cloudformation").describe_stacks(StackName=INSTALLATION)["Stacks"]
        value = next(p["ParameterValue"] for p in stack["Parameters"] if p["ParameterKey"] == "WorkerPoolRoleArns")
        return [arn for arn in value.split(",") if arn]


def _peer(world: World, profile: str, region: str) -> None:
    """A peering connection between the installation's VPC and the pool's, routes both ways, and the queue's
    security group admitting the pool's subnets: the network prerequisites README states."""
    home, there = world.networks[("a", HOME)], world.networks[(profile, region)]
    ec2_a, ec2_b = world.client("a", "ec2"), world.client(profile, "ec2", region)
    account = world.client(profile, "sts").get_caller_identity()["Account"]
    peering = ec2_a.create_vpc_peering_connection(
        VpcId=home["VpcId"], PeerVpcId=there["VpcId"], PeerOwnerId=account, PeerRegion=region
    )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2_b.accept_vpc_peering_connection(VpcPeeringConnectionId=peering)
    for ec2, network, cidr in ((ec2_a, home, there["Cidr"]), (ec2_b, there, home["Cidr"])):
        # Every table of the VPC: the private subnets have their own (to the NAT gateway), the rest the main one.
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [network["VpcId"]]}])["RouteTables"]
        for table in tables:
            ec2.create_route(
                RouteTableId=table["RouteTableId"], DestinationCidrBlock=cidr, VpcPeeringConnectionId=peering
            )
    (queue,) = ec2_a.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{PREFIX}-sg-queue"]}])[
        "SecurityGroups"
    ]
    ec2_a.authorize_security_group_ingress(
        GroupId=queue["GroupId"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "IpRanges": [{"CidrIp": there["Cidr"]}]}
        ],
    )


@pytest.fixture(scope="module")
def world(local_aws, tmp_path_factory):
    """The installation (queue TLS on: pools in other accounts need it) in account A, and networks in accounts
    B and C in both regions; profiles a, b and c in a credentials file of the test's own."""
    directory = tmp_path_factory.mktemp("pools")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", HOME)
        env.setenv("AWS_REGION", HOME)
        env.setenv("AWS_CONFIG_FILE", "/nonexistent")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        endpoint = local_aws.endpoint_url
        sts = boto3.client("sts", region_name=HOME, endpoint_url=endpoint)
        keys = {"a": {"AccessKeyId": "testing", "SecretAccessKey": "testing", "SessionToken": None}}
        for profile, account in (("b", ACCOUNT_B), ("c", ACCOUNT_C)):
            keys[profile] = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/admin", RoleSessionName="tests")[
                "Credentials"
            ]
        lines = []
        for profile, k in keys.items():
            lines += [
                f"[{profile}]",
                f"aws_access_key_id={k['AccessKeyId']}",
                f"aws_secret_access_key={k['SecretAccessKey']}",
            ]
            lines += [f"aws_session_token={k['SessionToken']}"] if k["SessionToken"] else []
        (directory / "credentials").write_text("\n".join(lines) + "\n")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(directory / "credentials"))
        world = World(endpoint, directory, {p: boto3.Session(profile_name=p) for p in keys}, {})
        for number, (profile, region) in enumerate(
            [("a", HOME), ("b", POOL_REGION), ("b", HOME), ("c", POOL_REGION), ("c", "eu-west-1"), ("b", "eu-west-1")]
        ):
            network = create_demo_network(world.client(profile, "ec2", region), region, network=20 + number)
            world.networks[(profile, region)] = {**network, "Cidr": f"10.{20 + number}.0.0/16"}
        installation = {
            **{k: v for k, v in world.networks[("a", HOME)].items() if k != "Cidr"},
            "ResourcePrefix": PREFIX,
            "QueueTransitEncryption": "true",
            "DatabaseDeletionProtection": "false",
        }
        (directory / "installation.json").write_text(dump_parameters(installation))
        made = world.run(
            "deploy", "--stack-name", INSTALLATION, "--params", str(directory / "installation.json"), "--yes",
            "--profile", "a", "--region", HOME,
        )  # fmt: skip
        assert made.exit_code == 0, made.output
        for profile, region in (("b", POOL_REGION), ("b", HOME), ("c", POOL_REGION)):
            _peer(world, profile, region)
        yield world


@pytest.fixture(scope="module")
def gpu(world):
    """Pool gpu in account B, us-west-2, deployed with its preflight and registered."""
    result = world.pool("deploy", "b", POOL_REGION, "--stack-name", "gpu-pool", "--params", str(world.pool_params("b", POOL_REGION, "gpu")), "--yes")  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


GPU_ROLE = f"arn:aws:iam::{ACCOUNT_B}:role/gpu-role-scaling-{POOL_REGION}"


def test_a_pool_in_another_account_makes_its_groups_there_and_is_registered(world, gpu):
    output = gpu.output
    assert "FAILED" not in output.split("Creating change set")[0], "every preflight row passed"
    for row in ("Route to the queue", "Route back from the queue"):
        assert re.search(rf"{row}\s+ok\s+through pcx-", output), output
    asg = world.client("b", "autoscaling", POOL_REGION)
    groups = asg.describe_auto_scaling_groups(Filters=[{"Name": "tag:valohai:workers", "Values": ["gpu"]}])
    assert sorted(g["AutoScalingGroupName"] for g in groups["AutoScalingGroups"]) == [
        "gpu-worker-g4dn.xlarge-spot",
        "gpu-worker-g5.xlarge",
    ]
    assert not world.client("a", "autoscaling").describe_auto_scaling_groups(
        Filters=[{"Name": "tag:valohai:workers", "Values": ["gpu"]}]
    )["AutoScalingGroups"], "nothing of the pool in the installation's account"
    # Trusted by the installation's master role's ARN, and nothing else.
    (stack,) = world.client("a", "cloudformation").describe_stacks(StackName=INSTALLATION)["Stacks"]
    master = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "MasterRoleArn")
    trust = world.client("b", "iam").get_role(RoleName=f"gpu-role-scaling-{POOL_REGION}")["Role"]
    (statement,) = trust["AssumeRolePolicyDocument"]["Statement"]
    assert statement == {"Effect": "Allow", "Principal": {"AWS": master}, "Action": ["sts:AssumeRole"]}
    # Registered: the installation's parameter, and the setting its app instance reads.
    assert world.registered() == [GPU_ROLE]
    setting = world.client("a", "ssm").get_parameter(Name=f"/{PREFIX}/worker-pool-role-arns")["Parameter"]["Value"]
    assert setting == f",{GPU_ROLE}"


def test_the_master_may_assume_the_registered_pools_scaling_role_and_no_other(world, gpu):
    """The master role's policy as IAM holds it in account A, evaluated: AssumeRole on exactly the pool's role."""
    iam = world.client("a", "iam")
    document = iam.get_role_policy(RoleName=f"{PREFIX}-role-master", PolicyName=f"{PREFIX}-policy-master")
    statements = document["PolicyDocument"]["Statement"]
    assert allowed(statements, Request("sts:AssumeRole", GPU_ROLE))
    for other in (
        f"arn:aws:iam::{ACCOUNT_B}:role/gpu-role-scaling-{HOME}",  # the same pool's name in another region
        f"arn:aws:iam::{ACCOUNT_C}:role/gpu-role-scaling-{POOL_REGION}",  # in another account
        f"arn:aws:iam::{ACCOUNT_B}:role/gpu-role-worker-{POOL_REGION}",  # the pool's other role
        f"arn:aws:iam::{ACCOUNT_A}:role/{PREFIX}-role-multipart",  # the installation's own
        f"arn:aws:iam::{ACCOUNT_B}:role/admin",
    ):
        assert not allowed(statements, Request("sts:AssumeRole", other)), other


def _reconcile_reads_the_pool(world: World, arn: str) -> dict:
    """roi.sh's own read of a registered pool and the prep config it renders, run under bash with the real
    awscli against the local AWS, with the installation account's credentials as the app instance has its role's."""
    functions = roi_boot_script().split('\ncase "${mode}" in')[0]
    script = (
        functions
        + f"\nprefix={PREFIX} url=https://vh.example.com app_token=x organization_id=42 "
        + (f'queue_url=rediss://q:6379/0 worker_volume_size=0\nread_pool "{arn}"\nrender_prep_config "{arn}"\n')
    )
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": HOME,
        "AWS_ENDPOINT_URL": world.endpoint,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_registration_lists_exactly_the_queues_the_pools_workers_boot_with(world, gpu):
    config = _reconcile_reads_the_pool(world, GPU_ROLE)["aws"]
    assert config["scaling-role-arn"] == GPU_ROLE and config["region"] == POOL_REGION
    network = world.networks[("b", POOL_REGION)]
    assert config["vpc-id"] == network["VpcId"] and config["vpc-subnets"] == network["WorkerSubnetIds"].split(",")
    assert config["security-group-name"] == "gpu-sg-workers" and config["asg-name-prefix"] == "gpu-worker-"
    # prep's queue: <queue-name-prefix><region>-<type>, a spot type's <type>.spot as <type>-spot.
    registered = {
        f"{config['queue-name-prefix']}{config['region']}-{t.removesuffix('.spot')}{'-spot' if t.endswith('.spot') else ''}"
        for t in config["instance-types"]
    }
    ec2 = world.client("b", "ec2", POOL_REGION)
    booted = set()
    for template in ec2.describe_launch_templates()["LaunchTemplates"]:
        if not template["LaunchTemplateName"].startswith("gpu-worker-"):
            continue
        (version,) = ec2.describe_launch_template_versions(
            LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest"]
        )["LaunchTemplateVersions"]
        user_data = base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()
        booted |= set(re.findall(r'"QUEUES=([^"]+)"', user_data))
        assert "REDIS_URL=rediss://" in user_data
    assert registered == booted == {"gpu-us-west-2-g5.xlarge", "gpu-us-west-2-g4dn.xlarge-spot"}


def _names(world: World, profile: str, region: str, pool: str) -> set[str]:
    """Everything a pool named in its account and region: groups, launch templates, security group, roles."""
    asg, ec2 = world.client(profile, "autoscaling", region), world.client(profile, "ec2", region)
    found = {
        g["AutoScalingGroupName"]
        for g in asg.describe_auto_scaling_groups(Filters=[{"Name": "tag:valohai:workers", "Values": [pool]}])[
            "AutoScalingGroups"
        ]
    }
    found |= {t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]}
    found |= {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    found |= {r["RoleName"] for r in world.client(profile, "iam").list_roles()["Roles"]}
    return {name for name in found if name.startswith(f"{pool}-")}


def test_two_pools_in_one_region_keep_distinct_names_and_a_taken_name_is_refused(world, gpu):
    cpu = world.pool("deploy", "b", POOL_REGION, "--stack-name", "cpu-pool", "--params", str(world.pool_params("b", POOL_REGION, "cpu", WorkerInstanceTypes="c5.xlarge", WorkerSpotInstanceTypes="")), "--yes")  # fmt: skip
    assert cpu.exit_code == 0, cpu.output
    gpu_names, cpu_names = _names(world, "b", POOL_REGION, "gpu"), _names(world, "b", POOL_REGION, "cpu")
    assert not gpu_names & cpu_names
    assert "cpu-worker-c5.xlarge" in cpu_names and "cpu-sg-workers" in cpu_names
    assert f"cpu-role-scaling-{POOL_REGION}" in cpu_names and f"gpu-role-scaling-{POOL_REGION}" in gpu_names
    assert world.registered() == [GPU_ROLE, f"arn:aws:iam::{ACCOUNT_B}:role/cpu-role-scaling-{POOL_REGION}"]

    # gpu in account C, the same region: its queues would be gpu's. Refused, and nothing made in account C.
    taken = world.pool("deploy", "c", POOL_REGION, "--stack-name", "gpu-pool", "--params", str(world.pool_params("c", POOL_REGION, "gpu")), "--yes")  # fmt: skip
    assert taken.exit_code == 2, taken.output
    assert (
        taken.output.count("\n") == 1
        and "pool name gpu in us-west-2 is taken by pool gpu of account 222222222222" in taken.output
    )
    assert not world.client("c", "cloudformation", POOL_REGION).list_stacks()["StackSummaries"]


def _absent(world: World, profile: str, region: str, stack_name: str) -> bool:
    stacks = world.client(profile, "cloudformation", region).list_stacks()["StackSummaries"]
    return not [s for s in stacks if s["StackName"] == stack_name]


def test_a_second_stack_of_a_pool_name_taken_in_its_account_and_region_is_refused_before_anything(world, gpu):
    """gpu is gpu-pool's (registered) in account B, us-west-2: another stack with PoolName gpu there would fail on
    the pool's own names (its SSM parameter, its roles) and be left rolled back and protected."""
    before = world.registered()
    again = world.pool("deploy", "b", POOL_REGION, "--stack-name", "gpu-pool2", "--params", str(world.pool_params("b", POOL_REGION, "gpu")), "--yes")  # fmt: skip
    assert again.exit_code == 2 and again.output.count("\n") == 1, again.output
    assert f"pool name gpu is taken in account {ACCOUNT_B}, {POOL_REGION}" in again.output
    assert "held by stack gpu-pool" in again.output, again.output
    assert _absent(world, "b", POOL_REGION, "gpu-pool2") and world.registered() == before
    # Its own stack, deployed again, holds them.
    pools.check_name_free(_clients("b", POOL_REGION, world), pools.Pool("gpu", ACCOUNT_B, POOL_REGION), "gpu-pool")


@pytest.mark.parametrize(
    ("profile", "region", "name", "collides"),
    [
        ("b", POOL_REGION, "gpu-worker", "pool gpu of account 222222222222"),  # groups gpu-worker-worker-*
        ("c", "eu-west-1", "gpu-worker", "pool gpu of account 222222222222"),  # queues gpu-worker-…: one queue
        ("a", HOME, f"{PREFIX}-worker", "the installation's ResourcePrefix vhp"),  # groups vhp-worker-worker-*
        ("a", HOME, PREFIX, "the installation's ResourcePrefix vhp"),
    ],
)
def test_a_pool_name_whose_prefixes_overlap_anothers_is_refused_before_anything(
    world, gpu, profile, region, name, collides
):
    stack = f"{name}-pool"
    result = world.pool("deploy", profile, region, "--stack-name", stack, "--params", str(world.pool_params(profile, region, name)), "--yes", "--skip-preflight")  # fmt: skip
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert f"pool name {name} collides with {collides}" in result.output, result.output
    assert _absent(world, profile, region, stack)


def test_pool_names_without_overlapping_prefixes_pass(world, gpu):
    installation = pools.read_installation(_clients("a", HOME, world), INSTALLATION)
    for name, account, region in (
        ("gp", ACCOUNT_B, POOL_REGION),
        ("gpux", ACCOUNT_B, POOL_REGION),
        ("gpu", ACCOUNT_C, HOME),
    ):
        pools.check_name(installation, pools.Pool(name, account, region))  # raises WrongInput when they collide
    with pytest.raises(pools.WrongInput, match="collides with pool gpu"):
        pools.check_name(installation, pools.Pool("gpu-x", ACCOUNT_C, HOME))


def test_removing_a_protected_pool_without_force_is_refused_before_the_installation_changes(world, gpu):
    before = world.registered()
    refused = world.pool("remove", "b", POOL_REGION, "--stack-name", "gpu-pool", "--yes")
    assert refused.exit_code == 1 and refused.output.count("\n") == 1, refused.output
    assert "pool stack gpu-pool has termination protection on; add --force" in refused.output
    assert "the pool is still registered" in refused.output
    assert world.registered() == before and GPU_ROLE in before


class Order:
    """A lifecycle.Reporter that keeps, in order, what the installation's parameter was when each note came."""

    def __init__(self, world: World) -> None:
        self.world, self.seen = world, []

    def note(self, note) -> None:
        self.seen.append((type(note).__name__, getattr(note, "stack_name", ""), self.world.registered()))

    def progress(self):
        from contextlib import nullcontext

        class Quiet:
            def events(self, events): ...
            def tally(self, tally): ...

        return nullcontext(Quiet())


def _clients(profile: str, region: str, world: World):
    from valohai_cfn.aws import Clients

    return Clients(profile, region, world.endpoint)


def test_removing_a_pool_deregisters_it_before_its_groups_are_deleted(world, gpu):
    cpu_role = f"arn:aws:iam::{ACCOUNT_B}:role/cpu-role-scaling-{POOL_REGION}"
    if cpu_role not in world.registered():
        pytest.skip("needs the cpu pool of the test before")
    # Declined: the pool stays registered, and nothing of it is deleted.
    declined = Order(world)
    with pytest.raises(pools.DeployError, match="declined: its pools are as they were"):
        pools.remove_pool(
            _clients("b", POOL_REGION, world), _clients("a", HOME, world), installation=INSTALLATION,
            stack_name="cpu-pool", force=True, approve=lambda question: False, report=declined,
        )  # fmt: skip
    assert cpu_role in world.registered()
    assert world.client("b", "cloudformation", POOL_REGION).describe_stacks(StackName="cpu-pool")["Stacks"]
    assert "Deleting" not in [name for name, _, _ in declined.seen]

    order = Order(world)
    result = pools.remove_pool(
        _clients("b", POOL_REGION, world), _clients("a", HOME, world), installation=INSTALLATION,
        stack_name="cpu-pool", force=True, approve=lambda question: True, report=order,
    )  # fmt: skip
    assert result.deleted is not None and result.deleted.end is lifecycle.End.DELETED
    kinds = [name for name, _, _ in order.seen]
    executing, deleting = kinds.index("Executing"), kinds.index("Deleting")
    assert order.seen[executing][1] == INSTALLATION and executing < kinds.index("Deregistered") < deleting
    assert order.seen[deleting][2] == [GPU_ROLE], "no longer registered when its stack's delete starts"
    assert not _names(world, "b", POOL_REGION, "cpu"), "its groups, templates, security group and roles are gone"


def test_pool_list_shows_each_pool_its_account_region_types_and_groups(world, gpu):
    listed = world.run("pool", "list", "--installation", INSTALLATION, "--region", HOME, "--profile", "a", "--profile", "b", "--output", "json")  # fmt: skip
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.stdout)
    (pool,) = [p for p in document["pools"] if p["name"] == "gpu"]
    assert (pool["account"], pool["region"], pool["scaling_role_arn"]) == (ACCOUNT_B, POOL_REGION, GPU_ROLE)
    assert {(g["instance_type"], g["desired"], g["maximum"]) for g in pool["groups"]} == {
        ("g5.xlarge", 0, 10),
        ("g4dn.xlarge.spot", 0, 10),
    }
    # Without a profile of account B, its groups cannot be read: the row says so.
    unread = world.run("pool", "list", "--installation", INSTALLATION, "--region", HOME, "--profile", "a")
    assert unread.exit_code == 0 and f"no --profile for account {ACCOUNT_B}" in unread.output


@pytest.mark.parametrize(
    ("installation", "message"),
    [
        ("no-such-stack", "installation stack no-such-stack does not exist in us-east-1"),
        ("gpu-pool", "stack gpu-pool is not a Valohai installation"),
    ],
)
def test_an_installation_that_is_not_one_is_refused_before_anything_is_made(world, gpu, installation, message):
    profile = "b" if installation == "gpu-pool" else "a"
    region = POOL_REGION if installation == "gpu-pool" else HOME
    result = world.run(
        "pool", "deploy", "--installation", installation, "--installation-profile", profile, "--installation-region",
        region, "--profile", "c", "--region", "eu-west-1", "--stack-name", "x-pool", "--params",
        str(world.pool_params("c", "eu-west-1", "xp")), "--yes",
    )  # fmt: skip
    assert result.exit_code == 2 and result.output.count("\n") == 1 and message in result.output, result.output
    assert not world.client("c", "cloudformation", "eu-west-1").list_stacks()["StackSummaries"]


def test_queue_without_tls_across_accounts_is_refused_before_anything_is_made(world, gpu):
    ssm = world.client("a", "ssm")
    url = ssm.get_parameter(Name=f"/{PREFIX}/queue-url")["Parameter"]["Value"]
    plain = url.replace("rediss://", "redis://").split("?")[0]
    ssm.put_parameter(Name=f"/{PREFIX}/queue-url", Value=plain, Overwrite=True)  # as an installation without TLS
    try:
        result = world.pool("deploy", "c", "eu-west-1", "--stack-name", "x-pool", "--params", str(world.pool_params("c", "eu-west-1", "xp")), "--yes")  # fmt: skip
    finally:
        ssm.put_parameter(Name=f"/{PREFIX}/queue-url", Value=url, Overwrite=True)
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "queue is not encrypted in transit and the pool is in another account (333333333333)" in result.output
    assert not world.client("c", "cloudformation", "eu-west-1").list_stacks()["StackSummaries"]


def test_an_account_out_of_reach_is_one_line_and_exit_1(world, gpu):
    result = CliRunner().invoke(
        cli,
        ["pool", "deploy", "--installation", INSTALLATION, "--installation-profile", "a", "--profile", "b",
         "--region", POOL_REGION, "--stack-name", "x-pool", "--params", str(world.pool_params("b", POOL_REGION, "xp")),
         "--yes", "--endpoint-url", "http://127.0.0.1:9"],
    )  # fmt: skip
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "Traceback" not in result.output, result.output


def test_a_stack_set_over_two_accounts_and_two_regions_ends_with_four_pools_registered(world, gpu):
    regions = (POOL_REGION, "eu-west-1")
    shared = world.directory / "shared.json"
    shared.write_text(
        dump_parameters({"PoolName": "ss", "WorkerInstanceTypes": "g5.xlarge", "WorkerSpotInstanceTypes": ""})
    )
    where = []
    for profile, account in (("b", ACCOUNT_B), ("c", ACCOUNT_C)):
        for region in regions:
            network = world.networks[(profile, region)]
            path = world.directory / f"ss-{account}-{region}.json"
            own = {k: network[k] for k in ("VpcId", "WorkerSubnetIds", "WorkerAmiId")}
            path.write_text(dump_parameters(own))
            where += ["--region-params", f"{account}/{region}={path}"]
    deploy = (
        "pool", "deploy", "--installation", INSTALLATION, "--installation-profile", "a", "--installation-region", HOME,
        "--profile", "a", "--region", HOME, "--stack-name", "ss-pools", "--params", str(shared), "--yes",
        "--accounts", f"{ACCOUNT_B},{ACCOUNT_C}", "--regions", ",".join(regions), *where,
    )  # fmt: skip
    # Self-managed permissions: each target account needs the execution role. Account C has none yet: its two
    # instances fail with CloudFormation's reason, and no pool is registered.
    world.client("b", "iam").create_role(
        RoleName="AWSCloudFormationStackSetExecutionRole", AssumeRolePolicyDocument="{}"
    )
    failed = world.run(*deploy)
    assert failed.exit_code == 1, failed.output
    assert (
        f"{ACCOUNT_C} {POOL_REGION}: OUTDATED (FAILED): Account {ACCOUNT_C} should have 'AWSCloudFormationStackSetExecutionRole'"
        in failed.output
    )
    assert "2 instance(s) failed, no pool was registered" in failed.output
    assert not [arn for arn in world.registered() if "/ss-" in arn]

    world.client("c", "iam").create_role(
        RoleName="AWSCloudFormationStackSetExecutionRole", AssumeRolePolicyDocument="{}"
    )
    made = world.run(*deploy)
    assert made.exit_code == 0, made.output
    expected = {
        f"arn:aws:iam::{account}:role/ss-{account}-role-scaling-{region}"
        for account in (ACCOUNT_B, ACCOUNT_C)
        for region in regions
    }
    assert expected <= set(world.registered()) and len([a for a in world.registered() if "/ss-" in a]) == 4
    for profile, account in (("b", ACCOUNT_B), ("c", ACCOUNT_C)):
        for region in regions:
            (_made,) = [
                s
                for s in world.client(profile, "cloudformation", region).list_stacks()["StackSummaries"]
                if s["StackName"].startswith("StackSet-ss-pools-") and s["StackStatus"] == "CREATE_COMPLETE"
            ]
            groups = world.client(profile, "autoscaling", region).describe_auto_scaling_groups(
                Filters=[{"Name": "tag:valohai:workers", "Values": [f"ss-{account}"]}]
            )["AutoScalingGroups"]
            assert [g["AutoScalingGroupName"] for g in groups] == [f"ss-{account}-worker-g5.xlarge"], (account, region)
    # The StackSet got the template processed for its types: no transform, so either permission model runs it.
    body = world.client("a", "cloudformation").describe_stack_set(StackSetName="ss-pools")["StackSet"]["TemplateBody"]
    assert "Transform" not in json.loads(body) and "Fn::ForEach" not in body


def test_removing_a_stack_sets_pools_deregisters_them_all_before_their_stacks_go(world, gpu):
    if not [arn for arn in world.registered() if "/ss-" in arn]:
        pytest.skip("needs the StackSet of the test before")
    order = Order(world)
    gone = pools.remove_stack_set(
        _clients("a", HOME, world), _clients("a", HOME, world), installation=INSTALLATION, stack_set_name="ss-pools",
        approve=lambda question: True, report=order,
    )  # fmt: skip
    assert len(gone) == 4 and not [arn for arn in world.registered() if "/ss-" in arn]
    kinds = [name for name, _, _ in order.seen]
    assert kinds.index("Executing") < kinds.index("OperationWaiting"), "deregistered before the instances go"
    for profile, account in (("b", ACCOUNT_B), ("c", ACCOUNT_C)):
        for region in (POOL_REGION, "eu-west-1"):
            assert not world.client(profile, "autoscaling", region).describe_auto_scaling_groups(
                Filters=[{"Name": "tag:valohai:workers", "Values": [f"ss-{account}"]}]
            )["AutoScalingGroups"]
    cfn = world.client("a", "cloudformation")
    assert [s["Status"] for s in cfn.list_stack_sets()["Summaries"] if s["StackSetName"] == "ss-pools"] == ["DELETED"]


def test_a_registered_pool_whose_stack_is_gone_is_listed_so_and_removed_by_deregistering_it(world, gpu):
    made = world.pool("deploy", "b", HOME, "--stack-name", "orphan-pool", "--params", str(world.pool_params("b", HOME, "orphan")), "--yes", "--skip-preflight")  # fmt: skip
    assert made.exit_code == 0, made.output
    role = f"arn:aws:iam::{ACCOUNT_B}:role/orphan-role-scaling-{HOME}"
    assert role in world.registered()
    cfn = world.client("b", "cloudformation")
    cfn.update_termination_protection(StackName="orphan-pool", EnableTerminationProtection=False)
    cfn.delete_stack(StackName="orphan-pool")
    cfn.get_waiter("stack_delete_complete").wait(StackName="orphan-pool", WaiterConfig={"Delay": 1})

    listed = world.run("pool", "list", "--installation", INSTALLATION, "--region", HOME, "--profile", "a", "--profile", "b", "--output", "json")  # fmt: skip
    (orphan,) = [p for p in json.loads(listed.stdout)["pools"] if p["name"] == "orphan"]
    assert orphan["groups"] is None
    assert orphan["unreadable"].startswith(
        f"stack gone: valohai-cfn pool remove --installation {INSTALLATION} --stack-name orphan-pool --region {HOME}"
    ), orphan

    removed = world.pool("remove", "b", HOME, "--stack-name", "orphan-pool", "--yes")
    assert removed.exit_code == 0, removed.output
    assert role not in world.registered() and GPU_ROLE in world.registered()
    assert (
        f"Pool orphan is deregistered; its stack orphan-pool was already gone ({ACCOUNT_B}, {HOME})." in removed.output
    )
    # Not a pool's stack, gone or live: refused as before.
    never = world.pool("remove", "b", HOME, "--stack-name", "never-was", "--yes")
    assert never.exit_code == 2 and "pool stack never-was does not exist" in never.output, never.output


class InterruptAt(Order):
    """Ctrl-C (KeyboardInterrupt, as Python raises it on SIGINT) when the note `at` comes for `stack`."""

    def __init__(self, world: World, at: str, stack: str) -> None:
        super().__init__(world)
        self.at, self.stack = at, stack

    def note(self, note) -> None:
        super().note(note)
        if (
            type(note).__name__ == self.at
            and getattr(note, "stack_name", getattr(note, "installation", "")) == self.stack
        ):
            raise KeyboardInterrupt


@pytest.mark.parametrize("at", ["Registering", "CreatingChangeSet"])
def test_ctrl_c_after_the_pool_stack_is_deployed_says_so_and_that_deploying_again_registers_it(world, gpu, at):
    from valohai_cfn.cli.common import built_pool_source
    from valohai_cfn.params import load_parameters

    name = f"intr{len(at)}"
    request = pools.PoolDeployRequest(
        installation=INSTALLATION, stack_name=f"{name}-pool", template=built_pool_source(),
        parameters=load_parameters(world.pool_params("b", HOME, name)), preflight=False,
    )  # fmt: skip
    before = world.registered()
    with pytest.raises(pools.deploy.Interrupted) as stopped:
        pools.deploy_pool(
            _clients("b", HOME, world), _clients("a", HOME, world), request, approve=lambda question: True,
            report=InterruptAt(world, at, INSTALLATION),
        )  # fmt: skip
    message = str(stopped.value)
    assert "Nothing was changed" not in message, message
    assert message.startswith(
        f"Pool stack {name}-pool is deployed and protected (termination protection on) in account {ACCOUNT_B}, "
        f"{HOME}; it is not registered with installation {INSTALLATION}"
    ), message
    assert "pool deploy again registers it" in message
    assert world.registered() == before
    cfn = world.client("b", "cloudformation")
    (stack,) = cfn.describe_stacks(StackName=f"{name}-pool")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE" and stack["EnableTerminationProtection"]
    cfn.update_termination_protection(StackName=f"{name}-pool", EnableTerminationProtection=False)
    cfn.delete_stack(StackName=f"{name}-pool")


def test_a_peering_to_another_vpc_of_the_queues_range_is_not_a_route_to_the_queue(world, gpu):
    """QA: the pool's VPC peered with an unrelated VPC that has the installation's CIDR, and routed to it:
    preflight said "Route to the queue ok through pcx-…". The peering's other side must be the installation's."""
    ec2 = world.client("c", "ec2", "eu-west-1")
    there = world.networks[("c", "eu-west-1")]
    lookalike = ec2.create_vpc(CidrBlock=world.networks[("a", HOME)]["Cidr"])["Vpc"]["VpcId"]
    peering = ec2.create_vpc_peering_connection(VpcId=there["VpcId"], PeerVpcId=lookalike)["VpcPeeringConnection"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=peering["VpcPeeringConnectionId"])
    for table in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [there["VpcId"]]}])["RouteTables"]:
        ec2.create_route(
            RouteTableId=table["RouteTableId"],
            DestinationCidrBlock=world.networks[("a", HOME)]["Cidr"],
            VpcPeeringConnectionId=peering["VpcPeeringConnectionId"],
        )
    result = world.pool("preflight", "c", "eu-west-1", "--params", str(world.pool_params("c", "eu-west-1", "look")))
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert f"{peering['VpcPeeringConnectionId']} connects" in said and "not the installation's" in said, said
