"""Updates the live resources cannot take, found before any change set executes: each live resource whose
change AWS documents as one-way or stepwise is read (not the deployed template, which the service may have
moved on from: a minor version upgraded automatically), and compared with what the new template would set.

- The queue's TLS (ElastiCache ModifyReplicationGroup): on or off only through TransitEncryptionMode
  `preferred`, in a modification of its own; `QueueTransitEncryption=preferred` is that step. Before leaving
  it for `true` or `false`, every running worker must already use the URL scheme the queue will then take
  (a worker reads the queue URL once, when it boots), and the app must have re-read its settings.
- The queue's engine (ElastiCache): upgrades in place, never downgrades.
- The database's engine (RDS): never downgrades; a new major version needs AllowMajorVersionUpgrade, which
  the template does not set (the upgrade is an operator's step of its own, tested on a snapshot first).
- The database's storage (RDS): never shrinks; grows by 10% at least.

`check` returns the refusals (each names the parameter, the live and the new value, and the way forward)
and the notes that explain a step in progress (what `preferred` does, and what comes next).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

# The app instance re-reads its settings every 5 minutes (roi.sh's reconcile timer), then restarts the app.
APP_RECONCILE = datetime.timedelta(minutes=10)
QUEUE_TLS = "QueueTransitEncryption"


@dataclass
class Verdict:
    refusals: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)


def _version(text: Any) -> tuple[int, ...]:
    return tuple(int(part) for part in str(text).replace("-", ".").split(".") if part.isdigit())


def _physical_ids(cfn: Any, stack_id: str) -> dict[str, str]:
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id)
    return {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for page in pages
        for r in page["StackResourceSummaries"]
    }


# -- the queue -------------------------------------------------------------------------------------


def tls_state(enabled: Any, mode: Any) -> str:
    """A replication group's TLS as QueueTransitEncryption names it: false, preferred or true (required)."""
    if str(enabled).lower() != "true":
        return "false"
    return "preferred" if mode == "preferred" else "true"


def _worker_schemes(aws: Any, groups: list[str]) -> dict[str, list[str]]:
    """The running workers of these Auto Scaling groups by the queue URL scheme their launch template version
    gave them at boot (rediss:// or redis://)."""
    autoscaling, ec2 = aws("autoscaling"), aws("ec2")
    schemes: dict[str, list[str]] = {}
    seen: dict[tuple[str, str], str] = {}
    for start in range(0, len(groups), 50):
        answer = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=groups[start : start + 50])
        for group in answer["AutoScalingGroups"]:
            for instance in group.get("Instances", []):
                template = instance.get("LaunchTemplate") or group.get("LaunchTemplate") or {}
                key = (template.get("LaunchTemplateId", ""), str(template.get("Version", "")))
                if key not in seen:
                    versions = ec2.describe_launch_template_versions(LaunchTemplateId=key[0], Versions=[key[1]])
                    data = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"].get("UserData", "")
                    text = base64.b64decode(data).decode(errors="replace") if data else ""
                    seen[key] = "rediss" if "rediss://" in text else "redis"
                schemes.setdefault(seen[key], []).append(instance["InstanceId"])
    return schemes


# ElastiCache changes a live replication group's in-transit encryption only from Redis OSS 7.0 on ("Enabling
# in-transit encryption on an existing cluster": Valkey 7.2 or later, or Redis OSS 7.0 or later).
TLS_CHANGE_MINIMUM = (7, 0)


