"""boto3 sessions and clients for the commands that talk to AWS, and their errors as one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ProfileNotFound
from botocore.parsers import ResponseParserError

# botocore's standard retry mode backs off and retries throttling and transient errors by itself. Tuned for a
# watcher: an unreachable endpoint is reported within seconds (3 attempts of at most 3 s each, plus backoff),
# not after botocore's default 60 s per attempt; a watcher's throttled polls wait and poll again on their own.
RETRIES = Config(connect_timeout=3, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3})


class AwsError(Exception):
    """An AWS call that failed; the message is one line for the user."""


class Clients:
    """One boto3 session's clients, made once each: a command that talks to several services shares
    the session's loaded service models instead of loading them per client."""

    def __init__(self, profile: str | None = None, region: str | None = None, endpoint_url: str | None = None):
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound as e:
            raise AwsError(str(e)) from None
        self.endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            try:
                self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url, config=RETRIES)
            except NoRegionError:
                raise AwsError(
                    "no region: give --region or set AWS_DEFAULT_REGION (or a region in your AWS profile)"
                ) from None
        return self._clients[service]


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn botocore's exceptions into AwsError with a message a user can act on."""
    try:
        yield
    except NoCredentialsError:
        raise AwsError("no AWS credentials: give --profile, or set AWS_PROFILE or AWS_ACCESS_KEY_ID") from None
    except ClientError as e:
        error = e.response.get("Error", {})
        raise AwsError(f"{e.operation_name}: {error.get('Code', 'Error')}: {error.get('Message', e)}") from None
    except ResponseParserError as e:
        # What a server that is not AWS (or a proxy's error page) gives back.
        raise AwsError(f"the endpoint answered with something that is not an AWS response: {str(e)[:200]}") from None
    except BotoCoreError as e:
        raise AwsError(str(e)) from None
