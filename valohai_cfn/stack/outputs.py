"""Outputs: what an operator or the app needs after the stack is up. No secret value is among them."""

from __future__ import annotations

from troposphere import AWSObject, GetAtt, Output, Ref, Template

from valohai_cfn.stack.context import Context


def add_outputs(
    t: Template,
    ctx: Context,
    *,
    load_balancer: AWSObject,
    bucket: AWSObject,
    master_role: AWSObject,
    worker_role: AWSObject,
    multipart_role: AWSObject,
    worker_profile: AWSObject,
    worker_security_group: AWSObject,
    database: AWSObject,
    queue: AWSObject,
    database_secret: AWSObject,
    roi: AWSObject,
) -> None:
    outputs = [
        ("AppUrl", ctx.app_url(), "URL of the Valohai app"),
        ("LoadBalancerDnsName", GetAtt(load_balancer, "DNSName"), "DNS name of the load balancer"),
        ("DataBucketName", Ref(bucket), "Data bucket"),
        ("MasterRoleArn", GetAtt(master_role, "Arn"), "Role of the app instance"),
        ("WorkerRoleArn", GetAtt(worker_role, "Arn"), "Role of worker instances"),
        ("MultipartRoleArn", GetAtt(multipart_role, "Arn"), "Role for browser multipart uploads"),
        ("WorkerInstanceProfileName", Ref(worker_profile), "Instance profile of worker instances"),
        ("WorkerSecurityGroupId", GetAtt(worker_security_group, "GroupId"), "Security group of workers"),
        ("DatabaseEndpoint", GetAtt(database, "Endpoint.Address"), "PostgreSQL host"),
        ("QueueEndpoint", GetAtt(queue, "PrimaryEndPoint.Address"), "Redis host"),
        # The ARN of the secret, never its value.
        ("DatabaseSecretArn", Ref(database_secret), "Secret holding the database credentials"),
        ("RoiInstanceId", Ref(roi), "The app instance (roi)"),
    ]
    for title, value, description in outputs:
        t.add_output(Output(title, Value=value, Description=description))
