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


def test_mermaid_holds_exactly_the_spec_flows(template):
    drawn = {(s, t, int(p)) for s, p, t in FLOW_EDGE.findall(diagram.mermaid(template))}
    assert drawn == _spec_edges()


def test_a_flow_the_template_lacks_is_not_drawn(template):
    trimmed = {
        **template,
        "Resources": {k: v for k, v in template["Resources"].items() if k != "MasterFromWorkersIngress"},
    }
    drawn = {(s, t, int(p)) for s, p, t in FLOW_EDGE.findall(diagram.mermaid(trimmed))}
    assert ("WorkersSecurityGroup", "MasterSecurityGroup", 8000) not in drawn
    assert drawn == _spec_edges() - {("WorkersSecurityGroup", "MasterSecurityGroup", 8000)}


def test_role_profile_instance_chain(template):
    text = diagram.mermaid(template)
    assert "  MasterRole -->|role of| MasterInstanceProfile" in text
    assert "  MasterInstanceProfile -->|instance profile of| RoiInstance" in text
    assert "  WorkerRole -->|role of| WorkerInstanceProfile" in text


def test_every_resource_is_drawn_in_its_concern(template):
    text = diagram.mermaid(template)
    for name, resource in template["Resources"].items():
        if resource["Type"] not in ("AWS::EC2::SecurityGroupIngress", "AWS::SSM::Parameter"):
            assert f'    {name}["' in text, name
    compute = text.split("subgraph compute")[1].split("end")[0]
    assert "RoiInstance" in compute and "Database" not in compute


def test_dot_has_the_same_flows(template):
    dot = diagram.dot(template)
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
