"""The optional parts, checked by evaluating the rendered template's Conditions for both parameter values."""

from __future__ import annotations

from cfn import Evaluator, parameter_values, resolve, resources_of_type

CERTIFICATE_ARN = "arn:aws:acm:eu-west-1:111111111111:certificate/0f0e0d0c-aaaa-bbbb-cccc-000000000000"
HOSTED_ZONE = "Z0123456789ABCDEFGHIJ"


def app_url(resolved: dict) -> str:
    """The URL the app is set up with (its SSM setting), which the AppUrl output gives too."""
    assert resolved["Outputs"]["AppUrl"]["Value"] == {"Fn::GetAtt": ["Settingurl", "Value"]}
    values = parameter_values(resolved, {"Domain": "valohai.example.com"})
    return Evaluator(resolved, values)(resolved["Resources"]["Settingurl"]["Properties"]["Value"])


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
    assert app_url(resolved) == "http://valohai.example.com"


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
    assert app_url(resolved) == "https://valohai.example.com"


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


def test_key_pair_only_when_named(template):
    assert "KeyName" not in resolve(template)["Resources"]["RoiInstance"]["Properties"]
    props = resolve(template, {"KeyPairName": "ops"})["Resources"]["RoiInstance"]["Properties"]
    assert props["KeyName"] == {"Ref": "KeyPairName"}


def test_multi_az_follows_its_parameter(template):
    assert resolve(template, {"DatabaseMultiAZ": "true"})["Resources"]["Database"]["Properties"]["MultiAZ"] is True
    assert resolve(template, {"DatabaseMultiAZ": "false"})["Resources"]["Database"]["Properties"]["MultiAZ"] is False


def test_a_changed_certificate_changes_what_the_running_app_instance_reads(template):
    """The instance's update mechanism (its reconcile timer) reads the SSM settings: adding a certificate changes the
    URL there, without touching the instance, whose user data is the same for every installation."""
    without, with_certificate = resolve(template), resolve(template, {"CertificateArn": CERTIFICATE_ARN})
    assert app_url(without) != app_url(with_certificate)
    roi = without["Resources"]["RoiInstance"]
    assert roi == with_certificate["Resources"]["RoiInstance"]


def test_cors_allows_only_the_app_origin(template):
    def origins(overrides):
        bucket = resolve(template, overrides)["Resources"]["DataBucket"]["Properties"]
        (rule,) = bucket["CorsConfiguration"]["CorsRules"]
        # GET for previews and downloads (Valohai's installer allows it), PUT and POST for browser uploads.
        assert sorted(rule["AllowedMethods"]) == ["GET", "POST", "PUT"]
        return rule["AllowedOrigins"]

    assert origins({"CertificateArn": CERTIFICATE_ARN}) == [{"Fn::Sub": "https://${Domain}"}]
    assert origins({}) == [{"Fn::Sub": "http://${Domain}"}]
