"""What the stack modules share: the template's Parameters, condition names, names and tags.

Kept in one frozen object so that no stack module imports another (see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import AWSHelperFn, AWSObject, If, Parameter, Ref, Sub, Tags

# Condition names, shared by the modules that put resources or values behind them.
HAS_CERTIFICATE = "HasCertificate"
HAS_HOSTED_ZONE = "HasHostedZone"
CREATE_CERTIFICATE = "CreateCertificate"
USE_HTTPS = "UseHttps"
HAS_KEY_PAIR = "HasKeyPair"
DATABASE_MULTI_AZ = "DatabaseMultiAZ"
QUEUE_TLS = "QueueTls"  # QueueTransitEncryption preferred or true: the clients use rediss://
QUEUE_TLS_REQUIRED = "QueueTlsRequired"  # true: the queue takes TLS connections only
HAS_ON_DEMAND_WORKERS = "HasOnDemandWorkers"
HAS_SPOT_WORKERS = "HasSpotWorkers"
HAS_WORKER_KEY_PAIR = "HasWorkerKeyPair"
HAS_WORKER_POOLS = "HasWorkerPools"

# Valohai's own convention, lowercase, as the app writes it on workers; the master's IAM conditions require it.
VALOHAI_TAG_KEY = "valohai"
VALOHAI_TAG_VALUE = "1"
ENVIRONMENT_TAG_KEY = "valohai:environment"
# This installation's own tag, on everything it creates: which installation a resource belongs to.
INSTALLATION_TAG_KEY = "valohai:installation"
# On worker resources only (launch templates, groups, the instances and volumes they launch), with the
# prefix as its value: the master may change a resource only when it carries this tag with its own prefix,
# so it can touch neither another installation's workers nor its own roi instance.
WORKERS_TAG_KEY = "valohai:workers"
# A worker pool's own tag (the pool template), on everything it creates: which pool a resource belongs to.
POOL_TAG_KEY = "valohai:pool"
# A worker pool's SSM parameter /<pool>/registration: what the installation's app instance registers the pool's
# environments with (userdata/roi.sh, read_pool), read in one call with the pool's scaling role.
POOL_REGISTRATION = "registration"

# Secrets outlive the stack like the data they unlock: a retained database snapshot and bucket are of
# no use without the keys the app encrypted them with (SECRET_KEY, REPO_PRIVATE_KEY_SECRET).
RETAIN_SECRET = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
# The checkov checks skipped on some resource, and why they do not fit this product. The template's
# Metadata names only the check (CloudFormation's 51,200-byte limit); the README's table shows the reasons.
SCAN_SKIPS = {
    "CKV_AWS_103": ("An HTTP listener has no TLS policy; the HTTPS listener uses ELBSecurityPolicy-TLS13-1-2-2021-06."),
    "CKV_AWS_149": (
        "Encrypted with Secrets Manager's AWS managed key; IAM already limits reading to this installation's "
        "roles, and a customer managed key would add cost and a key policy to keep without narrowing that."
    ),
    "CKV_AWS_157": (
        "Multi-AZ is the DatabaseMultiAZ parameter (default true), behind a condition checkov does not evaluate."
    ),
    "CKV_AWS_18": (
        "No log bucket exists in this stack to receive access logs; object-level auditing is CloudTrail's, "
        "which the account owns."
    ),
    "CKV_AWS_2": (
        "Port 80 redirects to HTTPS whenever a certificate is in use; without one (no CertificateArn or "
        "HostedZoneId) HTTP is the installation's chosen mode."
    ),
    "CKV_AWS_260": (
        "Port 80 is the app's public entrance (a redirect to HTTPS when TLS is on); who may reach it is the "
        "AllowedIngressCidr parameter."
    ),
    "CKV_AWS_30": (
        "TLS to Redis is the QueueTransitEncryption parameter (default false, matching the app image's "
        "redis:// broker URL); only the app and worker security groups reach port 6379."
    ),
    "CKV_AWS_31": (
        "No Redis AUTH token: the queue is reachable only from the app and worker security groups, and a "
        "token would be one more secret in the broker URL."
    ),
    "CKV_AWS_91": (
        "No log bucket exists in this stack to receive access logs (one with the ELB service's write policy "
        "would be another retained bucket)."
    ),
}


def checkov_skips(*checks: str) -> dict:
    """Resource Metadata that skips checkov checks which do not fit this product (SCAN_SKIPS says why)."""
    unexplained = [check for check in checks if check not in SCAN_SKIPS]
    if unexplained:
        raise ValueError(f"say in SCAN_SKIPS why {', '.join(unexplained)} does not fit")
    return {"checkov": {"skip": [{"id": check} for check in checks]}}


def objects_arn(bucket: AWSObject) -> Sub:
    """The ARN of every object in a bucket of this template."""
    return Sub(f"${{{bucket.title}.Arn}}/*")


class ForEach(AWSHelperFn):
    """Fn::ForEach::<loop> (the AWS::LanguageExtensions transform) in Resources or Outputs: `fragment` once per
    item of `collection`, with ${identifier} and &{identifier} replaced. troposphere has no model of it; an
    entry of the section is all it is, so it goes in with add_resource or add_output like one."""

    def __init__(self, loop: str, identifier: str, collection: object, fragment: dict[str, object]) -> None:
        self.title = f"Fn::ForEach::{loop}"
        self.data = [identifier, collection, fragment]


@dataclass(frozen=True)
class Context:
    """The Parameter objects by name, plus helpers for physical names and tags. The same stack modules build
    the installation and a worker pool: what differs between the two templates is said here."""

    parameters: dict[str, Parameter]
    # The parameter every physical name starts with: ResourcePrefix (the installation) or PoolName (a pool).
    prefix: str = "ResourcePrefix"
    # After an IAM name: IAM names are global in an account, and a StackSet puts a pool of one name in
    # several regions of an account, so a pool's IAM names end in its region.
    iam_suffix: str = ""
    # Before a queue's name: a pool's queues share the installation's Redis, so they carry the pool's name.
    queue_prefix: str = ""
    # What tells every resource's owner: (tag key, the parameter that is its value).
    owner_tags: tuple[tuple[str, str], ...] = (
        (ENVIRONMENT_TAG_KEY, "EnvironmentName"),
        (INSTALLATION_TAG_KEY, "ResourcePrefix"),
    )

    def ref(self, name: str) -> Ref:
        return Ref(self.parameters[name])

    def name(self, suffix: str) -> Sub:
        """A physical name `<prefix>-<suffix>`, so two installations (or pools) can share one account."""
        return Sub(f"${{{self.prefix}}}-{suffix}")

    def iam_name(self, suffix: str) -> Sub:
        """An IAM role's or instance profile's name: `<prefix>-<suffix>`, and a pool's region after it."""
        return Sub(f"${{{self.prefix}}}-{suffix}{self.iam_suffix}")

    def app_url(self) -> If:
        """https://Domain when the load balancer serves TLS, else http://Domain; also the CORS origin."""
        return If(USE_HTTPS, Sub("https://${Domain}"), Sub("http://${Domain}"))

    def tag_map(self, name: str | None = None, *, worker: bool = False) -> dict[str, object]:
        """The tags every taggable resource carries, as a map; `name` adds a Name tag `<prefix>-<name>`,
        `worker` the workers' own tag."""
        tags: dict[str, object] = {VALOHAI_TAG_KEY: VALOHAI_TAG_VALUE}
        tags.update({key: Ref(parameter) for key, parameter in self.owner_tags})
        if worker:
            tags[WORKERS_TAG_KEY] = Ref(self.prefix)
        if name:
            tags["Name"] = self.name(name)
        return tags

    def tags(self, name: str | None = None, *, worker: bool = False) -> Tags:
        """The same tags as CloudFormation's usual list of Key/Value pairs."""
        return Tags(self.tag_map(name, worker=worker))
