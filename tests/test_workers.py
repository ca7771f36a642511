"""Workers: one launch template and one Auto Scaling group per instance type, on-demand and spot, read from the
rendered template with its loops and conditions evaluated (not by running the Python that built it), and their
boot run for real with stub commands."""

from __future__ import annotations

import subprocess

import pytest
from cfn import Evaluator, parameter_values, resolve, resources_of_type
from stubs import Stubs
from test_userdata import SHELLCHECK

from valohai_cfn.language_extensions import TransformError, expand

NETWORK = {
    "WorkerSubnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2",
    "ResourcePrefix": "vh",
    "OrganizationName": "acme",
}
QUEUE_URL = "redis://vh-queue.abc.cache.amazonaws.com:6379/0"
# Valohai's prep names an environment's queue <region>-<type>, and <region>-<type>-spot for <type>.spot.
PREP_SPOT = ".spot"


def prep_queue(registered_type: str, region: str) -> str:
    if registered_type.endswith(PREP_SPOT):
        return f"{region}-{registered_type.removesuffix(PREP_SPOT)}-spot"
    return f"{region}-{registered_type}"


def installation(raw_template: dict, on_demand: str, spot: str, **more: str) -> tuple[dict, Evaluator]:
    overrides = {**NETWORK, "WorkerInstanceTypes": on_demand, "WorkerSpotInstanceTypes": spot, **more}
    resolved = resolve(raw_template, overrides)
    evaluate = Evaluator(resolved, parameter_values(raw_template, overrides), {"Settingqueueurl.Value": QUEUE_URL})
    return resolved, evaluate


def groups(resolved: dict) -> dict[str, dict]:
    return resources_of_type(resolved, "AWS::AutoScaling::AutoScalingGroup")


