"""The application load balancer in front of the app, with optional TLS certificate and DNS record."""

from __future__ import annotations

from troposphere import GetAtt, If, Ref, Template
from troposphere.certificatemanager import Certificate, DomainValidationOption
from troposphere.ec2 import Instance
from troposphere.elasticloadbalancingv2 import (
    Action,
    LoadBalancer,
    LoadBalancerAttributes,
    Matcher,
    RedirectConfig,
    TargetDescription,
    TargetGroup,
)
from troposphere.elasticloadbalancingv2 import Certificate as ListenerCertificate
from troposphere.elasticloadbalancingv2 import Listener as ELBListener
from troposphere.route53 import AliasTarget, RecordSetType

from valohai_cfn.stack.context import (
    CREATE_CERTIFICATE,
    HAS_CERTIFICATE,
    HAS_HOSTED_ZONE,
    USE_HTTPS,
    Context,
    checkov_skips,
)

LOAD_BALANCER = "LoadBalancer"
ROI_TARGET_GROUP = "RoiTargetGroup"
HTTPS_LISTENER = "HttpsListener"
HTTP_LISTENER = "HttpListener"
CERTIFICATE = "Certificate"
DNS_RECORD = "DnsRecord"

API_PORT = 8000
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def _load_balancer(ctx: Context, security_group_id: GetAtt) -> LoadBalancer:
    return LoadBalancer(
        LOAD_BALANCER,
        # No Name: CloudFormation names it, so that a change of LoadBalancerScheme (which replaces it) does not
        # collide with the name of the one it replaces. Its Name tag says which installation's it is. No Type:
        # CloudFormation's default is an application load balancer, as no TargetType (instance) and no
        # HealthCheckProtocol (the target group's HTTP) below; each is said once, by AWS (the 51,200-byte limit).
        Scheme=ctx.ref("LoadBalancerScheme"),
        # The original placed the load balancer in the app's subnet; it spans the subnets given for it.
        Subnets=ctx.ref("LoadBalancerSubnetIds"),
        SecurityGroups=[security_group_id],
        LoadBalancerAttributes=[
            LoadBalancerAttributes(Key="routing.http.drop_invalid_header_fields.enabled", Value="true"),
        ],
        Tags=ctx.tags("lb"),
        Metadata=checkov_skips(
            "CKV_AWS_91",
        ),
    )


def _target_group(ctx: Context, roi: Instance) -> TargetGroup:
    return TargetGroup(
        ROI_TARGET_GROUP,
        Name=ctx.name("roi"),
        VpcId=ctx.ref("VpcId"),
        Protocol="HTTP",
        Port=API_PORT,
        Targets=[TargetDescription(Id=Ref(roi), Port=API_PORT)],
        HealthCheckPath="/healthz",
        Matcher=Matcher(HttpCode="200,202"),
        Tags=ctx.tags("roi"),
    )


def _certificate(ctx: Context) -> Certificate:
    return Certificate(
        CERTIFICATE,
        Condition=CREATE_CERTIFICATE,
        DomainName=ctx.ref("Domain"),
        ValidationMethod="DNS",
        # With the hosted zone given, CloudFormation writes the validation record itself.
        DomainValidationOptions=[
            DomainValidationOption(DomainName=ctx.ref("Domain"), HostedZoneId=ctx.ref("HostedZoneId"))
        ],
        Tags=ctx.tags(),
    )


def _listeners(ctx: Context, load_balancer: LoadBalancer, target_group: TargetGroup) -> list[ELBListener]:
    forward = Action(Type="forward", TargetGroupArn=Ref(target_group))
    redirect = Action(
        Type="redirect", RedirectConfig=RedirectConfig(Protocol="HTTPS", Port="443", StatusCode="HTTP_301")
    )
    https = ELBListener(
        HTTPS_LISTENER,
        Condition=USE_HTTPS,
        LoadBalancerArn=Ref(load_balancer),
        Port=443,
        Protocol="HTTPS",
        SslPolicy=TLS_POLICY,
        Certificates=[
            ListenerCertificate(CertificateArn=If(HAS_CERTIFICATE, ctx.ref("CertificateArn"), Ref(CERTIFICATE)))
        ],
        DefaultActions=[forward],
        Tags=ctx.tags(),
    )
    http = ELBListener(
        HTTP_LISTENER,
        LoadBalancerArn=Ref(load_balancer),
        Port=80,
        Protocol="HTTP",
        DefaultActions=[If(USE_HTTPS, redirect, forward)],
        Tags=ctx.tags(),
        Metadata=checkov_skips(
            "CKV_AWS_2",
            "CKV_AWS_103",
        ),
    )
    return [https, http]


def _dns_record(ctx: Context, load_balancer: LoadBalancer) -> RecordSetType:
    return RecordSetType(
        DNS_RECORD,
        Condition=HAS_HOSTED_ZONE,
        HostedZoneId=ctx.ref("HostedZoneId"),
        Name=ctx.ref("Domain"),
        Type="A",
        AliasTarget=AliasTarget(
            DNSName=GetAtt(load_balancer, "DNSName"),
            HostedZoneId=GetAtt(load_balancer, "CanonicalHostedZoneID"),
            EvaluateTargetHealth=True,
        ),
    )


def add_load_balancer(t: Template, ctx: Context, *, security_group_id: GetAtt, roi: Instance) -> LoadBalancer:
    load_balancer = t.add_resource(_load_balancer(ctx, security_group_id))
    target_group = t.add_resource(_target_group(ctx, roi))
    t.add_resource(_certificate(ctx))
    for listener in _listeners(ctx, load_balancer, target_group):
        t.add_resource(listener)
    t.add_resource(_dns_record(ctx, load_balancer))
    return load_balancer
