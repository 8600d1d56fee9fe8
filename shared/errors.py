"""Typed exceptions shared by every function.

Step Functions matches a Lambda error by the exception's class name (``errorType``), never by its
base classes, so the state machines name the concrete classes: every Retry lists
``TRANSIENT_ERROR_NAMES`` and the Catch paths name the permanent ones they handle. A test checks
that each state machine's Retry lists exactly these names.

Nothing in the project catches one of these and returns a success payload.
"""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """Base of every error a handler raises on purpose."""

    transient = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form, used when an item failure is recorded in a result."""
        return {"errorType": type(self).__name__, "errorMessage": self.message, **self.details}


class TransientError(PipelineError):
    """A failure that may succeed when retried (throttling, 5xx, time budget exhausted)."""

    transient = True


class ThrottlingError(TransientError):
    """The service throttled the request (ThrottlingException, SlowDown, 429, ...)."""


class ServiceUnavailableError(TransientError):
    """A 5xx reply, a connection failure or a read timeout."""


class DeadlineExceededError(TransientError):
    """The Lambda time budget ran out before the work finished; retrying resumes it."""


class PermanentError(PipelineError):
    """A failure that retrying cannot fix."""


class ConfigurationError(PermanentError):
    """An environment variable is missing or invalid."""


class InvalidInputError(PermanentError):
    """The event does not have the shape or values the handler requires."""


class InvalidFileError(PermanentError):
    """A source file is corrupt, truncated or not of the format it claims (a per-item failure)."""


class AccessDeniedError(PermanentError):
    """IAM or a resource policy refused the request."""


class NotFoundError(PermanentError):
    """The bucket, key, access point or other resource does not exist."""


class QueryFailedError(PermanentError):
    """An Athena query ended FAILED or CANCELLED."""


class QueryTimeoutError(PermanentError):
    """An Athena query did not finish within the Lambda's time budget; it was stopped."""


class ModelInvocationError(PermanentError):
    """A model (Bedrock, SageMaker, Rekognition) rejected the request or returned an unusable reply."""


class TooManyFailuresError(PermanentError):
    """More items failed than the configured tolerance allows."""


class AuthenticationError(PermanentError):
    """A service refused the credentials (HTTP 401), also after they were fetched again."""


class CertificateVerificationError(PermanentError):
    """The server's TLS certificate did not verify against the configured CA bundle."""


class CapacityUnavailableError(PermanentError):
    """A scale-to-zero endpoint had no capacity (no instance or no copy) within the time budget.

    Permanent for the invocation that raises it: waiting longer is the state machine's call (UC9
    falls back to Batch Transform), not a Lambda retry's.
    """


class PayloadTooLargeError(PermanentError):
    """A request body exceeds the synchronous limit of the endpoint it was meant for."""


class SourceChangedError(PermanentError):
    """A source object changed after it was listed (its ETag no longer matches; S3 answered 412).

    A per-item failure: the listing the run works from is stale for that object.
    """


class BudgetExceededError(PermanentError):
    """One item cannot be finished within a whole invocation's time budget; retrying cannot help."""


class InvalidRecordError(PermanentError):
    """A result record cannot be written as built (a non-finite number, a value JSON cannot hold,
    too large)."""


class InternalError(PermanentError):
    """An unexpected exception inside one item's work (a bug); the record names its type."""


TRANSIENT_ERRORS: tuple[type[TransientError], ...] = (
    TransientError,
    ThrottlingError,
    ServiceUnavailableError,
    DeadlineExceededError,
)
TRANSIENT_ERROR_NAMES: tuple[str, ...] = tuple(cls.__name__ for cls in TRANSIENT_ERRORS)

# Error names the Lambda service itself raises that are worth retrying (AWS documents these for
# the lambda:invoke integration).
LAMBDA_SERVICE_TRANSIENT_ERRORS: tuple[str, ...] = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)

_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "BandwidthLimitExceeded",
        "LimitExceededException",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "ModelNotReadyException",
    }
)
_ACCESS_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"})
_NOT_FOUND_CODES = frozenset(
    {
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchAccessPoint",
        "NotFound",
        "ResourceNotFoundException",
        "EntityNotFoundException",
        "404",
    }
)
_INVALID_CODES = frozenset({"ValidationException", "InvalidRequestException", "InvalidParameterValue"})


def from_client_error(error: Exception, operation: str) -> PipelineError:
    """Map a botocore ``ClientError`` (or connection-level error) to a typed error.

    The caller raises the result ``from`` the original so the chain is kept::

        except ClientError as e:
            raise from_client_error(e, "GetObject") from e
    """
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        # EndpointConnectionError, ReadTimeoutError, ConnectionClosedError, ...: no HTTP reply.
        return ServiceUnavailableError(f"{operation}: {type(error).__name__}: {error}", operation=operation)
    err = response.get("Error", {})
    code = str(err.get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = f"{operation}: {code or status}: {err.get('Message', '')}".rstrip(": ")
    details = {"operation": operation, "code": code, "httpStatus": status}
    if code in _THROTTLING_CODES or status == 429:
        return ThrottlingError(message, **details)
    if code in _UNAVAILABLE_CODES or status >= 500:
        return ServiceUnavailableError(message, **details)
    if code in _ACCESS_CODES or status == 403:
        return AccessDeniedError(message, **details)
    if code in _NOT_FOUND_CODES or status == 404:
        return NotFoundError(message, **details)
    if code in _INVALID_CODES:
        return InvalidInputError(message, **details)
    return PermanentError(message, **details)
