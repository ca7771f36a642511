"""Calls of the services' own APIs that moto lacks (it answers them with an HTTP 500, or with nothing), answered
with what the service would say.

- ElastiCache DescribeCacheEngineVersions: the Redis OSS versions ElastiCache offers (preflight checks the
  queue's QueueEngineVersion against it; `rules` refuses a replication group on any other).
- ElastiCache DescribeReservedCacheNodesOfferings: the node types ElastiCache offers in the region (cfn-lint's
  per-region list), each with a Redis offering (preflight's node type row).
- RDS DescribeDBEngineVersions and DescribeOrderableDBInstanceOptions for the engines moto has no catalogue of:
  the versions RDS creates instances of (cfn-lint's versions, less those it calls deprecated) and the classes
  orderable for each version in the region (cfn-lint's lists), gp3 and Multi-AZ capable, in every zone of the
  region (preflight's database rows; `rules` refuses a DB instance of any other).
- Secrets Manager: CreateSecret of a name scheduled for deletion is refused with AWS's words (moto: "already
  exists"), so a retained, deleted secret stops a deploy as in AWS.
- Auto Scaling: an instance keeps the launch template version it was launched from, as AWS reports it (moto:
  the group's current default), so a worker booted before an update is seen as one.
- EC2 CreateSecurityGroup and AuthorizeSecurityGroupIngress/Egress refuse a description with characters EC2
  refuses (moto takes any), as `rules` refuses such a group or rule in a template.
- EC2 RegisterImage keeps the image's Architecture (EC2's default x86_64) and its root volume's size (moto:
  no architecture, always 15 GiB), which preflight checks the instance types and volume sizes against.
- EC2 DescribeImages lists the images another account shares with the caller (ModifyImageAttribute
  LaunchPermission UserId) beside its own (moto: only its own): Valohai shares its roi and peon images with
  each customer account that way, and `RoiAmiId=latest` looks for them.

And those moto answers untruly, answered as the service does:
- EC2 RunInstances launches with a key pair that does not exist; EC2 refuses (InvalidKeyPair.NotFound), for
  an instance launched directly, by CloudFormation or by an Auto Scaling group from its launch template.
  (CreateLaunchTemplate takes the name unchecked, as EC2 does: "Launch template parameters are not fully
  validated when you create the launch template".)
- Auto Scaling UpdateAutoScalingGroup drops a group's MixedInstancesPolicy when the call does not repeat it
  (a spot worker group lost its policy when its MaxSize was changed); AWS changes only what the call names.
- EC2's "does not exist" messages for key pairs and VPCs name them as Python writes a set ("The keypair
  '{'nokey'}' does not exist."); EC2 names them as given ("The key pair 'nokey' does not exist").
- ACM issues a DNS-validated certificate 60 seconds after the request whatever DNS holds; ACM issues it
  once each domain's validation record — the CNAME DescribeCertificate names — is in a Route 53 hosted zone
  of the account, and leaves it PENDING_VALIDATION until then.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from moto.acm.models import CertBundle
from moto.autoscaling.models import FakeAutoScalingGroup, InstanceState
from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError, FilterNotImplementedError, InvalidKeyPairNameError, InvalidVPCIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.utils import generic_filter
from moto.elasticache.responses import ElastiCacheResponse
from moto.rds.responses import RDSResponse
from moto.route53.models import route53_backends
from moto.secretsmanager.exceptions import InvalidRequestException
from moto.secretsmanager.models import SecretsManagerBackend

from valohai_cfn.aws_rules import ec2_description_problem

# ElastiCache's Redis OSS engine versions and their parameter group families (DescribeCacheEngineVersions).
CACHE_ENGINE_VERSIONS = {
    "redis": {
        "4.0.10": "redis4.0",
        "5.0.6": "redis5.0",
        "6.0": "redis6.x",
        "6.2": "redis6.x",
        "7.0": "redis7",
        "7.1": "redis7",
    },
}


def offered(engine: str, version: str) -> bool:
    return str(version) in CACHE_ENGINE_VERSIONS.get(engine, {})


def _describe_cache_engine_versions(self: ElastiCacheResponse) -> ActionResult:
    engine = self._get_param("Engine")
    version = self._get_param("EngineVersion")
    family = self._get_param("CacheParameterGroupFamily")
    default_only = str(self._get_param("DefaultOnly", "")).lower() == "true"
    found: list[dict[str, Any]] = []
    for name, versions in CACHE_ENGINE_VERSIONS.items():
        newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
        for number, number_family in versions.items():
            if (engine and name != engine) or (version and number != version) or (family and number_family != family):
                continue
            if default_only and number != newest:
                continue
            found.append(
                {
                    "Engine": name,
                    "EngineVersion": number,
                    "CacheParameterGroupFamily": number_family,
                    "CacheEngineDescription": "Redis",
                    "CacheEngineVersionDescription": f"redis version {number}",
                }
            )
    return ActionResult({"CacheEngineVersions": found})


_moto_describe_images = AmiBackend.describe_images


def _shared_with(account_id: str, region: str) -> dict[str, Any]:
    """The images of other accounts in the region whose launch permissions name `account_id`, by id."""
    return {
        ami.id: ami
        for owner, regions in list(ec2_backends.items())
        if owner != account_id and region in regions
        for ami in list(regions[region].amis.values())
        if {"UserId": account_id} in ami.launch_permissions
    }


def _describe_images(
    self: Any,
    ami_ids: list[str] | None = None,
    filters: dict[str, Any] | None = None,
    exec_users: list[str] | None = None,
    owners: list[str] | None = None,
) -> list[Any]:
    """moto's DescribeImages, plus the images other accounts share with this one, as EC2 lists them: by id, and
    among those its Owners, ExecutableUsers and filters select (a shared image is executable by this account)."""
    try:
        return _described_images(self, ami_ids, filters, exec_users, owners)
    except FilterNotImplementedError as e:  # moto's NotImplementedError: an HTTP 500 otherwise
        raise EC2ClientError(
            "InvalidParameterValue", f"{e} is not implemented by the local AWS (moto): leave that filter out"
        ) from None


def _described_images(
    self: Any, ami_ids: list[str] | None, filters: dict[str, Any] | None, exec_users: list[str] | None,
    owners: list[str] | None,
) -> list[Any]:  # fmt: skip
    shared = _shared_with(self.account_id, self.region_name)
    if ami_ids:
        own_ids = [i for i in ami_ids if i not in shared]
        own = _moto_describe_images(self, own_ids, filters, exec_users, owners) if own_ids else []
        return own + [shared[i] for i in ami_ids if i in shared]
    own = _moto_describe_images(self, ami_ids, filters, exec_users, owners)
    extra = list(shared.values())
    if exec_users:
        executable = {self.account_id if user == "self" else user for user in exec_users}
        extra = [ami for ami in extra if self.account_id in executable]
    if owners:
        extra = [ami for ami in extra if ami.owner_id in owners or ami.owner_alias in owners]
    return own + (generic_filter(filters, extra) if filters else extra)


# -- the catalogues, as cfn-lint ships AWS's ---------------------------------------------------------


def _extension(*parts: str) -> Any:
    import cfnlint

    return json.loads(Path(cfnlint.__file__).parent.joinpath("data", "schemas", "extensions", *parts).read_text())


def _enums_for(schema: dict, **properties: str) -> list[dict]:
    """The `then` enums of a cfn-lint extension schema's if/then blocks whose constants match `properties`."""
    found = []
    for block in schema.get("allOf", []):
        condition = block.get("if", {}).get("properties", {})
        if all(condition.get(k, {}).get("const", v) == v for k, v in properties.items()):
            then = block.get("then")  # `false` where cfn-lint refuses every value
            found.append(condition | {"__then__": then.get("properties", {}) if isinstance(then, dict) else {}})
    return found


