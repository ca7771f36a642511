"""The PostgreSQL database and its credentials secret."""

from __future__ import annotations

import json
from dataclasses import dataclass

from troposphere import AWSObject, GetAtt, If, Sub, Template
from troposphere.rds import DBInstance, DBSubnetGroup
from troposphere.secretsmanager import GenerateSecretString, Secret, SecretTargetAttachment

from valohai_cfn.stack.context import DATABASE_MULTI_AZ, RETAIN_SECRET, Context, checkov_skips

DATABASE = "Database"
DATABASE_SUBNET_GROUP = "DatabaseSubnetGroup"
DATABASE_SECRET = "DatabaseSecret"
DATABASE_SECRET_ATTACHMENT = "DatabaseSecretAttachment"

DATABASE_NAME = "roidb"
DATABASE_USER = "roi"
POSTGRES_PORT = "5432"


@dataclass(frozen=True)
class Database:
    instance: DBInstance
    secret: Secret


def _credentials_secret(ctx: Context) -> Secret:
    return Secret(
        DATABASE_SECRET,
        **RETAIN_SECRET,
        Metadata=checkov_skips("CKV_AWS_149"),
        Name=ctx.name("secret-dbpassword"),
        Description="Valohai database credentials; the SecretTargetAttachment adds host and port.",
        GenerateSecretString=GenerateSecretString(
            SecretStringTemplate=json.dumps({"username": DATABASE_USER}),
            GenerateStringKey="password",
            PasswordLength=32,
            # Letters and digits only: the password goes into DATABASE_URL unescaped.
            ExcludePunctuation=True,
        ),
        Tags=ctx.tags(),
    )


def _resolve(secret: Secret, key: str) -> Sub:
    # A dynamic reference: CloudFormation reads the value at deploy time; it never enters the template.
    return Sub(f"{{{{resolve:secretsmanager:${{{secret.title}}}:SecretString:{key}}}}}")


def _instance(
    ctx: Context, subnet_group: DBSubnetGroup, security_group_id: GetAtt, secret: Secret, monitoring_role: AWSObject
) -> DBInstance:
    return DBInstance(
        DATABASE,
        # A snapshot is kept whenever the instance would be deleted or replaced.
        DeletionPolicy="Snapshot",
        UpdateReplacePolicy="Snapshot",
        DBInstanceIdentifier=ctx.name("database"),
        Engine="postgres",
        EngineVersion=ctx.ref("DatabaseEngineVersion"),
        DBInstanceClass=ctx.ref("DatabaseInstanceClass"),
        AllocatedStorage=ctx.ref("DatabaseAllocatedStorage"),
        StorageType="gp3",
        StorageEncrypted=True,
        DBName=DATABASE_NAME,
        MasterUsername=DATABASE_USER,
        MasterUserPassword=_resolve(secret, "password"),
        Port=POSTGRES_PORT,
        DBSubnetGroupName=subnet_group.ref(),
        VPCSecurityGroups=[security_group_id],
        PubliclyAccessible=False,
        MultiAZ=If(DATABASE_MULTI_AZ, True, False),
        DeletionProtection=ctx.ref("DatabaseDeletionProtection"),
        BackupRetentionPeriod=7,
        CopyTagsToSnapshot=True,
        EnableCloudwatchLogsExports=["postgresql", "upgrade"],
        AutoMinorVersionUpgrade=True,
        # IAM authentication is available to operators; the app itself signs in with the password.
        EnableIAMDatabaseAuthentication=True,
        MonitoringInterval=60,
        MonitoringRoleArn=GetAtt(monitoring_role, "Arn"),
        Tags=ctx.tags("database"),
        Metadata=checkov_skips(
            "CKV_AWS_157",
        ),
    )


def add_database(t: Template, ctx: Context, security_group_id: GetAtt, monitoring_role: AWSObject) -> Database:
    subnet_group = t.add_resource(
        DBSubnetGroup(
            DATABASE_SUBNET_GROUP,
            DBSubnetGroupName=ctx.name("database"),
            DBSubnetGroupDescription="Valohai database subnets",
            SubnetIds=ctx.ref("DatabaseSubnetIds"),
            Tags=ctx.tags(),
        )
    )
    secret = t.add_resource(_credentials_secret(ctx))
    instance = t.add_resource(_instance(ctx, subnet_group, security_group_id, secret, monitoring_role))
    # Puts host, port and engine into the secret, so it alone describes the connection.
    t.add_resource(
        SecretTargetAttachment(
            DATABASE_SECRET_ATTACHMENT,
            SecretId=secret.ref(),
            TargetId=instance.ref(),
            TargetType="AWS::RDS::DBInstance",
        )
    )
    return Database(instance=instance, secret=secret)
