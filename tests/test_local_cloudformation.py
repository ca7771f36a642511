"""The local AWS's CloudFormation does what CloudFormation does, for what issue 18 measured on main: a
parameter reached through Fn::Sub is a change that happens, a final snapshot for DeletionPolicy Snapshot,
a kept CREATE change set executes, a failed first create is reported against the resource that failed and
leaves a stack that can be listed and deleted, a second create of one stack is refused, and the rules
AWS enforces — termination protection on DeleteStack, the stack policy on updates, the capabilities a
template needs — are enforced."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.exceptions import ClientError
from cfn import REPO
from live import Clients
from test_deploy_local import run

from valohai_cfn.local_aws import create_demo_network
from valohai_cfn.params import dump_parameters

STACK = "measured"


def _parameters(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


@pytest.fixture(scope="module")
def deployed(local_aws, template_json, tmp_path_factory):
    """One demo stack, deployed by the command line as a user would, and its parameters as a file."""
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    clients = Clients(session, local_aws.endpoint_url)
    values = {
        **create_demo_network(clients("ec2"), "us-east-1"),
        "DatabaseDeletionProtection": "false",
        "ResourcePrefix": STACK,
    }
    path = tmp_path_factory.mktemp("measured") / "params.json"
    path.write_text(dump_parameters(values))
    with pytest.MonkeyPatch.context() as env:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            env.setenv(name, value)
        flags = ("--yes", "--skip-preflight", "--no-termination-protection")
        created = run(local_aws.endpoint_url, "deploy", "--stack-name", STACK, "--params", str(path), *flags)
    assert created.exit_code == 0, created.output
    return clients, values, path


def test_a_domain_change_reaches_the_url_setting_and_the_summary(aws_env, deployed):
    """Main: "0 of 0 done … UPDATE_COMPLETE", /<prefix>/url unchanged, the summary printing the old URL."""
    clients, values, path = deployed
    entries = [e for e in json.loads(path.read_text()) if e["ParameterKey"] != "Domain"]
    changed = path.with_name("domain.json")
    changed.write_text(json.dumps([*entries, {"ParameterKey": "Domain", "ParameterValue": "new.example.com"}]))
    updated = run(
        aws_env.endpoint_url, "deploy", "--stack-name", STACK, "--params", str(changed), "--yes", "--skip-preflight"
    )
    assert updated.exit_code == 0, updated.output
    url = clients("ssm").get_parameter(Name=f"/{STACK}/url")["Parameter"]["Value"]
    assert url == "http://new.example.com"
    done, total = re.findall(r"(\d+) of (\d+) done", updated.output)[-1]
    assert done == total and int(total) > 0
    assert "UPDATE_COMPLETE" in updated.output and "http://new.example.com" in updated.output
    origins = clients("s3").get_bucket_cors(Bucket=f"{STACK}-data-123456789012-us-east-1")["CORSRules"][0]
    assert origins["AllowedOrigins"] == ["http://new.example.com"]
    values["Domain"] = "new.example.com"


def test_delete_stack_refuses_while_termination_protection_is_on(deployed):
    clients, _, _ = deployed
    cfn = clients("cloudformation")
    cfn.update_termination_protection(StackName=STACK, EnableTerminationProtection=True)
    with pytest.raises(ClientError, match=r"cannot be deleted while TerminationProtection is enabled") as refused:
        cfn.delete_stack(StackName=STACK)
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"].endswith("_COMPLETE")
    cfn.update_termination_protection(StackName=STACK, EnableTerminationProtection=False)


def test_the_stack_policy_refuses_replacing_the_database(deployed, template_json):
    """The project's stack policy denies Update:Replace of the database: a change to a create-only property
    of it (its DBName) fails the update, which rolls back, and the database stays as it was."""
    clients, values, _ = deployed
    cfn = clients("cloudformation")
    cfn.set_stack_policy(StackName=STACK, StackPolicyBody=(REPO / "templates" / "stack-policy.json").read_text())
    template = json.loads(template_json)
    template["Resources"]["Database"]["Properties"]["DBName"] = "otherdb"
    change_set = cfn.create_change_set(
        StackName=STACK,
        ChangeSetName="replace-database",
        TemplateBody=json.dumps(template),
        Parameters=_parameters(values),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    described = cfn.describe_change_set(ChangeSetName=change_set["Id"])
    (database,) = [
        c["ResourceChange"] for c in described["Changes"] if c["ResourceChange"]["LogicalResourceId"] == "Database"
    ]
    assert database["Replacement"] == "True"
    cfn.execute_change_set(ChangeSetName=change_set["Id"])
    (stack,) = cfn.describe_stacks(StackName=STACK)["Stacks"]
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName=STACK)["StackEvents"]
    (denied,) = [e for e in events if e["ResourceStatus"] == "UPDATE_FAILED"]
    assert denied["LogicalResourceId"] == "Database"
    assert (
        "denied by stack policy" in denied["ResourceStatusReason"]
        and "Update:Replace" in denied["ResourceStatusReason"]
    )
    (db,) = clients("rds").describe_db_instances(DBInstanceIdentifier=f"{STACK}-database")["DBInstances"]
    assert db["DBName"] == "roidb"
    cfn.set_stack_policy(
        StackName=STACK,
        StackPolicyBody=json.dumps(
            {"Statement": [{"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"}]}
        ),
    )


def test_deleting_leaves_a_final_snapshot_of_the_database(deployed):
    """Main: the database went with no snapshot, though its DeletionPolicy is Snapshot."""
    clients, _, _ = deployed
    cfn = clients("cloudformation")
    stack_id = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackId"]
    cfn.delete_stack(StackName=STACK)
    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    rds = clients("rds")
    (snapshot,) = rds.describe_db_snapshots(DBInstanceIdentifier=f"{STACK}-database")["DBSnapshots"]
    assert snapshot["SnapshotType"] == "manual" and snapshot["DBSnapshotIdentifier"].startswith(f"{STACK}-database-")
    assert rds.describe_db_instances()["DBInstances"] == [] or all(
        d["DBInstanceIdentifier"] != f"{STACK}-database" for d in rds.describe_db_instances()["DBInstances"]
    )
    # What the delete said DELETE_COMPLETE is gone, read through each service (QA: the target group stayed).
    elbv2 = clients("elbv2")
    assert f"{STACK}-roi" not in {t["TargetGroupName"] for t in elbv2.describe_target_groups()["TargetGroups"]}
    assert not [g for g in clients("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
                if g["AutoScalingGroupName"].startswith(f"{STACK}-")]  # fmt: skip
    assert not [t for t in clients("ec2").describe_launch_templates()["LaunchTemplates"]
                if t["LaunchTemplateName"].startswith(f"{STACK}-")]  # fmt: skip
    assert not clients("ssm").describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [f"/{STACK}/"]}]
    )["Parameters"]


def test_a_kept_plan_of_a_new_stack_executes(aws_env, local_session, demo_params):
    """Main: `plan --keep` of a new stack, then `execute` of that change set: KeyError 'Resources'."""
    endpoint = aws_env.endpoint_url
    planned = run(
        endpoint,
        "plan",
        "--stack-name",
        "kept-plan",
        "--params",
        str(demo_params),
        "--keep",
        "--skip-preflight",
        "--output",
        "json",
    )
    assert planned.exit_code == 0, planned.output
    name = json.loads(planned.stdout)["change_set"]["name"]
    executed = run(endpoint, "execute", "--stack-name", "kept-plan", name, "--yes", "--no-termination-protection")
    assert executed.exit_code == 0, executed.output
    assert "CREATE_COMPLETE" in executed.output
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    assert cfn.describe_stacks(StackName="kept-plan")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_a_failed_first_create_names_the_resource_and_can_be_listed_and_deleted(aws_env, local_session, demo_params):
    """Main: with the data bucket's name taken, ListStackResources failed on the stack (status, deploy and
    delete with it) with BucketAlreadyExists, reported against the stack."""
    endpoint = aws_env.endpoint_url
    prefix = json.loads(demo_params.read_text())[-1]["ParameterValue"]
    local_session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=f"{prefix}-data-123456789012-us-east-1")
    created = run(
        endpoint, "deploy", "--stack-name", "taken", "--params", str(demo_params), "--yes", "--skip-preflight"
    )
    assert created.exit_code == 1
    assert "DataBucket" in created.output and "BucketAlreadyExists" in created.output
    cfn = local_session.client("cloudformation", endpoint_url=endpoint)
    (stack,) = cfn.describe_stacks(StackName="taken")["Stacks"]
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    resources = {
        r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName="taken")["StackResourceSummaries"]
    }
    assert resources["DataBucket"]["ResourceStatus"] == "CREATE_FAILED"
    assert "BucketAlreadyExists" in resources["DataBucket"]["ResourceStatusReason"]
    status = run(endpoint, "status", "taken")
    assert status.exit_code == 0 and "DataBucket" in status.output, status.output
    deleted = run(endpoint, "delete", "taken", "--yes", "--force")
    assert deleted.exit_code == 0, deleted.output
    assert [s["StackStatus"] for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == "taken"] == [
        "DELETE_COMPLETE"
    ]


def test_a_second_create_of_one_stack_is_refused(local_aws, deployed, template_json):
    """Main: two deploys of one new stack at once left two live stacks of that name."""
    clients, values, _ = deployed
    cfn = clients("cloudformation")
    values = {**values, "ResourcePrefix": "created-once"}
    first, second = (
        cfn.create_change_set(
            StackName="created-once",
            ChangeSetName=name,
            ChangeSetType="CREATE",
            TemplateBody=template_json,
            Parameters=_parameters(values),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        for name in ("first", "second")
    )
    assert first["StackId"] == second["StackId"], "a second CREATE change set joins the stack under review"
    cfn.execute_change_set(ChangeSetName=first["Id"])
    with pytest.raises(ClientError) as gone:
        cfn.execute_change_set(ChangeSetName=second["Id"])
    assert gone.value.response["Error"]["Code"] == "ChangeSetNotFound"
    with pytest.raises(ClientError) as exists:
        cfn.create_change_set(
            StackName="created-once",
            ChangeSetName="third",
            ChangeSetType="CREATE",
            TemplateBody=template_json,
            Parameters=_parameters(values),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
    assert exists.value.response["Error"]["Code"] == "AlreadyExistsException"
    live = [
        s
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackName"] == "created-once" and s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert len(live) == 1 and live[0]["StackStatus"] == "CREATE_COMPLETE"


def test_create_stack_needs_the_capabilities_the_template_does(deployed, template_json):
    """Main: CreateStack with the transform answered HTTP 500. CloudFormation asks for CAPABILITY_AUTO_EXPAND
    when a transform runs outside a change set, and CAPABILITY_NAMED_IAM for named IAM resources."""
    clients, values, _ = deployed
    cfn = clients("cloudformation")
    for given, missing in (
        (["CAPABILITY_NAMED_IAM"], "CAPABILITY_AUTO_EXPAND"),
        (["CAPABILITY_AUTO_EXPAND"], "CAPABILITY_NAMED_IAM"),
    ):
        with pytest.raises(ClientError) as refused:
            cfn.create_stack(
                StackName="uncapable", TemplateBody=template_json, Parameters=_parameters(values), Capabilities=given
            )
        assert refused.value.response["Error"]["Code"] == "InsufficientCapabilitiesException"
        assert missing in refused.value.response["Error"]["Message"]
    assert "uncapable" not in {s["StackName"] for s in cfn.list_stacks()["StackSummaries"]}


def test_with_rollback_disabled_a_failed_create_keeps_what_was_made_and_an_update_retries(deployed, template_json):
    """CloudFormation's DisableRollback: the stack stays CREATE_FAILED with what was made, and an update
    makes what failed (and what waited for it)."""
    clients, values, _ = deployed
    cfn = clients("cloudformation")
    values = {**values, "ResourcePrefix": "kept-going"}
    s3 = clients("s3")
    s3.create_bucket(Bucket="kept-going-data-123456789012-us-east-1")
    first = cfn.create_change_set(
        StackName="kept-going",
        ChangeSetName="first",
        ChangeSetType="CREATE",
        TemplateBody=template_json,
        Parameters=_parameters(values),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    cfn.execute_change_set(ChangeSetName=first["Id"], DisableRollback=True)
    (stack,) = cfn.describe_stacks(StackName="kept-going")["Stacks"]
    assert stack["StackStatus"] == "CREATE_FAILED"
    assert stack["StackStatusReason"] == "The following resource(s) failed to create: [DataBucket]. "
    statuses = {
        r["LogicalResourceId"]: r["ResourceStatus"]
        for r in cfn.list_stack_resources(StackName="kept-going")["StackResourceSummaries"]
    }
    assert statuses["DataBucket"] == "CREATE_FAILED" and statuses["AppTokenSecret"] == "CREATE_COMPLETE"

    s3.delete_bucket(Bucket="kept-going-data-123456789012-us-east-1")
    retry = cfn.create_change_set(
        StackName="kept-going",
        ChangeSetName="retry",
        TemplateBody=template_json,
        Parameters=_parameters(values),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    added = {
        c["ResourceChange"]["LogicalResourceId"] for c in cfn.describe_change_set(ChangeSetName=retry["Id"])["Changes"]
    }
    assert "DataBucket" in added and "AppTokenSecret" not in added
    cfn.execute_change_set(ChangeSetName=retry["Id"])
    assert cfn.describe_stacks(StackName="kept-going")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert s3.get_bucket_versioning(Bucket="kept-going-data-123456789012-us-east-1")["Status"] == "Enabled"


def test_a_bucket_that_holds_objects_is_not_deleted_and_its_stack_is_delete_failed(deployed):
    """S3 refuses DeleteBucket while the bucket holds objects, and CloudFormation's handler empties none: the
    bucket is DELETE_FAILED and stays, with its objects (QA: moto's delete returned without deleting, and the
    stack said DELETE_COMPLETE)."""
    clients, _, _ = deployed
    cfn, s3 = clients("cloudformation"), clients("s3")
    template = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "holds-objects"}}},
    }
    cfn.create_stack(StackName="holds-objects", TemplateBody=json.dumps(template))
    s3.put_object(Bucket="holds-objects", Key="model.pt", Body=b"weights")
    cfn.delete_stack(StackName="holds-objects")
    (stack,) = cfn.describe_stacks(StackName="holds-objects")["Stacks"]
    assert stack["StackStatus"] == "DELETE_FAILED"
    (bucket,) = cfn.list_stack_resources(StackName="holds-objects")["StackResourceSummaries"]
    assert bucket["ResourceStatus"] == "DELETE_FAILED"
    assert "The bucket you tried to delete is not empty" in bucket["ResourceStatusReason"]
    assert s3.get_object(Bucket="holds-objects", Key="model.pt")["Body"].read() == b"weights"

    s3.delete_object(Bucket="holds-objects", Key="model.pt")
    cfn.delete_stack(StackName="holds-objects")
    assert cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    assert "holds-objects" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
