"""The Redis queue (Celery broker) on ElastiCache."""

from __future__ import annotations

from troposphere import GetAtt, Template
from troposphere.elasticache import ReplicationGroup, SubnetGroup

from valohai_cfn.stack.context import Context, checkov_skips

QUEUE = "Queue"
QUEUE_SUBNET_GROUP = "QueueSubnetGroup"
REDIS_PORT = 6379


def add_queue(t: Template, ctx: Context, security_group_id: GetAtt) -> ReplicationGroup:
    subnet_group = t.add_resource(
        SubnetGroup(
            QUEUE_SUBNET_GROUP,
            CacheSubnetGroupName=ctx.name("queue"),
            Description="Valohai queue subnets",
            SubnetIds=ctx.ref("CacheSubnetIds"),
            Tags=ctx.tags(),
        )
    )
    # A replication group, not a CacheCluster: only a replication group can encrypt at rest.
    return t.add_resource(
        ReplicationGroup(
            QUEUE,
            # The queue holds only in-flight jobs; the snapshots below are its backup.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
            ReplicationGroupId=ctx.name("queue"),
            ReplicationGroupDescription="Valohai job queue (Celery broker)",
            Engine="redis",
            CacheNodeType=ctx.ref("CacheNodeType"),
            NumCacheClusters=1,
            Port=REDIS_PORT,
            CacheSubnetGroupName=subnet_group.ref(),
            SecurityGroupIds=[security_group_id],
            AtRestEncryptionEnabled=True,
            TransitEncryptionEnabled=ctx.ref("QueueTransitEncryption"),
            SnapshotRetentionLimit=5,
            AutoMinorVersionUpgrade=True,
            Tags=ctx.tags("queue"),
            Metadata=checkov_skips(
                (
                    "CKV_AWS_30",
                    "TLS to Redis is the QueueTransitEncryption parameter (default false, matching the "
                    "app image's redis:// broker URL); only the app and worker security groups reach port 6379.",
                ),
                (
                    "CKV_AWS_31",
                    "No Redis AUTH token: the queue is reachable only from the app and worker security "
                    "groups, and a token would be one more secret in the broker URL.",
                ),
            ),
        )
    )
