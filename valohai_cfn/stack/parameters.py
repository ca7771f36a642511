"""Parameters, Conditions and the console's Interface metadata (groups and labels).

Everything account- or environment-specific is a Parameter here, never a Python constant.
"""

from __future__ import annotations

from troposphere import And, Equals, Not, Or, Parameter, Ref, Template
from troposphere import Condition as ConditionRef

from valohai_cfn.stack.context import (
    ALLOW_SSH,
    CREATE_CERTIFICATE,
    DATABASE_MULTI_AZ,
    HAS_CERTIFICATE,
    HAS_HOSTED_ZONE,
    HAS_KEY_PAIR,
    QUEUE_TLS,
    USE_HTTPS,
    Context,
)

IPV4_CIDR = (
    r"(([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.){3}"
    r"([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])/([0-9]|[12][0-9]|3[0-2])"
)
# The SSH rule refuses a /0 prefix: SSH from the whole internet is never an option (the original allowed it).
IPV4_CIDR_NOT_WORLD = (
    r"(([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.){3}"
    r"([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])/([1-9]|[12][0-9]|3[0-2])"
)
HOSTNAME = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
BOOLEAN = ["true", "false"]

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
# cfn-lint's engine data lists "18" as offered and not deprecated; bare "16" and "17" it calls deprecated.
DEFAULT_DATABASE_ENGINE_VERSION = "18"

GROUP_INSTALLATION = "Installation"
GROUP_NETWORK = "Network"
GROUP_ACCESS = "Access and TLS"
GROUP_APP = "App instance (roi)"
GROUP_DATA = "Database and queue"


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
            Description="Name shown in the app (PLATFORM_LONG_NAME) and used as a tag value.",
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
            AllowedPattern=r"^[a-z][a-z0-9-]{1,20}$",
            ConstraintDescription="2-21 lowercase letters, digits or hyphens, starting with a letter.",
            Description="Prefix of every physical name (valohai-sg-workers, valohai-role-master, ...), "
            "so two installations can live in one account.",
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
            Description="The VPC the installation lives in.",
        ),
    )
    _parameter(
        t,
        GROUP_NETWORK,
        "Load balancer subnets",
        Parameter(
            "LoadBalancerSubnetIds",
            Type="List<AWS::EC2::Subnet::Id>",
            Description="Subnets of the load balancer, in at least two Availability Zones "
            "(public subnets for an internet-facing load balancer).",
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
            Description="Subnets of the PostgreSQL database, in at least two Availability Zones (RDS requires it).",
        ),
    )
    _parameter(
        t,
        GROUP_NETWORK,
        "Queue subnets",
        Parameter(
            "CacheSubnetIds",
            Type="List<AWS::EC2::Subnet::Id>",
            Description="Subnets of the Redis queue (ElastiCache).",
        ),
    )
    _parameter(
        t,
        GROUP_NETWORK,
        "Worker subnets",
        Parameter(
            "WorkerSubnetIds",
            Type="List<AWS::EC2::Subnet::Id>",
            Description="Subnets the app launches worker instances in; stored in SSM for the app, "
            "no resource of this stack uses them.",
        ),
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
            Description="Hostname of the app, e.g. valohai.example.com. The app URL is https://Domain "
            "with a certificate, http://Domain without.",
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
            Description="Certificate covering Domain. Empty: HTTP only, unless HostedZoneId is set, "
            "in which case a DNS-validated certificate is created. Set: HTTPS listener and 80 to 443 redirect.",
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
            Description="Hosted zone of Domain. Set: an alias record for Domain is created and, without "
            "CertificateArn, a DNS-validated ACM certificate.",
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
            ConstraintDescription="internet-facing or internal.",
            Description="internet-facing for a public app, internal for one reached only from inside the VPC.",
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
        "SSH client CIDR",
        Parameter(
            "SshIngressCidr",
            Type="String",
            Default="",
            AllowedPattern=f"^$|^{IPV4_CIDR_NOT_WORLD}$",
            ConstraintDescription="empty, or an IPv4 CIDR block narrower than /0 such as 203.0.113.10/32.",
            Description="Empty: no port 22 at all (use Session Manager). Set: SSH to the app instance "
            "from this block only.",
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
            AllowedPattern=r"^[ -~]*$",
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
            Description="The Valohai roi image that Valohai has shared with this account.",
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
            ConstraintDescription="one of the listed instance types.",
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
            Description="Size of the app instance's encrypted gp3 root volume, in GiB.",
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
            ConstraintDescription="one of the listed RDS instance classes.",
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
            Description="Allocated gp3 storage of the database, in GiB.",
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
            ConstraintDescription="a PostgreSQL version RDS offers, such as 18 or 17.6.",
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
            ConstraintDescription="true or false.",
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
            ConstraintDescription="true or false.",
            Description="Refuse to delete the database; set to false (an update) before removing the stack.",
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
            ConstraintDescription="one of the listed ElastiCache node types.",
            Description="ElastiCache node type of the Redis queue.",
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
            AllowedValues=BOOLEAN,
            ConstraintDescription="true or false.",
            Description="Encrypt traffic to Redis in transit; the app then connects with rediss://.",
        ),
    )


def _conditions(t: Template) -> None:
    t.add_condition(HAS_CERTIFICATE, Not(Equals(Ref("CertificateArn"), "")))
    t.add_condition(HAS_HOSTED_ZONE, Not(Equals(Ref("HostedZoneId"), "")))
    # A certificate is created only when one is not given and DNS validation can complete by itself.
    t.add_condition(CREATE_CERTIFICATE, And(ConditionRef(HAS_HOSTED_ZONE), Not(ConditionRef(HAS_CERTIFICATE))))
    t.add_condition(USE_HTTPS, Or(ConditionRef(HAS_CERTIFICATE), ConditionRef(CREATE_CERTIFICATE)))
    t.add_condition(ALLOW_SSH, Not(Equals(Ref("SshIngressCidr"), "")))
    t.add_condition(HAS_KEY_PAIR, Not(Equals(Ref("KeyPairName"), "")))
    t.add_condition(DATABASE_MULTI_AZ, Equals(Ref("DatabaseMultiAZ"), "true"))
    t.add_condition(QUEUE_TLS, Equals(Ref("QueueTransitEncryption"), "true"))


def add_parameters(t: Template) -> Context:
    """Declare every Parameter and Condition, and return the Context the other modules build on."""
    for declare in (_installation, _network, _access, _app, _data):
        declare(t)
    _conditions(t)
    return Context(parameters=dict(t.parameters))
