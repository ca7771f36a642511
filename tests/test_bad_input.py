"""Every bad input through every command that accepts it: exit 2, one line on stderr, no traceback, no file
written and no AWS call. The endpoint given is a port nothing listens on: a command that called AWS before
refusing would end differently (a connection error, exit 1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cfn import REPO
from click.testing import CliRunner

from valohai_cfn.cli import cli
from valohai_cfn.params import load_parameters

NOWHERE = "http://127.0.0.1:9"
EXAMPLE = json.loads((REPO / "params" / "example.json").read_text())


def example_with(**values: str) -> str:
    entries = [e for e in EXAMPLE if e["ParameterKey"] not in values]
    entries += [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]
    return json.dumps(entries)


def example_as_yaml(**values: str) -> str:
    """The example as YAML, values unquoted: `yes` would be YAML's true, were it not kept as written."""
    entries = {e["ParameterKey"]: e["ParameterValue"] for e in EXAMPLE} | values
    empty = "''"
    return "Parameters:\n" + "".join(f"  {k}: {v or empty}\n" for k, v in entries.items())


# Parameter files every command that reads one must refuse the same way.
BAD_FILES = {
    "duplicate key in a JSON object": ("p.json", '{"Parameters": {"VpcId": "vpc-12345678", "VpcId": "vpc-87654321"}}'),
    "duplicate key in YAML": ("p.yaml", "Parameters:\n  VpcId: vpc-12345678\n  VpcId: vpc-87654321\n"),
    "deeply nested JSON": ("p.json", "[" * 200_000 + "]" * 200_000),
    "deeply nested YAML": ("p.yaml", "[" * 200_000),
    "larger than a parameter file": (
        "p.json",
        json.dumps([{"ParameterKey": "VpcId", "ParameterValue": "x" * 2_000_000}]),
    ),
    "a number with an underscore": ("p.json", example_with(WorkerMaxSize="1_0")),
    "a number with spaces": ("p.json", example_with(WorkerVolumeSize=" 80 ")),
    "a YAML value YAML would change": ("p.yaml", example_as_yaml(DatabaseMultiAZ="yes")),
}


def commands_reading(params: str) -> dict[str, list[str]]:
    aws = ["--endpoint-url", NOWHERE, "--region", "us-east-1"]
    return {
        "params check": ["params", "check", params],
        "preflight": ["preflight", "--params", params, *aws],
        "deploy": ["deploy", "--stack-name", "s", "--params", params, "--yes", *aws],
        "plan": ["plan", "--stack-name", "s", "--params", params, *aws],
        "diff": ["diff", "--stack-name", "s", "--params", params, *aws],
        "build --processed-for": ["build", "--processed-for", params, "-o", "out"],
        "publish": ["publish", "--bucket", "templates-bucket", "--params", params, *aws],
        "link": [
            "link",
            "--template-url",
            "https://b.s3.amazonaws.com/t.json",
            "--region",
            "us-east-1",
            "--params",
            params,
        ],
    }


def refused_cleanly(result, workdir: Path, before: set[Path]) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert set(workdir.rglob("*")) == before, "nothing written"


@pytest.fixture
def run_in(monkeypatch):
    """Run the command in a fresh directory of `workdir`: the result, the directory, what was in it before."""
    runs = iter(range(1000))

    def run(workdir: Path, args: list[str]):
        here = workdir / f"run-{next(runs)}"
        here.mkdir()
        monkeypatch.chdir(here)
        before = set(here.rglob("*"))
        return CliRunner().invoke(cli, args), here, before

    return run


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_parameter_file_is_refused_the_same_by_every_command(tmp_path, case, run_in):
    name, text = BAD_FILES[case]
    path = tmp_path / name
    path.write_text(text)
    exit_codes = set()
    for command, args in commands_reading(str(path)).items():
        result, here, before = run_in(tmp_path, args)
        refused_cleanly(result, here, before)
        exit_codes.add(result.exit_code)
        assert str(path) in result.stderr, (command, result.stderr)
    assert exit_codes == {2}


BAD_STACK_NAMES = ["", "1bad", "has space", "a" * 129]