def launch_template_of(resolved: dict, group: dict) -> dict:
    properties = group["Properties"]
    spec = (
        properties.get("LaunchTemplate")
        or properties["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    )
    (logical_id,) = spec["LaunchTemplateId"]["Fn::Sub"].strip("${}").split()
    assert spec["Version"] == "$Latest", "the app's own launch template versions apply too"
    return resolved["Resources"][logical_id]


def booted_queue(tmp_path, evaluate: Evaluator, launch_template: dict) -> str:
    """Run the launch template's user data under bash with stubs; the QUEUES it gives configure_peon."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "peon.sh"
    script.write_text(evaluate(launch_template["Properties"]["LaunchTemplateData"]["UserData"]))
    stubs = Stubs(tmp_path / "worker")
    result = stubs.run(script)
    assert result.returncode == 0, result.stderr
    (call,) = stubs.calls("env")
    assert call[-2:] == ["/home/ubuntu/bup.pex", "--only=configure_peon"]
    settings = dict(arg.split("=", 1) for arg in call[1:-2])
    assert settings["CLOUD"] == "ec2" and settings["INSTALLATION_TYPE"] == "private-worker"
    assert settings["REDIS_URL"] == QUEUE_URL and settings["PEON_EXTRA_CONFIG"] == '{"ALLOW_MOUNTS":"true"}'
    assert ["systemctl", "restart", "peon"] in stubs.calls("systemctl")
    return settings["QUEUES"]


def registered(resolved: dict, evaluate: Evaluator) -> list[str]:
    """The instance types the app instance registers as environments (its SSM setting), as queue names."""
    value = evaluate(resolved["Resources"]["Settingworkerinstancetypes"]["Properties"]["Value"])
    return [prep_queue(t, evaluate.parameter("AWS::Region")) for t in value.split(",") if t]


def test_one_group_per_type_and_every_booted_queue_is_registered(raw_template, tmp_path):
    resolved, evaluate = installation(raw_template, "t3.medium,c5.xlarge", "g4dn.xlarge,p3.2xlarge")
    names = {evaluate(g["Properties"]["AutoScalingGroupName"]): g for g in groups(resolved).values()}
    assert sorted(names) == [
        "vh-worker-c5.xlarge",
        "vh-worker-g4dn.xlarge-spot",
        "vh-worker-p3.2xlarge-spot",
        "vh-worker-t3.medium",
    ]
    queues = {}
    for name, group in names.items():
        launch_template = launch_template_of(resolved, group)
        assert evaluate(launch_template["Properties"]["LaunchTemplateName"]) == name
        queues[name] = booted_queue(tmp_path / name, evaluate, launch_template)
    assert queues == {
        "vh-worker-t3.medium": "eu-west-1-t3.medium",
        "vh-worker-c5.xlarge": "eu-west-1-c5.xlarge",
        "vh-worker-g4dn.xlarge-spot": "eu-west-1-g4dn.xlarge-spot",
        "vh-worker-p3.2xlarge-spot": "eu-west-1-p3.2xlarge-spot",
    }
    assert sorted(registered(resolved, evaluate)) == sorted(queues.values())
    outputs = {k: evaluate(o["Value"]) for k, o in resolved["Outputs"].items() if "Worker" in k and "Queue" in k}
    assert sorted(outputs.values()) == sorted(queues.values())


def test_spot_groups_are_spot_and_on_demand_groups_are_not(raw_template):
    resolved, evaluate = installation(raw_template, "t3.medium", "g4dn.xlarge")
    for group in groups(resolved).values():
        name = evaluate(group["Properties"]["AutoScalingGroupName"])
        mixed = group["Properties"].get("MixedInstancesPolicy")
        if name.endswith("-spot"):
            distribution = mixed["InstancesDistribution"]
            assert distribution["OnDemandPercentageAboveBaseCapacity"] == 0
            assert distribution["OnDemandBaseCapacity"] == 0
            assert distribution["SpotAllocationStrategy"] == "capacity-optimized"
        else:
            assert mixed is None and "LaunchTemplate" in group["Properties"]


def test_no_spot_types_means_no_spot_groups_and_nothing_spot_registered(raw_template):
    resolved, evaluate = installation(raw_template, "t3.medium", "")
    assert [evaluate(g["Properties"]["AutoScalingGroupName"]) for g in groups(resolved).values()] == [
        "vh-worker-t3.medium"
    ]
    assert registered(resolved, evaluate) == ["eu-west-1-t3.medium"]
    assert len(resources_of_type(resolved, "AWS::EC2::LaunchTemplate")) == 1


def test_spot_only_installation(raw_template):
    resolved, evaluate = installation(raw_template, "", "g4dn.xlarge")
    assert [evaluate(g["Properties"]["AutoScalingGroupName"]) for g in groups(resolved).values()] == [
        "vh-worker-g4dn.xlarge-spot"
    ]
    assert registered(resolved, evaluate) == ["eu-west-1-g4dn.xlarge-spot"]


def test_groups_scale_from_zero_to_the_maximum_and_never_set_a_desired_capacity(raw_template):
    resolved, evaluate = installation(raw_template, "t3.medium,c5.xlarge", "g4dn.xlarge", WorkerMaxSize="7")
    for group in groups(resolved).values():
        p = group["Properties"]
        assert p["MinSize"] == "0" and evaluate(p["MaxSize"]) == "7"
        assert "DesiredCapacity" not in p, "the app owns it: an update must never scale running workers down"
        assert evaluate(p["VPCZoneIdentifier"]) == NETWORK["WorkerSubnetIds"].split(",")
        tags = {t["Key"]: t for t in p["Tags"]}
        assert tags["valohai"]["Value"] == "1" and all(t["PropagateAtLaunch"] is True for t in tags.values())


def test_launch_templates_are_imdsv2_encrypted_gp3_in_the_worker_group_and_profile(raw_template):
    resolved, evaluate = installation(raw_template, "t3.medium", "g4dn.xlarge", WorkerVolumeSize="250")
    for launch_template in resources_of_type(resolved, "AWS::EC2::LaunchTemplate").values():
        data = launch_template["Properties"]["LaunchTemplateData"]
        assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}
        (device,) = data["BlockDeviceMappings"]
        ebs = device["Ebs"]
        assert ebs["VolumeType"] == "gp3" and ebs["Encrypted"] is True and evaluate(ebs["VolumeSize"]) == "250"
        assert data["IamInstanceProfile"] == {"Name": {"Ref": "WorkerInstanceProfile"}}
        assert data["ImageId"] == {"Ref": "WorkerAmiId"}
        assert "KeyName" not in data, "no key pair unless WorkerKeyPairName is given"


# Valohai's installer (Module/Workers/ASG and ASG-spots at f60087b): one interface, the worker security group, no
# public address whatever the subnet assigns. EC2 refuses SecurityGroupIds beside NetworkInterfaces.
WORKER_NETWORK_INTERFACE = {
    "DeviceIndex": 0,
    "AssociatePublicIpAddress": False,
    "Groups": [{"Fn::GetAtt": ["WorkersSecurityGroup", "GroupId"]}],
    "DeleteOnTermination": True,
}


def test_workers_never_get_a_public_address_and_have_the_worker_group_on_their_interface(raw_template):
    resolved, _ = installation(raw_template, "t3.medium,c5.xlarge", "g4dn.xlarge")
    launch_templates = resources_of_type(resolved, "AWS::EC2::LaunchTemplate")
    assert len(launch_templates) == 3
    for name, launch_template in launch_templates.items():
        data = launch_template["Properties"]["LaunchTemplateData"]
        assert data["NetworkInterfaces"] == [WORKER_NETWORK_INTERFACE], name
        assert "SecurityGroupIds" not in data and "SecurityGroups" not in data, name


def test_a_worker_key_pair_is_used_when_given(raw_template):
    resolved, _ = installation(raw_template, "t3.medium", "", WorkerKeyPairName="ops")
    (launch_template,) = resources_of_type(resolved, "AWS::EC2::LaunchTemplate").values()
    assert launch_template["Properties"]["LaunchTemplateData"]["KeyName"] == {"Ref": "WorkerKeyPairName"}


def test_queue_tls_gives_workers_and_app_a_rediss_url(raw_template):
    for tls, scheme in (("true", "rediss://"), ("false", "redis://")):
        resolved = resolve(raw_template, {**NETWORK, "QueueTransitEncryption": tls})
        evaluate = Evaluator(resolved, parameter_values(raw_template, NETWORK), {"Queue.PrimaryEndPoint.Address": "q"})
        url = evaluate(resolved["Resources"]["Settingqueueurl"]["Properties"]["Value"])
        assert url.startswith(f"{scheme}q:6379/0")
        assert url.endswith("?ssl_cert_reqs=required") is (tls == "true")


def test_a_type_listed_twice_is_refused_by_the_transform(raw_template):
    with pytest.raises(TransformError, match=r"t3\.medium"):
        expand(raw_template, {"WorkerInstanceTypes": "t3.medium,t3.medium"})


@pytest.mark.parametrize("tls", ["true", "false"])
def test_every_rendered_worker_boot_passes_bash_n_and_shellcheck(raw_template, tmp_path, tls):
    resolved, evaluate = installation(raw_template, "t3.medium", "g4dn.xlarge", QueueTransitEncryption=tls)
    for name, launch_template in resources_of_type(resolved, "AWS::EC2::LaunchTemplate").items():
        script = tmp_path / f"{name}.sh"
        script.write_text(evaluate(launch_template["Properties"]["LaunchTemplateData"]["UserData"]))
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        if SHELLCHECK:
            result = subprocess.run(
                [SHELLCHECK, "-o", "all", "-s", "bash", str(script)], capture_output=True, text=True
            )
            assert result.returncode == 0, result.stdout
