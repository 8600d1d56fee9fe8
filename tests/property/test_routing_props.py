"""shared.routing properties: total, deterministic, exactly one path, precedence, invalid inputs rejected."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import InvalidInputError
from shared.routing import (
    PAYLOAD_FALLBACK,
    PROVISIONED_AT_OR_ABOVE_THRESHOLD,
    PROVISIONED_BELOW_THRESHOLD,
    SYNC_PAYLOAD_LIMITS,
    TYPE_PATHS,
    InferencePath,
    InferenceType,
    route,
)

pytestmark = pytest.mark.property

types = st.sampled_from(list(InferenceType))
counts = st.integers(0, 10**9)
thresholds = st.integers(1, 10**9)
# Concentrate payloads around the limits, where precedence matters.
payloads = st.one_of(
    st.integers(0, 10**10),
    st.sampled_from(sorted(set(SYNC_PAYLOAD_LIMITS.values()))).flatmap(lambda n: st.integers(n - 2, n + 2)),
)


def reference(kind: InferenceType, files: int, threshold: int, payload: int) -> InferencePath:
    """The issue's rules, written independently of the module's tables."""
    if kind == "none":
        return InferencePath.BATCH_TRANSFORM
    if kind == "serverless":
        return InferencePath.BATCH_TRANSFORM if payload > 4_000_000 else InferencePath.SERVERLESS_INFERENCE
    if kind == "components":
        return InferencePath.BATCH_TRANSFORM if payload > 6 * 1024 * 1024 else InferencePath.INFERENCE_COMPONENTS
    if files >= threshold or payload > 6 * 1024 * 1024:
        return InferencePath.BATCH_TRANSFORM
    return InferencePath.REALTIME_ENDPOINT


@given(types, counts, thresholds, payloads)
def test_total_deterministic_exactly_one_path(kind, files, threshold, payload):
    first = route(kind, files, threshold, payload)
    assert isinstance(first, InferencePath)  # exactly one of the four members
    assert route(kind.value, files, threshold, payload) is first  # string or enum: same answer
    assert route(kind, files, threshold, payload) is first  # deterministic
    assert first is reference(kind, files, threshold, payload)


@given(types, counts, thresholds, payloads)
def test_rule_tables_describe_route(kind, files, threshold, payload):
    """The exported tables, applied in the documented order, give the same answer (for the UC9 Choice rules)."""
    if kind is InferenceType.PROVISIONED:
        path = PROVISIONED_AT_OR_ABOVE_THRESHOLD if files >= threshold else PROVISIONED_BELOW_THRESHOLD
    else:
        path = TYPE_PATHS[kind]
    if payload > SYNC_PAYLOAD_LIMITS.get(path, payload):
        path = PAYLOAD_FALLBACK
    assert route(kind, files, threshold, payload) is path


@given(types, counts, thresholds, st.integers(0, 10**10))
def test_payload_over_the_limit_takes_precedence_over_the_type(kind, files, threshold, excess):
    for path, limit in SYNC_PAYLOAD_LIMITS.items():
        if route(kind, files, threshold, 0) is path:
            assert route(kind, files, threshold, limit) is path
            assert route(kind, files, threshold, limit + 1 + excess) is InferencePath.BATCH_TRANSFORM


@given(thresholds, st.integers(0, SYNC_PAYLOAD_LIMITS[InferencePath.REALTIME_ENDPOINT]))
def test_threshold_boundary(threshold, payload):
    assert route("provisioned", threshold, threshold, payload) is InferencePath.BATCH_TRANSFORM
    assert route("provisioned", threshold - 1, threshold, payload) is InferencePath.REALTIME_ENDPOINT


@given(types, counts, counts, thresholds, payloads)
def test_more_files_never_leave_batch(kind, files, more, threshold, payload):
    if route(kind, files, threshold, payload) is InferencePath.BATCH_TRANSFORM:
        assert route(kind, files + more, threshold, payload) is InferencePath.BATCH_TRANSFORM


@given(types, counts, thresholds)
def test_file_count_only_matters_for_provisioned(kind, files, threshold):
    if kind is not InferenceType.PROVISIONED:
        assert route(kind, files, threshold) is route(kind, 0, 1)


not_a_type = st.one_of(
    st.text(max_size=20).filter(lambda s: s not in {t.value for t in InferenceType}),
    st.none(),
    st.integers(),
    st.floats(),
    st.booleans(),
)
not_a_count = st.one_of(
    st.integers(max_value=-1), st.floats(), st.booleans(), st.text(max_size=5), st.none(), st.lists(st.integers())
)


@given(not_a_type, counts, thresholds)
def test_unknown_types_rejected(value, files, threshold):
    with pytest.raises(InvalidInputError, match="inference_type"):
        route(value, files, threshold)


@given(types, not_a_count, thresholds)
def test_invalid_file_counts_rejected(kind, value, threshold):
    with pytest.raises(InvalidInputError, match="file_count"):
        route(kind, value, threshold)


@given(types, counts, st.one_of(not_a_count, st.just(0)))
def test_invalid_thresholds_rejected(kind, files, value):
    with pytest.raises(InvalidInputError, match="batch_threshold"):
        route(kind, files, value)


@given(types, counts, thresholds, not_a_count)
def test_invalid_payloads_rejected(kind, files, threshold, value):
    with pytest.raises(InvalidInputError, match="payload_bytes"):
        route(kind, files, threshold, value)
