"""boto3 sessions and clients for the commands that talk to AWS, and their errors as one line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from xml.etree.ElementTree import ParseError

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConfigNotFound,
    ConfigParseError,
    InfiniteLoopConfigError,
    InvalidConfigError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.parsers import ResponseParserError

# botocore's standard retry mode backs off and retries throttling and transient errors by itself. Tuned for a
# watcher: an unreachable endpoint is reported within seconds (3 attempts of at most 3 s each, plus backoff),
# not after botocore's default 60 s per attempt; a watcher's throttled polls wait and poll again on their own.
RETRIES = Config(connect_timeout=3, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3})


class AwsError(Exception):
    """An AWS call that failed; the message is one line for the user."""


class AwsSetupError(AwsError):
    """No client can be made from what was given (no region or one that is not AWS's, an unknown profile, a key
    without its secret, no credentials, an AWS config file that cannot be read or loops): nothing was sent to
    AWS."""


NO_REGION = "no region: give --region or set AWS_DEFAULT_REGION (or a region in your AWS profile)"
NO_CREDENTIALS = "no AWS credentials: give --profile, or set AWS_PROFILE or AWS_ACCESS_KEY_ID"


def _setup_error(error: BotoCoreError) -> AwsSetupError:
    if isinstance(error, NoRegionError):
        return AwsSetupError(NO_REGION)
    if isinstance(error, NoCredentialsError):
        return AwsSetupError(NO_CREDENTIALS)
    if isinstance(error, PartialCredentialsError):
        return AwsSetupError(f"incomplete AWS credentials: {error} (an access key needs its secret)")
    if isinstance(error, (ConfigParseError, InfiniteLoopConfigError, InvalidConfigError, ConfigNotFound)):
        return AwsSetupError(f"the AWS configuration cannot be used: {_one_line(str(error))}")
    return AwsSetupError(f"{error}: see aws configure list-profiles")  # ProfileNotFound


SETUP_ERRORS = (
    NoRegionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ConfigParseError,
    InfiniteLoopConfigError,
    InvalidConfigError,
    ConfigNotFound,
)


def _checked_region(session: boto3.Session) -> None:
    """A region that is not AWS's, wherever it came from (AWS_DEFAULT_REGION, the profile; --region and
    AWS_REGION are checked as options): refused before any call, as --region is."""
    from valohai_cfn.publish import PublishError, check_region

    region = session.region_name
    if region:
        try:
            check_region(region)
        except PublishError as e:
            raise AwsSetupError(f"{e}: see AWS_DEFAULT_REGION, or the region of your AWS profile") from None


class Clients:
    """One boto3 session's clients, made once each: a command that talks to several services shares
    the session's loaded service models instead of loading them per client. Raises AwsSetupError when the
    session or a client cannot be made."""

    def __init__(self, profile: str | None = None, region: str | None = None, endpoint_url: str | None = None):
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
            _checked_region(self.session)
        except SETUP_ERRORS as e:
            raise _setup_error(e) from None
        self.endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            try:
                client = self.session.client(service, endpoint_url=self.endpoint_url, config=RETRIES)
            except SETUP_ERRORS as e:
                raise _setup_error(e) from None
            client.meta.events.register("before-parse", _refuse_what_is_not_aws)
            self._clients[service] = client
        return self._clients[service]

    def in_region(self, service: str, region: str) -> Any:
        """The same session's client of `service` in another region (IAM's names are the account's in every
        region: finding the stack that holds one asks each region's CloudFormation)."""
        try:
            client = self.session.client(service, region_name=region, endpoint_url=self.endpoint_url, config=RETRIES)
        except SETUP_ERRORS as e:
            raise _setup_error(e) from None
        client.meta.events.register("before-parse", _refuse_what_is_not_aws)
        return client


# The first element of an XML document, after its declaration and comments.
_XML_ROOT = re.compile(rb"\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*<([A-Za-z_][\w.:-]*)", re.DOTALL)


def _xml_roots(protocol: str, operation: str) -> tuple[bytes, ...] | None:
    """The root elements an AWS answer of this protocol has (None: any, as S3's REST answers have): the
    operation's response, or the protocol's error document."""
    if protocol == "query":
        return (f"{operation}Response".encode(), b"ErrorResponse")
    if protocol == "ec2":
        return (f"{operation}Response".encode(), b"Response")
    return None


def _refuse_what_is_not_aws(response_dict: dict, operation_model: Any = None, **_kwargs: Any) -> None:
    """An HTML page is never an AWS answer (a proxy's sign-in page, a wrong path), nor is an XML document
    without the root element AWS answers the operation with: refused before botocore's parser reads it and
    fails somewhere inside (a KeyError for a well-formed document that is not AWS's)."""
    body = response_dict.get("body") or b""
    body = body if isinstance(body, bytes) else b""
    status = response_dict.get("status_code")
    start = body[:200].lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html")):  # the body, not the header: S3's HEAD 404 says text/html
        raise AwsError(
            f"the endpoint answered with an HTML page (HTTP {status}), not an AWS response: is --endpoint-url right?"
        )
    root = _XML_ROOT.match(body[:4096])
    expected = (
        _xml_roots(operation_model.metadata.get("protocol", ""), operation_model.name) if operation_model else None
    )
    if root and expected and root.group(1).split(b":")[-1] not in expected:
        shown = root.group(1).decode("ascii", "replace")[:40]
        raise AwsError(
            f"the endpoint answered with an XML document <{shown}> (HTTP {status}), not an AWS response: is "
            "--endpoint-url right?"
        )


def _one_line(text: str, limit: int = 300) -> str:
    """A message as one line of reasonable length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore's exceptions into AwsError with a message a user can act on."""
    try:
        yield
    except SETUP_ERRORS as e:
        raise _setup_error(e) from None
    except ClientError as e:
        error = e.response.get("Error", {})
        code, message = error.get("Code", "Error"), str(error.get("Message", e))
        raise AwsError(_one_line(f"{e.operation_name}: {code}: {message}")) from None
    except (ResponseParserError, ParseError):
        # What a server that is not AWS (or a proxy's error page) gives back; its page is not printed. ParseError:
        # botocore reads some answers' XML itself, past its parser (S3 GetBucketLocation).
        raise AwsError(
            "the endpoint answered with something that is not an AWS response (is --endpoint-url right?)"
        ) from None
    except BotoCoreError as e:
        raise AwsError(_one_line(str(e))) from None
