"""Security groups and the ingress rules between them (the ports table of SPEC.md).

Rules between groups are separate AWS::EC2::SecurityGroupIngress resources so that groups never
reference each other inside their own definitions, which would make a dependency cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Template
from troposphere.ec2 import SecurityGroup, SecurityGroupIngress, SecurityGroupRule

from valohai_cfn.stack.context import ALLOW_SSH, USE_HTTPS, Context, checkov_skips

WORKERS_SG = "WorkersSecurityGroup"
MASTER_SG = "MasterSecurityGroup"
DATABASE_SG = "DatabaseSecurityGroup"
QUEUE_SG = "QueueSecurityGroup"
LOAD_BALANCER_SG = "LoadBalancerSecurityGroup"

API_PORT = 8000
POSTGRES_PORT = 5432
REDIS_PORT = 6379

ALL_EGRESS = [
    SecurityGroupRule(IpProtocol="-1", CidrIp="0.0.0.0/0", Description="Any outbound traffic"),
]
# A group with no egress rules gets AWS's allow-all default; this rule matches no real traffic
# (ICMP type 252 code 86 to the broadcast address), so the database and queue cannot reach out.
NO_EGRESS = [
    SecurityGroupRule(
        IpProtocol="icmp",
        FromPort=252,
        ToPort=86,
        CidrIp="255.255.255.255/32",
        Description="No outbound traffic: placeholder rule that replaces the allow-all default",
    ),
]


@dataclass(frozen=True)
class SecurityGroups:
    workers: SecurityGroup
    master: SecurityGroup
    database: SecurityGroup
    queue: SecurityGroup
    load_balancer: SecurityGroup


def _group(t: Template, ctx: Context, title: str, role: str, purpose: str, egress: list) -> SecurityGroup:
    return t.add_resource(
        SecurityGroup(
            title,
            GroupName=ctx.name(f"sg-{role}"),
            GroupDescription=f"Valohai {purpose}",
            VpcId=ctx.ref("VpcId"),
            SecurityGroupEgress=egress,
            Tags=ctx.tags(f"sg-{role}"),
        )
    )


def _from_group(t: Template, title: str, source: SecurityGroup, target: SecurityGroup, port: int, why: str) -> None:
    t.add_resource(
        SecurityGroupIngress(
            title,
            GroupId=GetAtt(target, "GroupId"),
            SourceSecurityGroupId=GetAtt(source, "GroupId"),
            IpProtocol="tcp",
            FromPort=port,
            ToPort=port,
            Description=why,
        )
    )


def _from_cidr(
    t: Template,
    ctx: Context,
    title: str,
    cidr_parameter: str,
    target: SecurityGroup,
    port: int,
    why: str,
    condition: str | None = None,
    skips: tuple[tuple[str, str], ...] = (),
) -> None:
    rule = SecurityGroupIngress(
        title,
        GroupId=GetAtt(target, "GroupId"),
        CidrIp=ctx.ref(cidr_parameter),
        IpProtocol="tcp",
        FromPort=port,
        ToPort=port,
        Description=why,
    )
    if condition:
        rule.Condition = condition
    if skips:
        rule.Metadata = checkov_skips(*skips)
    t.add_resource(rule)


def add_network(t: Template, ctx: Context) -> SecurityGroups:
    sgs = SecurityGroups(
        workers=_group(t, ctx, WORKERS_SG, "workers", "workers: no inbound traffic", ALL_EGRESS),
        master=_group(t, ctx, MASTER_SG, "master", "app instance (roi)", ALL_EGRESS),
        database=_group(t, ctx, DATABASE_SG, "database", "PostgreSQL database", NO_EGRESS),
        queue=_group(t, ctx, QUEUE_SG, "queue", "Redis queue", NO_EGRESS),
        load_balancer=_group(t, ctx, LOAD_BALANCER_SG, "loadbalancer", "load balancer", ALL_EGRESS),
    )
    _from_cidr(
        t,
        ctx,
        "LoadBalancerHttpsIngress",
        "AllowedIngressCidr",
        sgs.load_balancer,
        443,
        "HTTPS from allowed clients",
        condition=USE_HTTPS,
    )
    _from_cidr(
        t,
        ctx,
        "LoadBalancerHttpIngress",
        "AllowedIngressCidr",
        sgs.load_balancer,
        80,
        "HTTP from allowed clients (redirected to HTTPS when a certificate is in use)",
        skips=(
            (
                "CKV_AWS_260",
                "Port 80 is the app's public entrance (a redirect to HTTPS when TLS is on); who may "
                "reach it is the AllowedIngressCidr parameter.",
            ),
        ),
    )
    _from_group(
        t,
        "MasterFromLoadBalancerIngress",
        sgs.load_balancer,
        sgs.master,
        API_PORT,
        "App traffic from the load balancer",
    )
    # Workers report back to the API directly; the original stack lacked this rule.
    _from_group(t, "MasterFromWorkersIngress", sgs.workers, sgs.master, API_PORT, "API calls from workers")
    _from_group(
        t, "DatabaseFromMasterIngress", sgs.master, sgs.database, POSTGRES_PORT, "PostgreSQL from the app instance"
    )
    _from_group(t, "QueueFromMasterIngress", sgs.master, sgs.queue, REDIS_PORT, "Redis from the app instance")
    _from_group(t, "QueueFromWorkersIngress", sgs.workers, sgs.queue, REDIS_PORT, "Redis from workers")
    _from_cidr(
        t,
        ctx,
        "MasterSshIngress",
        "SshIngressCidr",
        sgs.master,
        22,
        "SSH from the operator's network",
        condition=ALLOW_SSH,
    )
    return sgs
