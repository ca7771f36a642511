"""AWS's own rules that the schema and cfn-lint do not check, checked offline (params check, the template) and
refused by the local AWS as AWS refuses them: EC2's description characters, instance types, CloudFormation's
quotas on the processed template, stack tags, parameter files people already have, the template bucket's
region."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from cfn import REPO, SAMPLE_WORKERS
from click.testing import CliRunner

from valohai_cfn import aws_rules, intrinsics, publish
from valohai_cfn.aws_rules import tag_problems
from valohai_cfn.cli import cli
from valohai_cfn.language_extensions import expand
from valohai_cfn.params import (
    ParamsError,
    PreviousValue,
    check_parameters,
    dump_parameters,
    known_instance_types,
    load_parameter_file,
    load_parameters,
    template_footprint,
)

EXAMPLE = REPO / "params" / "example.json"
EXAMPLE_VALUES = load_parameters(EXAMPLE)


def params_check(path):
    return CliRunner().invoke(cli, ["params", "check", str(path)])


def local(aws_env) -> list[str]:
    return ["--endpoint-url", aws_env.endpoint_url, "--region", "us-east-1"]


def written(tmp_path, values: dict, name: str = "params.json"):
    path = tmp_path / name
    path.write_text(dump_parameters(values))
    return path


# -- EC2's description characters ------------------------------------------------------------------

DESCRIBED = ("AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress")


def _conditions_in(node) -> set[str]:
    """The conditions a value depends on (Fn::If and Condition references)."""
    found = set()
    if isinstance(node, dict):
        if "Fn::If" in node:
            found.add(node["Fn::If"][0])
        if set(node) == {"Condition"} and isinstance(node["Condition"], str):
            found.add(node["Condition"])
        for value in node.values():
            found |= _conditions_in(value)
    elif isinstance(node, list):
        for item in node:
            found |= _conditions_in(item)
    return found


def _descriptions(properties: dict) -> list[str]:
    texts = [properties.get("GroupDescription"), properties.get("Description")]
    for key in ("SecurityGroupIngress", "SecurityGroupEgress"):
        texts += [rule.get("Description") for rule in properties.get(key, [])]
    return [t for t in texts if t is not None]


def _described_under_every_condition(template: dict) -> tuple[list[str], int]:
    """Check every security group's and rule's description, under every combination of the conditions that
    decide them (whether the resource exists, each Fn::If in it), evaluated as CloudFormation does; returns
    those conditions and how many descriptions were checked."""
    described = {n: r for n, r in template["Resources"].items() if r["Type"] in DESCRIBED}
    deciding = sorted(
        {r["Condition"] for r in described.values() if "Condition" in r}
        | {c for r in described.values() for c in _conditions_in(r.get("Properties", {}))}
    )
    checked = 0
    for truth in itertools.product([True, False], repeat=len(deciding)):
        evaluate = intrinsics.Evaluator(
            parameters=intrinsics.parameter_values(template["Parameters"], {}),
            conditions=template.get("Conditions", {}),
            mappings=template.get("Mappings", {}),
            resources=template["Resources"],
        )
        evaluate._condition_values.update(dict(zip(deciding, truth, strict=True)))
        for name, resource in described.items():
            if "Condition" in resource and not evaluate.condition(resource["Condition"]):
                continue
            for text in _descriptions(evaluate(resource["Properties"])):
                assert not intrinsics.references(text), f"{name}: a description known only at deploy: {text}"
                assert aws_rules.ec2_description_problem(text) is None, f"{name}: {text!r}"
                checked += 1
    return deciding, checked


def test_every_string_that_reaches_an_ec2_description_is_one_ec2_takes(raw_template):
    """EC2 takes only letters, digits, spaces and ._-:/()#,@[]+=&;{}!$* in a description (the SSH rule had an
    apostrophe)."""
    deciding, checked = _described_under_every_condition(expand(raw_template, SAMPLE_WORKERS))
    assert "UseHttps" in deciding  # the HTTPS rule exists only with it
    assert checked > 20


def test_the_ssh_templates_rule_has_a_description_ec2_takes(ssh_template):
    """The SSH rule (now the SSH template's, which has no condition): its description, checked as above."""
    assert _described_under_every_condition(ssh_template) == ([], 1)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("SSH from the operator's network", '"\'" not allowed'), ("é", "'é' not allowed"), ("x" * 256, "256 characters")],
)
def test_ec2_description_rule_names_what_ec2_refuses(text, problem):
    assert problem in aws_rules.ec2_description_problem(text)
    assert aws_rules.ec2_description_problem("Redis from workers (6379) #1 [a+b]=c&d;{e}!$*@:/,") is None


