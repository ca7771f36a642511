"""The data bucket: where executions' inputs and outputs live, so it outlives the stack."""

from __future__ import annotations

from awacs.aws import Bool, Condition, Deny, Policy, Principal, Statement
from awacs.s3 import Action as S3Action
from troposphere import GetAtt, Sub, Template
from troposphere.s3 import (
    AbortIncompleteMultipartUpload,
    Bucket,
    BucketEncryption,
    BucketPolicy,
    CorsConfiguration,
    CorsRules,
    LifecycleConfiguration,
    LifecycleRule,
    OwnershipControls,
    OwnershipControlsRule,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
    VersioningConfiguration,
)

from valohai_cfn.stack.context import Context, checkov_skips, objects_arn

DATA_BUCKET = "DataBucket"
DATA_BUCKET_POLICY = "DataBucketPolicy"


def _bucket(ctx: Context) -> Bucket:
    return Bucket(
        DATA_BUCKET,
        # Retained on delete and on replacement: it holds every execution's data.
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
        BucketName=Sub("${ResourcePrefix}-data-${AWS::AccountId}-${AWS::Region}"),
        BucketEncryption=BucketEncryption(
            ServerSideEncryptionConfiguration=[
                ServerSideEncryptionRule(
                    ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(SSEAlgorithm="AES256"),
                    BucketKeyEnabled=True,
                ),
            ]
        ),
        PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
            BlockPublicAcls=True,
            BlockPublicPolicy=True,
            IgnorePublicAcls=True,
            RestrictPublicBuckets=True,
        ),
        # ACLs off entirely; setting an ACL without ownership controls fails at deploy time.
        OwnershipControls=OwnershipControls(Rules=[OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        VersioningConfiguration=VersioningConfiguration(Status="Enabled"),
        LifecycleConfiguration=LifecycleConfiguration(
            Rules=[
                LifecycleRule(
                    Id="abort-incomplete-multipart-uploads",
                    Status="Enabled",
                    Prefix="",
                    AbortIncompleteMultipartUpload=AbortIncompleteMultipartUpload(DaysAfterInitiation=7),
                ),
            ]
        ),
        # The web app uploads straight from the browser with presigned POST/PUT requests, and previews and
        # downloads with GET (Valohai's installer allows GET from any origin; the app's own is enough).
        CorsConfiguration=CorsConfiguration(
            CorsRules=[
                CorsRules(
                    AllowedMethods=["GET", "PUT", "POST"],
                    AllowedOrigins=[ctx.app_url()],
                    AllowedHeaders=["*"],
                    ExposedHeaders=["ETag"],
                    MaxAge=3600,
                ),
            ]
        ),
        Tags=ctx.tags(),
        Metadata=checkov_skips(
            "CKV_AWS_18",
        ),
    )


def _deny_insecure_transport(bucket: Bucket) -> Policy:
    return Policy(
        Version="2012-10-17",
        Statement=[
            Statement(
                Sid="DenyInsecureTransport",
                Effect=Deny,
                Principal=Principal("*"),
                Action=[S3Action("*")],
                Resource=[GetAtt(bucket, "Arn"), objects_arn(bucket)],
                Condition=Condition(Bool("aws:SecureTransport", "false")),
            )
        ],
    )


def add_storage(t: Template, ctx: Context) -> Bucket:
    bucket = t.add_resource(_bucket(ctx))
    t.add_resource(
        BucketPolicy(DATA_BUCKET_POLICY, Bucket=bucket.ref(), PolicyDocument=_deny_insecure_transport(bucket))
    )
    return bucket
