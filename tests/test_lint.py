"""cfn-lint, informational rules included, finds nothing in the template; and it can find something."""

from __future__ import annotations

import json

from cfn import REPO
from click.testing import CliRunner

from valohai_cfn.cli import cli
from valohai_cfn.lint import DEFAULT_REGIONS, format_matches, lint_path, lint_text


def test_template_is_clean_in_three_regions(template_json):
    assert set(DEFAULT_REGIONS) == {"us-east-1", "eu-west-1", "ap-southeast-2"}
    matches = lint_text(template_json, DEFAULT_REGIONS)
    assert matches == [], format_matches(matches)


def test_committed_yaml_is_clean():
    matches = lint_path(REPO / "templates" / "valohai-self-hosted.yaml", DEFAULT_REGIONS)
    assert matches == [], format_matches(matches)


def test_lint_reports_a_broken_template(template):
    broken = json.loads(json.dumps(template))
    broken["Resources"]["Database"]["Properties"]["EngineVersion"] = "9.6.1"
    del broken["Resources"]["DataBucket"]["DeletionPolicy"]
    ids = {m.rule.id for m in lint_text(json.dumps(broken), ["us-east-1"], filename="broken.json")}
    assert {"W3691", "W3011"} <= ids


def test_lint_command_fails_on_findings(tmp_path, template):
    broken = json.loads(json.dumps(template))
    broken["Resources"]["Database"]["Properties"]["Bogus"] = 1
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken, indent=1))
    result = CliRunner().invoke(cli, ["lint", "--template", str(path), "--region", "us-east-1"])
    assert result.exit_code == 1
    assert "E3002" in result.output and f"{path}:" in result.output


def test_lint_command_passes_on_the_built_template():
    result = CliRunner().invoke(cli, ["lint", "--region", "eu-west-1"])
    assert result.exit_code == 0, result.output
    assert "no findings" in result.output


def test_lint_refuses_two_choices_of_what_to_lint(tmp_path):
    """`lint --pool --ssh` linted the pool alone and said nothing of SSH; `--template F --pool` linted F alone."""
    template = tmp_path / "t.json"
    template.write_text("{}")
    for args, named in (
        (["--pool", "--ssh"], "--pool and --ssh"),
        (["--template", str(template), "--pool"], "--template and --pool"),
        (["--template", str(template), "--pool", "--ssh"], "--template and --pool and --ssh"),
    ):
        result = CliRunner().invoke(cli, ["lint", *args])
        assert result.exit_code == 2, (args, result.output)
        assert f"Error: {named} each choose what to lint" in result.output, result.output
