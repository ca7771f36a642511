"""The app's generated secrets and the SSM parameters the app instance reads at boot.

Every parameter lives under `/<prefix>/`, so the master role's SSM read is scoped to `parameter/<prefix>/*`.
"""

from __future__ import annotations

from troposphere import AWSObject, FindInMap, GetAtt, Join, Ref, Sub, Template
from troposphere.secretsmanager import GenerateSecretString, Secret
from troposphere.ssm import Parameter as SSMParameter

from valohai_cfn.stack.context import POOL_REGISTRATION, RETAIN_SECRET, Context, ForEach, checkov_skips

APP_SECRETS_MAPPING = "AppSecrets"
SECRET = "Secret"
# <logical id prefix>: name suffix. One loop makes <prefix>Secret of each, <prefix>-secret-<suffix> by name.
APP_SECRETS = {
    "SecretKey": "key",  # Django's SECRET_KEY
    "Repo": "repo",  # REPO_PRIVATE_KEY_SECRET, the key of stored repository keys
    # STATS_JWT_KEY, its own secret: the original read the repository secret here by mistake.
    "Jwt": "jwt",
    # OPTIMO_BASIC_AUTH_PASSWORD: Valohai's installer makes it with $RANDOM at boot; this one nobody can guess.
    "Optimo": "optimo",
    # The superuser's API token: generated here, registered in the app at first boot, used to register the
    # worker environments. Of this installation's roles, only the master may read secrets.
    "AppToken": "app-token",
}
APP_TOKEN_SECRET = "AppTokenSecret"
SETTING = "Setting"


def setting_id(name: str) -> str:
    """The logical id the settings loop gives the SSM parameter of `name` (&{Setting}: without hyphens)."""
    return SETTING + name.replace("-", "")


def app_secret_ids() -> list[str]:
    return [f"{name}{SECRET}" for name in APP_SECRETS]


def add_app_secrets(t: Template, ctx: Context) -> None:
    """The app's generated secrets: 64 letters and digits each, kept when the stack goes (RETAIN_SECRET)."""
    t.add_mapping(APP_SECRETS_MAPPING, {secret: {"Name": name} for secret, name in APP_SECRETS.items()})
    secret = Secret(
        SECRET,
        **RETAIN_SECRET,
        Metadata=checkov_skips("CKV_AWS_149"),
        Name=Sub("${ResourcePrefix}-secret-${Name}", Name=FindInMap(APP_SECRETS_MAPPING, f"${{{SECRET}}}", "Name")),
        Description=Sub(f"Valohai ${{{SECRET}}}"),
        GenerateSecretString=GenerateSecretString(PasswordLength=64, ExcludePunctuation=True),
        Tags=ctx.tags(),
    )
    t.add_resource(ForEach("AppSecrets", SECRET, list(APP_SECRETS), {f"${{{SECRET}}}{SECRET}": secret}))


def add_config(
    t: Template,
    ctx: Context,
    *,
    url: object,
    database_host: GetAtt,
    queue_host: GetAtt,
    queue_url: object,
    registered_instance_types: object,
    bucket: AWSObject,
    multipart_role: AWSObject,
    worker_role: AWSObject,
    worker_profile: AWSObject,
    worker_security_group: AWSObject,
) -> None:
    """The SSM parameters under /<prefix>/: what the app instance reads at boot, and again whenever a stack
    update changes them, plus the names an operator or the app may want (roles, security group, region).

    One loop per group makes a parameter of each name; its value is the variable of that name in the loop's
    Fn::Sub map, so each value is written once (the template has a 51,200-byte limit). A parameter waits for
    everything its map names, so the groups follow what they wait for: the values that exist within
    seconds, the queue's (which the workers' launch templates take), and the database's."""
    groups = {
        "Settings": {
            "url": url,  # URL_BASE
            "environment-name": ctx.ref("EnvironmentName"),
            "organization": ctx.ref("OrganizationName"),
            "bucket-name": Ref(bucket),
            "region": Ref("AWS::Region"),
            "multipart-role-arn": GetAtt(multipart_role, "Arn"),
            "worker-role-name": Ref(worker_role),
            "worker-instance-profile-name": Ref(worker_profile),
            "worker-security-group-id": GetAtt(worker_security_group, "GroupId"),
            "worker-subnet-ids": Join(",", ctx.ref("WorkerSubnetIds")),
            # As the environments are registered: on-demand types as they are, spot ones as <type>.spot.
            "worker-instance-types": registered_instance_types,
            "worker-volume-size": ctx.ref("WorkerVolumeSize"),
            # The registered worker pools' scaling roles, each after a comma (SSM takes no empty value).
            "worker-pool-role-arns": Join("", [",", Join(",", ctx.ref("WorkerPoolRoleArns"))]),
        },
        "QueueSettings": {
            "queue-host": queue_host,
            "queue-url": queue_url,  # redis:// or rediss://, as the app and the workers use it
        },
    }
    for loop, values in groups.items():
        t.add_resource(ForEach(loop, SETTING, list(values), {f"{SETTING}&{{{SETTING}}}": _settings(ctx, values)}))
    t.add_resource(_setting(ctx, setting_id("database-host"), "database-host", database_host))


def add_pool_registration(t: Template, ctx: Context, *, instance_types: object) -> SSMParameter:
    """A worker pool's /<pool>/registration: what prep needs of the pool beyond its name and region (which its
    scaling role's ARN says), written here so that the installation's app instance reads it in one call.
    The value is `<vpc id> <subnet id,...> <disk GiB> <instance type,...>` (spot types as <type>.spot), the
    order roi.sh's read_pool reads it in; none of them holds a space."""
    value = Join(
        " ",
        [ctx.ref("VpcId"), Join(",", ctx.ref("WorkerSubnetIds")), ctx.ref("WorkerVolumeSize"), instance_types],
    )
    return t.add_resource(_setting(ctx, "Registration", POOL_REGISTRATION, value))


def _setting(ctx: Context, title: str, name: str, value: object) -> SSMParameter:
    return SSMParameter(title, Name=Sub(f"/${{{ctx.prefix}}}/{name}"), Type="String", Value=value, Tags=ctx.tag_map())


def _settings(ctx: Context, values: dict[str, object]) -> SSMParameter:
    """A loop's parameter: named by the loop's item, its value the Fn::Sub variable of that name (variable
    names are alphanumeric: &{Setting} is the item without its hyphens)."""
    variables = {name.replace("-", ""): value for name, value in values.items()}
    # The title is the one troposphere validates; the loop's fragment key is the real id.
    return _setting(ctx, SETTING, f"${{{SETTING}}}", Sub(f"${{&{{{SETTING}}}}}", **variables))
