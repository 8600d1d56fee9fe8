"""boto3 clients configured the same way in every function, and the botocore errors to map.

Handlers create their clients at module scope (SnapStart snapshots them with the rest of init)::

    S3 = aws.client("s3")

Retries: botocore's ``standard`` mode (exponential backoff with jitter, retry quota, the
throttling and transient error codes AWS documents) with an explicit total attempt count.
Timeouts are explicit so a stalled connection cannot consume the whole Lambda budget.

Endpoints: nothing here chooses an endpoint. boto3 itself honours ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` (used for local emulation); an explicit ``endpoint_url`` argument
would override that, so there is none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore import exceptions as botocore_errors
from botocore.config import Config

from shared.errors import from_client_error

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_rekognition import RekognitionClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_stepfunctions import SFNClient

USER_AGENT_EXTRA = "fsxn-s3ap-pipelines/0.1.0"

# Errors raised without an HTTP reply from the service (connection refused or reset, timeouts, a
# body cut short or failing its checksum): all worth retrying.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    botocore_errors.ConnectionError,
    botocore_errors.HTTPClientError,
    botocore_errors.IncompleteReadError,
    botocore_errors.ChecksumError,
)
# Everything an AWS call can raise that ``errors.from_client_error`` knows how to classify.
# Deliberately not BotoCoreError as a whole: ParamValidationError, NoRegionError and the like are
# programming or configuration errors, and must not be turned into a retryable ServiceUnavailable.
AWS_ERRORS: tuple[type[Exception], ...] = (botocore_errors.ClientError, *TRANSPORT_ERRORS)


def client_config(*, max_attempts: int = 5, connect_timeout: float = 5, read_timeout: float = 60) -> Config:
    """The botocore ``Config`` every client uses; ``max_attempts`` counts the first attempt."""
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
    for label, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")
    return Config(
        # total_max_attempts includes the first request; botocore's max_attempts would not.
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tcp_keepalive=True,
        user_agent_extra=USER_AGENT_EXTRA,
    )


# botocore's standard retry mode: the delay after attempt n (1-based) is at most
# min(2 ** (n - 1), 20) s for throttling errors (less for others), raised by an x-amz-retry-after
# header to at most 5 s more.
_BACKOFF_CAP_SECONDS = 20.0
_RETRY_AFTER_EXTRA_SECONDS = 5.0


def request_seconds(*, max_attempts: int = 5, connect_timeout: float = 5, read_timeout: float = 60) -> float:
    """The longest one API call of a client made with these settings may take before it fails:
    every attempt connecting and then waiting out the read timeout, plus the longest backoff
    between attempts. Reserve this before a request that must not run into the Lambda timeout
    (it assumes a reply body does not stall for a whole read timeout more than once)."""
    client_config(max_attempts=max_attempts, connect_timeout=connect_timeout, read_timeout=read_timeout)  # checks
    backoff = sum(
        min(2.0 ** (n - 1), _BACKOFF_CAP_SECONDS) + _RETRY_AFTER_EXTRA_SECONDS for n in range(1, max_attempts)
    )
    return max_attempts * (connect_timeout + read_timeout) + backoff


@overload
def client(
    service_name: Literal["s3"],
    *,
    max_attempts: int = ...,
    connect_timeout: float = ...,
    read_timeout: float = ...,
    session: boto3.Session | None = ...,
) -> S3Client: ...
@overload
def client(
    service_name: Literal["athena"],
    *,
    max_attempts: int = ...,
    connect_timeout: float = ...,
    read_timeout: float = ...,
    session: boto3.Session | None = ...,
) -> AthenaClient: ...
@overload
def client(
    service_name: Literal["sns"],
    *,
    max_attempts: int = ...,
    connect_timeout: float = ...,
    read_timeout: float = ...,
    session: boto3.Session | None = ...,
) -> SNSClient: ...
@overload
def client(
    service_name: Literal["bedrock-runtime"],
    *,
    max_attempts: int = ...,
    connect_timeout: float = ...,
    read_timeout: float = ...,
    session: boto3.Session | None = ...,
) -> BedrockRuntimeClient: ...
@overload
def client(
    service_name: Literal["stepfunctions"],
    *,
    max_attempts: int = ...,
    connect_timeout: float = ...,
    read_timeout: float = ...,
    session: boto3.Session | None = ...,
) -> SFNClient: ...
@overload
def client(
    service_name: Literal["sagemaker-runtime"],
    *,
    max_attempts: int = ...,
    connect_timeout: float = ...,
    read_timeout: float = ...,
    session: boto3.Session | None = ...,
) -> SageMakerRuntimeClient: ...
@overload
def client(
    service_name: Literal["rekognition"],
    *,
    max_attempts: int = ...,
    connect_timeout: float = ...,
    read_timeout: float = ...,
    session: boto3.Session | None = ...,
) -> RekognitionClient: ...
@overload
def client(
    service_name: str,
    *,
    max_attempts: int = ...,
    connect_timeout: float = ...,
    read_timeout: float = ...,
    session: boto3.Session | None = ...,
) -> Any: ...
def client(
    service_name: str,
    *,
    max_attempts: int = 5,
    connect_timeout: float = 5,
    read_timeout: float = 60,
    session: boto3.Session | None = None,
) -> Any:
    """A boto3 client with the project's retry, timeout and user agent configuration.

    ``session`` lets tests (or a caller with its own credentials) inject a ``boto3.Session``;
    by default boto3's default session is used, which reads the Lambda's environment.
    Sagemaker invocations that may run longer than 60 s need a larger ``read_timeout``.
    """
    config = client_config(max_attempts=max_attempts, connect_timeout=connect_timeout, read_timeout=read_timeout)
    if session is None:
        return boto3.client(service_name, config=config)
    return session.client(service_name, config=config)


@contextmanager
def mapped_errors(operation: str) -> Iterator[None]:
    """Re-raise botocore errors from the block as typed ``shared.errors`` (chained with ``from``).

    ::

        with aws.mapped_errors("GetObject"):
            body = s3.get_object(Bucket=ap.arn, Key=key)["Body"].read()
    """
    try:
        yield
    except AWS_ERRORS as e:
        raise from_client_error(e, operation) from e
