"""Parameters, Conditions and the console's Interface metadata (groups and labels).

Everything account- or environment-specific is a Parameter here, never a Python constant.
"""

from __future__ import annotations

from troposphere import And, Equals, Join, Not, Or, Parameter, Ref, Template
from troposphere import Condition as ConditionRef

from valohai_cfn.stack.context import (
    CREATE_CERTIFICATE,
    DATABASE_MULTI_AZ,
    HAS_CERTIFICATE,
    HAS_HOSTED_ZONE,
    HAS_KEY_PAIR,
    HAS_ON_DEMAND_WORKERS,
    HAS_SPOT_WORKERS,
    HAS_WORKER_KEY_PAIR,
    HAS_WORKER_POOLS,
    POOL_TAG_KEY,
    QUEUE_TLS,
    QUEUE_TLS_REQUIRED,
    USE_HTTPS,
    Context,
)

IPV4_CIDR = (
    r"(([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.){3}"
    r"([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])/([0-9]|[12][0-9]|3[0-2])"
)
# The SSH template's rule refuses a /0 prefix: SSH from the whole internet is never an option (the original
# allowed it).
IPV4_CIDR_NOT_WORLD = (
    r"(([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.){3}"
    r"([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])/([1-9]|[12][0-9]|3[0-2])"
)
HOSTNAME = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
BOOLEAN = ["true", "false"]
# An EC2 instance type's shape (family.size); whether it exists is params check's and preflight's to say.
# Empty is allowed so that either list may be empty; params check refuses both empty and empty items.
INSTANCE_TYPE_OR_EMPTY = r"^$|^[a-z][a-z0-9-]*\.[a-z0-9-]+$"
KEY_PAIR_NAME = r"^[ -~]*$"
# Every name the template builds starts with the prefix: a letter, then letters, digits and single hyphens
# (no trailing or double hyphen: the database identifier refuses them), never a start a service refuses or
# reserves: security group names from "sg-", load balancer names from "internal-", bucket names from "xn--",
# "sthree" and "amzn-s3-demo", SSM parameter names from "aws" or "ssm".
RESOURCE_PREFIX = r"^(?!(sg|internal)(-|$)|xn--|sthree|amzn-s3-demo|aws|ssm)[a-z](-?[a-z0-9])+$"

ROI_INSTANCE_TYPES = [
    "m5a.xlarge",
    "m5a.2xlarge",
    "m5.xlarge",
    "m5.2xlarge",
    "m6i.xlarge",
    "m6i.2xlarge",
    "m6a.xlarge",
    "m6a.2xlarge",
    "m7i.xlarge",
    "m7i.2xlarge",
]
DATABASE_INSTANCE_CLASSES = [
    "db.m5.large",
    "db.m5.xlarge",
    "db.m5.2xlarge",
    "db.m6i.large",
    "db.m6i.xlarge",
    "db.m6i.2xlarge",
    "db.m6g.large",
    "db.m6g.xlarge",
    "db.m6g.2xlarge",
    "db.t3.medium",
    "db.t3.large",
]
CACHE_NODE_TYPES = [
    "cache.m5.large",
    "cache.m5.xlarge",
    "cache.m6g.large",
    "cache.m6g.xlarge",
    "cache.r6g.large",
    "cache.t3.medium",
]
# Valohai's installer runs PostgreSQL 16. cfn-lint calls a bare "16" deprecated (RDS no longer creates
# instances from it), so the default is the newest 16 it offers in every region the lint checks.
DEFAULT_DATABASE_ENGINE_VERSION = "16.15"

# The Redis line of the queue. ElastiCache's own default changes over time, so a new installation would get
# whatever it is that day; the template pins it. 7.1 is the newest Redis OSS line ElastiCache offers (its
# newer engines are Valkey) and the newest cfn-lint knows; Valohai's installer at f60087b still pins 6.2.
QUEUE_ENGINE_VERSIONS = ["7.1", "7.0", "6.2"]