# -- instance types, and every problem of every list -------------------------------------------------


def test_every_real_instance_type_passes_params_check():
    """The offline check uses botocore's and cfn-lint's lists; the template's own pattern accepts each of them
    (c7i.metal-24xl was refused as "must be EC2 instance types")."""
    specs = json.loads((REPO / "templates" / "valohai-self-hosted.json").read_text())["Parameters"]
    types = sorted(known_instance_types())
    assert "c7i.metal-24xl" in types and len(types) > 1000
    for parameter in ("WorkerInstanceTypes", "WorkerSpotInstanceTypes"):
        refused = [t for t in types if not re.fullmatch(specs[parameter]["AllowedPattern"], t)]
        assert refused == [], parameter
    assert check_parameters(specs, {**EXAMPLE_VALUES, "WorkerInstanceTypes": "c7i.metal-24xl"}) == []


def test_a_stray_comma_in_one_list_hides_nothing_of_the_other(tmp_path):
    values = {**EXAMPLE_VALUES, "WorkerInstanceTypes": "t3.medium,,c5.xlarge", "WorkerSpotInstanceTypes": "x9.nope"}
    result = params_check(written(tmp_path, values))
    assert result.exit_code == 2
    assert "WorkerInstanceTypes = 't3.medium,,c5.xlarge': an empty item (a stray comma?)" in result.output
    assert "WorkerSpotInstanceTypes = 'x9.nope': x9.nope is not an EC2 instance type" in result.output


# -- CloudFormation's quotas on the processed template ------------------------------------------------


def _types(count: int) -> str:
    return ",".join(sorted(known_instance_types())[:count])


def test_too_many_worker_types_are_refused_with_the_number_that_fits(tmp_path):
    on_demand = {**EXAMPLE_VALUES, "WorkerSpotInstanceTypes": ""}
    result = params_check(written(tmp_path, {**on_demand, "WorkerInstanceTypes": _types(260)}))
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert "WorkerInstanceTypes: 260 worker types make 576 resources (CloudFormation's quota: 500)" in line
    assert "537 outputs (CloudFormation's quota: 200): at most 91 types fit" in line
    assert params_check(written(tmp_path, {**on_demand, "WorkerInstanceTypes": _types(91)})).exit_code == 0
    assert params_check(written(tmp_path, {**on_demand, "WorkerInstanceTypes": _types(92)})).exit_code == 2
    # build --processed-for does not write what CloudFormation would refuse (QA: it wrote 92 types, exit 0).
    out = tmp_path / "out"
    too_many = written(tmp_path, {**on_demand, "WorkerInstanceTypes": _types(92)})
    built = CliRunner().invoke(cli, ["build", "--processed-for", str(too_many), "-o", str(out)])
    assert built.exit_code == 2 and "at most 91 types fit" in built.output and not out.exists(), built.output
    # Spread over both lists, one more fits: the empty spot list no longer makes its placeholder.
    both = params_check(
        written(tmp_path, {**on_demand, "WorkerSpotInstanceTypes": _types(50), "WorkerInstanceTypes": _types(100)[50:]})
    )
    assert "at most 92 types fit" in both.output


