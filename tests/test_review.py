"""The review resolves values as CloudFormation does: for every parameter of the template, changing it alone
makes the review list each resource and output whose resolved value changes, and no other — checked against an
oracle written apart from the product (tests/review_oracle.py), for the example parameters and for a variant with
HTTPS, spot workers and queue TLS on (SSH is the SSH template's). What only the deploy can know shows as "changes at deploy"."""

from __future__ import annotations

import json

import pytest
from cfn import PSEUDO, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from review_oracle import expected_review

from valohai_cfn import review
from valohai_cfn.intrinsics import pseudo_parameters
from valohai_cfn.params import load_parameters

EXAMPLE = load_parameters(REPO / "params" / "example.json")
VARIANTS = {
    "example": EXAMPLE,
    "https-spot-tls": {
        **EXAMPLE,
        "CertificateArn": "arn:aws:acm:eu-west-1:111111111111:certificate/0a1b2c3d-1111-2222-3333-444455556666",
        "HostedZoneId": "Z0123456789ABCDEFGHIJ",
        "WorkerSpotInstanceTypes": "g4dn.xlarge,p3.2xlarge",
        "QueueTransitEncryption": "true",
    },
}
STACK_ID = f"arn:aws:cloudformation:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}:stack/vh/0b1c2d3e-0000-4000-8000-000000000000"
KNOWN = pseudo_parameters(region=PSEUDO["AWS::Region"], stack_name=PSEUDO["AWS::StackName"], stack_id=STACK_ID)
# A value for each parameter that is not a choice of listed values or a number: what it becomes in the test.
OTHER_VALUES = {
    "AllowedIngressCidr": "198.51.100.0/24",
    "CertificateArn": "arn:aws:acm:eu-west-1:111111111111:certificate/9f8e7d6c-1111-2222-3333-444455556666",
    "DatabaseEngineVersion": "16.9",
    "Domain": "ml.example.org",
    "EnvironmentName": "Valohai Staging",
    "HostedZoneId": "Z9876543210ZYXWVUTSRQ",
    "KeyPairName": "operators",
    "OrganizationName": "research",
    "ResourcePrefix": "vh2",
    "RoiAmiId": "ami-0aaaaaaaaaaaaaaa9",
    "RoiSubnetId": "subnet-0bbbbbbbbbbbbbbb2",
    "VpcId": "vpc-0aaaaaaaaaaaaaaa9",
    "WorkerAmiId": "ami-0bbbbbbbbbbbbbbb9",
    "WorkerKeyPairName": "workers",
}


def template() -> dict:
    return json.loads((REPO / "templates" / "valohai-self-hosted.json").read_text())


TEMPLATE = template()


def other_value(name: str, spec: dict, current: str | None) -> str:
    """Another valid value for the parameter: the next allowed value, the next number, one more list item."""
    if "AllowedValues" in spec:
        allowed = [str(v) for v in spec["AllowedValues"]]
        return next(v for v in allowed if v != current)
    if spec["Type"] == "Number":
        number = int(current or spec.get("Default"))
        return str(number + 1 if number < int(spec.get("MaxValue", number + 1)) else number - 1)
    if spec["Type"] == "List<AWS::EC2::Subnet::Id>":
        return f"{current},subnet-0ddddddddddddddd1"
    if spec["Type"] == "CommaDelimitedList":
        return f"{current},m5.large" if current else "m5.large"
    if current == "" and name in OTHER_VALUES:
        return OTHER_VALUES[name]
    return OTHER_VALUES[name] if OTHER_VALUES.get(name) != current else f"{current}x"


