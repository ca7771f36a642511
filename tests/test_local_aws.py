"""The local AWS itself: the command that serves it, the resource types it adds, large templates via S3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from valohai_cfn.deploy import DeployError, template_location
from valohai_cfn.render import TEMPLATE_BODY_LIMIT


def test_local_aws_command_serves_and_writes_demo_params(tmp_path):
    params = tmp_path / "demo.json"
    # PYTHONFAULTHANDLER: should it not stop, SIGABRT makes it print where each thread is.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PYTHONFAULTHANDLER": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "valohai_cfn", "local-aws", "--port", "0", "--demo-params", str(params)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first = server.stdout.readline()
        assert first.startswith("Local AWS at http://127.0.0.1:"), first
        deadline = time.monotonic() + 20
        while not params.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.2)
        values = {e["ParameterKey"]: e["ParameterValue"] for e in json.loads(params.read_text())}
        assert values["VpcId"].startswith("vpc-") and values["RoiAmiId"].startswith("ami-")
        assert len(values["LoadBalancerSubnetIds"].split(",")) == 2
        assert server.stdout.readline().startswith("Wrote ")
        # What the local AWS does not apply as AWS would is said when the demo has that parameter.
        assert server.stdout.readline().startswith("Note: the local AWS does not apply VpcId as AWS would: ")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            # Stopping takes under a second; the rest is room for a machine busy with the other tests.
            rest, errors = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.send_signal(signal.SIGABRT)
            rest, errors = server.communicate()
            raise AssertionError(f"the local AWS did not stop on Ctrl-C; it printed: {rest!r}; {errors}") from None
        assert server.returncode == 0, rest
        assert "Stopping." in rest


def test_demo_network_has_public_subnets_in_two_zones(aws_env, local_session):
    from valohai_cfn.local_aws import create_demo_network

    ec2 = local_session.client("ec2", endpoint_url=aws_env.endpoint_url)
    params = create_demo_network(ec2, "us-east-1")
    public = params["LoadBalancerSubnetIds"].split(",")
    zones = {s["AvailabilityZone"] for s in ec2.describe_subnets(SubnetIds=public)["Subnets"]}
    assert len(zones) == 2
    routes = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": public}])["RouteTables"]
    assert any(
        r.get("GatewayId", "").startswith("igw-") and r["DestinationCidrBlock"] == "0.0.0.0/0"
        for table in routes
        for r in table["Routes"]
    )
    (image,) = ec2.describe_images(ImageIds=[params["RoiAmiId"]])["Images"]
    assert image["State"] == "available"


def test_a_describe_images_filter_moto_lacks_is_refused_in_ec2s_shape_not_a_500(aws_env, local_session):
    from botocore.config import Config
    from botocore.exceptions import ClientError

    ec2 = local_session.client("ec2", endpoint_url=aws_env.endpoint_url, config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as refused:
        ec2.describe_images(Filters=[{"Name": "platform-details", "Values": ["Linux/UNIX"]}])
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400, error
    assert error["Error"]["Code"] == "InvalidParameterValue"
    assert "platform-details" in error["Error"]["Message"] and "local AWS" in error["Error"]["Message"]


def test_small_templates_go_as_a_body():
    assert template_location("{}", None, None) == {"TemplateBody": "{}"}


def test_large_template_needs_a_bucket():
    with pytest.raises(DeployError, match="give --bucket"):
        template_location("x" * (TEMPLATE_BODY_LIMIT + 1), None, None)


def test_large_template_is_uploaded_under_its_content_hash(aws_env, local_session):
    s3 = local_session.client("s3", endpoint_url=aws_env.endpoint_url)
    s3.create_bucket(Bucket="templates-bucket")
    body = json.dumps({"Description": "x" * TEMPLATE_BODY_LIMIT})
    location = template_location(body, s3, "templates-bucket")
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket="templates-bucket")["Contents"]]
    assert key.startswith("valohai-cfn/") and key.endswith(".json")
    with urllib.request.urlopen(location["TemplateURL"]) as response:  # the local server on 127.0.0.1
        assert response.read() == body.encode()
