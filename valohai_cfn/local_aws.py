"""A local AWS to try the template on: moto in server mode, plus the CloudFormation models moto lacks.

moto (5.2) has no CloudFormation model for AWS::ElastiCache::SubnetGroup,
AWS::ElastiCache::ReplicationGroup, AWS::SecretsManager::Secret,
AWS::SecretsManager::SecretTargetAttachment or AWS::S3::BucketPolicy: it skips them, and a Ref or GetAtt
on one fails the whole execute. The classes below close that gap. moto builds its type → model map from
the direct subclasses of CloudFormationModel, so defining them is the registration; moto's own
ElastiCache, Secrets Manager, RDS and S3 backends do the work, so the resources are real to those
services' APIs afterwards.

Three calls are mended too: moto lacks UpdateTerminationProtection, which `valohai-cfn deploy` and
`delete` use; it resolves UsePreviousValue to typed values (lists, numbers) that never equal the
strings it stored, so a change set with nothing new is never "no changes" (and a list it cannot parse
again); and a second CREATE change set for a stack still under review makes a second stack of the same
name, where CloudFormation reuses the one under review. CreateChangeSet also runs the
AWS::LanguageExtensions transform, which moto does not run at all (the template's Fn::ForEach loops),
with valohai_cfn.language_extensions.

What CloudFormation shows is mended as well, since the deploy's review and progress are built on it: a
change set leaves out what a false condition excludes (moto lists every resource as "Add"); a parameter
change is a Modify of the resources that use it (moto says "no resource changes"); an execute or a delete
emits an event per resource in dependency order, each with the request's ClientRequestToken (moto emits
only the stack's own); a change-set stack gets its Outputs; ListStackResources omits what moto did not
model instead of listing it with no logical id; DescribeStacks gives a list parameter's value as it was
given, not as a Python list; a resource moto cannot update is kept, not dropped from the stack; an
execute moto cannot complete fails the operation (the stack *_FAILED, the reason in its event) instead of
failing the call; an executed change set's parameters become the stack's (moto keeps the old ones, so the
next deploy is never "no changes"); ListChangeSets lists the stack's own change sets (moto lists every
stack's), and executing one removes the stack's others, as CloudFormation does. All of it is set on moto's
classes in `_register_models`, the one place this module changes moto.

Two more models replace moto's own: AWS::SSM::Parameter, whose Tags CloudFormation gives as a map where
moto expects a list (moto fails the create with a TypeError) and whose Value attribute moto cannot give
to Fn::GetAtt; and AWS::AutoScaling::AutoScalingGroup, which moto replaces on every update, resetting a
desired capacity the template never set, where CloudFormation updates it in place and keeps it.

This is the only module of the product that knows about moto (the optional `local` extra), and it is
written so it could be offered upstream as it is.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import uuid
from typing import Any

from moto.autoscaling.models import FakeAutoScalingGroup, autoscaling_backends
from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import Change, ChangeSet, CloudFormationBackend, Event, Stack
from moto.cloudformation.parsing import ResourceMap
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.common_models import CloudFormationModel
from moto.core.responses import ActionResult, EmptyResult
from moto.elasticache.models import elasticache_backends
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.rds.models import rds_backends
from moto.s3.models import s3_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import Parameter as MotoSsmParameter

from valohai_cfn.language_extensions import TRANSFORM, TransformError, expand

LOCAL_HOST = "127.0.0.1"


def _tags(properties: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": t["Key"], "Value": str(t["Value"])} for t in properties.get("Tags", [])]


def _bool(value: Any) -> bool:
    # Template booleans arrive as bools or as the strings "true"/"false" of a parameter.
    return str(value).lower() == "true"


class ElastiCacheSubnetGroup(CloudFormationModel):
    def __init__(self, name: str, account_id: str, region_name: str) -> None:
        self.name = name
        self.account_id = account_id
        self.region_name = region_name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "CacheSubnetGroupName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ElastiCache::SubnetGroup"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> ElastiCacheSubnetGroup:
        properties = cloudformation_json["Properties"]
        elasticache_backends[account_id][region_name].create_cache_subnet_group(
            cache_subnet_group_name=resource_name,
            cache_subnet_group_description=properties.get("Description", ""),
            subnet_ids=properties["SubnetIds"],
            tags=_tags(properties),
        )
        return cls(resource_name, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        elasticache_backends[account_id][region_name].cache_subnet_groups.pop(resource_name, None)


class ElastiCacheReplicationGroup(CloudFormationModel):
    ATTRIBUTES = ("PrimaryEndPoint.Address", "PrimaryEndPoint.Port", "ReaderEndPoint.Address", "ReaderEndPoint.Port")

    def __init__(self, group: Any, account_id: str, region_name: str) -> None:
        self.group = group
        self.account_id = account_id
        self.region_name = region_name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "ReplicationGroupId"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ElastiCache::ReplicationGroup"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        node_group = self.group.node_groups[0]
        if attribute_name == "PrimaryEndPoint.Address":
            return node_group["primary_endpoint_address"]
        if attribute_name == "ReaderEndPoint.Address":
            return node_group["reader_endpoint_address"]
        if attribute_name in ("PrimaryEndPoint.Port", "ReaderEndPoint.Port"):
            return str(self.group.port)
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        raise UnformattedGetAttTemplateException()

    @property
    def physical_resource_id(self) -> str:
        return self.group.replication_group_id

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> ElastiCacheReplicationGroup:
        p = cloudformation_json["Properties"]
        group = elasticache_backends[account_id][region_name].create_replication_group(
            replication_group_id=resource_name.lower(),
            replication_group_description=p.get("ReplicationGroupDescription", ""),
            global_replication_group_id=None,
            primary_cluster_id=p.get("PrimaryClusterId"),
            automatic_failover_enabled=_bool(p.get("AutomaticFailoverEnabled", False)),
            multi_az_enabled=_bool(p.get("MultiAZEnabled", False)),
            num_cache_clusters=int(p.get("NumCacheClusters", 1)),
            preferred_cache_cluster_azs=p.get("PreferredCacheClusterAZs"),
            num_node_groups=int(p.get("NumNodeGroups", 1)),
            replicas_per_node_group=p.get("ReplicasPerNodeGroup"),
            node_group_configuration=p.get("NodeGroupConfiguration"),
            cache_node_type=p.get("CacheNodeType"),
            engine=p.get("Engine", "redis"),
            engine_version=p.get("EngineVersion"),
            cache_parameter_group_name=p.get("CacheParameterGroupName"),
            cache_subnet_group_name=p.get("CacheSubnetGroupName"),
            cache_security_group_names=p.get("CacheSecurityGroupNames"),
            security_group_ids=p.get("SecurityGroupIds"),
            tags=_tags(p),
            snapshot_arns=p.get("SnapshotArns"),
            snapshot_name=p.get("SnapshotName"),
            preferred_maintenance_window=p.get("PreferredMaintenanceWindow"),
            port=int(p.get("Port", 6379)),
            notification_topic_arn=p.get("NotificationTopicArn"),
            auto_minor_version_upgrade=_bool(p.get("AutoMinorVersionUpgrade", True)),
            snapshot_retention_limit=int(p.get("SnapshotRetentionLimit", 0)),
            snapshot_window=p.get("SnapshotWindow"),
            auth_token=p.get("AuthToken"),
            transit_encryption_enabled=_bool(p.get("TransitEncryptionEnabled", False)),
            at_rest_encryption_enabled=_bool(p.get("AtRestEncryptionEnabled", False)),
            kms_key_id=p.get("KmsKeyId"),
            user_group_ids=p.get("UserGroupIds"),
            log_delivery_configurations=p.get("LogDeliveryConfigurations"),
            data_tiering_enabled=_bool(p.get("DataTieringEnabled", False)),
            network_type=p.get("NetworkType"),
            ip_discovery=p.get("IpDiscovery"),
            transit_encryption_mode=p.get("TransitEncryptionMode"),
            cluster_mode=p.get("ClusterMode"),
            serverless_cache_snapshot_name=None,
        )
        return cls(group, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: ElastiCacheReplicationGroup,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> ElastiCacheReplicationGroup:
        p = cloudformation_json["Properties"]
        elasticache_backends[account_id][region_name].modify_replication_group(
            replication_group_id=original_resource.physical_resource_id,
            replication_group_description=p.get("ReplicationGroupDescription"),
            engine=p.get("Engine"),
            cache_node_type=p.get("CacheNodeType"),
            automatic_failover_enabled=None,
            multi_az_enabled=None,
            snapshot_retention_limit=int(p["SnapshotRetentionLimit"]) if "SnapshotRetentionLimit" in p else None,
        )
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        # moto's DeleteReplicationGroup only marks the group "deleting"; CloudFormation waits until it is gone.
        elasticache_backends[account_id][region_name].replication_groups.pop(resource_name, None)


class SecretsManagerSecret(CloudFormationModel):
    def __init__(self, arn: str, name: str, account_id: str, region_name: str) -> None:
        self.arn = arn
        self.name = name
        self.account_id = account_id
        self.region_name = region_name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.arn

    @property
    def physical_resource_id(self) -> str:
        # Ref on a secret gives its ARN.
        return self.arn

    @staticmethod
    def _generated_string(backend: Any, spec: dict[str, Any]) -> str:
        password = backend.get_random_password(
            password_length=int(spec.get("PasswordLength", 32)),
            exclude_characters=spec.get("ExcludeCharacters", ""),
            exclude_numbers=_bool(spec.get("ExcludeNumbers", False)),
            exclude_punctuation=_bool(spec.get("ExcludePunctuation", False)),
            exclude_uppercase=_bool(spec.get("ExcludeUppercase", False)),
            exclude_lowercase=_bool(spec.get("ExcludeLowercase", False)),
            include_space=_bool(spec.get("IncludeSpace", False)),
            require_each_included_type=_bool(spec.get("RequireEachIncludedType", True)),
        )
        password = json.loads(password)["RandomPassword"] if password.startswith("{") else password
        if "SecretStringTemplate" not in spec:
            return password
        value = json.loads(spec["SecretStringTemplate"])
        value[spec["GenerateStringKey"]] = password
        return json.dumps(value)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SecretsManagerSecret:
        p = cloudformation_json["Properties"]
        backend = secretsmanager_backends[account_id][region_name]
        if "GenerateSecretString" in p:
            secret_string = cls._generated_string(backend, p["GenerateSecretString"])
        else:
            secret_string = p.get("SecretString")
        created = json.loads(
            backend.create_secret(
                name=resource_name,
                secret_string=secret_string,
                secret_binary=None,
                description=p.get("Description"),
                tags=_tags(p),
                kms_key_id=p.get("KmsKeyId"),
                client_request_token=None,
                replica_regions=[],
                force_overwrite=False,
            )
        )
        return cls(created["ARN"], resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: SecretsManagerSecret,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> SecretsManagerSecret:
        # A generated value is not regenerated on update, as in CloudFormation; only the description moves.
        p = cloudformation_json["Properties"]
        secretsmanager_backends[account_id][region_name].update_secret(
            secret_id=original_resource.arn, description=p.get("Description"), client_request_token=str(uuid.uuid4())
        )
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        secretsmanager_backends[account_id][region_name].delete_secret(
            secret_id=resource_name, recovery_window_in_days=None, force_delete_without_recovery=True
        )


class SecretsManagerSecretTargetAttachment(CloudFormationModel):
    """Adds the database's connection details to its secret, as CloudFormation does for RDS targets."""

    def __init__(self, secret_arn: str) -> None:
        self.secret_arn = secret_arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::SecretTargetAttachment"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.secret_arn

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SecretsManagerSecretTargetAttachment:
        p = cloudformation_json["Properties"]
        backend = secretsmanager_backends[account_id][region_name]
        (database,) = rds_backends[account_id][region_name].describe_db_instances(p["TargetId"])
        value = json.loads(backend.get_secret_value(p["SecretId"], None, None)["SecretString"])
        value.update(
            engine=database.engine,
            host=database.address,
            port=int(database.port),
            dbname=database.db_name,
            dbInstanceIdentifier=database.db_instance_identifier,
        )
        # A new version needs a request token of its own, as through the API.
        backend.update_secret(
            secret_id=p["SecretId"], secret_string=json.dumps(value), client_request_token=str(uuid.uuid4())
        )
        return cls(p["SecretId"])

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        """Detaching leaves the secret's value as it is, as in CloudFormation."""


