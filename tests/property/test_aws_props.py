"""shared.aws properties: any valid setting reaches botocore; any error maps to a typed, chained one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import aws
from shared.errors import PipelineError, TransientError
from tests.support.aws_errors import client_error

pytestmark = pytest.mark.property

timeouts = st.one_of(st.integers(1, 900), st.floats(0.01, 900, allow_nan=False))


@given(st.integers(1, 50), timeouts, timeouts)
def test_valid_settings_reach_the_botocore_config(attempts, connect, read):
    cfg = aws.client_config(max_attempts=attempts, connect_timeout=connect, read_timeout=read)
    assert cfg.retries == {"mode": "standard", "total_max_attempts": attempts}
    assert (cfg.connect_timeout, cfg.read_timeout) == (connect, read)
    assert cfg.user_agent_extra == aws.USER_AGENT_EXTRA


@given(st.one_of(st.integers(max_value=0), st.booleans(), st.floats(allow_nan=True), st.text(max_size=3)))
def test_invalid_attempts_rejected(value):
    with pytest.raises(ValueError, match="max_attempts"):
        aws.client_config(max_attempts=value)


@given(st.one_of(st.floats(max_value=0), st.just(float("nan")), st.integers(max_value=0), st.booleans()))
def test_invalid_timeouts_rejected(value):
    with pytest.raises(ValueError, match="read_timeout"):
        aws.client_config(read_timeout=value)


codes = st.one_of(
    st.sampled_from(["SlowDown", "ThrottlingException", "InternalError", "AccessDenied", "NoSuchKey", "Weird"]),
    st.text(st.characters(min_codepoint=65, max_codepoint=122), max_size=20),
)


@given(codes, st.integers(100, 599), st.text(max_size=20))
def test_every_client_error_becomes_a_chained_typed_error(code, status, operation):
    error = client_error(code, status, "X")
    with pytest.raises(PipelineError) as info, aws.mapped_errors(operation):
        raise error
    mapped = info.value
    assert mapped.__cause__ is error
    assert mapped.details["operation"] == operation
    # Every 5xx and 429 reply is worth a retry; a 4xx reply with an unknown code is not.
    if status >= 500 or status == 429:
        assert isinstance(mapped, TransientError)
    if 400 <= status < 500 and status != 429 and code == "Weird":
        assert not isinstance(mapped, TransientError)
