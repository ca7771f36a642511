"""The app instance ("roi"), its boot script, and how it reports health to CloudFormation."""

from __future__ import annotations

import base64
import gzip

from troposphere import AWSObject, GetAtt, If, NoValue, Ref, Template
from troposphere.ec2 import BlockDeviceMapping, EbsBlockDevice, Instance, MetadataOptions
from troposphere.policies import CreationPolicy, ResourceSignal

from valohai_cfn import userdata
from valohai_cfn.stack.context import HAS_KEY_PAIR, Context

ROI_INSTANCE = "RoiInstance"
# The roi image is Ubuntu-based, whose root device is /dev/sda1.
ROOT_DEVICE = "/dev/sda1"
# The line of roi.sh that the roi.config beside it replaces.
ROI_CONFIG_MARKER = "@roi.config\n"
# The boot waits up to 45 minutes for the database, then starts the app, migrates and registers the
# environments: CloudFormation waits for its signal the database's create time plus about 20 minutes.
BOOT_TIMEOUT = "PT65M"


def roi_boot_script() -> str:
    """roi.sh with the roi.config in its place, as the instance runs it."""
    return userdata.without_comments(userdata.read("roi.sh").replace(ROI_CONFIG_MARKER, userdata.read("roi.config")))


def roi_user_data() -> str:
    """The boot script gzip-compressed (cloud-init decompresses user data), then base64 as UserData takes it.
    It is the same for every installation, so no Fn::Sub is needed; mtime 0 keeps the build deterministic."""
    return base64.b64encode(gzip.compress(roi_boot_script().encode(), compresslevel=9, mtime=0)).decode()


def add_compute(t: Template, ctx: Context, *, security_group_id: GetAtt, instance_profile: AWSObject) -> Instance:
    """No DependsOn on the database, the queue or the settings: the instance starts at once and its
    boot waits for what it reads, so the app is up shortly after the database is."""
    return t.add_resource(
        Instance(
            ROI_INSTANCE,
            CreationPolicy=CreationPolicy(ResourceSignal=ResourceSignal(Count=1, Timeout=BOOT_TIMEOUT)),
            ImageId=ctx.ref("RoiAmiId"),
            InstanceType=ctx.ref("RoiInstanceType"),
            SubnetId=ctx.ref("RoiSubnetId"),
            SecurityGroupIds=[security_group_id],
            IamInstanceProfile=Ref(instance_profile),
            KeyName=If(HAS_KEY_PAIR, ctx.ref("KeyPairName"), NoValue),
            BlockDeviceMappings=[
                BlockDeviceMapping(
                    DeviceName=ROOT_DEVICE,
                    Ebs=EbsBlockDevice(
                        VolumeType="gp3", VolumeSize=ctx.ref("RoiVolumeSize"), Encrypted=True, DeleteOnTermination=True
                    ),
                )
            ],
            # IMDSv2 only; hop limit 2 so the app's containers can still reach the metadata service; the
            # boot reads its stack and prefix from the instance's tags there.
            MetadataOptions=MetadataOptions(
                HttpTokens="required", HttpPutResponseHopLimit=2, InstanceMetadataTags="enabled"
            ),
            PropagateTagsToVolumeOnCreation=True,
            Monitoring=True,
            UserData=roi_user_data(),
            Tags=ctx.tags("roi"),
        )
    )