class S3BucketPolicy(CloudFormationModel):
    def __init__(self, bucket_name: str) -> None:
        self.bucket_name = bucket_name

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @property
    def physical_resource_id(self) -> str:
        return self.bucket_name

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> S3BucketPolicy:
        p = cloudformation_json["Properties"]
        policy = p["PolicyDocument"]
        document = policy if isinstance(policy, str) else json.dumps(policy)
        s3_backends[account_id]["aws"].put_bucket_policy(p["Bucket"], document.encode())
        return cls(p["Bucket"])

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: S3BucketPolicy,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> S3BucketPolicy:
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        # resource_name is the physical id: the bucket's name (the JSON here still holds the raw Ref).
        backend = s3_backends[account_id]["aws"]
        if resource_name in backend.buckets:
            backend.delete_bucket_policy(resource_name)


class SsmParameter(CloudFormationModel):
    """moto's SSM parameter model, given Tags as the list its backend expects, and with the Value and Type
    attributes CloudFormation's Fn::GetAtt gives (moto's has no get_cfn_attribute)."""

    ATTRIBUTES = ("Type", "Value")

    def __init__(self, parameter: Any) -> None:
        self.parameter = parameter

    @staticmethod
    def cloudformation_name_type() -> str:
        return MotoSsmParameter.cloudformation_name_type()

    @staticmethod
    def cloudformation_type() -> str:
        return MotoSsmParameter.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.parameter.value if attribute_name == "Value" else self.parameter.parameter_type

    @property
    def physical_resource_id(self) -> str:
        return self.parameter.name

    @staticmethod
    def _with_tag_list(cloudformation_json: dict[str, Any]) -> dict[str, Any]:
        properties = dict(cloudformation_json["Properties"])
        if isinstance(properties.get("Tags"), dict):
            properties["Tags"] = [{"Key": k, "Value": str(v)} for k, v in properties["Tags"].items()]
        return {**cloudformation_json, "Properties": properties}

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SsmParameter:
        json_with_tags = cls._with_tag_list(cloudformation_json)
        return cls(
            MotoSsmParameter.create_from_cloudformation_json(resource_name, json_with_tags, account_id, region_name)
        )

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        cls.delete_from_cloudformation_json(
            original_resource.physical_resource_id, cloudformation_json, account_id, region_name
        )
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        MotoSsmParameter.delete_from_cloudformation_json(resource_name, cloudformation_json, account_id, region_name)


