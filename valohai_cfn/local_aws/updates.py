"""How a live resource's properties change in place, each through its own service's API (moto's backend),
as CloudFormation's resource handlers change them: the properties a type's model does not apply when it
makes the resource are set here too, right after (`complete`).

Each function is registered for the properties it applies with `@changes(type, *properties)`; a property
of a type that neither its model (models.MADE_WITH) nor a function here applies is one the local AWS
cannot apply, and `rules.unsupported` refuses it before anything is made or changed. A property applied in
parts (a bucket's lifecycle rules, an instance's volumes, a group's rules) names the parts it cannot apply
with `@parts(type, property)`: those are refused the same way. What CloudFormation calls a property and
what the service's API calls it differ (LifecycleConfiguration's ExpirationInDays is the S3 API's
Expiration.Days): each function here converts, and the tests read the result back through the API.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.ec2.models import ec2_backends
from moto.ec2.utils import parse_user_data
from moto.elasticache.models import CacheSubnetGroup, elasticache_backends
from moto.elbv2.models import FakeListener, elbv2_backends
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, iam_backends
from moto.rds.models import rds_backends
from moto.route53.models import RecordSet
from moto.s3.models import s3_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends

from . import models
from .models import as_bool, tag_list


@dataclass(frozen=True)
class Where:
    account_id: str
    region: str


Change = Callable[[Where, Any, dict[str, Any], dict[str, Any]], Any]
_CHANGES: dict[str, list[tuple[frozenset[str], Change]]] = {}


def changes(resource_type: str, *properties: str) -> Callable[[Change], Change]:
    """Register `function(where, made, new_properties, old_properties)`, which applies these properties of
    this type to the live resource `made` (moto's object) and returns it, or a new object for it."""

    def register(function: Change) -> Change:
        _CHANGES.setdefault(resource_type, []).append((frozenset(properties), function))
        return function

    return register


Parts = Callable[[Any], list[str]]
_PARTS: dict[tuple[str, str], Parts] = {}


def parts(resource_type: str, name: str) -> Callable[[Parts], Parts]:
    """Register `function(value) -> the parts of the property's value the local AWS cannot apply` (as paths
    under the property, "Rules[0].ObjectSizeGreaterThan"): a property applied is applied whole, or refused
    by `rules.unsupported` before anything is made."""

    def register(function: Parts) -> Parts:
        _PARTS[(resource_type, name)] = function
        return function

    return register


def unapplied_parts(resource_type: str, properties: dict[str, Any]) -> list[str]:
    """The parts of these properties the local AWS cannot apply, as "Property.path"."""
    found = []
    for name, value in properties.items():
        check = _PARTS.get((resource_type, name))
        if check is not None:
            found += [f"{name}{'' if part.startswith('[') else '.'}{part}" for part in check(value)]
    return found


def _extra_keys(value: Any, allowed: set[str], where: str = "") -> list[str]:
    """The keys of a map the local AWS does not apply; nothing for a value known only when executing."""
    if not isinstance(value, dict):
        return []
    return [f"{where}{'.' if where else ''}{key}" for key in sorted(set(value) - allowed)]


def _extra_keys_of_each(items: Any, allowed: set[str], where: str) -> list[str]:
    if not isinstance(items, list):
        return []
    return [part for i, item in enumerate(items) for part in _extra_keys(item, allowed, f"{where}[{i}]")]


def in_place(resource_type: str) -> frozenset[str]:
    """The properties of a type the local AWS changes without replacing the resource."""
    return frozenset().union(*(p for p, _ in _CHANGES.get(resource_type, [])))


def apply(
    where: Where, resource_type: str, made: Any, new: dict[str, Any], old: dict[str, Any], changed: set[str]
) -> Any:
    """Apply the changed properties to the live resource; the resource's object afterwards."""
    for properties, function in _CHANGES.get(resource_type, []):
        if properties & changed:
            made = function(where, made, new, old) or made
    return made


def complete(where: Where, resource_type: str, made: Any, properties: dict[str, Any]) -> Any:
    """Set what the type's model left out when it made the resource."""
    left_out = set(properties) - models.MADE_WITH.get(resource_type, frozenset())
    return apply(where, resource_type, made, properties, {}, left_out)


def _tag_changes(new: dict[str, Any], old: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    before = {t["Key"]: t["Value"] for t in tag_list(old.get("Tags"))}
    after = {t["Key"]: t["Value"] for t in tag_list(new.get("Tags"))}
    return {k: v for k, v in after.items() if before.get(k) != v}, [k for k in before if k not in after]


# -- SSM ------------------------------------------------------------------------------------------


@changes("AWS::SSM::Parameter", "Value", "Type", "Description", "AllowedPattern", "DataType", "Tier", "Policies")
def _ssm_value(where: Where, made: Any, new: dict, old: dict) -> None:
    models.put_parameter(made.name, new, where.account_id, where.region, overwrite=True)


@changes("AWS::SSM::Parameter", "Tags")
def _ssm_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = ssm_backends[where.account_id][where.region]
    put, removed = _tag_changes(new, old)
    if put:
        backend.add_tags_to_resource("Parameter", made.name, put)
    if removed:
        backend.remove_tags_from_resource("Parameter", made.name, removed)


# -- Auto Scaling -------------------------------------------------------------------------------


@changes(
    "AWS::AutoScaling::AutoScalingGroup",
    "MinSize",
    "MaxSize",
    "DesiredCapacity",
    "LaunchTemplate",
    "MixedInstancesPolicy",
    "VPCZoneIdentifier",
    "AvailabilityZones",
    "HealthCheckGracePeriod",
    "HealthCheckType",
)
def _asg_sizes(where: Where, made: Any, new: dict, old: dict) -> Any:
    # An update without DesiredCapacity keeps the group's own (the app owns it), as CloudFormation does.
    return autoscaling_backends[where.account_id][where.region].update_auto_scaling_group(
        name=made.name,
        availability_zones=new.get("AvailabilityZones", []),
        desired_capacity=int(new["DesiredCapacity"]) if "DesiredCapacity" in new else None,
        max_size=int(new["MaxSize"]),
        min_size=int(new["MinSize"]),
        launch_config_name=new.get("LaunchConfigurationName"),
        launch_template=new.get("LaunchTemplate", {}),
        vpc_zone_identifier=",".join(new.get("VPCZoneIdentifier", [])),
        health_check_period=new.get("HealthCheckGracePeriod"),
        health_check_type=new.get("HealthCheckType"),
        mixed_instances_policy=new.get("MixedInstancesPolicy"),
    )


@changes("AWS::AutoScaling::AutoScalingGroup", "Cooldown", "TerminationPolicies")
def _asg_policies(where: Where, made: Any, new: dict, old: dict) -> None:
    # moto's UpdateAutoScalingGroup leaves these out; its group keeps them as these attributes.
    made.default_cooldown = int(new.get("Cooldown", 300))
    made.termination_policies = list(new.get("TerminationPolicies", ["Default"]))


@changes("AWS::AutoScaling::AutoScalingGroup", "Tags")
def _asg_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = autoscaling_backends[where.account_id][where.region]
    before = {t["Key"]: t for t in old.get("Tags", [])}
    put = [t for t in new.get("Tags", []) if before.get(t["Key"]) != t]
    removed = [k for k in before if k not in {t["Key"] for t in new.get("Tags", [])}]
    if put:
        backend.create_or_update_tags(
            [
                {
                    "ResourceId": made.name,
                    "ResourceType": "auto-scaling-group",
                    "Key": t["Key"],
                    "Value": str(t["Value"]),
                    "PropagateAtLaunch": as_bool(t.get("PropagateAtLaunch", False)),
                }
                for t in put
            ]
        )
    if removed:
        backend.delete_tags([{"ResourceId": made.name, "Key": k} for k in removed])


# -- EC2 ------------------------------------------------------------------------------------------


def _ec2_tags(where: Where, resource_id: str, new: dict, old: dict, key: str = "Tags") -> None:
    backend = ec2_backends[where.account_id][where.region]
    put, removed = _tag_changes({"Tags": new.get(key)}, {"Tags": old.get(key)})
    if put:
        backend.create_tags([resource_id], put)
    if removed:
        backend.delete_tags([resource_id], dict.fromkeys(removed))


@changes("AWS::EC2::LaunchTemplate", "LaunchTemplateData", "VersionDescription")
def _launch_template_data(where: Where, made: Any, new: dict, old: dict) -> None:
    # CloudFormation makes a new version of the template and makes it the default.
    data = json.loads(json.dumps(new["LaunchTemplateData"]))
    data["UserData"] = parse_user_data(data.get("UserData"))
    version = made.create_version(data, new.get("VersionDescription"))
    made.default_version_number = version.number


@changes("AWS::EC2::LaunchTemplate", "TagSpecifications")
def _launch_template_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    def own(properties: dict) -> list:
        specs = properties.get("TagSpecifications", [])
        return [t for s in specs if s.get("ResourceType") == "launch-template" for t in s.get("Tags", [])]

    _ec2_tags(where, made.id, {"Tags": own(new)}, {"Tags": own(old)})


def _rule_key(rule: dict[str, Any]) -> tuple:
    return (
        str(rule.get("IpProtocol")),
        str(rule.get("FromPort", "")),
        str(rule.get("ToPort", "")),
        rule.get("CidrIp", ""),
        rule.get("SourceSecurityGroupId", rule.get("DestinationSecurityGroupId", "")),
        rule.get("Description", ""),
    )


def _authorize(backend: Any, method: str, group_id: str, rule: dict[str, Any]) -> None:
    peer = rule.get("SourceSecurityGroupId") or rule.get("DestinationSecurityGroupId")
    getattr(backend, method)(
        group_name_or_id=group_id,
        ip_protocol=str(rule["IpProtocol"]),
        from_port=rule.get("FromPort"),
        to_port=rule.get("ToPort"),
        ip_ranges=[{"CidrIp": rule["CidrIp"], "Description": rule.get("Description", "")}] if "CidrIp" in rule else [],
        source_groups=[{"GroupId": peer, "Description": rule.get("Description", "")}] if peer else [],
    )


def _matching_rule_ids(rules: list[Any], wanted: dict[str, Any]) -> list[str]:
    """moto keeps one rule per address range or peer group, as EC2's security group rules are."""
    peer = wanted.get("SourceSecurityGroupId") or wanted.get("DestinationSecurityGroupId")
    return [
        r.id
        for r in rules
        if str(r.ip_protocol) == str(wanted["IpProtocol"])
        and str(r.from_port or "") == str(wanted.get("FromPort", r.from_port or ""))
        and str(r.to_port or "") == str(wanted.get("ToPort", r.to_port or ""))
        and (
            ("CidrIp" in wanted and r.ip_range.get("CidrIp") == wanted["CidrIp"])
            or (peer and r.source_group.get("GroupId") == peer)
        )
    ]


def _group_rules(where: Where, group: Any, direction: str, new: list[dict], old: list[dict]) -> None:
    backend = ec2_backends[where.account_id][where.region]
    live = group.egress_rules if direction == "egress" else group.ingress_rules
    gone = [r for r in old if _rule_key(r) not in {_rule_key(n) for n in new}]
    added = [r for r in new if _rule_key(r) not in {_rule_key(o) for o in old}]
    revoke = getattr(backend, f"revoke_security_group_{direction}")
    for rule in gone:
        ids = _matching_rule_ids(live, rule)
        if ids:
            revoke(group.id, "", "", "", [], security_rule_ids=ids)
    for rule in added:
        _authorize(backend, f"authorize_security_group_{direction}", group.id, rule)


_DEFAULT_EGRESS = [{"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}]


_RULE = {"IpProtocol", "FromPort", "ToPort", "CidrIp", "Description"}


@parts("AWS::EC2::SecurityGroup", "SecurityGroupIngress")
def _group_ingress_parts(value: Any) -> list[str]:
    return _extra_keys_of_each(value, _RULE | {"SourceSecurityGroupId"}, "")


@parts("AWS::EC2::SecurityGroup", "SecurityGroupEgress")
def _group_egress_parts(value: Any) -> list[str]:
    return _extra_keys_of_each(value, _RULE | {"DestinationSecurityGroupId"}, "")


@changes("AWS::EC2::SecurityGroup", "SecurityGroupEgress")
def _group_egress(where: Where, made: Any, new: dict, old: dict) -> None:
    # A group starts with EC2's allow-all egress rule; CloudFormation replaces it with the template's.
    before = old.get("SecurityGroupEgress", _DEFAULT_EGRESS) if old else _DEFAULT_EGRESS
    _group_rules(where, made, "egress", new.get("SecurityGroupEgress", _DEFAULT_EGRESS), before)


@changes("AWS::EC2::SecurityGroup", "SecurityGroupIngress")
def _group_ingress(where: Where, made: Any, new: dict, old: dict) -> None:
    _group_rules(where, made, "ingress", new.get("SecurityGroupIngress", []), old.get("SecurityGroupIngress", []))


@changes("AWS::EC2::SecurityGroup", "Tags")
def _group_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    _ec2_tags(where, made.id, new, old)


@changes("AWS::EC2::SecurityGroupIngress", "Description")
def _ingress_description(where: Where, made: Any, new: dict, old: dict) -> None:
    group = ec2_backends[where.account_id][where.region].get_security_group_from_id(made.group_id)
    for rule in group.ingress_rules:
        if rule.id == made.rule_id:
            (rule.ip_range if rule.ip_range else rule.source_group)["Description"] = new.get("Description", "")


@changes("AWS::EC2::Instance", "InstanceType")
def _instance_type(where: Where, made: Any, new: dict, old: dict) -> None:
    # EBS-backed: EC2 stops the instance, changes its type and starts it again (same id).
    backend = ec2_backends[where.account_id][where.region]
    backend.stop_instances([made.instance.id])
    backend.modify_instance_attribute(made.instance.id, "instance_type", new["InstanceType"])
    backend.start_instances([made.instance.id])


@changes("AWS::EC2::Instance", "UserData")
def _instance_user_data(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = ec2_backends[where.account_id][where.region]
    backend.stop_instances([made.instance.id])
    backend.modify_instance_attribute(made.instance.id, "user_data", parse_user_data(new.get("UserData")))
    backend.start_instances([made.instance.id])


@changes("AWS::EC2::Instance", "SecurityGroupIds")
def _instance_groups(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = ec2_backends[where.account_id][where.region]
    backend.modify_instance_security_groups(made.instance.id, new.get("SecurityGroupIds", []))


@changes("AWS::EC2::Instance", "Monitoring")
def _instance_monitoring(where: Where, made: Any, new: dict, old: dict) -> None:
    made.instance.monitoring_state = "enabled" if as_bool(new.get("Monitoring", False)) else "disabled"


@changes("AWS::EC2::Instance", "MetadataOptions")
def _instance_metadata(where: Where, made: Any, new: dict, old: dict) -> None:
    options = new.get("MetadataOptions", {})
    ec2_backends[where.account_id][where.region].modify_instance_metadata_options(
        made.instance.id,
        http_tokens=options.get("HttpTokens"),
        hop_limit=options.get("HttpPutResponseHopLimit"),
        http_endpoint=options.get("HttpEndpoint"),
    )


@changes("AWS::EC2::Instance", "IamInstanceProfile")
def _instance_profile(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = ec2_backends[where.account_id][where.region]
    for association in list(backend.iam_instance_profile_associations.values()):
        if association.instance.id == made.instance.id:
            backend.disassociate_iam_instance_profile(association.association_id)
    if new.get("IamInstanceProfile"):
        backend.associate_iam_instance_profile(
            instance_id=made.instance.id, iam_instance_profile_name=new["IamInstanceProfile"]
        )


VOLUME = {
    "DeleteOnTermination",
    "Encrypted",
    "Iops",
    "KmsKeyId",
    "SnapshotId",
    "Throughput",
    "VolumeSize",
    "VolumeType",
}


@parts("AWS::EC2::Instance", "BlockDeviceMappings")
def _instance_volume_parts(value: Any) -> list[str]:
    """An instance's EBS volumes, each made with every setting (models.Ec2Instance); instance store
    (VirtualName) and NoDevice are not modelled."""
    found = _extra_keys_of_each(value, {"DeviceName", "Ebs"}, "")
    for i, mapping in enumerate(value if isinstance(value, list) else []):
        found += _extra_keys(mapping.get("Ebs") if isinstance(mapping, dict) else None, VOLUME, f"[{i}].Ebs")
    return found


@changes("AWS::EC2::Instance", "BlockDeviceMappings", "PropagateTagsToVolumeOnCreation")
def _instance_volumes(where: Where, made: Any, new: dict, old: dict) -> None:
    """Only DeleteOnTermination changes in place (rules: any other change replaces the instance);
    PropagateTagsToVolumeOnCreation acts only when the instance is made."""
    for mapping in new.get("BlockDeviceMappings", []):
        device = made.instance.block_device_mapping.get(mapping["DeviceName"])
        if device is not None and "DeleteOnTermination" in mapping.get("Ebs", {}):
            device.delete_on_termination = as_bool(mapping["Ebs"]["DeleteOnTermination"])


@changes("AWS::EC2::Instance", "Tags")
def _instance_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    _ec2_tags(where, made.instance.id, new, old)


# -- RDS ------------------------------------------------------------------------------------------

_RDS_PROPERTIES = {
    "AllocatedStorage": ("allocated_storage", int),
    "AutoMinorVersionUpgrade": ("auto_minor_version_upgrade", as_bool),
    "BackupRetentionPeriod": ("backup_retention_period", int),
    "CopyTagsToSnapshot": ("copy_tags_to_snapshot", as_bool),
    "DBInstanceClass": ("db_instance_class", str),
    "DeletionProtection": ("deletion_protection", as_bool),
    "EnableCloudwatchLogsExports": ("enable_cloudwatch_logs_exports", list),
    "EnableIAMDatabaseAuthentication": ("enable_iam_database_authentication", as_bool),
    "EngineVersion": ("engine_version", str),
    "MasterUserPassword": ("master_user_password", str),
    "MonitoringInterval": ("monitoring_interval", int),
    "MonitoringRoleArn": ("monitoring_role_arn", str),
    "MultiAZ": ("multi_az", as_bool),
    "PubliclyAccessible": ("publicly_accessible", as_bool),
    "StorageType": ("storage_type", str),
    "VPCSecurityGroups": ("vpc_security_group_ids", list),
}


@changes("AWS::RDS::DBInstance", *_RDS_PROPERTIES)
def _database(where: Where, made: Any, new: dict, old: dict) -> None:
    changed = {k for k in _RDS_PROPERTIES if new.get(k) != old.get(k)}
    kwargs = {_RDS_PROPERTIES[k][0]: _RDS_PROPERTIES[k][1](new[k]) for k in changed if k in new}
    if "EnableCloudwatchLogsExports" in changed:
        # moto keeps the exports as `enabled_cloudwatch_logs_exports`; ModifyDBInstance takes a diff.
        made.database.enabled_cloudwatch_logs_exports = list(new.get("EnableCloudwatchLogsExports", []))
        kwargs.pop("enable_cloudwatch_logs_exports", None)
    # CloudFormation applies a DB instance's changes immediately (ApplyImmediately), not in the window.
    rds_backends[where.account_id][where.region].modify_db_instance(made.physical_resource_id, kwargs)


def _tags_by_arn(backend: Any, arn: str, new: dict, old: dict) -> None:
    """RDS's and ElastiCache's AddTagsToResource / RemoveTagsFromResource, by ARN."""
    put, removed = _tag_changes(new, old)
    if put:
        backend.add_tags_to_resource(arn, [{"Key": k, "Value": v} for k, v in put.items()])
    if removed:
        backend.remove_tags_from_resource(arn, removed)


@changes("AWS::RDS::DBInstance", "Tags")
def _database_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    _tags_by_arn(rds_backends[where.account_id][where.region], made.database.db_instance_arn, new, old)


@changes("AWS::RDS::DBSubnetGroup", "SubnetIds", "DBSubnetGroupDescription")
def _database_subnets(where: Where, made: Any, new: dict, old: dict) -> None:
    ec2 = ec2_backends[where.account_id][where.region]
    backend = rds_backends[where.account_id][where.region]
    group = backend.modify_db_subnet_group(
        made.name, new.get("DBSubnetGroupDescription"), [ec2.get_subnet(s) for s in new["SubnetIds"]]
    )
    backend.subnet_groups[made.name] = group  # moto's ModifyDBSubnetGroup takes the group out of its map


@changes("AWS::RDS::DBSubnetGroup", "Tags")
def _database_subnet_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    _tags_by_arn(rds_backends[where.account_id][where.region], made.arn, new, old)


# -- ElastiCache ----------------------------------------------------------------------------------


@changes(
    "AWS::ElastiCache::ReplicationGroup",
    "CacheNodeType",
    "ReplicationGroupDescription",
    "SnapshotRetentionLimit",
    "AutomaticFailoverEnabled",
    "MultiAZEnabled",
    "Engine",
)
def _queue_modify(where: Where, made: Any, new: dict, old: dict) -> None:
    elasticache_backends[where.account_id][where.region].modify_replication_group(
        replication_group_id=made.physical_resource_id,
        replication_group_description=new.get("ReplicationGroupDescription"),
        engine=new.get("Engine"),
        cache_node_type=new.get("CacheNodeType"),
        automatic_failover_enabled=as_bool(new["AutomaticFailoverEnabled"])
        if "AutomaticFailoverEnabled" in new
        else None,
        multi_az_enabled=as_bool(new["MultiAZEnabled"]) if "MultiAZEnabled" in new else None,
        snapshot_retention_limit=int(new["SnapshotRetentionLimit"]) if "SnapshotRetentionLimit" in new else None,
    )


@changes(
    "AWS::ElastiCache::ReplicationGroup",
    "EngineVersion",
    "TransitEncryptionEnabled",
    "TransitEncryptionMode",
    "SecurityGroupIds",
    "AutoMinorVersionUpgrade",
)
def _queue_settings(where: Where, made: Any, new: dict, old: dict) -> None:
    """What moto's ModifyReplicationGroup leaves out, set on the group it describes (rules check first that
    ElastiCache allows the step: transit encryption only through the preferred mode)."""
    group = made.group
    if "EngineVersion" in new:
        group.engine_version = str(new["EngineVersion"])
    group.transit_encryption_enabled = as_bool(new.get("TransitEncryptionEnabled", False))
    group.transit_encryption_mode = new.get("TransitEncryptionMode") if group.transit_encryption_enabled else None
    group.security_group_ids = list(new.get("SecurityGroupIds", []))
    group.auto_minor_version_upgrade = as_bool(new.get("AutoMinorVersionUpgrade", True))


# Registered after the group's own changes (applied in this order): it reads what they set.
@changes(
    "AWS::ElastiCache::ReplicationGroup",
    "CacheNodeType",
    "EngineVersion",
    "TransitEncryptionEnabled",
    "SecurityGroupIds",
)
def _queue_nodes_follow(where: Where, made: Any, new: dict, old: dict) -> None:
    """The group's member clusters take its new node type, engine version and encryption."""
    made.make_member_clusters(where.account_id, where.region, new)


@changes("AWS::ElastiCache::ReplicationGroup", "Tags")
def _queue_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    _tags_by_arn(elasticache_backends[where.account_id][where.region], made.group.arn, new, old)


@changes("AWS::ElastiCache::SubnetGroup", "SubnetIds", "Description")
def _queue_subnets(where: Where, made: Any, new: dict, old: dict) -> None:
    # ModifyCacheSubnetGroup, as moto's group takes it: made again from the subnets, its tags kept.
    groups = elasticache_backends[where.account_id][where.region].cache_subnet_groups
    before = groups[made.name]
    after = CacheSubnetGroup(
        where.account_id, where.region, made.name, new.get("Description", ""), list(new["SubnetIds"]), None
    )
    after.tags = before.tags
    groups[made.name] = after


@changes("AWS::ElastiCache::SubnetGroup", "Tags")
def _queue_subnet_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = elasticache_backends[where.account_id][where.region]
    _tags_by_arn(backend, backend.cache_subnet_groups[made.name].arn, new, old)


# -- Elastic Load Balancing -----------------------------------------------------------------------


def _elb_tags(where: Where, arn: str, new: dict, old: dict) -> None:
    backend = elbv2_backends[where.account_id][where.region]
    put, removed = _tag_changes(new, old)
    if put:
        backend.add_tags([arn], [{"Key": k, "Value": v} for k, v in put.items()])
    if removed:
        backend.remove_tags([arn], removed)


@changes("AWS::ElasticLoadBalancingV2::LoadBalancer", "Type")
def _balancer_type(where: Where, made: Any, new: dict, old: dict) -> None:
    """moto makes application load balancers only (Type is create-only: this runs when one is made)."""
    if new.get("Type", "application") != "application":
        raise ValueError(f"not supported by the local AWS: load balancers of type {new['Type']}")


@changes("AWS::ElasticLoadBalancingV2::LoadBalancer", "Subnets")
def _balancer_subnets(where: Where, made: Any, new: dict, old: dict) -> None:
    elbv2_backends[where.account_id][where.region].set_subnets(made.arn, new["Subnets"], [])


@changes("AWS::ElasticLoadBalancingV2::LoadBalancer", "SecurityGroups")
def _balancer_groups(where: Where, made: Any, new: dict, old: dict) -> None:
    elbv2_backends[where.account_id][where.region].set_security_groups(made.arn, new.get("SecurityGroups", []))


@changes("AWS::ElasticLoadBalancingV2::LoadBalancer", "LoadBalancerAttributes")
def _balancer_attributes(where: Where, made: Any, new: dict, old: dict) -> None:
    attributes = {a["Key"]: str(a["Value"]) for a in new.get("LoadBalancerAttributes", [])}
    elbv2_backends[where.account_id][where.region].modify_load_balancer_attributes(made.arn, attributes)


@changes("AWS::ElasticLoadBalancingV2::LoadBalancer", "Tags")
def _balancer_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    _elb_tags(where, made.arn, new, old)


@changes("AWS::ElasticLoadBalancingV2::Listener", "DefaultActions", "Certificates", "Port", "Protocol", "SslPolicy")
def _listener(where: Where, made: Any, new: dict, old: dict) -> Any:
    return FakeListener.update_from_cloudformation_json(
        made, "", {"Properties": json.loads(json.dumps(new))}, where.account_id, where.region
    )


@changes("AWS::ElasticLoadBalancingV2::Listener", "Tags")
def _listener_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    _elb_tags(where, made.arn, new, old)


@changes("AWS::ElasticLoadBalancingV2::TargetGroup", "Targets")
def _targets(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = elbv2_backends[where.account_id][where.region]
    before = [{"Id": t["Id"], "Port": int(t.get("Port", made.port))} for t in old.get("Targets", [])]
    after = [{"Id": t["Id"], "Port": int(t.get("Port", made.port))} for t in new.get("Targets", [])]
    gone = [t for t in before if t not in after]
    if gone:
        backend.deregister_targets(made.arn, gone)
    added = [t for t in after if t not in before]
    if added:
        backend.register_targets(made.arn, added)


@changes(
    "AWS::ElasticLoadBalancingV2::TargetGroup",
    "HealthCheckPath",
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "Matcher",
)
def _health_check(where: Where, made: Any, new: dict, old: dict) -> None:
    elbv2_backends[where.account_id][where.region].modify_target_group(
        made.arn,
        health_check_proto=new.get("HealthCheckProtocol"),
        health_check_port=new.get("HealthCheckPort"),
        health_check_path=new.get("HealthCheckPath"),
        health_check_interval=new.get("HealthCheckIntervalSeconds"),
        health_check_timeout=new.get("HealthCheckTimeoutSeconds"),
        healthy_threshold_count=new.get("HealthyThresholdCount"),
        unhealthy_threshold_count=new.get("UnhealthyThresholdCount"),
        http_codes=new.get("Matcher", {}).get("HttpCode"),
    )


@changes("AWS::ElasticLoadBalancingV2::TargetGroup", "Tags")
def _target_group_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    _elb_tags(where, made.arn, new, old)


# -- S3 -------------------------------------------------------------------------------------------


def _s3(where: Where) -> Any:
    return s3_backends[where.account_id]["aws"]


_CORS_RULE = {"AllowedHeaders", "AllowedMethods", "AllowedOrigins", "ExposedHeaders", "Id", "MaxAge"}


@parts("AWS::S3::Bucket", "CorsConfiguration")
def _bucket_cors_parts(value: Any) -> list[str]:
    return _extra_keys(value, {"CorsRules"}) + _extra_keys_of_each(value.get("CorsRules"), _CORS_RULE, "CorsRules")


@changes("AWS::S3::Bucket", "CorsConfiguration")
def _bucket_cors(where: Where, made: Any, new: dict, old: dict) -> None:
    rules = new.get("CorsConfiguration", {}).get("CorsRules", [])
    if not rules:
        _s3(where).delete_bucket_cors(made.name)
        return
    # CloudFormation's names for the S3 API's CORSRule fields.
    _s3(where).put_bucket_cors(
        made.name,
        [
            {
                "AllowedMethod": r["AllowedMethods"],
                "AllowedOrigin": r["AllowedOrigins"],
                "AllowedHeader": r.get("AllowedHeaders", []),
                "ExposeHeader": r.get("ExposedHeaders", []),
                **({"MaxAgeSeconds": str(r["MaxAge"])} if "MaxAge" in r else {}),
                **({"ID": r["Id"]} if "Id" in r else {}),
            }
            for r in rules
        ],
    )


@parts("AWS::S3::Bucket", "VersioningConfiguration")
def _bucket_versioning_parts(value: Any) -> list[str]:
    return _extra_keys(value, {"Status"})


@changes("AWS::S3::Bucket", "VersioningConfiguration")
def _bucket_versioning(where: Where, made: Any, new: dict, old: dict) -> None:
    status = new.get("VersioningConfiguration", {}).get("Status", "Suspended" if old else None)
    if status:
        _s3(where).put_bucket_versioning(made.name, status)


_LIFECYCLE_RULE = {
    "AbortIncompleteMultipartUpload",
    "ExpirationDate",
    "ExpirationInDays",
    "ExpiredObjectDeleteMarker",
    "Id",
    "NoncurrentVersionExpiration",
    "NoncurrentVersionExpirationInDays",
    "NoncurrentVersionTransition",
    "NoncurrentVersionTransitions",
    "Prefix",
    "Status",
    "TagFilters",
    "Transition",
    "Transitions",
}
_TRANSITION = {"StorageClass", "TransitionDate", "TransitionInDays"}
_NONCURRENT_TRANSITION = {"StorageClass", "TransitionInDays", "NewerNoncurrentVersions"}


@parts("AWS::S3::Bucket", "LifecycleConfiguration")
def _bucket_lifecycle_parts(value: Any) -> list[str]:
    """moto's S3 keeps no object size filters and no NewerNoncurrentVersions of an expiration."""
    found = _extra_keys(value, {"Rules"})
    for i, rule in enumerate(value.get("Rules", []) if isinstance(value, dict) else []):
        at = f"Rules[{i}]"
        found += _extra_keys(rule, _LIFECYCLE_RULE, at)
        if not isinstance(rule, dict):
            continue
        found += _extra_keys(
            rule.get("NoncurrentVersionExpiration"), {"NoncurrentDays"}, f"{at}.NoncurrentVersionExpiration"
        )
        found += _extra_keys(
            rule.get("AbortIncompleteMultipartUpload"), {"DaysAfterInitiation"}, f"{at}.AbortIncompleteMultipartUpload"
        )
        found += _extra_keys(rule.get("Transition"), _TRANSITION, f"{at}.Transition")
        found += _extra_keys_of_each(rule.get("Transitions"), _TRANSITION, f"{at}.Transitions")
        found += _extra_keys(
            rule.get("NoncurrentVersionTransition"), _NONCURRENT_TRANSITION, f"{at}.NoncurrentVersionTransition"
        )
        found += _extra_keys_of_each(
            rule.get("NoncurrentVersionTransitions"), _NONCURRENT_TRANSITION, f"{at}.NoncurrentVersionTransitions"
        )
        found += _extra_keys_of_each(rule.get("TagFilters"), {"Key", "Value"}, f"{at}.TagFilters")
    return found


def _days(value: Any) -> str:
    return str(int(value))  # the S3 API's XML text, as moto's parser keeps it


def _lifecycle_filter(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's Prefix and TagFilters as the S3 API's Filter (And when more than one condition)."""
    tags = [{"Key": t["Key"], "Value": str(t["Value"])} for t in rule.get("TagFilters", [])]
    prefix = rule.get("Prefix")
    if tags and (prefix is not None or len(tags) > 1):
        return {"And": {"Prefix": prefix or "", "Tag": tags}}
    if tags:
        return {"Tag": tags[0]}
    return {"Prefix": prefix or ""}


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A LifecycleConfiguration rule as the S3 API's LifecycleRule (CloudFormation names its fields apart:
    ExpirationInDays is Expiration.Days, Transitions are Transition, TransitionInDays is Days…)."""
    api: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule["Status"], "Filter": _lifecycle_filter(rule)}
    expiration = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = _days(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = str(rule["ExpirationDate"])
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = str(as_bool(rule["ExpiredObjectDeleteMarker"])).lower()
    if expiration:
        api["Expiration"] = expiration
    noncurrent = rule.get("NoncurrentVersionExpiration", {}).get(
        "NoncurrentDays", rule.get("NoncurrentVersionExpirationInDays")
    )
    if noncurrent is not None:
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": _days(noncurrent)}
    transitions = [*rule.get("Transitions", []), *([rule["Transition"]] if "Transition" in rule else [])]
    if transitions:
        api["Transition"] = [
            {
                "StorageClass": t["StorageClass"],
                **({"Days": _days(t["TransitionInDays"])} if "TransitionInDays" in t else {}),
                **({"Date": str(t["TransitionDate"])} if "TransitionDate" in t else {}),
            }
            for t in transitions
        ]
    older = [
        *rule.get("NoncurrentVersionTransitions", []),
        *([rule["NoncurrentVersionTransition"]] if "NoncurrentVersionTransition" in rule else []),
    ]
    if older:
        api["NoncurrentVersionTransition"] = [
            {
                "StorageClass": t["StorageClass"],
                "NoncurrentDays": _days(t["TransitionInDays"]),
                **(
                    {"NewerNoncurrentVersions": _days(t["NewerNoncurrentVersions"])}
                    if "NewerNoncurrentVersions" in t
                    else {}
                ),
            }
            for t in older
        ]
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": _days(days)}
    return api


@changes("AWS::S3::Bucket", "LifecycleConfiguration")
def _bucket_lifecycle(where: Where, made: Any, new: dict, old: dict) -> None:
    rules = new.get("LifecycleConfiguration", {}).get("Rules", [])
    if not rules:
        _s3(where).delete_bucket_lifecycle(made.name)
        return
    _s3(where).put_bucket_lifecycle(made.name, [_lifecycle_rule(r) for r in rules])


_PUBLIC_ACCESS_BLOCK = {"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"}


@parts("AWS::S3::Bucket", "PublicAccessBlockConfiguration")
def _bucket_public_access_parts(value: Any) -> list[str]:
    return _extra_keys(value, _PUBLIC_ACCESS_BLOCK)


@changes("AWS::S3::Bucket", "PublicAccessBlockConfiguration")
def _bucket_public_access(where: Where, made: Any, new: dict, old: dict) -> None:
    block = {k: str(as_bool(v)).lower() for k, v in new.get("PublicAccessBlockConfiguration", {}).items()}
    if block:
        _s3(where).put_public_access_block(made.name, block)
    else:
        _s3(where).delete_public_access_block(made.name)


@parts("AWS::S3::Bucket", "OwnershipControls")
def _bucket_ownership_parts(value: Any) -> list[str]:
    rules = value.get("Rules") if isinstance(value, dict) else None
    found = _extra_keys(value, {"Rules"}) + _extra_keys_of_each(rules, {"ObjectOwnership"}, "Rules")
    return found + (["Rules (more than one)"] if isinstance(rules, list) and len(rules) > 1 else [])


@changes("AWS::S3::Bucket", "OwnershipControls")
def _bucket_ownership(where: Where, made: Any, new: dict, old: dict) -> None:
    rules = new.get("OwnershipControls", {}).get("Rules", [])
    if not rules:
        _s3(where).delete_bucket_ownership_controls(made.name)
        return
    # PutBucketOwnershipControls: the rule's ObjectOwnership, which moto keeps as the text itself.
    _s3(where).put_bucket_ownership_controls(made.name, rules[0]["ObjectOwnership"])


_ENCRYPTION_RULE = {"BucketKeyEnabled", "ServerSideEncryptionByDefault"}
_ENCRYPTION_DEFAULT = {"KMSMasterKeyID", "SSEAlgorithm"}
# What S3 reads back for a bucket without a configuration of its own: SSE-S3, the base level of every bucket.
_S3_DEFAULT_ENCRYPTION = {
    "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
}


@parts("AWS::S3::Bucket", "BucketEncryption")
def _bucket_encryption_parts(value: Any) -> list[str]:
    rules = value.get("ServerSideEncryptionConfiguration") if isinstance(value, dict) else None
    found = _extra_keys(value, {"ServerSideEncryptionConfiguration"})
    found += _extra_keys_of_each(rules, _ENCRYPTION_RULE, "ServerSideEncryptionConfiguration")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        by_default = rule.get("ServerSideEncryptionByDefault") if isinstance(rule, dict) else None
        found += _extra_keys(
            by_default, _ENCRYPTION_DEFAULT, f"ServerSideEncryptionConfiguration[{i}].ServerSideEncryptionByDefault"
        )
    return found + (
        ["ServerSideEncryptionConfiguration (more than one rule)"] if isinstance(rules, list) and len(rules) > 1 else []
    )


def _encryption(configuration: dict[str, Any]) -> dict[str, Any]:
    """BucketEncryption as the S3 API's ServerSideEncryptionConfiguration, BucketKeyEnabled included (moto's
    own conversion, cfn_to_api_encryption, drops it)."""
    (rule,) = configuration["ServerSideEncryptionConfiguration"]
    by_default = rule.get("ServerSideEncryptionByDefault", {})
    api_rule: dict[str, Any] = {
        "ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": by_default["SSEAlgorithm"],
            **({"KMSMasterKeyID": by_default["KMSMasterKeyID"]} if "KMSMasterKeyID" in by_default else {}),
        },
        "BucketKeyEnabled": str(as_bool(rule.get("BucketKeyEnabled", False))).lower(),
    }
    return {"Rule": api_rule}


@changes("AWS::S3::Bucket", "BucketEncryption")
def _bucket_encryption(where: Where, made: Any, new: dict, old: dict) -> None:
    _s3(where).put_bucket_encryption(made.name, _encryption(new.get("BucketEncryption", _S3_DEFAULT_ENCRYPTION)))


@changes("AWS::S3::Bucket", "Tags")
def _bucket_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    _s3(where).put_bucket_tagging(made.name, {t["Key"]: t["Value"] for t in tag_list(new.get("Tags"))})


@changes("AWS::S3::BucketPolicy", "PolicyDocument")
def _bucket_policy(where: Where, made: Any, new: dict, old: dict) -> None:
    models.put_bucket_policy(made.bucket_name, new["PolicyDocument"], where.account_id)


# -- IAM ------------------------------------------------------------------------------------------


def _iam(where: Where) -> Any:
    return iam_backends[where.account_id]["aws"]


@changes("AWS::IAM::Role", "Policies")
def _role_policies(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = _iam(where)
    wanted = {p["PolicyName"]: p["PolicyDocument"] for p in new.get("Policies", [])}
    for name in set(backend.list_role_policies(made.name)) - set(wanted):
        backend.delete_role_policy(made.name, name)
    for name, document in wanted.items():
        backend.put_role_policy(made.name, name, document if isinstance(document, str) else json.dumps(document))


@functools.cache
def _aws_managed_policies() -> dict[str, Any]:
    return json.loads(aws_managed_policies_data)


def _aws_managed_policy(backend: Any, arn: str) -> None:
    """AWS's managed policies exist in every account; moto loads them only when told to (all of them, slowly:
    MOTO_IAM_LOAD_MANAGED_POLICIES), so the one a role names is loaded when it is attached."""
    name = arn.rsplit("/", 1)[-1]
    if ":iam::aws:policy/" not in arn or arn in backend.managed_policies:
        return
    data = _aws_managed_policies().get(name)
    if data is not None:
        backend.managed_policies[arn] = AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, data)


@changes("AWS::IAM::Role", "ManagedPolicyArns")
def _role_managed_policies(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = _iam(where)
    for arn in set(old.get("ManagedPolicyArns", [])) - set(new.get("ManagedPolicyArns", [])):
        backend.detach_role_policy(arn, made.name)
    for arn in set(new.get("ManagedPolicyArns", [])) - set(old.get("ManagedPolicyArns", [])):
        _aws_managed_policy(backend, arn)
        backend.attach_role_policy(arn, made.name)


@changes("AWS::IAM::Role", "AssumeRolePolicyDocument")
def _role_trust(where: Where, made: Any, new: dict, old: dict) -> None:
    document = new["AssumeRolePolicyDocument"]
    _iam(where).update_assume_role_policy(made.name, document if isinstance(document, str) else json.dumps(document))


@changes("AWS::IAM::Role", "Description", "MaxSessionDuration")
def _role_settings(where: Where, made: Any, new: dict, old: dict) -> None:
    _iam(where).update_role(made.name, new.get("Description", ""), new.get("MaxSessionDuration", 3600))


@changes("AWS::IAM::Role", "Tags")
def _role_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    put, removed = _tag_changes(new, old)
    if put:
        _iam(where).tag_role(made.name, [{"Key": k, "Value": v} for k, v in put.items()])
    if removed:
        _iam(where).untag_role(made.name, removed)


@changes("AWS::IAM::InstanceProfile", "Roles")
def _profile_roles(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = _iam(where)
    for role in set(old.get("Roles", [])) - set(new.get("Roles", [])):
        backend.remove_role_from_instance_profile(made.name, role)
    for role in set(new.get("Roles", [])) - set(old.get("Roles", [])):
        backend.add_role_to_instance_profile(made.name, role)


# -- Secrets Manager, Route 53, ACM ---------------------------------------------------------------


@changes("AWS::SecretsManager::Secret", "Description")
def _secret_description(where: Where, made: Any, new: dict, old: dict) -> None:
    # A generated value is not generated again on update, as in CloudFormation.
    secretsmanager_backends[where.account_id][where.region].secrets[made.arn].description = new.get("Description")


@changes("AWS::SecretsManager::Secret", "Tags")
def _secret_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    backend = secretsmanager_backends[where.account_id][where.region]
    put, removed = _tag_changes(new, old)
    if put:
        backend.tag_resource(made.arn, put)
    if removed:
        backend.untag_resource(made.arn, removed)


@changes("AWS::SecretsManager::SecretTargetAttachment", "TargetId", "TargetType")
def _secret_target(where: Where, made: Any, new: dict, old: dict) -> None:
    models.attach(new, where.account_id, where.region)


@changes("AWS::Route53::RecordSet", "Name", "Type", "AliasTarget", "ResourceRecords", "TTL")
def _record(where: Where, made: Any, new: dict, old: dict) -> Any:
    # ChangeResourceRecordSets: the old record deleted, the new one made (a new name is a new record).
    return RecordSet.update_from_cloudformation_json(
        made, new["Name"], {"Properties": json.loads(json.dumps(new))}, where.account_id, where.region
    )


@changes("AWS::CertificateManager::Certificate", "Tags")
def _certificate_tags(where: Where, made: Any, new: dict, old: dict) -> None:
    from moto.acm.models import acm_backends

    backend = acm_backends[where.account_id][where.region]
    put, removed = _tag_changes(new, old)
    if put:
        backend.add_tags_to_certificate(made.arn, [{"Key": k, "Value": v} for k, v in put.items()])
    if removed:
        backend.remove_tags_from_certificate(made.arn, [{"Key": k} for k in removed])