# QueueTransitEncryption: ElastiCache turns TLS on or off for a live replication group only through
# TransitEncryptionMode preferred (TLS and plain connections both taken), in a modification of its own.
QUEUE_TLS_VALUES = ["false", "preferred", "true"]

GROUP_INSTALLATION = "Installation"
GROUP_NETWORK = "Network"
GROUP_ACCESS = "Access and TLS"
GROUP_APP = "App instance (roi)"
GROUP_DATA = "Database and queue"
GROUP_WORKERS = "Workers (the machines that run jobs)"


def _parameter(t: Template, group: str, label: str, parameter: Parameter) -> Parameter:
    t.add_parameter(parameter)
    t.set_parameter_label(parameter, label)
    t.add_parameter_to_group(parameter, group)
    return parameter


def _installation(t: Template) -> None:
    _parameter(
        t,
        GROUP_INSTALLATION,
        "Environment name",
        Parameter(
            "EnvironmentName",
            Type="String",
            Default="Valohai",
            MinLength=1,
            MaxLength=64,
            AllowedPattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$",
            ConstraintDescription="1-64 letters, digits, spaces, dots, underscores or hyphens.",
            Description="Name shown in the app (PLATFORM_LONG_NAME); a tag value.",
        ),
    )
    _parameter(
        t,
        GROUP_INSTALLATION,
        "Resource name prefix",
        Parameter(
            "ResourcePrefix",
            Type="String",
            Default="valohai",
            MinLength=2,
            MaxLength=21,
            AllowedPattern=RESOURCE_PREFIX,
            ConstraintDescription="2-21 lowercase letters, digits, single inner hyphens, from a letter; not sg, "
            "internal, nor from aws, ssm, sthree, xn--, amzn-s3-demo (names AWS refuses or reserves).",
            Description="Prefix of every name (valohai-sg-workers, ...): two installations can share an account.",
        ),
    )
    _parameter(
        t,
        GROUP_INSTALLATION,
        "Organization",
        Parameter(
            "OrganizationName",
            Type="String",
            MinLength=2,
            MaxLength=64,
            AllowedPattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
            ConstraintDescription="2-64 letters, digits, hyphens or underscores, starting with a letter or digit.",
            Description="First organization, made for the superuser at first boot; owns the worker environments.",
        ),
    )


def _network(t: Template) -> None:
    _parameter(
        t,
        GROUP_NETWORK,
        "VPC",
        Parameter(
            "VpcId",
            Type="AWS::EC2::VPC::Id",
            Description="The installation's VPC.",
        ),
    )
    _parameter(
        t,
        GROUP_NETWORK,
        "Load balancer subnets",
        Parameter(
            "LoadBalancerSubnetIds",
            Type="List<AWS::EC2::Subnet::Id>",
            Description="In two or more zones; public ones when internet-facing.",
        ),
    )
    _parameter(
        t,
        GROUP_NETWORK,
        "App instance subnet",
        Parameter(
            "RoiSubnetId",
            Type="AWS::EC2::Subnet::Id",
            Description="Private subnet of the app instance (roi).",
        ),
    )
    _parameter(
        t,
        GROUP_NETWORK,
        "Database subnets",
        Parameter(
            "DatabaseSubnetIds",
            Type="List<AWS::EC2::Subnet::Id>",
            Description="For PostgreSQL, in two or more Availability Zones.",
        ),
    )
    _parameter(
        t,
        GROUP_NETWORK,
        "Queue subnets",
        Parameter(
            "CacheSubnetIds",
            Type="List<AWS::EC2::Subnet::Id>",
            Description="Redis queue subnets.",
        ),
    )
    _worker_subnets(t, "Subnets of the worker groups.")


def _worker_subnets(t: Template, description: str) -> None:
    _parameter(
        t,
        GROUP_NETWORK,
        "Worker subnets",
        Parameter("WorkerSubnetIds", Type="List<AWS::EC2::Subnet::Id>", Description=description),
    )


