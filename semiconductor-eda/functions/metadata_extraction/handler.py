"""UC6 metadata extraction: one Distributed Map batch of GDSII/OASIS files.

Event (from the Map's ItemBatcher)::

    {"Items": [{"key": "...", "size": 123, "etag": "...", "last_modified": "..."}, ...],
     "BatchInput": {"execution_id": "<execution name>"}}

Writes one result record per item (success or typed failure) and returns only counts. Raises
a transient error (throttling, 5xx, time budget) so the Map's Retry reruns the batch; files
already recorded by an earlier attempt are skipped.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from extraction import process_batch

from shared import aws, config, observability, runtime
from shared.batch import parse_batch
from shared.retry import Deadline

logger = Logger()
tracer = Tracer()
metrics = Metrics()

ACCESS_POINT = config.env_access_point("ACCESS_POINT_ARN")
OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
CHUNK_BYTES = config.env_int("RANGE_CHUNK_BYTES", 1024 * 1024, minimum=64 * 1024, maximum=64 * 1024 * 1024)
MAX_LISTED_NAMES = config.env_int("MAX_LISTED_NAMES", 1000, minimum=1, maximum=100_000)
MAX_BATCH_ITEMS = config.env_int("MAX_BATCH_ITEMS", 1000, minimum=1, maximum=100_000)
# Time kept back to write the record of the file in progress and return before the timeout.
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 15_000, minimum=1_000, maximum=120_000)

# Ranged reads, result lookups and writes: short timeouts and one retry (the Map's Retry reruns
# the batch after that), so the time one request may take - reserved twice before every read, for
# the read and the record after it - stays a small part of the 300 s budget: 2 x 20 s.
S3_ATTEMPTS, S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT = 2, 2.0, 5.0
S3_REQUEST_SECONDS = aws.request_seconds(
    max_attempts=S3_ATTEMPTS, connect_timeout=S3_CONNECT_TIMEOUT, read_timeout=S3_READ_TIMEOUT
)
S3 = runtime.register_client(
    aws.client("s3", max_attempts=S3_ATTEMPTS, connect_timeout=S3_CONNECT_TIMEOUT, read_timeout=S3_READ_TIMEOUT)
)
runtime.prime(runtime.warm_client(S3, "get_object", Bucket=OUTPUT_BUCKET, Key="results/warm-up"))


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = parse_batch(event, max_items=MAX_BATCH_ITEMS)
    execution_id = batch.execution_id
    logger.append_keys(execution_id=execution_id)
    deadline = Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS)
    result = process_batch(
        S3,
        access_point_arn=ACCESS_POINT.arn,
        output_bucket=OUTPUT_BUCKET,
        execution_id=execution_id,
        items=batch.items,
        deadline=deadline,
        chunk_bytes=CHUNK_BYTES,
        max_names=MAX_LISTED_NAMES,
        on_record=observability.failure_warning(logger, "file failed"),
        request_seconds=S3_REQUEST_SECONDS,
    )
    metrics.add_metric(name="BytesRead", unit=MetricUnit.Bytes, value=result.totals["bytes_read"])
    return observability.batch_done(logger, metrics, result, execution_id)
