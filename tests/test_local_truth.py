"""The local AWS tells what CloudFormation would: a change set of only what the conditions keep, a parameter
change as a Modify, an event per resource in dependency order, Outputs and logical ids on the stack."""

from __future__ import annotations

import json
import re

from cfn import dependencies, resolve
from test_deploy_local import run, with_parameter

from valohai_cfn.params import load_parameters


def demo_values(path) -> dict[str, str]:
    return load_parameters(path)


def change_set(cfn, stack: str, template_json: str, values: dict[str, str], kind: str) -> dict:
    name = f"truth-{kind.lower()}-{len(cfn.list_stacks()['StackSummaries'])}"
    cfn.create_change_set(
        StackName=stack,
        ChangeSetName=name,
        ChangeSetType=kind,
        TemplateBody=template_json,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        Capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cfn.get_waiter("change_set_create_complete").wait(
        StackName=stack, ChangeSetName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return cfn.describe_change_set(StackName=stack, ChangeSetName=name)


def test_change_set_lists_only_what_the_conditions_keep(
    aws_env, local_session, demo_params, raw_template, template_json
):
    cfn = local_session.client("cloudformation", endpoint_url=aws_env.endpoint_url)
    values = demo_values(demo_params)
    expected = resolve(raw_template, values)["Resources"]
    described = change_set(cfn, "conditions", template_json, values, "CREATE")
    listed = {c["ResourceChange"]["LogicalResourceId"] for c in described["Changes"]}
    # The demo has no domain or certificate: those resources' conditions are false.
    assert {"Certificate", "DnsRecord", "HttpsListener"}.isdisjoint(listed)
    assert listed == set(expected)
    assert {c["ResourceChange"]["Action"] for c in described["Changes"]} == {"Add"}


def test_deploy_shows_every_resource_in_dependency_order_then_outputs(
    aws_env, local_session, demo_params, raw_template, template_json
):
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    expected = resolve(raw_template, demo_values(demo_params))

    created = run(endpoint, "deploy", "--stack-name", "truth", "--params", str(demo_params), "--yes")
    assert created.exit_code == 0, created.output
    tally = re.findall(r"(\d+) of (\d+) done, 0 in progress, 0 failed", created.output)
    assert tally and tally[-1] == (str(len(expected["Resources"])),) * 2

    events = cfn.get_paginator("describe_stack_events").paginate(StackName="truth").build_full_result()
    events = [e for e in reversed(events["StackEvents"]) if e["ResourceType"] != "AWS::CloudFormation::Stack"]
    position = {(e["LogicalResourceId"], e["ResourceStatus"]): i for i, e in enumerate(events)}
    for name in expected["Resources"]:
        started = position[(name, "CREATE_IN_PROGRESS")]
        assert started < position[(name, "CREATE_COMPLETE")], name
        for dependency in dependencies(expected, name, direct=True):
            assert position[(dependency, "CREATE_COMPLETE")] < started, f"{name} started before {dependency}"

    listed = cfn.get_paginator("list_stack_resources").paginate(StackName="truth").build_full_result()
    assert {r["LogicalResourceId"] for r in listed["StackResourceSummaries"]} <= set(expected["Resources"])
    assert all(r["LogicalResourceId"] for r in listed["StackResourceSummaries"])

    status = run(endpoint, "status", "truth")
    assert status.exit_code == 0, status.output
    assert "(no outputs)" not in status.output
    for output in expected["Outputs"]:
        assert re.search(rf"^\s*{output}\s+\S", status.output, re.MULTILINE), output
    as_json = run(endpoint, "status", "truth", "--output", "json")
    assert set(json.loads(as_json.stdout)["outputs"]) == set(expected["Outputs"])


def test_a_parameter_change_is_a_modify_of_what_uses_it(aws_env, local_session, demo_params, template_json):
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    created = run(endpoint, "deploy", "--stack-name", "modify", "--params", str(demo_params), "--yes")
    assert created.exit_code == 0, created.output

    values = demo_values(with_parameter(demo_params, "RoiInstanceType", "m5a.2xlarge"))
    described = change_set(cfn, "modify", template_json, values, "UPDATE")
    changes = {c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"]["Action"] for c in described["Changes"]}
    assert changes == {"RoiInstance": "Modify"}


def test_deleting_shows_what_is_kept_as_skipped(aws_env, local_session, demo_params, raw_template):
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    flags = ("--yes", "--no-termination-protection")
    assert run(endpoint, "deploy", "--stack-name", "gone", "--params", str(demo_params), *flags).exit_code == 0
    stack_id = cfn.describe_stacks(StackName="gone")["Stacks"][0]["StackId"]
    assert run(endpoint, "delete", "gone", "--yes").exit_code == 0

    events = cfn.get_paginator("describe_stack_events").paginate(StackName=stack_id).build_full_result()
    final = {e["LogicalResourceId"]: e["ResourceStatus"] for e in reversed(events["StackEvents"])}
    kept = {
        name
        for name, r in resolve(raw_template, demo_values(demo_params))["Resources"].items()
        if r.get("DeletionPolicy") == "Retain"
    }
    assert kept and {final[name] for name in kept} == {"DELETE_SKIPPED"}
    # A snapshot is taken and the database itself deleted.
    assert final["Database"] == final["RoiInstance"] == final["gone"] == "DELETE_COMPLETE"
