"""Stateful resources survive deletes and replacements, everything is encrypted, no secret leaks."""

from __future__ import annotations

import json
import re

from cfn import resolve, resources_of_type, walk

DYNAMIC_REFERENCE = re.compile(
    r"^\{\{resolve:secretsmanager:\$\{DatabaseSecret\}:SecretString:(username|password)\}\}$"
)


def test_database_is_snapshotted_encrypted_and_private(template):
    database = template["Resources"]["Database"]
    assert database["DeletionPolicy"] == "Snapshot"
    assert database["UpdateReplacePolicy"] == "Snapshot"
    props = database["Properties"]
    assert props["StorageEncrypted"] is True
    assert props["PubliclyAccessible"] is False
    assert props["StorageType"] == "gp3"
    assert props["BackupRetentionPeriod"] == 7
    assert props["CopyTagsToSnapshot"] is True
    assert props["DeletionProtection"] == {"Ref": "DatabaseDeletionProtection"}
    assert props["EnableCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert (props["DBName"], props["Engine"], props["Port"]) == ("roidb", "postgres", "5432")


def test_bucket_is_retained_encrypted_and_closed(template):
    bucket = template["Resources"]["DataBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["UpdateReplacePolicy"] == "Retain"
    props = bucket["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert "AccessControl" not in props
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (lifecycle,) = props["LifecycleConfiguration"]["Rules"]
    assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert props["BucketName"] == {"Fn::Sub": "${ResourcePrefix}-data-${AWS::AccountId}-${AWS::Region}"}


def test_bucket_policy_denies_requests_without_tls(template):
    (statement,) = template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_queue_is_an_encrypted_replication_group(template):
    props = template["Resources"]["Queue"]["Properties"]
    assert template["Resources"]["Queue"]["Type"] == "AWS::ElastiCache::ReplicationGroup"
    assert props["AtRestEncryptionEnabled"] is True
    assert props["TransitEncryptionEnabled"] == {"Ref": "QueueTransitEncryption"}
    assert (props["SnapshotRetentionLimit"], props["Port"]) == (5, 6379)


def test_app_instance_requires_imdsv2_and_encrypts_its_disk(template):
    props = template["Resources"]["RoiInstance"]["Properties"]
    assert props["MetadataOptions"]["HttpTokens"] == "required"
    assert props["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    (root,) = props["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["VolumeType"] == "gp3"
    assert root["Ebs"]["VolumeSize"] == {"Ref": "RoiVolumeSize"}


def test_app_instance_boots_after_what_it_reads(template):
    depends = set(template["Resources"]["RoiInstance"]["DependsOn"])
    ssm = set(resources_of_type(template, "AWS::SSM::Parameter"))
    secrets = set(resources_of_type(template, "AWS::SecretsManager::Secret"))
    assert ssm | secrets <= depends


def test_secrets_are_generated_never_given(template):
    secrets = resources_of_type(template, "AWS::SecretsManager::Secret")
    assert {s["Properties"]["Name"]["Fn::Sub"] for s in secrets.values()} == {
        f"${{ResourcePrefix}}-secret-{n}" for n in ("dbpassword", "key", "repo", "jwt")
    }
    for name, secret in secrets.items():
        props = secret["Properties"]
        assert "SecretString" not in props, name
        generate = props["GenerateSecretString"]
        assert generate["PasswordLength"] >= 30 and generate["ExcludePunctuation"] is True, name
    database_secret = secrets["DatabaseSecret"]["Properties"]["GenerateSecretString"]
    assert json.loads(database_secret["SecretStringTemplate"]) == {"username": "roi"}
    assert database_secret["GenerateStringKey"] == "password"
    attachment = template["Resources"]["DatabaseSecretAttachment"]["Properties"]
    assert attachment == {
        "SecretId": {"Ref": "DatabaseSecret"},
        "TargetId": {"Ref": "Database"},
        "TargetType": "AWS::RDS::DBInstance",
    }


def test_database_credentials_come_through_a_dynamic_reference(template):
    props = template["Resources"]["Database"]["Properties"]
    for key in ("MasterUsername", "MasterUserPassword"):
        assert DYNAMIC_REFERENCE.match(props[key]["Fn::Sub"]), props[key]
    password_parameters = [p for p in template["Parameters"] if "password" in p.lower() or "secret" in p.lower()]
    assert password_parameters == []


def test_no_secret_value_in_outputs_or_user_data(template):
    resolved = resolve(template)
    outputs = json.dumps(resolved["Outputs"])
    assert "{{resolve" not in outputs and "SecretString" not in outputs
    secret_ids = set(resources_of_type(template, "AWS::SecretsManager::Secret"))
    for output in resolved["Outputs"].values():
        for node in walk(output["Value"]):
            if isinstance(node, dict) and "Fn::GetAtt" in node:
                assert node["Fn::GetAtt"][0] not in secret_ids
    user_data = json.dumps(template["Resources"]["RoiInstance"]["Properties"]["UserData"])
    assert "{{resolve" not in user_data
    for name in secret_ids:
        assert f"${{{name}" not in user_data, "the boot script reads secrets itself, by name"


def test_ssm_parameters_live_under_one_path(template):
    names = [p["Properties"]["Name"]["Fn::Sub"] for p in resources_of_type(template, "AWS::SSM::Parameter").values()]
    assert names and all(n.startswith("/${ResourcePrefix}/") for n in names)
    assert len(names) == len(set(names))
    suffixes = {n.removeprefix("/${ResourcePrefix}/") for n in names}
    assert {
        "url",
        "database-host",
        "queue-host",
        "bucket-name",
        "region",
        "multipart-role-arn",
        "worker-role-name",
        "worker-instance-profile-name",
        "worker-security-group-id",
        "worker-subnet-ids",
        "environment-name",
    } == suffixes


def test_load_balancer_uses_its_own_subnets_and_drops_invalid_headers(template):
    props = template["Resources"]["LoadBalancer"]["Properties"]
    assert props["Subnets"] == {"Ref": "LoadBalancerSubnetIds"}
    assert {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"} in props[
        "LoadBalancerAttributes"
    ]
    target_group = template["Resources"]["RoiTargetGroup"]["Properties"]
    assert (target_group["Port"], target_group["HealthCheckPath"], target_group["Matcher"]["HttpCode"]) == (
        8000,
        "/healthz",
        "200,202",
    )


def test_outputs_named_in_the_spec(template):
    assert set(template["Outputs"]) == {
        "AppUrl",
        "LoadBalancerDnsName",
        "DataBucketName",
        "MasterRoleArn",
        "WorkerRoleArn",
        "MultipartRoleArn",
        "WorkerInstanceProfileName",
        "WorkerSecurityGroupId",
        "DatabaseEndpoint",
        "QueueEndpoint",
        "DatabaseSecretArn",
        "RoiInstanceId",
    }


def test_stack_policy_protects_the_data_resources_from_updates():
    from valohai_cfn.stack.policy import stack_policy_document
    from valohai_cfn.template import build_template

    allow, deny = stack_policy_document(build_template())["Statement"]
    assert allow == {"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"}
    assert deny["Effect"] == "Deny" and sorted(deny["Action"]) == ["Update:Delete", "Update:Replace"]
    assert deny["Resource"] == [
        f"LogicalResourceId/{n}"
        for n in ("DataBucket", "Database", "DatabaseSecret", "JwtSecret", "RepoSecret", "SecretKeySecret")
    ]
