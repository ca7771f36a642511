"""The resources the local AWS makes, each through its own service's moto backend so that it is real to
that service's API afterwards.

moto (5.2) has no CloudFormation model for AWS::ElastiCache::SubnetGroup, AWS::ElastiCache::ReplicationGroup,
AWS::SecretsManager::Secret, AWS::SecretsManager::SecretTargetAttachment, AWS::S3::BucketPolicy or
AWS::CertificateManager::Certificate; its models of AWS::EC2::Instance (no SecurityGroupIds, no metadata
options), AWS::RDS::DBInstance (no DeletionProtection, a subnet group it cannot read from a Ref),
AWS::EC2::SecurityGroupIngress (never revoked), AWS::SSM::Parameter (Tags as a map fail) and
AWS::AutoScaling::AutoScalingGroup (replaced on every update) leave out what the template says. The
classes below take their place. moto builds its type → model map from the direct subclasses of
CloudFormationModel, so defining them is the registration.

`MADE_WITH` says which properties each type's model applies when it makes the resource (only those reach
the model, so none is applied twice); `updates` applies the rest through the service's API, and
`rules.unsupported` refuses a property neither knows, so nothing the template says is dropped in silence.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from moto.acm.models import acm_backends
from moto.autoscaling.models import FakeAutoScalingGroup
from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel
from moto.ec2.models import ec2_backends
from moto.elasticache.models import elasticache_backends
from moto.elbv2.models import elbv2_backends
from moto.iam.models import iam_backends
from moto.rds.models import rds_backends
from moto.route53.models import route53_backends
from moto.s3.models import s3_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends


def tag_list(tags: Any) -> list[dict[str, str]]:
    """Tags as the services take them: a list of Key/Value, whether the template gave a list or a map."""
    if isinstance(tags, dict):
        return [{"Key": k, "Value": str(v)} for k, v in tags.items()]
    return [{"Key": t["Key"], "Value": str(t["Value"])} for t in tags or []]


def as_bool(value: Any) -> bool:
    # Template booleans arrive as bools or as the strings "true"/"false" of a parameter.
    return str(value).lower() == "true"


def _int(value: Any, default: int | None = None) -> int | None:
    return default if value is None else int(value)


class _Model(CloudFormationModel):
    """What the project's models share: no name property unless they say, and the attributes Fn::GetAtt
    gives, each read by its function of the model."""

    TYPE: ClassVar[str] = ""
    NAME: ClassVar[str] = ""  # the property that names the resource, if any
    ATTRIBUTES: ClassVar[dict[str, Callable[[Any], Any]]] = {}

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.ATTRIBUTES:
            raise UnformattedGetAttTemplateException()
        return self.ATTRIBUTES[attribute_name](self)


class ElastiCacheSubnetGroup(_Model):
    TYPE = "AWS::ElastiCache::SubnetGroup"
    NAME = "CacheSubnetGroupName"

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> ElastiCacheSubnetGroup:
        p = cloudformation_json["Properties"]
        # ElastiCache keeps subnet group names in lowercase, as CloudFormation's physical id then is.
        name = resource_name.lower()
        elasticache_backends[account_id][region_name].create_cache_subnet_group(
            cache_subnet_group_name=name,
            cache_subnet_group_description=p.get("Description", ""),
            subnet_ids=p["SubnetIds"],
            tags=tag_list(p.get("Tags")),
        )
        return cls(name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        elasticache_backends[account_id][region_name].cache_subnet_groups.pop(resource_name, None)


class ElastiCacheReplicationGroup(_Model):
    TYPE = "AWS::ElastiCache::ReplicationGroup"
    NAME = "ReplicationGroupId"

    ATTRIBUTES: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "PrimaryEndPoint.Address": lambda m: m.group.node_groups[0]["primary_endpoint_address"],
        "PrimaryEndPoint.Port": lambda m: str(m.group.port),
        "ReaderEndPoint.Address": lambda m: m.group.node_groups[0]["reader_endpoint_address"],
        "ReaderEndPoint.Port": lambda m: str(m.group.port),
    }

    def __init__(self, group: Any) -> None:
        self.group = group

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
            automatic_failover_enabled=as_bool(p.get("AutomaticFailoverEnabled", False)),
            multi_az_enabled=as_bool(p.get("MultiAZEnabled", False)),
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
            tags=tag_list(p.get("Tags")),
            snapshot_arns=p.get("SnapshotArns"),
            snapshot_name=p.get("SnapshotName"),
            preferred_maintenance_window=p.get("PreferredMaintenanceWindow"),
            port=int(p.get("Port", 6379)),
            notification_topic_arn=p.get("NotificationTopicArn"),
            auto_minor_version_upgrade=as_bool(p.get("AutoMinorVersionUpgrade", True)),
            snapshot_retention_limit=int(p.get("SnapshotRetentionLimit", 0)),
            snapshot_window=p.get("SnapshotWindow"),
            auth_token=p.get("AuthToken"),
            transit_encryption_enabled=as_bool(p.get("TransitEncryptionEnabled", False)),
            at_rest_encryption_enabled=as_bool(p.get("AtRestEncryptionEnabled", False)),
            kms_key_id=p.get("KmsKeyId"),
            user_group_ids=p.get("UserGroupIds"),
            log_delivery_configurations=p.get("LogDeliveryConfigurations"),
            data_tiering_enabled=as_bool(p.get("DataTieringEnabled", False)),
            network_type=p.get("NetworkType"),
            ip_discovery=p.get("IpDiscovery"),
            transit_encryption_mode=p.get("TransitEncryptionMode"),
            cluster_mode=p.get("ClusterMode"),
            serverless_cache_snapshot_name=None,
        )
        made = cls(group)
        made.make_member_clusters(account_id, region_name, p)
        return made

    def make_member_clusters(self, account_id: str, region_name: str, p: dict[str, Any]) -> None:
        """The group's nodes as ElastiCache shows them (DescribeCacheClusters: engine version, node type),
        which moto's group names but does not make."""
        backend = elasticache_backends[account_id][region_name]
        for cluster_id in self.group.member_clusters:
            backend.cache_clusters.pop(cluster_id, None)
            backend.create_cache_cluster(
                cache_cluster_id=cluster_id,
                replication_group_id=self.group.replication_group_id,
                az_mode="single-az",
                preferred_availability_zone=None,
                num_cache_nodes=1,
                cache_node_type=self.group.cache_node_type,
                engine=self.group.engine,
                engine_version=self.group.engine_version,
                cache_parameter_group_name=p.get("CacheParameterGroupName"),
                cache_subnet_group_name=p.get("CacheSubnetGroupName"),
                transit_encryption_enabled=self.group.transit_encryption_enabled,
                network_type=p.get("NetworkType"),
                ip_discovery=p.get("IpDiscovery"),
                snapshot_name=None,
                preferred_maintenance_window=p.get("PreferredMaintenanceWindow"),
                port=int(p.get("Port", 6379)),
                notification_topic_arn=p.get("NotificationTopicArn"),
                auto_minor_version_upgrade=as_bool(p.get("AutoMinorVersionUpgrade", True)),
                snapshot_retention_limit=int(p.get("SnapshotRetentionLimit", 0)),
                snapshot_window=p.get("SnapshotWindow"),
                auth_token=None,
                outpost_mode=None,
                preferred_outpost_arn=None,
                preferred_availability_zones=[],
                cache_security_group_names=[],
                security_group_ids=list(p.get("SecurityGroupIds", [])),
                tags=[],
                snapshot_arns=[],
                preferred_outpost_arns=[],
                log_delivery_configurations=[],
                cache_node_ids_to_remove=[],
                cache_node_ids_to_reboot=[],
            )

    def delete(self, account_id: str, region_name: str, final_snapshot: str | None = None) -> None:
        """DeleteReplicationGroup, with FinalSnapshotIdentifier when given: ElastiCache refuses no delete of a
        group that exists, so the snapshot is taken and the group goes. moto's DeleteReplicationGroup only
        marks the group "deleting" (and takes no final snapshot); CloudFormation waits until it is gone."""
        backend = elasticache_backends[account_id][region_name]
        if final_snapshot is not None:
            backend.create_snapshot(
                snapshot_name=final_snapshot,
                replication_group_id=self.physical_resource_id,
                cache_cluster_id=None,
                kms_key_id=None,
                tags=None,
            )
        for cluster_id in self.group.member_clusters:
            backend.cache_clusters.pop(cluster_id, None)
        backend.replication_groups.pop(self.physical_resource_id, None)


