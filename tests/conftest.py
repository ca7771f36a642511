from __future__ import annotations

import hashlib
import json

import pytest
from cfn import SAMPLE_WORKERS

from valohai_cfn.language_extensions import expand
from valohai_cfn.render import render_json
from valohai_cfn.template import build_ssh_template, build_template


@pytest.fixture(scope="session")
def template_json() -> str:
    return render_json(build_template())


@pytest.fixture(scope="session")
def raw_template(template_json: str) -> dict:
    """The template as rendered: the worker groups, secrets, security groups and settings as loops."""
    return json.loads(template_json)


@pytest.fixture(scope="session")
def template(raw_template: dict) -> dict:
    """The template as CloudFormation sees it after its transform, for two on-demand and one spot type."""
    return expand(raw_template, SAMPLE_WORKERS)


@pytest.fixture(scope="session")
def ssh_template() -> dict:
    """The SSH template (templates/valohai-ssh.*) as rendered: SSH to the app instance."""
    return json.loads(render_json(build_ssh_template()))


@pytest.fixture(scope="session")
def local_aws():
    """valohai-cfn's local AWS (moto server mode plus the models it lacks) on a free port of 127.0.0.1."""
    from valohai_cfn.local_aws import LocalAws

    with LocalAws(port=0) as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch, local_aws):
    """Credentials and region for boto3 in the tests; nothing reaches real AWS."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return local_aws


@pytest.fixture
def local_session(aws_env):
    import boto3

    return boto3.Session(region_name="us-east-1")


@pytest.fixture
def resource_prefix(request) -> str:
    """A ResourcePrefix of the test's own, so retained secrets and buckets of tests do not collide."""
    return "t" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]


@pytest.fixture
def demo_params(aws_env, local_session, tmp_path, resource_prefix):
    """A params file pointing at a VPC, subnets and an AMI made in the local AWS, as `make demo` does,
    with the test's own ResourcePrefix."""
    from valohai_cfn.local_aws import create_demo_network
    from valohai_cfn.params import dump_parameters

    ec2 = local_session.client("ec2", endpoint_url=aws_env.endpoint_url)
    parameters = create_demo_network(ec2, "us-east-1")
    # Tests delete their stacks, and RDS (the local AWS too) refuses to delete a protected database.
    parameters["DatabaseDeletionProtection"] = "false"
    parameters["ResourcePrefix"] = resource_prefix  # last: tests read it back from there
    path = tmp_path / "params.json"
    path.write_text(dump_parameters(parameters))
    return path
