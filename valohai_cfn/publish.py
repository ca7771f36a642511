"""Publishing: the template in S3 under a content-addressed key, and the console's quick-create link.

A link opens the exact template it was made for: the key is the template's SHA-256, so a changed
template gets a new key and old links keep opening the old bytes.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import quote, urlencode

from botocore.exceptions import ClientError

from valohai_cfn.render import TEMPLATE_NAME

STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
LAUNCH_BUTTON = "https://s3.amazonaws.com/cloudformation-examples/cloudformation-launch-stack.png"


class PublishError(Exception):
    """A link or upload that cannot be made; the message says why."""


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


def object_url(s3: Any, bucket: str, key: str, region: str, endpoint_url: str | None = None) -> str:
    """The object's HTTPS URL, as CloudFormation's TemplateURL takes it."""
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/{bucket}/{quote(key)}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{quote(key)}"


def check_stack_name(name: str) -> None:
    if not STACK_NAME.match(name):
        raise PublishError(
            f"{name!r} is not a valid stack name: a letter first, then letters, digits and hyphens, 128 at most"
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
    query: list[tuple[str, str]] = [("templateURL", template_url)]
    if stack_name:
        check_stack_name(stack_name)
        query.append(("stackName", stack_name))
    for name in template_parameters:  # the template's own order
        if name in parameters and str(template_parameters[name].get("NoEcho", "false")).lower() != "true":
            query.append((f"param_{name}", parameters[name]))
    # quote, not quote_plus: the console reads the fragment's query with decodeURIComponent, where + stays +.
    encoded = urlencode(query, quote_via=quote, safe="")
    return (
        f"https://{region}.console.aws.amazon.com/cloudformation/home?region={quote(region)}"
        f"#/stacks/create/review?{encoded}"
    )


def launch_button(url: str) -> str:
    """A Markdown "Launch stack" button for a README."""
    return f"[![Launch Stack]({LAUNCH_BUTTON})]({url})"
