"""The optional parts, checked by evaluating the rendered template's Conditions for both parameter values."""

from __future__ import annotations

from cfn import resolve, resources_of_type

CERTIFICATE_ARN = "arn:aws:acm:eu-west-1:111111111111:certificate/0f0e0d0c-aaaa-bbbb-cccc-000000000000"
HOSTED_ZONE = "Z0123456789ABCDEFGHIJ"


def _listeners_by_port(template: dict) -> dict[int, dict]:
    return {
        r["Properties"]["Port"]: r["Properties"]
        for r in resources_of_type(template, "AWS::ElasticLoadBalancingV2::Listener").values()
    }


def test_without_certificate_http_only(template):
    resolved = resolve(template, {"CertificateArn": "", "HostedZoneId": ""})
    listeners = _listeners_by_port(resolved)
    assert set(listeners) == {80}
    assert listeners[80]["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": {"Ref": "RoiTargetGroup"}}]
    assert "Certificate" not in resolved["Resources"]
    assert resolved["Outputs"]["AppUrl"]["Value"] == {"Fn::Sub": "http://${Domain}"}


def test_with_certificate_https_and_redirect(template):
    resolved = resolve(template, {"CertificateArn": CERTIFICATE_ARN})
    listeners = _listeners_by_port(resolved)
    assert set(listeners) == {80, 443}
    assert listeners[443]["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    assert listeners[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert listeners[443]["DefaultActions"][0]["Type"] == "forward"
    (redirect,) = listeners[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS" and redirect["RedirectConfig"]["Port"] == "443"
    assert "Certificate" not in resolved["Resources"], "a given certificate is used, none is created"
    assert resolved["Outputs"]["AppUrl"]["Value"] == {"Fn::Sub": "https://${Domain}"}


def test_hosted_zone_without_certificate_creates_a_dns_validated_one(template):
    resolved = resolve(template, {"HostedZoneId": HOSTED_ZONE})
    certificate = resolved["Resources"]["Certificate"]["Properties"]
    assert certificate["ValidationMethod"] == "DNS"
    assert certificate["DomainValidationOptions"][0]["HostedZoneId"] == {"Ref": "HostedZoneId"}
    assert _listeners_by_port(resolved)[443]["Certificates"] == [{"CertificateArn": {"Ref": "Certificate"}}]
    record = resolved["Resources"]["DnsRecord"]["Properties"]
    assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["LoadBalancer", "DNSName"]}


def test_no_dns_record_without_hosted_zone(template):
    assert "DnsRecord" not in resolve(template)["Resources"]


def test_ssh_rule_only_with_a_cidr(template):
    assert "MasterSshIngress" not in resolve(template)["Resources"]
    rule = resolve(template, {"SshIngressCidr": "203.0.113.10/32"})["Resources"]["MasterSshIngress"]["Properties"]
    assert rule["FromPort"] == 22 and rule["CidrIp"] == {"Ref": "SshIngressCidr"}


def test_key_pair_only_when_named(template):
    assert "KeyName" not in resolve(template)["Resources"]["RoiInstance"]["Properties"]
    props = resolve(template, {"KeyPairName": "ops"})["Resources"]["RoiInstance"]["Properties"]
    assert props["KeyName"] == {"Ref": "KeyPairName"}


def test_multi_az_follows_its_parameter(template):
    assert resolve(template, {"DatabaseMultiAZ": "true"})["Resources"]["Database"]["Properties"]["MultiAZ"] is True
    assert resolve(template, {"DatabaseMultiAZ": "false"})["Resources"]["Database"]["Properties"]["MultiAZ"] is False


def test_queue_tls_switches_the_broker_scheme(template):
    def scheme(value: str) -> str:
        user_data = resolve(template, {"QueueTransitEncryption": value})["Resources"]["RoiInstance"]["Properties"][
            "UserData"
        ]
        return user_data["Fn::Base64"]["Fn::Sub"][1]["QueueUrlScheme"]

    assert scheme("true") == "rediss"
    assert scheme("false") == "redis"


def test_cors_allows_only_the_app_origin(template):
    def origins(overrides):
        bucket = resolve(template, overrides)["Resources"]["DataBucket"]["Properties"]
        (rule,) = bucket["CorsConfiguration"]["CorsRules"]
        assert sorted(rule["AllowedMethods"]) == ["POST", "PUT"]
        return rule["AllowedOrigins"]

    assert origins({"CertificateArn": CERTIFICATE_ARN}) == [{"Fn::Sub": "https://${Domain}"}]
    assert origins({}) == [{"Fn::Sub": "http://${Domain}"}]