def _queue_tls(
    aws: Any, group: dict, new: dict, workers: list[str], last_update: Callable[[], Any], engine: str | None
) -> Verdict:
    verdict = Verdict()
    live = tls_state(group.get("TransitEncryptionEnabled", False), group.get("TransitEncryptionMode"))
    wanted = tls_state(new.get("TransitEncryptionEnabled", False), new.get("TransitEncryptionMode"))
    if live == wanted:
        return verdict
    name = group["ReplicationGroupId"]
    if engine and _version(engine)[:2] < TLS_CHANGE_MINIMUM:
        verdict.refusals.append(
            f"{QUEUE_TLS}={wanted}: the queue {name} runs Redis {engine}, and ElastiCache changes a live queue's TLS "
            "only on Redis OSS 7.0 or later: deploy QueueEngineVersion 7.1 first (an update of its own), then this"
        )
        return verdict
    if {live, wanted} == {"false", "true"}:
        verdict.refusals.append(
            f"{QUEUE_TLS}: the queue {name} is {live} and ElastiCache turns TLS {'on' if wanted == 'true' else 'off'} "
            f"only through TransitEncryptionMode preferred: deploy with {QUEUE_TLS}=preferred first, then with "
            f"{QUEUE_TLS}={wanted} once the app and every worker use {'rediss' if wanted == 'true' else 'redis'}://"
        )
        return verdict
    if wanted == "preferred" and live == "false":
        verdict.steps.append(
            f"{QUEUE_TLS}=preferred: the queue {name} takes TLS and plain connections; the app (at its next "
            f"reconcile, within 5 minutes) and the workers launched from now on use rediss://. Deploy again with "
            f"{QUEUE_TLS}=true for TLS only once the workers launched before this update are gone"
        )
        return verdict
    if wanted == "preferred":
        # Turning TLS off: the template's clients use rediss:// while the queue takes TLS at all, so the last
        # step is the one that moves them (QA: the earlier words promised a move this step does not make).
        verdict.steps.append(
            f"{QUEUE_TLS}=preferred: the queue {name} takes TLS and plain connections; the app and the workers keep "
            f"rediss:// until {QUEUE_TLS}=false. That step waits until no worker runs (idle workers stop), and "
            "the app moves to redis:// within 5 minutes of it, retrying the queue until then"
        )
        return verdict
    scheme = "rediss" if wanted == "true" else "redis"
    stale = [i for s, ids in _worker_schemes(aws, workers).items() if s != scheme for i in ids]
    if stale:
        other = "redis" if scheme == "rediss" else "rediss"
        verdict.refusals.append(
            f"{QUEUE_TLS}={wanted}: {len(stale)} running worker(s) use {other}:// "
            f"and would lose the queue ({', '.join(sorted(stale)[:5])}{', …' if len(stale) > 5 else ''}): wait until "
            "the app scales them in (idle workers stop), then deploy again"
        )
    updated = last_update() if wanted == "true" else None
    now = datetime.datetime.now(datetime.timezone.utc)
    if updated is not None and now - updated < APP_RECONCILE:
        ready = (updated + APP_RECONCILE).strftime("%H:%M UTC")
        verdict.refusals.append(
            f"{QUEUE_TLS}=true: the stack's last update ended at {updated:%H:%M UTC}; the app moves to rediss:// "
            f"at its next reconcile (every 5 minutes): deploy again after {ready}"
        )
    if wanted == "false" and not stale:
        verdict.steps.append(
            f"{QUEUE_TLS}=false: the queue {name} stops taking TLS; the app moves to redis:// at its next reconcile "
            "(within 5 minutes) and retries the queue until then"
        )
    return verdict


def _queue_engine(group_id: str, live: str | None, new: dict) -> list[str]:
    wanted = new.get("EngineVersion")
    if live and wanted and _version(wanted) < _version(live)[: len(_version(wanted))]:
        return [
            f"QueueEngineVersion {wanted}: the queue {group_id} runs Redis {live}, and ElastiCache never downgrades "
            f"an engine: keep QueueEngineVersion at {'.'.join(live.split('.')[:2])} or later"
        ]
    return []


def _queue(aws: Any, physical_id: str, new: dict, workers: list[str], last_update: Callable[[], Any]) -> Verdict:
    elasticache = aws("elasticache")
    try:
        group = elasticache.describe_replication_groups(ReplicationGroupId=physical_id)["ReplicationGroups"][0]
    except (ClientError, IndexError):
        return Verdict()  # not there (any more): CloudFormation's update says so
    members = group.get("MemberClusters", [])
    live_version = None
    if members:
        try:
            clusters = elasticache.describe_cache_clusters(CacheClusterId=members[0])["CacheClusters"]
            live_version = clusters[0].get("EngineVersion") if clusters else None
        except ClientError:
            live_version = None
    verdict = _queue_tls(aws, group, new, workers, last_update, live_version)
    verdict.refusals += _queue_engine(physical_id, live_version, new)
    return verdict


# -- the database ----------------------------------------------------------------------------------


