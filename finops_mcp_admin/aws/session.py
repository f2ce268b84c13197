"""AWS access for every command that talks to AWS: the options (--region, --profile,
--endpoint-url), a fail-fast client factory, and botocore errors mapped to AdminErrors.

boto3 and botocore are imported inside the functions, only when AWS is used (CLI start-up).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import BackendUnavailable, CheckFailed, InvalidInput, NotFound, PermissionDenied

T = TypeVar("T")

_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId",
           "SignatureDoesNotMatch", "ExpiredToken")
_THROTTLED = ("Throttling", "ThrottlingException", "RequestLimitExceeded")


@dataclass(frozen=True)
class AwsOptions:
    """--region, --profile, --endpoint-url (else the standard AWS_* environment)."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None


def client(service: str, opts: AwsOptions) -> Any:
    """A boto3 client that fails fast: short connect timeout, one retry. Adaptive retry mode: after
    a throttling answer the client also slows its own sending (a deploy polls events for minutes)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.Session(profile_name=opts.profile, region_name=opts.region)
        return session.client(service, endpoint_url=opts.endpoint_url, config=Config(
            connect_timeout=3, read_timeout=30, retries={"max_attempts": 2, "mode": "adaptive"}))
    except BotoCoreError as exc:
        raise InvalidInput(f"AWS configuration: {exc}") from None


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError (`ThrottlingException`, ...)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """botocore exceptions → one-line AdminErrors (never credentials)."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, ReadTimeoutError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.parsers import ResponseParserError

    try:
        yield
    except (BotoConnectionError, ReadTimeoutError) as exc:
        raise BackendUnavailable(f"{what}: cannot reach AWS: {exc}") from None
    except ResponseParserError:  # an HTML 5xx page from a proxy or a broken endpoint, after retries
        raise BackendUnavailable(f"{what}: the AWS endpoint answered with something that is not an "
                                 "AWS response (a server error page?)") from None
    except NoCredentialsError:
        raise PermissionDenied(f"{what}: no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)") from None
    except NoRegionError:
        raise InvalidInput(f"{what}: no AWS region (use --region or AWS_REGION)") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", str(exc))
        # ResourceNotFoundException (Secrets Manager, ACM, ECS...), ClusterNotFoundException, ...
        if "does not exist" in message or "NotFound" in code:
            raise NotFound(f"{what}: {message}") from None
        if code in _DENIED:
            raise PermissionDenied(f"{what}: {code}: {message}") from None
        if code in _THROTTLED:
            raise BackendUnavailable(f"{what}: AWS throttled the request: {message}") from None
        raise CheckFailed(f"{what}: {code}: {message}") from None


def guarded(stream: Iterable[T], what: str) -> Iterator[T]:
    """A lazy stream of AWS results whose botocore errors become AdminErrors as they happen."""
    with aws_errors(what):
        yield from stream