def commands_with_a_stack_name(name: str, params: str) -> dict[str, list[str]]:
    aws = ["--endpoint-url", NOWHERE, "--region", "us-east-1"]
    return {
        "deploy": ["deploy", "--stack-name", name, "--params", params, "--yes", *aws],
        "plan": ["plan", "--stack-name", name, "--params", params, *aws],
        "diff": ["diff", "--stack-name", name, "--params", params, *aws],
        "execute": ["execute", "--stack-name", name, "cs-1", "--yes", *aws],
        "preflight": ["preflight", "--stack-name", name, "--params", params, *aws],
        "status": ["status", name, *aws],
        "outputs": ["outputs", name, *aws],
        "drift": ["drift", name, *aws],
        "delete": ["delete", name, "--yes", *aws],
        "publish": ["publish", "--bucket", "templates-bucket", "--stack-name", name, *aws],
        "link": [
            "link",
            "--template-url",
            "https://b.s3.amazonaws.com/t.json",
            "--region",
            "us-east-1",
            "--stack-name",
            name,
        ],
    }


@pytest.mark.parametrize("name", BAD_STACK_NAMES, ids=["empty", "digit-first", "space", "129-characters"])
def test_a_bad_stack_name_is_refused_by_every_command_before_preflight(tmp_path, name, run_in):
    params = str(REPO / "params" / "example.json")
    for command, args in commands_with_a_stack_name(name, params).items():
        result, here, before = run_in(tmp_path, args)
        refused_cleanly(result, here, before)
        assert "not a valid stack name" in result.stderr, command


AT_NOWHERE = ["--endpoint-url", NOWHERE, "--region", "us-east-1"]
STACK_PARAMS = ["--stack-name", "s", "--params", str(REPO / "params" / "example.json")]
OTHER_BAD_INPUTS = {
    "endpoint that is not a URL": ["status", "s", "--endpoint-url", "not a url", "--region", "us-east-1"],
    "endpoint with a bad port": ["status", "s", "--endpoint-url", "http://127.0.0.1:99999x", "--region", "us-east-1"],
    "tag that is not KEY=VALUE": [
        "plan",
        "--stack-name",
        "s",
        "--params",
        str(REPO / "params" / "example.json"),
        "--tag",
        "foo",
        "--endpoint-url",
        NOWHERE,
        "--region",
        "us-east-1",
    ],
    "negative event count": ["status", "s", "--events", "-5", "--endpoint-url", NOWHERE, "--region", "us-east-1"],
    "lint in a region that is not one": ["lint", "-r", "xx-fake-1"],
    "local AWS on a port that is not one": ["local-aws", "--port", "99999"],
    "demo params in a missing directory": ["local-aws", "--port", "0", "--demo-params", "no/such/dir/p.json"],
    "local AWS in a region that is not one": ["local-aws", "--port", "0", "--region", "xx-fake-1"],
    "link to a region that is not one": [
        "link",
        "--template-url",
        "https://b.s3.amazonaws.com/t.json",
        "--region",
        "mars-1",
    ],
    "link to a template that is not https": [
        "link",
        "--template-url",
        "http://example.com/t.json",
        "--region",
        "us-east-1",
    ],
    "stack command in a region that is not one": ["status", "s", "--region", "xx-fake-1"],
    "demo params where nothing can be written": ["local-aws", "--port", "0", "--demo-params", "/sys/p.json"],
    "publish to a bucket name S3 refuses": ["publish", "--bucket", "Bad_Bucket!", "--endpoint-url", NOWHERE],
    "publish to a bucket named like an IP address": ["publish", "--bucket", "192.168.1.1", "--endpoint-url", NOWHERE],
    "deploy with a role that is not an ARN": [
        "deploy",
        *STACK_PARAMS,
        "--yes",
        "--role-arn",
        "not-an-arn",
        *AT_NOWHERE,
    ],
    "plan with a bucket name S3 refuses": ["plan", *STACK_PARAMS, "--bucket", "-bucket", *AT_NOWHERE],
    "delete with a role that is not an ARN": ["delete", "s", "--force", "--yes", "--role-arn", "x", *AT_NOWHERE],
    "execute a change set that is neither a name nor an ARN": [
        "execute",
        "--stack-name",
        "s",
        "arn:aws:cloudformation:us-east-1:111111111111:stack/s/1",
        "--yes",
        *AT_NOWHERE,
    ],
}


@pytest.mark.parametrize("case", sorted(OTHER_BAD_INPUTS))
def test_other_bad_inputs_are_one_line_exit_2(tmp_path, case, run_in):
    result, here, before = run_in(tmp_path, OTHER_BAD_INPUTS[case])
    refused_cleanly(result, here, before)