class SecretsManagerSecret(_Model):
    TYPE = "AWS::SecretsManager::Secret"
    NAME = "Name"

    ATTRIBUTES: ClassVar[dict[str, Callable[[Any], Any]]] = {"Id": lambda m: m.arn}

    def __init__(self, arn: str, name: str) -> None:
        self.arn = arn
        self.name = name

    @property
    def physical_resource_id(self) -> str:
        # Ref on a secret gives its ARN.
        return self.arn

    @staticmethod
    def _generated_string(backend: Any, spec: dict[str, Any]) -> str:
        password = backend.get_random_password(
            password_length=int(spec.get("PasswordLength", 32)),
            exclude_characters=spec.get("ExcludeCharacters", ""),
            exclude_numbers=as_bool(spec.get("ExcludeNumbers", False)),
            exclude_punctuation=as_bool(spec.get("ExcludePunctuation", False)),
            exclude_uppercase=as_bool(spec.get("ExcludeUppercase", False)),
            exclude_lowercase=as_bool(spec.get("ExcludeLowercase", False)),
            include_space=as_bool(spec.get("IncludeSpace", False)),
            require_each_included_type=as_bool(spec.get("RequireEachIncludedType", True)),
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
                tags=tag_list(p.get("Tags")),
                kms_key_id=p.get("KmsKeyId"),
                client_request_token=None,
                replica_regions=[],
                force_overwrite=False,
            )
        )
        return cls(created["ARN"], resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        secretsmanager_backends[account_id][region_name].delete_secret(
            secret_id=self.arn, recovery_window_in_days=None, force_delete_without_recovery=True
        )


class SecretsManagerSecretTargetAttachment(_Model):
    """Adds the database's connection details to its secret, as CloudFormation does for RDS targets."""

    TYPE = "AWS::SecretsManager::SecretTargetAttachment"

    def __init__(self, secret_id: str) -> None:
        self.secret_id = secret_id

    @property
    def physical_resource_id(self) -> str:
        return self.secret_id

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SecretsManagerSecretTargetAttachment:
        p = cloudformation_json["Properties"]
        attach(p, account_id, region_name)
        return cls(p["SecretId"])

    def delete(self, account_id: str, region_name: str) -> None:
        """Detaching leaves the secret's value as it is, as in CloudFormation."""


def attach(p: dict[str, Any], account_id: str, region_name: str) -> None:
    """The target's connection details added to the secret's value (a new version)."""
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


class S3BucketPolicy(_Model):
    TYPE = "AWS::S3::BucketPolicy"

    def __init__(self, bucket_name: str) -> None:
        self.bucket_name = bucket_name

    @property
    def physical_resource_id(self) -> str:
        return self.bucket_name

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> S3BucketPolicy:
        p = cloudformation_json["Properties"]
        put_bucket_policy(p["Bucket"], p["PolicyDocument"], account_id)
        return cls(p["Bucket"])

    def delete(self, account_id: str, region_name: str) -> None:
        backend = s3_backends[account_id]["aws"]
        if self.bucket_name in backend.buckets:
            backend.delete_bucket_policy(self.bucket_name)


def put_bucket_policy(bucket: str, policy: Any, account_id: str) -> None:
    document = policy if isinstance(policy, str) else json.dumps(policy)
    s3_backends[account_id]["aws"].put_bucket_policy(bucket, document.encode())


class SsmParameter(_Model):
    """An SSM parameter with Tags as CloudFormation gives them (a map), and the Value and Type attributes
    Fn::GetAtt gives (moto's model fails the create on a map, and has no attributes)."""

    TYPE = "AWS::SSM::Parameter"
    NAME = "Name"

    ATTRIBUTES: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "Type": lambda m: m.parameter.parameter_type,
        "Value": lambda m: m.parameter.value,
    }

    def __init__(self, name: str, account_id: str, region_name: str) -> None:
        self.name = name
        self.account_id = account_id
        self.region_name = region_name

    @property
    def parameter(self) -> Any:
        return ssm_backends[self.account_id][self.region_name].get_parameter(self.name)

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SsmParameter:
        p = cloudformation_json["Properties"]
        put_parameter(resource_name, p, account_id, region_name, overwrite=False)
        return cls(resource_name, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        ssm_backends[account_id][region_name].delete_parameter(self.name)


def put_parameter(name: str, p: dict[str, Any], account_id: str, region_name: str, *, overwrite: bool) -> None:
    ssm_backends[account_id][region_name].put_parameter(
        name=name,
        description=p.get("Description"),
        value=str(p["Value"]),
        parameter_type=p["Type"],
        allowed_pattern=p.get("AllowedPattern"),
        keyid=None,
        overwrite=overwrite,
        tags=None if overwrite else tag_list(p.get("Tags")),
        data_type=p.get("DataType", "text"),
        tier=p.get("Tier"),
        policies=p.get("Policies"),
    )


class AutoScalingGroup(_Model):
    """moto's Auto Scaling group, made by moto's own model; updated in place (updates.py), as CloudFormation
    does. moto replaces the group on every update, which resets a desired capacity the template never set;
    CloudFormation keeps it (the app owns it)."""

    TYPE = "AWS::AutoScaling::AutoScalingGroup"
    NAME = "AutoScalingGroupName"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return FakeAutoScalingGroup.has_cfn_attr(attr)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        p = cloudformation_json["Properties"]
        tags = [
            {
                "ResourceId": resource_name,
                "ResourceType": "auto-scaling-group",
                "Key": t["Key"],
                "Value": str(t["Value"]),
                "PropagateAtLaunch": as_bool(t.get("PropagateAtLaunch", False)),
            }
            for t in p.get("Tags", [])
        ]
        return FakeAutoScalingGroup.create_from_cloudformation_json(
            resource_name, {**cloudformation_json, "Properties": {**p, "Tags": tags}}, account_id, region_name, **kwargs
        )


class RdsDbInstance(_Model):
    """An RDS instance with what the template sets: moto's model leaves out DeletionProtection, log
    exports, monitoring and IAM authentication, and cannot read a subnet group given by Ref."""

    TYPE = "AWS::RDS::DBInstance"
    NAME = "DBInstanceIdentifier"

    ATTRIBUTES: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "Endpoint.Address": lambda m: m.database.address,
        "Endpoint.Port": lambda m: str(m.database.port),
        "DBInstanceArn": lambda m: m.database.db_instance_arn,
        "DbiResourceId": lambda m: m.database.dbi_resource_id,
    }

    def __init__(self, database: Any) -> None:
        self.database = database

    @property
    def physical_resource_id(self) -> str:
        return self.database.db_instance_identifier

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> RdsDbInstance:
        p = cloudformation_json["Properties"]
        database = rds_backends[account_id][region_name].create_db_instance(
            {
                "db_instance_identifier": resource_name.lower(),
                "db_instance_class": p["DBInstanceClass"],
                "engine": p["Engine"],
                "engine_version": p.get("EngineVersion"),
                "allocated_storage": _int(p.get("AllocatedStorage")),
                "auto_minor_version_upgrade": as_bool(p.get("AutoMinorVersionUpgrade", True)),
                "backup_retention_period": _int(p.get("BackupRetentionPeriod"), 1),
                "copy_tags_to_snapshot": as_bool(p.get("CopyTagsToSnapshot", False)),
                "db_name": p.get("DBName"),
                "db_subnet_group_name": p.get("DBSubnetGroupName"),
                "deletion_protection": as_bool(p.get("DeletionProtection", False)),
                "enable_cloudwatch_logs_exports": p.get("EnableCloudwatchLogsExports"),
                "enable_iam_database_authentication": as_bool(p.get("EnableIAMDatabaseAuthentication", False)),
                "master_username": p.get("MasterUsername"),
                "master_user_password": p.get("MasterUserPassword"),
                "monitoring_interval": _int(p.get("MonitoringInterval"), 0),
                "monitoring_role_arn": p.get("MonitoringRoleArn"),
                "multi_az": as_bool(p.get("MultiAZ", False)),
                "port": _int(p.get("Port")),
                "publicly_accessible": as_bool(p.get("PubliclyAccessible", False)),
                "storage_encrypted": as_bool(p.get("StorageEncrypted", False)),
                "storage_type": p.get("StorageType"),
                "tags": tag_list(p.get("Tags")),
                "vpc_security_group_ids": p.get("VPCSecurityGroups", []),
            }
        )
        return cls(database)

    def delete(self, account_id: str, region_name: str, final_snapshot: str | None = None) -> None:
        """DeleteDBInstance: RDS refuses while DeletionProtection is on (InvalidParameterCombination), as in AWS,
        and takes the final snapshot only as part of a delete it accepts; without one, SkipFinalSnapshot."""
        rds_backends[account_id][region_name].delete_db_instance(
            self.physical_resource_id,
            final_db_snapshot_identifier=final_snapshot,
            skip_final_snapshot=final_snapshot is None,
        )


