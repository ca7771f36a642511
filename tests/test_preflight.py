"""Each preflight check passing and failing against the local AWS (moto in server mode), with a VPC,
subnets, route tables, an internet gateway, an AMI and a certificate the test makes there."""

from __future__ import annotations

import datetime

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from valohai_cfn.cli import cli
from valohai_cfn.local_aws import create_demo_network
from valohai_cfn.params import dump_parameters
from valohai_cfn.preflight import Account, covers, run_checks
from valohai_cfn.template import build_template

DEFAULTS = {n: s["Default"] for n, s in build_template().to_dict()["Parameters"].items() if "Default" in s}


def self_signed(domain: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), pem_key


@pytest.fixture
def account(aws_env, local_session):
    def client(service):
        return local_session.client(service, endpoint_url=aws_env.endpoint_url)

    return Account(
        ec2=client("ec2"),
        acm=client("acm"),
        s3=client("s3"),
        sts=client("sts"),
        cfn=client("cloudformation"),
        region="us-east-1",
    )


@pytest.fixture
def good(account, resource_prefix):
    """Parameters of a healthy account: every check passes."""
    parameters = {**DEFAULTS, **create_demo_network(account.ec2, "us-east-1"), "ResourcePrefix": resource_prefix}
    certificate, key = self_signed(parameters["Domain"])
    parameters["CertificateArn"] = account.acm.import_certificate(Certificate=certificate, PrivateKey=key)[
        "CertificateArn"
    ]
    account.ec2.create_key_pair(KeyName=f"{parameters['ResourcePrefix']}-ops")
    parameters["KeyPairName"] = f"{parameters['ResourcePrefix']}-ops"
    return parameters


def results(account, parameters) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in run_checks(account, parameters)}


def failed(account, parameters) -> dict[str, str]:
    return {name: detail for name, (ok, detail) in results(account, parameters).items() if not ok}


def test_a_healthy_account_passes_every_check(account, good):
    outcome = results(account, good)
    assert len(outcome) == 23  # without the clients of the other services: no rows of names, engines, node types
    assert failed(account, good) == {}


def test_missing_vpc(account, good):
    assert "VPC exists" in failed(account, {**good, "VpcId": "vpc-0000000000000dead"})


def test_missing_subnet_and_subnet_in_another_vpc(account, good):
    other_vpc = account.ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    stray = account.ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.99.1.0/24", AvailabilityZone="us-east-1a")
    problems = failed(
        account, {**good, "RoiSubnetId": "subnet-0000000000000dead", "WorkerSubnetIds": stray["Subnet"]["SubnetId"]}
    )
    assert "not found: subnet-0000000000000dead" in problems["RoiSubnetId exist"]
    assert f"not in {good['VpcId']}" in problems["WorkerSubnetIds exist"]


def test_subnets_in_one_zone(account, good):
    one = good["DatabaseSubnetIds"].split(",")[0]
    problems = failed(account, {**good, "DatabaseSubnetIds": one, "CacheSubnetIds": one})
    assert "needs subnets in two zones" in problems["DatabaseSubnetIds span two AZs"]
    assert "CacheSubnetIds span two AZs" in problems


def test_private_load_balancer_subnets(account, good):
    private = {**good, "LoadBalancerSubnetIds": good["DatabaseSubnetIds"]}
    assert "no 0.0.0.0/0 route to an internet gateway" in failed(account, private)["Load balancer subnets are public"]
    assert "Load balancer subnets are public" not in failed(account, {**private, "LoadBalancerScheme": "internal"})


def test_missing_image(account, good):
    assert "App image is available" in failed(account, {**good, "RoiAmiId": "ami-0000000000000dead"})
    problems = failed(account, {**good, "WorkerAmiId": "ami-0000000000000beef"})
    assert problems["Worker image is available"].startswith("ami-0000000000000beef: ")


def test_worker_types_not_offered_in_the_worker_zones(account, good):
    types = {"WorkerInstanceTypes": "t3.medium,x9.bogus", "WorkerSpotInstanceTypes": "g4dn.xlarge,y7.nope"}
    problem = failed(account, {**good, **types})["Worker types are offered in their zones"]
    assert problem == "not offered in us-east-1a, us-east-1b: x9.bogus, y7.nope"
    assert "Worker types are offered in their zones" not in failed(
        account, {**good, "WorkerSpotInstanceTypes": "g4dn.xlarge"}
    )


