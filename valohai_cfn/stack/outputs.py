"""Outputs: what an operator or the app needs after the stack is up. No secret value is among them."""

from __future__ import annotations

from troposphere import AWSObject, GetAtt, Output, Ref, Sub, Template

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
    app_token_secret: str,
    url_setting: str,
    roi: AWSObject,
) -> None:
    """`url_setting` is the SSM parameter holding the app URL: the URL is derived once, there."""
    url = GetAtt(url_setting, "Value")
    outputs = [
        ("AppUrl", url, "URL of the Valohai app"),
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
        ("AppTokenSecretArn", Ref(app_token_secret), "Secret holding the superuser's API token"),
        (
            "FirstLogin",
            Sub(
                "On ${RoiInstance} (Session Manager): sudo docker exec -it roi.service python manage.py "
                "changepassword <superuser>; then sign in at ${Url}",
                Url=url,
            ),
            "How to sign in the first time (README: First login)",
        ),
    ]
    for title, value, description in outputs:
        t.add_output(Output(title, Value=value, Description=description))
