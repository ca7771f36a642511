"""The app instance ("roi") and its boot script."""

from __future__ import annotations

from importlib.resources import files

from troposphere import AWSObject, Base64, GetAtt, If, NoValue, Ref, Sub, Template
from troposphere.ec2 import BlockDeviceMapping, EbsBlockDevice, Instance, MetadataOptions

from valohai_cfn.stack.context import HAS_KEY_PAIR, QUEUE_TLS, Context

ROI_INSTANCE = "RoiInstance"
# The roi image is Ubuntu-based, whose root device is /dev/sda1.
ROOT_DEVICE = "/dev/sda1"


def roi_user_data_script() -> str:
    return files("valohai_cfn").joinpath("userdata/roi.sh").read_text(encoding="utf-8")


def roi_user_data() -> Base64:
    return Base64(Sub(roi_user_data_script(), QueueUrlScheme=If(QUEUE_TLS, "rediss", "redis")))


def add_compute(
    t: Template,
    ctx: Context,
    *,
    security_group_id: GetAtt,
    instance_profile: AWSObject,
    boot_dependencies: list[AWSObject],
) -> Instance:
    """`boot_dependencies` are what the boot script reads: it must not start before they exist."""
    return t.add_resource(
        Instance(
            ROI_INSTANCE,
            DependsOn=sorted(dependency.title for dependency in boot_dependencies),
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
            # IMDSv2 only; hop limit 2 so the app's containers can still reach the metadata service.
            MetadataOptions=MetadataOptions(HttpEndpoint="enabled", HttpTokens="required", HttpPutResponseHopLimit=2),
            PropagateTagsToVolumeOnCreation=True,
            Monitoring=True,
            UserData=roi_user_data(),
            Tags=ctx.tags("roi"),
        )
    )
