"""The local AWS's truth test: the demo deployed once, then every parameter of the template changed alone
(one update each, on that one stack), and after each the state read through each service's own API —
SSM values, Auto Scaling groups and launch templates, security group rules, RDS, ElastiCache, the load
balancer and its listeners, the app instance, tags, the outputs — compared with what the processed
template says for the parameters the stack now has. An update the local AWS reports complete must have
happened; one AWS refuses must be refused, and leave everything as it was.

Measured on main before this test (issue 18): a Domain change ended "0 of 0 done … UPDATE_COMPLETE" with the
old URL in SSM; DatabaseInstanceClass and QueueTransitEncryption changes completed with the database class,
the replication group, the queue URL and the launch templates unchanged; Fn::Join wrote the text "None"
into the worker-types setting; a LoadBalancerScheme change kept the old load balancer.
"""

from __future__ import annotations

import itertools
import json

import boto3
import pytest
from cfn import REPO, resolve
from live import Clients, Services, expected_state, outputs, stack_resources

from valohai_cfn.local_aws import NOT_APPLIED, create_demo_network

STACK = "each-parameter"

# Parameter changes AWS itself refuses for this template, with a word of the refusal: the update must fail
# and roll back, the services unchanged.
REFUSED_BY_AWS = {
    # SPEC (Queue): ElastiCache turns in-transit encryption on for a live group only through
    # TransitEncryptionMode preferred, then required; the template sets no mode yet.
    "QueueTransitEncryption": "TransitEncryptionMode",
}


_NUMBERS = itertools.count()


class World:
    """The one deployed demo stack and what its parameters can change to."""

    def __init__(self, clients: Clients, values: dict[str, str], changes: dict[str, str], zone: str) -> None:
        self.clients = clients
        self.values = values
        self.changes = changes
        self.zone = zone


def _subnet(ec2, vpc: str, cidr: str, zone: str) -> str:
    return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]