def test_the_footprint_is_what_the_transform_makes(raw_template):
    """The offline count is the processed template's own, for lists of any length and name."""
    footprint = template_footprint(raw_template)
    for on_demand, spot in ((1, 0), (7, 3), (0, 40)):
        lists = {
            "WorkerInstanceTypes": sorted(known_instance_types())[:on_demand],
            "WorkerSpotInstanceTypes": sorted(known_instance_types())[-spot:] if spot else [],
        }
        processed = expand(raw_template, {k: ",".join(v) for k, v in lists.items()})
        used = footprint.used(lists)
        assert used["resources"] == len(processed["Resources"])
        assert used["outputs"] == len(processed["Outputs"])
        # Bytes: never less than the transform makes; more by what &{} drops beyond one dot of a name.
        assert 0 <= used["bytes"] - aws_rules.processed_size(processed) <= 2 * (on_demand + spot) + 8
    assert footprint.quotas == {"resources": 500, "outputs": 200, "bytes": 1_000_000}  # cfn-lint's LIMITS


# -- stack tags -----------------------------------------------------------------------------------


TAGS_AWS_REFUSES = {
    "aws:team=x": "the prefix aws: is reserved",
    "team=" + "v" * 300: "a value is 1 to 256 characters, not 300",
    "k" * 129 + "=x": "a key is 1 to 128 characters, not 129",
    "team=a|b": "'|' not allowed",
}


def test_tags_aws_refuses_are_refused_before_any_call():
    """Exit 2 before any AWS call: the endpoint is a closed port, which any call would have failed on (exit 1)."""
    for tag, refused in TAGS_AWS_REFUSES.items():
        result = CliRunner().invoke(
            cli,
            [
                "deploy",
                "--stack-name",
                "tagged",
                "--params",
                str(EXAMPLE),
                "--tag",
                tag,
                "--yes",
                "--skip-preflight",
                "--endpoint-url",
                "http://127.0.0.1:9",
                "--region",
                "us-east-1",
            ],
        )
        assert result.exit_code == 2, result.output
        assert refused in result.output


def test_valohai_cfn_s_own_tag_counts_and_is_not_the_user_s(tmp_path):
    """QA: 50 tags in a file passed `params check`, then plan refused 51 (valohai=1 is added); valohai=0 was
    silently replaced; --tag team=a --tag team=b silently kept b."""
    fifty = {f"team{i}": "x" for i in range(50)}
    assert tag_problems(fifty) == ["51 tags with valohai-cfn's valohai=1: a stack takes at most 50"]
    assert tag_problems({**dict(list(fifty.items())[:49]), "valohai": "1"}) == []
    assert tag_problems({"valohai": "0"}) == ["tag valohai: valohai-cfn's own (valohai=1 marks the stacks it made)"]
    params = tmp_path / "pipeline.json"
    params.write_text(json.dumps({"Parameters": {}, "Tags": fifty}))
    checked = CliRunner().invoke(cli, ["params", "check", str(params)])
    assert checked.exit_code == 2 and "51 tags" in checked.output, checked.output
    twice = CliRunner().invoke(
        cli,
        ["plan", "--stack-name", "s", "--params", str(EXAMPLE), "--tag", "team=a", "--tag", "team=b",
         "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"],
    )  # fmt: skip
    assert twice.exit_code == 2 and "team is given twice" in twice.output, twice.output
    # On the command line as in a file: another value of valohai-cfn's own tag is refused, not replaced.
    own = CliRunner().invoke(
        cli,
        ["plan", "--stack-name", "s", "--params", str(EXAMPLE), "--tag", "valohai=0",
         "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"],
    )  # fmt: skip
    assert own.exit_code == 2 and "tag valohai: valohai-cfn's own" in own.output, own.output


def test_the_local_aws_refuses_tags_cloudformation_refuses(aws_env, local_session):
    cfn = local_session.client("cloudformation", endpoint_url=aws_env.endpoint_url)
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    for tags in ([{"Key": "aws:team", "Value": "x"}], [{"Key": "team", "Value": "v" * 257}]):
        with pytest.raises(cfn.exceptions.ClientError, match="ValidationError"):
            cfn.create_stack(StackName="reserved-tag", TemplateBody=body, Tags=tags)


# -- parameter files people already have ---------------------------------------------------------


