"""Preflight: check the account with boto3 before anything is created.

Each check looks at one thing the template will rely on and says ok, or failed with the reason, so a
deploy does not fail twenty minutes in on a subnet in the wrong VPC.
"""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from valohai_cfn.images import IMAGE_NAMES, newest_shared_image, not_shared, wants_latest
from valohai_cfn.params import WORKER_TYPE_PARAMETERS, check_value


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
    # Any other service's client (iam, secretsmanager, ssm, rds, route53, …), the same region: the rows of
    # named resources and of values checked against each other. Without it those rows are left out.
    aws: Callable[[str], Any] | None = None
    # The same for another region (IAM names are global to the account: the stack that holds one may be
    # anywhere), and the template whose names are checked (processed for the parameters, as CloudFormation).
    in_region: Callable[[str, str], Any] | None = None
    template: dict | None = None
    _subnets: dict[str, dict] = field(default_factory=dict)
    _known: dict[str, Any] = field(default_factory=dict)

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
    """VpcId names a VPC of this account and region (every resource lives in it)."""
    try:
        account.ec2.describe_vpcs(VpcIds=[p["VpcId"]])
    except ClientError as e:
        return [Check("VPC exists", False, f"{p['VpcId']}: {e.response['Error']['Message']}")]
    return [Check("VPC exists", True, p["VpcId"])]


def check_subnets(account: Account, p: dict[str, str]) -> list[Check]:
    """Every subnet parameter names subnets that exist, in VpcId (a subnet of another VPC fails the groups and the
    database)."""
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
    """The load balancer's, the database's and the queue's subnets span two Availability Zones (each service refuses
    fewer)."""
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


