"""The deterministic 4-way inference routing of UC9 (autonomous driving).

``route`` picks exactly one of four SageMaker paths from the stack's ``InferenceType`` parameter,
the number of files in the run and the size of the largest single request:

======================  ============================================  ==========================
inference_type          path                                          synchronous payload limit
======================  ============================================  ==========================
``none``                BATCH_TRANSFORM                               (asynchronous, none)
``serverless``          SERVERLESS_INFERENCE                          4 MB
``components``          INFERENCE_COMPONENTS                          6 MB (6 291 456 bytes)
``provisioned``         BATCH_TRANSFORM if file_count >= threshold,
                        REALTIME_ENDPOINT otherwise                   6 MB (6 291 456 bytes)
======================  ============================================  ==========================

Precedence: a payload larger than the synchronous limit of the chosen real-time path goes to
BATCH_TRANSFORM whatever the type (a synchronous call would be refused). The tables below are
the rules as data, so the UC9 state machine's Choice rules can be checked against them.

Limits: InvokeEndpoint (real-time endpoints, and inference components through
``InferenceComponentName``) accepts a body of at most 6 291 456 bytes (``BodyBlob`` max in the
SageMaker Runtime API model; "6 MB" in the docs). Serverless Inference documents "4 MB" for
request and response with no byte figure; the smaller, decimal reading (4 000 000 bytes) is used
so that no request the service might refuse is ever routed to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from shared.errors import InvalidInputError


class InferenceType(StrEnum):
    NONE = "none"
    SERVERLESS = "serverless"
    COMPONENTS = "components"
    PROVISIONED = "provisioned"


class InferencePath(StrEnum):
    BATCH_TRANSFORM = "BATCH_TRANSFORM"
    SERVERLESS_INFERENCE = "SERVERLESS_INFERENCE"
    INFERENCE_COMPONENTS = "INFERENCE_COMPONENTS"
    REALTIME_ENDPOINT = "REALTIME_ENDPOINT"


# The path of each type whose choice does not depend on the file count.
TYPE_PATHS: Mapping[InferenceType, InferencePath] = MappingProxyType(
    {
        InferenceType.NONE: InferencePath.BATCH_TRANSFORM,
        InferenceType.SERVERLESS: InferencePath.SERVERLESS_INFERENCE,
        InferenceType.COMPONENTS: InferencePath.INFERENCE_COMPONENTS,
    }
)
# ``provisioned``: file_count >= batch_threshold -> the first, otherwise the second.
PROVISIONED_AT_OR_ABOVE_THRESHOLD = InferencePath.BATCH_TRANSFORM
PROVISIONED_BELOW_THRESHOLD = InferencePath.REALTIME_ENDPOINT
# Largest request body (bytes) each synchronous path accepts; above it the run goes to
# PAYLOAD_FALLBACK. Batch Transform has no entry: it has no synchronous limit.
SYNC_PAYLOAD_LIMITS: Mapping[InferencePath, int] = MappingProxyType(
    {
        InferencePath.SERVERLESS_INFERENCE: 4_000_000,
        InferencePath.INFERENCE_COMPONENTS: 6_291_456,
        InferencePath.REALTIME_ENDPOINT: 6_291_456,
    }
)
PAYLOAD_FALLBACK = InferencePath.BATCH_TRANSFORM


def parse_inference_type(value: object) -> InferenceType:
    """The ``InferenceType`` named by ``value`` (exactly one of the lowercase names)."""
    if isinstance(value, InferenceType):
        return value
    if isinstance(value, str):
        try:
            return InferenceType(value)
        except ValueError:
            pass
    allowed = ", ".join(t.value for t in InferenceType)
    raise InvalidInputError(
        f"inference_type must be one of {allowed}; got {value!r}", field="inference_type", value=repr(value)
    )


def _count(name: str, value: object, minimum: int) -> int:
    # bool is an int in Python, but True files or a threshold of False is an input error.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer >= {minimum}; got {value!r}", field=name, value=repr(value))
    return value


def route(
    inference_type: InferenceType | str,
    file_count: int,
    batch_threshold: int,
    payload_bytes: int = 0,
) -> InferencePath:
    """Choose the inference path; raise ``InvalidInputError`` for any invalid input.

    ``payload_bytes`` is the size of the largest single request the run would send
    synchronously (0 when unknown or irrelevant).
    """
    kind = parse_inference_type(inference_type)
    files = _count("file_count", file_count, 0)
    threshold = _count("batch_threshold", batch_threshold, 1)
    payload = _count("payload_bytes", payload_bytes, 0)
    if kind is InferenceType.PROVISIONED:
        path = PROVISIONED_AT_OR_ABOVE_THRESHOLD if files >= threshold else PROVISIONED_BELOW_THRESHOLD
    else:
        path = TYPE_PATHS[kind]
    limit = SYNC_PAYLOAD_LIMITS.get(path)
    if limit is not None and payload > limit:
        return PAYLOAD_FALLBACK
    return path