def test_use_previous_value_is_read_and_refused_on_a_create(tmp_path, aws_env, local_session, demo_params):
    entries = json.loads(demo_params.read_text())
    entries = [e for e in entries if e["ParameterKey"] != "EnvironmentName"]
    entries.append({"ParameterKey": "EnvironmentName", "UsePreviousValue": True})
    path = tmp_path / "previous.json"
    path.write_text(json.dumps(entries))
    assert isinstance(load_parameters(path)["EnvironmentName"], PreviousValue)
    checked = params_check(path)
    assert checked.exit_code == 0, checked.output
    assert "EnvironmentName: UsePreviousValue" in checked.output
    created = CliRunner().invoke(
        cli,
        ["deploy", "--stack-name", "previous", "--params", str(path), "--yes", "--skip-preflight", *local(aws_env)],
    )
    assert created.exit_code == 2, created.output
    assert "EnvironmentName: UsePreviousValue keeps a deployed stack's value; this is a new stack" in created.output
    cfn = local_session.client("cloudformation", endpoint_url=aws_env.endpoint_url)
    assert "previous" not in {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]}


def test_use_previous_value_beside_a_value_is_refused(tmp_path):
    path = tmp_path / "both.json"
    path.write_text(json.dumps([{"ParameterKey": "Domain", "ParameterValue": "a.b.com", "UsePreviousValue": True}]))
    with pytest.raises(ParamsError, match="UsePreviousValue true and a ParameterValue"):
        load_parameters(path)


def test_a_template_configuration_files_tags_are_applied_and_its_stack_policy_refused(
    tmp_path, aws_env, local_session, demo_params
):
    values = {e["ParameterKey"]: e["ParameterValue"] for e in json.loads(demo_params.read_text())}
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps({"Parameters": values, "Tags": {"team": "ml", "cost-center": "42"}}))
    assert load_parameter_file(path).tags == {"team": "ml", "cost-center": "42"}
    planned = CliRunner().invoke(
        cli,
        ["plan", "--stack-name", "pipeline", "--params", str(path), "--skip-preflight", "--keep", *local(aws_env)],
    )
    assert planned.exit_code == 0, planned.output
    cfn = local_session.client("cloudformation", endpoint_url=aws_env.endpoint_url)
    (summary,) = cfn.list_change_sets(StackName="pipeline")["Summaries"]
    change_set = cfn.describe_change_set(StackName="pipeline", ChangeSetName=summary["ChangeSetName"])
    assert {"Key": "team", "Value": "ml"} in change_set["Tags"] and {"Key": "cost-center", "Value": "42"} in change_set[
        "Tags"
    ]

    path.write_text(json.dumps({"Parameters": values, "StackPolicy": {"Statement": []}}))
    refused = params_check(path)
    assert refused.exit_code == 2 and "StackPolicy is not applied: valohai-cfn sets the stack policy" in refused.output
    path.write_text(json.dumps({"Parameters": values, "Tags": {"aws:x": "y"}}))
    assert "the prefix aws: is reserved" in params_check(path).output


# -- the template's bucket -------------------------------------------------------------------------


def test_publish_names_the_buckets_own_region(aws_env, local_session, tmp_path):
    """B in us-east-1, the stack in eu-west-1: the URL is on us-east-1's S3 host, with a warning."""
    s3 = local_session.client("s3", endpoint_url=aws_env.endpoint_url)
    s3.create_bucket(Bucket="templates-east")
    assert publish.bucket_region(s3, "templates-east") == "us-east-1"
    assert publish.object_url(s3, "templates-east", "k.json", "us-east-1") == (
        "https://templates-east.s3.us-east-1.amazonaws.com/k.json"
    )
    s3.create_bucket(Bucket="templates-west", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert publish.bucket_region(s3, "templates-west") == "eu-west-1"
    assert publish.region_warning("templates-west", "eu-west-1", "eu-west-1") is None
    with pytest.raises(publish.PublishError, match="another partition"):
        publish.region_warning("templates-east", "us-east-1", "cn-north-1")
    result = CliRunner().invoke(
        cli,
        ["publish", "--bucket", "templates-east", "--endpoint-url", aws_env.endpoint_url, "--region", "eu-west-1"],
    )
    assert result.exit_code == 0, result.output
    assert "Warning: bucket templates-east is in us-east-1, not in the stack's region eu-west-1" in result.output
    assert "eu-west-1.console.aws.amazon.com" in result.output