def _default_routes(account: Account, subnet_ids: list[str]) -> dict[str, dict | None]:
    """Each subnet's 0.0.0.0/0 route (None: it has none), from its route table or its VPC's main one."""
    subnets = account.subnets(subnet_ids)
    found: dict[str, dict | None] = {}
    for vpc_id in sorted({s["VpcId"] for s in subnets.values()}):
        in_vpc = [i for i, s in subnets.items() if s["VpcId"] == vpc_id]
        for subnet_id, routes in _routes_by_subnet(account, vpc_id, in_vpc).items():
            found[subnet_id] = next((r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"), None)
    return dict(sorted(found.items()))


def check_public_subnets(account: Account, p: dict[str, str]) -> list[Check]:
    """An internet-facing load balancer's subnets route 0.0.0.0/0 to an internet gateway (else nobody reaches
    the app)."""
    name = "Load balancer subnets are public"
    if p.get("LoadBalancerScheme", "internet-facing") != "internet-facing":
        return [Check(name, True, "not needed: the load balancer is internal")]
    private = [
        subnet_id
        for subnet_id, default in _default_routes(account, _ids(p["LoadBalancerSubnetIds"])).items()
        if not (default or {}).get("GatewayId", "").startswith("igw-")
    ]
    if private:
        return [Check(name, False, f"no 0.0.0.0/0 route to an internet gateway: {', '.join(private)}")]
    return [Check(name, True, "0.0.0.0/0 routes to an internet gateway")]


# What takes a private subnet's 0.0.0.0/0 out: a NAT gateway, a NAT instance, a transit gateway.
WAYS_OUT = ("NatGatewayId", "InstanceId", "NetworkInterfaceId", "TransitGatewayId")


def check_ways_out(account: Account, p: dict[str, str]) -> list[Check]:
    """The app's and the workers' subnets route 0.0.0.0/0 through a NAT (or a transit gateway): their instances
    get no public address, and without a way out the app cannot signal CloudFormation nor the workers pull
    their images or reach the app."""
    name = "App and worker subnets reach the internet"
    problems = []
    for subnet_id, default in _default_routes(account, sorted({p["RoiSubnetId"], *_ids(p["WorkerSubnetIds"])})).items():
        if default is None:
            problems.append(f"{subnet_id} has no 0.0.0.0/0 route")
        elif not any(default.get(k) for k in WAYS_OUT):
            problems.append(f"{subnet_id} routes 0.0.0.0/0 to {default.get('GatewayId', '?')}, not a NAT")
    if problems:
        detail = "; ".join(problems)
        return [
            Check(
                name,
                False,
                f"{detail}: route it to a NAT gateway (instances here get no public address); with VPC endpoints "
                "for everything they reach instead, deploy with --skip-preflight",
            )
        ]
    return [Check(name, True, "0.0.0.0/0 through a NAT or transit gateway")]


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
    """RoiAmiId and WorkerAmiId exist and are available to the account; for `latest`, which image it stands for, or
    that Valohai shares none with the account here."""
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
    """CertificateArn is an ISSUED certificate of this region that covers Domain (the HTTPS listener refuses
    another)."""
    name = "Certificate is issued for Domain"
    arn = p.get("CertificateArn", "")
    if not arn:
        return [Check(name, True, "none given (HTTP only, or one is created with HostedZoneId)")]
    region = arn.split(":")[3] if arn.count(":") >= 5 else account.region
    if region != account.region:
        # A load balancer takes a certificate of its own region only.
        return [
            Check(
                name,
                False,
                f"CertificateArn is a certificate of {region}; the load balancer takes one of {account.region}: "
                f"request or import one there (or give HostedZoneId and no CertificateArn to have one made)",
            )
        ]
    try:
        certificate = account.acm.describe_certificate(CertificateArn=arn)["Certificate"]
    except ClientError as e:
        return [Check(name, False, f"CertificateArn {arn}: {e.response['Error']['Message']}")]
    names = [certificate["DomainName"], *certificate.get("SubjectAlternativeNames", [])]
    if certificate["Status"] == "PENDING_VALIDATION":
        return [
            Check(
                name,
                False,
                "CertificateArn: PENDING_VALIDATION, not ISSUED: write its validation record (aws acm "
                "describe-certificate shows the CNAME) and deploy once ACM has issued it",
            )
        ]
    if certificate["Status"] != "ISSUED":
        return [Check(name, False, f"CertificateArn: {certificate['Status']}, not ISSUED: give an ISSUED certificate")]
    if not covers(names, p["Domain"]):
        return [Check(name, False, f"CertificateArn covers {', '.join(sorted(set(names)))}, not Domain {p['Domain']}")]
    return [Check(name, True, f"ISSUED, covers {p['Domain']}")]


def check_key_pair(account: Account, p: dict[str, str]) -> list[Check]:
    """KeyPairName names a key pair of this region (RunInstances refuses one that does not exist)."""
    return [_key_pair_check(account, p, "KeyPairName", "Key pair exists")]


def _key_pair_check(account: Account, p: dict[str, str], parameter: str, name: str) -> Check:
    key = p.get(parameter, "")
    if not key:
        return Check(name, True, "none given (Session Manager)")
    try:
        account.ec2.describe_key_pairs(KeyNames=[key])
    except ClientError as e:
        return Check(name, False, f"{parameter} {key}: {e.response['Error']['Message']}")
    return Check(name, True, key)


def check_instance_type(account: Account, p: dict[str, str]) -> list[Check]:
    """RoiInstanceType is offered in RoiSubnetId's Availability Zone."""
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
    """The data bucket's name is free (S3 names are global; a retained bucket of an earlier installation keeps it), or
    is this stack's own."""
    name = "Data bucket name is free"
    if account.template is not None:  # the name the template makes, as CloudFormation processes it
        made = [
            (n, r["Properties"]["BucketName"])
            for n, r in _processed(account, p).resources.items()
            if r["Type"] == "AWS::S3::Bucket" and isinstance(r["Properties"].get("BucketName"), str)
        ]
        if not made:
            return []  # a template that names no bucket (or cannot be processed: the names' row says so)
        logical_id, bucket = made[0]
    else:
        account_id = account.sts.get_caller_identity()["Account"]
        logical_id, bucket = "DataBucket", f"{p.get('ResourcePrefix', 'valohai')}-data-{account_id}-{account.region}"
    try:
        account.s3.head_bucket(Bucket=bucket)
    except ClientError as e:
        code = e.response["Error"]["Code"]
        if code in ("404", "NoSuchBucket", "NotFound"):
            return [Check(name, True, f"{bucket} is free")]
        # 403: another account's bucket, or this identity may not read its own: either way not one to make.
        return [
            Check(
                name,
                False,
                f"{bucket} exists and cannot be read from here ({code}: another account's, or no s3:ListBucket "
                "right): choose another ResourcePrefix, or check the rights of the identity you deploy with",
            )
        ]
    if _stack_owns(account, logical_id, bucket):
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
    """QueueEngineVersion is a Redis version ElastiCache offers in this region (DescribeCacheEngineVersions;
    CacheNodeType is checked against it by check_cache_node_type)."""
    if account.elasticache is None:
        return []
    name = "Queue engine version is offered"
    wanted = p["QueueEngineVersion"]
    pages = account.elasticache.get_paginator("describe_cache_engine_versions").paginate(Engine="redis")
    offered = sorted({v["EngineVersion"] for page in pages for v in page["CacheEngineVersions"]})
    if wanted in offered:
        return [Check(name, True, f"redis {wanted} in {account.region}")]
    return [Check(name, False, f"redis {wanted} is not offered in {account.region}; offered: {', '.join(offered)}")]


# -- what AWS checks against what exists, or against each other, at create time -------------------------


def _code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


def _processed(account: Account, p: dict[str, str]) -> Any:
    """The template as CloudFormation processes it for these parameters, with the pseudo parameters known
    here (the region, the account, its partition): the names it makes, read from the template itself."""
    if "processed" not in account._known:
        from valohai_cfn.intrinsics import EMPTY, EvaluationError, process, pseudo_parameters
        from valohai_cfn.language_extensions import TransformError
        from valohai_cfn.publish import partition

        pseudo = pseudo_parameters(region=account.region, stack_name=account.stack_name, stack_id=None)
        known_partition = partition(account.region)
        pseudo |= {
            "AWS::AccountId": account.sts.get_caller_identity()["Account"],
            "AWS::Partition": known_partition["partition"],
            "AWS::URLSuffix": known_partition["dnsSuffix"],
        }
        try:
            account._known["processed"] = process(account.template or {}, p, pseudo)
        except (EvaluationError, TransformError) as e:  # what CloudFormation would refuse: its own message
            account._known["processed"], account._known["unprocessed"] = EMPTY, str(e)
    return account._known["processed"]


def _stack_resources(account: Account) -> dict[str, str]:
    """The stack's own resources, logical id → physical id (none when no stack is named or it does not exist)."""
    if "stack" not in account._known:
        owned: dict[str, str] = {}
        if account.stack_name:
            try:
                pages = account.cfn.get_paginator("list_stack_resources").paginate(StackName=account.stack_name)
                owned = {
                    r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
                    for page in pages
                    for r in page["StackResourceSummaries"]
                }
            except ClientError:  # no such stack
                owned = {}
        account._known["stack"] = owned
    return account._known["stack"]


@dataclass(frozen=True)
class Found:
    """A resource that exists under a name the template makes."""

    ids: frozenset[str]  # what a stack would record as its physical id (the name, an id or an ARN)
    tags: dict[str, str]
    scheduled_deletion: str = ""  # a secret's DeletedDate


def _tags(items: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _each(names: list[str], lookup: Callable[[str], Found], missing: tuple[str, ...]) -> dict[str, Found]:
    """What exists of `names`: lookup(name) describes one, and AWS's error codes in `missing` mean it is free."""
    found = {}
    for name in names:
        try:
            found[name] = lookup(name)
        except ClientError as e:
            if _code(e) not in missing:
                raise
    return found


def _find_roles(account: Account, names: list[str], _p: dict[str, str]) -> dict[str, Found]:
    iam = account.aws("iam")

    def lookup(name: str) -> Found:
        role = iam.get_role(RoleName=name)["Role"]
        return Found(frozenset({name, role["Arn"]}), _tags(role.get("Tags")))

    return _each(names, lookup, ("NoSuchEntity",))


def _find_instance_profiles(account: Account, names: list[str], _p: dict[str, str]) -> dict[str, Found]:
    iam = account.aws("iam")

    def lookup(name: str) -> Found:
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        return Found(frozenset({name, profile["Arn"]}), _tags(profile.get("Tags")))

    return _each(names, lookup, ("NoSuchEntity",))


def _find_secrets(account: Account, names: list[str], _p: dict[str, str]) -> dict[str, Found]:
    secrets = account.aws("secretsmanager")

    def lookup(name: str) -> Found:
        secret = secrets.describe_secret(SecretId=name)
        deleted = secret.get("DeletedDate")
        when = f"{deleted:%Y-%m-%d %H:%M} UTC" if hasattr(deleted, "strftime") else str(deleted or "")
        return Found(frozenset({name, secret["ARN"]}), _tags(secret.get("Tags")), when)

    return _each(names, lookup, ("ResourceNotFoundException",))


def _find_parameters(account: Account, names: list[str], _p: dict[str, str]) -> dict[str, Found]:
    ssm = account.aws("ssm")
    found = {}
    for start in range(0, len(names), 10):  # GetParameters takes ten names at a time
        for parameter in ssm.get_parameters(Names=names[start : start + 10])["Parameters"]:
            found[parameter["Name"]] = Found(frozenset({parameter["Name"]}), {})
    return found


def _find_security_groups(account: Account, names: list[str], p: dict[str, str]) -> dict[str, Found]:
    # A security group's name is unique within its VPC.
    groups = account.ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": names}, {"Name": "vpc-id", "Values": [p["VpcId"]]}]
    )["SecurityGroups"]
    return {g["GroupName"]: Found(frozenset({g["GroupId"]}), _tags(g.get("Tags"))) for g in groups}


def _find_db_instances(account: Account, names: list[str], _p: dict[str, str]) -> dict[str, Found]:
    rds = account.aws("rds")

    def lookup(name: str) -> Found:
        db = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        return Found(frozenset({name, db["DBInstanceIdentifier"]}), _tags(db.get("TagList")))

    return _each(names, lookup, ("DBInstanceNotFound", "DBInstanceNotFoundFault"))


def _find_by_name(service: str, operation: str, parameter: str, missing: str) -> Callable[..., dict[str, Found]]:
    """A finder of the resources whose stacks record their name as their physical id: the service's describe
    `operation` with the name as `parameter`, AWS's error code `missing` when there is none."""

    def find(account: Account, names: list[str], _p: dict[str, str]) -> dict[str, Found]:
        describe = getattr(account.aws(service), operation)

        def lookup(name: str) -> Found:
            describe(**{parameter: name})  # raises `missing` when there is none
            return Found(frozenset({name}), {})

        return _each(names, lookup, (missing,))

    return find


def _find_launch_templates(account: Account, names: list[str], _p: dict[str, str]) -> dict[str, Found]:
    templates = account.ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": names}])
    return {
        t["LaunchTemplateName"]: Found(frozenset({t["LaunchTemplateId"]}), _tags(t.get("Tags")))
        for t in templates["LaunchTemplates"]
    }


def _find_auto_scaling_groups(account: Account, names: list[str], _p: dict[str, str]) -> dict[str, Found]:
    autoscaling = account.aws("autoscaling")
    found = {}
    for start in range(0, len(names), 50):
        pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
            AutoScalingGroupNames=names[start : start + 50]
        )
        for page in pages:
            for group in page["AutoScalingGroups"]:
                found[group["AutoScalingGroupName"]] = Found(
                    frozenset({group["AutoScalingGroupName"]}), _tags(group.get("Tags"))
                )
    return found


def _find_target_groups(account: Account, names: list[str], _p: dict[str, str]) -> dict[str, Found]:
    elbv2 = account.aws("elbv2")

    def lookup(name: str) -> Found:
        (group,) = elbv2.describe_target_groups(Names=[name])["TargetGroups"]
        return Found(frozenset({group["TargetGroupArn"]}), {})

    return _each(names, lookup, ("TargetGroupNotFound",))


@dataclass(frozen=True)
class Named:
    """A resource type the template names: its row, the property that names it, how to find what exists."""

    row: str
    name_property: str
    find: Callable[[Account, list[str], dict[str, str]], dict[str, Found]]
    global_to_account: bool = False  # IAM: one name across every region of the account


# Every type the template gives a name of its own (tests/test_preflight_rules.py holds the template to it).
# The data bucket has its row above (check_bucket_name), the DNS record the hosted zone's (check_hosted_zone).
NAMED = {
    "AWS::IAM::Role": Named("IAM role names are free", "RoleName", _find_roles, global_to_account=True),
    "AWS::IAM::InstanceProfile": Named(
        "IAM instance profile names are free", "InstanceProfileName", _find_instance_profiles, global_to_account=True
    ),
    "AWS::SecretsManager::Secret": Named("Secret names are free", "Name", _find_secrets),
    "AWS::SSM::Parameter": Named("SSM parameter names are free", "Name", _find_parameters),
    "AWS::EC2::SecurityGroup": Named("Security group names are free in the VPC", "GroupName", _find_security_groups),
    "AWS::RDS::DBInstance": Named("Database identifier is free", "DBInstanceIdentifier", _find_db_instances),
    "AWS::RDS::DBSubnetGroup": Named(
        "Database subnet group name is free",
        "DBSubnetGroupName",
        _find_by_name("rds", "describe_db_subnet_groups", "DBSubnetGroupName", "DBSubnetGroupNotFoundFault"),
    ),
    "AWS::ElastiCache::ReplicationGroup": Named(
        "Queue id is free",
        "ReplicationGroupId",
        _find_by_name(
            "elasticache", "describe_replication_groups", "ReplicationGroupId", "ReplicationGroupNotFoundFault"
        ),
    ),
    "AWS::ElastiCache::SubnetGroup": Named(
        "Queue subnet group name is free",
        "CacheSubnetGroupName",
        _find_by_name(
            "elasticache", "describe_cache_subnet_groups", "CacheSubnetGroupName", "CacheSubnetGroupNotFoundFault"
        ),
    ),
    "AWS::EC2::LaunchTemplate": Named("Launch template names are free", "LaunchTemplateName", _find_launch_templates),
    "AWS::AutoScaling::AutoScalingGroup": Named(
        "Worker group names are free", "AutoScalingGroupName", _find_auto_scaling_groups
    ),
    "AWS::ElasticLoadBalancingV2::TargetGroup": Named("Target group name is free", "Name", _find_target_groups),
}


def _holder_in(cfn: Any, found: Found) -> str | None:
    """The stack that holds the resource in the client's region (DescribeStackResources by its physical id: its
    name, id or ARN, whichever its type's stacks record)."""
    for physical_id in sorted(found.ids):
        try:
            resources = cfn.describe_stack_resources(PhysicalResourceId=physical_id)["StackResources"]
        except ClientError:
            continue
        if resources:
            return resources[0]["StackName"]
    return None


HELD_BY = "held by stack"


def _stack_lives(account: Account, stack_id: str, region: str) -> bool:
    """Whether the stack (by id: a deleted stack's id still answers, DELETE_COMPLETE) exists in its region; a
    stack that cannot be read counts as living."""
    cfn = (
        account.cfn
        if region == account.region or account.in_region is None
        else account.in_region("cloudformation", region)
    )
    from valohai_cfn.deploy import described_or_none

    try:
        stack = described_or_none(cfn, stack_id)
    except ClientError:
        return True  # cannot tell (no right to read it there): never advise deleting what may be in use
    return stack is not None and stack["StackStatus"] != "DELETE_COMPLETE"


def _holder(account: Account, named: Named, found: Found) -> str:
    """Who holds an existing resource: the stack its aws:cloudformation tags name, else the stack CloudFormation
    finds it in (for IAM, global to the account, in every region), else the installation its tag names."""
    stack_id = found.tags.get("aws:cloudformation:stack-id", "")
    if stack_id.count(":") >= 5:
        stack_name, region = found.tags.get("aws:cloudformation:stack-name", stack_id), stack_id.split(":")[3]
        if _stack_lives(account, stack_id, region):
            return f"{HELD_BY} {stack_name} in {region}"
        # A retained resource keeps the tags of the stack it outlived.
        return f"retained from stack {stack_name} in {region}, since deleted"
    stack = _holder_in(account.cfn, found)
    if stack:
        return f"{HELD_BY} {stack} in {account.region}"
    if named.global_to_account and account.in_region is not None:
        enabled = sorted(r["RegionName"] for r in account.ec2.describe_regions()["Regions"])
        clients = {r: account.in_region("cloudformation", r) for r in enabled if r != account.region}
        # One question per region, asked together: only a name that is taken costs this.
        with ThreadPoolExecutor(max_workers=8) as pool:
            holders = dict(zip(clients, pool.map(lambda cfn: _holder_in(cfn, found), clients.values()), strict=True))
        for region, stack in holders.items():
            if stack:
                return f"{HELD_BY} {stack} in {region}"
    installation = found.tags.get("valohai:installation")
    if installation:
        return f"made by a Valohai installation with ResourcePrefix {installation}, in no stack"
    return "in no stack"


def _ways_forward(resource_type: str, name: str, found: Found, holder: str) -> str:
    if holder.startswith(HELD_BY):
        # A live installation's: deleting it would break that installation. Never advised.
        return (
            "in use there: choose another ResourcePrefix, or give that stack's --stack-name (and --region) to update it"
        )
    if resource_type == "AWS::SecretsManager::Secret":
        if found.scheduled_deletion:
            return (
                f"scheduled for deletion ({found.scheduled_deletion}): keep it with aws secretsmanager restore-secret "
                f"--secret-id {name} and a CloudFormation resource import, delete it now with aws secretsmanager "
                f"delete-secret --secret-id {name} --force-delete-without-recovery, or choose another ResourcePrefix"
            )
        return (
            "retained by an earlier installation? It may hold keys its data needs: keep it with a CloudFormation "
            "resource import, delete it "
            f"with aws secretsmanager delete-secret --secret-id {name} --force-delete-without-recovery, or choose "
            "another ResourcePrefix"
        )
    return "delete it (or the stack that holds it), or choose another ResourcePrefix"


def _named_check(account: Account, p: dict[str, str], resource_type: str, named: Named) -> Check:
    from valohai_cfn.intrinsics import references

    wanted = {
        logical_id: r["Properties"][named.name_property]
        for logical_id, r in _processed(account, p).resources.items()
        if r["Type"] == resource_type and isinstance(r["Properties"].get(named.name_property), str)
    }
    names = sorted({n for n in wanted.values() if not references(n)})
    found = named.find(account, names, p) if names else {}
    own = _stack_resources(account)
    taken = []
    for logical_id, name in sorted(wanted.items(), key=lambda item: item[1]):
        if name in found and own.get(logical_id, "") not in found[name].ids:
            holder = _holder(account, named, found[name])
            way = _ways_forward(resource_type, name, found[name], holder)
            taken.append(f"{name} exists ({holder}; {way})")
    if taken:
        return Check(named.row, False, "; ".join(taken))
    mine = len({name for name in wanted.values() if name in found})
    return Check(named.row, True, f"{len(names) - mine} free" + (f", {mine} this stack's own" if mine else ""))


def check_named_resources(account: Account, p: dict[str, str]) -> list[Check]:
    """Every name the template makes (read from the template processed for the parameters) is free, or is
    this stack's own: a role or instance profile of the same prefix in another region (IAM names are global to
    the account), a secret an earlier stack retained or scheduled for deletion, a security group, database,
    queue, launch template, worker group, target group or SSM parameter of the same name."""
    if account.aws is None or account.template is None:
        return []
    present = {r["Type"] for r in _processed(account, p).resources.values()}
    if "unprocessed" in account._known:
        return [Check("Names the template makes are free", False, f"cannot tell: {account._known['unprocessed']}")]
    return [_named_check(account, p, t, named) for t, named in NAMED.items() if t in present]


def check_worker_key_pair(account: Account, p: dict[str, str]) -> list[Check]:
    """WorkerKeyPairName names a key pair of this region (the workers' launch templates take it; a launch fails
    on one that does not exist)."""
    return [_key_pair_check(account, p, "WorkerKeyPairName", "Worker key pair exists")]


def check_load_balancer_zones(account: Account, p: dict[str, str]) -> list[Check]:
    """An application load balancer takes one subnet per Availability Zone: two subnets in one zone are refused
    at create ("A load balancer cannot be attached to multiple subnets in the same Availability Zone")."""
    name = "Load balancer subnets are in distinct zones"
    subnets = account.subnets(_ids(p["LoadBalancerSubnetIds"]))
    by_zone: dict[str, list[str]] = {}
    for subnet_id, subnet in subnets.items():
        by_zone.setdefault(subnet["AvailabilityZone"], []).append(subnet_id)
    shared = {zone: ids for zone, ids in sorted(by_zone.items()) if len(ids) > 1}
    if shared:
        detail = "; ".join(f"{', '.join(sorted(ids))} are all in {zone}" for zone, ids in shared.items())
        return [Check(name, False, f"{detail}: give one subnet per zone")]
    return [Check(name, True, ", ".join(sorted(by_zone)) or "no subnet found")]


DATABASE_ENGINE = "postgres"
DATABASE_STORAGE_TYPE = "gp3"


def check_database_engine(account: Account, p: dict[str, str]) -> list[Check]:
    """DatabaseEngineVersion is a PostgreSQL version RDS offers here (DescribeDBEngineVersions; RDS: "Cannot find
    version … for postgres"), and DatabaseInstanceClass is orderable for it with gp3 storage, Multi-AZ when
    asked, in the database subnets' zones, for DatabaseAllocatedStorage (DescribeOrderableDBInstanceOptions)."""
    if account.aws is None:
        return []
    rds = account.aws("rds")
    version = p["DatabaseEngineVersion"]
    offered = rds.describe_db_engine_versions(Engine=DATABASE_ENGINE, EngineVersion=version)["DBEngineVersions"]
    version_row = "Database engine version is offered"
    class_row = "Database class is orderable for its version"
    if not offered:
        major = version.split(".")[0]
        pages = rds.get_paginator("describe_db_engine_versions").paginate(Engine=DATABASE_ENGINE)
        same_major = sorted(
            {
                v["EngineVersion"]
                for page in pages
                for v in page["DBEngineVersions"]
                if v["EngineVersion"].split(".")[0] == major
                and _takes(account, "DatabaseEngineVersion", v["EngineVersion"])
            },
            key=_version_key,
        )
        hint = f"; offered {major}.x: {', '.join(same_major)}" if same_major else ""
        return [
            Check(
                version_row,
                False,
                f"DatabaseEngineVersion {version}: RDS offers no postgres {version} in {account.region}{hint}",
            ),
            Check(class_row, False, f"cannot tell: postgres {version} is not offered"),
        ]
    return [Check(version_row, True, f"postgres {version} in {account.region}"), _orderable(account, rds, p, class_row)]


def _takes(account: Account, parameter: str, value: str) -> bool:
    """Whether the template's parameter accepts the value (params.check_value, as params check judges it): a
    hint never offers a value the parameter refuses (RDS lists 13.23-rds.20260224 beside 13.23)."""
    spec = (account.template or {}).get("Parameters", {}).get(parameter)
    return spec is None or not check_value(parameter, value, spec)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.replace("-", ".").split(".") if part.isdigit())


