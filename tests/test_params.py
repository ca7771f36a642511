"""Parameter files: every accepted format, the CDK config import, the offline check, init; no input
gives a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfn import REPO
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valohai_cfn.cli import cli
from valohai_cfn.cli import common as cli_common
from valohai_cfn.params import (
    NUMBER,
    WHOLE_NUMBER_PARAMETERS,
    ParamsError,
    check_parameters,
    check_value,
    dump_parameters,
    import_cdk_config,
    load_parameters,
)
from valohai_cfn.template import build_template

SPECS = build_template().to_dict()["Parameters"]
EXAMPLE = REPO / "params" / "example.json"
EXAMPLE_VALUES = load_parameters(EXAMPLE)


def params_check(path):
    return CliRunner().invoke(cli, ["params", "check", str(path)])


# -- formats ----------------------------------------------------------------------------------------


def test_all_formats_give_the_same_parameters(tmp_path):
    values = EXAMPLE_VALUES
    files = {
        "list.json": json.dumps([{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]),
        "overrides.json": json.dumps([f"{k}={v}" for k, v in values.items()]),
        "pipeline.json": json.dumps({"Parameters": values}),
        "pipeline.yaml": "Parameters:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in values.items()),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert load_parameters(tmp_path / name) == values, name


def test_lists_in_a_file_become_comma_separated(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps({"Parameters": {"DatabaseSubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]}})
    )
    assert load_parameters(path) == {"DatabaseSubnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2"}


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.text(min_size=1).filter(lambda k: "=" not in k), st.text(), max_size=8))
def test_writing_and_reading_back_is_lossless(tmp_path, parameters):
    path = tmp_path / "roundtrip.json"
    path.write_text(dump_parameters(parameters), encoding="utf-8")
    assert load_parameters(path) == parameters


CDK_CONFIG = """aws_region: us-east-1
aws_account_id: 450886142693
lb_subnet_ids:
  - subnet-0aaaaaaaaaaaaaaa1
  - subnet-0aaaaaaaaaaaaaaa2
roi_subnet_id: subnet-0bbbbbbbbbbbbbbb1
db_subnet_ids:
  - subnet-0bbbbbbbbbbbbbbb1
  - subnet-0bbbbbbbbbbbbbbb2
cache_subnet_ids:
  - subnet-0bbbbbbbbbbbbbbb1
  - subnet-0bbbbbbbbbbbbbbb2
worker_subnet_ids:
  - subnet-0ccccccccccccccc1
  - subnet-0ccccccccccccccc2
