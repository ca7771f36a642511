"""Roles, instance profiles and their policy documents, every action an awacs constant.

Three roles: the master (the app instance, which launches and scales workers), the worker, and the
multipart role the app hands out for browser uploads. ARNs are built from AWS::Partition, AWS::Region
and AWS::AccountId: no region or account is typed in (the original hard-coded eu-west-2).
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import autoscaling, cloudformation, ec2, iam, s3, secretsmanager, ssm, sts
from awacs.aws import Allow, Condition, Policy, Principal, Statement, StringEquals, StringLike
from troposphere import GetAtt, If, NoValue, Ref, Sub, Template
from troposphere.iam import InstanceProfile, Role
from troposphere.iam import Policy as InlinePolicy
from troposphere.s3 import Bucket

from valohai_cfn.stack.context import (
    HAS_WORKER_POOLS,
    POOL_REGISTRATION,
    VALOHAI_TAG_KEY,
    VALOHAI_TAG_VALUE,
    WORKERS_TAG_KEY,
    Context,
    objects_arn,
)

MASTER_ROLE = "MasterRole"
MASTER_INSTANCE_PROFILE = "MasterInstanceProfile"
WORKER_ROLE = "WorkerRole"
WORKER_INSTANCE_PROFILE = "WorkerInstanceProfile"
MULTIPART_ROLE = "MultipartRole"
DATABASE_MONITORING_ROLE = "DatabaseMonitoringRole"
SCALING_ROLE = "ScalingRole"

# Calls with no resource-level form in IAM: they can only be granted on "*". Valohai's installer grants
# every one of these (Module/IAM/Master/main.tf); the app breaks at run time on a missing one.
MASTER_UNSCOPED_ACTIONS = [
    ec2.DescribeAvailabilityZones,
    ec2.DescribeImages,
    ec2.DescribeInstanceAttribute,
    ec2.DescribeInstanceStatus,
    ec2.DescribeInstanceTypes,
    ec2.DescribeInstances,
    ec2.DescribeInternetGateways,
    ec2.DescribeKeyPairs,
    ec2.DescribeLaunchTemplateVersions,
    ec2.DescribeLaunchTemplates,
    ec2.DescribeRouteTables,
    ec2.DescribeSecurityGroups,
    ec2.DescribeSpotPriceHistory,
    ec2.DescribeSubnets,
    ec2.DescribeVpcs,
    autoscaling.DescribeAutoScalingGroups,
    autoscaling.DescribeAutoScalingInstances,
    autoscaling.DescribeScalingActivities,
    ssm.DescribeParameters,
    secretsmanager.GetRandomPassword,
]
# Creating a worker resource: allowed only when the request tags it as this installation's worker.
MASTER_CREATE_WORKER_ACTIONS = [
    ec2.CreateLaunchTemplate,
    ec2.RunInstances,
    autoscaling.CreateAutoScalingGroup,
]
# Changing a worker resource: allowed only on one already tagged as this installation's worker, which
# neither another installation's workers nor this installation's roi instance is. RunInstances is here
# too because a launch uses the (tagged) launch template, which is authorised as a resource of its own;
# tagging is here and not among the creations, so no tag can make another resource a worker.
MASTER_CHANGE_WORKER_ACTIONS = [
    ec2.CreateLaunchTemplateVersion,
    ec2.ModifyLaunchTemplate,
    ec2.RunInstances,
    ec2.TerminateInstances,
    ec2.RebootInstances,
    ec2.CreateTags,
    autoscaling.UpdateAutoScalingGroup,
    autoscaling.SetDesiredCapacity,
    autoscaling.CreateOrUpdateTags,
]
MULTIPART_BUCKET_ACTIONS = [s3.GetBucketLocation, s3.ListBucket, s3.ListBucketMultipartUploads, s3.ListBucketVersions]
MULTIPART_OBJECT_ACTIONS = [s3.AbortMultipartUpload, s3.GetObject, s3.ListMultipartUploadParts, s3.PutObject]
# Valohai's installer grants s3:* on the bucket; these are the object calls the app makes, versions and tags
# included (the bucket is versioned).
MASTER_OBJECT_ACTIONS = [
    *MULTIPART_OBJECT_ACTIONS,
    s3.DeleteObject,
    s3.DeleteObjectTagging,
    s3.DeleteObjectVersion,
    s3.DeleteObjectVersionTagging,
    s3.GetObjectTagging,
    s3.GetObjectVersion,
    s3.GetObjectVersionTagging,
    s3.PutObjectTagging,
    s3.PutObjectVersionTagging,
]
MASTER_SECRET_ACTIONS = [
    secretsmanager.DescribeSecret,
    secretsmanager.GetResourcePolicy,
    secretsmanager.GetSecretValue,
    secretsmanager.ListSecretVersionIds,
]
SSM_MANAGED_INSTANCE_CORE = "arn:${AWS::Partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"


@dataclass(frozen=True)
class Roles:
    master: Role
    master_profile: InstanceProfile
    worker: Role
    worker_profile: InstanceProfile
    multipart: Role
    database_monitoring: Role


def _arn(resource: str) -> Sub:
    """An ARN in this stack's partition, region and account; `resource` is `service:…:rest`."""
    service, rest = resource.split(":", 1)
    return Sub(f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{rest}")


def _trusted_by_service(service: str) -> Policy:
    return Policy(
        Version="2012-10-17",
        Statement=[Statement(Effect=Allow, Principal=Principal("Service", [service]), Action=[sts.AssumeRole])],
    )


def _trusted_by_role(role_arn: object) -> Policy:
    """Trusted by one role, named by its ARN (a trust naming the account would let the whole account in)."""
    return Policy(
        Version="2012-10-17",
        Statement=[Statement(Effect=Allow, Principal=Principal("AWS", role_arn), Action=[sts.AssumeRole])],
    )


def _worker_condition(ctx: Context, context_key: str) -> Condition:
    """valohai=1 and this installation's (or pool's) worker tag, on the resource or in the request.
    StringEquals on each key (both must hold), not ForAllValues, which is vacuously true when no tag is sent."""
    return Condition(
        StringEquals(
            {
                f"{context_key}/{VALOHAI_TAG_KEY}": VALOHAI_TAG_VALUE,
                f"{context_key}/{WORKERS_TAG_KEY}": Ref(ctx.prefix),
            }
        )
    )


def _bucket_statements(bucket: Bucket, bucket_actions: list, object_actions: list) -> list[Statement]:
    return [
        Statement(Effect=Allow, Action=bucket_actions, Resource=[GetAtt(bucket, "Arn")]),
        Statement(Effect=Allow, Action=object_actions, Resource=[objects_arn(bucket)]),
    ]


def _worker_policy(ctx: Context) -> Policy:
    return Policy(
        Version="2012-10-17",
        Statement=[
            # A worker protects itself from scale-in while it runs a job, in this installation's groups only.
            Statement(
                Effect=Allow,
                Action=[autoscaling.SetInstanceProtection],
                Resource=[_arn(f"autoscaling:autoScalingGroup:*:autoScalingGroupName/${{{ctx.prefix}}}-worker-*")],
            ),
            Statement(Effect=Allow, Action=[ec2.DescribeInstances], Resource=["*"]),
        ],
    )


def worker_management_statements(ctx: Context, worker_role: Role) -> list[Statement]:
    """What launching and scaling workers takes, as Valohai's app does it: the master role's for the
    installation's own workers, and a worker pool's scaling role's (which the master assumes) for the pool's,
    scoped by the installation's or the pool's worker tag (ctx.prefix) and passing `worker_role` only."""
    # No Sids: each statement's comment here says what it is (the template has a 51,200-byte limit).
    return [
        Statement(Effect=Allow, Action=MASTER_UNSCOPED_ACTIONS, Resource=["*"]),
        # New worker resources, tagged in the same request as this installation's.
        Statement(
            Effect=Allow,
            Action=MASTER_CREATE_WORKER_ACTIONS,
            Resource=["*"],
            Condition=_worker_condition(ctx, "aws:RequestTag"),
        ),
        # Existing worker resources of this installation only.
        Statement(
            Effect=Allow,
            Action=MASTER_CHANGE_WORKER_ACTIONS,
            Resource=["*"],
            Condition=_worker_condition(ctx, "aws:ResourceTag"),
        ),
        # RunInstances is also authorised against the subnet, security group, image and network
        # interface it uses; those carry no valohai tag, so they are granted by type, in this account.
        Statement(
            Effect=Allow,
            Action=[ec2.RunInstances],
            Resource=[
                _arn("ec2:subnet/*"),
                _arn("ec2:security-group/*"),
                _arn("ec2:network-interface/*"),
                _arn("ec2:key-pair/*"),
                _arn("ec2:volume/*"),
                Sub("arn:${AWS::Partition}:ec2:${AWS::Region}::image/*"),
            ],
        ),
        # Tagging at launch needs ec2:CreateTags, limited to the launch calls themselves.
        Statement(
            Effect=Allow,
            Action=[ec2.CreateTags],
            Resource=["*"],
            Condition=Condition(StringEquals("ec2:CreateAction", ["RunInstances", "CreateLaunchTemplate"])),
        ),
        # Auto Scaling's service-linked role, created once per account.
        Statement(
            Effect=Allow,
            Action=[iam.CreateServiceLinkedRole],
            Resource=[
                Sub(
                    "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/"
                    "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
                )
            ],
            Condition=Condition(StringLike("iam:AWSServiceName", "autoscaling.amazonaws.com")),
        ),
        # The original passed a role name that did not exist; this is the worker role's real ARN.
        Statement(
            Effect=Allow,
            Action=[iam.PassRole, iam.GetRole],
            Resource=[GetAtt(worker_role, "Arn")],
        ),
    ]


def _session_manager_statements(ctx: Context) -> list[Statement]:
    """What Valohai's installer adds for Session Manager and its default host management, narrowed: sessions
    to this installation's workers only, the settings and the role of this region's host management."""
    return [
        # Default host management: the setting that names its role, and passing that role to SSM.
        Statement(
            Effect=Allow,
            Action=[ssm.GetServiceSetting, ssm.ResetServiceSetting, ssm.UpdateServiceSetting],
            Resource=[_arn("ssm:servicesetting/ssm/managed-instance/default-instance-management-role")],
        ),
        Statement(
            Effect=Allow,
            Action=[iam.PassRole],
            Resource=[
                Sub(
                    "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/service-role/"
                    "AWSSystemsManagerDefaultEC2InstanceManagementRole"
                )
            ],
            Condition=Condition(StringEquals("iam:PassedToService", "ssm.amazonaws.com")),
        ),
        # Sessions: to this installation's workers, with the shell document, and the session's own calls.
        Statement(
            Effect=Allow,
            Action=[ssm.StartSession],
            Resource=[_arn("ec2:instance/*")],
            Condition=_worker_condition(ctx, "aws:ResourceTag"),
        ),
        Statement(
            Effect=Allow,
            Action=[ssm.StartSession],
            Resource=[_arn("ssm:document/SSM-SessionManagerRunShell")],
        ),
        Statement(
            Effect=Allow,
            Action=[ssm.TerminateSession, ssm.ResumeSession],
            Resource=[_arn("ssm:session/*")],
        ),
    ]


def _master_policy(ctx: Context, worker_role: Role, bucket: Bucket) -> dict:
    # A document, not an awacs Policy: awacs takes no Fn::If among the statements.
    return dict(
        Version="2012-10-17",
        Statement=[
            *worker_management_statements(ctx, worker_role),
            # The registered worker pools' scaling roles, and no other role (SPEC "Worker pools").
            If(
                HAS_WORKER_POOLS,
                Statement(Effect=Allow, Action=[sts.AssumeRole], Resource=Ref("WorkerPoolRoleArns")),
                NoValue,
            ),
            # This installation's secrets and settings only.
            Statement(
                Effect=Allow,
                Action=MASTER_SECRET_ACTIONS,
                Resource=[_arn("secretsmanager:secret:${ResourcePrefix}-secret-*")],
            ),
            Statement(
                Effect=Allow,
                Action=[ssm.GetParameter, ssm.GetParameters, ssm.GetParametersByPath],
                Resource=[_arn("ssm:parameter/${ResourcePrefix}/*")],
            ),
            *_bucket_statements(bucket, MULTIPART_BUCKET_ACTIONS, MASTER_OBJECT_ACTIONS),
            # The boot tells CloudFormation whether the app came up (the instance's CreationPolicy).
            Statement(
                Effect=Allow,
                Action=[cloudformation.SignalResource],
                Resource=[_arn("cloudformation:stack/${AWS::StackName}/*")],
            ),
            *_session_manager_statements(ctx),
        ],
    )


def _role(
    t: Template, ctx: Context, title: str, role: str, trust: Policy, policy: Policy | dict | None, **extra
) -> Role:
    if policy is not None:
        extra["Policies"] = [InlinePolicy(PolicyName=ctx.name(f"policy-{role}"), PolicyDocument=policy)]
    return t.add_resource(
        Role(title, RoleName=ctx.iam_name(f"role-{role}"), AssumeRolePolicyDocument=trust, Tags=ctx.tags(), **extra)
    )


def _instance_profile(t: Template, ctx: Context, title: str, role: str, of: Role) -> InstanceProfile:
    return t.add_resource(InstanceProfile(title, InstanceProfileName=ctx.iam_name(f"profile-{role}"), Roles=[of.ref()]))


def _worker_role(t: Template, ctx: Context) -> Role:
    # Valohai's installer attaches Session Manager's managed policy to workers too.
    return _role(
        t,
        ctx,
        WORKER_ROLE,
        "worker",
        _trusted_by_service("ec2.amazonaws.com"),
        _worker_policy(ctx),
        ManagedPolicyArns=[Sub(SSM_MANAGED_INSTANCE_CORE)],
    )


def add_iam(t: Template, ctx: Context, bucket: Bucket) -> Roles:
    worker = _worker_role(t, ctx)
    master = _role(
        t,
        ctx,
        MASTER_ROLE,
        "master",
        _trusted_by_service("ec2.amazonaws.com"),
        _master_policy(ctx, worker, bucket),
        # Session Manager instead of SSH.
        ManagedPolicyArns=[Sub(SSM_MANAGED_INSTANCE_CORE)],
    )
    # The original's trust named the account, so it never applied to the master role; this names the role.
    multipart = _role(
        t,
        ctx,
        MULTIPART_ROLE,
        "multipart",
        _trusted_by_role(GetAtt(master, "Arn")),
        Policy(
            Version="2012-10-17",
            Statement=_bucket_statements(bucket, MULTIPART_BUCKET_ACTIONS, MULTIPART_OBJECT_ACTIONS),
        ),
    )
    # RDS enhanced monitoring publishes OS metrics through a role of its own, with AWS's managed policy.
    database_monitoring = _role(
        t,
        ctx,
        DATABASE_MONITORING_ROLE,
        "rds-monitoring",
        _trusted_by_service("monitoring.rds.amazonaws.com"),
        None,
        ManagedPolicyArns=[Sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole")],
    )
    return Roles(
        database_monitoring=database_monitoring,
        master=master,
        master_profile=_instance_profile(t, ctx, MASTER_INSTANCE_PROFILE, "master", master),
        worker=worker,
        worker_profile=_instance_profile(t, ctx, WORKER_INSTANCE_PROFILE, "worker", worker),
        multipart=multipart,
    )


@dataclass(frozen=True)
class PoolRoles:
    worker: Role
    worker_profile: InstanceProfile
    scaling: Role


def add_pool_iam(t: Template, ctx: Context) -> PoolRoles:
    """A worker pool's roles: its workers' (as the installation's), and the scaling role the installation's
    master role assumes to launch and scale them (Valohai's installer at f60087b: the worker account's master
    role, trusted by the control plane's). Trusted by that one role's ARN (InstallationMasterRoleArn), it
    grants exactly the master's worker-management statements, scoped by the pool's own worker tag, and the
    read of the pool's registration parameter, from which the app instance registers the pool's environments."""
    worker = _worker_role(t, ctx)
    registration = Statement(
        Effect=Allow,
        Action=[ssm.GetParameter],
        Resource=[_arn(f"ssm:parameter/${{{ctx.prefix}}}/{POOL_REGISTRATION}")],
    )
    scaling = _role(
        t,
        ctx,
        SCALING_ROLE,
        "scaling",
        _trusted_by_role(ctx.ref("InstallationMasterRoleArn")),
        Policy(Version="2012-10-17", Statement=[*worker_management_statements(ctx, worker), registration]),
    )
    return PoolRoles(worker, _instance_profile(t, ctx, WORKER_INSTANCE_PROFILE, "worker", worker), scaling)