def _orderable(account: Account, rds: Any, p: dict[str, str], row: str) -> Check:
    version, instance_class = p["DatabaseEngineVersion"], p["DatabaseInstanceClass"]
    pages = rds.get_paginator("describe_orderable_db_instance_options").paginate(
        Engine=DATABASE_ENGINE, EngineVersion=version, DBInstanceClass=instance_class, Vpc=True
    )
    options = [o for page in pages for o in page["OrderableDBInstanceOptions"]]
    what = f"{instance_class} with postgres {version}"
    if not options:
        return Check(row, False, f"DatabaseInstanceClass {what} is not orderable in {account.region}")
    options = [o for o in options if o.get("StorageType") == DATABASE_STORAGE_TYPE]
    if not options:
        return Check(row, False, f"{what}: no {DATABASE_STORAGE_TYPE} storage")
    multi_az = p.get("DatabaseMultiAZ", "true") == "true"
    if multi_az and not any(o.get("MultiAZCapable") for o in options):
        return Check(row, False, f"{what} is not Multi-AZ capable: set DatabaseMultiAZ=false or another class")
    storage = int(float(p["DatabaseAllocatedStorage"]))
    sized = [o for o in options if o.get("MinStorageSize", 0) <= storage <= o.get("MaxStorageSize", storage)]
    if not sized:
        low = min(o.get("MinStorageSize", 0) for o in options)
        high = max(o.get("MaxStorageSize", 0) for o in options)
        return Check(
            row,
            False,
            f"DatabaseAllocatedStorage {storage} GiB: {what} takes {low}-{high} GiB of {DATABASE_STORAGE_TYPE}",
        )
    zones = {z["Name"] for o in sized for z in o.get("AvailabilityZones", [])}
    subnet_zones = sorted({s["AvailabilityZone"] for s in account.subnets(_ids(p["DatabaseSubnetIds"])).values()})
    usable = [z for z in subnet_zones if z in zones]
    needed = 2 if multi_az else 1
    if zones and len(usable) < needed:
        where = f"{', '.join(usable) or 'none'} of the database subnets' zones ({', '.join(subnet_zones)})"
        return Check(row, False, f"{what} is orderable in {where}" + ("; Multi-AZ needs two" if multi_az else ""))
    return Check(row, True, f"{what}, {DATABASE_STORAGE_TYPE}{', Multi-AZ' if multi_az else ''}, {storage} GiB")