@pytest.mark.parametrize(
    "domain",
    [
        "https://valohai.example.com:8443",
        "HTTPS://valohai.example.com/app",
        "ftp://valohai.example.com",
        "Http://a.example.com?x=1",
    ],
)
def test_params_import_refuses_a_domain_with_port_path_or_scheme(tmp_path, domain, run_in):
    config = tmp_path / "config.yaml"
    config.write_text(f"vpc_id: vpc-12345678\ndomain: {domain}\n")
    result, here, before = run_in(tmp_path, ["params", "import", str(config), "-o", "imported.json"])
    refused_cleanly(result, here, before)
    assert "host name only" in result.stderr


def test_params_import_takes_the_host_of_a_url_in_any_case(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("vpc_id: vpc-12345678\ndomain: HTTPS://Valohai.Example.com/\n")
    result = CliRunner().invoke(cli, ["params", "import", str(config), "-o", str(tmp_path / "imported.json")])
    assert result.exit_code == 0, result.output
    assert load_parameters(tmp_path / "imported.json")["Domain"] == "valohai.example.com"


@pytest.mark.parametrize(
    "command", [["params", "init", "--set", "VpcId=vpc-12345678"], ["params", "import", "config.yaml"]]
)
def test_params_writers_never_overwrite_without_force(tmp_path, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("config.yaml").write_text("vpc_id: vpc-12345678\n")
    Path("existing.json").write_text("keep me")
    result = CliRunner().invoke(cli, [*command, "-o", "existing.json"])
    assert result.exit_code == 2 and "--force" in result.stderr
    assert Path("existing.json").read_text() == "keep me"
    if command[1] == "import":
        itself = CliRunner().invoke(cli, [*command, "-o", "config.yaml", "--force"])
        assert itself.exit_code == 2 and "the file being read" in itself.stderr
        assert Path("config.yaml").read_text() == "vpc_id: vpc-12345678\n"


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + (REPO / "params" / "example.json").read_bytes())
    assert CliRunner().invoke(cli, ["params", "check", str(path)]).exit_code == 0


def test_yaml_values_stay_as_written(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("Parameters:\n  DatabaseEngineVersion: 16.10\n  WorkerVolumeSize: 0100\n  Domain: on\n")
    assert load_parameters(path) == {"DatabaseEngineVersion": "16.10", "WorkerVolumeSize": "0100", "Domain": "on"}


# -- the AWS client cannot be made: one line on every command that talks to AWS ------------------------------

EXAMPLE_PARAMS = str(REPO / "params" / "example.json")
AWS_COMMANDS = {
    "status": ["status", "s"],
    "outputs": ["outputs", "s"],
    "drift": ["drift", "s"],
    "delete": ["delete", "s", "--yes"],
    "diff": ["diff", "--stack-name", "s", "--params", EXAMPLE_PARAMS],
    "execute": ["execute", "--stack-name", "s", "cs-1", "--yes"],
    "plan": ["plan", "--stack-name", "s", "--params", EXAMPLE_PARAMS, "--skip-preflight"],
    "deploy": ["deploy", "--stack-name", "s", "--params", EXAMPLE_PARAMS, "--yes", "--skip-preflight"],
    "publish": ["publish", "--bucket", "templates-bucket"],
}
# (environment, extra options, what the one line says)
CLIENT_PROBLEMS = {
    "no region": ({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}, [], "no region"),
    "a profile that does not exist": ({"AWS_DEFAULT_REGION": "us-east-1"}, ["--profile", "nosuch"], "nosuch"),
    "an empty profile": ({"AWS_DEFAULT_REGION": "us-east-1"}, ["--profile", ""], "--profile"),
    "an access key without its secret": (
        {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"},
        [],
        "missing: AWS_SECRET_ACCESS_KEY",
    ),
    "a region that is not AWS's": (
        {"AWS_DEFAULT_REGION": "nowhere", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"},
        [],
        "'nowhere' is not an AWS region",
    ),
    "an AWS config file that cannot be parsed": ({}, [], "the AWS configuration cannot be used"),
    "a profile that is its own source": ({}, ["--profile", "loop"], "the AWS configuration cannot be used"),
}
# The AWS config file of those problems that have one.
CONFIG_FILES = {
    "an AWS config file that cannot be parsed": "[default\nregion = us-east-1\n",
    "a profile that is its own source": (
        "[profile loop]\nregion = us-east-1\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = loop\n"
    ),
}


@pytest.fixture
def no_aws_configuration(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize("problem", sorted(CLIENT_PROBLEMS))
def test_a_client_that_cannot_be_made_is_one_line_on_every_command(no_aws_configuration, monkeypatch, problem):
    environment, options, words = CLIENT_PROBLEMS[problem]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if problem in CONFIG_FILES:
        config = Path(os.environ["AWS_CONFIG_FILE"])
        config.write_text(CONFIG_FILES[problem])
    for command, args in AWS_COMMANDS.items():
        if problem == "no region" and command == "publish":
            continue  # S3 needs no region: botocore's client for it is made without one
        result = CliRunner().invoke(cli, [*args, *options, "--endpoint-url", NOWHERE])
        assert result.exit_code == 2, (command, result.exit_code, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (command, result.exception)
        (line,) = result.stderr.splitlines()
        assert line.startswith("Error: ") and words in line, (command, line)


# -- what is printed never holds the endpoint's credentials, nor a page of HTML -------------------------------


# Passwords as people write them into a URL: a quote, a double quote, a space, an unencoded @.
PASSWORDS = ["s3cr3t", "p'ss", 'p"ss', "p ss", "p@ss"]


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize(("port", "exit_code"), [("9", 1), ("99999x", 2)], ids=["unreachable", "bad port"])
def test_credentials_in_the_endpoint_are_never_printed(aws_env, password, port, exit_code):
    endpoint = f"http://admin:{password}@127.0.0.1:{port}"
    result = CliRunner().invoke(cli, ["status", "s", "--endpoint-url", endpoint, "--region", "us-east-1"])
    assert result.exit_code == exit_code, result.output
    assert password not in result.output and "admin" not in result.output, result.output
    assert repr(password)[1:-1] not in result.output, result.output
    assert "****@127.0.0.1" in result.output


@pytest.fixture
def html_endpoint():
    """An endpoint that answers every request with an HTML page (a proxy's, or a wrong path's); under /xml, with
    a well-formed XML document that is not an AWS answer; under /text, with a line of plain text."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        status = 200

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = b"<!DOCTYPE html>\n<html><head><title>Proxy</title></head>\n<body><h1>Sign in</h1></body></html>"
            if self.path.startswith("/xml"):
                body = b"<?xml version='1.0'?><Foo>bar</Foo>"
            elif self.path.startswith("/text"):
                body = b"Service unavailable, try again later"
            self.send_response(int(self.path.strip("/") or 200) if self.path.strip("/").isdigit() else self.status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST  # S3's REST calls

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("status", ["200", "502"])
def test_an_endpoint_that_answers_html_is_one_line(aws_env, html_endpoint, status):
    result = CliRunner().invoke(
        cli, ["status", "s", "--endpoint-url", f"{html_endpoint}/{status}", "--region", "us-east-1"]
    )
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ") and "<" not in line, line


def test_an_endpoint_that_answers_xml_that_is_not_aws_is_one_line_on_every_command(aws_env, html_endpoint):
    commands = {**AWS_COMMANDS, "preflight": ["preflight", "--params", EXAMPLE_PARAMS]}
    for command, args in commands.items():
        if command == "publish":
            continue  # S3's REST answers have any root element (and an upload's has none)
        result = CliRunner().invoke(cli, [*args, "--endpoint-url", f"{html_endpoint}/xml", "--region", "us-east-1"])
        assert result.exit_code == 1, (command, result.output)
        (line,) = result.stderr.splitlines()
        assert "an XML document <Foo> (HTTP 200), not an AWS response" in line, (command, line)


def test_an_endpoint_that_answers_plain_text_is_one_line_on_every_command(aws_env, html_endpoint):
    """publish included: botocore reads S3's GetBucketLocation answer as XML itself, past the parser (QA: a
    traceback ending in ParseError)."""
    for command, args in AWS_COMMANDS.items():
        result = CliRunner().invoke(cli, [*args, "--endpoint-url", f"{html_endpoint}/text", "--region", "us-east-1"])
        assert result.exit_code == 1, (command, result.output)
        (line,) = result.stderr.splitlines()
        assert "not an AWS response" in line and "Service unavailable" not in line, (command, line)


def test_a_foreign_template_is_one_line_in_preflight(tmp_path, run_in):
    foreign = tmp_path / "foreign.json"
    foreign.write_text(
        json.dumps(
            {
                "Parameters": {"Name": {"Type": "String"}},
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Ref": "Name"}}}},
            }
        )
    )
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"Parameters": {"Name": "x"}}))
    args = ["preflight", "--params", str(params), "--template", str(foreign), "--endpoint-url", NOWHERE]
    result, here, before = run_in(tmp_path, [*args, "--region", "us-east-1"])
    refused_cleanly(result, here, before)
    assert "has no parameter VpcId" in result.stderr
    assert "--skip-preflight" not in result.stderr, "preflight's advice is what preflight can do"
