"""The commands that build no template answer without importing troposphere, cfn-flip or cfn-lint (each
costs a tenth of a second or more to import): status, outputs, drift, delete, execute, link, params check
and --help, run one after another in one fresh process against the local AWS."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cfn import REPO

PROBE = REPO / "tests" / "import_probe.py"
STACK = "imports-probe"
# A stack of one resource and a change set adding a second: enough for every stack command to do its work.
SETTING = {
    "Type": "AWS::SSM::Parameter",
    "Properties": {"Name": "imports-probe-setting", "Type": "String", "Value": "v"},
}
TEMPLATE = {"Resources": {"Setting": SETTING}, "Outputs": {"SettingName": {"Value": {"Ref": "Setting"}}}}
SECOND = {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "imports-probe-other", "Type": "String", "Value": "w"}}
CHANGED = {**TEMPLATE, "Resources": {"Setting": SETTING, "Other": SECOND}}


@pytest.fixture
def probed(aws_env, local_session, tmp_path):
    """Each command's exit code, output and the heavy libraries imported after it, in one new process."""
    cfn = local_session.client("cloudformation", endpoint_url=aws_env.endpoint_url)
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE))
    cfn.get_waiter("stack_create_complete").wait(StackName=STACK, WaiterConfig={"Delay": 1})
    cfn.create_change_set(StackName=STACK, ChangeSetName="more", TemplateBody=json.dumps(CHANGED))
    cfn.get_waiter("change_set_create_complete").wait(StackName=STACK, ChangeSetName="more", WaiterConfig={"Delay": 1})
    aws = ["--endpoint-url", aws_env.endpoint_url]
    commands = {
        "--help": ["--help"],
        "params check": ["params", "check", str(REPO / "params" / "example.json")],
        "link": ["link", "--template-url", "https://b.s3.amazonaws.com/t.json", "--region", "us-east-1"],
        "status": ["status", STACK, *aws],
        "outputs": ["outputs", STACK, *aws],
        "drift": ["drift", STACK, *aws],
        "execute": ["execute", "--stack-name", STACK, "more", "--yes", *aws],
        # execute put termination protection on, as it does on every stack: delete lifts it with --force.
        "delete": ["delete", STACK, "--yes", "--force", *aws],
        # Last, and the probe's own check: a build does import troposphere, and the probe sees it.
        "build": ["build", "-o", str(tmp_path / "templates")],
    }
    result = subprocess.run(
        [sys.executable, str(PROBE), json.dumps(list(commands.values()))], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout)
    return {"import": report[0], **dict(zip(commands, report[1:], strict=True))}


def test_commands_that_build_nothing_import_no_template_library(probed):
    # What shows each command did its work (so that it did not stop before importing what it needs).
    done = {
        "--help": "Commands:",
        "params check": "all valid",
        "link": "Quick-create link",
        "status": "CREATE_COMPLETE",
        "outputs": "imports-probe-setting",
        "drift": STACK,
        "execute": "Other",  # the change set's new resource, in its review
        "delete": "deleted",
    }
    for name, evidence in done.items():
        assert evidence in probed[name]["output"], (name, probed[name]["output"][-500:])
    not_slow = ["import", *done]
    assert {name: probed[name]["heavy"] for name in not_slow} == {name: [] for name in not_slow}
    assert probed["build"]["exit_code"] == 0 and "troposphere" in probed["build"]["heavy"]