# ElastiCache's documented minimum Redis version of node type families (supported node types): Graviton2
# types run Redis 5.0.6 and later; data tiering (r6gd) 6.2 and later.
CACHE_NODE_MINIMUM_VERSION = {"cache.m6g": "5.0.6", "cache.r6g": "5.0.6", "cache.t4g": "5.0.6", "cache.r6gd": "6.2"}


def check_cache_node_type(account: Account, p: dict[str, str]) -> list[Check]:
    """CacheNodeType is offered for Redis in this region (DescribeReservedCacheNodesOfferings lists every node
    type ElastiCache sells here; it has no orderable-options call as RDS has) and runs QueueEngineVersion
    (ElastiCache's documented minimum version of its family)."""
    if account.elasticache is None:
        return []
    name = "Queue node type is offered for its engine"
    node_type, version = p["CacheNodeType"], p["QueueEngineVersion"]
    family = node_type.rsplit(".", 1)[0]
    minimum = CACHE_NODE_MINIMUM_VERSION.get(family)
    if minimum and _version_key(version) < _version_key(minimum):
        return [
            Check(
                name,
                False,
                f"CacheNodeType {node_type} runs Redis {minimum} or later, not QueueEngineVersion {version}",
            )
        ]
    offerings = account.elasticache.describe_reserved_cache_nodes_offerings(
        CacheNodeType=node_type, ProductDescription="redis"
    )
    if not offerings["ReservedCacheNodesOfferings"]:
        return [
            Check(
                name,
                False,
                f"CacheNodeType {node_type}: ElastiCache offers no {node_type} for Redis in {account.region}",
            )
        ]
    return [Check(name, True, f"{node_type} with Redis {version} in {account.region}")]


