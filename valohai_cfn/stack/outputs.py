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
    # The names say what each is; only the one that is an instruction has a description.
    outputs = {
        "AppUrl": url,
        "LoadBalancerDnsName": GetAtt(load_balancer, "DNSName"),
        "DataBucketName": Ref(bucket),
        "MasterRoleArn": GetAtt(master_role, "Arn"),
        "WorkerRoleArn": GetAtt(worker_role, "Arn"),
        "MultipartRoleArn": GetAtt(multipart_role, "Arn"),
        "WorkerInstanceProfileName": Ref(worker_profile),
        "WorkerSecurityGroupId": GetAtt(worker_security_group, "GroupId"),
        "DatabaseEndpoint": GetAtt(database, "Endpoint.Address"),
        "QueueEndpoint": GetAtt(queue, "PrimaryEndPoint.Address"),
        # The secrets' ARNs, never their values.
        "DatabaseSecretArn": Ref(database_secret),
        "AppTokenSecretArn": Ref(app_token_secret),
        "RoiInstanceId": Ref(roi),
    }
    for title, value in outputs.items():
        t.add_output(Output(title, Value=value))
    first_login = Sub(
        "On ${RoiInstance} (Session Manager): sudo docker exec -it roi.service python manage.py "
        "changepassword <superuser>; then sign in at ${Url}",
        Url=url,
    )
    t.add_output(Output("FirstLogin", Value=first_login, Description="How to sign in the first time (README)"))