def reviewed_sets(old: dict[str, str], new: dict[str, str]) -> tuple[set[str], set[str]]:
    reviewed = review.review(TEMPLATE, old, TEMPLATE, new, pseudo=KNOWN)
    return {c.logical_id for c in reviewed.resources}, {o.name for o in reviewed.outputs}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_for_every_parameter_the_review_lists_exactly_what_changes(variant):
    base = VARIANTS[variant]
    specs = TEMPLATE["Parameters"]
    wrong = {}
    for name, spec in specs.items():
        current = base.get(name, None if "Default" not in spec else str(spec["Default"]))
        changed = {**base, name: other_value(name, spec, current)}
        expected = expected_review(TEMPLATE, base, changed)
        shown = reviewed_sets(base, changed)
        if shown != expected:
            wrong[name] = {
                "resources missing": sorted(expected[0] - shown[0]),
                "resources extra": sorted(shown[0] - expected[0]),
                "outputs missing": sorted(expected[1] - shown[1]),
                "outputs extra": sorted(shown[1] - expected[1]),
            }
    assert wrong == {}


# Values drawn for the parameters whose values are free text or numbers, within their rules.
DRAWN = {
    "Domain": st.from_regex(r"\A[a-z][a-z0-9]{0,8}\.(example|valohai)\.(com|org)\Z"),
    "EnvironmentName": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9 ._-]{0,20}\Z"),
    "OrganizationName": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,20}\Z"),
    "WorkerMaxSize": st.integers(1, 1000).map(str),
    "WorkerVolumeSize": st.integers(30, 16384).map(str),
    "RoiVolumeSize": st.integers(32, 1024).map(str),
    "DatabaseAllocatedStorage": st.integers(20, 65536).map(str),
    "WorkerInstanceTypes": st.lists(
        st.sampled_from(["t3.medium", "c5.xlarge", "m5.large"]), min_size=1, max_size=3, unique=True
    ).map(",".join),
    "WorkerSpotInstanceTypes": st.lists(st.sampled_from(["g4dn.xlarge", "p3.2xlarge"]), max_size=2, unique=True).map(
        ",".join
    ),
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(list(VARIANTS)), st.sampled_from(sorted(DRAWN)).flatmap(lambda n: st.tuples(st.just(n), DRAWN[n]))
)
def test_any_value_of_a_parameter_is_reviewed_as_the_oracle_expects(variant, drawn):
    name, value = drawn
    base = VARIANTS[variant]
    changed = {**base, name: value}
    assert reviewed_sets(base, changed) == expected_review(TEMPLATE, base, changed)


# -- what each change shows -----------------------------------------------------------------------


def changes(old: dict[str, str], new: dict[str, str]) -> review.Review:
    return review.review(TEMPLATE, old, TEMPLATE, new, pseudo=KNOWN)


def test_a_domain_change_shows_the_url_setting_the_cors_origin_and_the_app_url():
    reviewed = changes(EXAMPLE, {**EXAMPLE, "Domain": "ml.example.org"})
    properties = {(c.logical_id, p.path): (p.before, p.after) for c in reviewed.resources for p in c.properties}
    assert properties[("Settingurl", "Value")] == ("http://valohai.example.com", "http://ml.example.org")
    assert ("DataBucket", "CorsConfiguration.CorsRules") in properties
    assert "http://ml.example.org" in properties[("DataBucket", "CorsConfiguration.CorsRules")][1]
    outputs = {o.name: (o.before, o.after, o.at_deploy) for o in reviewed.outputs}
    assert outputs["AppUrl"] == ("http://valohai.example.com", "http://ml.example.org", False)
    assert "FirstLogin" not in outputs, "it names the instance, not the URL: unchanged"


def test_a_prefix_change_shows_every_replacement_that_loses_data():
    reviewed = changes(EXAMPLE, {**EXAMPLE, "ResourcePrefix": "vh2"})
    lost = {c.logical_id for c in reviewed.data_loss}
    assert {"DataBucket", "Database", "DatabaseSecret", "Queue", "JwtSecret", "AppTokenSecret"} <= lost
    bucket = next(c for c in reviewed.resources if c.logical_id == "DataBucket")
    assert bucket.replacement == "True" and any(p.path == "BucketName" for p in bucket.properties)


