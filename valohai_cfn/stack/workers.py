"""The workers: one launch template and one Auto Scaling group per instance type, on-demand and spot.

As in Valohai's installer (Module/Workers/ASG and ASG-spots), each group boots the worker image
("peon") on its own queue, and the app scales it between 0 and WorkerMaxSize. Unlike the installer,
the types are parameters, not code: Fn::ForEach (the AWS::LanguageExtensions transform) makes one
group per item of WorkerInstanceTypes and WorkerSpotInstanceTypes at deploy time, so adding a type is
a stack update. The queue and group names are derived here, once, for the workers' boot and for the
environments the app instance registers.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import Base64, If, Join, NoValue, Output, Ref, Sub, Template
from troposphere.autoscaling import (
    AutoScalingGroup,
    InstancesDistribution,
    LaunchTemplateSpecification,
    MixedInstancesPolicy,
)
from troposphere.autoscaling import LaunchTemplate as GroupLaunchTemplate
from troposphere.autoscaling import Tags as GroupTags
from troposphere.ec2 import (
    EBSBlockDevice,
    IamInstanceProfile,
    LaunchTemplate,
    LaunchTemplateBlockDeviceMapping,
    LaunchTemplateData,
    MetadataOptions,
    NetworkInterfaces,
    TagSpecifications,
)

from valohai_cfn import userdata
from valohai_cfn.stack.context import (
    HAS_ON_DEMAND_WORKERS,
    HAS_SPOT_WORKERS,
    HAS_WORKER_KEY_PAIR,
    Context,
    ForEach,
)

# The loop's identifier: ${InstanceType} is the type as given, &{InstanceType} the type without its dot
# (logical ids are alphanumeric).
INSTANCE_TYPE = "InstanceType"
# The worker image is Ubuntu-based, whose root device is /dev/sda1 (Valohai's installer maps the same).
ROOT_DEVICE = "/dev/sda1"
# Valohai's installer: a stopped job's machine goes first, then the newest.
TERMINATION_POLICIES = ["ClosestToNextInstanceHour", "NewestInstance"]
# prep (Valohai's environment tool) names a spot environment's instance type "<type>.spot".
PREP_SPOT_SUFFIX = ".spot"


@dataclass(frozen=True)
class WorkerKind:
    """On-demand or spot: the names and the loop that differ between the two."""

    loop: str  # Fn::ForEach::<loop>
    parameter: str  # the CommaDelimitedList of instance types
    condition: str  # false when that list is empty
    suffix: str  # of the queue and group names: "" or "-spot"
    logical_prefix: str  # of the generated logical ids

    @property
    def launch_template_id(self) -> str:
        return f"{self.logical_prefix}WorkerLaunchTemplate&{{{INSTANCE_TYPE}}}"

    @property
    def group_id(self) -> str:
        return f"{self.logical_prefix}WorkerGroup&{{{INSTANCE_TYPE}}}"


ON_DEMAND = WorkerKind("WorkerGroups", "WorkerInstanceTypes", HAS_ON_DEMAND_WORKERS, "", "")
SPOT = WorkerKind("SpotWorkerGroups", "WorkerSpotInstanceTypes", HAS_SPOT_WORKERS, "-spot", "Spot")
KINDS = (ON_DEMAND, SPOT)


def queue_name(ctx: Context, kind: WorkerKind, instance_type: str = f"${{{INSTANCE_TYPE}}}") -> str:
    """`<region>-<type>[-spot]`, a pool's `<pool>-<region>-<type>[-spot]`: the queue a group's workers take jobs
    from (a Fn::Sub string), which prep names `<queue-name-prefix><region>-<type>`."""
    return f"{ctx.queue_prefix}${{AWS::Region}}-{instance_type}{kind.suffix}"


def group_name(ctx: Context, kind: WorkerKind, instance_type: str = f"${{{INSTANCE_TYPE}}}") -> str:
    """`<prefix>-worker-<type>[-spot]`: the app finds a group by prep's asg-name-prefix `<prefix>-worker-`."""
    return f"{group_name_prefix(ctx)}{instance_type}{kind.suffix}"


def group_name_prefix(ctx: Context) -> str:
    """prep's asg-name-prefix (a Fn::Sub string)."""
    return f"${{{ctx.prefix}}}-worker-"


def peon_boot_script() -> str:
    """peon.sh without its comments, its ${Queue} and ${QueueUrl} still to be filled in."""
    return userdata.without_comments(userdata.read("peon.sh"))


def peon_user_data(ctx: Context, kind: WorkerKind, queue_url: str) -> Base64:
    """A group's worker boot: peon.sh with its queue's name and the queue URL written in as the Fn::Sub
    expressions they are (`${AWS::Region}-${InstanceType}-spot`, `${Settingqueueurl.Value}`), so the
    template carries no map of variables beside each copy (CloudFormation's 51,200-byte limit). `queue_url`
    is the Fn::Sub variable that holds the URL, such as `Settingqueueurl.Value` or `QueueUrl`."""
    script = peon_boot_script().replace("${Queue}", queue_name(ctx, kind))
    return Base64(Sub(script.replace("${QueueUrl}", f"${{{queue_url}}}")))


