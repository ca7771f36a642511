"""What the stack modules share: the template's Parameters, condition names, names and tags.

Kept in one frozen object so that no stack module imports another (see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import AWSObject, If, Parameter, Ref, Sub, Tags

# Condition names, shared by the modules that put resources or values behind them.
HAS_CERTIFICATE = "HasCertificate"
HAS_HOSTED_ZONE = "HasHostedZone"
CREATE_CERTIFICATE = "CreateCertificate"
USE_HTTPS = "UseHttps"
ALLOW_SSH = "AllowSsh"
HAS_KEY_PAIR = "HasKeyPair"
DATABASE_MULTI_AZ = "DatabaseMultiAZ"
QUEUE_TLS = "QueueTransitEncryptionOn"

# The tag the master role's IAM conditions rely on; lowercase, as the app writes it on workers.
VALOHAI_TAG_KEY = "valohai"
VALOHAI_TAG_VALUE = "1"
ENVIRONMENT_TAG_KEY = "valohai:environment"

# Secrets outlive the stack like the data they unlock: a retained database snapshot and bucket are of
# no use without the keys the app encrypted them with (SECRET_KEY, REPO_PRIVATE_KEY_SECRET).
RETAIN_SECRET = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
SECRET_KMS_SKIP = (
    "CKV_AWS_149",
    "Encrypted with Secrets Manager's AWS managed key; IAM already limits reading to this installation's "
    "roles, and a customer managed key would add cost and a key policy to keep without narrowing that.",
)


def checkov_skips(*skips: tuple[str, str]) -> dict:
    """Resource Metadata that skips checkov checks which do not fit this product: (check id, why)."""
    return {"checkov": {"skip": [{"id": check, "comment": why} for check, why in skips]}}


def objects_arn(bucket: AWSObject) -> Sub:
    """The ARN of every object in a bucket of this template."""
    return Sub(f"${{{bucket.title}.Arn}}/*")


@dataclass(frozen=True)
class Context:
    """The Parameter objects by name, plus helpers for physical names and tags."""

    parameters: dict[str, Parameter]

    def ref(self, name: str) -> Ref:
        return Ref(self.parameters[name])

    def name(self, suffix: str) -> Sub:
        """A physical name `<prefix>-<suffix>`, so two installations can share one account."""
        return Sub(f"${{ResourcePrefix}}-{suffix}")

    def app_url(self) -> If:
        """https://Domain when the load balancer serves TLS, else http://Domain; also the CORS origin."""
        return If(USE_HTTPS, Sub("https://${Domain}"), Sub("http://${Domain}"))

    def tags(self, name: str | None = None) -> Tags:
        """The tags every taggable resource carries; `name` adds a Name tag `<prefix>-<name>`."""
        tags = Tags({VALOHAI_TAG_KEY: VALOHAI_TAG_VALUE, ENVIRONMENT_TAG_KEY: self.ref("EnvironmentName")})
        if name:
            tags += Tags(Name=self.name(name))
        return tags

    def tag_map(self) -> dict[str, object]:
        """The same tags as a plain map, for the few resource types (SSM) that take one."""
        return {VALOHAI_TAG_KEY: VALOHAI_TAG_VALUE, ENVIRONMENT_TAG_KEY: self.ref("EnvironmentName")}
