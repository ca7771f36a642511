"""Intrinsic functions in the local AWS: each function's arguments as CloudFormation's intrinsic function
reference describes them, what it refuses refused in its words ("Template error: …") when the template is
taken, and what it evaluates evaluated as CloudFormation does (read back through SSM). Measured on main (QA
finding 4): {"Fn::Sub": "${AWS::NoValue}"} wrote "<object object at 0x…>" and the stack was CREATE_COMPLETE;
Fn::Select took "-1" and 1.5, Fn::Join a nested list; Python's internals were the messages ("IndexError: list
index out of range", "KeyError: 'Nope'", an AttributeError, "'NoneType' object has no attribute 'value'")."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.exceptions import ClientError

NO_VALUE = {"Ref": "AWS::NoValue"}

# CloudFormation's refusals, in its words as users quote them.
BASE64_VALUE = "Template error: every Fn::Base64 object must have a String-typed value."
EQUALS_ARGUMENTS = "Template error: Fn::Equals requires a list argument with two elements"
FIND_IN_MAP_ARGUMENTS = "Template error: every Fn::FindInMap object requires three parameters, the map name, map key and the attribute for return value"
GET_ATT_ARGUMENTS = "Template error: every Fn::GetAtt object requires two non-empty parameters, the resource name and the resource attribute"
IF_ARGUMENTS = "Template error: Fn::If requires a list argument with three elements"
JOIN_ARGUMENTS = "Template error: every Fn::Join object requires two parameters, (1) a string delimiter and (2) a list of strings to be joined or a function that returns a list of strings (such as Fn::GetAZs) to be joined."
NOT_ARGUMENTS = "Template error: Fn::Not requires a list argument with one element"
SELECT_ARGUMENTS = "Template error: Fn::Select requires a list argument with two elements: an integer index and a list"
SELECT_INDEX = "Template error: Fn::Select requires a list argument with a valid index value as its first element"
SPLIT_ARGUMENTS = "Template error: every Fn::Split object requires two parameters, (1) a string delimiter and (2) a string to be split or a function that returns a string to be split."
SUB_ARGUMENTS = "Template error: One or more Fn::Sub intrinsic functions don't specify expected arguments. Specify a string as first argument, and an optional second argument to specify a mapping of values to replace in the string"
SUB_VALUE = "Template error: every value of the context object of every Fn::Sub object must be a string or a function that returns a string"
PYTHON_INTERNALS = re.compile(r"Traceback|NoneType|object at 0x|\b(Key|Attribute|Type|Index|Value)Error\b")


def _template(values: dict[str, object], conditions: dict | None = None) -> str:
    """One SSM parameter per value, named /intrinsics/<key>."""
    return json.dumps(
        {
            "Parameters": {"Sep": {"Type": "String", "Default": ","}},
            "Conditions": {"Yes": {"Fn::Equals": ["a", "a"]}, **(conditions or {})},
            "Mappings": {"M": {"us-east-1": {"v": "east"}}},
            "Resources": {
                key: {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {"Name": f"/intrinsics/{key}", "Type": "String", "Value": value},
                }
                for key, value in values.items()
            },
        }
    )


@pytest.fixture(scope="module")
def clients(local_aws):
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client("cloudformation", endpoint_url=local_aws.endpoint_url), session.client(
        "ssm", endpoint_url=local_aws.endpoint_url
    )


REFUSED = {
    "sub-variable-novalue": (
        {"Fn::Sub": ["${A}", {"A": NO_VALUE}]},
        "not supported by the local AWS: AWS::NoValue as the value of Fn::Sub variable A",
    ),
    "sub-novalue": (
        {"Fn::Sub": "${AWS::NoValue}"},
        "not supported by the local AWS: AWS::NoValue as the value of Fn::Sub variable AWS::NoValue",
    ),
    "sub-arguments": ({"Fn::Sub": ["${A}"]}, SUB_ARGUMENTS),
    "sub-list-value": ({"Fn::Sub": ["${A}", {"A": ["x"]}]}, SUB_VALUE),
    "select-negative": (
        {"Fn::Select": ["-1", ["a", "b"]]},
        "Template error: Fn::Select cannot select nonexistent value at index -1",
    ),
    "select-fraction": ({"Fn::Select": [1.5, ["a", "b"]]}, SELECT_INDEX),
    "select-out-of-range": (
        {"Fn::Select": ["5", ["a"]]},
        "Template error: Fn::Select cannot select nonexistent value at index 5",
    ),
    "select-novalue-entry": (
        {"Fn::Select": ["0", ["a", NO_VALUE]]},
        "not supported by the local AWS: AWS::NoValue as an entry of the list Fn::Select selects from",
    ),
    "select-arguments": ({"Fn::Select": ["0"]}, SELECT_ARGUMENTS),
    "join-nested-list": ({"Fn::Join": [",", [["a"], "b"]]}, JOIN_ARGUMENTS),
    "join-not-a-list": ({"Fn::Join": [",", "a"]}, JOIN_ARGUMENTS),
    "join-function-delimiter": ({"Fn::Join": [{"Ref": "Sep"}, ["a"]]}, JOIN_ARGUMENTS),
    "if-unknown-condition": (
        {"Fn::If": ["Nope", "a", "b"]},
        "Template error: unresolved condition dependency Nope in Fn::If",
    ),
    "if-arguments": ({"Fn::If": ["Yes", "a"]}, IF_ARGUMENTS),
    "split-novalue": (
        {"Fn::Join": ["", {"Fn::Split": [",", NO_VALUE]}]},
        "not supported by the local AWS: AWS::NoValue as the text Fn::Split splits",
    ),
    "split-function-delimiter": (
        {"Fn::Join": ["", {"Fn::Split": [{"Ref": "Sep"}, "a,b"]}]},
        SPLIT_ARGUMENTS,
    ),
    "get-att-arguments": ({"Fn::GetAtt": ["Other"]}, GET_ATT_ARGUMENTS),
    "find-in-map-arguments": ({"Fn::FindInMap": ["M", "us-east-1"]}, FIND_IN_MAP_ARGUMENTS),
    "find-in-map-unknown-map": (
        {"Fn::FindInMap": ["Nope", "k", "v"]},
        "Template error: Mapping named 'Nope' is not present in the 'Mappings' section of template",
    ),
    "find-in-map-unknown-key": (
        {"Fn::FindInMap": ["M", "eu-west-1", "v"]},
        "Template error: Unable to get mapping for M::eu-west-1::v",
    ),
    "base64-list": ({"Fn::Base64": ["x"]}, BASE64_VALUE),
    "ssm-reference-missing": ("{{resolve:ssm:/nope/nope}}", "Parameters: [ssm:/nope/nope] cannot be found."),
    "unmodelled-function": (
        {"Fn::Cidr": ["10.0.0.0/16", 2, 8]},
        "not supported by the local AWS: the intrinsic function Fn::Cidr",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_cloudformation_refuses_is_refused_with_its_words(clients, case):
    cfn, _ = clients
    value, message = REFUSED[case]
    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName=f"intrinsics-{case}", TemplateBody=_template({"Other": "x", "Tried": value}))
    error = refused.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("ValidationError", message)
    assert not PYTHON_INTERNALS.search(error["Message"])
    # Refused with the template: no stack is left behind.
    with pytest.raises(ClientError, match="does not exist"):
        cfn.describe_stacks(StackName=f"intrinsics-{case}")


CONDITIONS_REFUSED = {
    "and-one-condition": ({"Fn::And": [{"Condition": "Yes"}]}, "every Fn::And object requires a list of at least 2"),
    "or-eleven": ({"Fn::Or": [{"Condition": "Yes"}] * 11}, "every Fn::Or object requires a list of at least 2"),
    "not-two": ({"Fn::Not": [{"Condition": "Yes"}, {"Condition": "Yes"}]}, NOT_ARGUMENTS),
    "equals-three": ({"Fn::Equals": ["a", "a", "a"]}, EQUALS_ARGUMENTS),
    "unknown-condition": ({"Condition": "Nope"}, "Unresolved condition dependency Nope"),
}


@pytest.mark.parametrize("case", sorted(CONDITIONS_REFUSED))
def test_condition_functions_take_the_arguments_cloudformation_documents(clients, case):
    cfn, _ = clients
    condition, message = CONDITIONS_REFUSED[case]
    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName=f"conditions-{case}", TemplateBody=_template({"Other": "x"}, {"Bad": condition}))
    assert message in refused.value.response["Error"]["Message"]
    assert not PYTHON_INTERNALS.search(refused.value.response["Error"]["Message"])


EVALUATED = {
    "JoinWithoutNoValue": ({"Fn::Join": ["-", ["x", {"Fn::If": ["Yes", NO_VALUE, "y"]}, "z"]]}, "x-z"),
    "SelectByText": ({"Fn::Select": ["1", ["a", "b"]]}, "b"),
    "SelectByNumber": ({"Fn::Select": [1, ["a", "b"]]}, "b"),
    "SubLiteral": ({"Fn::Sub": ["${A}-${!B}", {"A": "x", "Unused": NO_VALUE}]}, "x-${B}"),
    "SplitThenJoin": ({"Fn::Join": ["+", {"Fn::Split": [",", "p,q"]}]}, "p+q"),
    "AvailabilityZone": ({"Fn::Select": ["0", {"Fn::GetAZs": ""}]}, "us-east-1a"),
    "Base64": ({"Fn::Base64": "hi"}, "aGk="),
    "FindInMap": ({"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "v"]}, "east"),
    "AttributeOfAnother": ({"Fn::Join": ["", ["<", {"Fn::GetAtt": ["SelectByText", "Value"]}, ">"]]}, "<b>"),
}


def test_what_cloudformation_evaluates_is_evaluated_as_it_does(clients):
    cfn, ssm = clients
    cfn.create_stack(
        StackName="intrinsics-evaluated", TemplateBody=_template({k: v for k, (v, _) in EVALUATED.items()})
    )
    assert cfn.describe_stacks(StackName="intrinsics-evaluated")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    read = {key: ssm.get_parameter(Name=f"/intrinsics/{key}")["Parameter"]["Value"] for key in EVALUATED}
    assert read == {key: expected for key, (_, expected) in EVALUATED.items()}


def test_a_list_where_text_belongs_fails_the_resource_not_written_as_python_text(clients):
    """Main wrote an SSM parameter's Value from a list parameter as "['a', 'b']"; CloudFormation checks the
    properties against the resource's schema and fails the resource."""
    cfn, ssm = clients
    template = json.loads(_template({"Listed": {"Ref": "Names"}}))
    template["Parameters"]["Names"] = {"Type": "CommaDelimitedList", "Default": "a,b"}
    cfn.create_stack(StackName="intrinsics-listed", TemplateBody=json.dumps(template))
    assert cfn.describe_stacks(StackName="intrinsics-listed")["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName="intrinsics-listed")["StackEvents"]
    (failed,) = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed["ResourceStatusReason"] == (
        "Properties validation failed for resource Listed with message: #/Value: expected type: String, "
        "found: JSONArray"
    )
    with pytest.raises(ClientError, match="ParameterNotFound"):
        ssm.get_parameter(Name="/intrinsics/Listed")