def _launch_template(ctx: Context, kind: WorkerKind, queue_url: str, security_group_id: object) -> LaunchTemplate:
    return LaunchTemplate(
        "WorkerLaunchTemplate",  # the title troposphere validates; the loop's fragment key is the real id
        Condition=kind.condition,
        LaunchTemplateName=Sub(group_name(ctx, kind)),
        # The template's own tags (the master may change it because of them); the instances get theirs
        # from the group, which propagates its tags at launch.
        TagSpecifications=[TagSpecifications(ResourceType="launch-template", Tags=ctx.tags(worker=True))],
        LaunchTemplateData=LaunchTemplateData(
            ImageId=ctx.ref("WorkerAmiId"),
            InstanceType=Ref(INSTANCE_TYPE),
            IamInstanceProfile=IamInstanceProfile(Name=Ref("WorkerInstanceProfile")),
            # Never a public address, whatever the subnet assigns (Valohai's installer: assign_public_ip false);
            # a job reaches the internet through the subnet's NAT. The group goes on the interface: EC2 refuses
            # SecurityGroupIds beside NetworkInterfaces.
            NetworkInterfaces=[
                NetworkInterfaces(
                    DeviceIndex=0,
                    AssociatePublicIpAddress=False,
                    Groups=[security_group_id],
                    DeleteOnTermination=True,
                )
            ],
            KeyName=If(HAS_WORKER_KEY_PAIR, ctx.ref("WorkerKeyPairName"), NoValue),
            # IMDSv2 only; hop limit 2 so the job containers can still reach the metadata service.
            MetadataOptions=MetadataOptions(HttpTokens="required", HttpPutResponseHopLimit=2),
            BlockDeviceMappings=[
                LaunchTemplateBlockDeviceMapping(
                    DeviceName=ROOT_DEVICE,
                    Ebs=EBSBlockDevice(
                        VolumeType="gp3",
                        VolumeSize=ctx.ref("WorkerVolumeSize"),
                        Encrypted=True,
                        DeleteOnTermination=True,
                    ),
                )
            ],
            UserData=peon_user_data(ctx, kind, queue_url),
        ),
    )


def _group(ctx: Context, kind: WorkerKind) -> AutoScalingGroup:
    # Sub, not Ref: CloudFormation replaces &{InstanceType} in strings, and a Ref whose value is a function
    # (the transform's other way) is one checkov cannot parse. $Latest: the app's own versions apply too.
    template = {"LaunchTemplateId": Sub(f"${{{kind.launch_template_id}}}"), "Version": "$Latest"}
    extra: dict[str, object] = {}
    if kind is SPOT:
        extra["MixedInstancesPolicy"] = MixedInstancesPolicy(
            InstancesDistribution=InstancesDistribution(
                OnDemandBaseCapacity=0,
                OnDemandPercentageAboveBaseCapacity=0,
                SpotAllocationStrategy="capacity-optimized",
            ),
            LaunchTemplate=GroupLaunchTemplate(LaunchTemplateSpecification=LaunchTemplateSpecification(**template)),
        )
    else:
        extra["LaunchTemplate"] = LaunchTemplateSpecification(**template)
    return AutoScalingGroup(
        "WorkerGroup",
        Condition=kind.condition,
        AutoScalingGroupName=Sub(group_name(ctx, kind)),
        MinSize="0",
        MaxSize=ctx.ref("WorkerMaxSize"),
        # No DesiredCapacity: the app owns it, and a stack update must never scale running workers down.
        VPCZoneIdentifier=ctx.ref("WorkerSubnetIds"),
        Cooldown="60",
        TerminationPolicies=TERMINATION_POLICIES,
        Tags=GroupTags(**ctx.tag_map(f"worker-${{{INSTANCE_TYPE}}}{kind.suffix}", worker=True)),
        **extra,
    )


def add_workers(t: Template, ctx: Context, *, queue_url: str, security_group_id: object) -> None:
    """One loop per kind; each item of the kind's list gets a launch template and a group. `queue_url` is the
    Fn::Sub variable that holds the queue's URL (the installation's setting, a pool's parameter)."""
    for kind in KINDS:
        fragment = {
            kind.launch_template_id: _launch_template(ctx, kind, queue_url, security_group_id),
            kind.group_id: _group(ctx, kind),
        }
        t.add_resource(ForEach(kind.loop, INSTANCE_TYPE, ctx.ref(kind.parameter), fragment))


def registered_instance_types(ctx: Context) -> Join:
    """The instance types as prep takes them: on-demand ones as they are, spot ones as `<type>.spot`.
    An empty list contributes nothing (not even a comma)."""
    spot = Join("", [Join(f"{PREP_SPOT_SUFFIX},", ctx.ref(SPOT.parameter)), PREP_SPOT_SUFFIX])
    return Join(
        ",",
        [
            If(HAS_ON_DEMAND_WORKERS, Join(",", ctx.ref(ON_DEMAND.parameter)), NoValue),
            If(HAS_SPOT_WORKERS, spot, NoValue),
        ],
    )


def add_worker_outputs(t: Template, ctx: Context) -> None:
    """Each group's name and its queue's, one pair of outputs per instance type."""
    for kind in KINDS:
        fragment = {
            f"{kind.logical_prefix}WorkerGroup&{{{INSTANCE_TYPE}}}": Output(
                "WorkerGroup", Condition=kind.condition, Value=Sub(group_name(ctx, kind))
            ),
            f"{kind.logical_prefix}WorkerQueue&{{{INSTANCE_TYPE}}}": Output(
                "WorkerQueue", Condition=kind.condition, Value=Sub(queue_name(ctx, kind))
            ),
        }
        t.add_output(ForEach(f"{kind.loop}Outputs", INSTANCE_TYPE, Ref(kind.parameter), fragment))