def check_hosted_zone(account: Account, p: dict[str, str]) -> list[Check]:
    """HostedZoneId names a zone that holds Domain and has no record of it yet (the template makes Domain's
    alias record: "it already exists"), public when the template makes a DNS-validated certificate there
    (ACM validates through public DNS)."""
    name = "Hosted zone holds Domain"
    zone_id, domain = p.get("HostedZoneId", ""), p["Domain"]
    if not zone_id:
        return [Check(name, True, "none given (no DNS record is made)")]
    if account.aws is None:
        return []
    route53 = account.aws("route53")
    try:
        zone = route53.get_hosted_zone(Id=zone_id)["HostedZone"]
    except ClientError as e:
        return [Check(name, False, f"HostedZoneId {zone_id}: {e.response['Error']['Message']}")]
    zone_name = zone["Name"].rstrip(".")
    if domain != zone_name and not domain.endswith(f".{zone_name}"):
        return [Check(name, False, f"Domain {domain} is not in zone {zone_id} ({zone_name})")]
    if zone.get("Config", {}).get("PrivateZone") and not p.get("CertificateArn"):
        return [
            Check(
                name,
                False,
                f"zone {zone_name} is private: ACM cannot validate a certificate through it; give CertificateArn",
            )
        ]
    # The records the template makes there (its processed RecordSets), each of which must not exist yet.
    made = [(domain, "A")]
    if account.template is not None:
        made = [
            (str(r["Properties"]["Name"]).rstrip("."), str(r["Properties"]["Type"]))
            for r in _processed(account, p).resources.values()
            if r["Type"] == "AWS::Route53::RecordSet"
        ]
    owned = set(_stack_resources(account).values())
    for record, kind in made:
        found = route53.list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=record, StartRecordType=kind, MaxItems="1"
        )["ResourceRecordSets"]
        if found and (found[0]["Name"].rstrip("."), found[0]["Type"]) == (record, kind) and record not in owned:
            taken = f"zone {zone_name} has the {kind} record {record} already"
            return [Check(name, False, f"{taken}: remove it, or leave HostedZoneId empty")]
    return [Check(name, True, f"{domain} in {zone_name}")]