class Ec2Instance(_Model):
    """An EC2 instance with what the template sets: moto's model takes SecurityGroups (names) only, not
    SecurityGroupIds, and leaves out metadata options, monitoring and volume tags; moto's RunInstances
    makes each mapped volume without its Iops and Throughput (and so refuses io1/io2), so the volumes are
    made here through EC2's CreateVolume and AttachVolume with every setting."""

    TYPE = "AWS::EC2::Instance"

    ATTRIBUTES: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "AvailabilityZone": lambda m: m.instance.placement.zone,
        "PrivateDnsName": lambda m: m.instance.private_dns,
        "PrivateIp": lambda m: m.instance.private_ip,
        "PublicDnsName": lambda m: m.instance.public_dns,
        "PublicIp": lambda m: m.instance.public_ip,
        "InstanceId": lambda m: m.instance.id,
    }

    def __init__(self, instance: Any) -> None:
        self.instance = instance

    @property
    def physical_resource_id(self) -> str:
        return self.instance.id

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Ec2Instance:
        p = cloudformation_json["Properties"]
        backend = ec2_backends[account_id][region_name]
        tags = {t["Key"]: str(t["Value"]) for t in p.get("Tags", [])}
        reservation = backend.run_instances(
            image_id=p["ImageId"],
            count=1,
            user_data=p.get("UserData"),
            security_group_names=p.get("SecurityGroups", []),
            security_group_ids=p.get("SecurityGroupIds", []),
            instance_type=p.get("InstanceType", "m1.small"),
            is_instance_type_default=not p.get("InstanceType"),
            subnet_id=p.get("SubnetId"),
            key_name=p.get("KeyName"),
            # Mapped volumes are made below; without a mapping the instance gets its image's root volume.
            **({"block_device_mappings": []} if p.get("BlockDeviceMappings") else {}),
            metadata_options=p.get("MetadataOptions", {}),
            monitoring_state="enabled" if as_bool(p.get("Monitoring", False)) else "disabled",
            tags={"instance": tags, "volume": tags if as_bool(p.get("PropagateTagsToVolumeOnCreation")) else {}},
            region_name=region_name,
        )
        instance = reservation.instances[0]
        volume_tags = tags if as_bool(p.get("PropagateTagsToVolumeOnCreation")) else {}
        try:
            for mapping in p.get("BlockDeviceMappings", []):
                _attach_volume(backend, instance, mapping, volume_tags)
        except Exception:
            backend.terminate_instances([instance.id])  # half made is not made
            raise
        if p.get("IamInstanceProfile"):
            backend.associate_iam_instance_profile(
                instance_id=instance.id, iam_instance_profile_name=p["IamInstanceProfile"]
            )
        return cls(instance)

    def delete(self, account_id: str, region_name: str) -> None:
        ec2_backends[account_id][region_name].terminate_instances([self.instance.id])


