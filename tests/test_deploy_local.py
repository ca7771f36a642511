"""End to end against valohai-cfn's local AWS on 127.0.0.1, with the real template, through the CLI."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from valohai_cfn.cli import cli


def run(endpoint: str, *args: str):
    return CliRunner().invoke(cli, [*args, "--endpoint-url", endpoint, "--region", "us-east-1"])


def with_parameter(path, key: str, value: str):
    entries = [e for e in json.loads(path.read_text()) if e["ParameterKey"] != key]
    entries.append({"ParameterKey": key, "ParameterValue": value})
    changed = path.with_name(f"changed-{key}.json")
    changed.write_text(json.dumps(entries))
    return changed


def stack_parameters(cfn, name: str) -> dict[str, str]:
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def test_create_redeploy_update_plan_status_delete(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    prefix = json.loads(demo_params.read_text())[-1]["ParameterValue"]

    created = run(endpoint, "deploy", "--stack-name", "e2e", "--params", str(demo_params), "--yes")
    assert created.exit_code == 0, created.output
    assert "CREATE_COMPLETE" in created.output and "Termination protection is on" in created.output
    (stack,) = cfn.describe_stacks(StackName="e2e")["Stacks"]
    assert stack["EnableTerminationProtection"] is True
    assert {"Key": "valohai", "Value": "1"} in stack["Tags"]
    policy = json.loads(cfn.get_stack_policy(StackName="e2e")["StackPolicyBody"])
    assert "LogicalResourceId/Database" in policy["Statement"][1]["Resource"]
    # The resources moto lacks exist for real afterwards, through their own APIs.
    secret = json.loads(
        local_session.client("secretsmanager", endpoint_url=endpoint).get_secret_value(
            SecretId=f"{prefix}-secret-dbpassword"
        )["SecretString"]
    )
    assert secret["username"] == "roi" and len(secret["password"]) == 32 and secret["port"] == 5432
    elasticache = local_session.client("elasticache", endpoint_url=endpoint)
    (group,) = elasticache.describe_replication_groups(ReplicationGroupId=f"{prefix}-queue")["ReplicationGroups"]
    assert group["AtRestEncryptionEnabled"] is True
    ssm = local_session.client("ssm", endpoint_url=endpoint)
    queue_host = ssm.get_parameter(Name=f"/{prefix}/queue-host")["Parameter"]["Value"]
    assert queue_host == group["NodeGroups"][0]["PrimaryEndpoint"]["Address"]

    again = run(endpoint, "deploy", "--stack-name", "e2e", "--params", str(demo_params), "--yes")
    assert again.exit_code == 0, again.output
    assert "up to date" in again.output
    empty = re.search(r"Creating change set (\S+)", again.output).group(1)
    assert empty not in {c["ChangeSetName"] for c in cfn.list_change_sets(StackName="e2e")["Summaries"]}

    bigger = with_parameter(demo_params, "CacheNodeType", "cache.m6g.large")
    planned = run(endpoint, "plan", "--stack-name", "e2e", "--params", str(bigger))
    assert planned.exit_code == 0, planned.output
    assert "was not executed" in planned.output
    assert stack_parameters(cfn, "e2e")["CacheNodeType"] == "cache.m5.large"

    updated = run(endpoint, "deploy", "--stack-name", "e2e", "--params", str(bigger), "--yes")
    assert updated.exit_code == 0, updated.output
    assert "(UPDATE)" in updated.output and "UPDATE_COMPLETE" in updated.output
    assert stack_parameters(cfn, "e2e")["CacheNodeType"] == "cache.m6g.large"
    (group,) = elasticache.describe_replication_groups(ReplicationGroupId=f"{prefix}-queue")["ReplicationGroups"]
    assert group["CacheNodeType"] == "cache.m6g.large"

    status = run(endpoint, "status", "e2e")
    assert status.exit_code == 0, status.output
    assert "Stack e2e: UPDATE_COMPLETE" in status.output and "Last events:" in status.output

    refused = run(endpoint, "delete", "e2e", "--yes")
    assert refused.exit_code == 1 and "termination protection" in refused.output

    deleted = run(endpoint, "delete", "e2e", "--yes", "--force")
    assert deleted.exit_code == 0, deleted.output
    assert "DataBucket" in deleted.output and f"{prefix}-secret-dbpassword" in deleted.output
    assert "Stack e2e is deleted" in deleted.output
    assert [
        s
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackName"] == "e2e" and s["StackStatus"] != "DELETE_COMPLETE"
    ] == []
    # What holds data outlives the stack.
    s3 = local_session.client("s3", endpoint_url=endpoint)
    assert any(b["Name"].startswith(f"{prefix}-data-") for b in s3.list_buckets()["Buckets"])


def test_without_a_terminal_or_yes_deploy_refuses_before_anything(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    refused = run(endpoint, "deploy", "--stack-name", "shown", "--params", str(demo_params))
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1 and "add --yes" in refused.output.lower()
    assert "shown" not in {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]}


def test_a_kept_plan_of_a_new_stack_is_created_by_the_next_deploy(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    shown = run(endpoint, "plan", "--stack-name", "shown", "--params", str(demo_params), "--keep")
    assert shown.exit_code == 0, shown.output
    assert "Database" in shown.output and "was not executed" in shown.output
    assert cfn.describe_stacks(StackName="shown")["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    # REVIEW_IN_PROGRESS still means CREATE.
    created = run(
        endpoint,
        "deploy",
        "--stack-name",
        "shown",
        "--params",
        str(demo_params),
        "--yes",
        "--no-termination-protection",
    )
    assert created.exit_code == 0, created.output
    assert "(CREATE)" in created.output and "CREATE_COMPLETE" in created.output
    assert cfn.describe_stacks(StackName="shown")["Stacks"][0]["EnableTerminationProtection"] is False


def test_status_of_a_missing_stack_is_one_line(aws_env):
    result = run(aws_env.endpoint_url, "status", "no-such-stack")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: stack no-such-stack does not exist"


def test_bad_params_file_is_one_line(aws_env, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"ParameterKey": "VpcId",')
    result = run(aws_env.endpoint_url, "deploy", "--stack-name", "x", "--params", str(broken), "--yes")
    assert result.exit_code == 2
    assert "broken.json: line 1" in result.output and "Traceback" not in result.output


def test_delete_lists_the_final_snapshot_and_what_is_retained(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    created = run(
        endpoint, "deploy", "--stack-name", "kept", "--params", str(demo_params), "--yes", "--no-termination-protection"
    )
    assert created.exit_code == 0, created.output
    deleted = run(endpoint, "delete", "kept", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert "final snapshot of Database (AWS::RDS::DBInstance)" in deleted.output
    assert "kept: DataBucket (AWS::S3::Bucket)" in deleted.output
    assert len(re.findall(r"^  kept: \w+ \(AWS::SecretsManager::Secret\)", deleted.output, re.MULTILINE)) == 6


def test_delete_without_a_terminal_or_yes_deletes_nothing(aws_env, local_session, demo_params):
    endpoint = aws_env.endpoint_url
    assert run(endpoint, "deploy", "--stack-name", "asked", "--params", str(demo_params), "--yes").exit_code == 0
    result = run(endpoint, "delete", "asked", "--force")
    assert result.exit_code == 1 and "not deleting without confirmation" in result.output
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    (stack,) = cfn.describe_stacks(StackName="asked")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE" and stack["EnableTerminationProtection"] is True