def _image_of(account: Account, parameter: str, value: str) -> dict | None:
    if wants_latest(parameter, value):
        return newest_shared_image(account.ec2, IMAGE_NAMES[parameter])
    try:
        images = account.ec2.describe_images(ImageIds=[value])["Images"]
    except ClientError:
        return None
    return images[0] if images else None


def _architectures(account: Account, types: list[str]) -> dict[str, list[str]]:
    pages = account.ec2.get_paginator("describe_instance_types").paginate(
        Filters=[{"Name": "instance-type", "Values": types}]
    )
    return {
        t["InstanceType"]: t.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        for page in pages
        for t in page["InstanceTypes"]
    }


def _root_size(image: dict) -> int:
    root = image.get("RootDeviceName")
    for mapping in image.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == root or root is None:
            return int(mapping.get("Ebs", {}).get("VolumeSize", 0))
    return 0


def _image_fits(account: Account, row: str, parameter: str, p: dict[str, str], types: list[str], size: str) -> Check:
    image = _image_of(account, parameter, p[parameter])
    if image is None:
        return Check(row, False, f"cannot tell: {parameter} is not found (see its row)")
    arch = image.get("Architecture", "x86_64")
    supported = _architectures(account, types) if types else {}
    wrong = [t for t in types if t in supported and arch not in supported[t]]
    problems = [f"{', '.join(wrong)} cannot run its {arch} image ({image['ImageId']})"] if wrong else []
    root = _root_size(image)
    if root and int(float(p[size])) < root:
        problems.append(f"{size} {p[size]} GiB is smaller than the image's {root} GiB root snapshot")
    if problems:
        return Check(row, False, "; ".join(problems))
    return Check(
        row, True, f"{arch} image, {', '.join(types)}" + (f", root {p[size]} GiB ≥ {root} GiB" if root else "")
    )


