"""The parameter specs shipped with the package (valohai_cfn/parameter_specs.json): what a fresh build has,
never older than the code, and read without building the template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cfn import REPO
from click.testing import CliRunner

from valohai_cfn import specs
from valohai_cfn.cli import common
from valohai_cfn.cli.publish import link_command
from valohai_cfn.render import template_dict
from valohai_cfn.template import build_template


@pytest.fixture
def fresh_specs():
    specs._specs.cache_clear()
    yield
    specs._specs.cache_clear()


def test_committed_specs_are_what_the_code_builds():
    assert specs.SPECS_FILE.read_text(encoding="utf-8") == specs.specs_text(), (
        "valohai_cfn/parameter_specs.json is stale: run `make template` and commit the result"
    )


def test_specs_are_the_built_templates_in_its_order(fresh_specs):
    built = template_dict(build_template())
    assert list(specs.parameters().items()) == list(built["Parameters"].items())
    interface = built["Metadata"]["AWS::CloudFormation::Interface"]
    assert specs.parameter_labels() == interface["ParameterLabels"]


def test_the_file_is_used_only_while_it_matches_the_sources(tmp_path, monkeypatch, fresh_specs):
    """A file made for other sources (a stack module changed since `make template`) is not believed: the
    answer comes from a build instead, so it is never older than the code."""
    made_up = {"Parameters": {"OnlyInTheFile": {"Type": "String"}}, "ParameterLabels": {}}
    monkeypatch.setattr(specs, "SPECS_FILE", tmp_path / "parameter_specs.json")
    specs.SPECS_FILE.write_text(json.dumps({"fingerprint": specs.source_fingerprint(), **made_up}))
    assert list(specs.parameters()) == ["OnlyInTheFile"]

    specs._specs.cache_clear()
    specs.SPECS_FILE.write_text(json.dumps({"fingerprint": "0" * 64, **made_up}))
    assert specs.parameters() == template_dict(build_template())["Parameters"]

    specs._specs.cache_clear()
    specs.SPECS_FILE.unlink()
    assert specs.parameters() == template_dict(build_template())["Parameters"]


def test_the_fingerprint_covers_every_file_the_build_reads():
    """Building imports valohai_cfn modules and reads the boot scripts; each is in the fingerprint, so a change
    to any of them makes the shipped specs stale. A new module the build imports fails here until SOURCES
    lists it."""
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, json\n"
            "from valohai_cfn.template import build_template\n"
            "build_template()\n"
            "print(json.dumps([m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'valohai_cfn']))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fingerprinted = {p.resolve() for p in specs._source_files()}
    assert {Path(f).resolve() for f in json.loads(listed)} <= fingerprinted
    userdata = specs.PACKAGE / "userdata"
    assert {p.resolve() for p in userdata.iterdir() if p.suffix in (".sh", ".config")} <= fingerprinted


def test_link_offers_the_built_templates_parameters_in_its_json_order(fresh_specs):
    """`link` reads the specs instead of building: the same link, its values in the same order, as from the
    built template."""
    from valohai_cfn.params import load_parameters
    from valohai_cfn.publish import quick_create_url

    url = "https://b.s3.amazonaws.com/t.json"
    params_file = REPO / "params" / "example.json"
    result = CliRunner().invoke(
        link_command, ["--template-url", url, "--region", "us-east-1", "--params", str(params_file)]
    )
    assert result.exit_code == 0, result.output
    expected = quick_create_url(
        region="us-east-1",
        template_url=url,
        stack_name=None,
        parameters=load_parameters(params_file),
        template_parameters=common.built_source().specs,
    )
    assert expected.count("param_") > 2 and expected in result.output
