"""Preflight: check the account with boto3 before anything is created.

Each check looks at one thing the template will rely on and says ok, or failed with the reason, so a
deploy does not fail twenty minutes in on a subnet in the wrong VPC.
"""

from __future__ import annotations

import contextlib
import fnmatch
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
    checks = []
    for parameter in SUBNET_PARAMETERS:
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
    """Each subnet's routes: its own route table's, else the VPC's main table's (one call for all)."""
    tables = account.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
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
    checks = []
    for parameter, name in (("RoiAmiId", "App image is available"), ("WorkerAmiId", "Worker image is available")):
        if wants_latest(parameter, p[parameter]):
            checks.append(_latest_image(account, name, parameter))
        else:
            checks.append(_image(account, name, p[parameter]))
    return checks


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
    name = "Key pair exists"
    key = p.get("KeyPairName", "")
    if not key:
        return [Check(name, True, "none given (Session Manager)")]
    try:
        account.ec2.describe_key_pairs(KeyNames=[key])
    except ClientError as e:
        return [Check(name, False, f"{key}: {e.response['Error']['Message']}")]
    return [Check(name, True, key)]


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


def check_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{c.name:<{width}}  {'ok    ' if c.ok else 'FAILED'}  {c.detail}" for c in checks)