def _database(aws: Any, physical_id: str, new: dict) -> Verdict:
    try:
        db = aws("rds").describe_db_instances(DBInstanceIdentifier=physical_id)["DBInstances"][0]
    except (ClientError, IndexError):
        return Verdict()
    verdict = Verdict()
    live, wanted = db.get("EngineVersion", ""), str(new.get("EngineVersion", ""))
    if live and wanted and _version(wanted) != _version(live)[: len(_version(wanted))]:
        if _version(wanted) < _version(live):
            verdict.refusals.append(
                f"DatabaseEngineVersion {wanted}: the database {physical_id} runs PostgreSQL {live}, and RDS never "
                f"downgrades: keep DatabaseEngineVersion at {live} (or later), or restore a snapshot into a new stack"
            )
        elif _version(wanted)[:1] != _version(live)[:1] and str(new.get("AllowMajorVersionUpgrade")).lower() != "true":
            verdict.refusals.append(
                f"DatabaseEngineVersion {wanted}: a new major version of the database {physical_id} (now {live}) "
                "needs AllowMajorVersionUpgrade, which the template does not set: upgrade it yourself first (aws rds "
                f"modify-db-instance --db-instance-identifier {physical_id} --engine-version {wanted} "
                "--allow-major-version-upgrade --apply-immediately, after trying it on a snapshot), then deploy"
            )
    live_storage, wanted_storage = db.get("AllocatedStorage"), new.get("AllocatedStorage")
    if live_storage and wanted_storage is not None and int(wanted_storage) != int(live_storage):
        wanted_gib, live_gib = int(wanted_storage), int(live_storage)
        if wanted_gib < live_gib:
            verdict.refusals.append(
                f"DatabaseAllocatedStorage {wanted_gib}: the database {physical_id} has {live_gib} GiB, and RDS "
                f"storage never shrinks: keep DatabaseAllocatedStorage at {live_gib} or more"
            )
        elif wanted_gib * 10 < live_gib * 11:  # in integers: 88 is 10% more than 80
            verdict.refusals.append(
                f"DatabaseAllocatedStorage {wanted_gib}: RDS grows storage by 10% at least; the database "
                f"{physical_id} has {live_gib} GiB: give {-(-live_gib * 11 // 10)} or more"
            )
        elif db.get("DBInstanceStatus") == "storage-optimization":
            verdict.refusals.append(
                f"DatabaseAllocatedStorage {wanted_gib}: the database {physical_id} is still optimizing its last "
                "storage change (RDS takes the next one 6 hours after the last at the earliest): deploy again later"
            )
    return verdict


# -- the whole stack -------------------------------------------------------------------------------


def _last_update_end(cfn: Any, stack_id: str) -> datetime.datetime | None:
    """When the stack's last operation ended (its newest stack-level *_COMPLETE event)."""
    for event in cfn.describe_stack_events(StackName=stack_id)["StackEvents"]:
        if event.get("PhysicalResourceId") == stack_id and event["ResourceStatus"].endswith("_COMPLETE"):
            return event["Timestamp"]
    return None


WATCHED = {
    "AWS::ElastiCache::ReplicationGroup": ("TransitEncryptionEnabled", "TransitEncryptionMode", "EngineVersion"),
    "AWS::RDS::DBInstance": ("EngineVersion", "AllocatedStorage"),
}


def check(aws: Any, stack: dict, old_resources: dict[str, dict], new_resources: dict[str, dict]) -> Verdict:
    """What the live resources of `stack` (DescribeStacks' entry) cannot take from the update of `old_resources`
    to `new_resources` (the deployed and the new template, each processed for its values: intrinsics.Processed
    .resources). Only what the update changes is judged: CloudFormation sends nothing else to the service."""
    cfn = aws("cloudformation")
    changed = {
        name: r
        for name, r in new_resources.items()
        if r["Type"] in WATCHED
        and name in old_resources
        and any(
            old_resources[name].get("Properties", {}).get(p) != r.get("Properties", {}).get(p)
            for p in WATCHED[r["Type"]]
        )
    }
    verdict = Verdict()
    if not changed:
        return verdict
    physical = _physical_ids(cfn, stack["StackId"])
    workers = [
        physical[name]
        for name, r in new_resources.items()
        if r["Type"] == "AWS::AutoScaling::AutoScalingGroup" and physical.get(name)
    ]
    for name, resource in changed.items():
        if not physical.get(name):
            continue
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::ElastiCache::ReplicationGroup":
            found = _queue(aws, physical[name], properties, workers, lambda: _last_update_end(cfn, stack["StackId"]))
        else:
            found = _database(aws, physical[name], properties)
        verdict.refusals += found.refusals
        verdict.steps += found.steps
    return verdict