def test_certificate_for_another_domain_or_not_issued(account, good):
    certificate, key = self_signed("other.example.org")
    other = account.acm.import_certificate(Certificate=certificate, PrivateKey=key)["CertificateArn"]
    assert (
        failed(account, {**good, "CertificateArn": other})["Certificate is issued for Domain"]
        == "CertificateArn covers other.example.org, not Domain valohai.demo.example.com"
    )
    # The local AWS, as ACM, leaves a DNS-validated certificate pending until its record is in DNS.
    pending = account.acm.request_certificate(DomainName=good["Domain"], ValidationMethod="DNS")["CertificateArn"]
    said = failed(account, {**good, "CertificateArn": pending})["Certificate is issued for Domain"]
    assert said.startswith("CertificateArn: PENDING_VALIDATION, not ISSUED: write its validation record"), said
    # A certificate of another region: the load balancer cannot take it, whatever its state (QA: "not found").
    elsewhere = pending.replace(":us-east-1:", ":eu-west-1:")
    said = failed(account, {**good, "CertificateArn": elsewhere})["Certificate is issued for Domain"]
    assert said.startswith("CertificateArn is a certificate of eu-west-1; the load balancer takes one of us-east-1")


def test_missing_key_pair(account, good):
    said = failed(account, {**good, "KeyPairName": "nobody-has-this"})["Key pair exists"]
    # As EC2 says it (moto wrote the name as a Python set: '{'nobody-has-this'}').
    assert said == "KeyPairName nobody-has-this: The key pair 'nobody-has-this' does not exist"


def test_instance_type_not_offered(account, good):
    assert (
        "is not offered in us-east-1a"
        in failed(account, {**good, "RoiInstanceType": "x9.bogus"})["App instance type is offered in its AZ"]
    )


def test_bucket_name_taken(account, good):
    account.s3.create_bucket(Bucket=f"{good['ResourcePrefix']}-data-123456789012-us-east-1")
    assert "exists" in failed(account, good)["Data bucket name is free"]


@pytest.mark.parametrize(
    ("names", "domain", "expected"),
    [
        (["valohai.example.com"], "valohai.example.com", True),
        (["*.example.com"], "valohai.example.com", True),
        (["*.example.com"], "a.valohai.example.com", False),
        (["example.com"], "valohai.example.com", False),
    ],
)
def test_wildcards_cover_one_label(names, domain, expected):
    assert covers(names, domain) is expected


def test_app_and_worker_subnets_without_a_nat_are_refused(account, good):
    """QA: worker subnets whose 0.0.0.0/0 goes to an internet gateway (or nowhere) passed, though workers get no
    public address: their jobs could pull no image and reach no app."""
    public = good["LoadBalancerSubnetIds"]
    said = failed(account, {**good, "WorkerSubnetIds": public})["App and worker subnets reach the internet"]
    for subnet in public.split(","):
        assert f"{subnet} routes 0.0.0.0/0 to igw-" in said
    assert said.endswith("with VPC endpoints for everything they reach instead, deploy with --skip-preflight")
    vpc = account.ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    isolated = account.ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.1.0/24", AvailabilityZone="us-east-1a")
    subnet = isolated["Subnet"]["SubnetId"]
    said = failed(account, {**good, "VpcId": vpc, "RoiSubnetId": subnet})["App and worker subnets reach the internet"]
    assert f"{subnet} has no 0.0.0.0/0 route" in said
    assert "App and worker subnets reach the internet" not in failed(account, good)


def test_preflight_command_prints_a_table_and_fails(aws_env, account, good, tmp_path):
    path = tmp_path / "params.json"
    path.write_text(dump_parameters({**good, "RoiAmiId": "ami-0000000000000dead"}))
    result = CliRunner().invoke(
        cli, ["preflight", "--params", str(path), "--endpoint-url", aws_env.endpoint_url, "--region", "us-east-1"]
    )
    assert result.exit_code == 1
    rows = [line for line in result.output.splitlines() if "  ok  " in line or "  FAILED  " in line]
    assert len(rows) == 39  # every check: tests/test_preflight_rules.py names the rows of names and pairs
    assert any(line.startswith("App image is available") and "FAILED" in line for line in rows)
    assert result.output.rstrip().endswith("Error: preflight failed: see the rows marked FAILED")


def test_deploy_stops_at_a_failed_preflight(aws_env, account, good, tmp_path):
    path = tmp_path / "params.json"
    path.write_text(dump_parameters({**good, "VpcId": "vpc-0000000000000dead"}))
    result = CliRunner().invoke(
        cli,
        [
            "deploy",
            "--stack-name",
            "never",
            "--params",
            str(path),
            "--yes",
            "--endpoint-url",
            aws_env.endpoint_url,
            "--region",
            "us-east-1",
        ],
    )
    assert result.exit_code == 1 and "--skip-preflight" in result.output
    with pytest.raises(ClientError, match="does not exist"):
        account.cfn.describe_stacks(StackName="never")