GP3_BASELINE_THROUGHPUT = 125  # MiB/s: what EC2 gives a gp3 volume made without a Throughput


def _attach_volume(backend: Any, instance: Any, mapping: dict[str, Any], tags: dict[str, str]) -> None:
    """One BlockDeviceMappings entry as EC2 makes it at launch: the volume with its size, type, IOPS,
    throughput, encryption and snapshot (CreateVolume checks them as EC2 does), attached under its device
    name; DeleteOnTermination defaults to true for a volume made at launch."""
    ebs = mapping.get("Ebs", {})
    volume_type = ebs.get("VolumeType")
    throughput = _int(ebs.get("Throughput"))
    volume = backend.create_volume(
        size=_int(ebs.get("VolumeSize")),
        zone_name=instance.placement.zone,
        snapshot_id=ebs.get("SnapshotId"),
        encrypted=as_bool(ebs.get("Encrypted", False)),
        kms_key_id=ebs.get("KmsKeyId"),
        volume_type=volume_type,
        iops=_int(ebs.get("Iops")),
        throughput=GP3_BASELINE_THROUGHPUT if throughput is None and volume_type == "gp3" else throughput,
    )
    backend.attach_volume(volume.id, instance.id, mapping["DeviceName"], as_bool(ebs.get("DeleteOnTermination", True)))
    if tags:
        volume.add_tags(tags)


