"""Outputs: what an operator or the app needs after the stack is up. No secret value is among them."""

from __future__ import annotations

from troposphere import AWSObject, GetAtt, Join, Output, Ref, Sub, Template

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
    app_security_group: str,
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
        # The SSH template's AppSecurityGroupId (SSH to the app instance is a template of its own).
        "AppSecurityGroupId": GetAtt(app_security_group, "GroupId"),
        "DatabaseEndpoint": GetAtt(database, "Endpoint.Address"),
        "QueueEndpoint": GetAtt(queue, "PrimaryEndPoint.Address"),
        # The secrets' ARNs, never their values.
        "DatabaseSecretArn": Ref(database_secret),
        "AppTokenSecretArn": Ref(app_token_secret),
        "RoiInstanceId": Ref(roi),
    }
    for title, value in outputs.items():
        t.add_output(Output(title, Value=value))
    # The password of the image's superuser, set on the instance; then sign in at AppUrl (deploy shows both).
    first_login = Sub(
        "On ${RoiInstance} (Session Manager): sudo docker exec -it roi.service python manage.py "
        "changepassword <superuser>"
    )
    t.add_output(Output("FirstLogin", Value=first_login, Description="First sign-in (README)"))


def add_pool_outputs(
    t: Template,
    ctx: Context,
    *,
    scaling_role: AWSObject,
    worker_security_group: str,
    group_name_prefix: str,
    instance_types: object,
) -> None:
    """What registering the pool's environments with the installation takes (prep's aws section with its
    scaling-role-arn, Valohai's installer at f60087b): the role, where the pool is, and its names. The groups'
    and queues' own names follow, one pair per instance type."""
    outputs = {
        "ScalingRoleArn": GetAtt(scaling_role, "Arn"),
        "Region": Ref("AWS::Region"),
        "VpcId": ctx.ref("VpcId"),
        "WorkerSubnetIds": Join(",", ctx.ref("WorkerSubnetIds")),
        "WorkerSecurityGroupId": GetAtt(worker_security_group, "GroupId"),
        "WorkerSecurityGroupName": ctx.name("sg-workers"),
        # prep's asg-name-prefix, queue-name-prefix and valohai-env-name-prefix.
        "GroupNamePrefix": Sub(group_name_prefix),
        "QueueNamePrefix": Sub(ctx.queue_prefix),
        # As prep takes them: on-demand types as they are, spot ones as <type>.spot.
        "InstanceTypes": instance_types,
        "WorkerVolumeSize": ctx.ref("WorkerVolumeSize"),
    }
    for title, value in outputs.items():
        t.add_output(Output(title, Value=value))
