"""The architecture, drawn from the built template itself (not a hand-kept list): Mermaid or DOT.

Resources are grouped by concern; security-group ingress rules become edges labelled with their
ports; role → instance profile → instance (or launch template) edges come from the profiles' Roles and
the IamInstanceProfile that uses them; group → launch template edges from the groups; dotted edges
show which security group a resource sits in. SSM parameters are folded into one node. A loop over a
fixed list is drawn as what it makes; a loop over a parameter (the worker groups) as one node per
resource it makes for each item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from valohai_cfn.language_extensions import FOR_EACH, TRANSFORM, expand

CONCERNS = {"network": "Network", "compute": "Compute", "data": "Data", "iam": "IAM"}
# By the resource type's service (the part after AWS::).
SERVICE_CONCERN = {
    "EC2": "network",
    "ElasticLoadBalancingV2": "network",
    "CertificateManager": "network",
    "Route53": "network",
    "RDS": "data",
    "ElastiCache": "data",
    "S3": "data",
    "SecretsManager": "data",
    "SSM": "data",
    "IAM": "iam",
}
COMPUTE_TYPES = {"AWS::EC2::Instance", "AWS::EC2::LaunchTemplate", "AWS::AutoScaling::AutoScalingGroup"}
EDGE_TYPES = {"AWS::EC2::SecurityGroupIngress"}  # drawn as edges, not nodes
SSM_NODE = "SsmParameters"


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    concern: str


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    dotted: bool = False  # membership, not traffic


def _concern(resource_type: str) -> str:
    if resource_type in COMPUTE_TYPES:
        return "compute"
    return SERVICE_CONCERN.get(resource_type.split("::")[1], "network")


def _node_id(name: str) -> str:
    """A resource's id as a diagram node: a loop's &{Identifier} becomes _Identifier."""
    return re.sub(r"[&$]\{(\w+)\}", r"_\1", name)


def _ref_target(value: object) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
        whole = re.fullmatch(r"\$\{([^.]+)\}", value["Fn::Sub"]) if isinstance(value.get("Fn::Sub"), str) else None
        if whole:  # "${Name}": a Ref written as a Sub (how a loop's resources refer to each other)
            return _node_id(whole.group(1))
    return None


def resources_to_draw(template: dict) -> dict[str, tuple[dict, str]]:
    """The resources to draw, by node id, each with a note: loops over a fixed list expanded, each resource of
    a loop over a parameter once, noted as one per item of that parameter."""
    drawn: dict[str, tuple[dict, str]] = {}
    for name, resource in template["Resources"].items():
        if not name.startswith(FOR_EACH):
            drawn[name] = (resource, "")
            continue
        _, collection, fragment = resource
        if isinstance(collection, list):
            loop = {"Transform": TRANSFORM, "Resources": {name: resource}}
            drawn.update({n: (r, "") for n, r in expand(loop, {})["Resources"].items()})
        else:
            drawn.update({_node_id(n): (r, f"one per {collection['Ref']} item") for n, r in fragment.items()})
    return drawn


def nodes(template: dict) -> list[Node]:
    result = []
    ssm = 0
    for name, (resource, note) in resources_to_draw(template).items():
        kind = resource["Type"]
        if kind in EDGE_TYPES:
            continue
        if kind == "AWS::SSM::Parameter":
            ssm += 1
            continue
        condition = f" (if {resource['Condition']})" if "Condition" in resource else ""
        note = f"<br/>{note}" if note else ""
        result.append(Node(name, f"{name}{condition}<br/>{kind}{note}", _concern(kind)))
    if ssm:
        result.append(Node(SSM_NODE, f"SSM parameters /prefix/* ({ssm})<br/>AWS::SSM::Parameter", "data"))
    clients = {_ref_target(r["Properties"].get("CidrIp")) for r in _ingress_rules(template)} - {None}
    result += [Node(f"cidr_{p}", f"clients in {p}", "network") for p in sorted(clients)]
    return result


def _ingress_rules(template: dict) -> list[dict]:
    return [r for r, _ in resources_to_draw(template).values() if r["Type"] in EDGE_TYPES]


def security_group_flows(template: dict) -> list[Edge]:
    edges = []
    for rule in _ingress_rules(template):
        p = rule["Properties"]
        source = _ref_target(p.get("SourceSecurityGroupId"))
        if source is None:
            source = f"cidr_{_ref_target(p['CidrIp'])}"
        condition = f" if {rule['Condition']}" if "Condition" in rule else ""
        port = str(p["FromPort"]) if p["FromPort"] == p["ToPort"] else f"{p['FromPort']}-{p['ToPort']}"
        edges.append(Edge(source, _ref_target(p["GroupId"]), f"{p['IpProtocol']} {port}{condition}"))
    return edges


def _instance_profile(resource: dict) -> Any:
    p = resource.get("Properties", {})
    if resource["Type"] == "AWS::EC2::LaunchTemplate":
        profile = p["LaunchTemplateData"].get("IamInstanceProfile", {})
        return profile.get("Arn") or profile.get("Name")
    return p.get("IamInstanceProfile")


def _launch_template(resource: dict) -> Any:
    p = resource.get("Properties", {})
    spec = p.get("LaunchTemplate") or p.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get(
        "LaunchTemplateSpecification", {}
    )
    return spec.get("LaunchTemplateId")


def role_edges(template: dict) -> list[Edge]:
    edges = []
    for name, (resource, _) in resources_to_draw(template).items():
        p = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::InstanceProfile":
            edges += [Edge(_ref_target(role), name, "role of") for role in p.get("Roles", [])]
        if resource["Type"] in ("AWS::EC2::Instance", "AWS::EC2::LaunchTemplate") and _ref_target(
            _instance_profile(resource)
        ):
            edges.append(Edge(_ref_target(_instance_profile(resource)), name, "instance profile of"))
        if resource["Type"] == "AWS::AutoScaling::AutoScalingGroup" and _ref_target(_launch_template(resource)):
            edges.append(Edge(name, _ref_target(_launch_template(resource)), "launches from"))
    return edges


SECURITY_GROUP_PROPERTIES = ("SecurityGroupIds", "SecurityGroups", "VPCSecurityGroups")


def membership_edges(template: dict) -> list[Edge]:
    """Which security group each resource sits in."""
    edges = []
    for name, (resource, _) in resources_to_draw(template).items():
        p = resource.get("Properties", {})
        if resource["Type"] == "AWS::EC2::LaunchTemplate":
            p = p["LaunchTemplateData"]
        groups = [g for prop in SECURITY_GROUP_PROPERTIES if isinstance(p.get(prop), list) for g in p[prop]]
        # A launch template's network interfaces carry its groups (EC2 refuses SecurityGroupIds beside them).
        groups += [g for interface in p.get("NetworkInterfaces", []) for g in interface.get("Groups", [])]
        for group in groups:
            if _ref_target(group):
                edges.append(Edge(_ref_target(group), name, "in", dotted=True))
    return edges


def edges(template: dict) -> list[Edge]:
    every = security_group_flows(template) + role_edges(template) + membership_edges(template)
    return sorted(every, key=lambda e: (e.dotted, e.source, e.target, e.label))


def mermaid(template: dict) -> str:
    lines = ["flowchart LR"]
    all_nodes = nodes(template)
    for concern, title in CONCERNS.items():
        if not any(n.concern == concern for n in all_nodes):
            continue  # the worker pool's template has no data
        lines.append(f"  subgraph {concern} [{title}]")
        lines += [f'    {n.id}["{n.label}"]' for n in all_nodes if n.concern == concern]
        lines.append("  end")
    lines += [f"  {e.source} {'-.->' if e.dotted else '-->'}|{e.label}| {e.target}" for e in edges(template)]
    return "\n".join(lines) + "\n"


def dot(template: dict) -> str:
    lines = ["digraph valohai {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    all_nodes = nodes(template)
    for concern, title in CONCERNS.items():
        if not any(n.concern == concern for n in all_nodes):
            continue
        lines.append(f'  subgraph cluster_{concern} {{ label="{title}";')
        for n in all_nodes:
            if n.concern == concern:
                label = n.label.replace("<br/>", "\\n")
                lines.append(f'    {n.id} [label="{label}"];')
        lines.append("  }")
    lines += [
        f'  {e.source} -> {e.target} [label="{e.label}"{", style=dashed" if e.dotted else ""}];'
        for e in edges(template)
    ]
    return "\n".join([*lines, "}"]) + "\n"


def readme_section(template: dict) -> str:
    return f"```mermaid\n{mermaid(template)}```"
