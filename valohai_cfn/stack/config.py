"""The app's generated secrets and the SSM parameters the app instance reads at boot.

Every parameter lives under `/<prefix>/`, so the master role's SSM read is scoped to `parameter/<prefix>/*`.
"""

from __future__ import annotations

from troposphere import AWSObject, GetAtt, Join, Ref, Sub, Template
from troposphere.secretsmanager import GenerateSecretString, Secret
from troposphere.ssm import Parameter as SSMParameter

from valohai_cfn.stack.context import RETAIN_SECRET, SECRET_KMS_SKIP, Context, checkov_skips

# (logical id, name suffix, what the app uses it for)
APP_SECRETS = [
    ("SecretKeySecret", "key", "Django SECRET_KEY of the app"),
    ("RepoSecret", "repo", "key that encrypts stored repository private keys (REPO_PRIVATE_KEY_SECRET)"),
    # Its own secret: the original read the repository secret here by mistake.
    ("JwtSecret", "jwt", "signing key of statistics tokens (STATS_JWT_KEY)"),
]


def _app_secret(ctx: Context, title: str, suffix: str, purpose: str) -> Secret:
    return Secret(
        title,
        **RETAIN_SECRET,
        Metadata=checkov_skips(SECRET_KMS_SKIP),
        Name=ctx.name(f"secret-{suffix}"),
        Description=f"Valohai {purpose}",
        GenerateSecretString=GenerateSecretString(PasswordLength=64, ExcludePunctuation=True),
        Tags=ctx.tags(),
    )


def _ssm_parameter(ctx: Context, title: str, path: str, value: object, description: str) -> SSMParameter:
    return SSMParameter(
        title,
        Name=Sub(f"/${{ResourcePrefix}}/{path}"),
        Type="String",
        Value=value,
        Description=f"Valohai {description}",
        Tags=ctx.tag_map(),
    )


def add_app_secrets(t: Template, ctx: Context) -> list[Secret]:
    return [t.add_resource(_app_secret(ctx, *secret)) for secret in APP_SECRETS]


def add_config(
    t: Template,
    ctx: Context,
    *,
    url: object,
    database_host: GetAtt,
    queue_host: GetAtt,
    bucket: AWSObject,
    multipart_role: AWSObject,
    worker_role: AWSObject,
    worker_profile: AWSObject,
    worker_security_group: AWSObject,
) -> list[SSMParameter]:
    """The SSM parameters; returned so the app instance can wait for all of them before it boots."""
    parameters = [
        ("UrlParameter", "url", url, "app URL (URL_BASE)"),
        ("EnvironmentNameParameter", "environment-name", ctx.ref("EnvironmentName"), "environment name"),
        ("DatabaseHostParameter", "database-host", database_host, "database host"),
        ("QueueHostParameter", "queue-host", queue_host, "queue (Redis) host"),
        ("BucketNameParameter", "bucket-name", Ref(bucket), "data bucket name"),
        ("RegionParameter", "region", Ref("AWS::Region"), "region"),
        (
            "MultipartRoleArnParameter",
            "multipart-role-arn",
            GetAtt(multipart_role, "Arn"),
            "role for multipart uploads",
        ),
        ("WorkerRoleNameParameter", "worker-role-name", Ref(worker_role), "worker role name"),
        (
            "WorkerInstanceProfileNameParameter",
            "worker-instance-profile-name",
            Ref(worker_profile),
            "worker instance profile name",
        ),
        (
            "WorkerSecurityGroupIdParameter",
            "worker-security-group-id",
            GetAtt(worker_security_group, "GroupId"),
            "worker security group id",
        ),
        (
            "WorkerSubnetIdsParameter",
            "worker-subnet-ids",
            Join(",", ctx.ref("WorkerSubnetIds")),
            "worker subnet ids, comma-separated",
        ),
    ]
    return [t.add_resource(_ssm_parameter(ctx, *parameter)) for parameter in parameters]
