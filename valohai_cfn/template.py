"""build_template(): the whole self-hosted Valohai installation as one troposphere Template.

Reads as a table of contents: each step is one concern in valohai_cfn/stack/. Nothing here calls AWS.
"""

from __future__ import annotations

from troposphere import GetAtt, Template

from valohai_cfn.stack.compute import add_compute
from valohai_cfn.stack.config import APP_TOKEN_SECRET, add_app_secrets, add_config, add_pool_registration, setting_id
from valohai_cfn.stack.database import add_database
from valohai_cfn.stack.iam import add_iam, add_pool_iam
from valohai_cfn.stack.loadbalancer import add_load_balancer
from valohai_cfn.stack.network import add_network, add_ssh_ingress, add_worker_security_group
from valohai_cfn.stack.outputs import add_outputs, add_pool_outputs
from valohai_cfn.stack.parameters import add_parameters, add_pool_parameters, add_ssh_parameters
from valohai_cfn.stack.queue import add_queue, queue_url
from valohai_cfn.stack.storage import add_storage
from valohai_cfn.stack.workers import add_worker_outputs, add_workers, group_name_prefix, registered_instance_types

DESCRIPTION = "Self-hosted Valohai: app, workers, load balancer, PostgreSQL, Redis, S3, IAM (valohai-cfn)"
POOL_DESCRIPTION = "Self-hosted Valohai worker pool: workers in another account or region, scaled by the installation"
SSH_DESCRIPTION = "SSH to the app instance of a self-hosted Valohai installation (valohai-cfn)"
# Fn::ForEach makes one worker group per instance type from the parameters.
TRANSFORM = "AWS::LanguageExtensions"


def _template(description: str, *, transform: bool = True) -> Template:
    t = Template(Description=description)
    t.set_version("2010-09-09")
    if transform:
        t.set_transform(TRANSFORM)
    return t


def build_template() -> Template:
    """The installation (templates/valohai-self-hosted.*)."""
    t = _template(DESCRIPTION)
    ctx = add_parameters(t)
    sgs = add_network(t, ctx)
    bucket = add_storage(t, ctx)
    roles = add_iam(t, ctx, bucket)
    database = add_database(t, ctx, GetAtt(sgs.database, "GroupId"), roles.database_monitoring)
    queue = add_queue(t, ctx, GetAtt(sgs.queue, "GroupId"))
    add_app_secrets(t, ctx)
    add_config(
        t,
        ctx,
        url=ctx.app_url(),
        database_host=GetAtt(database.instance, "Endpoint.Address"),
        queue_host=GetAtt(queue, "PrimaryEndPoint.Address"),
        queue_url=queue_url(queue),
        registered_instance_types=registered_instance_types(ctx),
        bucket=bucket,
        multipart_role=roles.multipart,
        worker_role=roles.worker,
        worker_profile=roles.worker_profile,
        worker_security_group=sgs.workers,
    )
    roi = add_compute(t, ctx, security_group_id=GetAtt(sgs.master, "GroupId"), instance_profile=roles.master_profile)
    # The workers take the queue URL from its setting: the one expression, written once.
    add_workers(t, ctx, queue_url=f"{setting_id('queue-url')}.Value", security_group_id=GetAtt(sgs.workers, "GroupId"))
    load_balancer = add_load_balancer(t, ctx, security_group_id=GetAtt(sgs.load_balancer, "GroupId"), roi=roi)
    add_outputs(
        t,
        ctx,
        load_balancer=load_balancer,
        bucket=bucket,
        master_role=roles.master,
        worker_role=roles.worker,
        multipart_role=roles.multipart,
        worker_profile=roles.worker_profile,
        worker_security_group=sgs.workers,
        app_security_group=sgs.master,
        database=database.instance,
        queue=queue,
        database_secret=database.secret,
        app_token_secret=APP_TOKEN_SECRET,
        url_setting=setting_id("url"),
        roi=roi,
    )
    add_worker_outputs(t, ctx)
    return t


def build_pool_template() -> Template:
    """A worker pool (templates/valohai-worker-pool.*): the installation's workers, from the same code, in
    another account or region, with the scaling role the installation's master role assumes."""
    t = _template(POOL_DESCRIPTION)
    ctx = add_pool_parameters(t)
    security_group = add_worker_security_group(t, ctx)
    roles = add_pool_iam(t, ctx)
    add_workers(t, ctx, queue_url="QueueUrl", security_group_id=GetAtt(security_group, "GroupId"))
    instance_types = registered_instance_types(ctx)
    add_pool_registration(t, ctx, instance_types=instance_types)
    add_pool_outputs(
        t,
        ctx,
        scaling_role=roles.scaling,
        worker_security_group=security_group,
        group_name_prefix=group_name_prefix(ctx),
        instance_types=instance_types,
    )
    add_worker_outputs(t, ctx)
    return t


def build_ssh_template() -> Template:
    """SSH to the app instance (templates/valohai-ssh.*): the port-22 rule into the installation's app security
    group, from the same network code. No loop in it, so no transform: a plain template any tool deploys."""
    t = _template(SSH_DESCRIPTION, transform=False)
    add_ssh_ingress(t, add_ssh_parameters(t))
    return t
