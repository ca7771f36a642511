"""Calls of the services' own APIs that moto lacks (it answers them with an HTTP 500), answered with what the
service would say.

- ElastiCache DescribeCacheEngineVersions: the Redis OSS versions ElastiCache offers (preflight checks the
  queue's QueueEngineVersion against it; `rules` refuses a replication group on any other).

And one moto answers untruly: EC2 DescribeImages lists only the caller's own account's images, where EC2 also
lists the images another account shares with it (ModifyImageAttribute LaunchPermission UserId): Valohai
shares its roi and peon images with each customer account that way, and `RoiAmiId=latest` looks for them.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import AmiBackend
from moto.ec2.utils import generic_filter
from moto.elasticache.responses import ElastiCacheResponse

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


def install() -> None:
    ElastiCacheResponse.describe_cache_engine_versions = _describe_cache_engine_versions  # type: ignore[attr-defined]
    AmiBackend.describe_images = _describe_images  # type: ignore[method-assign]