class SecurityGroupIngress(_Model):
    """One ingress rule; its physical id is the rule's id, and deleting it revokes the rule (moto's model
    never does)."""

    TYPE = "AWS::EC2::SecurityGroupIngress"

    def __init__(self, group_id: str, rule_id: str) -> None:
        self.group_id = group_id
        self.rule_id = rule_id

    @property
    def physical_resource_id(self) -> str:
        return self.rule_id

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> SecurityGroupIngress:
        p = cloudformation_json["Properties"]
        backend = ec2_backends[account_id][region_name]
        source = {"GroupId": p["SourceSecurityGroupId"]} if "SourceSecurityGroupId" in p else None
        ranges = [{"CidrIp": p["CidrIp"], "Description": p.get("Description", "")}] if "CidrIp" in p else []
        if source and "Description" in p:
            source["Description"] = p["Description"]
        rules, group = backend.authorize_security_group_ingress(
            group_name_or_id=p["GroupId"],
            ip_protocol=str(p["IpProtocol"]),
            from_port=p.get("FromPort"),
            to_port=p.get("ToPort"),
            ip_ranges=ranges,
            source_groups=[source] if source else [],
        )
        return cls(group.id, rules[0].id)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = ec2_backends[account_id][region_name]
        group = backend.get_security_group_from_id(self.group_id)
        if group is not None and any(r.id == self.rule_id for r in group.ingress_rules):
            backend.revoke_security_group_ingress(
                group_name_or_id=self.group_id,
                ip_protocol="",
                from_port="",
                to_port="",
                ip_ranges=[],
                security_rule_ids=[self.rule_id],
            )


