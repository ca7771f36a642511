"""build_template(): the whole self-hosted Valohai installation as one troposphere Template.

Reads as a table of contents: each step is one concern in valohai_cfn/stack/. Nothing here calls AWS.
"""

from __future__ import annotations

from troposphere import GetAtt, Template

from valohai_cfn.stack.compute import add_compute
from valohai_cfn.stack.config import add_app_secrets, add_config
from valohai_cfn.stack.database import add_database
from valohai_cfn.stack.iam import add_iam
from valohai_cfn.stack.loadbalancer import add_load_balancer
from valohai_cfn.stack.network import add_network
from valohai_cfn.stack.outputs import add_outputs
from valohai_cfn.stack.parameters import add_parameters
from valohai_cfn.stack.queue import add_queue
from valohai_cfn.stack.storage import add_storage

DESCRIPTION = "Self-hosted Valohai: app instance (roi), load balancer, PostgreSQL, Redis, S3, IAM (valohai-cfn)"


def build_template() -> Template:
    t = Template(Description=DESCRIPTION)
    t.set_version("2010-09-09")
    ctx = add_parameters(t)
    sgs = add_network(t, ctx)
    bucket = add_storage(t, ctx)
    roles = add_iam(t, ctx, bucket)
    database = add_database(t, ctx, GetAtt(sgs.database, "GroupId"), roles.database_monitoring)
    queue = add_queue(t, ctx, GetAtt(sgs.queue, "GroupId"))
    app_secrets = add_app_secrets(t, ctx)
    ssm_parameters = add_config(
        t,
        ctx,
        url=ctx.app_url(),
        database_host=GetAtt(database.instance, "Endpoint.Address"),
        queue_host=GetAtt(queue, "PrimaryEndPoint.Address"),
        bucket=bucket,
        multipart_role=roles.multipart,
        worker_role=roles.worker,
        worker_profile=roles.worker_profile,
        worker_security_group=sgs.workers,
    )
    roi = add_compute(
        t,
        ctx,
        security_group_id=GetAtt(sgs.master, "GroupId"),
        instance_profile=roles.master_profile,
        boot_dependencies=[*ssm_parameters, *app_secrets, database.secret],
    )
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
        database=database.instance,
        queue=queue,
        database_secret=database.secret,
        roi=roi,
    )
    return t