vpc_id: vpc-0123456789abcdef0
environment_name: Valohai
domain: https://valohai.example.com
certificate_arn:
"""


def test_cdk_config_import_matches_the_example(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CDK_CONFIG)
    imported = import_cdk_config(config)
    assert imported["Domain"] == "valohai.example.com"
    assert "CertificateArn" not in imported, "an empty certificate_arn means none"
    assert imported == {k: v for k, v in EXAMPLE_VALUES.items() if k in imported}
    assert set(imported) == {
        "VpcId",
        "LoadBalancerSubnetIds",
        "RoiSubnetId",
        "DatabaseSubnetIds",
        "CacheSubnetIds",
        "WorkerSubnetIds",
        "EnvironmentName",
        "Domain",
    }


def test_params_import_command_writes_a_checkable_file(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(CDK_CONFIG)
    out = tmp_path / "prod.json"
    result = CliRunner().invoke(cli, ["params", "import", str(config), "-o", str(out)])
    assert result.exit_code == 0, result.output
    # The CDK app had no workers and no organization: what the user must add is named.
    assert "still required before deploying: OrganizationName, RoiAmiId, WorkerAmiId" in result.output
    entries = json.loads(out.read_text())
    entries.append({"ParameterKey": "RoiAmiId", "ParameterValue": "ami-0123456789abcdef0"})
    entries.append({"ParameterKey": "WorkerAmiId", "ParameterValue": "ami-0123456789abcdef1"})
    entries.append({"ParameterKey": "OrganizationName", "ParameterValue": "acme"})
    out.write_text(json.dumps(entries))
    assert params_check(out).exit_code == 0


# -- the offline check ------------------------------------------------------------------------------


def test_example_passes_the_check():
    result = params_check(EXAMPLE)
    assert result.exit_code == 0, result.output
    assert f"{len(SPECS)} parameters, all valid" in result.output


def test_every_problem_is_reported_one_line_each(tmp_path):
    bad = dict(EXAMPLE_VALUES)
    del bad["Domain"]
    bad.update(
        {
            "VpcID": "vpc-0123456789abcdef0",  # unknown, near VpcId
            "RoiInstanceType": "m5a.huge",  # AllowedValues
            "ResourcePrefix": "Valohai",  # AllowedPattern
            "RoiVolumeSize": "8",  # MinValue
            "DatabaseAllocatedStorage": "lots",  # not a number
            "EnvironmentName": "x" * 65,  # MaxLength
            "DatabaseSubnetIds": "subnet-0bbbbbbbbbbbbbbb1,sg-0123456789abcdef0",  # a list item of the wrong type
            "RoiAmiId": "ami-xyz",  # id format
        }
    )
    path = tmp_path / "bad.json"
    path.write_text(dump_parameters(bad))
    result = params_check(path)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith(f"{path}: ") and "problem(s)" not in line]
    expected = {
        "VpcID": "did you mean VpcId?",
        "RoiInstanceType": "not one of",
        "ResourcePrefix": "AllowedPattern",
        "RoiVolumeSize": "below MinValue 32",
        "DatabaseAllocatedStorage": "not a number",
        "EnvironmentName": "longer than MaxLength 64",
        "DatabaseSubnetIds": "not an AWS::EC2::Subnet::Id",
        "RoiAmiId": "not an AWS::EC2::Image::Id",
        "Domain": "required",
    }
    assert len(lines) == len(expected), result.output
    for name, rule in expected.items():
        assert any(line.startswith(f"{path}: {name}") and rule in line for line in lines), (name, result.output)
    assert "'m5a.huge'" in result.output, "the value is named"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'[{"ParameterKey": "VpcId",\n  "ParameterValue": ', "line 2"),
        (b"", "the file is empty"),
        (b"\x00\x01\x02binary", "a binary file"),
        (b"\xff\xfe\xfa", "not a text file"),
        (b'{"Parameters": {"Domain": {"nested": true}}}', "Domain: expected a string"),
        (b'[{"ParameterKey": "Domain", "ParameterValue": [["a"]]}]', "Domain: expected a string"),
        (b'"just a string"', "not a parameter file"),
        (b"[42]", "entry 1 is neither"),
    ],
)
def test_unreadable_files_give_one_clear_line(tmp_path, content, message):
    path = tmp_path / "params.json"
    path.write_bytes(content)
    result = params_check(path)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert result.output.count("\n") == 1, result.output


def test_broken_yaml_names_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("Parameters:\n  Domain: [unclosed\n  VpcId: x\n")
    with pytest.raises(ParamsError, match=r"params.yaml: line \d+, column \d+: invalid YAML"):
        load_parameters(path)


def test_a_directory_is_not_a_params_file(tmp_path):
    result = params_check(tmp_path)
    assert result.exit_code == 2 and "is a directory" in result.output


PARAMETER_NAMES = sorted(SPECS)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(PARAMETER_NAMES), value=st.text())
def test_any_value_gives_problems_or_none_never_a_crash(name, value):
    problems = check_value(name, value, SPECS[name])
    for problem in problems:
        text = str(problem)
        assert text.startswith(name) and "\n" not in text


@settings(max_examples=200, deadline=None)
@given(value=st.text().filter(lambda v: not re.fullmatch(r"subnet-[0-9a-f]{8}([0-9a-f]{9})?", v)))
def test_bad_subnet_ids_are_refused(value):
    assert check_value("RoiSubnetId", value, SPECS["RoiSubnetId"])


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.text(), st.integers().map(str), st.floats().map(str)))
def test_bad_numbers_are_refused(value):
    spec = SPECS["RoiVolumeSize"]
    try:
        # Whole GiB only: EC2 refuses 80.5 at deploy, after the database is made (QA).
        accepted = bool(NUMBER.fullmatch(value)) and float(value).is_integer() and 32 <= float(value) <= 1024
    except ValueError:
        accepted = False
    assert bool(check_value("RoiVolumeSize", value, spec)) is not accepted


def test_every_number_parameter_is_held_to_whole_numbers_or_said_otherwise():
    """Each Number parameter of the template reaches a property AWS takes as an integer: a new one is a decision
    (add it to WHOLE_NUMBER_PARAMETERS, or say why a fraction is fine), not a deploy that fails."""
    numbers = {name for name, spec in SPECS.items() if spec["Type"] == "Number"}
    assert numbers == WHOLE_NUMBER_PARAMETERS
    for name in numbers:
        (problem,) = check_value(name, "100.5", SPECS[name])
        assert problem.rule.startswith("not a whole number"), problem


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(PARAMETER_NAMES), value=st.text(alphabet=st.characters(blacklist_categories=["Cs"])))
def test_cli_check_of_any_value_is_exit_0_or_2(tmp_path, name, value):
    path = tmp_path / "fuzz.json"
    path.write_text(dump_parameters({**EXAMPLE_VALUES, name: value}), encoding="utf-8")
    result = params_check(path)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- init -------------------------------------------------------------------------------------------

REQUIRED = {
    "VpcId": "vpc-0123456789abcdef0",
    "LoadBalancerSubnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
    "RoiSubnetId": "subnet-0bbbbbbbbbbbbbbb1",
    "DatabaseSubnetIds": "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2",
    "CacheSubnetIds": "subnet-0bbbbbbbbbbbbbbb1",
    "WorkerSubnetIds": "subnet-0ccccccccccccccc1",
    "Domain": "valohai.example.com",
    "RoiAmiId": "ami-0123456789abcdef0",
    "OrganizationName": "acme",
    "WorkerAmiId": "ami-0123456789abcdef1",
}


def test_init_with_set_writes_every_parameter(tmp_path):
    out = tmp_path / "prod.json"
    result = CliRunner().invoke(
        cli, ["params", "init", "-o", str(out), *[f"--set={k}={v}" for k, v in REQUIRED.items()]]
    )
    assert result.exit_code == 0, result.output
    written = load_parameters(out)
    assert set(written) == set(SPECS)
    assert check_parameters(SPECS, written) == []
    assert written["RoiInstanceType"] == "m5a.xlarge"


def test_init_without_a_terminal_names_what_is_missing(tmp_path):
    out = tmp_path / "prod.json"
    result = CliRunner().invoke(cli, ["params", "init", "-o", str(out), "--set", "Domain=valohai.example.com"])
    assert result.exit_code == 2
    assert "VpcId: required" in result.output and not out.exists()


def test_init_refuses_unknown_keys(tmp_path):
    result = CliRunner().invoke(cli, ["params", "init", "-o", str(tmp_path / "x.json"), "--set", "Domian=x"])
    assert result.exit_code == 2 and "did you mean Domain?" in result.output


def test_init_prompts_in_a_terminal_with_label_and_description(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_common, "interactive", lambda: True)
    given = {k: v for k, v in REQUIRED.items() if k != "VpcId"}
    answers = "vpc-nope\nvpc-0123456789abcdef0\n"  # a bad answer is asked again
    out = tmp_path / "prod.json"
    result = CliRunner().invoke(
        cli, ["params", "init", "-o", str(out), *[f"--set={k}={v}" for k, v in given.items()]], input=answers
    )
    assert result.exit_code == 0, result.output
    assert "VPC (VpcId): The installation's VPC." in result.output
    assert "not an AWS::EC2::VPC::Id" in result.output
    assert load_parameters(out)["VpcId"] == "vpc-0123456789abcdef0"


# -- worker types: what the template's constraints cannot say --------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "parameter", "rule"),
    [
        (
            {"WorkerInstanceTypes": "t3.mediun"},
            "WorkerInstanceTypes",
            "t3.mediun is not an EC2 instance type; did you mean t3.medium?",
        ),
        (
            {"WorkerSpotInstanceTypes": "g4dn.xlarge,g4dn.xlarge"},
            "WorkerSpotInstanceTypes",
            "g4dn.xlarge is listed twice",
        ),
        (
            {"WorkerInstanceTypes": "", "WorkerSpotInstanceTypes": ""},
            "WorkerInstanceTypes and WorkerSpotInstanceTypes",
            "no worker type at all",
        ),
        ({"WorkerMaxSize": "0"}, "WorkerMaxSize", "below MinValue 1"),
        ({"WorkerInstanceTypes": "t3.medium,"}, "WorkerInstanceTypes", "an empty item"),
        # The list of types says what the pattern cannot: which type was meant.
        (
            {"WorkerInstanceTypes": "t3 medium"},
            "WorkerInstanceTypes",
            "not an EC2 instance type; did you mean t3.medium",
        ),
    ],
)
def test_bad_worker_types_are_named_with_their_value(tmp_path, changes, parameter, rule):
    path = tmp_path / "workers.json"
    path.write_text(dump_parameters({**EXAMPLE_VALUES, **changes}))
    result = params_check(path)
    assert result.exit_code == 2
    (line,) = result.output.splitlines()  # one problem: one line
    assert line.startswith(f"Error: {path}: {parameter}") and rule in line, result.output
    value = changes.get(parameter)
    if value:
        assert repr(value) in line, "the value is named"


def test_a_type_in_both_lists_is_two_groups_not_a_duplicate(tmp_path):
    path = tmp_path / "workers.json"
    path.write_text(
        dump_parameters({**EXAMPLE_VALUES, "WorkerInstanceTypes": "t3.medium", "WorkerSpotInstanceTypes": "t3.medium"})
    )
    assert params_check(path).exit_code == 0


@pytest.mark.parametrize("stream", ["/dev/zero", "/dev/urandom"])
def test_a_stream_is_read_to_its_limit_never_whole(stream):
    """A device or a pipe has no size to stat: it is read to one byte past the limit (QA: params check
    /dev/zero grew to 5 GB in seconds)."""
    with pytest.raises(ParamsError, match=r"over 1,000,000 bytes, too large for a parameter file"):
        load_parameters(Path(stream))


def _checked_against(tmp_path: Path, parameter: str, value: str) -> Any:
    """`params check --template` of a one-parameter template (`parameter`: its YAML spec, named P) and value."""
    template = tmp_path / "t.yaml"
    template.write_text(
        f"Parameters:\n  P: {parameter}\nResources:\n  X:\n    Type: AWS::SNS::Topic\n"
        "    Properties: {TopicName: !Ref P}\n"
    )
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"Parameters": {"P": value}}))
    return CliRunner().invoke(cli, ["params", "check", str(params), "--template", str(template)])


def test_params_check_never_shows_a_noecho_value(tmp_path: Path):
    """QA (#21 round 2): `params check --template` echoed a NoEcho parameter's value in its problem line."""
    spec = "{Type: String, NoEcho: true, AllowedPattern: '[a-z]+', ConstraintDescription: 'lowercase letters'}"
    result = _checked_against(tmp_path, spec, "Hunter2-TOPSECRET")
    assert result.exit_code == 2, result.output
    assert "TOPSECRET" not in result.output and "P = ****: AllowedPattern: must be lowercase" in result.output


def test_an_allowed_pattern_without_constraint_description_reads_as_english(tmp_path: Path):
    result = _checked_against(tmp_path, "{Type: String, AllowedPattern: '[a-z]+'}", "ABC")
    assert result.exit_code == 2, result.output
    assert "P = 'ABC': AllowedPattern: does not match [a-z]+" in result.output, result.output


NOECHO_TEMPLATE = """\
Parameters:
  Secret: {Type: String, NoEcho: true, MinLength: 12, AllowedPattern: '^[A-Za-z0-9]+$'}
Resources:
  T: {Type: AWS::SNS::Topic, Properties: {DisplayName: !Ref Secret}}
"""


def test_a_malformed_set_never_prints_its_value(tmp_path):
    """QA (#21 round 3): `--set Secret:hunter2hunter2` (a colon for the equals sign) was refused with the whole
    argument quoted: the NoEcho value was printed (every well-formed --set problem masks it as ****)."""
    template = tmp_path / "noecho.yaml"
    template.write_text(NOECHO_TEMPLATE)
    params = tmp_path / "p.json"
    params.write_text('{"Parameters": {"Secret": "abcdefghijklm"}}')
    result = CliRunner().invoke(
        cli,
        [
            *("plan", "--stack-name", "s", "--params", str(params), "--template", str(template)),
            *("--set", "Secret:hunter2hunter2", "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "hunter2hunter2" not in result.output, result.output
    assert "Invalid value for --set: item 1 is not KEY=VALUE" in result.output, result.output
