"""boto3 sessions and clients for the commands that talk to AWS, and their errors as one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
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
    """No client can be made from what was given (no region, an unknown profile, a key without its secret, no
    credentials): nothing was sent to AWS."""


NO_REGION = "no region: give --region or set AWS_DEFAULT_REGION (or a region in your AWS profile)"
NO_CREDENTIALS = "no AWS credentials: give --profile, or set AWS_PROFILE or AWS_ACCESS_KEY_ID"


def _setup_error(error: BotoCoreError) -> AwsSetupError:
    if isinstance(error, NoRegionError):
        return AwsSetupError(NO_REGION)
    if isinstance(error, NoCredentialsError):
        return AwsSetupError(NO_CREDENTIALS)
    if isinstance(error, PartialCredentialsError):
        return AwsSetupError(f"incomplete AWS credentials: {error} (an access key needs its secret)")
    return AwsSetupError(f"{error}: see aws configure list-profiles")  # ProfileNotFound


SETUP_ERRORS = (NoRegionError, NoCredentialsError, PartialCredentialsError, ProfileNotFound)


class Clients:
    """One boto3 session's clients, made once each: a command that talks to several services shares
    the session's loaded service models instead of loading them per client. Raises AwsSetupError when the
    session or a client cannot be made."""

    def __init__(self, profile: str | None = None, region: str | None = None, endpoint_url: str | None = None):
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
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
            client.meta.events.register("before-parse", _refuse_html)
            self._clients[service] = client
        return self._clients[service]

    def in_region(self, service: str, region: str) -> Any:
        """The same session's client of `service` in another region (IAM's names are the account's in every
        region: finding the stack that holds one asks each region's CloudFormation)."""
        try:
            client = self.session.client(service, region_name=region, endpoint_url=self.endpoint_url, config=RETRIES)
        except SETUP_ERRORS as e:
            raise _setup_error(e) from None
        client.meta.events.register("before-parse", _refuse_html)
        return client


def _refuse_html(response_dict: dict, **_kwargs: Any) -> None:
    """An HTML page is never an AWS answer (a proxy's sign-in page, a wrong path): refused before botocore's
    parser reads it as XML and fails somewhere inside."""
    body = response_dict.get("body") or b""
    start = body[:200].lstrip().lower() if isinstance(body, bytes) else b""
    if start.startswith((b"<!doctype html", b"<html")):  # the body, not the header: S3's HEAD 404 says text/html
        raise AwsError(
            f"the endpoint answered with an HTML page (HTTP {response_dict.get('status_code')}), not an AWS "
            "response: is --endpoint-url right?"
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
    except ResponseParserError:
        # What a server that is not AWS (or a proxy's error page) gives back; its page is not printed.
        raise AwsError(
            "the endpoint answered with something that is not an AWS response (is --endpoint-url right?)"
        ) from None
    except BotoCoreError as e:
        raise AwsError(_one_line(str(e))) from None