class CertificateManagerCertificate(_Model):
    """A certificate requested from ACM and validated by DNS as CloudFormation does it: for each domain, the
    validation record ACM asks for (DescribeCertificate's ResourceRecord) written into the DomainValidationOptions'
    hosted zone through Route 53, and the certificate issued once ACM finds them all (services: ACM issues on
    the records, not on a timer). CloudFormation waits until then; the local AWS cannot wait for what no one
    writes (a domain without a HostedZoneId, email validation) and refuses it."""

    TYPE = "AWS::CertificateManager::Certificate"

    def __init__(self, arn: str) -> None:
        self.arn = arn

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> CertificateManagerCertificate:
        p = cloudformation_json["Properties"]
        if p.get("ValidationMethod", "DNS") != "DNS":
            raise ValueError(
                f"not supported by the local AWS: {p['ValidationMethod']} validation (CloudFormation waits for a "
                "person to approve it)"
            )
        backend = acm_backends[account_id][region_name]
        arn = backend.request_certificate(
            domain_name=p["DomainName"],
            idempotency_token=None,
            subject_alt_names=p.get("SubjectAlternativeNames", []),
            tags=tag_list(p.get("Tags")),
        )
        try:
            _write_validation_records(account_id, backend.get_certificate(arn), p.get("DomainValidationOptions", []))
        except Exception:
            backend.delete_certificate(arn)  # half made is not made
            raise
        return cls(arn)

    def delete(self, account_id: str, region_name: str) -> None:
        acm_backends[account_id][region_name].delete_certificate(self.arn)


def _write_validation_records(account_id: str, certificate: Any, options: list[dict[str, Any]]) -> None:
    """Each domain's validation record, as ACM names it, UPSERTed into its option's hosted zone; raises what
    Route 53 refuses, and the local AWS's refusal for a domain CloudFormation would wait on."""
    by_domain = {o["DomainName"]: o for o in options}
    route53 = route53_backends[account_id]["aws"]
    for validation in certificate.describe()["Certificate"]["DomainValidationOptions"]:
        domain, record = validation["DomainName"], validation["ResourceRecord"]
        zone_id = by_domain.get(domain, {}).get("HostedZoneId")
        if not zone_id:
            raise ValueError(
                f"not supported by the local AWS: the certificate for {domain} stays PENDING_VALIDATION until its "
                f"validation record ({record['Name']}) is written, and CloudFormation writes it only for a "
                "DomainValidationOptions entry with a HostedZoneId; it would wait"
            )
        # ChangeResourceRecordSets refuses a name outside the zone (InvalidChangeBatch), as Route 53 does.
        route53.change_resource_record_sets(
            zone_id,
            [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": record["Name"],
                        "Type": record["Type"],
                        "TTL": 300,
                        "ResourceRecords": [{"Value": record["Value"]}],
                    },
                }
            ],
        )
    certificate.check()
    if certificate.status != "ISSUED":
        raise ValueError(f"not supported by the local AWS: the certificate stays {certificate.status}")


