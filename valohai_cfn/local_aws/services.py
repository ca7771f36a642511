"""Calls of the services' own APIs that moto lacks (it answers them with an HTTP 500), answered with what the
service would say.

- ElastiCache DescribeCacheEngineVersions: the Redis OSS versions ElastiCache offers (preflight checks the
  queue's QueueEngineVersion against it; `rules` refuses a replication group on any other).
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult
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


def install() -> None:
    ElastiCacheResponse.describe_cache_engine_versions = _describe_cache_engine_versions  # type: ignore[attr-defined]
