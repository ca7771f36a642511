"""Reviewing and automating a change against the local AWS, through the CLI: diff and plan show the parameter
change and the rule from an address range it opens, plan then execute applies exactly that change set, a new stack's plan
leaves nothing behind, exit codes and JSON for scripts, and text without escape codes for NO_COLOR."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

from test_deploy_local import run, with_parameter

from valohai_cfn.cli.common import EXIT_CHANGES


def deployed(endpoint: str, demo_params, name: str) -> None:
    created = run(endpoint, "deploy", "--stack-name", name, "--params", str(demo_params), "--yes", "--skip-preflight")
    assert created.exit_code == 0, created.output


def test_diff_plan_execute_show_and_apply_narrowing_the_load_balancers_clients(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    deployed(endpoint, demo_params, "reviewed")
    opened = with_parameter(demo_params, "AllowedIngressCidr", "203.0.113.0/24")

    diff = run(endpoint, "diff", "--stack-name", "reviewed", "--params", str(opened))
    assert diff.exit_code == 0, diff.output
    for shown in (diff.stdout, run(endpoint, "plan", "--stack-name", "reviewed", "--params", str(opened)).stdout):
        assert "AllowedIngressCidr" in shown and "203.0.113.0/24" in shown
        assert "! + ingress LoadBalancerSecurityGroup: tcp 80 from 203.0.113.0/24" in shown
        assert "- ingress LoadBalancerSecurityGroup: tcp 80 from 0.0.0.0/0" in shown
        assert "LoadBalancerHttpIngress" in shown

    planned = run(
        endpoint, "plan", "--stack-name", "reviewed", "--params", str(opened), "--output", "json", "--skip-preflight"
    )
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert [p for p in plan["parameters"] if p["name"] == "AllowedIngressCidr"] == [
        {"name": "AllowedIngressCidr", "old": "0.0.0.0/0", "new": "203.0.113.0/24", "masked": False}
    ]
    assert any(s["text"] == "tcp 80 from 203.0.113.0/24" and s["stands_out"] for s in plan["security"])
    assert cfn.describe_stacks(StackName="reviewed")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE", "plan only"

    executed = run(endpoint, "execute", "--stack-name", "reviewed", plan["change_set"]["name"], "--yes")
    assert executed.exit_code == 0, executed.output
    (stack,) = cfn.describe_stacks(StackName="reviewed")["Stacks"]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {"ParameterKey": "AllowedIngressCidr", "ParameterValue": "203.0.113.0/24"} in stack["Parameters"]
    again = run(
        endpoint, "plan", "--stack-name", "reviewed", "--params", str(opened), "--exit-code", "--skip-preflight"
    )
    assert again.exit_code == 0 and "up to date" in again.output


def test_plan_exit_codes_for_changes_and_none(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    deployed(endpoint, demo_params, "coded")
    same = run(
        endpoint, "plan", "--stack-name", "coded", "--params", str(demo_params), "--exit-code", "--skip-preflight"
    )
    assert same.exit_code == 0, same.output
    bigger = with_parameter(demo_params, "RoiInstanceType", "m5a.2xlarge")
    changed = run(endpoint, "plan", "--stack-name", "coded", "--params", str(bigger), "--exit-code", "--skip-preflight")
    assert changed.exit_code == EXIT_CHANGES, changed.output
    plain = run(endpoint, "plan", "--stack-name", "coded", "--params", str(bigger), "--skip-preflight")
    assert plain.exit_code == 0, "without --exit-code, changes are success"


def test_a_new_stacks_plan_leaves_no_stack_unless_kept(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    planned = run(endpoint, "plan", "--stack-name", "unplanned", "--params", str(demo_params), "--skip-preflight")
    assert planned.exit_code == 0, planned.output
    assert "with the empty stack unplanned it made" in planned.output
    live = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == "unplanned"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in live)


def test_outputs_and_status_json_have_the_documented_keys(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    deployed(endpoint, demo_params, "scripted")
    outputs = json.loads(run(endpoint, "outputs", "scripted", "--output", "json").stdout)
    assert outputs["AppUrl"].startswith("http") and outputs["WorkerGroupt3medium"].endswith("-worker-t3.medium")
    env_lines = run(endpoint, "outputs", "scripted", "--output", "env").stdout.splitlines()
    assert f"AppUrl={outputs['AppUrl']}" in env_lines
    status = json.loads(run(endpoint, "status", "scripted", "--output", "json").stdout)
    assert set(status) == {"stack", "status", "meaning", "termination_protection", "outputs", "root_cause", "events"}
    assert status["termination_protection"] is True and status["root_cause"] is None
    diff = json.loads(
        run(endpoint, "diff", "--stack-name", "scripted", "--params", str(demo_params), "--output", "json").stdout
    )
    assert {"stack", "exists", "has_changes", "parameters", "changes", "outputs", "security", "data_loss"} <= set(diff)
    assert diff["has_changes"] is False
    same = run(endpoint, "diff", "--stack-name", "scripted", "--params", str(demo_params))
    assert "No changes: the resources, outputs and parameter values are as deployed." in same.stdout
    # A parameter used only inside Fn::Sub and Fn::If: the URL setting, the bucket's CORS origin, the app's URL.
    moved = run(
        endpoint, "diff", "--stack-name", "scripted", "--params", str(demo_params), "--set", "Domain=ml.example.org"
    )
    assert "Settingurl.Value: http://valohai.demo.example.com → http://ml.example.org" in moved.stdout
    assert "DataBucket.CorsConfiguration.CorsRules" in moved.stdout
    assert "AppUrl: http://valohai.demo.example.com → http://ml.example.org" in moved.stdout
    preflight = json.loads(
        run(endpoint, "preflight", "--params", str(demo_params), "--stack-name", "scripted", "--output", "json").stdout
    )
    assert preflight["ok"] is True and {"name", "ok", "detail"} == set(preflight["checks"][0])


def test_changing_the_vpc_is_refused_before_any_change_set(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    deployed(endpoint, demo_params, "fixed")
    elsewhere = with_parameter(demo_params, "VpcId", "vpc-0123456789abcdef0")
    refused = run(endpoint, "deploy", "--stack-name", "fixed", "--params", str(elsewhere), "--yes", "--skip-preflight")
    assert refused.exit_code == 1
    assert "VpcId cannot change on a deployed stack" in refused.output
    assert cfn.list_change_sets(StackName="fixed")["Summaries"] == []


def test_changing_the_load_balancer_scheme_updates_cleanly(aws_env, local_session, demo_params):
    """The load balancer has no fixed name (tags carry the prefix), so CloudFormation can replace it when its
    scheme changes: a new load balancer of the new scheme, the old one removed (as the local AWS does too)."""
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    deployed(endpoint, demo_params, "schemed")
    old = cfn.describe_stack_resource(StackName="schemed", LogicalResourceId="LoadBalancer")
    internal = with_parameter(demo_params, "LoadBalancerScheme", "internal")
    updated = run(endpoint, "deploy", "--stack-name", "schemed", "--params", str(internal), "--yes", "--skip-preflight")
    assert updated.exit_code == 0, updated.output
    assert "LoadBalancer.Scheme: internet-facing → internal" in updated.output
    (stack,) = cfn.describe_stacks(StackName="schemed")["Stacks"]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert {"ParameterKey": "LoadBalancerScheme", "ParameterValue": "internal"} in stack["Parameters"]
    new = cfn.describe_stack_resource(StackName="schemed", LogicalResourceId="LoadBalancer")
    arn = new["StackResourceDetail"]["PhysicalResourceId"]
    assert arn != old["StackResourceDetail"]["PhysicalResourceId"], "replaced: a new load balancer"
    elbv2 = local_session.client("elbv2", endpoint_url=endpoint)
    assert elbv2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]["Scheme"] == "internal"


def in_a_terminal(args: list[str], env: dict[str, str]) -> bytes:
    """The command's output when its stdout is a terminal (a pseudo-terminal), as a person would see it."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(leader)
    return output