def _access(t: Template) -> None:
    _parameter(
        t,
        GROUP_ACCESS,
        "Domain",
        Parameter(
            "Domain",
            Type="String",
            AllowedPattern=HOSTNAME,
            MaxLength=253,
            ConstraintDescription="a lowercase hostname such as valohai.example.com, without https://.",
            Description="Hostname of the app: https://Domain with a certificate, else http://Domain.",
        ),
    )
    _parameter(
        t,
        GROUP_ACCESS,
        "ACM certificate ARN",
        Parameter(
            "CertificateArn",
            Type="String",
            Default="",
            AllowedPattern=r"^$|^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$",
            ConstraintDescription="empty, or the ARN of an ACM certificate in this region.",
            Description="Certificate of Domain: HTTPS, 80 redirected. Empty: HTTP, or one is made with HostedZoneId.",
        ),
    )
    _parameter(
        t,
        GROUP_ACCESS,
        "Route 53 hosted zone id",
        Parameter(
            "HostedZoneId",
            Type="String",
            Default="",
            AllowedPattern=r"^$|^Z[A-Z0-9]+$",
            ConstraintDescription="empty, or a hosted zone id such as Z0123456789ABCDEFGHIJ.",
            Description="Zone of Domain: an alias record, and without CertificateArn a DNS-validated certificate.",
        ),
    )
    _parameter(
        t,
        GROUP_ACCESS,
        "Load balancer scheme",
        Parameter(
            "LoadBalancerScheme",
            Type="String",
            Default="internet-facing",
            AllowedValues=["internet-facing", "internal"],
            Description="internal: reached from inside the VPC only.",
        ),
    )
    _parameter(
        t,
        GROUP_ACCESS,
        "Allowed client CIDR",
        Parameter(
            "AllowedIngressCidr",
            Type="String",
            Default="0.0.0.0/0",
            AllowedPattern=f"^{IPV4_CIDR}$",
            ConstraintDescription="an IPv4 CIDR block such as 203.0.113.0/24.",
            Description="Who may reach the load balancer on ports 80 and 443.",
        ),
    )
    _parameter(
        t,
        GROUP_ACCESS,
        "EC2 key pair",
        Parameter(
            "KeyPairName",
            Type="String",
            Default="",
            MaxLength=255,
            AllowedPattern=KEY_PAIR_NAME,
            ConstraintDescription="empty, or the name of an existing key pair (printable ASCII).",
            Description="Optional existing key pair for the app instance.",
        ),
    )


def _app(t: Template) -> None:
    _parameter(
        t,
        GROUP_APP,
        "App image (AMI)",
        Parameter(
            "RoiAmiId",
            Type="AWS::EC2::Image::Id",
            Description="The roi image Valohai shared with this account.",
        ),
    )
    _parameter(
        t,
        GROUP_APP,
        "App instance type",
        Parameter(
            "RoiInstanceType",
            Type="String",
            Default="m5a.xlarge",
            AllowedValues=ROI_INSTANCE_TYPES,
            Description="EC2 instance type of the app instance.",
        ),
    )
    _parameter(
        t,
        GROUP_APP,
        "App root volume (GiB)",
        Parameter(
            "RoiVolumeSize",
            Type="Number",
            Default="80",
            MinValue=32,
            MaxValue=1024,
            ConstraintDescription="a size in GiB from 32 to 1024.",
            Description="Encrypted gp3 root volume of the app instance.",
        ),
    )


