"""The ports table of SPEC.md, checked on the rendered template: every allowed flow, and no other."""

from __future__ import annotations

import re

import pytest
from cfn import Evaluator, resolve, resources_of_type

from valohai_cfn.stack.parameters import IPV4_CIDR_NOT_WORLD

# (source, target security group, port, parameters that switch the flow on). A source is a security
# group logical id, or "param:<Name>" for a CIDR parameter.
SPEC_FLOWS = [
    (
        "param:AllowedIngressCidr",
        "LoadBalancerSecurityGroup",
        443,
        {"CertificateArn": "arn:aws:acm:eu-west-1:111111111111:certificate/abc"},
    ),
    ("param:AllowedIngressCidr", "LoadBalancerSecurityGroup", 80, {}),
    ("LoadBalancerSecurityGroup", "MasterSecurityGroup", 8000, {}),
    ("WorkersSecurityGroup", "MasterSecurityGroup", 8000, {}),
    ("MasterSecurityGroup", "DatabaseSecurityGroup", 5432, {}),
    ("MasterSecurityGroup", "QueueSecurityGroup", 6379, {}),
    ("WorkersSecurityGroup", "QueueSecurityGroup", 6379, {}),
]
EVERYTHING_ON = {"CertificateArn": "arn:aws:acm:eu-west-1:111111111111:certificate/abc"}


def _group_id(value: dict) -> str:
    assert list(value) == ["Fn::GetAtt"] and value["Fn::GetAtt"][1] == "GroupId", value
    return value["Fn::GetAtt"][0]


def _source(rule: dict) -> str:
    if "SourceSecurityGroupId" in rule:
        return _group_id(rule["SourceSecurityGroupId"])
    cidr = rule["CidrIp"]
    return f"param:{cidr['Ref']}" if isinstance(cidr, dict) else cidr


def ingress_flows(template: dict) -> set[tuple[str, str, int]]:
    """Every (source, target, port) that the template opens, inline or as separate rules."""
    flows = set()
    for rule_resource in resources_of_type(template, "AWS::EC2::SecurityGroupIngress").values():
        rule = rule_resource["Properties"]
        assert rule["FromPort"] == rule["ToPort"], rule
        assert rule.get("Description"), f"every rule has a Description: {rule}"
        flows.add((_source(rule), _group_id(rule["GroupId"]), rule["FromPort"]))
    for name, group in resources_of_type(template, "AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            flows.add((_source(rule), name, rule["FromPort"]))
    return flows


@pytest.mark.parametrize(("source", "target", "port", "switch"), SPEC_FLOWS)
def test_spec_flow_exists_when_switched_on(template, source, target, port, switch):
    assert (source, target, port) in ingress_flows(resolve(template, switch))


@pytest.mark.parametrize(("source", "target", "port", "switch"), [f for f in SPEC_FLOWS if f[3]])
def test_optional_flow_is_absent_by_default(template, source, target, port, switch):
    assert (source, target, port) not in ingress_flows(resolve(template))


@pytest.mark.parametrize("overrides", [{}, EVERYTHING_ON], ids=["defaults", "everything-on"])
def test_no_flow_beyond_the_spec(template, overrides):
    allowed = {(s, t, p) for s, t, p, _ in SPEC_FLOWS}
    assert ingress_flows(resolve(template, overrides)) <= allowed


def test_nothing_reaches_workers(template):
    assert not [f for f in ingress_flows(resolve(template, EVERYTHING_ON)) if f[1] == "WorkersSecurityGroup"]


def test_only_the_load_balancer_is_open_to_the_world(template):
    """0.0.0.0/0 appears only as the default of AllowedIngressCidr, which reaches the load balancer alone."""
    world = [f for f in ingress_flows(resolve(template, EVERYTHING_ON)) if f[0] == "0.0.0.0/0"]
    assert world == []
    defaults = {n: p.get("Default") for n, p in template["Parameters"].items()}
    world_params = {n for n, d in defaults.items() if d == "0.0.0.0/0"}
    assert world_params == {"AllowedIngressCidr"}
    flows = ingress_flows(resolve(template, EVERYTHING_ON))
    assert {t for s, t, _ in flows if s == "param:AllowedIngressCidr"} == {"LoadBalancerSecurityGroup"}


def test_ssh_is_the_ssh_templates_one_rule_into_the_app_group(template, ssh_template):
    """SPEC's SSH → app 22 flow lives in the SSH template (templates/valohai-ssh.*), into the group the
    installation's AppSecurityGroupId output names: the app instance's. The installation opens no port 22."""
    assert not [f for f in ingress_flows(resolve(template, EVERYTHING_ON)) if f[2] == 22]
    assert template["Outputs"]["AppSecurityGroupId"]["Value"] == {"Fn::GetAtt": ["MasterSecurityGroup", "GroupId"]}
    (rule,) = resources_of_type(ssh_template, "AWS::EC2::SecurityGroupIngress").values()
    assert ssh_template["Resources"] == {"MasterSshIngress": rule} and "Condition" not in rule
    assert rule["Properties"] == {
        "GroupId": {"Ref": "AppSecurityGroupId"},
        "CidrIp": {"Ref": "SshIngressCidr"},
        "IpProtocol": "tcp",
        "FromPort": 22,
        "ToPort": 22,
        "Description": "SSH from the operator network",
    }
    assert ssh_template["Parameters"]["AppSecurityGroupId"]["Type"] == "AWS::EC2::SecurityGroup::Id"


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "10.0.0.0/0", ""])
def test_ssh_cidr_pattern_refuses_the_world(ssh_template, cidr):
    """Required, and never the whole internet (the original allowed it)."""
    spec = ssh_template["Parameters"]["SshIngressCidr"]
    assert "Default" not in spec
    assert re.fullmatch(spec["AllowedPattern"], cidr) is None
    assert re.fullmatch(spec["AllowedPattern"], "203.0.113.10/32")
    assert spec["AllowedPattern"] == f"^{IPV4_CIDR_NOT_WORLD}$"


def test_database_and_queue_have_no_real_egress(template):
    for name in ("DatabaseSecurityGroup", "QueueSecurityGroup"):
        egress = template["Resources"][name]["Properties"]["SecurityGroupEgress"]
        assert all(rule["CidrIp"] == "255.255.255.255/32" and rule["IpProtocol"] == "icmp" for rule in egress), name
    for name in ("MasterSecurityGroup", "WorkersSecurityGroup", "LoadBalancerSecurityGroup"):
        egress = template["Resources"][name]["Properties"]["SecurityGroupEgress"]
        assert any(rule["CidrIp"] == "0.0.0.0/0" for rule in egress), name


def test_security_group_names_follow_the_prefix(template):
    evaluate = Evaluator(template, {"ResourcePrefix": "vh"})
    groups = resources_of_type(template, "AWS::EC2::SecurityGroup")
    names = {evaluate(g["Properties"]["GroupName"]) for g in groups.values()}
    assert names == {f"vh-sg-{n}" for n in ("workers", "master", "database", "queue", "loadbalancer")}
