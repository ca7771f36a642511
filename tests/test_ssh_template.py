"""SSH to the app instance, a template of its own (templates/valohai-ssh.*, issue 20): built fresh from the
installation's network code, clean for cfn-lint; a parameter file that still gives the installation
SshIngressCidr is told what to do; and on the local AWS, an installation that had SSH loses its rule in a
reviewed update, and the SSH template puts it back into the group the installation's output names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfn import REPO
from click.testing import CliRunner
from test_deploy_local import run, with_parameter

from valohai_cfn.cli import cli
from valohai_cfn.lint import lint_text
from valohai_cfn.params import MOVED_PARAMETERS, dump_parameters, load_parameters
from valohai_cfn.render import TEMPLATE_BODY_LIMIT, render_json, render_yaml
from valohai_cfn.template import build_ssh_template

SSH_TEMPLATE = REPO / "templates" / "valohai-ssh.yaml"
MOVED = (
    "SshIngressCidr: SSH access is its own template now: remove it here and deploy templates/valohai-ssh.yaml "
    "with AppSecurityGroupId=<output AppSecurityGroupId>"
)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_committed_ssh_templates_are_what_the_code_builds(fmt):
    committed = (REPO / "templates" / f"valohai-ssh.{fmt}").read_text(encoding="utf-8")
    fresh = {"json": render_json, "yaml": render_yaml}[fmt](build_ssh_template())
    assert committed == fresh, "templates/ is stale: run `make template` and commit the result"
    assert len(fresh.encode()) <= TEMPLATE_BODY_LIMIT


def test_cfn_lint_finds_nothing_and_every_parameter_is_labelled_and_grouped(ssh_template):
    assert lint_text(json.dumps(ssh_template)) == []
    interface = ssh_template["Metadata"]["AWS::CloudFormation::Interface"]
    (group,) = interface["ParameterGroups"]
    assert group["Parameters"] == list(ssh_template["Parameters"]) == ["AppSecurityGroupId", "SshIngressCidr"]
    assert set(interface["ParameterLabels"]) == set(ssh_template["Parameters"])
    assert "Transform" not in ssh_template, "no loop in it: a plain template any tool deploys"


def test_readme_ssh_section_is_fresh(raw_template, ssh_template):
    from valohai_cfn.docs import render_readme

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "| `AppSecurityGroupId` | SSH to the app instance |" in readme
    assert render_readme(readme, raw_template, ssh=ssh_template) == readme, "README is stale: run `make docs`"


def test_the_installation_has_no_ssh_left_and_outputs_the_app_group(raw_template):
    assert "SshIngressCidr" not in raw_template["Parameters"]
    assert "AllowSsh" not in raw_template["Conditions"]
    assert "MasterSshIngress" not in raw_template["Resources"]
    assert "KeyPairName" in raw_template["Parameters"], "a launch property of the app instance: it stays"
    assert raw_template["Outputs"]["AppSecurityGroupId"] == {
        "Value": {"Fn::GetAtt": ["MasterSecurityGroup", "GroupId"]}
    }


def test_params_check_says_what_to_do_with_ssh_ingress_cidr(tmp_path):
    values = {**load_parameters(REPO / "params" / "example.json"), "SshIngressCidr": ""}
    path = tmp_path / "old.json"
    path.write_text(dump_parameters(values))
    result = CliRunner().invoke(cli, ["params", "check", str(path)])
    assert result.exit_code == 2
    assert result.output == f"Error: {path}: {MOVED}\n"


def test_params_check_checks_an_ssh_file_against_the_ssh_template(tmp_path):
    """QA (#20): an SSH parameter file was checked as the installation's (12 problems for a valid file). A file
    with AppSecurityGroupId is the SSH template's; --template checks against any template file."""
    valid = tmp_path / "ssh.json"
    valid.write_text(
        dump_parameters({"AppSecurityGroupId": "sg-0123456789abcdef0", "SshIngressCidr": "203.0.113.10/32"})
    )
    result = CliRunner().invoke(cli, ["params", "check", str(valid)])
    assert result.exit_code == 0, result.output
    assert "2 parameters, all valid for the built SSH template (valohai-ssh)" in result.output
    given = ["params", "check", str(valid), "--template", str(REPO / "templates" / "valohai-ssh.yaml")]
    result = CliRunner().invoke(cli, given)
    assert result.exit_code == 0 and "all valid for " in result.output, result.output
    # Against the SSH template's own constraints, not the installation's.
    world = tmp_path / "world.json"
    world.write_text(dump_parameters({"AppSecurityGroupId": "sg-0123456789abcdef0", "SshIngressCidr": "0.0.0.0/0"}))
    refused = CliRunner().invoke(cli, ["params", "check", str(world)])
    assert refused.exit_code == 2 and "SshIngressCidr = '0.0.0.0/0': AllowedPattern" in refused.output, refused.output
    assert "required" not in refused.output, refused.output
    both = CliRunner().invoke(cli, [*given, "--pool"])
    assert both.exit_code == 2 and "--template and --pool each choose" in both.output, both.output


def test_params_init_neither_writes_nor_takes_ssh_ingress_cidr(tmp_path):
    written = tmp_path / "new.json"
    example = load_parameters(REPO / "params" / "example.json")
    settings = [arg for name, value in example.items() for arg in ("--set", f"{name}={value}")]
    result = CliRunner().invoke(cli, ["params", "init", "-o", str(written), *settings])
    assert result.exit_code == 0, result.output
    assert load_parameters(written) == example and "SshIngressCidr" not in example
    refused = CliRunner().invoke(cli, ["params", "init", "-o", str(tmp_path / "x.json"), "--set", "SshIngressCidr=1"])
    assert refused.exit_code == 2 and MOVED in refused.output


def _with_the_old_ssh_rule(installation: dict, ssh: dict) -> dict:
    """The installation as it was before issue 20: SshIngressCidr (empty by default), AllowSsh, and the SSH
    template's rule into its own MasterSecurityGroup behind that condition."""
    before = json.loads(json.dumps(installation))
    spec = ssh["Parameters"]["SshIngressCidr"]
    before["Parameters"]["SshIngressCidr"] = {**spec, "Default": "", "AllowedPattern": "^$|" + spec["AllowedPattern"]}
    before["Conditions"]["AllowSsh"] = {"Fn::Not": [{"Fn::Equals": [{"Ref": "SshIngressCidr"}, ""]}]}
    rule = json.loads(json.dumps(ssh["Resources"]["MasterSshIngress"]))
    rule["Properties"]["GroupId"] = {"Fn::GetAtt": ["MasterSecurityGroup", "GroupId"]}
    before["Resources"]["MasterSshIngress"] = {**rule, "Condition": "AllowSsh"}
    return before


def _port_22(ec2, group_id: str) -> list[dict]:
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return [p for p in group["IpPermissions"] if p.get("FromPort") == 22]


def test_ssh_leaves_the_installation_in_a_reviewed_update_and_comes_back_with_the_ssh_template(
    aws_env, local_session, demo_params, raw_template, ssh_template, tmp_path
):
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    ec2 = local_session.client("ec2", endpoint_url=endpoint)
    before = tmp_path / "before.json"
    before.write_text(json.dumps(_with_the_old_ssh_rule(raw_template, ssh_template), separators=(",", ":")))
    with_ssh = with_parameter(demo_params, "SshIngressCidr", "203.0.113.10/32")
    old = run(endpoint, "deploy", "--stack-name", "had-ssh", "--params", str(with_ssh), "--template", str(before),
              "--yes", "--skip-preflight")  # fmt: skip
    assert old.exit_code == 0, old.output
    master = cfn.describe_stack_resource(StackName="had-ssh", LogicalResourceId="MasterSecurityGroup")
    group_id = master["StackResourceDetail"]["PhysicalResourceId"]
    assert len(_port_22(ec2, group_id)) == 1, "the old installation's own rule: the check below can fail"

    kept = run(endpoint, "deploy", "--stack-name", "had-ssh", "--params", str(with_ssh), "--yes")
    assert kept.exit_code == 2 and MOVED in kept.output, "the old file: refused, saying what to do"
    updated = run(endpoint, "deploy", "--stack-name", "had-ssh", "--params", str(demo_params), "--yes")
    assert updated.exit_code == 0, updated.output
    assert "MasterSshIngress" in updated.output
    assert "- ingress MasterSecurityGroup: tcp 22 from 203.0.113.10/32" in updated.output
    assert _port_22(ec2, group_id) == []
    (stack,) = cfn.describe_stacks(StackName="had-ssh")["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["AppSecurityGroupId"] == group_id

    ssh_params = tmp_path / "ssh.json"
    ssh_params.write_text(dump_parameters({"AppSecurityGroupId": group_id, "SshIngressCidr": "203.0.113.10/32"}))
    ssh = run(endpoint, "deploy", "--stack-name", "had-ssh-ssh", "--template", str(SSH_TEMPLATE),
              "--params", str(ssh_params), "--yes", "--skip-preflight")  # fmt: skip
    assert ssh.exit_code == 0, ssh.output
    assert f"+ ingress {group_id}: tcp 22 from 203.0.113.10/32" in ssh.output
    (rule,) = _port_22(ec2, group_id)
    assert (rule["IpProtocol"], rule["ToPort"]) == ("tcp", 22)
    assert rule["IpRanges"] == [{"CidrIp": "203.0.113.10/32", "Description": "SSH from the operator network"}]


def test_an_installation_file_with_a_stray_app_security_group_id_names_that_one_key(tmp_path: Path):
    """QA (#21 round 2): AppSecurityGroupId made an installation file an SSH one: 34 'not a parameter of the
    template' lines that did not say which template, where the one problem is AppSecurityGroupId."""
    rows = json.loads((REPO / "params" / "example.json").read_text())
    rows.append({"ParameterKey": "AppSecurityGroupId", "ParameterValue": "sg-0123456789abcdef0"})
    params = tmp_path / "p.json"
    params.write_text(json.dumps(rows))
    result = CliRunner().invoke(cli, ["params", "check", str(params)])
    assert result.exit_code == 2
    assert result.output == f"Error: {params}: AppSecurityGroupId: {MOVED_PARAMETERS['AppSecurityGroupId']}\n"


def test_an_ssh_file_with_a_misspelt_key_is_still_checked_as_one(tmp_path):
    """QA (#21 round 3): an SSH file with one misspelt key was checked as an installation file (13 problems, one
    of them "SSH access is its own template now"); it is the SSH template's, and the key is named."""
    path = tmp_path / "ssh.json"
    path.write_text(dump_parameters({"AppSecurityGroupId": "sg-0123456789abcdef0", "SshIngresCidr": "203.0.113.10/32"}))
    result = CliRunner().invoke(cli, ["params", "check", str(path)])
    assert result.exit_code == 2
    assert "SshIngresCidr: not a parameter of the template; did you mean SshIngressCidr?" in result.output
    assert "required: the template has no default" in result.output and result.output.count("\n") == 3, result.output