def test_a_reference_to_a_replaced_resource_changes_at_deploy_never_no_change():
    reviewed = changes(EXAMPLE, {**EXAMPLE, "RoiSubnetId": "subnet-0bbbbbbbbbbbbbbb2"})
    instance = next(c for c in reviewed.resources if c.logical_id == "RoiInstance")
    assert instance.replacement == "True"
    targets = next(c for c in reviewed.resources if c.logical_id == "RoiTargetGroup")
    (target,) = [p for p in targets.properties if p.path == "Targets"]
    assert target.at_deploy and target.before == target.after, "the same text, a new instance id"
    outputs = {o.name: o for o in reviewed.outputs}
    assert outputs["RoiInstanceId"].at_deploy and outputs["RoiInstanceId"].after == "${RoiInstance}"


def test_an_attribute_every_update_changes_changes_at_deploy():
    """A launch template updated in place gets a new version: a group that follows LatestVersionNumber changes."""
    small = {
        "Parameters": {"Size": {"Type": "Number", "Default": "30"}},
        "Resources": {
            "Template": {
                "Type": "AWS::EC2::LaunchTemplate",
                "Properties": {
                    "LaunchTemplateData": {"BlockDeviceMappings": [{"Ebs": {"VolumeSize": {"Ref": "Size"}}}]}
                },
            },
            "Group": {
                "Type": "AWS::AutoScaling::AutoScalingGroup",
                "Properties": {
                    "MaxSize": "1",
                    "MinSize": "0",
                    "LaunchTemplate": {
                        "LaunchTemplateId": {"Ref": "Template"},
                        "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]},
                    },
                },
            },
        },
    }
    reviewed = review.review(small, {}, small, {"Size": "40"}, pseudo=KNOWN)
    group = next(c for c in reviewed.resources if c.logical_id == "Group")
    assert [(p.path, p.at_deploy) for p in group.properties] == [("LaunchTemplate", True)]


def test_sub_join_select_split_findinmap_and_pseudo_parameters_are_evaluated():
    small = {
        "Parameters": {
            "Names": {"Type": "CommaDelimitedList", "Default": "a,b"},
            "Kind": {"Type": "String", "Default": "x"},
        },
        "Mappings": {"Kinds": {"x": {"Port": 80}, "y": {"Port": 443}}},
        "Resources": {
            "Setting": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": {"Fn::Sub": "/${AWS::StackName}/${AWS::Region}/${AWS::AccountId}"},
                    "Value": {
                        "Fn::Join": [
                            ":",
                            [
                                {"Fn::Select": [1, {"Ref": "Names"}]},
                                {"Fn::Select": [0, {"Fn::Split": ["-", "left-right"]}]},
                                {"Fn::Sub": ["${P}", {"P": {"Fn::FindInMap": ["Kinds", {"Ref": "Kind"}, "Port"]}}]},
                                {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
                            ],
                        ]
                    },
                    "Type": "String",
                },
            }
        },
    }
    reviewed = review.review(None, None, small, {"Names": "a, c", "Kind": "y"}, pseudo=KNOWN)
    assert reviewed.resources[0].action == "Add"
    updated = review.review(small, {}, small, {"Names": "a, c", "Kind": "y"}, pseudo=KNOWN)
    (value,) = updated.resources[0].properties
    assert (value.path, value.before, value.after) == (
        "Value",
        "b:left:80:${Fn::Select}(0, ${Fn::GetAZs}(eu-west-1))",
        "c:left:443:${Fn::Select}(0, ${Fn::GetAZs}(eu-west-1))",
    )


def test_a_reference_inside_a_structured_value_is_shown_as_a_name():
    """QA: a target group's Targets showed [{"Id":"\\ue000RoiInstance\\ue001"}], the marker escaped by json.dumps
    before it could be shown as ${RoiInstance}."""
    from valohai_cfn.intrinsics import reference
    from valohai_cfn.review import shown

    assert shown([{"Id": reference("RoiInstance"), "Port": 8000}]) == '[{"Id":"${RoiInstance}","Port":8000}]'
    assert shown({"Name": "café"}) == '{"Name":"café"}'
