"""Every taggable resource carries valohai=1, this installation's own tag and the environment; workers carry the
workers' tag, which the master's IAM conditions rely on."""

from __future__ import annotations

import pytest
from troposphere import AWSObject

from valohai_cfn.stack.context import ForEach
from valohai_cfn.template import build_template

TEMPLATE = build_template()


def _tags_as_map(tags) -> dict:
    if isinstance(tags, dict):
        return tags
    return {t["Key"]: t["Value"] for t in tags}


def _objects(resources) -> list[AWSObject]:
    """The template's resource objects, those inside loops included."""
    found = []
    for r in resources:
        found += _objects(r.data[2].values()) if isinstance(r, ForEach) else [r]
    return found


# Taggable: troposphere's generated model of the resource type has a Tags property.
TAGGABLE_TYPES = sorted({r.resource_type for r in _objects(TEMPLATE.resources.values()) if "Tags" in r.props})
WORKER_TYPES = ("AWS::AutoScaling::AutoScalingGroup", "AWS::EC2::LaunchTemplate")


def _tags(resource: dict) -> dict:
    p = resource["Properties"]
    if resource["Type"] == "AWS::EC2::LaunchTemplate":
        (spec,) = p["TagSpecifications"]
        assert spec["ResourceType"] == "launch-template"
        return _tags_as_map(spec["Tags"])
    return _tags_as_map(p["Tags"])


@pytest.mark.parametrize("resource_type", TAGGABLE_TYPES)
def test_taggable_resources_are_tagged(template, resource_type):
    resources = {n: r for n, r in template["Resources"].items() if r["Type"] == resource_type}
    assert resources
    for name, resource in resources.items():
        tags = _tags(resource)
        assert tags["valohai"] == "1", name
        assert tags["valohai:environment"] == {"Ref": "EnvironmentName"}, name
        assert tags["valohai:installation"] == {"Ref": "ResourcePrefix"}, name
        worker = resource_type in WORKER_TYPES
        assert (tags.get("valohai:workers") == {"Ref": "ResourcePrefix"}) is worker, name


def test_worker_groups_propagate_their_tags_to_the_instances(template):
    groups = [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
    assert len(groups) == 3
    for group in groups:
        assert all(tag["PropagateAtLaunch"] is True for tag in group["Properties"]["Tags"])


def test_roi_instance_is_named(template):
    tags = _tags_as_map(template["Resources"]["RoiInstance"]["Properties"]["Tags"])
    assert tags["Name"] == {"Fn::Sub": "${ResourcePrefix}-roi"}