@functools.cache
def db_engine_versions(engine: str) -> tuple[str, ...]:
    """The versions of `engine` RDS creates instances of: cfn-lint's list less the deprecated ones."""

    def listed(name: str) -> set[str]:
        # engine_version.json lists them in its `then`, engine_version_deprecated.json in its `if`.
        blocks = _enums_for(_extension("aws_rds_dbinstance", name), Engine=engine)
        return {
            v for b in blocks for where in (b, b["__then__"]) for v in where.get("EngineVersion", {}).get("enum", [])
        }

    offered = listed("engine_version.json") - listed("engine_version_deprecated.json")
    return tuple(sorted(offered, key=lambda v: tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.-]", v))))


@functools.cache
def db_instance_classes(engine: str, version: str, region: str) -> frozenset[str]:
    """The classes orderable for `engine` `version` in `region`: cfn-lint's classes of the version (by its
    pattern) that its region's list has too."""
    by_version = set()
    for block in _enums_for(_extension("aws_rds_dbinstance", "db_instance_class.json"), Engine=engine):
        pattern = block.get("EngineVersion", {}).get("pattern")
        if pattern and re.match(pattern, version):
            by_version |= set(block["__then__"].get("DBInstanceClass", {}).get("enum", []))
    regional = _extension("aws_rds_dbinstance", "dbinstanceclass_enum.json").get(region)
    if regional is None:
        return frozenset(by_version)
    in_region = {
        c for b in _enums_for(regional, Engine=engine) for c in b["__then__"].get("DBInstanceClass", {}).get("enum", [])
    }
    return frozenset(by_version & in_region)


@functools.cache
def cache_node_types(region: str) -> frozenset[str]:
    """The node types ElastiCache offers in `region` (cfn-lint's list)."""
    return frozenset(
        _extension("aws_elasticache_cachecluster", "cachenodetype_enum.json").get(region, {}).get("enum", [])
    )


# RDS's storage range of gp3 for PostgreSQL, GiB.
GP3_STORAGE = (20, 65536)


def _describe_db_engine_versions(self: RDSResponse) -> ActionResult:
    engine = self.params.get("Engine") or "postgres"
    wanted = self.params.get("EngineVersion")
    versions = [v for v in db_engine_versions(engine) if wanted in (None, v)]
    return ActionResult(
        {
            "DBEngineVersions": [
                {"Engine": engine, "EngineVersion": v, "DBParameterGroupFamily": f"{engine}{v.split('.')[0]}"}
                for v in versions
            ]
        }
    )


_moto_orderable = RDSResponse.describe_orderable_db_instance_options


def _describe_orderable_db_instance_options(self: RDSResponse) -> ActionResult:
    engine, version = self.params.get("Engine"), self.params.get("EngineVersion")
    if engine in ("aurora-postgresql", "neptune"):  # moto's own catalogue
        return _moto_orderable(self)
    wanted_class = self.params.get("DBInstanceClass")
    zones = [{"Name": z.name} for z in ec2_backends[self.current_account][self.region].describe_availability_zones()]
    options = []
    for number in [version] if version else list(db_engine_versions(engine)):
        if number not in db_engine_versions(engine):
            continue
        for db_class in sorted(db_instance_classes(engine, number, self.region)):
            if wanted_class not in (None, db_class):
                continue
            options.append(
                {
                    "Engine": engine,
                    "EngineVersion": number,
                    "DBInstanceClass": db_class,
                    "StorageType": "gp3",
                    "MultiAZCapable": True,
                    "Vpc": True,
                    "MinStorageSize": GP3_STORAGE[0],
                    "MaxStorageSize": GP3_STORAGE[1],
                    "AvailabilityZones": zones,
                }
            )
    return ActionResult({"OrderableDBInstanceOptions": options})


def _describe_reserved_cache_nodes_offerings(self: ElastiCacheResponse) -> ActionResult:
    wanted = self._get_param("CacheNodeType")
    product = self._get_param("ProductDescription") or "redis"
    types = [t for t in sorted(cache_node_types(self.region)) if wanted in (None, t)]
    offerings = [
        {
            "ReservedCacheNodesOfferingId": f"local-{t}-{product}",
            "CacheNodeType": t,
            "Duration": 31536000,
            "ProductDescription": product,
            "OfferingType": "No Upfront",
        }
        for t in types
    ]
    return ActionResult({"ReservedCacheNodesOfferings": offerings})


_moto_create_secret = SecretsManagerBackend.create_secret


def _create_secret(self: SecretsManagerBackend, name: str, *args: Any, **kwargs: Any) -> str:
    existing = self.secrets.get(name)
    if existing is not None and getattr(existing, "deleted_date", None):
        raise InvalidRequestException(
            "You can't create this secret because a secret with this name is already scheduled for deletion."
        )
    return _moto_create_secret(self, name, *args, **kwargs)


_moto_register_image = AmisResponse.register_image
_moto_block_device_mappings = Ami.block_device_mappings


def _register_image(self: AmisResponse) -> ActionResult:
    answer = _moto_register_image(self)
    image = self.ec2_backend.amis[answer.result["ImageId"]]  # type: ignore[index]
    image.architecture = self._get_param("Architecture") or "x86_64"
    image.root_device_name = self._get_param("RootDeviceName") or image.root_device_name
    for mapping in self._get_param("BlockDeviceMappings", []) or []:
        if mapping.get("DeviceName") == image.root_device_name and mapping.get("Ebs", {}).get("VolumeSize"):
            image.root_volume_size = int(mapping["Ebs"]["VolumeSize"])
    return answer


def _block_device_mappings(self: Ami) -> list[dict[str, Any]]:
    mappings = _moto_block_device_mappings.fget(self)  # type: ignore[attr-defined]
    size = getattr(self, "root_volume_size", None)
    if size:
        for mapping in mappings:
            mapping["Ebs"]["VolumeSize"] = size
    return mappings


def _described(descriptions: list[Any]) -> None:
    for text in descriptions:
        problem = ec2_description_problem(text) if isinstance(text, str) else None
        if problem:
            raise EC2ClientError("InvalidParameterValue", f"Invalid description {text!r}: {problem}")


_moto_create_security_group = SecurityGroupBackend.create_security_group
_moto_authorize_ingress = SecurityGroupBackend.authorize_security_group_ingress
_moto_authorize_egress = SecurityGroupBackend.authorize_security_group_egress


def _create_security_group(self: SecurityGroupBackend, name: str, description: str, *args: Any, **kwargs: Any) -> Any:
    _described([description])
    return _moto_create_security_group(self, name, description, *args, **kwargs)


def _rule_descriptions(args: tuple, kwargs: dict) -> list[Any]:
    ip_ranges = kwargs.get("ip_ranges", args[4] if len(args) > 4 else None) or []
    groups = kwargs.get("source_groups", args[6] if len(args) > 6 else None) or []
    return [r.get("Description") for r in [*ip_ranges, *groups] if isinstance(r, dict)]


def _authorize_ingress(self: SecurityGroupBackend, *args: Any, **kwargs: Any) -> Any:
    _described(_rule_descriptions(args, kwargs))
    return _moto_authorize_ingress(self, *args, **kwargs)


def _authorize_egress(self: SecurityGroupBackend, *args: Any, **kwargs: Any) -> Any:
    _described(_rule_descriptions(args, kwargs))
    return _moto_authorize_egress(self, *args, **kwargs)


_moto_instance_state_init = InstanceState.__init__


def _instance_state_init(self: InstanceState, *args: Any, **kwargs: Any) -> None:
    _moto_instance_state_init(self, *args, **kwargs)
    group = self.auto_scaling_group
    template = getattr(group, "ec2_launch_template", None)
    self.launched_from = None
    if template is not None:
        version = template.get_version(getattr(group, "launch_template_version", "$Default"))
        self.launched_from = {
            "LaunchTemplateId": template.id,
            "LaunchTemplateName": template.name,
            "Version": str(version.number),
        }


def _launched_from(self: InstanceState) -> dict[str, Any] | None:
    return getattr(self, "launched_from", None)


class KeyPairNotFound(EC2ClientError):
    def __init__(self, name: str) -> None:
        super().__init__("InvalidKeyPair.NotFound", f"The key pair '{name}' does not exist")


_moto_run_instances = InstanceBackend.run_instances


def _run_instances(
    self: Any, image_id: str, count: int, user_data: Any, security_group_names: list[str], **kwargs: Any
) -> Any:
    """moto's RunInstances, refusing a key pair the region does not have, as EC2 does (the launch template's
    KeyName when the call names none)."""
    name = kwargs.get("key_name")
    if not name and kwargs.get("launch_template"):
        name = self._get_template_from_args(kwargs["launch_template"]).data.get("KeyName")
    if name and name not in self.key_pairs:
        raise KeyPairNotFound(name)
    return _moto_run_instances(self, image_id, count, user_data, security_group_names, **kwargs)


def _validation_record_found(certificate: CertBundle) -> bool:
    """Whether each domain's validation CNAME (DescribeCertificate's ResourceRecord) is in a hosted zone of the
    certificate's account."""
    account_id = certificate.arn.split(":")[4]
    records = {
        (r.name, r.type, tuple(v["Value"] if isinstance(v, dict) else v for v in r.records or []))
        for zone in list(route53_backends[account_id]["aws"].zones.values())
        for r in zone.rrsets
    }
    wanted = [v["ResourceRecord"] for v in certificate.describe()["Certificate"].get("DomainValidationOptions", [])]
    return bool(wanted) and all((w["Name"], w["Type"], (w["Value"],)) in records for w in wanted)


_moto_check = CertBundle.check


def _check(self: CertBundle) -> None:
    """moto's check (an expired certificate is EXPIRED), but a pending AMAZON_ISSUED certificate is issued
    when its validation records are in DNS, not when a minute has passed."""
    pending = self.type == "AMAZON_ISSUED" and self.status == "PENDING_VALIDATION"
    _moto_check(self)
    if pending and self.status == "ISSUED":
        self.status = "PENDING_VALIDATION"
    if self.status == "PENDING_VALIDATION" and _validation_record_found(self):
        self.status = "ISSUED"


_moto_group_update = FakeAutoScalingGroup.update


def _group_update(self: FakeAutoScalingGroup, **changes: Any) -> None:
    """moto's UpdateAutoScalingGroup, keeping the MixedInstancesPolicy unless the call replaces it (with a policy
    of its own or a LaunchTemplate)."""
    kept = self.mixed_instances_policy
    _moto_group_update(self, **changes)
    if changes.get("mixed_instances_policy") is None and not changes.get("launch_template"):
        self.mixed_instances_policy = kept


def _names(found: Any) -> str:
    """moto passes a set or list of ids where EC2's message names them: as EC2 writes them, not Python's repr."""
    return found if isinstance(found, str) else ", ".join(sorted(str(f) for f in found))


def _key_pair_not_found(self: EC2ClientError, key: Any) -> None:
    EC2ClientError.__init__(self, "InvalidKeyPair.NotFound", f"The key pair '{_names(key)}' does not exist")


def _vpc_not_found(self: EC2ClientError, vpc_id: Any) -> None:
    EC2ClientError.__init__(self, "InvalidVpcID.NotFound", f"The vpc ID '{_names(vpc_id)}' does not exist")


def install() -> None:
    ElastiCacheResponse.describe_cache_engine_versions = _describe_cache_engine_versions  # type: ignore[attr-defined]
    AmiBackend.describe_images = _describe_images  # type: ignore[method-assign]
    ElastiCacheResponse.describe_reserved_cache_nodes_offerings = _describe_reserved_cache_nodes_offerings  # type: ignore[attr-defined]
    RDSResponse.describe_db_engine_versions = _describe_db_engine_versions  # type: ignore[attr-defined]
    RDSResponse.describe_orderable_db_instance_options = _describe_orderable_db_instance_options  # type: ignore[method-assign]
    SecretsManagerBackend.create_secret = _create_secret  # type: ignore[method-assign]
    AmisResponse.register_image = _register_image  # type: ignore[method-assign]
    InstanceState.__init__ = _instance_state_init  # type: ignore[method-assign]
    SecurityGroupBackend.create_security_group = _create_security_group  # type: ignore[method-assign]
    SecurityGroupBackend.authorize_security_group_ingress = _authorize_ingress  # type: ignore[method-assign]
    SecurityGroupBackend.authorize_security_group_egress = _authorize_egress  # type: ignore[method-assign]
    InstanceState.launch_template = property(_launched_from)  # type: ignore[method-assign,assignment]
    Ami.block_device_mappings = property(_block_device_mappings)  # type: ignore[method-assign,assignment]
    InstanceBackend.run_instances = _run_instances  # type: ignore[method-assign]
    InvalidKeyPairNameError.__init__ = _key_pair_not_found  # type: ignore[method-assign]
    InvalidVPCIdError.__init__ = _vpc_not_found  # type: ignore[method-assign]
    CertBundle.check = _check  # type: ignore[method-assign]
    FakeAutoScalingGroup.update = _group_update  # type: ignore[method-assign]
