"""shared.routing: the 4-way rule table, payload precedence and input validation."""

from __future__ import annotations

import pytest

from shared.errors import InvalidInputError, PermanentError
from shared.routing import (
    SYNC_PAYLOAD_LIMITS,
    InferencePath,
    InferenceType,
    parse_inference_type,
    route,
)

pytestmark = pytest.mark.unit

B, S, C, R = (
    InferencePath.BATCH_TRANSFORM,
    InferencePath.SERVERLESS_INFERENCE,
    InferencePath.INFERENCE_COMPONENTS,
    InferencePath.REALTIME_ENDPOINT,
)
MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("inference_type", "files", "threshold", "payload", "expected"),
    [
        ("none", 0, 1, 0, B),
        ("none", 10_000, 1, 0, B),
        ("serverless", 1, 100, 0, S),
        ("serverless", 10_000, 100, 0, S),  # the threshold only matters for provisioned
        ("components", 1, 100, 0, C),
        ("components", 10_000, 100, 0, C),
        ("provisioned", 99, 100, 0, R),
        ("provisioned", 100, 100, 0, B),  # at the threshold: batch
        ("provisioned", 101, 100, 0, B),
        ("provisioned", 0, 1, 0, R),
        ("provisioned", 1, 1, 0, B),
        # Payload precedence: above the synchronous limit of the chosen path -> batch.
        ("serverless", 1, 100, 4_000_000, S),
        ("serverless", 1, 100, 4_000_001, B),
        ("components", 1, 100, 6 * MiB, C),
        ("components", 1, 100, 6 * MiB + 1, B),
        ("provisioned", 1, 100, 6 * MiB, R),
        ("provisioned", 1, 100, 6 * MiB + 1, B),
        ("none", 1, 100, 10**12, B),
    ],
)
def test_rule_table(inference_type, files, threshold, payload, expected):
    assert route(inference_type, files, threshold, payload) is expected
    assert route(InferenceType(inference_type), files, threshold, payload_bytes=payload) is expected


def test_paths_are_the_state_machine_strings():
    assert {p.value for p in InferencePath} == {
        "BATCH_TRANSFORM",
        "SERVERLESS_INFERENCE",
        "INFERENCE_COMPONENTS",
        "REALTIME_ENDPOINT",
    }
    assert route("serverless", 1, 1) == "SERVERLESS_INFERENCE"


def test_documented_limits():
    # 6 MiB is the BodyBlob maximum of the SageMaker Runtime API model; serverless documents 4 MB.
    assert SYNC_PAYLOAD_LIMITS == {R: 6_291_456, C: 6_291_456, S: 4_000_000}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("batch", 1, 1), "inference_type"),
        (("Serverless", 1, 1), "inference_type"),
        ((" none", 1, 1), "inference_type"),
        (("", 1, 1), "inference_type"),
        ((None, 1, 1), "inference_type"),
        ((1, 1, 1), "inference_type"),
        (("none", -1, 1), "file_count"),
        (("none", 1.0, 1), "file_count"),
        (("none", "3", 1), "file_count"),
        (("none", True, 1), "file_count"),
        (("none", None, 1), "file_count"),
        (("provisioned", 1, 0), "batch_threshold"),
        (("provisioned", 1, -5), "batch_threshold"),
        (("provisioned", 1, False), "batch_threshold"),
        (("provisioned", 1, 2.5), "batch_threshold"),
        (("serverless", 1, 1, -1), "payload_bytes"),
        (("serverless", 1, 1, 1.5), "payload_bytes"),
        (("serverless", 1, 1, True), "payload_bytes"),
    ],
)
def test_invalid_inputs_raise_a_typed_error_naming_the_field(args, field):
    with pytest.raises(InvalidInputError) as info:
        route(*args)
    assert info.value.message.startswith(field)
    assert info.value.details["field"] == field
    assert isinstance(info.value, PermanentError)
    assert info.value.to_dict()["errorType"] == "InvalidInputError"


def test_parse_inference_type():
    assert parse_inference_type("components") is InferenceType.COMPONENTS
    assert parse_inference_type(InferenceType.NONE) is InferenceType.NONE
    with pytest.raises(InvalidInputError, match="one of none, serverless, components, provisioned"):
        parse_inference_type("PROVISIONED")