def _data(t: Template) -> None:
    _parameter(
        t,
        GROUP_DATA,
        "Database instance class",
        Parameter(
            "DatabaseInstanceClass",
            Type="String",
            Default="db.m5.large",
            AllowedValues=DATABASE_INSTANCE_CLASSES,
            Description="RDS instance class of the PostgreSQL database.",
        ),
    )
    _parameter(
        t,
        GROUP_DATA,
        "Database storage (GiB)",
        Parameter(
            "DatabaseAllocatedStorage",
            Type="Number",
            Default="80",
            MinValue=20,
            MaxValue=65536,
            ConstraintDescription="a size in GiB from 20 to 65536.",
            Description="gp3 storage of the database.",
        ),
    )
    _parameter(
        t,
        GROUP_DATA,
        "PostgreSQL version",
        Parameter(
            "DatabaseEngineVersion",
            Type="String",
            Default=DEFAULT_DATABASE_ENGINE_VERSION,
            AllowedPattern=r"^[0-9]+(\.[0-9]+)?$",
            ConstraintDescription="a PostgreSQL version RDS offers, such as 16.15 or 17.6.",
            Description="RDS PostgreSQL engine version.",
        ),
    )
    _parameter(
        t,
        GROUP_DATA,
        "Database Multi-AZ",
        Parameter(
            "DatabaseMultiAZ",
            Type="String",
            Default="true",
            AllowedValues=BOOLEAN,
            Description="Run a standby database in a second Availability Zone.",
        ),
    )
    _parameter(
        t,
        GROUP_DATA,
        "Database deletion protection",
        Parameter(
            "DatabaseDeletionProtection",
            Type="String",
            Default="true",
            AllowedValues=BOOLEAN,
            Description="Refuse to delete the database; false (an update) before removing the stack.",
        ),
    )
    _parameter(
        t,
        GROUP_DATA,
        "Queue node type",
        Parameter(
            "CacheNodeType",
            Type="String",
            Default="cache.m5.large",
            AllowedValues=CACHE_NODE_TYPES,
            Description="ElastiCache node type of the Redis queue.",
        ),
    )
    _parameter(
        t,
        GROUP_DATA,
        "Redis version",
        Parameter(
            "QueueEngineVersion",
            Type="String",
            Default=QUEUE_ENGINE_VERSIONS[0],
            AllowedValues=QUEUE_ENGINE_VERSIONS,
            Description="ElastiCache Redis engine version of the queue.",
        ),
    )
    _parameter(
        t,
        GROUP_DATA,
        "Queue TLS",
        Parameter(
            "QueueTransitEncryption",
            Type="String",
            Default="false",
            AllowedValues=QUEUE_TLS_VALUES,
            Description="TLS to Redis (rediss://); a live queue changes via preferred.",
        ),
    )


def _instance_types(t: Template, name: str, label: str, default: str, what: str) -> None:
    _parameter(
        t,
        GROUP_WORKERS,
        label,
        Parameter(
            name,
            Type="CommaDelimitedList",
            Default=default,
            AllowedPattern=INSTANCE_TYPE_OR_EMPTY,
            ConstraintDescription="EC2 instance types such as t3.medium,c5.xlarge.",
            Description=f"{what}: one Auto Scaling group and one queue per type.",
        ),
    )


def _workers(t: Template) -> None:
    _parameter(
        t,
        GROUP_WORKERS,
        "Worker image (AMI)",
        Parameter(
            "WorkerAmiId",
            Type="AWS::EC2::Image::Id",
            Description="The peon image Valohai shared with this account.",
        ),
    )
    _instance_types(t, "WorkerInstanceTypes", "On-demand worker types", "t3.medium", "On-demand instance types")
    _instance_types(t, "WorkerSpotInstanceTypes", "Spot worker types", "", "Spot instance types (empty: none)")
    _parameter(
        t,
        GROUP_WORKERS,
        "Worker root volume (GiB)",
        Parameter(
            "WorkerVolumeSize",
            Type="Number",
            Default="100",
            MinValue=30,
            MaxValue=16384,
            ConstraintDescription="a size in GiB from 30 to 16384.",
            Description="Encrypted gp3 root volume of each worker.",
        ),
    )
    _parameter(
        t,
        GROUP_WORKERS,
        "Workers per group, at most",
        Parameter(
            "WorkerMaxSize",
            Type="Number",
            Default="10",
            MinValue=1,
            MaxValue=1000,
            ConstraintDescription="a number from 1 to 1000.",
            Description="The app scales each worker group between 0 and this.",
        ),
    )
    _parameter(
        t,
        GROUP_WORKERS,
        "Worker key pair",
        Parameter(
            "WorkerKeyPairName",
            Type="String",
            Default="",
            MaxLength=255,
            AllowedPattern=KEY_PAIR_NAME,
            ConstraintDescription="empty, or the name of an existing key pair (printable ASCII).",
            Description="Optional existing key pair for worker instances.",
        ),
    )


