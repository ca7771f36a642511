"""Every taggable resource carries valohai=1 (the master's IAM conditions rely on it) and the environment."""

from __future__ import annotations

import pytest
from troposphere import AWSObject

from valohai_cfn.template import build_template

TEMPLATE = build_template()


def _tags_as_map(tags) -> dict:
    if isinstance(tags, dict):
        return tags
    return {t["Key"]: t["Value"] for t in tags}


# Taggable: troposphere's generated model of the resource type has a Tags property.
TAGGABLE = [r for r in TEMPLATE.resources.values() if "Tags" in r.props]


@pytest.mark.parametrize("resource", TAGGABLE, ids=lambda r: r.title)
def test_taggable_resources_are_tagged(template, resource: AWSObject):
    tags = _tags_as_map(template["Resources"][resource.title]["Properties"]["Tags"])
    assert tags["valohai"] == "1"
    assert tags["valohai:environment"] == {"Ref": "EnvironmentName"}


def test_roi_instance_is_named(template):
    tags = _tags_as_map(template["Resources"]["RoiInstance"]["Properties"]["Tags"])
    assert tags["Name"] == {"Fn::Sub": "${ResourcePrefix}-roi"}
