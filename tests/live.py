"""A stack's resources as two sides that must agree: what the processed template says for given parameter
values (evaluated here, independently of the local AWS), and what each service's own API reports (read
through boto3, as the app and an operator would). Used by the local AWS's truth test."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from cfn import PSEUDO, Evaluator, parameter_values


@dataclass
class Clients:
    """One boto3 client per service (making one takes longer than most calls to the local AWS)."""

    session: Any
    endpoint: str
    made: dict[str, Any] = field(default_factory=dict)

    def __call__(self, service: str) -> Any:
        if service not in self.made:
            self.made[service] = self.session.client(service, endpoint_url=self.endpoint)
        return self.made[service]


@dataclass
class StackEvaluator(Evaluator):
    """The test helper's evaluator with this local AWS's region and account, and this stack's name."""

    pseudo: dict[str, str] = field(default_factory=dict)

    def parameter(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        return super().parameter(name)


def _tags(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return {k: str(v) for k, v in tags.items()}
    return {t["Key"]: str(t["Value"]) for t in tags or [] if not t["Key"].startswith("aws:")}


def _rule(protocol: Any, low: Any, high: Any, peer: str) -> tuple:
    return (str(protocol), "" if low is None else str(low), "" if high is None else str(high), peer)


# -- the template's side ---------------------------------------------------------------------------


def _launch_template_groups(data: dict) -> list[str]:
    groups = list(data.get("SecurityGroupIds", []))
    for interface in data.get("NetworkInterfaces", []):
        groups += interface.get("Groups", [])
    return sorted(groups)


def _expected_resource(kind: str, p: dict[str, Any]) -> dict[str, Any] | None:
    if kind == "AWS::SSM::Parameter":
        return {"Value": p["Value"]}
    if kind == "AWS::AutoScaling::AutoScalingGroup":
        spec = p.get("LaunchTemplate") or p["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
        return {
            "MinSize": int(p["MinSize"]),
            "MaxSize": int(p["MaxSize"]),
            "VPCZoneIdentifier": sorted(p["VPCZoneIdentifier"]),
            "LaunchTemplateId": spec["LaunchTemplateId"],
            "Tags": _tags(p.get("Tags")),
        }
    if kind == "AWS::EC2::LaunchTemplate":
        data = p["LaunchTemplateData"]
        return {
            "ImageId": data["ImageId"],
            "InstanceType": data["InstanceType"],
            "KeyName": data.get("KeyName"),
            "VolumeSize": int(data["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"]),
            "UserData": data["UserData"],  # the test evaluator leaves Fn::Base64's text as it is
            "SecurityGroupIds": _launch_template_groups(data),
        }
    if kind == "AWS::EC2::SecurityGroup":
        egress = {
            _rule(
                r["IpProtocol"],
                r.get("FromPort"),
                r.get("ToPort"),
                r.get("CidrIp") or r.get("DestinationSecurityGroupId"),
            )
            for r in p.get("SecurityGroupEgress", [])
        }
        return {
            "GroupName": p["GroupName"],
            "Description": p["GroupDescription"],
            "Egress": egress,
            "Tags": _tags(p.get("Tags")),
        }
    if kind == "AWS::RDS::DBInstance":
        return {
            "DBInstanceClass": p["DBInstanceClass"],
            "EngineVersion": p["EngineVersion"],
            "AllocatedStorage": int(p["AllocatedStorage"]),
            "MultiAZ": str(p["MultiAZ"]).lower() == "true",
            "DeletionProtection": str(p["DeletionProtection"]).lower() == "true",
            "VpcSecurityGroups": sorted(p["VPCSecurityGroups"]),
            "DBSubnetGroupName": p["DBSubnetGroupName"],
            "Tags": _tags(p.get("Tags")),
        }
    if kind == "AWS::RDS::DBSubnetGroup":
        return {"SubnetIds": sorted(p["SubnetIds"])}
    if kind == "AWS::ElastiCache::ReplicationGroup":
        return {
            "CacheNodeType": p["CacheNodeType"],
            "TransitEncryptionEnabled": str(p.get("TransitEncryptionEnabled", False)).lower() == "true",
            "AtRestEncryptionEnabled": str(p.get("AtRestEncryptionEnabled", False)).lower() == "true",
            "EngineVersion": p["EngineVersion"],
            "NodeType": p["CacheNodeType"],
        }
    if kind == "AWS::ElastiCache::SubnetGroup":
        return {"SubnetIds": sorted(p["SubnetIds"])}
    if kind == "AWS::ElasticLoadBalancingV2::LoadBalancer":
        return {"Scheme": p["Scheme"], "Subnets": sorted(p["Subnets"]), "SecurityGroups": sorted(p["SecurityGroups"])}
    if kind == "AWS::ElasticLoadBalancingV2::Listener":
        (action,) = p["DefaultActions"]
        return {
            "LoadBalancerArn": p["LoadBalancerArn"],
            "Port": int(p["Port"]),
            "Protocol": p["Protocol"],
            "Action": action["Type"],
            "Forward": action.get("TargetGroupArn"),
            "Certificates": sorted(c["CertificateArn"] for c in p.get("Certificates", [])),
        }
    if kind == "AWS::ElasticLoadBalancingV2::TargetGroup":
        return {"Targets": sorted(t["Id"] for t in p.get("Targets", [])), "HealthCheckPath": p["HealthCheckPath"]}
    if kind == "AWS::EC2::Instance":
        return {
            "InstanceType": p["InstanceType"],
            "ImageId": p["ImageId"],
            "SubnetId": p["SubnetId"],
            "KeyName": p.get("KeyName"),
            "SecurityGroupIds": sorted(p["SecurityGroupIds"]),
            "VolumeSize": int(p["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"]),
            "Tags": _tags(p.get("Tags")),
        }
    if kind == "AWS::S3::Bucket":
        origins = sorted(o for rule in p["CorsConfiguration"]["CorsRules"] for o in rule["AllowedOrigins"])
        return {"CorsOrigins": origins, "Tags": _tags(p.get("Tags"))}
    if kind in ("AWS::IAM::Role", "AWS::SecretsManager::Secret"):
        return {"Tags": _tags(p.get("Tags"))}
    if kind == "AWS::Route53::RecordSet":
        return {"Name": p["Name"].rstrip("."), "AliasDNSName": p["AliasTarget"]["DNSName"].rstrip(".")}
    if kind == "AWS::CertificateManager::Certificate":
        return {"DomainName": p["DomainName"]}
    return None


def expected_state(
    raw_template: dict, resolved: dict, values: dict[str, str], attributes: dict[str, str], pseudo: dict
) -> dict:
    """What the processed template (`resolved` for these values) says, resource by resource (by logical id),
    with the ingress rules of each security group, and the outputs."""
    evaluate = StackEvaluator(resolved, parameter_values(raw_template, values), attributes, {**PSEUDO, **pseudo})
    state: dict[str, Any] = {}
    ingress: dict[str, set] = {}
    for name, resource in resolved["Resources"].items():
        properties = evaluate(resource.get("Properties", {}))
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress":
            peer = properties.get("CidrIp") or properties.get("SourceSecurityGroupId")
            rule = _rule(properties["IpProtocol"], properties.get("FromPort"), properties.get("ToPort"), peer)
            ingress.setdefault(properties["GroupId"], set()).add(rule)
            continue
        expected = _expected_resource(resource["Type"], properties)
        if expected is not None:
            state[name] = expected
    for name, resource in resolved["Resources"].items():
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            state[name]["Ingress"] = ingress.get(attributes[name], set())
    state["Outputs"] = {k: str(evaluate(o["Value"])) for k, o in resolved["Outputs"].items()}
    return state


# -- the services' side ----------------------------------------------------------------------------


def stack_resources(clients: Clients, stack: str) -> dict[str, dict]:
    listed = (
        clients("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack).build_full_result()
    )
    return {r["LogicalResourceId"]: r for r in listed["StackResourceSummaries"]}


def _rules(permissions: list[dict]) -> set:
    return {
        _rule(p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), peer)
        for p in permissions
        for peer in [r["CidrIp"] for r in p.get("IpRanges", [])] + [g["GroupId"] for g in p.get("UserIdGroupPairs", [])]
    }


class Services:
    """The stack's resources read through their services, a few calls per type (each call to the local AWS
    costs about as much as the whole update being checked)."""

    def __init__(self, clients: Clients, resources: dict[str, dict], kinds: dict[str, str], zone: str | None) -> None:
        self.clients = clients
        self.physical = {n: r["PhysicalResourceId"] for n, r in resources.items() if n in kinds}
        self.kinds = kinds
        self.zone = zone

    def of(self, kind: str) -> dict[str, str]:
        return {n: p for n, p in self.physical.items() if self.kinds[n] == kind}

    def read(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(state by logical id, the Fn::GetAtt values "Name.Attribute" and the Refs "Name")."""
        state: dict[str, Any] = {}
        attributes: dict[str, str] = dict(self.physical)
        for kind, reader in READERS.items():
            found = self.of(kind)
            if found:
                reader(self, found, state, attributes)
        return state, attributes


def _ssm(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    names = list(found.values())
    values = {}
    for start in range(0, len(names), 10):
        for p in services.clients("ssm").get_parameters(Names=names[start : start + 10])["Parameters"]:
            values[p["Name"]] = p["Value"]
    for logical, name in found.items():
        state[logical] = {"Value": values[name]}
        attributes[f"{logical}.Value"] = values[name]


def _auto_scaling(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    groups = services.clients("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=list(found.values()))
    by_name = {g["AutoScalingGroupName"]: g for g in groups["AutoScalingGroups"]}
    for logical, name in found.items():
        group = by_name[name]
        spec = (
            group.get("LaunchTemplate")
            or group["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
        )
        state[logical] = {
            "MinSize": group["MinSize"],
            "MaxSize": group["MaxSize"],
            "VPCZoneIdentifier": sorted(group["VPCZoneIdentifier"].split(",")),
            "LaunchTemplateId": spec["LaunchTemplateId"],
            "Tags": _tags(group["Tags"]),
        }


def _launch_templates(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    for logical, template_id in found.items():
        (version,) = services.clients("ec2").describe_launch_template_versions(
            LaunchTemplateId=template_id, Versions=["$Default"]
        )["LaunchTemplateVersions"]
        data = version["LaunchTemplateData"]
        state[logical] = {
            "ImageId": data["ImageId"],
            "InstanceType": data["InstanceType"],
            "KeyName": data.get("KeyName"),
            "VolumeSize": int(data["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"]),
            "UserData": base64.b64decode(data["UserData"]).decode(),
            "SecurityGroupIds": _launch_template_groups(data),
        }


def _security_groups(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    groups = services.clients("ec2").describe_security_groups(GroupIds=list(found.values()))["SecurityGroups"]
    by_id = {g["GroupId"]: g for g in groups}
    for logical, group_id in found.items():
        group = by_id[group_id]
        state[logical] = {
            "GroupName": group["GroupName"],
            "Description": group["Description"],
            "Egress": _rules(group["IpPermissionsEgress"]),
            "Ingress": _rules(group["IpPermissions"]),
            "Tags": _tags(group.get("Tags")),
        }
        attributes[f"{logical}.GroupId"] = group_id


def _databases(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    for logical, identifier in found.items():
        (database,) = services.clients("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        state[logical] = {
            "DBInstanceClass": database["DBInstanceClass"],
            "EngineVersion": database["EngineVersion"],
            "AllocatedStorage": database["AllocatedStorage"],
            "MultiAZ": database["MultiAZ"],
            "DeletionProtection": database["DeletionProtection"],
            "VpcSecurityGroups": sorted(g["VpcSecurityGroupId"] for g in database["VpcSecurityGroups"]),
            "DBSubnetGroupName": database["DBSubnetGroup"]["DBSubnetGroupName"],
            "Tags": _tags(database.get("TagList")),
        }
        attributes[f"{logical}.Endpoint.Address"] = database["Endpoint"]["Address"]
        attributes[f"{logical}.Endpoint.Port"] = str(database["Endpoint"]["Port"])


def _database_subnets(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    for logical, name in found.items():
        (group,) = services.clients("rds").describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"]
        state[logical] = {"SubnetIds": sorted(s["SubnetIdentifier"] for s in group["Subnets"])}


def _queues(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    for logical, identifier in found.items():
        (group,) = services.clients("elasticache").describe_replication_groups(ReplicationGroupId=identifier)[
            "ReplicationGroups"
        ]
        # The engine version is a node's (DescribeCacheClusters), not the group's.
        (node,) = services.clients("elasticache").describe_cache_clusters(CacheClusterId=group["MemberClusters"][0])[
            "CacheClusters"
        ]
        state[logical] = {
            "CacheNodeType": group["CacheNodeType"],
            "TransitEncryptionEnabled": group["TransitEncryptionEnabled"],
            "AtRestEncryptionEnabled": group["AtRestEncryptionEnabled"],
            "EngineVersion": node["EngineVersion"],
            "NodeType": node["CacheNodeType"],
        }
        attributes[f"{logical}.PrimaryEndPoint.Address"] = group["NodeGroups"][0]["PrimaryEndpoint"]["Address"]


def _queue_subnets(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    for logical, name in found.items():
        (group,) = services.clients("elasticache").describe_cache_subnet_groups(CacheSubnetGroupName=name)[
            "CacheSubnetGroups"
        ]
        state[logical] = {"SubnetIds": sorted(s["SubnetIdentifier"] for s in group["Subnets"])}


def _balancers(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    elbv2 = services.clients("elbv2")
    balancers = {
        b["LoadBalancerArn"]: b
        for b in elbv2.describe_load_balancers(LoadBalancerArns=list(found.values()))["LoadBalancers"]
    }
    listeners = {
        listener["ListenerArn"]: listener
        for arn in found.values()
        for listener in elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]
    }
    for logical, arn in found.items():
        balancer = balancers[arn]
        state[logical] = {
            "Scheme": balancer["Scheme"],
            "Subnets": sorted(z["SubnetId"] for z in balancer["AvailabilityZones"]),
            "SecurityGroups": sorted(balancer["SecurityGroups"]),
        }
        attributes[f"{logical}.DNSName"] = balancer["DNSName"]
        attributes[f"{logical}.CanonicalHostedZoneID"] = balancer["CanonicalHostedZoneId"]
    for logical, arn in services.of("AWS::ElasticLoadBalancingV2::Listener").items():
        listener = listeners.get(arn)
        if listener is None:
            continue
        (action,) = listener["DefaultActions"]
        state[logical] = {
            "LoadBalancerArn": listener["LoadBalancerArn"],
            "Port": listener["Port"],
            "Protocol": listener["Protocol"],
            "Action": action["Type"],
            "Forward": action.get("TargetGroupArn"),
            "Certificates": sorted(c["CertificateArn"] for c in listener.get("Certificates", [])),
        }


def _target_groups(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    elbv2 = services.clients("elbv2")
    groups = {
        g["TargetGroupArn"]: g
        for g in elbv2.describe_target_groups(TargetGroupArns=list(found.values()))["TargetGroups"]
    }
    for logical, arn in found.items():
        health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        state[logical] = {
            "Targets": sorted(t["Target"]["Id"] for t in health),
            "HealthCheckPath": groups[arn]["HealthCheckPath"],
        }


def _instances(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    ec2 = services.clients("ec2")
    reservations = ec2.describe_instances(InstanceIds=list(found.values()))["Reservations"]
    instances = {i["InstanceId"]: i for r in reservations for i in r["Instances"]}
    volume_ids = [i["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] for i in instances.values()]
    volumes = {v["VolumeId"]: v for v in ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]}
    for logical, instance_id in found.items():
        instance = instances[instance_id]
        state[logical] = {
            "InstanceType": instance["InstanceType"],
            "ImageId": instance["ImageId"],
            "SubnetId": instance["SubnetId"],
            "KeyName": instance.get("KeyName"),
            "SecurityGroupIds": sorted(g["GroupId"] for g in instance["SecurityGroups"]),
            "VolumeSize": volumes[instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]]["Size"],
            "Tags": _tags(instance.get("Tags")),
        }


def _buckets(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    s3 = services.clients("s3")
    for logical, name in found.items():
        rules = s3.get_bucket_cors(Bucket=name)["CORSRules"]
        state[logical] = {
            "CorsOrigins": sorted(o for rule in rules for o in rule["AllowedOrigins"]),
            "Tags": _tags(s3.get_bucket_tagging(Bucket=name)["TagSet"]),
        }
        attributes[f"{logical}.Arn"] = f"arn:aws:s3:::{name}"


def _roles(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    iam = services.clients("iam")
    for logical, name in found.items():
        role = iam.get_role(RoleName=name)["Role"]
        state[logical] = {"Tags": _tags(role.get("Tags"))}
        attributes[f"{logical}.Arn"] = role["Arn"]


def _instance_profiles(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    for logical, name in found.items():
        profile = services.clients("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        attributes[f"{logical}.Arn"] = profile["Arn"]


def _secrets(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    listed = {s["ARN"]: s for s in services.clients("secretsmanager").list_secrets()["SecretList"]}
    for logical, arn in found.items():
        state[logical] = {"Tags": _tags(listed[arn].get("Tags"))}


def _certificates(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    for logical, arn in found.items():
        described = services.clients("acm").describe_certificate(CertificateArn=arn)["Certificate"]
        state[logical] = {"DomainName": described["DomainName"]}


def _records(services: Services, found: dict[str, str], state: dict, attributes: dict) -> None:
    records = services.clients("route53").list_resource_record_sets(HostedZoneId=services.zone)["ResourceRecordSets"]
    (aliased,) = [r for r in records if "AliasTarget" in r]
    for logical in found:
        state[logical] = {
            "Name": aliased["Name"].rstrip("."),
            "AliasDNSName": aliased["AliasTarget"]["DNSName"].rstrip("."),
        }


READERS = {
    "AWS::SSM::Parameter": _ssm,
    "AWS::AutoScaling::AutoScalingGroup": _auto_scaling,
    "AWS::EC2::LaunchTemplate": _launch_templates,
    "AWS::EC2::SecurityGroup": _security_groups,
    "AWS::RDS::DBInstance": _databases,
    "AWS::RDS::DBSubnetGroup": _database_subnets,
    "AWS::ElastiCache::ReplicationGroup": _queues,
    "AWS::ElastiCache::SubnetGroup": _queue_subnets,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": _balancers,
    "AWS::ElasticLoadBalancingV2::TargetGroup": _target_groups,
    "AWS::EC2::Instance": _instances,
    "AWS::S3::Bucket": _buckets,
    "AWS::IAM::Role": _roles,
    "AWS::IAM::InstanceProfile": _instance_profiles,
    "AWS::SecretsManager::Secret": _secrets,
    "AWS::CertificateManager::Certificate": _certificates,
    "AWS::Route53::RecordSet": _records,
}


def outputs(clients: Clients, stack: str) -> dict[str, str]:
    (described,) = clients("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