MODELS = (
    ElastiCacheSubnetGroup,
    ElastiCacheReplicationGroup,
    SecretsManagerSecret,
    SecretsManagerSecretTargetAttachment,
    S3BucketPolicy,
    SsmParameter,
    AutoScalingGroup,
    RdsDbInstance,
    Ec2Instance,
    SecurityGroupIngress,
    CertificateManagerCertificate,
)


def _table(text: str) -> dict[str, frozenset[str]]:
    """A resource type per line, its properties on the indented lines under it."""
    table: dict[str, set[str]] = {}
    current = ""
    for line in text.strip().splitlines():
        if line.startswith(" "):
            table[current] |= set(line.split())
        else:
            current = line.strip()
            table[current] = set()
    return {resource_type: frozenset(properties) for resource_type, properties in table.items()}


MADE_WITH = _table(
    """
AWS::AutoScaling::AutoScalingGroup
    AutoScalingGroupName AvailabilityZones Cooldown DesiredCapacity HealthCheckGracePeriod HealthCheckType
    LaunchTemplate MaxSize MinSize MixedInstancesPolicy NewInstancesProtectedFromScaleIn Tags TerminationPolicies
    VPCZoneIdentifier
AWS::CertificateManager::Certificate
    DomainName DomainValidationOptions SubjectAlternativeNames Tags ValidationMethod
AWS::EC2::Instance
    BlockDeviceMappings IamInstanceProfile ImageId InstanceType KeyName MetadataOptions Monitoring
    PropagateTagsToVolumeOnCreation SecurityGroupIds SubnetId Tags UserData
AWS::EC2::LaunchTemplate
    LaunchTemplateData LaunchTemplateName TagSpecifications VersionDescription
AWS::EC2::SecurityGroup
    GroupDescription GroupName Tags VpcId
AWS::EC2::SecurityGroupIngress
    CidrIp Description FromPort GroupId IpProtocol SourceSecurityGroupId ToPort
AWS::ElastiCache::ReplicationGroup
    AtRestEncryptionEnabled AutoMinorVersionUpgrade AutomaticFailoverEnabled CacheNodeType CacheSubnetGroupName
    Engine EngineVersion MultiAZEnabled NumCacheClusters Port ReplicationGroupDescription ReplicationGroupId
    SecurityGroupIds SnapshotRetentionLimit Tags TransitEncryptionEnabled TransitEncryptionMode
AWS::ElastiCache::SubnetGroup
    CacheSubnetGroupName Description SubnetIds Tags
AWS::ElasticLoadBalancingV2::Listener
    Certificates DefaultActions LoadBalancerArn Port Protocol SslPolicy
AWS::ElasticLoadBalancingV2::LoadBalancer
    Name Scheme SecurityGroups Subnets
AWS::ElasticLoadBalancingV2::TargetGroup
    HealthCheckIntervalSeconds HealthCheckPath HealthCheckPort HealthCheckProtocol HealthCheckTimeoutSeconds
    HealthyThresholdCount Matcher Name Port Protocol TargetType UnhealthyThresholdCount VpcId
AWS::IAM::InstanceProfile
    InstanceProfileName Path Roles
AWS::IAM::Role
    AssumeRolePolicyDocument Description MaxSessionDuration Path Policies RoleName Tags
AWS::RDS::DBInstance
    AllocatedStorage AutoMinorVersionUpgrade BackupRetentionPeriod CopyTagsToSnapshot DBInstanceClass
    DBInstanceIdentifier DBName DBSubnetGroupName DeletionProtection EnableCloudwatchLogsExports
    EnableIAMDatabaseAuthentication Engine EngineVersion MasterUserPassword MasterUsername MonitoringInterval
    MonitoringRoleArn MultiAZ Port PubliclyAccessible StorageEncrypted StorageType Tags VPCSecurityGroups
AWS::RDS::DBSubnetGroup
    DBSubnetGroupDescription DBSubnetGroupName SubnetIds Tags
AWS::Route53::RecordSet
    AliasTarget HostedZoneId HostedZoneName Name ResourceRecords TTL Type
AWS::S3::Bucket
    BucketName Tags
AWS::S3::BucketPolicy
    Bucket PolicyDocument
AWS::SSM::Parameter
    AllowedPattern DataType Description Name Policies Tags Tier Type Value
AWS::SecretsManager::Secret
    Description GenerateSecretString KmsKeyId Name SecretString Tags
AWS::SecretsManager::SecretTargetAttachment
    SecretId TargetId TargetType
"""
)
"""The properties each type's model applies when it makes the resource (moto's own model for the types
the project does not replace: LaunchTemplate, SecurityGroup, the load balancer's, IAM, DBSubnetGroup,
RecordSet, Bucket)."""


