"""StackSets on the local AWS: each instance a stack of its own CloudFormation in its account and region, and
the instance and the operation report what happened (moto reported SUCCEEDED / CURRENT for anything, made the
stacks with its own CloudFormation or none at all, and changed no resource on an update)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

ADMIN, TARGET = "123456789012", "444444444444"
EXECUTION_ROLE = "AWSCloudFormationStackSetExecutionRole"
# A small template: a security group named by the account and region, and a setting whose value is a parameter.
TEMPLATE = {
    "Parameters": {"VpcId": {"Type": "AWS::EC2::VPC::Id"}, "Note": {"Type": "String", "Default": "one"}},
    "Resources": {
        "Group": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupName": {"Fn::Sub": "ss-${AWS::AccountId}-${AWS::Region}"},
                "GroupDescription": "StackSet test",
                "VpcId": {"Ref": "VpcId"},
            },
        },
        "NoteSetting": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/ss/note", "Type": "String", "Value": {"Ref": "Note"}},
        },
    },
}
SETTING = {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": "x"}}
WITH_TRANSFORM = {
    "Transform": "AWS::LanguageExtensions",
    "Resources": {"Fn::ForEach::Settings": ["Name", ["A"], {"Setting${Name}": SETTING}]},
}


@pytest.fixture(scope="module")
def accounts(local_aws):
    """The administrator's clients (account 123456789012) and a target account's, each with a VPC in two regions."""
    endpoint = local_aws.endpoint_url
    admin = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    keys = admin.client("sts", endpoint_url=endpoint).assume_role(
        RoleArn=f"arn:aws:iam::{TARGET}:role/admin", RoleSessionName="stacksets"
    )["Credentials"]
    target = boto3.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name="us-east-1",
    )
    vpcs = {}
    for region in ("us-east-1", "eu-west-1"):
        vpcs[region] = target.client("ec2", region_name=region, endpoint_url=endpoint).create_vpc(
            CidrBlock="10.9.0.0/16"
        )["Vpc"]["VpcId"]
    target.client("iam", endpoint_url=endpoint).create_role(RoleName=EXECUTION_ROLE, AssumeRolePolicyDocument="{}")

    def client(session, service, region="us-east-1"):
        return session.client(service, region_name=region, endpoint_url=endpoint)

    return admin, target, vpcs, client


def _overrides(vpc: str) -> list[dict[str, str]]:
    return [{"ParameterKey": "VpcId", "ParameterValue": vpc}]


def _instances(cfn, name: str) -> dict[tuple[str, str], dict]:
    return {(i["Account"], i["Region"]): i for i in cfn.list_stack_instances(StackSetName=name)["Summaries"]}


def _note(client, target, region: str) -> str:
    """The instance's setting in the target account and region, "" once its stack is gone (and the group with it)."""
    groups = client(target, "ec2", region).describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [f"ss-{TARGET}-{region}"]}]
    )["SecurityGroups"]
    try:
        note = client(target, "ssm", region).get_parameter(Name="/ss/note")["Parameter"]["Value"]
    except ClientError:
        return ""
    assert groups, "the group and the setting come and go together"
    return note


def test_instances_are_stacks_made_updated_and_deleted_in_their_account_and_region(accounts):
    admin, target, vpcs, client = accounts
    cfn = client(admin, "cloudformation")
    cfn.create_stack_set(StackSetName="small", TemplateBody=json.dumps(TEMPLATE))
    for region, vpc in vpcs.items():
        operation = cfn.create_stack_instances(
            StackSetName="small", Accounts=[TARGET], Regions=[region], ParameterOverrides=_overrides(vpc)
        )["OperationId"]
        assert (
            cfn.describe_stack_set_operation(StackSetName="small", OperationId=operation)["StackSetOperation"]["Status"]
            == "SUCCEEDED"
        )
    for region in vpcs:
        assert _note(client, target, region) == "one", "made in the target's account and region"
        (stack,) = client(target, "cloudformation", region).list_stacks()["StackSummaries"]
        assert stack["StackName"].startswith("StackSet-small-") and stack["StackStatus"] == "CREATE_COMPLETE"
    assert {i["Status"] for i in _instances(cfn, "small").values()} == {"CURRENT"}

    # An update reaches every instance's resources.
    operation = cfn.update_stack_set(
        StackSetName="small", UsePreviousTemplate=True, Parameters=[{"ParameterKey": "Note", "ParameterValue": "two"}]
    )["OperationId"]
    assert (
        cfn.describe_stack_set_operation(StackSetName="small", OperationId=operation)["StackSetOperation"]["Status"]
        == "SUCCEEDED"
    )
    assert {_note(client, target, region) for region in vpcs} == {"two"}

    operation = cfn.delete_stack_instances(
        StackSetName="small", Accounts=[TARGET], Regions=list(vpcs), RetainStacks=False
    )["OperationId"]
    results = cfn.list_stack_set_operation_results(StackSetName="small", OperationId=operation)["Summaries"]
    assert {r["Status"] for r in results} == {"SUCCEEDED"} and _instances(cfn, "small") == {}
    assert {_note(client, target, region) for region in vpcs} == {""}, "the stacks' resources are gone"
    cfn.delete_stack_set(StackSetName="small")


