"""Preflight: check the account with boto3 before anything is created.

Each check looks at one thing the template will rely on and says ok, or failed with the reason, so a
deploy does not fail twenty minutes in on a subnet in the wrong VPC.
"""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from valohai_cfn.images import IMAGE_NAMES, newest_shared_image, not_shared, wants_latest
from valohai_cfn.params import WORKER_TYPE_PARAMETERS


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Account:
    """The clients the checks need, and what they share."""

    ec2: Any
    acm: Any
    s3: Any
    sts: Any
    cfn: Any
    region: str
    stack_name: str | None = None
    # The queue's engine row needs it; without it (a caller that gives none) that row is left out.
    elasticache: Any = None
    _subnets: dict[str, dict] = field(default_factory=dict)

    def subnets(self, ids: list[str]) -> dict[str, dict]:
        """The subnets among `ids` that exist, by id (one DescribeSubnets per missing id at worst)."""
        wanted = [i for i in ids if i not in self._subnets]
        if wanted:
            try:
                found = self.ec2.describe_subnets(SubnetIds=wanted)["Subnets"]
            except ClientError as e:
                if "NotFound" not in e.response["Error"]["Code"]:
                    raise
                found = []
                for subnet_id in wanted:  # find which ones exist
                    with contextlib.suppress(ClientError):
                        found += self.ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
            self._subnets.update({s["SubnetId"]: s for s in found})
        return {i: self._subnets[i] for i in ids if i in self._subnets}