def test_no_color_and_dumb_terminals_get_no_escape_codes(aws_env, demo_params):
    args = [
        sys.executable,
        "-m",
        "valohai_cfn",
        "diff",
        "--stack-name",
        "never-made",
        "--params",
        str(demo_params),
        "--endpoint-url",
        aws_env.endpoint_url,
        "--region",
        "us-east-1",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    coloured = in_a_terminal(args, {**env, "TERM": "xterm-256color"})
    assert b"\x1b[" in coloured and b"Add" in coloured, "a terminal gets colours: the check below can fail"
    for plain in ({**env, "TERM": "xterm-256color", "NO_COLOR": "1"}, {**env, "TERM": "dumb"}):
        output = in_a_terminal(args, plain)
        assert b"Add" in output and b"MasterSecurityGroup" in output
        assert b"\x1b" not in output


def test_a_pinned_template_file_is_planned_and_a_broken_one_refused(aws_env, local_session, demo_params, tmp_path):
    from cfn import REPO

    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    pinned = REPO / "templates" / "valohai-self-hosted.yaml"
    planned = run(
        endpoint,
        "plan",
        "--stack-name",
        "pinned",
        "--params",
        str(demo_params),
        "--template",
        str(pinned),
        "--set",
        "AllowedIngressCidr=203.0.113.0/24",
        "--skip-preflight",
    )
    assert planned.exit_code == 0, planned.output
    assert "LoadBalancerHttpIngress" in planned.stdout and "tcp 80 from 203.0.113.0/24" in planned.stdout

    broken_template = json.loads((REPO / "templates" / "valohai-self-hosted.json").read_text())
    broken_template["Resources"]["DataBucket"]["Properties"]["Bogus"] = 1
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(broken_template))
    refused = run(endpoint, "plan", "--stack-name", "broken", "--params", str(demo_params), "--template", str(broken))
    assert refused.exit_code == 2 and "cfn-lint" in refused.output and "E3002" in refused.output
    assert "broken" not in {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]}