class AutoScalingGroup(CloudFormationModel):
    """moto's Auto Scaling group model, updated in place as CloudFormation does. moto replaces the group on
    every update, which resets a desired capacity the template never set; CloudFormation keeps it (the app
    owns it), and so does this model."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return FakeAutoScalingGroup.cloudformation_name_type()

    @staticmethod
    def cloudformation_type() -> str:
        return FakeAutoScalingGroup.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return FakeAutoScalingGroup.has_cfn_attr(attr)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        return FakeAutoScalingGroup.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs
        )

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        p = cloudformation_json["Properties"]
        return autoscaling_backends[account_id][region_name].update_auto_scaling_group(
            name=original_resource.name,
            availability_zones=p.get("AvailabilityZones", []),
            desired_capacity=int(p["DesiredCapacity"]) if "DesiredCapacity" in p else None,
            max_size=int(p["MaxSize"]),
            min_size=int(p["MinSize"]),
            launch_config_name=p.get("LaunchConfigurationName"),
            launch_template=p.get("LaunchTemplate", {}),
            vpc_zone_identifier=",".join(p.get("VPCZoneIdentifier", [])),
            health_check_period=p.get("HealthCheckGracePeriod"),
            health_check_type=p.get("HealthCheckType"),
            mixed_instances_policy=p.get("MixedInstancesPolicy"),
        )

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        FakeAutoScalingGroup.delete_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name
        )


MODELS = (
    ElastiCacheSubnetGroup,
    ElastiCacheReplicationGroup,
    SecretsManagerSecret,
    SecretsManagerSecretTargetAttachment,
    S3BucketPolicy,
    SsmParameter,
    AutoScalingGroup,
)


def _update_termination_protection(self: CloudFormationResponse) -> ActionResult:
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    stack.enable_termination_protection = self._get_bool_param("EnableTerminationProtection", False)
    return ActionResult({"StackId": stack.stack_id})


_moto_parse_and_update_resource = cfn_parsing.parse_and_update_resource


def _parse_and_update_resource(logical_id: str, resource_json: dict[str, Any], resources_map: Any, **kwargs: Any):
    """moto's update of one resource; a type moto cannot update (no update_from_cloudformation_json: an EC2
    instance, a launch template, an ingress rule) is kept as it is, where moto would drop it from the stack
    (its Ref, its outputs and its listing gone). CloudFormation updates those in place."""
    updated = _moto_parse_and_update_resource(logical_id, resource_json, resources_map, **kwargs)
    return resources_map[logical_id] if updated is None else updated


def _as_given(value: Any) -> str:
    """A parameter value as a caller gives it: lists comma-joined, numbers as text."""
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _has_parameters(self: Stack, other_parameters: dict[str, Any]) -> bool:
    given = {k: _as_given(v) for k, v in self.parameters.items()}
    return given == {k: _as_given(v) for k, v in other_parameters.items()}


_moto_create_change_set = CloudFormationBackend.create_change_set


def _conditions(
    backend: CloudFormationBackend, template: dict[str, Any], parameters: dict[str, Any]
) -> dict[str, bool]:
    """The template's conditions for these parameter values, evaluated by moto's own machinery."""
    resources = ResourceMap(
        stack_id="",
        stack_name="",
        parameters=parameters,
        tags={},
        region_name=backend.region_name,
        account_id=backend.account_id,
        template=template,
        cross_stack_resources={},
    )
    resources.load_mapping()
    resources.load_parameters()
    resources.load_conditions()
    return {name: bool(resources.lazy_condition_map[name]) for name in template.get("Conditions", {})}


def _as_processed(backend: CloudFormationBackend, template: str, parameters: dict[str, Any]) -> str:
    """The template as CloudFormation processes it for a change set, which moto does not: the
    AWS::LanguageExtensions transform run (its Fn::ForEach loops expanded), and what a false condition
    leaves out left out, so that the change set lists what CloudFormation would make."""
    parsed = Stack.parse_template(template)
    if not isinstance(parsed, dict) or "Resources" not in parsed:
        return template
    if parsed.get("Transform") == TRANSFORM:
        try:
            parsed = expand(parsed, parameters)
        except TransformError as e:
            # CloudFormation's words for a template its transform refuses.
            raise ValidationError(message=f"Transform AWS::LanguageExtensions failed with: {e}") from None
    conditions = _conditions(backend, parsed, parameters)
    for section in ("Resources", "Outputs"):
        if section in parsed:
            kept = {k: v for k, v in parsed[section].items() if conditions.get(v.get("Condition"), True)}
            parsed[section] = kept
    return json.dumps(parsed)


def _create_change_set(
    self: CloudFormationBackend,
    stack_name: str,
    change_set_name: str,
    template: str,
    parameters: dict[str, Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    change_set_type = kwargs.get("change_set_type", args[1] if len(args) > 1 else None)
    if change_set_type == "CREATE":
        for stack_id, stack in list(self.stacks.items()):
            if stack.name == stack_name and stack.status == "REVIEW_IN_PROGRESS":
                del self.stacks[stack_id]  # replaced by the one moto is about to make, under the same name
    # UsePreviousValue gives the stack's parsed values (lists for list parameters), which moto cannot parse again.
    parameters = {k: _as_given(v) for k, v in parameters.items()}
    template = _as_processed(self, template, parameters)
    return _moto_create_change_set(self, stack_name, change_set_name, template, parameters, *args, **kwargs)


def _change_set_changes(self: ChangeSet) -> list[Change]:
    """The changes, a resource whose properties did not change but whose parameters did among them (moto
    computes that only when it executes)."""
    actions = self.stack.resource_map.build_resource_diff(self.template_dict, self.parameters)
    old = self.stack.template_dict.get("Resources", {})
    new = self.template_dict["Resources"]
    return [
        Change(action, name, (old if action == "Remove" else new)[name]["Type"])
        for action in ("Add", "Modify", "Remove")
        for name in dict.fromkeys(actions[action])
    ]


def _references(node: Any) -> set[str]:
    """The logical ids a resource's properties refer to: Ref, Fn::GetAtt, ${Name} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt" and isinstance(value, list):
                found.add(value[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
            found |= _references(value)
    return found


def _creation_order(template: dict[str, Any]) -> list[str]:
    """The resources in the order CloudFormation creates them: each after what it refers to or depends on."""
    resources = template.get("Resources", {})
    waits_for = {
        name: (_references(r.get("Properties", {})) | set(_as_list(r.get("DependsOn", [])))) & set(resources)
        for name, r in resources.items()
    }
    order: list[str] = []
    while len(order) < len(resources):
        ready = sorted(n for n in resources if n not in order and waits_for[n] <= set(order))
        order += ready or sorted(n for n in resources if n not in order)  # a cycle: CloudFormation refuses it
    return order


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _resource_event(stack: Stack, name: str, resource_type: str, status: str, token: str | None) -> None:
    resource = stack.resource_map._parsed_resources.get(name)
    event = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=name,
        physical_resource_id=getattr(resource, "physical_resource_id", "") or "",
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=None,
        resource_properties=None,
    )
    event.client_request_token = token
    stack.events.append(event)


def _stack_event(stack: Stack, status: str, token: str | None, reason: str | None = None) -> None:
    stack._add_stack_event(status, resource_status_reason=reason)
    stack.events[-1].client_request_token = token


def _execute_change_set(
    self: CloudFormationBackend,
    change_set_name: str,
    stack_name: str | None = None,
    client_request_token: str | None = None,
) -> None:
    """moto's execute, with what CloudFormation shows while it runs: an event per resource, in creation order
    (deletions in reverse), all with the request's token, and the stack's Outputs afterwards."""
    change_set = self.describe_change_set(change_set_name)
    stack = self.stacks[change_set.stack_id]
    operation = "CREATE" if change_set.change_set_type == "CREATE" else "UPDATE"
    order = _creation_order(change_set.template_dict)
    changes = sorted(
        change_set.changes,
        key=lambda c: order.index(c.logical_resource_id) if c.logical_resource_id in order else len(order),
    )
    removed = [c for c in changes if c.action == "Remove"][::-1]
    _stack_event(stack, f"{operation}_IN_PROGRESS", client_request_token, "User Initiated")
    for change in removed:
        _resource_event(
            stack, change.logical_resource_id, change.resource_type, "DELETE_IN_PROGRESS", client_request_token
        )
    try:
        change_set.apply()
    except Exception as e:  # whatever moto raised is what made the operation fail
        # CloudFormation accepts the execute and fails the operation afterwards, in the events; moto raises
        # from the call and rolls nothing back, so the stack is left as a failed one with rollback disabled
        # would be: what was made stays, and the status and reason say so.
        reason = f"{type(e).__name__}: {e}"
        _stack_event(stack, f"{operation}_FAILED", client_request_token, reason)
        change_set.execution_status = "EXECUTE_FAILED"
        stack.status = f"{operation}_FAILED"
        return
    for change in [c for c in changes if c.action != "Remove"]:
        status = "CREATE" if change.action == "Add" else "UPDATE"
        for step in ("IN_PROGRESS", "COMPLETE"):
            _resource_event(
                stack, change.logical_resource_id, change.resource_type, f"{status}_{step}", client_request_token
            )
    for change in removed:
        _resource_event(
            stack, change.logical_resource_id, change.resource_type, "DELETE_COMPLETE", client_request_token
        )
    _stack_event(stack, f"{operation}_COMPLETE", client_request_token)
    change_set.execution_status = "EXECUTE_COMPLETE"
    stack.status = f"{operation}_COMPLETE"
    stack.parameters = change_set.parameters  # moto keeps the old ones, so the next "no changes" is missed
    # CloudFormation removes a stack's change sets once one of them is executed.
    for arn, other in list(self.change_sets.items()):
        if other.stack_id == stack.stack_id:
            del self.change_sets[arn]
    stack.template = change_set.template
    stack._parse_template()
    stack.output_map = stack._create_output_map()


def _list_change_sets_response(self: CloudFormationResponse) -> ActionResult:
    """The stack's change sets (moto lists every stack's)."""
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    change_sets = [c for c in self.cloudformation_backend.list_change_sets() if c.stack_id == stack.stack_id]
    return ActionResult({"Summaries": change_sets})


def _execute_change_set_response(self: CloudFormationResponse) -> ActionResult:
    self.cloudformation_backend.execute_change_set(
        change_set_name=self._get_param("ChangeSetName"),
        stack_name=self._get_param("StackName"),
        client_request_token=self._get_param("ClientRequestToken"),
    )
    return EmptyResult()


def _delete_stack_response(self: CloudFormationResponse) -> ActionResult:
    stack_name = self._get_param("StackName")
    token = self._get_param("ClientRequestToken")
    for stack in self.cloudformation_backend.stacks.values():
        if stack_name in (stack.name, stack.stack_id):
            stack.delete_request_token = token
    self.cloudformation_backend.delete_stack(stack_name)
    return EmptyResult()


def _delete_stack(self: Stack) -> None:
    """moto's delete, with an event per resource in reverse creation order (DELETE_SKIPPED for what
    DeletionPolicy Retain keeps), all with the request's token."""
    token = getattr(self, "delete_request_token", None)
    resources = self.template_dict.get("Resources", {})
    made = [n for n in reversed(_creation_order(self.template_dict)) if self.resource_map._parsed_resources.get(n)]
    _stack_event(self, "DELETE_IN_PROGRESS", token, "User Initiated")
    for name in made:
        _resource_event(self, name, resources[name]["Type"], "DELETE_IN_PROGRESS", token)
    self.resource_map.delete()
    for name in made:
        # Snapshot deletes the resource after the snapshot; only Retain keeps it.
        kept = resources[name].get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")
        _resource_event(self, name, resources[name]["Type"], "DELETE_SKIPPED" if kept else "DELETE_COMPLETE", token)
    _stack_event(self, "DELETE_COMPLETE", token)
    self.status = "DELETE_COMPLETE"


def _parameter_list(self: Stack) -> list[dict[str, Any]]:
    """The parameters as DescribeStacks gives them: each value as it was given (moto gives a list parameter
    as Python's repr of a list), a NoEcho one as ****."""
    hidden = self.resource_map.no_echo_parameter_keys
    return [
        {"ParameterKey": k, "ParameterValue": "****" if k in hidden else _as_given(v)}
        for k, v in self.resource_map.resolved_parameters.items()
    ]


def _stack_resources(self: Stack) -> list[Any]:
    """The resources made: none for a resource moto has no model of (CloudFormation would list it)."""
    return [r for r in self.resource_map.values() if r is not None and not isinstance(r, str)]


def _register_models() -> None:
    CloudFormationBackend.create_change_set = _create_change_set  # type: ignore[method-assign]
    CloudFormationBackend.execute_change_set = _execute_change_set  # type: ignore[method-assign]
    CloudFormationResponse.update_termination_protection = _update_termination_protection  # type: ignore[attr-defined]
    CloudFormationResponse.execute_change_set = _execute_change_set_response  # type: ignore[method-assign]
    CloudFormationResponse.list_change_sets = _list_change_sets_response  # type: ignore[method-assign]
    CloudFormationResponse.delete_stack = _delete_stack_response  # type: ignore[method-assign]
    ChangeSet.diff = _change_set_changes  # type: ignore[method-assign]
    cfn_parsing.parse_and_update_resource = _parse_and_update_resource
    Stack.has_parameters = _has_parameters  # type: ignore[method-assign]
    Stack.delete = _delete_stack  # type: ignore[method-assign]
    Stack.stack_resources = property(_stack_resources)  # type: ignore[assignment]
    Stack.parameter_list = property(_parameter_list)  # type: ignore[assignment]
    # moto caches its model map on first use; clear it so these classes are in it whatever ran before.
    for cached in (cfn_parsing.get_model_list, cfn_parsing.get_model_map, cfn_parsing.get_name_type_map):
        cached.cache_clear()
    # The map keeps the last subclass per type; moto's own SSM model was imported (defined) before ours.
    model_map = cfn_parsing.get_model_map()
    missing = [m.cloudformation_type() for m in MODELS if model_map.get(m.cloudformation_type()) is not m]
    if missing:
        raise RuntimeError(f"moto did not pick up the local models for {missing}")


class LocalAws:
    """moto's server on 127.0.0.1 with the models above, in this process; a context manager."""

    def __init__(self, port: int = 0) -> None:
        _register_models()
        self._port = port
        self._server = ThreadedMotoServer(ip_address=LOCAL_HOST, port=port, verbose=False)
        self.endpoint_url = ""

    def start(self) -> str:
        """Start serving; raises OSError when the port is taken (werkzeug would only print it, in its thread)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOCAL_HOST, self._port))
        # One line per request from werkzeug drowns the deploy's own progress.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> LocalAws:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_demo_network(ec2: Any, region: str) -> dict[str, str]:
    """A VPC as a real installation would have it, in the local AWS: public subnets (a route to an
    internet gateway) and private ones, in two Availability Zones, and stand-in roi and worker images.
    Returns the template parameters that point at them."""
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    public_routes = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_routes, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    subnets: dict[str, list[str]] = {"public": [], "private": []}
    for i, zone in enumerate((f"{region}a", f"{region}b")):
        for j, kind in enumerate(("public", "private")):
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i * 2 + j}.0/24", AvailabilityZone=zone)
            subnets[kind].append(subnet["Subnet"]["SubnetId"])
    for subnet in subnets["public"]:
        ec2.associate_route_table(RouteTableId=public_routes, SubnetId=subnet)
    image = ec2.register_image(Name="valohai-roi-demo", RootDeviceName="/dev/sda1", Architecture="x86_64")["ImageId"]
    worker_image = ec2.register_image(Name="valohai-peon-demo", RootDeviceName="/dev/sda1", Architecture="x86_64")[
        "ImageId"
    ]
    private = ",".join(subnets["private"])
    return {
        "VpcId": vpc,
        "LoadBalancerSubnetIds": ",".join(subnets["public"]),
        "RoiSubnetId": subnets["private"][0],
        "DatabaseSubnetIds": private,
        "CacheSubnetIds": private,
        "WorkerSubnetIds": private,
        "Domain": "valohai.demo.example.com",
        "OrganizationName": "demo",
        "RoiAmiId": image,
        "WorkerAmiId": worker_image,
    }
