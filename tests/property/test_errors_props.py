"""shared.errors: every botocore failure maps to exactly one typed error, transient only when retrying can help."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import errors
from tests.support.aws_errors import client_error

pytestmark = pytest.mark.property

codes = st.one_of(
    st.sampled_from(["SlowDown", "ThrottlingException", "InternalError", "AccessDenied", "NoSuchKey",
                     "ValidationException", "ServiceUnavailable", "ExpiredToken", "NotFound", ""]),
    st.text(st.characters(min_codepoint=48, max_codepoint=122), max_size=24),
)


@given(codes, st.integers(100, 599))
def test_mapping_is_total_and_transient_only_for_throttling_or_server_errors(code: str, status: int) -> None:
    mapped = errors.from_client_error(client_error(code, status), "Op")
    assert isinstance(mapped, errors.TransientError | errors.PermanentError)
    assert mapped.transient == isinstance(mapped, errors.TransientError)
    assert (type(mapped).__name__ in errors.TRANSIENT_ERROR_NAMES) == mapped.transient
    if status >= 500 or status == 429:
        # The HTTP status alone is enough to say "try again", unless the code says otherwise.
        assert mapped.transient or code in {"AccessDenied", "NoSuchKey", "NotFound", "ValidationException"}
    if mapped.transient:
        # ... or the code is one AWS documents as throttling or unavailable (InternalServerError, ...).
        assert status >= 500 or status == 429 or code in errors._THROTTLING_CODES | errors._UNAVAILABLE_CODES


@given(codes, st.integers(100, 599), st.text(max_size=40))
def test_mapping_is_deterministic_and_keeps_the_reply(code: str, status: int, operation: str) -> None:
    first = errors.from_client_error(client_error(code, status), operation)
    second = errors.from_client_error(client_error(code, status), operation)
    assert type(first) is type(second)
    assert first.to_dict() == second.to_dict()
    assert first.to_dict()["errorType"] == type(first).__name__
    assert first.details == {"operation": operation, "code": code, "httpStatus": status}
