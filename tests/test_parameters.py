"""Every parameter is described, constrained, labelled and grouped; the example file passes them all."""

from __future__ import annotations

import json
import re

import pytest
from cfn import REPO

from valohai_cfn import params
from valohai_cfn.stack.parameters import (
    CACHE_NODE_TYPES,
    DATABASE_INSTANCE_CLASSES,
    DEFAULT_DATABASE_ENGINE_VERSION,
    QUEUE_ENGINE_VERSIONS,
    ROI_INSTANCE_TYPES,
)
from valohai_cfn.template import build_template

PARAMETERS = sorted(build_template().parameters)


@pytest.mark.parametrize("name", PARAMETERS)
def test_parameter_is_described_and_constrained(template, name):
    p = template["Parameters"][name]
    assert len(p["Description"]) > 10
    if p["Type"] in ("String", "CommaDelimitedList"):
        assert "AllowedPattern" in p or "AllowedValues" in p, f"{name} needs a constraint"
    if p["Type"] == "Number":
        assert "MinValue" in p and "MaxValue" in p
    # A list of allowed values is its own explanation (the console offers them, CloudFormation's error names them).
    if {"AllowedPattern", "MinValue", "MaxValue"} & set(p):
        assert p.get("ConstraintDescription"), f"{name} needs a ConstraintDescription"


@pytest.mark.parametrize("name", PARAMETERS)
def test_parameter_has_a_label_and_one_group(template, name):
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    assert interface["ParameterLabels"][name]["default"]
    groups = [g["Label"]["default"] for g in interface["ParameterGroups"] if name in g["Parameters"]]
    assert len(groups) == 1, f"{name} is in {groups}"


def check_value(parameter: dict, value: str) -> list:
    return params.check_value("parameter", value, parameter)


def test_example_params_are_complete_and_valid(template):
    entries = json.loads((REPO / "params" / "example.json").read_text())
    given = {e["ParameterKey"]: e["ParameterValue"] for e in entries}
    assert set(given) == set(template["Parameters"])
    problems = {k: check_value(template["Parameters"][k], v) for k, v in given.items()}
    assert {k: v for k, v in problems.items() if v} == {}


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("ResourcePrefix", "Valohai"),
        ("ResourcePrefix", "a-very-long-prefix-indeed"),
        ("Domain", "https://x.example.com"),
        ("CertificateArn", "not-an-arn"),
        ("HostedZoneId", "zone"),
        ("AllowedIngressCidr", "10.0.0.0/33"),
        ("RoiVolumeSize", "16"),
        ("DatabaseMultiAZ", "yes"),
        ("VpcId", "vpc-xyz"),
    ],
)
def test_constraints_refuse_bad_values(template, name, bad):
    """The checker above is not vacuous: each parameter's own constraint refuses a bad value."""
    assert check_value(template["Parameters"][name], bad)


def test_defaults_pass_their_own_constraints(template):
    for name, p in template["Parameters"].items():
        if "Default" in p:
            assert check_value(p, p["Default"]) == [], name


def test_allowed_values_and_engine_version_are_offered(tmp_path):
    """cfn-lint checks literal values, not a parameter's AllowedValues: lint one resource per choice."""
    from valohai_cfn.lint import lint_text

    resources = {}
    for i, instance_type in enumerate(ROI_INSTANCE_TYPES):
        resources[f"Instance{i}"] = {
            "Type": "AWS::EC2::Instance",
            "Properties": {"ImageId": "ami-0123456789abcdef0", "InstanceType": instance_type},
        }
    for i, instance_class in enumerate(DATABASE_INSTANCE_CLASSES):
        resources[f"Database{i}"] = {
            "Type": "AWS::RDS::DBInstance",
            "DeletionPolicy": "Snapshot",
            "UpdateReplacePolicy": "Snapshot",
            "Properties": {
                "Engine": "postgres",
                "EngineVersion": DEFAULT_DATABASE_ENGINE_VERSION,
                "DBInstanceClass": instance_class,
                "AllocatedStorage": "20",
                "MasterUsername": "roi",
                "BackupRetentionPeriod": 7,
                "ManageMasterUserPassword": True,
            },
        }
    for i, node_type in enumerate(CACHE_NODE_TYPES):
        resources[f"Queue{i}"] = {
            "Type": "AWS::ElastiCache::ReplicationGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "ReplicationGroupDescription": "q",
                "Engine": "redis",
                "CacheNodeType": node_type,
                "NumCacheClusters": 1,
            },
        }
    # cfn-lint knows ElastiCache's engine versions on a CacheCluster only: one per version the queue allows.
    for i, version in enumerate(QUEUE_ENGINE_VERSIONS):
        resources[f"QueueVersion{i}"] = queue_version_probe(version)
    probe = json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources})
    findings = [f"{m.rule.id} {m.message}" for m in lint_text(probe, filename="probe")]
    assert findings == []


