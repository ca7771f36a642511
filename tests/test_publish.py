"""Publishing the template to S3 (moto in server mode) and the console's quick-create link."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from cfn import REPO
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from valohai_cfn.cli import cli
from valohai_cfn.params import dump_parameters
from valohai_cfn.publish import (
    PublishError,
    launch_button,
    object_url,
    partition,
    quick_create_url,
    template_key,
    upload,
)
from valohai_cfn.render import render_json
from valohai_cfn.template import build_template

SPECS = build_template().to_dict()["Parameters"]
URL_LINE = re.compile(r"^https://\S+$", re.MULTILINE)


def prefilled(url: str) -> tuple[dict[str, str], dict[str, str]]:
    """(console query, the fragment's query) of a quick-create URL, decoded as the console does."""
    parts = urlsplit(url)
    route, _, fragment_query = parts.fragment.partition("?")
    assert route == "/stacks/create/review"
    single = lambda q: {k: v[0] for k, v in parse_qs(q, keep_blank_values=True).items()}  # noqa: E731
    return single(parts.query), single(fragment_query)


def test_url_has_the_consoles_current_form():
    url = quick_create_url(
        region="eu-west-1",
        template_url="https://b.s3.eu-west-1.amazonaws.com/t.json",
        stack_name="valohai",
        parameters={"Domain": "valohai.example.com"},
        template_parameters=SPECS,
    )
    assert url.startswith(
        "https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/create/review?"
    )
    query, fragment = prefilled(url)
    assert query == {"region": "eu-west-1"}
    assert fragment == {
        "templateURL": "https://b.s3.eu-west-1.amazonaws.com/t.json",
        "stackName": "valohai",
        "param_Domain": "valohai.example.com",
    }


@pytest.mark.parametrize("value", ["a,b,c", "with spaces", "R&D=yes", "Ympäristö Å", "50%+1", "#hash?q"])
def test_values_survive_the_round_trip(value):
    url = quick_create_url(
        region="us-east-1",
        template_url="https://x/t.json",
        stack_name=None,
        parameters={"EnvironmentName": value},
        template_parameters=SPECS,
    )
    assert prefilled(url)[1]["param_EnvironmentName"] == value
    assert " " not in url and "+" not in url.split("#", 1)[1], "spaces as %20, never +"


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(SPECS)), st.text(), max_size=6))
def test_every_prefilled_parameter_parses_back(parameters):
    url = quick_create_url(
        region="us-east-1",
        template_url="https://x/t.json",
        stack_name="s",
        parameters=parameters,
        template_parameters=SPECS,
    )
    _, fragment = prefilled(url)
    assert {k.removeprefix("param_"): v for k, v in fragment.items() if k.startswith("param_")} == parameters


def test_no_echo_parameters_are_never_prefilled():
    specs = {**SPECS, "AdminPassword": {"Type": "String", "NoEcho": "true"}}
    url = quick_create_url(
        region="us-east-1",
        template_url="https://x/t.json",
        stack_name=None,
        parameters={"AdminPassword": "hunter2", "Domain": "a.example.com"},
        template_parameters=specs,
    )
    assert "hunter2" not in url and "AdminPassword" not in url
    assert prefilled(url)[1]["param_Domain"] == "a.example.com"


def test_unknown_parameters_and_bad_stack_names_are_errors():
    with pytest.raises(PublishError, match="not parameters of the template: Domian"):
        quick_create_url(
            region="us-east-1", template_url="u", stack_name=None, parameters={"Domian": "x"}, template_parameters=SPECS
        )
    for name in ("1valohai", "valohai_prod", "x" * 129, ""):
        with pytest.raises(PublishError, match="not a valid stack name"):
            quick_create_url(
                region="us-east-1",
                template_url="https://bucket.s3.amazonaws.com/t.json",
                stack_name=name or "-",
                parameters={},
                template_parameters=SPECS,
            )


def test_key_follows_the_content():
    assert template_key(b"a") == template_key(b"a")
    assert template_key(b"a") != template_key(b"b")
    assert template_key(b"a", "releases/").startswith("releases/valohai-self-hosted-")


def test_launch_button_is_markdown():
    assert launch_button("https://x") == (
        "[![Launch Stack](https://s3.amazonaws.com/cloudformation-examples/cloudformation-launch-stack.png)](https://x)"
    )