# A worker pool's scaling role: role/<pool>-role-scaling-<region> (the pool template's names).
SCALING_ROLE_ARN = r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[a-z][a-z0-9-]*-role-scaling-[a-z0-9-]+"


def _worker_pools(t: Template) -> None:
    _parameter(
        t,
        GROUP_WORKERS,
        "Worker pools",
        Parameter(
            "WorkerPoolRoleArns",
            Type="CommaDelimitedList",
            Default="",
            AllowedPattern=f"^$|^{SCALING_ROLE_ARN}$",
            ConstraintDescription="scaling role ARNs, role/<pool>-role-scaling-<region>.",
            Description="Worker pools' scaling roles; valohai-cfn pool deploy adds them.",
        ),
    )


def _not_empty(parameter: str) -> Not:
    return Not(Equals(Ref(parameter), ""))


def _worker_conditions(t: Template) -> None:
    t.add_condition(HAS_WORKER_KEY_PAIR, _not_empty("WorkerKeyPairName"))
    # An empty CommaDelimitedList is one empty item: each worker loop runs once for it, behind this condition.
    for condition, parameter in (
        (HAS_ON_DEMAND_WORKERS, "WorkerInstanceTypes"),
        (HAS_SPOT_WORKERS, "WorkerSpotInstanceTypes"),
    ):
        t.add_condition(condition, Not(Equals(Join("", Ref(parameter)), "")))


def _conditions(t: Template) -> None:
    t.add_condition(HAS_CERTIFICATE, _not_empty("CertificateArn"))
    t.add_condition(HAS_HOSTED_ZONE, _not_empty("HostedZoneId"))
    # A certificate is created only when one is not given and DNS validation can complete by itself.
    t.add_condition(CREATE_CERTIFICATE, And(ConditionRef(HAS_HOSTED_ZONE), Not(ConditionRef(HAS_CERTIFICATE))))
    t.add_condition(USE_HTTPS, Or(ConditionRef(HAS_CERTIFICATE), ConditionRef(CREATE_CERTIFICATE)))
    t.add_condition(HAS_KEY_PAIR, _not_empty("KeyPairName"))
    _worker_conditions(t)
    t.add_condition(DATABASE_MULTI_AZ, Equals(Ref("DatabaseMultiAZ"), "true"))
    # preferred: the queue takes TLS and plain connections; the app and the workers already use TLS.
    t.add_condition(QUEUE_TLS, Not(Equals(Ref("QueueTransitEncryption"), "false")))
    t.add_condition(QUEUE_TLS_REQUIRED, Equals(Ref("QueueTransitEncryption"), "true"))
    t.add_condition(HAS_WORKER_POOLS, Not(Equals(Join("", Ref("WorkerPoolRoleArns")), "")))


def add_parameters(t: Template) -> Context:
    """Declare every Parameter and Condition, and return the Context the other modules build on."""
    for declare in (_installation, _network, _access, _app, _data, _workers, _worker_pools):
        declare(t)
    _conditions(t)
    return Context(parameters=dict(t.parameters))


# -- a worker pool (the second template: SPEC "Worker pools") -------------------------------------------

