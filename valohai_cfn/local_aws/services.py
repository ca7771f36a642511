"""Calls of the services' own APIs that moto lacks (it answers them with an HTTP 500), answered with what the
service would say.

- ElastiCache DescribeCacheEngineVersions: the Redis OSS versions ElastiCache offers (preflight checks the
  queue's QueueEngineVersion against it; `rules` refuses a replication group on any other).

And those moto answers untruly:
- EC2 DescribeImages lists only the caller's own account's images, where EC2 also lists the images another
  account shares with it (ModifyImageAttribute LaunchPermission UserId): Valohai shares its roi and peon
  images with each customer account that way, and `RoiAmiId=latest` looks for them.
- EC2 RunInstances launches with a key pair that does not exist; EC2 refuses (InvalidKeyPair.NotFound), for
  an instance launched directly, by CloudFormation or by an Auto Scaling group from its launch template.
  (CreateLaunchTemplate takes the name unchecked, as EC2 does: "Launch template parameters are not fully
  validated when you create the launch template".)
- Auto Scaling UpdateAutoScalingGroup drops a group's MixedInstancesPolicy when the call does not repeat it
  (a spot worker group lost its policy when its MaxSize was changed); AWS changes only what the call names.
- ACM issues a DNS-validated certificate 60 seconds after the request whatever DNS holds; ACM issues it
  once each domain's validation record — the CNAME DescribeCertificate names — is in a Route 53 hosted zone
  of the account, and leaves it PENDING_VALIDATION until then.
"""

from __future__ import annotations

from typing import Any

from moto.acm.models import CertBundle
from moto.autoscaling.models import FakeAutoScalingGroup
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import AmiBackend
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.utils import generic_filter
from moto.elasticache.responses import ElastiCacheResponse
from moto.route53.models import route53_backends

# ElastiCache's Redis OSS engine versions and their parameter group families (DescribeCacheEngineVersions).
CACHE_ENGINE_VERSIONS = {
    "redis": {
        "4.0.10": "redis4.0",
        "5.0.6": "redis5.0",
        "6.0": "redis6.x",
        "6.2": "redis6.x",
        "7.0": "redis7",
        "7.1": "redis7",
    },
}


def offered(engine: str, version: str) -> bool:
    return str(version) in CACHE_ENGINE_VERSIONS.get(engine, {})


def _describe_cache_engine_versions(self: ElastiCacheResponse) -> ActionResult:
    engine = self._get_param("Engine")
    version = self._get_param("EngineVersion")
    family = self._get_param("CacheParameterGroupFamily")
    default_only = str(self._get_param("DefaultOnly", "")).lower() == "true"
    found: list[dict[str, Any]] = []
    for name, versions in CACHE_ENGINE_VERSIONS.items():
        newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
        for number, number_family in versions.items():
            if (engine and name != engine) or (version and number != version) or (family and number_family != family):
                continue
            if default_only and number != newest:
                continue
            found.append(
                {
                    "Engine": name,
                    "EngineVersion": number,
                    "CacheParameterGroupFamily": number_family,
                    "CacheEngineDescription": "Redis",
                    "CacheEngineVersionDescription": f"redis version {number}",
                }
            )
    return ActionResult({"CacheEngineVersions": found})


_moto_describe_images = AmiBackend.describe_images


def _shared_with(account_id: str, region: str) -> dict[str, Any]:
    """The images of other accounts in the region whose launch permissions name `account_id`, by id."""
    return {
        ami.id: ami
        for owner, regions in list(ec2_backends.items())
        if owner != account_id and region in regions
        for ami in list(regions[region].amis.values())
        if {"UserId": account_id} in ami.launch_permissions
    }