def test_publish_uploads_and_links_to_the_built_bytes(aws_env, local_session, tmp_path):
    s3 = local_session.client("s3", endpoint_url=aws_env.endpoint_url)
    s3.create_bucket(Bucket="valohai-templates")
    params = tmp_path / "p.json"
    params.write_text(dump_parameters({"Domain": "valohai.example.com", "EnvironmentName": "Valohai Test-1"}))
    result = CliRunner().invoke(
        cli,
        [
            "publish",
            "--bucket",
            "valohai-templates",
            "--prefix",
            "releases",
            "--params",
            str(params),
            "--stack-name",
            "valohai",
            "--endpoint-url",
            aws_env.endpoint_url,
            "--region",
            "us-east-1",
        ],
    )
    assert result.exit_code == 0, result.output
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket="valohai-templates")["Contents"]]
    built = render_json(build_template()).encode()
    assert key == template_key(built, "releases")
    url = URL_LINE.search(result.output).group(0)
    _, fragment = prefilled(url)
    assert fragment["param_EnvironmentName"] == "Valohai Test-1"
    # The object is private (as a bucket should be): fetch what the URL names with credentials, as the
    # console does for the signed-in user.
    template_url = urlsplit(fragment["templateURL"])
    assert f"{template_url.scheme}://{template_url.netloc}" == aws_env.endpoint_url
    bucket, _, url_key = unquote(template_url.path).lstrip("/").partition("/")
    assert s3.get_object(Bucket=bucket, Key=url_key)["Body"].read() == built
    assert "[![Launch Stack]" in result.output


def test_changed_template_gets_a_new_key(aws_env, local_session):
    s3 = local_session.client("s3", endpoint_url=aws_env.endpoint_url)
    s3.create_bucket(Bucket="valohai-keys")
    first = upload(s3, "valohai-keys", b'{"a": 1}')
    assert upload(s3, "valohai-keys", b'{"a": 1}') == first
    second = upload(s3, "valohai-keys", b'{"a": 2}')
    assert second != first
    assert s3.get_object(Bucket="valohai-keys", Key=first)["Body"].read() == b'{"a": 1}'


def test_link_command_prefills_from_a_params_file():
    result = CliRunner().invoke(
        cli,
        [
            "link",
            "--template-url",
            "https://b.s3.eu-west-1.amazonaws.com/t.json",
            "--params",
            str(REPO / "params" / "example.json"),
            "--region",
            "eu-west-1",
        ],
    )
    assert result.exit_code == 0, result.output
    _, fragment = prefilled(URL_LINE.search(result.output).group(0))
    example = {
        e["ParameterKey"]: e["ParameterValue"] for e in json.loads((REPO / "params" / "example.json").read_text())
    }
    assert {k.removeprefix("param_"): v for k, v in fragment.items() if k.startswith("param_")} == example


def test_link_command_refuses_a_bad_stack_name():
    result = CliRunner().invoke(
        cli, ["link", "--template-url", "https://x/t.json", "--region", "eu-west-1", "--stack-name", "9lives"]
    )
    assert result.exit_code == 2 and "not a valid stack name" in result.output


@pytest.mark.parametrize(
    ("region", "console", "s3"),
    [
        ("eu-west-1", "https://eu-west-1.console.aws.amazon.com/", "s3.eu-west-1.amazonaws.com"),
        ("cn-north-1", "https://console.amazonaws.cn/", "s3.cn-north-1.amazonaws.com.cn"),
        ("us-gov-west-1", "https://console.amazonaws-us-gov.com/", "s3.us-gov-west-1.amazonaws.com"),
    ],
)
def test_console_and_s3_hosts_come_from_the_regions_partition(region, console, s3):
    url = quick_create_url(
        region=region,
        template_url="https://b.s3.amazonaws.com/t.json",
        stack_name=None,
        parameters={},
        template_parameters=SPECS,
    )
    assert url.startswith(console) and f"region={region}" in url
    assert object_url(None, "bucket", "k.json", region) == f"https://bucket.{s3}/k.json"


def test_a_region_newer_than_botocore_is_known_by_its_partitions_pattern():
    assert partition("ap-southeast-99")["partition"] == "aws"
    assert partition("cn-southwest-9")["partition"] == "aws-cn"
    with pytest.raises(PublishError, match="not an AWS region"):
        partition("mars-1")
