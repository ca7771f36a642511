"""Security groups and the ingress rules between them (the ports table of SPEC.md).

Rules between groups are separate AWS::EC2::SecurityGroupIngress resources so that groups never
reference each other inside their own definitions, which would make a dependency cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import FindInMap, GetAtt, Sub, Template
from troposphere.ec2 import SecurityGroup, SecurityGroupIngress, SecurityGroupRule

from valohai_cfn.stack.context import USE_HTTPS, Context, ForEach, checkov_skips

WORKERS_SG = "WorkersSecurityGroup"
MASTER_SG = "MasterSecurityGroup"
DATABASE_SG = "DatabaseSecurityGroup"
QUEUE_SG = "QueueSecurityGroup"
LOAD_BALANCER_SG = "LoadBalancerSecurityGroup"

API_PORT = 8000
POSTGRES_PORT = 5432
REDIS_PORT = 6379
SSH_PORT = 22
SSH_INGRESS = "MasterSshIngress"
# EC2 takes only letters, digits, spaces and ._-:/()#,@[]+=&;{}!$* in a description (aws_rules): no apostrophe.
SSH_DESCRIPTION = "SSH from the operator network"

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
        Description="No outbound traffic (replaces the allow-all default)",
    ),
]


GROUP = "Group"
GROUPS_MAPPING = "SecurityGroups"
# <logical id prefix>: name suffix. One loop per egress makes <prefix>SecurityGroup of each (Master: the
# app instance, roi; Workers: no inbound traffic at all).
GROUPS_WITH_EGRESS = {"Workers": "workers", "Master": "master", "LoadBalancer": "loadbalancer"}
GROUPS_WITHOUT_EGRESS = {"Database": "database", "Queue": "queue"}


@dataclass(frozen=True)
class SecurityGroups:
    """The groups' logical ids."""

    workers: str = WORKERS_SG
    master: str = MASTER_SG
    database: str = DATABASE_SG
    queue: str = QUEUE_SG
    load_balancer: str = LOAD_BALANCER_SG


def _security_group(ctx: Context, title: str, name: object, description: object, egress: list) -> SecurityGroup:
    return SecurityGroup(
        title,
        GroupName=name,
        GroupDescription=description,
        VpcId=ctx.ref("VpcId"),
        SecurityGroupEgress=egress,
        # No Name tag: it would repeat GroupName, which the console shows as the group's name (the template
        # has a 51,200-byte limit).
        Tags=ctx.tags(),
    )


def _groups(t: Template, ctx: Context, loop: str, groups: dict[str, str], egress: list) -> None:
    name = Sub(f"${{{ctx.prefix}}}-sg-${{Name}}", Name=FindInMap(GROUPS_MAPPING, f"${{{GROUP}}}", "Name"))
    # The title is the one troposphere validates; the loop's fragment key is the real id.
    group = _security_group(ctx, "SecurityGroup", name, Sub(f"Valohai ${{{GROUP}}}"), egress)
    t.add_resource(ForEach(loop, GROUP, list(groups), {f"${{{GROUP}}}SecurityGroup": group}))


def add_worker_security_group(t: Template, ctx: Context) -> str:
    """A worker pool's security group, `<pool>-sg-workers`: outbound only, as the installation's workers' (jobs
    reach the queue, the app and the internet; nothing reaches a worker). Returns its logical id."""
    name = ctx.name(f"sg-{GROUPS_WITH_EGRESS['Workers']}")
    t.add_resource(_security_group(ctx, WORKERS_SG, name, "Valohai Workers", ALL_EGRESS))
    return WORKERS_SG


def _from_group(t: Template, title: str, source: str, target: str, port: int, why: str) -> None:
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
    group_id: object,
    port: int,
    why: str,
    condition: str | None = None,
    skips: tuple[str, ...] = (),
) -> None:
    rule = SecurityGroupIngress(
        title,
        GroupId=group_id,
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
    groups = {**GROUPS_WITH_EGRESS, **GROUPS_WITHOUT_EGRESS}
    t.add_mapping(GROUPS_MAPPING, {group: {"Name": name} for group, name in groups.items()})
    _groups(t, ctx, "SecurityGroups", GROUPS_WITH_EGRESS, ALL_EGRESS)
    _groups(t, ctx, "ClosedSecurityGroups", GROUPS_WITHOUT_EGRESS, NO_EGRESS)
    sgs = SecurityGroups()
    _from_cidr(
        t,
        ctx,
        "LoadBalancerHttpsIngress",
        "AllowedIngressCidr",
        GetAtt(sgs.load_balancer, "GroupId"),
        443,
        "HTTPS from allowed clients",
        condition=USE_HTTPS,
    )
    _from_cidr(
        t,
        ctx,
        "LoadBalancerHttpIngress",
        "AllowedIngressCidr",
        GetAtt(sgs.load_balancer, "GroupId"),
        80,
        "HTTP from allowed clients (redirected to HTTPS when a certificate is in use)",
        skips=("CKV_AWS_260",),
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
    return sgs


def add_ssh_ingress(t: Template, ctx: Context) -> str:
    """SSH to the app instance (templates/valohai-ssh.*): tcp 22 from SshIngressCidr into the installation's
    app security group, the parameter AppSecurityGroupId (its output of that name). A template of its own so the
    installation stays under CloudFormation's 51,200-byte TemplateBody limit (DESIGN.md "Size"). Returns the
    rule's logical id."""
    _from_cidr(t, ctx, SSH_INGRESS, "SshIngressCidr", ctx.ref("AppSecurityGroupId"), SSH_PORT, SSH_DESCRIPTION)
    return SSH_INGRESS
