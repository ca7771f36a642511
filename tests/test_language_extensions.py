"""The Fn::ForEach expansion the local AWS and the checks use, against the examples of CloudFormation's documentation."""

from __future__ import annotations

import pytest

from valohai_cfn.language_extensions import TRANSFORM, TransformError, comma_delimited, expand


def template(resources: dict, **more) -> dict:
    return {
        "Transform": TRANSFORM,
        "Parameters": {"Topics": {"Type": "CommaDelimitedList", "Default": "Success, Failure"}},
        "Resources": resources,
        **more,
    }


def test_a_loop_over_a_parameter_replaces_the_identifier_in_keys_strings_and_refs():
    expanded = expand(
        template(
            {
                "Fn::ForEach::Topics": [
                    "TopicName",
                    {"Ref": "Topics"},
                    {
                        "SnsTopic${TopicName}": {
                            "Type": "AWS::SNS::Topic",
                            "Properties": {
                                "TopicName": {"Fn::Sub": "${TopicName}.fifo"},
                                "DisplayName": {"Ref": "TopicName"},
                            },
                        }
                    },
                ]
            }
        ),
        {},
    )
    assert "Transform" not in expanded
    assert expanded["Resources"] == {
        "SnsTopicSuccess": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": {"Fn::Sub": "Success.fifo"}, "DisplayName": "Success"},
        },
        "SnsTopicFailure": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": {"Fn::Sub": "Failure.fifo"}, "DisplayName": "Failure"},
        },
    }


def test_ampersand_drops_non_alphanumeric_characters_for_logical_ids():
    expanded = expand(
        template(
            {
                "Fn::ForEach::Types": [
                    "Type",
                    ["t3.medium", "u-6tb1.56xlarge"],
                    {
                        "Group&{Type}": {
                            "Type": "X",
                            "Properties": {"Name": "${Type}", "Other": {"Fn::Sub": "${Lt&{Type}}"}},
                        }
                    },
                ]
            }
        ),
        {},
    )
    assert expanded["Resources"]["Groupt3medium"]["Properties"] == {
        "Name": "t3.medium",
        "Other": {"Fn::Sub": "${Ltt3medium}"},
    }
    assert "Groupu6tb156xlarge" in expanded["Resources"]


def test_given_values_win_over_defaults_and_items_are_space_trimmed():
    expanded = expand(
        template({"Fn::ForEach::T": ["N", {"Ref": "Topics"}, {"R${N}": {"Type": "X"}}]}), {"Topics": " A ,B"}
    )
    assert sorted(expanded["Resources"]) == ["RA", "RB"]
    assert comma_delimited("") == [""], "an empty list parameter is one empty item, as in CloudFormation"


def test_nested_loops_and_outputs_and_conditions():
    expanded = expand(
        template(
            {
                "Fn::ForEach::Outer": [
                    "A",
                    ["x", "y"],
                    {"Fn::ForEach::Inner": ["B", ["1", "2"], {"R${A}${B}": {"Type": "X"}}]},
                ]
            },
            Outputs={"Fn::ForEach::O": ["A", ["x"], {"Out${A}": {"Value": {"Ref": "A"}}}]},
            Conditions={"Fn::ForEach::C": ["A", ["x"], {"Is${A}": {"Fn::Equals": ["${A}", "x"]}}]},
        ),
        {},
    )
    assert sorted(expanded["Resources"]) == ["Rx1", "Rx2", "Ry1", "Ry2"]
    assert expanded["Outputs"] == {"Outx": {"Value": "x"}}
    assert expanded["Conditions"] == {"Isx": {"Fn::Equals": ["x", "x"]}}


def test_a_duplicate_item_is_refused_like_cloudformation_refuses_a_duplicate_logical_id():
    with pytest.raises(TransformError, match="generated twice"):
        expand(template({"Fn::ForEach::T": ["N", ["a", "a"], {"R${N}": {"Type": "X"}}]}), {})


def test_a_collection_naming_no_parameter_value_is_an_error():
    with pytest.raises(TransformError, match="Missing"):
        expand(template({"Fn::ForEach::T": ["N", {"Ref": "Missing"}, {"R${N}": {"Type": "X"}}]}), {})


def test_a_template_without_the_transform_is_left_alone():
    plain = {"Resources": {"Fn::ForEach::T": ["N", ["a"], {}]}}
    assert expand(plain, {}) is plain
