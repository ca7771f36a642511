"""The README's awscli lines against the local AWS: `aws cloudformation create-stack` and
`aws cloudformation deploy` with the committed template and the README's capabilities both create the demo
stack. Main answered create-stack with HTTP 500 (the transform was run for change sets only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cfn import REPO
from test_local_api import looped_settings

from valohai_cfn.local_aws import create_demo_network
from valohai_cfn.params import dump_parameters

TEMPLATE = REPO / "templates" / "valohai-self-hosted.json"
CAPABILITIES = ("--capabilities", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")


def aws(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    """awscli (the test extra installs it next to this Python) against the local AWS."""
    command = Path(sys.executable).with_name("aws")
    found = str(command) if command.exists() else shutil.which("aws")
    assert found, "awscli is part of the test extra: pip install -e '.[test]'"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    env.pop("AWS_PROFILE", None)
    return subprocess.run(
        [found, "cloudformation", *args, "--endpoint-url", endpoint, "--region", "us-east-1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def demo_values(aws_env, local_session, resource_prefix) -> dict[str, str]:
    ec2 = local_session.client("ec2", endpoint_url=aws_env.endpoint_url)
    return {**create_demo_network(ec2, "us-east-1"), "ResourcePrefix": resource_prefix}


def _status(local_session, endpoint: str, stack: str) -> str:
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    return cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]


def test_create_stack_with_the_readmes_arguments(aws_env, local_session, demo_values, tmp_path):
    endpoint = aws_env.endpoint_url
    parameters = tmp_path / "params.json"
    parameters.write_text(dump_parameters(demo_values))
    made = aws(
        endpoint,
        "create-stack",
        "--stack-name",
        "by-hand",
        "--template-body",
        f"file://{TEMPLATE}",
        "--parameters",
        f"file://{parameters}",
        *CAPABILITIES,
    )
    assert made.returncode == 0, made.stderr
    assert "arn:aws:cloudformation:us-east-1:123456789012:stack/by-hand/" in made.stdout
    assert _status(local_session, endpoint, "by-hand") == "CREATE_COMPLETE"


def test_deploy_with_the_readmes_arguments(aws_env, local_session, demo_values):
    endpoint = aws_env.endpoint_url
    overrides = [f"{k}={v}" for k, v in demo_values.items()]
    made = aws(
        endpoint,
        "deploy",
        "--stack-name",
        "deployed-by-hand",
        "--template-file",
        str(TEMPLATE),
        "--parameter-overrides",
        *overrides,
        *CAPABILITIES,
    )
    assert made.returncode == 0, made.stderr
    assert "Successfully created/updated stack - deployed-by-hand" in made.stdout
    assert _status(local_session, endpoint, "deployed-by-hand") == "CREATE_COMPLETE"


LOOPED = {
    "Transform": "AWS::LanguageExtensions",
    "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": "a,b"}},
    "Resources": looped_settings("looped", {"Fn::Join": [",", {"Ref": "Names"}]}),
}


def test_deploy_updates_a_stack_whose_template_loops(aws_env, local_session, tmp_path):
    """An update by `aws cloudformation deploy` asks GetTemplateSummary for the stack's parameters first: main
    answered it HTTP 500 for any template with Fn::ForEach, so every update of the README's line failed."""
    endpoint = aws_env.endpoint_url
    template = tmp_path / "looped.json"
    template.write_text(json.dumps(LOOPED))
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    cfn.create_stack(
        StackName="looped-by-hand", TemplateBody=template.read_text(), Capabilities=["CAPABILITY_AUTO_EXPAND"]
    )
    updated = aws(
        endpoint,
        "deploy",
        "--stack-name",
        "looped-by-hand",
        "--template-file",
        str(template),
        "--parameter-overrides",
        "Names=a,b,c",
        "--capabilities",
        "CAPABILITY_AUTO_EXPAND",
    )
    assert updated.returncode == 0, updated.stderr
    assert _status(local_session, endpoint, "looped-by-hand") == "UPDATE_COMPLETE"
    ssm = local_session.client("ssm", endpoint_url=endpoint)
    assert ssm.get_parameter(Name="/looped/c")["Parameter"]["Value"] == "a,b,c"
