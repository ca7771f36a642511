"""Resources the local AWS makes, read back through each service's own API: every property it claims to apply
is what the service reports, and what a service refuses is refused. Measured on main (QA findings 2, 5, 6, 8,
9, 10): a bucket CREATE_COMPLETE with its ownership controls as a dict's text, BucketKeyEnabled false and its
lifecycle expiration and transitions dropped; gp3 volumes at 3000 IOPS and no throughput, io2 volumes refused
for an Iops they had; a security group with inline ingress rules always failing ("the specified rule already
exists"); a final snapshot of a database whose delete RDS refused; an instance launched with a key pair that
does not exist; a certificate ISSUED with a validation record that was not the one ACM asked for."""

from __future__ import annotations

import json

import boto3
import moto.settings
import pytest
from botocore.exceptions import ClientError

from valohai_cfn.local_aws import create_demo_network, models, updates


@pytest.fixture(scope="module")
def aws(local_aws):
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    clients: dict = {}

    def client(service: str):
        if service not in clients:
            clients[service] = session.client(service, endpoint_url=local_aws.endpoint_url)
        return clients[service]

    return client


@pytest.fixture(scope="module")
def network(aws):
    return create_demo_network(aws("ec2"), "us-east-1")


def _create(aws, name: str, resources: dict, **extra) -> str:
    aws("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps({"Resources": resources}), **extra)
    return aws("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]


def _update(aws, name: str, resources: dict) -> str:
    aws("cloudformation").update_stack(StackName=name, TemplateBody=json.dumps({"Resources": resources}))
    return aws("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]


def _physical(aws, stack: str, logical: str) -> str:
    resource = aws("cloudformation").describe_stack_resource(StackName=stack, LogicalResourceId=logical)
    return resource["StackResourceDetail"]["PhysicalResourceId"]


def _failure(aws, stack: str) -> str:
    events = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return next(e["ResourceStatusReason"] for e in events if e["ResourceStatus"].endswith("_FAILED"))


def _refusal(call) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    return refused.value.response["Error"]["Message"]


# -- S3 --------------------------------------------------------------------------------------------------

BUCKET = {
    "BucketName": "resources-bucket",
    "BucketEncryption": {
        "ServerSideEncryptionConfiguration": [
            {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/aws/s3"},
            }
        ]
    },
    "LifecycleConfiguration": {
        "Rules": [
            {
                "Id": "logs",
                "Status": "Enabled",
                "Prefix": "logs/",
                "ExpirationInDays": 30,
                "NoncurrentVersionExpiration": {"NoncurrentDays": 10},
                "Transitions": [{"StorageClass": "GLACIER", "TransitionInDays": 5}],
            },
            {
                "Id": "tagged",
                "Status": "Enabled",
                "TagFilters": [{"Key": "kind", "Value": "scratch"}],
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                "NoncurrentVersionTransitions": [{"StorageClass": "GLACIER", "TransitionInDays": 30}],
            },
        ]
    },
    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    "CorsConfiguration": {
        "CorsRules": [
            {
                "Id": "app",
                "AllowedMethods": ["GET", "PUT"],
                "AllowedOrigins": ["https://app.example.com"],
                "AllowedHeaders": ["*"],
                "ExposedHeaders": ["ETag"],
                "MaxAge": 3600,
            }
        ]
    },
    "VersioningConfiguration": {"Status": "Enabled"},
    "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    },
    "Tags": [{"Key": "valohai", "Value": "1"}],
}


def _bucket_as_s3_reads_it(s3, name: str) -> dict:
    def read(call, key: str):
        try:
            answer = call(Bucket=name)
        except ClientError as e:
            return e.response["Error"]["Code"]
        return answer[key]

    return {
        "encryption": read(s3.get_bucket_encryption, "ServerSideEncryptionConfiguration")["Rules"],
        "lifecycle": read(s3.get_bucket_lifecycle_configuration, "Rules"),
        "ownership": read(s3.get_bucket_ownership_controls, "OwnershipControls"),
        "cors": read(s3.get_bucket_cors, "CORSRules"),
        "versioning": read(s3.get_bucket_versioning, "Status"),
        "public_access": read(s3.get_public_access_block, "PublicAccessBlockConfiguration"),
        "tags": read(s3.get_bucket_tagging, "TagSet"),
    }


def test_every_bucket_property_is_what_s3_reads_back(aws):
    claimed = models.MADE_WITH["AWS::S3::Bucket"] | updates.in_place("AWS::S3::Bucket")
    assert claimed == set(BUCKET), "a property the local AWS applies to buckets is not read back here"
    assert _create(aws, "resources-bucket", {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": BUCKET}}) == (
        "CREATE_COMPLETE"
    )
    assert _bucket_as_s3_reads_it(aws("s3"), "resources-bucket") == {
        "encryption": [
            {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/aws/s3"},
                "BucketKeyEnabled": True,
            }
        ],
        "lifecycle": [
            {
                "ID": "logs",
                "Status": "Enabled",
                "Filter": {"Prefix": "logs/"},
                "Expiration": {"Days": 30},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 10},
                "Transitions": [{"Days": 5, "StorageClass": "GLACIER"}],
            },
            {
                "ID": "tagged",
                "Status": "Enabled",
                "Filter": {"Tag": {"Key": "kind", "Value": "scratch"}},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                "NoncurrentVersionTransitions": [{"NoncurrentDays": 30, "StorageClass": "GLACIER"}],
            },
        ],
        "ownership": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "cors": [
            {
                "ID": "app",
                "AllowedMethods": ["GET", "PUT"],
                "AllowedOrigins": ["https://app.example.com"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 3600,
            }
        ],
        "versioning": "Enabled",
        "public_access": {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
        "tags": [{"Key": "valohai", "Value": "1"}],
    }

    changed = {
        **{k: v for k, v in BUCKET.items() if k not in ("OwnershipControls", "PublicAccessBlockConfiguration")},
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
        "LifecycleConfiguration": {"Rules": [{"Id": "logs", "Status": "Disabled", "ExpirationInDays": 60}]},
    }
    assert _update(aws, "resources-bucket", {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": changed}}) == (
        "UPDATE_COMPLETE"
    )
    read = _bucket_as_s3_reads_it(aws("s3"), "resources-bucket")
    assert read["encryption"] == [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}
    ]
    assert read["lifecycle"] == [
        {"ID": "logs", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 60}}
    ]
    assert read["ownership"] == "OwnershipControlsNotFoundError"
    assert read["public_access"] == "NoSuchPublicAccessBlockConfiguration"


def test_a_bucket_setting_the_local_aws_cannot_apply_is_refused(aws):
    rule = {"Id": "big", "Status": "Enabled", "ExpirationInDays": 1, "ObjectSizeGreaterThan": 1024}
    bucket = {"BucketName": "resources-refused", "LifecycleConfiguration": {"Rules": [rule]}}
    message = _refusal(
        lambda: _create(aws, "resources-refused", {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": bucket}})
    )
    assert message == (
        "not supported by the local AWS: AWS::S3::Bucket LifecycleConfiguration.Rules[0].ObjectSizeGreaterThan "
        "(resource Bucket)"
    )


# -- EC2 -------------------------------------------------------------------------------------------------


def _instance(network: dict, **properties) -> dict:
    return {
        "Type": "AWS::EC2::Instance",
        "Properties": {
            "ImageId": network["RoiAmiId"],
            "SubnetId": network["RoiSubnetId"],
            "InstanceType": "t3.micro",
            **properties,
        },
    }


def test_every_volume_setting_is_what_ec2_reads_back(aws, network):
    ec2 = aws("ec2")
    source = ec2.create_volume(Size=12, AvailabilityZone="us-east-1a")["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=source)["SnapshotId"]
    key = aws("kms").create_key()["KeyMetadata"]["Arn"]
    mappings = [
        {
            "DeviceName": "/dev/sda1",
            "Ebs": {
                "VolumeSize": 33,
                "VolumeType": "gp3",
                "Iops": 4000,
                "Throughput": 250,
                "Encrypted": True,
                "KmsKeyId": key,
                "DeleteOnTermination": False,
            },
        },
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 40, "VolumeType": "io2", "Iops": 4000}},
        {"DeviceName": "/dev/sdg", "Ebs": {"VolumeType": "gp3", "SnapshotId": snapshot}},
    ]
    used = {key for m in mappings for key in m["Ebs"]}
    assert used == updates.VOLUME, "a volume setting the local AWS applies is not read back here"
    assert _create(aws, "resources-volumes", {"Server": _instance(network, BlockDeviceMappings=mappings)}) == (
        "CREATE_COMPLETE"
    )
    (instance,) = ec2.describe_instances(InstanceIds=[_physical(aws, "resources-volumes", "Server")])["Reservations"][
        0
    ]["Instances"]
    attached = {m["DeviceName"]: m["Ebs"] for m in instance["BlockDeviceMappings"]}
    volumes = {
        v["Attachments"][0]["Device"]: v
        for v in ec2.describe_volumes(VolumeIds=[a["VolumeId"] for a in attached.values()])["Volumes"]
    }
    read = {
        device: {
            "Size": volumes[device]["Size"],
            "VolumeType": volumes[device]["VolumeType"],
            "Iops": volumes[device].get("Iops"),
            "Throughput": volumes[device].get("Throughput"),
            "Encrypted": volumes[device]["Encrypted"],
            "KmsKeyId": volumes[device].get("KmsKeyId"),
            "SnapshotId": volumes[device].get("SnapshotId") or None,
            "DeleteOnTermination": attached[device]["DeleteOnTermination"],
        }
        for device in attached
    }
    assert read == {
        "/dev/sda1": {
            "Size": 33,
            "VolumeType": "gp3",
            "Iops": 4000,
            "Throughput": 250,
            "Encrypted": True,
            "KmsKeyId": key,
            "SnapshotId": None,
            "DeleteOnTermination": False,
        },
        "/dev/sdf": {
            "Size": 40,
            "VolumeType": "io2",
            "Iops": 4000,
            "Throughput": None,
            "Encrypted": False,
            "KmsKeyId": None,
            "SnapshotId": None,
            "DeleteOnTermination": True,
        },
        "/dev/sdg": {
            "Size": 12,
            "VolumeType": "gp3",
            "Iops": 3000,
            "Throughput": 125,
            "Encrypted": False,
            "KmsKeyId": None,
            "SnapshotId": snapshot,
            "DeleteOnTermination": True,
        },
    }
    refused = _refusal(
        lambda: _create(
            aws,
            "resources-nodevice",
            {"Server": _instance(network, BlockDeviceMappings=[{"DeviceName": "/dev/sdh", "NoDevice": {}}])},
        )
    )
    assert refused == (
        "not supported by the local AWS: AWS::EC2::Instance BlockDeviceMappings[0].NoDevice (resource Server)"
    )


def test_a_key_pair_that_does_not_exist_is_refused_as_ec2_refuses_it(aws, network):
    ec2 = aws("ec2")
    with pytest.raises(ClientError) as refused:
        ec2.run_instances(ImageId=network["RoiAmiId"], MinCount=1, MaxCount=1, KeyName="resources-none")
    assert refused.value.response["Error"]["Code"] == "InvalidKeyPair.NotFound"
    assert (
        _create(aws, "resources-key", {"Server": _instance(network, KeyName="resources-none")}) == "ROLLBACK_COMPLETE"
    )
    assert "The key pair 'resources-none' does not exist" in _failure(aws, "resources-key")
    aws("cloudformation").delete_stack(StackName="resources-key")
    ec2.create_key_pair(KeyName="resources-key")
    assert _create(aws, "resources-key", {"Server": _instance(network, KeyName="resources-key")}) == "CREATE_COMPLETE"


def _group(network: dict, ingress: list, egress: list) -> dict:
    return {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {
            "GroupDescription": "inline rules",
            "VpcId": network["VpcId"],
            "SecurityGroupIngress": ingress,
            "SecurityGroupEgress": egress,
        },
    }


def _rules(permissions: list) -> set:
    return {
        (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"), r.get("CidrIp") or r.get("GroupId"))
        for p in permissions
        for r in p.get("IpRanges", []) + p.get("UserIdGroupPairs", [])
    }


def test_a_security_group_with_inline_rules_has_exactly_those_rules(aws, network):
    """Main: "The specified rule already exists" for any SecurityGroupIngress (the rules authorized twice)."""
    peer = {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "peer", "VpcId": network["VpcId"]}}
    ingress = [
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "CidrIp": "1.2.3.4/32"},
        {
            "IpProtocol": "tcp",
            "FromPort": 5432,
            "ToPort": 5432,
            "SourceSecurityGroupId": {"Fn::GetAtt": ["Peer", "GroupId"]},
        },
    ]
    egress = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}]
    assert (
        _create(aws, "resources-group", {"Peer": peer, "Group": _group(network, ingress, egress)}) == "CREATE_COMPLETE"
    )
    ec2 = aws("ec2")
    peer_id = _physical(aws, "resources-group", "Peer")
    (group,) = ec2.describe_security_groups(GroupIds=[_physical(aws, "resources-group", "Group")])["SecurityGroups"]
    assert _rules(group["IpPermissions"]) == {("tcp", 1, 2, "1.2.3.4/32"), ("tcp", 5432, 5432, peer_id)}
    assert _rules(group["IpPermissionsEgress"]) == {("tcp", 443, 443, "0.0.0.0/0")}

    changed = [ingress[1], {"IpProtocol": "tcp", "FromPort": 3, "ToPort": 4, "CidrIp": "5.6.7.8/32"}]
    assert _update(aws, "resources-group", {"Peer": peer, "Group": _group(network, changed, [])}) == "UPDATE_COMPLETE"
    (group,) = ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"]
    assert _rules(group["IpPermissions"]) == {("tcp", 3, 4, "5.6.7.8/32"), ("tcp", 5432, 5432, peer_id)}
    assert _rules(group["IpPermissionsEgress"]) == set()

    ipv6 = [{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "CidrIpv6": "::/0"}]
    refused = _refusal(lambda: _create(aws, "resources-ipv6", {"Group": _group(network, ipv6, [])}))
    assert refused == (
        "not supported by the local AWS: AWS::EC2::SecurityGroup SecurityGroupIngress[0].CidrIpv6 (resource Group)"
    )


# -- snapshots --------------------------------------------------------------------------------------------


def _database(name: str, protected: bool) -> dict:
    return {
        "Type": "AWS::RDS::DBInstance",
        "DeletionPolicy": "Snapshot",
        "UpdateReplacePolicy": "Snapshot",
        "Properties": {
            "Engine": "postgres",
            "DBInstanceClass": "db.t3.micro",
            "AllocatedStorage": "20",
            "MasterUsername": "roi",
            "MasterUserPassword": "Passw0rdPassw0rd",
            "DBName": name,
            "DeletionProtection": protected,
        },
    }


def test_a_final_snapshot_only_with_a_delete_rds_accepts(aws):
    """Main: the snapshot was taken before the delete was tried, so a protected database had one too."""
    rds = aws("rds")

    def snapshots(identifier: str) -> list:
        return rds.describe_db_snapshots(DBInstanceIdentifier=identifier, SnapshotType="manual")["DBSnapshots"]

    assert _create(aws, "resources-database", {"Database": _database("first", protected=True)}) == "CREATE_COMPLETE"
    first = _physical(aws, "resources-database", "Database")
    # A replacement (DBName is create-only): the old database's delete in the cleanup is refused, no snapshot.
    assert _update(aws, "resources-database", {"Database": _database("second", protected=True)}) == "UPDATE_COMPLETE"
    second = _physical(aws, "resources-database", "Database")
    assert second != first
    assert rds.describe_db_instances(DBInstanceIdentifier=first)["DBInstances"][0]["DBInstanceStatus"] == "available"
    assert snapshots(first) == []

    aws("cloudformation").delete_stack(StackName="resources-database")
    assert aws("cloudformation").describe_stacks(StackName="resources-database")["Stacks"][0]["StackStatus"] == (
        "DELETE_FAILED"
    )
    assert snapshots(second) == []
    rds.modify_db_instance(DBInstanceIdentifier=second, DeletionProtection=False)
    aws("cloudformation").delete_stack(StackName="resources-database")
    (snapshot,) = snapshots(second)
    assert snapshot["SnapshotType"] == "manual"
    assert snapshot["DBSnapshotIdentifier"].startswith("resources-database-database-")


def test_a_replication_group_leaves_its_final_snapshot(aws):
    group = {
        "Type": "AWS::ElastiCache::ReplicationGroup",
        "DeletionPolicy": "Snapshot",
        "Properties": {
            "ReplicationGroupDescription": "queue",
            "Engine": "redis",
            "EngineVersion": "7.1",
            "CacheNodeType": "cache.t3.micro",
            "NumCacheClusters": 1,
        },
    }
    assert _create(aws, "resources-queue", {"Queue": group}) == "CREATE_COMPLETE"
    identifier = _physical(aws, "resources-queue", "Queue")
    stack_id = aws("cloudformation").describe_stacks(StackName="resources-queue")["Stacks"][0]["StackId"]
    aws("cloudformation").delete_stack(StackName="resources-queue")
    assert aws("cloudformation").describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    elasticache = aws("elasticache")
    (snapshot,) = [
        s for s in elasticache.describe_snapshots()["Snapshots"] if s.get("ReplicationGroupId") == identifier
    ]
    assert snapshot["SnapshotName"].startswith("resources-queue-queue-")
    with pytest.raises(ClientError, match="ReplicationGroupNotFound"):
        elasticache.describe_replication_groups(ReplicationGroupId=identifier)


# -- ACM ---------------------------------------------------------------------------------------------------


def test_a_certificate_is_issued_on_the_validation_record_acm_asks_for(aws, monkeypatch):
    """Main: the zone got a CNAME named _validation.<domain> while ACM asked for _d930….<domain>, and the
    certificate was ISSUED all the same."""
    route53, acm = aws("route53"), aws("acm")
    zone = route53.create_hosted_zone(Name="resources.example.com", CallerReference="resources")["HostedZone"]["Id"]
    zone = zone.split("/")[-1]

    def certificate(domain: str) -> dict:
        return {
            "Type": "AWS::CertificateManager::Certificate",
            "Properties": {
                "DomainName": domain,
                "ValidationMethod": "DNS",
                "DomainValidationOptions": [{"DomainName": domain, "HostedZoneId": zone}],
            },
        }

    assert _create(aws, "resources-certificate", {"Certificate": certificate("app.resources.example.com")}) == (
        "CREATE_COMPLETE"
    )
    described = acm.describe_certificate(CertificateArn=_physical(aws, "resources-certificate", "Certificate"))
    asked = described["Certificate"]["DomainValidationOptions"][0]["ResourceRecord"]
    assert described["Certificate"]["Status"] == "ISSUED"
    records = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    assert {
        "Name": asked["Name"],
        "Type": "CNAME",
        "TTL": 300,
        "ResourceRecords": [{"Value": asked["Value"]}],
    } in records

    # A zone that cannot hold the domain's record: Route 53 refuses it, and nothing is issued.
    assert _create(aws, "resources-elsewhere", {"Certificate": certificate("app.elsewhere.org")}) == "ROLLBACK_COMPLETE"
    assert "is not permitted in zone resources.example.com." in _failure(aws, "resources-elsewhere")
    listed = acm.list_certificates()["CertificateSummaryList"]
    assert not [c for c in listed if c["DomainName"] == "app.elsewhere.org"]

    # ACM itself issues on the records, not on a timer (moto: any request, a minute later).
    monkeypatch.setattr(moto.settings, "ACM_VALIDATION_WAIT", -1)
    arn = acm.request_certificate(DomainName="direct.resources.example.com", ValidationMethod="DNS")["CertificateArn"]
    pending = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert pending["Status"] == "PENDING_VALIDATION"
    record = pending["DomainValidationOptions"][0]["ResourceRecord"]
    route53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": record["Name"],
                        "Type": "CNAME",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": record["Value"]}],
                    },
                }
            ]
        },
    )
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "ISSUED"