def _execute(clients: Clients, template_json: str, values: dict[str, str], kind: str) -> dict:
    cfn = clients("cloudformation")
    created = cfn.create_change_set(
        StackName=STACK,
        ChangeSetName=f"truth-{next(_NUMBERS)}",
        ChangeSetType=kind,
        TemplateBody=template_json,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        Capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    described = cfn.describe_change_set(ChangeSetName=created["Id"])
    assert described["Status"] == "CREATE_COMPLETE", described.get("StatusReason")
    cfn.execute_change_set(ChangeSetName=created["Id"])
    return described


@pytest.fixture(scope="module")
def world(local_aws, template_json) -> World:
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    clients = Clients(session, local_aws.endpoint_url)
    ec2 = clients("ec2")
    demo = create_demo_network(ec2, "us-east-1")
    vpc = demo["VpcId"]
    others = [_subnet(ec2, vpc, "10.20.10.0/24", "us-east-1a"), _subnet(ec2, vpc, "10.20.11.0/24", "us-east-1b")]
    image = ec2.register_image(Name="valohai-roi-next", RootDeviceName="/dev/sda1")["ImageId"]
    worker_image = ec2.register_image(Name="valohai-peon-next", RootDeviceName="/dev/sda1")["ImageId"]
    ec2.create_key_pair(KeyName="truth-operator")
    certificate = clients("acm").request_certificate(DomainName="valohai.truth.example.com")["CertificateArn"]
    zone = clients("route53").create_hosted_zone(Name="example.com", CallerReference="truth")["HostedZone"]["Id"]
    zone = zone.rsplit("/", 1)[-1]
    # The queue and the database start a version below the newest RDS and ElastiCache offer, to be upgraded:
    # neither downgrades.
    values = {
        **demo,
        "ResourcePrefix": STACK,
        "DatabaseDeletionProtection": "false",
        "QueueEngineVersion": "7.0",
        "DatabaseEngineVersion": "16.14",
    }
    changes = {
        "AllowedIngressCidr": "203.0.113.0/24",
        "CacheNodeType": "cache.m6g.large",
        "CacheSubnetIds": ",".join(others),
        "CertificateArn": certificate,
        "DatabaseAllocatedStorage": "100",
        "DatabaseDeletionProtection": "true",
        "DatabaseEngineVersion": "16.15",
        "DatabaseInstanceClass": "db.m5.xlarge",
        "DatabaseMultiAZ": "false",
        "DatabaseSubnetIds": ",".join(others),
        "Domain": "valohai.truth.example.com",
        "EnvironmentName": "Staging",
        "HostedZoneId": zone,
        "KeyPairName": "truth-operator",
        "LoadBalancerScheme": "internal",
        "LoadBalancerSubnetIds": ",".join(others),
        "OrganizationName": "truth",
        "QueueEngineVersion": "7.1",
        "QueueTransitEncryption": "true",
        "ResourcePrefix": "truer",
        "RoiAmiId": image,
        "RoiInstanceType": "m5a.2xlarge",
        "RoiSubnetId": others[0],
        "RoiVolumeSize": "100",
        "VpcId": vpc,
        "WorkerAmiId": worker_image,
        "WorkerInstanceTypes": "t3.medium,c5.xlarge",
        "WorkerKeyPairName": "truth-operator",
        "WorkerMaxSize": "5",
        "WorkerPoolRoleArns": "arn:aws:iam::222222222222:role/gpu-role-scaling-us-west-2",
        "WorkerSpotInstanceTypes": "g4dn.xlarge",
        "WorkerSubnetIds": ",".join(others),
        "WorkerVolumeSize": "200",
    }
    _execute(clients, template_json, values, "CREATE")
    return World(clients, values, changes, zone)


def _status(world: World) -> tuple[str, list[dict]]:
    """The stack's status and its latest events (one page, newest first)."""
    cfn = world.clients("cloudformation")
    (stack,) = cfn.describe_stacks(StackName=STACK)["Stacks"]
    return stack["StackStatus"], cfn.describe_stack_events(StackName=STACK)["StackEvents"]


def _compare(world: World, raw_template: dict) -> None:
    """The services' state is what the processed template says for the stack's parameter values."""
    resolved = resolve(raw_template, world.values)
    kinds = {n: r["Type"] for n, r in resolved["Resources"].items() if r["Type"] != "AWS::EC2::SecurityGroupIngress"}
    resources = stack_resources(world.clients, STACK)
    assert set(resources) == set(resolved["Resources"]), "the stack's resources are the template's"
    live, attributes = Services(world.clients, resources, kinds, world.zone).read()
    live["Outputs"] = outputs(world.clients, STACK)
    pseudo = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::StackName": STACK}
    expected = expected_state(raw_template, resolved, world.values, attributes, pseudo)
    wrong = {k: {"template": v, "service": live.get(k)} for k, v in expected.items() if live.get(k) != v}
    assert not wrong, wrong


def test_the_demo_as_created_is_what_the_template_says(world, raw_template):
    assert _status(world)[0] == "CREATE_COMPLETE"
    settings = world.clients("ssm")
    # Fn::Join leaves AWS::NoValue out (no spot types): not the text "None".
    value = settings.get_parameter(Name=f"/{STACK}/worker-instance-types")["Parameter"]["Value"]
    assert value == "t3.medium"
    _compare(world, raw_template)


# Every parameter of the committed template (a test fails when it is stale); ResourcePrefix last: it renames,
# so replaces, nearly everything.
PARAMETERS = sorted(
    json.loads((REPO / "templates" / "valohai-self-hosted.json").read_text())["Parameters"],
    key=lambda name: name == "ResourcePrefix",
)


@pytest.mark.parametrize("parameter", PARAMETERS)
def test_a_parameter_changed_alone_reaches_the_services(world, raw_template, template_json, parameter):
    if parameter in NOT_APPLIED:
        pytest.skip(f"not applied by the local AWS: {NOT_APPLIED[parameter]}")
    assert parameter in world.changes, f"the truth test needs a value to change {parameter} to"
    values = {**world.values, parameter: world.changes[parameter]}
    described = _execute(world.clients, template_json, values, "UPDATE")
    status, events = _status(world)
    if parameter in REFUSED_BY_AWS:
        assert status == "UPDATE_ROLLBACK_COMPLETE", status
        failed = [e for e in events if e["ResourceStatus"] == "UPDATE_FAILED"]
        assert failed and REFUSED_BY_AWS[parameter] in failed[0]["ResourceStatusReason"], failed
    else:
        assert status == "UPDATE_COMPLETE", [e.get("ResourceStatusReason") for e in events[:5]]
        assert described["Changes"], "a change that reaches a resource is a change in the change set"
        world.values = values
    _compare(world, raw_template)


def test_a_replacement_is_a_new_physical_resource_and_says_so(world, raw_template, template_json):
    """The load balancer scheme is create-only: the change set says Replacement True, with the property's
    RequiresRecreation Always, and executing it makes a new load balancer (checked above) and removes the old."""
    cfn = world.clients("cloudformation")
    old = stack_resources(world.clients, STACK)["LoadBalancer"]["PhysicalResourceId"]
    scheme = "internet-facing" if world.values["LoadBalancerScheme"] == "internal" else "internal"
    values = {**world.values, "LoadBalancerScheme": scheme}
    created = cfn.create_change_set(
        StackName=STACK,
        ChangeSetName="truth-scheme",
        ChangeSetType="UPDATE",
        TemplateBody=template_json,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    described = cfn.describe_change_set(ChangeSetName=created["Id"], IncludePropertyValues=True)
    (balancer,) = [
        c["ResourceChange"] for c in described["Changes"] if c["ResourceChange"]["LogicalResourceId"] == "LoadBalancer"
    ]
    assert balancer["Action"] == "Modify" and balancer["Replacement"] == "True"
    (scheme_change,) = [d for d in balancer["Details"] if d["Target"].get("Name") == "Scheme"]
    assert scheme_change["Target"]["RequiresRecreation"] == "Always"
    assert scheme_change["Target"]["AfterValue"] == scheme
    cfn.execute_change_set(ChangeSetName=created["Id"])
    world.values = values
    new = stack_resources(world.clients, STACK)["LoadBalancer"]["PhysicalResourceId"]
    assert new != old
    assert old not in {b["LoadBalancerArn"] for b in world.clients("elbv2").describe_load_balancers()["LoadBalancers"]}
    _compare(world, raw_template)


def test_a_failed_update_puts_back_what_it_had_changed(world, raw_template, template_json):
    """The domain's changes come first (the bucket's CORS, the URL setting); the queue's refusal then fails
    the update, and the rollback puts them back: the services end as they were."""
    values = {**world.values, "Domain": "rolled.back.example.com", "QueueTransitEncryption": "true"}
    _execute(world.clients, template_json, values, "UPDATE")
    status, events = _status(world)
    assert status == "UPDATE_ROLLBACK_COMPLETE"
    first_rollback = next(i for i, e in enumerate(events) if e["ResourceStatus"] == "UPDATE_ROLLBACK_IN_PROGRESS")
    undone = {e["LogicalResourceId"] for e in events[:first_rollback] if e["ResourceStatus"] == "UPDATE_COMPLETE"}
    assert "DataBucket" in undone, "the bucket had changed before the queue failed, and is changed back"
    _compare(world, raw_template)