GROUP_POOL = "Worker pool"
# A pool's name starts every name it makes, as ResourcePrefix does the installation's, and is also the prefix
# of its queues and environments. Its IAM names end in "-role-scaling-<region>" (14 + 14 characters at most)
# within IAM's 64; a StackSet over several accounts names each account's pool <name>-<account id>.
POOL_NAME_MAX_LENGTH = 36
IAM_ROLE_ARN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
QUEUE_URL = r"^rediss?://[A-Za-z0-9.-]+:[0-9]{1,5}(/[0-9]+)?(\?[A-Za-z0-9_=&]*)?$"


def _pool(t: Template) -> None:
    _parameter(
        t,
        GROUP_POOL,
        "Pool name",
        Parameter(
            "PoolName",
            Type="String",
            MinLength=2,
            MaxLength=POOL_NAME_MAX_LENGTH,
            AllowedPattern=RESOURCE_PREFIX,
            ConstraintDescription=f"2-{POOL_NAME_MAX_LENGTH} lowercase letters, digits, single inner hyphens, from "
            "a letter; not sg, internal, nor from aws, ssm, sthree, xn--, amzn-s3-demo (names AWS refuses or "
            "reserves).",
            Description="Prefix of the pool's names, queues and environments (gpu-worker-g5.xlarge, ...).",
        ),
    )
    _parameter(
        t,
        GROUP_POOL,
        "Installation's master role ARN",
        Parameter(
            "InstallationMasterRoleArn",
            Type="String",
            AllowedPattern=IAM_ROLE_ARN,
            ConstraintDescription="the ARN of an IAM role, the installation's MasterRoleArn output.",
            Description="The only role that may assume the pool's scaling role (the installation's output).",
        ),
    )
    _parameter(
        t,
        GROUP_POOL,
        "Installation's queue URL",
        Parameter(
            "QueueUrl",
            Type="String",
            AllowedPattern=QUEUE_URL,
            ConstraintDescription="redis://host:6379/0, or rediss://host:6379/0?ssl_cert_reqs=required with TLS.",
            Description="The installation's Redis queue, as its workers reach it (rediss:// across accounts).",
        ),
    )


def _pool_network(t: Template) -> None:
    _parameter(
        t,
        GROUP_NETWORK,
        "VPC",
        Parameter("VpcId", Type="AWS::EC2::VPC::Id", Description="The VPC of the pool's workers."),
    )
    _worker_subnets(t, "Subnets of the worker groups; they must reach the installation's queue.")


def add_pool_parameters(t: Template) -> Context:
    """A worker pool's Parameters and Conditions (the workers' are the installation's own), and its Context:
    names from PoolName, IAM names ending in the region, queues prefixed with the pool's name."""
    for declare in (_pool, _pool_network, _workers):
        declare(t)
    _worker_conditions(t)
    return Context(
        parameters=dict(t.parameters),
        prefix="PoolName",
        iam_suffix="-${AWS::Region}",
        queue_prefix="${PoolName}-",
        owner_tags=((POOL_TAG_KEY, "PoolName"),),
    )


# -- SSH to the app instance (the third template, templates/valohai-ssh.*) ---------------------------------

GROUP_SSH = "SSH to the app instance"


def add_ssh_parameters(t: Template) -> Context:
    """The SSH template's Parameters, both required: the installation's app security group (its output
    AppSecurityGroupId) and who may reach port 22, never the whole internet. Returns its Context."""
    _parameter(
        t,
        GROUP_SSH,
        "App security group",
        Parameter(
            "AppSecurityGroupId",
            Type="AWS::EC2::SecurityGroup::Id",
            Description="The installation's output AppSecurityGroupId: the app instance's security group.",
        ),
    )
    _parameter(
        t,
        GROUP_SSH,
        "SSH client CIDR",
        Parameter(
            "SshIngressCidr",
            Type="String",
            AllowedPattern=f"^{IPV4_CIDR_NOT_WORLD}$",
            ConstraintDescription="an IPv4 CIDR block narrower than /0 such as 203.0.113.10/32.",
            Description="SSH (tcp 22) to the app instance from this block.",
        ),
    )
    return Context(parameters=dict(t.parameters))
