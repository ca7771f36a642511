"""Stateful resources survive deletes and replacements, everything is encrypted, no secret leaks."""

from __future__ import annotations

import base64
import gzip
import json
import re

from cfn import Evaluator, dependencies, resolve, resources_of_type, walk

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
    # QueueTransitEncryption preferred or true: TLS on; the mode says whether plain connections are still taken.
    assert props["TransitEncryptionEnabled"] == {"Fn::If": ["QueueTls", True, False]}
    assert props["TransitEncryptionMode"] == {
        "Fn::If": ["QueueTls", {"Fn::If": ["QueueTlsRequired", "required", "preferred"]}, {"Ref": "AWS::NoValue"}]
    }
    assert (props["SnapshotRetentionLimit"], props["Port"]) == (5, 6379)


def test_app_instance_requires_imdsv2_and_encrypts_its_disk(template):
    props = template["Resources"]["RoiInstance"]["Properties"]
    assert props["MetadataOptions"]["HttpTokens"] == "required"
    assert props["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    (root,) = props["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["VolumeType"] == "gp3"
    assert root["Ebs"]["VolumeSize"] == {"Ref": "RoiVolumeSize"}


def test_app_instance_waits_for_its_boot_not_for_the_database(template):
    """CloudFormation waits for the boot's signal; the instance itself starts at once, in parallel with the database
    and the queue, and its boot waits for what it reads."""
    roi = template["Resources"]["RoiInstance"]
    assert roi["CreationPolicy"] == {"ResourceSignal": {"Count": 1, "Timeout": "PT65M"}}
    assert "DependsOn" not in roi
    chain = dependencies(template, "RoiInstance")
    assert not chain & {"Database", "Queue", "DatabaseSecretAttachment", "Settingdatabasehost", "Settingqueueurl"}
    assert chain <= {"MasterInstanceProfile", "MasterRole", "MasterSecurityGroup", "WorkerRole", "DataBucket"}


# Nominal create times in minutes (no signal waits), of the types on the stack's longest chains.
NOMINAL_MINUTES = {
    "AWS::RDS::DBInstance": 15,
    "AWS::ElastiCache::ReplicationGroup": 10,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": 3,
    "AWS::IAM::InstanceProfile": 2,
    "AWS::EC2::Instance": 1,
    "AWS::AutoScaling::AutoScalingGroup": 1,
}


def test_nothing_waits_on_the_database_longer_than_the_database_itself(template):
    """The nominal longest chain is the database's own: what waits for it (its settings) takes seconds."""
    resolved = resolve(template)
    minutes = {name: NOMINAL_MINUTES.get(r["Type"], 0.2) for name, r in resolved["Resources"].items()}
    memo: dict[str, float] = {}

    def finish(name: str) -> float:
        if name not in memo:
            memo[name] = minutes[name] + max((finish(d) for d in dependencies(resolved, name, direct=True)), default=0)
        return memo[name]

    longest = max(finish(name) for name in resolved["Resources"])
    assert longest <= finish("Database") + 0.5


def test_secrets_are_generated_never_given(template):
    secrets = resources_of_type(template, "AWS::SecretsManager::Secret")
    evaluate = Evaluator(template, {"ResourcePrefix": "vh"})
    assert {evaluate(s["Properties"]["Name"]) for s in secrets.values()} == {
        f"vh-secret-{n}" for n in ("dbpassword", "key", "repo", "jwt", "optimo", "app-token")
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
    assert DYNAMIC_REFERENCE.match(props["MasterUserPassword"]["Fn::Sub"]), props["MasterUserPassword"]
    assert props["MasterUsername"] == "roi", "the user name is no secret: the secret's template holds the same"
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
    user_data = template["Resources"]["RoiInstance"]["Properties"]["UserData"]
    assert isinstance(user_data, str), "no function in the user data: nothing CloudFormation resolves goes into it"
    script = gzip.decompress(base64.b64decode(user_data)).decode()
    assert "{{resolve" not in script and "secretsmanager get-secret-value" in script


def test_ssm_parameters_live_under_one_path(template):
    names = [p["Properties"]["Name"]["Fn::Sub"] for p in resources_of_type(template, "AWS::SSM::Parameter").values()]
    assert names and all(n.startswith("/${ResourcePrefix}/") for n in names)
    assert len(names) == len(set(names))
    suffixes = {n.removeprefix("/${ResourcePrefix}/") for n in names}
    assert {
        "url",
        "database-host",
        "queue-host",
        "queue-url",
        "organization",
        "worker-instance-types",
        "worker-volume-size",
        "worker-pool-role-arns",
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
        "AppSecurityGroupId",  # the SSH template's parameter (SSH to the app instance is its own template)
        "DatabaseEndpoint",
        "QueueEndpoint",
        "DatabaseSecretArn",
        "RoiInstanceId",
        "AppTokenSecretArn",
        "FirstLogin",
        # One group and one queue per type (the template fixture's types).
        "WorkerGroupt3medium",
        "WorkerQueuet3medium",
        "WorkerGroupc5xlarge",
        "WorkerQueuec5xlarge",
        "SpotWorkerGroupg4dnxlarge",
        "SpotWorkerQueueg4dnxlarge",
    }


def test_stack_policy_protects_the_data_resources_from_updates():
    from valohai_cfn.stack.policy import stack_policy_document
    from valohai_cfn.template import build_template

    allow, deny = stack_policy_document(build_template().to_dict())["Statement"]
    assert allow == {"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"}
    assert deny["Effect"] == "Deny" and sorted(deny["Action"]) == ["Update:Delete", "Update:Replace"]
    assert deny["Resource"] == [
        f"LogicalResourceId/{n}"
        for n in (
            "AppTokenSecret",
            "DataBucket",
            "Database",
            "DatabaseSecret",
            "JwtSecret",
            "OptimoSecret",
            "RepoSecret",
            "SecretKeySecret",
        )
    ]