def queue_version_probe(version: str) -> dict:
    return {
        "Type": "AWS::ElastiCache::CacheCluster",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "Engine": "redis",
            "EngineVersion": version,
            "CacheNodeType": "cache.m5.large",
            "NumCacheNodes": 1,
        },
    }


def test_the_queue_engine_is_pinned_to_the_parameter(template):
    props = template["Resources"]["Queue"]["Properties"]
    assert (props["Engine"], props["EngineVersion"]) == ("redis", {"Ref": "QueueEngineVersion"})
    parameter = template["Parameters"]["QueueEngineVersion"]
    assert parameter["Default"] == "7.1" and parameter["AllowedValues"] == QUEUE_ENGINE_VERSIONS


def test_offered_probes_catch_a_deprecated_database_engine_and_a_redis_version_elasticache_lacks():
    from valohai_cfn.lint import lint_text

    probe = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Db": {
                "Type": "AWS::RDS::DBInstance",
                "DeletionPolicy": "Snapshot",
                "UpdateReplacePolicy": "Snapshot",
                "Properties": {
                    "Engine": "postgres",
                    "EngineVersion": "9.6.1",
                    "DBInstanceClass": "db.m5.large",
                    "AllocatedStorage": "20",
                    "MasterUsername": "roi",
                    "BackupRetentionPeriod": 7,
                    "ManageMasterUserPassword": True,
                },
            },
            "Queue": queue_version_probe("7.2"),
        },
    }
    findings = lint_text(json.dumps(probe), filename="probe")
    assert any(m.rule.id == "W3691" for m in findings)
    assert any(m.message.startswith("'7.2' is not one of") for m in findings)


# Prefixes whose names some service refuses at create time, or reserves.
REFUSED_PREFIXES = [
    "valohai-",  # a trailing hyphen: the database identifier "valohai--database"
    "valo--hai",  # a double hyphen
    "sg",  # security group names may not start with sg-
    "sg-prod",
    "internal",  # load balancer names may not start with internal-
    "internal-x",
    "xn--abc",  # reserved bucket prefixes
    "sthree",
    "sthree-data",
    "amzn-s3-demo",
    "aws",  # reserved SSM parameter names
    "awsprod",
    "ssm",
    "ssmtest",
    "v",  # too short
    "a" * 22,  # too long
    "1valohai",  # not from a letter
    "Valohai",
]
ACCEPTED_PREFIXES = ["valohai", "vh", "acme-ml", "sgx", "internalx", "team-a1-prod"]


@pytest.mark.parametrize("prefix", REFUSED_PREFIXES)
def test_the_template_refuses_prefixes_a_service_would_refuse(template, prefix):
    spec = template["Parameters"]["ResourcePrefix"]
    assert check_value(spec, prefix), prefix
    rendered = re.fullmatch(spec["AllowedPattern"], prefix) and spec["MinLength"] <= len(prefix) <= spec["MaxLength"]
    assert not rendered, f"{prefix} passes the rendered AllowedPattern"


@pytest.mark.parametrize("prefix", ACCEPTED_PREFIXES)
def test_ordinary_prefixes_pass(template, prefix):
    spec = template["Parameters"]["ResourcePrefix"]
    assert check_value(spec, prefix) == []
    assert re.fullmatch(spec["AllowedPattern"], prefix)
