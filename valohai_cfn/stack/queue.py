"""The Redis queue (Celery broker) on ElastiCache."""

from __future__ import annotations

from troposphere import GetAtt, If, NoValue, Sub, Template
from troposphere.elasticache import ReplicationGroup, SubnetGroup

from valohai_cfn.stack.context import QUEUE_TLS, QUEUE_TLS_REQUIRED, Context, checkov_skips

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
            EngineVersion=ctx.ref("QueueEngineVersion"),
            CacheNodeType=ctx.ref("CacheNodeType"),
            NumCacheClusters=1,
            Port=REDIS_PORT,
            CacheSubnetGroupName=subnet_group.ref(),
            SecurityGroupIds=[security_group_id],
            AtRestEncryptionEnabled=True,
            TransitEncryptionEnabled=If(QUEUE_TLS, True, False),
            TransitEncryptionMode=If(QUEUE_TLS, If(QUEUE_TLS_REQUIRED, "required", "preferred"), NoValue),
            SnapshotRetentionLimit=5,
            AutoMinorVersionUpgrade=True,
            Tags=ctx.tags("queue"),
            Metadata=checkov_skips(
                "CKV_AWS_30",
                "CKV_AWS_31",
            ),
        )
    )


def queue_url(queue: ReplicationGroup) -> Sub:
    """The one URL the app and the workers reach the queue at: rediss:// when QueueTransitEncryption is
    preferred or true (Celery refuses a rediss:// URL without ssl_cert_reqs), redis:// when false. In
    preferred the queue takes both, so the clients move to TLS before true refuses plain connections."""
    return Sub(
        f"${{Scheme}}://${{Host}}:{REDIS_PORT}/0${{Options}}",
        Scheme=If(QUEUE_TLS, "rediss", "redis"),
        # A variable, not ${Queue.PrimaryEndPoint.Address}: an attribute with a dot in it is one more thing
        # for every tool that reads the template to get right.
        Host=GetAtt(queue, "PrimaryEndPoint.Address"),
        Options=If(QUEUE_TLS, "?ssl_cert_reqs=required", ""),
    )