def _empty_role(made: Any, account_id: str) -> None:
    """CloudFormation's role handler detaches the managed policies and deletes the inline ones before it
    deletes a role; IAM refuses to delete a role that still has them (DeleteConflict)."""
    backend = iam_backends[account_id]["aws"]
    for arn in list(made.managed_policies):
        backend.detach_role_policy(arn, made.name)
    for name in list(made.policies):
        backend.delete_role_policy(made.name, name)


def _empty_instance_profile(made: Any, account_id: str) -> None:
    backend = iam_backends[account_id]["aws"]
    for role in list(made.roles):
        backend.remove_role_from_instance_profile(made.name, role.name)


def _refuse_bucket_with_objects(made: Any, _account_id: str) -> None:
    """S3 refuses to delete a bucket that holds objects (or object versions), and CloudFormation's handler
    empties none: the resource is DELETE_FAILED. moto's DeleteBucket from CloudFormation returned without
    deleting, and the stack said DELETE_COMPLETE with the bucket still there."""
    from moto.s3.exceptions import BucketNotEmpty

    if made.keys:
        raise BucketNotEmpty(made.name)


def _delete_target_group(made: Any, account_id: str, region: str) -> None:
    elbv2_backends[account_id][region].delete_target_group(made.arn)


def _delete_listener(made: Any, account_id: str, region: str) -> None:
    elbv2_backends[account_id][region].delete_listener(made.arn)


DELETED_BY = {
    "AWS::ElasticLoadBalancingV2::TargetGroup": _delete_target_group,
    "AWS::ElasticLoadBalancingV2::Listener": _delete_listener,
}
"""The types whose moto model deletes nothing from CloudFormation (no delete, and the base class's
delete_from_cloudformation_json does nothing): deleted through the service's own call, which refuses as the
service does (a target group a listener still uses). moto left the target group, and said DELETE_COMPLETE."""


BEFORE_DELETE = {
    "AWS::IAM::Role": _empty_role,
    "AWS::IAM::InstanceProfile": _empty_instance_profile,
    "AWS::S3::Bucket": _refuse_bucket_with_objects,
}
"""What CloudFormation's handler does to a resource before it deletes it, so that the service lets it, or the
service's refusal to delete it as it is."""


# Attributes moto's own models do not give (NotImplementedError), read from what they keep.
_ATTRIBUTES_MOTO_LACKS = {
    ("AWS::ElasticLoadBalancingV2::LoadBalancer", "CanonicalHostedZoneID"): lambda made: made.canonical_hosted_zone_id,
    ("AWS::ElasticLoadBalancingV2::LoadBalancer", "LoadBalancerFullName"): lambda made: made.arn.split(
        ":loadbalancer/"
    )[1],
}


def has_attribute(resource_type: str, name: str) -> bool:
    model = model_class(resource_type)
    return (resource_type, name) in _ATTRIBUTES_MOTO_LACKS or (model is not None and model.has_cfn_attr(name))


def attribute(resource_type: str, made: Any, name: str) -> Any:
    """What Fn::GetAtt gives for a live resource; KeyError for an attribute the type does not have."""
    fill = _ATTRIBUTES_MOTO_LACKS.get((resource_type, name))
    if fill is not None:
        return fill(made)
    if not made.has_cfn_attr(name):
        raise KeyError(name)
    return made.get_cfn_attribute(name)


def physical_id(made: Any) -> str:
    """What Ref gives for a live resource (moto's DBSubnetGroup has only its name)."""
    return getattr(made, "physical_resource_id", None) or made.name


_OWN = {m.cloudformation_type(): m for m in MODELS}


def model_class(resource_type: str) -> type[CloudFormationModel] | None:
    """The model the local AWS makes a resource of this type with: its own, else moto's; None for a type
    it does not make."""
    if resource_type not in MADE_WITH:
        return None
    return _OWN.get(resource_type) or cfn_parsing.get_model_map().get(resource_type)
