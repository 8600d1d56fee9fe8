"""shared.errors: botocore errors map to the typed hierarchy the state machines match on."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from shared import errors
from tests.support.aws_errors import client_error

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("SlowDown", 503, errors.ThrottlingError),
        ("ThrottlingException", 400, errors.ThrottlingError),
        ("TooManyRequestsException", 429, errors.ThrottlingError),
        ("Whatever", 429, errors.ThrottlingError),
        ("InternalError", 500, errors.ServiceUnavailableError),
        ("Unknown5xx", 502, errors.ServiceUnavailableError),
        ("AccessDenied", 403, errors.AccessDeniedError),
        ("NoSuchKey", 404, errors.NotFoundError),
        ("ValidationException", 400, errors.InvalidInputError),
        ("SomethingElse", 400, errors.PermanentError),
    ],
)
def test_client_errors_map_by_code_then_status(code: str, status: int, expected: type) -> None:
    mapped = errors.from_client_error(client_error(code, status), "GetObject")
    assert type(mapped) is expected
    assert mapped.details["code"] == code
    assert mapped.details["httpStatus"] == status
    assert mapped.transient is issubclass(expected, errors.TransientError)


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://s3.amazonaws.com"),
    ],
)
def test_connection_level_failures_are_transient(exc: Exception) -> None:
    mapped = errors.from_client_error(exc, "ListObjectsV2")
    assert isinstance(mapped, errors.ServiceUnavailableError)
    assert "ListObjectsV2" in mapped.message


def test_to_dict_carries_the_class_name_step_functions_matches() -> None:
    err = errors.InvalidFileError("truncated GDSII record", key="a/b.gds")
    assert err.to_dict() == {
        "errorType": "InvalidFileError",
        "errorMessage": "truncated GDSII record",
        "key": "a/b.gds",
    }


def test_transient_names_cover_every_transient_class() -> None:
    def subclasses(cls: type) -> set[type]:
        found: set[type] = set(cls.__subclasses__())
        for sub in list(found):
            found |= subclasses(sub)
        return found

    transient = {errors.TransientError} | subclasses(errors.TransientError)
    assert set(errors.TRANSIENT_ERROR_NAMES) == {c.__name__ for c in transient}
    permanent = subclasses(errors.PermanentError)
    assert not {c.__name__ for c in permanent} & set(errors.TRANSIENT_ERROR_NAMES)