def check_images_fit(account: Account, p: dict[str, str]) -> list[Check]:
    """Each image runs on its instance types (the image's architecture among each type's; RunInstances refuses
    an arm64 image on an x86_64 type) and fits its root volume (RoiVolumeSize, WorkerVolumeSize at least the
    image's root snapshot: "Volume of size … is smaller than snapshot")."""
    worker_types = sorted({t for parameter in WORKER_TYPE_PARAMETERS for t in _ids(p.get(parameter, ""))})
    return [
        _image_fits(
            account,
            "App image fits its instance type and volume",
            "RoiAmiId",
            p,
            [p["RoiInstanceType"]],
            "RoiVolumeSize",
        ),
        _image_fits(
            account, "Worker image fits the worker types and volume", "WorkerAmiId", p, worker_types, "WorkerVolumeSize"
        ),
    ]


CHECKS: list[Callable[[Account, dict[str, str]], list[Check]]] = [
    check_vpc,
    check_subnets,
    check_zones,
    check_public_subnets,
    check_ways_out,
    check_image,
    check_certificate,
    check_key_pair,
    check_instance_type,
    check_worker_types,
    check_bucket_name,
    check_queue_engine,
    check_named_resources,
    check_worker_key_pair,
    check_load_balancer_zones,
    check_database_engine,
    check_cache_node_type,
    check_hosted_zone,
    check_images_fit,
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


def _peerings_elsewhere(ec2: Any, peerings: list[str], queue: QueueNetwork) -> list[str]:
    """Of the peering connections the pool's routes use, those whose other side is not the installation's VPC
    (a VPC of the same CIDR elsewhere matches the route, and reaches no queue), each said in one phrase."""
    if not peerings:
        return []
    wrong = []
    for peering in ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=peerings)["VpcPeeringConnections"]:
        sides = [peering.get("RequesterVpcInfo", {}), peering.get("AccepterVpcInfo", {})]
        wanted = (queue.vpc_id, queue.account, queue.region)
        if not any((s.get("VpcId"), s.get("OwnerId"), s.get("Region")) == wanted for s in sides):
            other = ", ".join(f"{s.get('VpcId')} ({s.get('OwnerId')}, {s.get('Region')})" for s in sides)
            wrong.append(
                f"{peering['VpcPeeringConnectionId']} connects {other}, not the installation's {queue.vpc_id} "
                f"({queue.account}, {queue.region}): route the queue's subnets through a peering with that VPC"
            )
    return wrong


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
    elsewhere = _peerings_elsewhere(account.ec2, sorted(t for t in through if t.startswith("pcx-")), queue)
    there = Check(
        name,
        not missing and not elsewhere,
        f"no route to the queue's {', '.join(sorted(queue.subnets.values()))} through a peering connection or "
        f"transit gateway from {', '.join(missing)}"
        if missing
        else "; ".join(elsewhere)
        if elsewhere
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
    check_worker_key_pair,
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
