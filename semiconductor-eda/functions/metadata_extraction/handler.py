"""UC6 metadata extraction: one Distributed Map batch of GDSII/OASIS files.

Event (from the Map's ItemBatcher)::

    {"Items": [{"key": "...", "size": 123, "etag": "...", "last_modified": "..."}, ...],
     "BatchInput": {"execution_id": "<execution name>"}}

Writes one result record per item (success or typed failure) and returns only counts. Raises
a transient error (throttling, 5xx, time budget) so the Map's Retry reruns the batch; files
already recorded by an earlier attempt are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from extraction import process_batch

from shared import aws, config, runtime
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

S3 = runtime.register_client(aws.client("s3"))
runtime.prime(runtime.warm_client(S3, "get_object", Bucket=OUTPUT_BUCKET, Key="results/warm-up"))


def _log_failure(record: Mapping[str, Any]) -> None:
    if record["status"] == "FAILED":
        logger.warning(
            "file failed",
            extra={"source_key": record["source_key"], "error_type": record["error_type"]},
        )


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
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
        on_record=_log_failure,
    )
    metrics.add_metric(name="FilesSucceeded", unit=MetricUnit.Count, value=result.succeeded)
    metrics.add_metric(name="FilesFailed", unit=MetricUnit.Count, value=result.failed)
    metrics.add_metric(name="BytesRead", unit=MetricUnit.Bytes, value=result.totals["bytes_read"])
    logger.info("batch done", extra=result.to_dict(execution_id))
    return result.to_dict(execution_id)