def _ids(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


SUBNET_PARAMETERS = ("LoadBalancerSubnetIds", "RoiSubnetId", "DatabaseSubnetIds", "CacheSubnetIds", "WorkerSubnetIds")
TWO_ZONE_PARAMETERS = ("LoadBalancerSubnetIds", "DatabaseSubnetIds", "CacheSubnetIds")


def check_vpc(account: Account, p: dict[str, str]) -> list[Check]:
    try:
        account.ec2.describe_vpcs(VpcIds=[p["VpcId"]])
    except ClientError as e:
        return [Check("VPC exists", False, f"{p['VpcId']}: {e.response['Error']['Message']}")]
    return [Check("VPC exists", True, p["VpcId"])]


def check_subnets(account: Account, p: dict[str, str]) -> list[Check]:
    return _subnet_checks(account, p, SUBNET_PARAMETERS)


def _subnet_checks(account: Account, p: dict[str, str], parameters: tuple[str, ...]) -> list[Check]:
    checks = []
    for parameter in parameters:
        ids = _ids(p[parameter])
        found = account.subnets(ids)
        missing = [i for i in ids if i not in found]
        outside = [i for i, s in found.items() if s["VpcId"] != p["VpcId"]]
        if missing:
            checks.append(Check(f"{parameter} exist", False, f"not found: {', '.join(missing)}"))
        elif outside:
            checks.append(Check(f"{parameter} exist", False, f"not in {p['VpcId']}: {', '.join(outside)}"))
        else:
            checks.append(Check(f"{parameter} exist", True, f"in {p['VpcId']}"))
    return checks


def check_zones(account: Account, p: dict[str, str]) -> list[Check]:
    checks = []
    for parameter in TWO_ZONE_PARAMETERS:
        zones = sorted({s["AvailabilityZone"] for s in account.subnets(_ids(p[parameter])).values()})
        ok = len(zones) >= 2
        detail = ", ".join(zones) if ok else f"only {', '.join(zones) or 'no zone'}: needs subnets in two zones"
        checks.append(Check(f"{parameter} span two AZs", ok, detail))
    return checks


def _routes_by_subnet(account: Account, vpc_id: str, subnet_ids: list[str]) -> dict[str, list[dict]]:
    return routes_by_subnet(account.ec2, vpc_id, subnet_ids)


def routes_by_subnet(ec2: Any, vpc_id: str, subnet_ids: list[str]) -> dict[str, list[dict]]:
    """Each subnet's routes: its own route table's, else the VPC's main table's (one call for all)."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    main: list[dict] = []
    own: dict[str, list[dict]] = {}
    for table in tables:
        for association in table.get("Associations", []):
            if association.get("Main"):
                main = table["Routes"]
            elif association.get("SubnetId"):
                own[association["SubnetId"]] = table["Routes"]
    return {subnet: own.get(subnet, main) for subnet in subnet_ids}


def check_public_subnets(account: Account, p: dict[str, str]) -> list[Check]:
    name = "Load balancer subnets are public"
    if p.get("LoadBalancerScheme", "internet-facing") != "internet-facing":
        return [Check(name, True, "not needed: the load balancer is internal")]
    subnets = account.subnets(_ids(p["LoadBalancerSubnetIds"]))
    private = []
    for vpc_id in sorted({s["VpcId"] for s in subnets.values()}):
        in_vpc = [i for i, s in subnets.items() if s["VpcId"] == vpc_id]
        for subnet_id, routes in _routes_by_subnet(account, vpc_id, in_vpc).items():
            if not any(
                r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("GatewayId", "").startswith("igw-")
                for r in routes
            ):
                private.append(subnet_id)
    if private:
        return [Check(name, False, f"no 0.0.0.0/0 route to an internet gateway: {', '.join(sorted(private))}")]
    return [Check(name, True, "0.0.0.0/0 routes to an internet gateway")]


def _image(account: Account, name: str, image_id: str) -> Check:
    try:
        images = account.ec2.describe_images(ImageIds=[image_id])["Images"]
    except ClientError as e:
        return Check(name, False, f"{image_id}: {e.response['Error']['Message']}")
    if not images:
        return Check(name, False, f"{image_id}: not found or not shared with this account")
    state = images[0].get("State", "unknown")
    return Check(name, state == "available", f"{image_id} is {state}")


def _latest_image(account: Account, name: str, parameter: str) -> Check:
    """`latest`: the newest image Valohai shares with the account here, or why there is none."""
    image = newest_shared_image(account.ec2, IMAGE_NAMES[parameter])
    if image is None:
        account_id = account.sts.get_caller_identity()["Account"]
        return Check(name, False, not_shared(parameter, IMAGE_NAMES[parameter], account_id, account.region))
    return Check(name, True, f"latest = {image['ImageId']} ({image.get('Name', 'no name')})")


def check_image(account: Account, p: dict[str, str]) -> list[Check]:
    return [
        _image_check(account, p, parameter, name)
        for parameter, name in (("RoiAmiId", "App image is available"), ("WorkerAmiId", "Worker image is available"))
    ]


def _image_check(account: Account, p: dict[str, str], parameter: str, name: str) -> Check:
    if wants_latest(parameter, p[parameter]):
        return _latest_image(account, name, parameter)
    return _image(account, name, p[parameter])


def covers(certificate_names: list[str], domain: str) -> bool:
    """Whether a certificate for these names is valid for domain (a wildcard covers one label)."""
    for pattern in certificate_names:
        if pattern.startswith("*."):
            if "." in domain and domain.split(".", 1)[1] == pattern[2:]:
                return True
        elif fnmatch.fnmatchcase(domain, pattern):
            return True
    return False


def check_certificate(account: Account, p: dict[str, str]) -> list[Check]:
    name = "Certificate is issued for Domain"
    arn = p.get("CertificateArn", "")
    if not arn:
        return [Check(name, True, "none given (HTTP only, or one is created with HostedZoneId)")]
    try:
        certificate = account.acm.describe_certificate(CertificateArn=arn)["Certificate"]
    except ClientError as e:
        return [Check(name, False, f"{arn}: {e.response['Error']['Message']}")]
    names = [certificate["DomainName"], *certificate.get("SubjectAlternativeNames", [])]
    if certificate["Status"] != "ISSUED":
        return [Check(name, False, f"status is {certificate['Status']}, not ISSUED")]
    if not covers(names, p["Domain"]):
        return [Check(name, False, f"covers {', '.join(sorted(set(names)))}, not {p['Domain']}")]
    return [Check(name, True, f"ISSUED, covers {p['Domain']}")]


def check_key_pair(account: Account, p: dict[str, str]) -> list[Check]:
    return [_key_pair_check(account, p, "KeyPairName", "Key pair exists")]


def _key_pair_check(account: Account, p: dict[str, str], parameter: str, name: str) -> Check:
    key = p.get(parameter, "")
    if not key:
        return Check(name, True, "none given (Session Manager)")
    try:
        account.ec2.describe_key_pairs(KeyNames=[key])
    except ClientError as e:
        return Check(name, False, f"{key}: {e.response['Error']['Message']}")
    return Check(name, True, key)


def check_instance_type(account: Account, p: dict[str, str]) -> list[Check]:
    name = "App instance type is offered in its AZ"
    subnet = account.subnets([p["RoiSubnetId"]]).get(p["RoiSubnetId"])
    if subnet is None:
        return [Check(name, False, f"cannot tell: subnet {p['RoiSubnetId']} not found")]
    zone = subnet["AvailabilityZone"]
    offerings = account.ec2.describe_instance_type_offerings(
        LocationType="availability-zone",
        Filters=[{"Name": "location", "Values": [zone]}, {"Name": "instance-type", "Values": [p["RoiInstanceType"]]}],
    )["InstanceTypeOfferings"]
    ok = bool(offerings)
    return [Check(name, ok, f"{p['RoiInstanceType']} {'is' if ok else 'is not'} offered in {zone}")]


def check_worker_types(account: Account, p: dict[str, str]) -> list[Check]:
    """Each worker type must be offered in a zone of the worker subnets, or its group can never launch one."""
    name = "Worker types are offered in their zones"
    types = sorted({t for parameter in WORKER_TYPE_PARAMETERS for t in _ids(p.get(parameter, ""))})
    zones = sorted({s["AvailabilityZone"] for s in account.subnets(_ids(p["WorkerSubnetIds"])).values()})
    if not zones:
        return [Check(name, False, "cannot tell: no WorkerSubnetIds found")]
    offered: set[str] = set()
    pages = account.ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone",
        Filters=[{"Name": "location", "Values": zones}, {"Name": "instance-type", "Values": types}],
    )
    for page in pages:
        offered |= {o["InstanceType"] for o in page["InstanceTypeOfferings"]}
    missing = [t for t in types if t not in offered]
    if missing:
        return [Check(name, False, f"not offered in {', '.join(zones)}: {', '.join(missing)}")]
    return [Check(name, True, f"{', '.join(types)} in {', '.join(zones)}")]


def _stack_owns(account: Account, logical_id: str, physical_id: str) -> bool:
    if not account.stack_name:
        return False
    try:
        for page in account.cfn.get_paginator("list_stack_resources").paginate(StackName=account.stack_name):
            for resource in page["StackResourceSummaries"]:
                if resource["LogicalResourceId"] == logical_id:
                    return resource.get("PhysicalResourceId") == physical_id
    except ClientError:  # no such stack
        return False
    return False


def check_bucket_name(account: Account, p: dict[str, str]) -> list[Check]:
    name = "Data bucket name is free"
    account_id = account.sts.get_caller_identity()["Account"]
    bucket = f"{p.get('ResourcePrefix', 'valohai')}-data-{account_id}-{account.region}"
    try:
        account.s3.head_bucket(Bucket=bucket)
    except ClientError as e:
        code = e.response["Error"]["Code"]
        if code in ("404", "NoSuchBucket", "NotFound"):
            return [Check(name, True, f"{bucket} is free")]
        return [Check(name, False, f"{bucket} belongs to another account ({code})")]
    if _stack_owns(account, "DataBucket", bucket):
        return [Check(name, True, f"{bucket} is this stack's own")]
    return [
        Check(
            name,
            False,
            f"{bucket} exists (a retained bucket of an earlier installation?): "
            "delete it or choose another ResourcePrefix",
        )
    ]


def check_queue_engine(account: Account, p: dict[str, str]) -> list[Check]:
    """QueueEngineVersion is a Redis version ElastiCache offers in this region (DescribeCacheEngineVersions).
    Whether CacheNodeType is offered for it, no ElastiCache API tells (there is no orderable-options call as
    RDS has); every node type the template allows runs every version it allows (Graviton2 types need Redis
    5.0.6 or later, ElastiCache's documentation says)."""
    if account.elasticache is None:
        return []
    name = "Queue engine version is offered"
    wanted = p["QueueEngineVersion"]
    pages = account.elasticache.get_paginator("describe_cache_engine_versions").paginate(Engine="redis")
    offered = sorted({v["EngineVersion"] for page in pages for v in page["CacheEngineVersions"]})
    if wanted in offered:
        return [Check(name, True, f"redis {wanted} in {account.region}")]
    return [Check(name, False, f"redis {wanted} is not offered in {account.region}; offered: {', '.join(offered)}")]


CHECKS: list[Callable[[Account, dict[str, str]], list[Check]]] = [
    check_vpc,
    check_subnets,
    check_zones,
    check_public_subnets,
    check_image,
    check_certificate,
    check_key_pair,
    check_instance_type,
    check_worker_types,
    check_bucket_name,
    check_queue_engine,
]


def run_checks(account: Account, parameters: dict[str, str]) -> list[Check]:
    """Every check, in order; `parameters` must hold every template parameter (defaults filled in)."""
    return [check for run in CHECKS for check in run(account, parameters)]


# -- a worker pool's (SPEC "Worker pools") ------------------------------------------------------------------

QUEUE_PORT = 6379
# What carries traffic between two VPCs: a peering connection or a transit gateway (the route's target key).
BETWEEN_VPCS = ("VpcPeeringConnectionId", "TransitGatewayId")


@dataclass(frozen=True)
class QueueNetwork:
    """Where the installation's queue is, read in the installation's account, for a pool's checks."""

    account: str
    region: str
    vpc_id: str
    tls: bool  # rediss://
    subnets: dict[str, str]  # the queue's subnets: id → IPv4 CIDR
    routes: dict[str, list[dict]]  # the queue's subnets: id → routes, as DescribeRouteTables gives them
    security_group: dict | None  # <prefix>-sg-queue, as DescribeSecurityGroups gives it


def check_pool_subnets(account: Account, p: dict[str, str]) -> list[Check]:
    return _subnet_checks(account, p, ("WorkerSubnetIds",))


def check_pool_image(account: Account, p: dict[str, str]) -> list[Check]:
    return [_image_check(account, p, "WorkerAmiId", "Worker image is available")]


def check_pool_key_pair(account: Account, p: dict[str, str]) -> list[Check]:
    return [_key_pair_check(account, p, "WorkerKeyPairName", "Worker key pair exists")]


def _same_vpc(account: Account, p: dict[str, str], queue: QueueNetwork) -> bool:
    pool_account = account.sts.get_caller_identity()["Account"]
    return (pool_account, account.region, p["VpcId"]) == (queue.account, queue.region, queue.vpc_id)


def _covered(routes: list[dict], cidr: str) -> str | None:
    """The peering connection or transit gateway a route table sends `cidr` to (the most specific active route
    wins, as in AWS), or None."""
    network = ipaddress.ip_network(cidr)
    best: tuple[int, str | None] = (-1, None)
    for route in routes:
        destination = route.get("DestinationCidrBlock")
        if (
            not destination
            or route.get("State") == "blackhole"
            or not network.subnet_of(ipaddress.ip_network(destination))
        ):
            continue
        prefix = ipaddress.ip_network(destination).prefixlen
        if prefix > best[0]:
            best = (prefix, next((route[k] for k in BETWEEN_VPCS if route.get(k)), None))
    return best[1]


def _unrouted(routes: dict[str, list[dict]], cidrs: list[str]) -> tuple[list[str], set[str]]:
    """The subnets whose routes send some of `cidrs` nowhere between VPCs, and the targets the others use."""
    missing, through = [], set()
    for subnet, table in sorted(routes.items()):
        targets = [_covered(table, cidr) for cidr in cidrs]
        if None in targets:
            missing.append(subnet)
        through |= {t for t in targets if t}
    return missing, through


def check_queue_route(account: Account, p: dict[str, str], queue: QueueNetwork) -> list[Check]:
    """Both ways between the pool's subnets and the queue's: the same VPC, or routes through a peering
    connection or a transit gateway in each side's route tables (what the EC2 API tells; the peering's or the
    gateway's own acceptance and attachments are the account's to see)."""
    name, back = "Route to the queue", "Route back from the queue"
    if _same_vpc(account, p, queue):
        return [Check(name, True, f"same VPC {queue.vpc_id}"), Check(back, True, "same VPC")]
    pool_subnets = account.subnets(_ids(p["WorkerSubnetIds"]))
    missing, through = _unrouted(
        routes_by_subnet(account.ec2, p["VpcId"], sorted(pool_subnets)), list(queue.subnets.values())
    )
    there = Check(
        name,
        not missing,
        f"no route to the queue's {', '.join(sorted(queue.subnets.values()))} through a peering connection or "
        f"transit gateway from {', '.join(missing)}"
        if missing
        else f"through {', '.join(sorted(through))}",
    )
    missing, through = _unrouted(queue.routes, [s["CidrBlock"] for s in pool_subnets.values()])
    home = f"account {queue.account}, {queue.region}"
    return [
        there,
        Check(
            back,
            not missing,
            f"no route back to the pool's subnets from the queue's {', '.join(missing)} ({home})"
            if missing
            else f"through {', '.join(sorted(through))} ({home})",
        ),
    ]


def _allows(permission: dict, cidr: str) -> bool:
    protocol = permission.get("IpProtocol")
    ports = protocol == "-1" or (
        protocol in ("tcp", "6") and permission.get("FromPort", 0) <= QUEUE_PORT <= permission.get("ToPort", -1)
    )
    network = ipaddress.ip_network(cidr)
    return ports and any(network.subnet_of(ipaddress.ip_network(r["CidrIp"])) for r in permission.get("IpRanges", []))


def check_queue_security_group(account: Account, p: dict[str, str], queue: QueueNetwork) -> list[Check]:
    """The queue's security group lets the pool's subnets in on 6379 (the installation's own template lets in
    only its app instance and its own workers)."""
    name = "Queue admits the pool"
    if queue.security_group is None:
        return [Check(name, False, "the installation's queue security group was not found")]
    group = queue.security_group
    cidrs = sorted(s["CidrBlock"] for s in account.subnets(_ids(p["WorkerSubnetIds"])).values())
    shut = [c for c in cidrs if not any(_allows(permission, c) for permission in group.get("IpPermissions", []))]
    if shut:
        return [
            Check(
                name,
                False,
                f"{group['GroupName']} admits nothing on {QUEUE_PORT} from {', '.join(shut)}: add an "
                "ingress rule for the pool's subnets (README: Worker pools)",
            )
        ]
    return [Check(name, True, f"{group['GroupName']} admits {', '.join(cidrs)} on {QUEUE_PORT}")]


def check_queue_tls(account: Account, p: dict[str, str], queue: QueueNetwork) -> list[Check]:
    name = "Queue uses TLS"
    pool_account = account.sts.get_caller_identity()["Account"]
    if queue.tls:
        return [Check(name, True, "rediss://")]
    if pool_account == queue.account:
        return [Check(name, True, "not required: the pool is in the installation's account")]
    return [
        Check(
            name,
            False,
            f"the pool's account {pool_account} is not the installation's: QueueTransitEncryption must be true",
        )
    ]


POOL_CHECKS: list[Callable[[Account, dict[str, str]], list[Check]]] = [
    check_vpc,
    check_pool_subnets,
    check_pool_image,
    check_pool_key_pair,
    check_worker_types,
]
QUEUE_CHECKS = [check_queue_tls, check_queue_route, check_queue_security_group]


def run_pool_checks(account: Account, parameters: dict[str, str], queue: QueueNetwork) -> list[Check]:
    """A worker pool's checks, in order: its network, image, key pair and types, then its way to the queue."""
    checks = [check for run in POOL_CHECKS for check in run(account, parameters)]
    return checks + [check for run in QUEUE_CHECKS for check in run(account, parameters, queue)]


def check_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{c.name:<{width}}  {'ok    ' if c.ok else 'FAILED'}  {c.detail}" for c in checks)
