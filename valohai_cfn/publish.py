"""Publishing: the template in S3 under a content-addressed key, and the console's quick-create link.

A link opens the exact template it was made for: the key is the template's SHA-256, so a changed
template gets a new key and old links keep opening the old bytes.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from botocore.exceptions import ClientError
from botocore.loaders import create_loader

from valohai_cfn.render import TEMPLATE_NAME

STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
LAUNCH_BUTTON = "https://s3.amazonaws.com/cloudformation-examples/cloudformation-launch-stack.png"


LOOPBACK = ("127.0.0.1", "localhost", "::1")
# The console of each partition that has one on the internet (botocore's partition data has no console hosts).
CONSOLE_HOSTS = {
    "aws": "{region}.console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


class PublishError(Exception):
    """A link or upload that cannot be made; the message says why."""


@functools.cache
def _partitions() -> list[dict]:
    return create_loader().load_data("endpoints")["partitions"]


def partition(region: str) -> dict:
    """The partition (aws, aws-cn, aws-us-gov, …) a region belongs to, from botocore's own data: a region
    it lists, or one its pattern admits (a region newer than botocore). PublishError for one that is not."""
    for p in _partitions():
        if region in p["regions"]:
            return p
    # The commercial partition's pattern is the loosest; the others' are tried first.
    for p in sorted(_partitions(), key=lambda p: p["partition"] == "aws"):
        if re.match(p["regionRegex"], region):
            return p
    raise PublishError(f"{region!r} is not an AWS region (for example us-east-1, eu-west-1, cn-north-1)")


def check_region(region: str) -> str:
    partition(region)
    return region


def console_url(region: str, path: str) -> str:
    """A CloudFormation console page (`path` after /cloudformation/home) in the region's partition."""
    host = CONSOLE_HOSTS.get(partition(region)["partition"])
    if host is None:
        raise PublishError(f"{region} is in a partition without a public console")
    return f"https://{host.format(region=region)}/cloudformation/home?region={quote(region)}{path}"


def change_set_url(region: str, stack_id: str, change_set_id: str) -> str:
    query = urlencode({"stackId": stack_id, "changeSetId": change_set_id}, quote_via=quote, safe="")
    return console_url(region, f"#/stacks/changesets/changes?{query}")


def template_key(body: bytes, prefix: str = "") -> str:
    digest = hashlib.sha256(body).hexdigest()
    key = f"{TEMPLATE_NAME}-{digest}.json"
    return f"{prefix.strip('/')}/{key}" if prefix.strip("/") else key


def upload(s3: Any, bucket: str, body: bytes, prefix: str = "") -> str:
    """Put the template in the bucket (once: the same bytes have the same key); returns the key."""
    key = template_key(body, prefix)
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return key


def bucket_region(s3: Any, bucket: str) -> str:
    """The region the bucket is in (GetBucketLocation: no LocationConstraint is us-east-1, and "EU", S3's
    oldest name, is eu-west-1)."""
    location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def region_warning(bucket: str, bucket_in: str, stack_region: str) -> str | None:
    """What to say when the template's bucket is not in the stack's region (PublishError across partitions:
    CloudFormation cannot read a bucket of another partition)."""
    if bucket_in == stack_region:
        return None
    if partition(bucket_in)["partition"] != partition(stack_region)["partition"]:
        raise PublishError(
            f"bucket {bucket} is in {bucket_in}, another partition than {stack_region}'s: CloudFormation there "
            "cannot read it; use a bucket in the stack's partition"
        )
    return (
        f"bucket {bucket} is in {bucket_in}, not in the stack's region {stack_region}: the template URL names "
        f"{bucket_in}'s S3 host"
    )


def object_url(s3: Any, bucket: str, key: str, region: str, endpoint_url: str | None = None) -> str:
    """The object's HTTPS URL, as CloudFormation's TemplateURL takes it."""
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/{bucket}/{quote(key)}"
    return f"https://{bucket}.s3.{region}.{partition(region)['dnsSuffix']}/{quote(key)}"


def check_stack_name(name: str) -> None:
    if not STACK_NAME.match(name):
        shown = name if len(name) <= 40 else name[:40] + "…"
        raise PublishError(
            f"{shown!r} is not a valid stack name: a letter first, then letters, digits and hyphens, 128 at most"
        )


def quick_create_url(
    *,
    region: str,
    template_url: str,
    stack_name: str | None,
    parameters: dict[str, str],
    template_parameters: dict[str, dict],
) -> str:
    """The console's quick-create link, every value URL-encoded, NoEcho parameters never prefilled."""
    unknown = sorted(set(parameters) - set(template_parameters))
    if unknown:
        raise PublishError(f"not parameters of the template: {', '.join(unknown)}")
    parsed = urlsplit(template_url)
    local = parsed.scheme == "http" and parsed.hostname in LOOPBACK  # the local AWS serves plain HTTP
    if (parsed.scheme != "https" and not local) or not parsed.hostname:
        raise PublishError(f"{template_url!r} is not an https:// URL: the console opens templates from S3 over HTTPS")
    query: list[tuple[str, str]] = [("templateURL", template_url)]
    if stack_name:
        check_stack_name(stack_name)
        query.append(("stackName", stack_name))
    for name in template_parameters:  # the template's own order
        if name in parameters and str(template_parameters[name].get("NoEcho", "false")).lower() != "true":
            query.append((f"param_{name}", parameters[name]))
    # quote, not quote_plus: the console reads the fragment's query with decodeURIComponent, where + stays +.
    encoded = urlencode(query, quote_via=quote, safe="")
    return console_url(region, f"#/stacks/create/review?{encoded}")


def launch_button(url: str) -> str:
    """A Markdown "Launch stack" button for a README."""
    return f"[![Launch Stack]({LAUNCH_BUTTON})]({url})"