def test_a_failed_instance_is_outdated_with_its_reason_and_the_rest_is_cancelled(accounts):
    admin, _, vpcs, client = accounts
    cfn = client(admin, "cloudformation")
    cfn.create_stack_set(StackSetName="failing", TemplateBody=json.dumps(TEMPLATE))
    # No such VPC in the target account: CloudFormation refuses the parameter, so the first instance fails.
    operation = cfn.create_stack_instances(
        StackSetName="failing", Accounts=[TARGET], Regions=["us-east-1", "eu-west-1"],
        ParameterOverrides=_overrides("vpc-0123456789abcdef0"),
    )["OperationId"]  # fmt: skip
    described = cfn.describe_stack_set_operation(StackSetName="failing", OperationId=operation)["StackSetOperation"]
    assert described["Status"] == "FAILED"
    first, second = (_instances(cfn, "failing")[(TARGET, r)] for r in ("us-east-1", "eu-west-1"))
    assert first["Status"] == "OUTDATED" and first["StackInstanceStatus"]["DetailedStatus"] == "FAILED"
    assert "vpc-0123456789abcdef0" in first["StatusReason"]
    assert second["StackInstanceStatus"]["DetailedStatus"] == "CANCELLED"
    assert not [v for v in vpcs if _note(client, accounts[1], v)]


def test_an_account_without_the_execution_role_fails_with_cloudformations_reason(accounts):
    admin, *_, client = accounts
    cfn = client(admin, "cloudformation")
    cfn.create_stack_set(StackSetName="no-role", TemplateBody=json.dumps(TEMPLATE))
    cfn.create_stack_instances(StackSetName="no-role", Accounts=["555555555555"], Regions=["us-east-1"])
    (instance,) = _instances(cfn, "no-role").values()
    assert instance["Status"] == "OUTDATED" and instance["StatusReason"] == (
        "Account 555555555555 should have 'AWSCloudFormationStackSetExecutionRole' role with trust relationship to "
        "Role 'AWSCloudFormationStackSetAdministrationRole'."
    )


def test_what_cloudformation_refuses_before_any_operation(accounts):
    admin, *_, client = accounts
    cfn = client(admin, "cloudformation")
    with pytest.raises(ClientError, match="Requires capabilities : \\[CAPABILITY_AUTO_EXPAND\\]"):
        cfn.create_stack_set(StackSetName="transform", TemplateBody=json.dumps(WITH_TRANSFORM))
    with pytest.raises(ClientError, match="service-managed permissions cannot run transforms"):
        cfn.create_stack_set(
            StackSetName="transform", TemplateBody=json.dumps(WITH_TRANSFORM), PermissionModel="SERVICE_MANAGED",
            Capabilities=["CAPABILITY_AUTO_EXPAND"], AutoDeployment={"Enabled": False},
        )  # fmt: skip
    cfn.create_stack_set(StackSetName="by-accounts", TemplateBody=json.dumps(TEMPLATE))
    with pytest.raises(ClientError, match="SELF_MANAGED permission model can only have accounts as target"):
        cfn.create_stack_instances(
            StackSetName="by-accounts",
            Regions=["us-east-1"],
            DeploymentTargets={"OrganizationalUnitIds": ["ou-abcd-12345678"]},
        )


def test_organizational_units_target_their_accounts_and_intersection_only_the_listed(accounts):
    admin, *_, client = accounts
    organizations = client(admin, "organizations")
    organizations.create_organization(FeatureSet="ALL")
    root = organizations.list_roots()["Roots"][0]["Id"]
    unit = organizations.create_organizational_unit(ParentId=root, Name="workers")["OrganizationalUnit"]["Id"]
    made = []
    for name in ("one", "two"):
        status = organizations.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        account = organizations.describe_create_account_status(CreateAccountRequestId=status["Id"])[
            "CreateAccountStatus"
        ]["AccountId"]
        organizations.move_account(AccountId=account, SourceParentId=root, DestinationParentId=unit)
        made.append(account)
    cfn = client(admin, "cloudformation")
    cfn.create_stack_set(
        StackSetName="by-units", TemplateBody=json.dumps({"Resources": {"Setting": SETTING}}),
        PermissionModel="SERVICE_MANAGED", AutoDeployment={"Enabled": False},
    )  # fmt: skip
    cfn.create_stack_instances(
        StackSetName="by-units", Regions=["us-east-1"],
        DeploymentTargets={"OrganizationalUnitIds": [unit], "Accounts": [made[1]], "AccountFilterType": "INTERSECTION"},
    )  # fmt: skip
    assert list(_instances(cfn, "by-units")) == [(made[1], "us-east-1")]
    cfn.create_stack_instances(
        StackSetName="by-units", Regions=["us-east-1"], DeploymentTargets={"OrganizationalUnitIds": [unit]}
    )
    instances = _instances(cfn, "by-units")
    assert sorted(instances) == sorted((a, "us-east-1") for a in made)
    assert {i["Status"] for i in instances.values()} == {"CURRENT"}, instances
    assert {i["OrganizationalUnitId"] for i in instances.values()} == {unit}