def _describe_images(
    self: Any,
    ami_ids: list[str] | None = None,
    filters: dict[str, Any] | None = None,
    exec_users: list[str] | None = None,
    owners: list[str] | None = None,
) -> list[Any]:
    """moto's DescribeImages, plus the images other accounts share with this one, as EC2 lists them: by id, and
    among those its Owners, ExecutableUsers and filters select (a shared image is executable by this account)."""
    shared = _shared_with(self.account_id, self.region_name)
    if ami_ids:
        own_ids = [i for i in ami_ids if i not in shared]
        own = _moto_describe_images(self, own_ids, filters, exec_users, owners) if own_ids else []
        return own + [shared[i] for i in ami_ids if i in shared]
    own = _moto_describe_images(self, ami_ids, filters, exec_users, owners)
    extra = list(shared.values())
    if exec_users:
        executable = {self.account_id if user == "self" else user for user in exec_users}
        extra = [ami for ami in extra if self.account_id in executable]
    if owners:
        extra = [ami for ami in extra if ami.owner_id in owners or ami.owner_alias in owners]
    return own + (generic_filter(filters, extra) if filters else extra)


class KeyPairNotFound(EC2ClientError):
    def __init__(self, name: str) -> None:
        super().__init__("InvalidKeyPair.NotFound", f"The key pair '{name}' does not exist")


_moto_run_instances = InstanceBackend.run_instances


def _run_instances(
    self: Any, image_id: str, count: int, user_data: Any, security_group_names: list[str], **kwargs: Any
) -> Any:
    """moto's RunInstances, refusing a key pair the region does not have, as EC2 does (the launch template's
    KeyName when the call names none)."""
    name = kwargs.get("key_name")
    if not name and kwargs.get("launch_template"):
        name = self._get_template_from_args(kwargs["launch_template"]).data.get("KeyName")
    if name and name not in self.key_pairs:
        raise KeyPairNotFound(name)
    return _moto_run_instances(self, image_id, count, user_data, security_group_names, **kwargs)


def _validation_record_found(certificate: CertBundle) -> bool:
    """Whether each domain's validation CNAME (DescribeCertificate's ResourceRecord) is in a hosted zone of the
    certificate's account."""
    account_id = certificate.arn.split(":")[4]
    records = {
        (r.name, r.type, tuple(v["Value"] if isinstance(v, dict) else v for v in r.records or []))
        for zone in list(route53_backends[account_id]["aws"].zones.values())
        for r in zone.rrsets
    }
    wanted = [v["ResourceRecord"] for v in certificate.describe()["Certificate"].get("DomainValidationOptions", [])]
    return bool(wanted) and all((w["Name"], w["Type"], (w["Value"],)) in records for w in wanted)


_moto_check = CertBundle.check


def _check(self: CertBundle) -> None:
    """moto's check (an expired certificate is EXPIRED), but a pending AMAZON_ISSUED certificate is issued
    when its validation records are in DNS, not when a minute has passed."""
    pending = self.type == "AMAZON_ISSUED" and self.status == "PENDING_VALIDATION"
    _moto_check(self)
    if pending and self.status == "ISSUED":
        self.status = "PENDING_VALIDATION"
    if self.status == "PENDING_VALIDATION" and _validation_record_found(self):
        self.status = "ISSUED"


_moto_group_update = FakeAutoScalingGroup.update


def _group_update(self: FakeAutoScalingGroup, **changes: Any) -> None:
    """moto's UpdateAutoScalingGroup, keeping the MixedInstancesPolicy unless the call replaces it (with a policy
    of its own or a LaunchTemplate)."""
    kept = self.mixed_instances_policy
    _moto_group_update(self, **changes)
    if changes.get("mixed_instances_policy") is None and not changes.get("launch_template"):
        self.mixed_instances_policy = kept


def install() -> None:
    ElastiCacheResponse.describe_cache_engine_versions = _describe_cache_engine_versions  # type: ignore[attr-defined]
    AmiBackend.describe_images = _describe_images  # type: ignore[method-assign]
    InstanceBackend.run_instances = _run_instances  # type: ignore[method-assign]
    CertBundle.check = _check  # type: ignore[method-assign]
    FakeAutoScalingGroup.update = _group_update  # type: ignore[method-assign]
