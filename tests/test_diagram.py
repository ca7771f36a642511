"""The diagram is drawn from the template: every security-group flow of SPEC.md, and no other."""

from __future__ import annotations

import re
import shutil

import pytest
from click.testing import CliRunner
from test_network import SPEC_FLOWS

from valohai_cfn import diagram
from valohai_cfn.cli import cli

FLOW_EDGE = re.compile(r"^  (\S+) -->\|tcp (\d+)(?: if \w+)?\| (\S+)$", re.MULTILINE)


def _spec_edges() -> set[tuple[str, str, int]]:
    return {(s.replace("param:", "cidr_"), t, p) for s, t, p, _ in SPEC_FLOWS}


def test_mermaid_holds_exactly_the_spec_flows(raw_template):
    drawn = {(s, t, int(p)) for s, p, t in FLOW_EDGE.findall(diagram.mermaid(raw_template))}
    assert drawn == _spec_edges()


def test_a_flow_the_template_lacks_is_not_drawn(raw_template):
    trimmed = {
        **raw_template,
        "Resources": {k: v for k, v in raw_template["Resources"].items() if k != "MasterFromWorkersIngress"},
    }
    drawn = {(s, t, int(p)) for s, p, t in FLOW_EDGE.findall(diagram.mermaid(trimmed))}
    assert ("WorkersSecurityGroup", "MasterSecurityGroup", 8000) not in drawn
    assert drawn == _spec_edges() - {("WorkersSecurityGroup", "MasterSecurityGroup", 8000)}


def test_role_profile_instance_chain(raw_template):
    text = diagram.mermaid(raw_template)
    assert "  MasterRole -->|role of| MasterInstanceProfile" in text
    assert "  MasterInstanceProfile -->|instance profile of| RoiInstance" in text
    assert "  WorkerRole -->|role of| WorkerInstanceProfile" in text


def test_every_resource_is_drawn_in_its_concern(raw_template):
    text = diagram.mermaid(raw_template)
    for name, (resource, _) in diagram.resources_to_draw(raw_template).items():
        if resource["Type"] not in ("AWS::EC2::SecurityGroupIngress", "AWS::SSM::Parameter"):
            assert f'    {name}["' in text, name
    compute = text.split("subgraph compute")[1].split("end")[0]
    assert "RoiInstance" in compute and "Database" not in compute


def test_worker_groups_are_drawn_once_each_as_one_per_type(raw_template):
    text = diagram.mermaid(raw_template)
    compute = text.split("subgraph compute")[1].split("end")[0]
    for kind, parameter in (("", "WorkerInstanceTypes"), ("Spot", "WorkerSpotInstanceTypes")):
        group, launch_template = f"{kind}WorkerGroup_InstanceType", f"{kind}WorkerLaunchTemplate_InstanceType"
        assert f"{group} (if Has{kind or 'OnDemand'}Workers)" in compute
        assert f"one per {parameter} item" in compute
        assert f"  {group} -->|launches from| {launch_template}" in text
        assert f"  WorkerInstanceProfile -->|instance profile of| {launch_template}" in text
        assert f"  WorkersSecurityGroup -.->|in| {launch_template}" in text
    assert "SSM parameters /prefix/* (16)" in text


def test_dot_has_the_same_flows(raw_template):
    dot = diagram.dot(raw_template)
    drawn = {(s, t, int(p)) for s, t, p in re.findall(r'^  (\S+) -> (\S+) \[label="tcp (\d+)', dot, re.MULTILINE)}
    assert drawn == _spec_edges()


def test_svg_without_graphviz_says_so_in_one_line(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    result = CliRunner().invoke(cli, ["diagram", "--format", "svg"])
    assert result.exit_code == 1
    assert result.output == "Error: SVG needs Graphviz's dot, which is not installed (Debian package graphviz)\n"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_with_graphviz(tmp_path):
    out = tmp_path / "d.svg"
    result = CliRunner().invoke(cli, ["diagram", "--format", "svg", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text()
