"""UC9 point-cloud QC: one Distributed Map batch of PCD / LAS / LAZ files.

Event (the Map's ItemBatcher batch over ``manifests/<execution_id>/pointcloud.jsonl``)::

    {"Items": [{"key": "...", "size": 123, "etag": "...", "last_modified": "..."}, ...],
     "BatchInput": {"execution_id": "<execution name>"}}

Every item gets exactly one record at
``results/execution_id=<execution_id>/<url-quoted full source key>.json`` (``shared.batch``):
``SUCCEEDED`` with ``format`` (PCD, LAS, LAZ), ``encoding``, ``point_count``, ``nonfinite_points``,
``zero_points``, ``nan_ratio``, ``zero_ratio``, ``bounds`` (x/y/z min/max), ``density_per_m2``
(finite points per m² of the XY bounding box), ``intensity_min``/``intensity_max``,
``bytes_read``, ``range_requests``; or ``FAILED`` with ``error_type`` (``InvalidFileError`` for a
corrupt or truncated file, ``SourceChangedError``, ``NotFoundError``, ``AccessDeniedError``,
``InternalError``, ``BudgetExceededError``) and ``error_message``. Definitions: stats.py.

Files are read through ranged GETs with ``IfMatch`` (``shared.ranged``): memory is
``RANGE_BLOCK_BYTES`` x ``RANGE_MAX_BLOCKS`` plus one chunk of ``CHUNK_POINTS`` points, whatever
the file size.

Environment (validated at init; ``ConfigurationError`` names the variable):

=======================  ===================================================================
``ACCESS_POINT_ARN``     access point ARN the files are read through
``OUTPUT_BUCKET``        bucket for the result records
``RANGE_BLOCK_BYTES``    bytes per ranged GET, default 1 MiB (64 KiB - 64 MiB)
``RANGE_MAX_BLOCKS``     blocks kept in memory, default 4 (1-64)
``CHUNK_POINTS``         points decoded at a time, default 65536 (1024 - 4194304)
``MAX_BATCH_ITEMS``      most items accepted in one batch, default 1000
``DEADLINE_MARGIN_MS``   time kept back to write the last record, default 15000
=======================  ===================================================================

Returns counts only: ``{"execution_id", "processed", "succeeded", "failed", "skipped",
"bytes_read", "point_count"}`` (sums over the records this invocation wrote). Transient errors
(``ThrottlingError``, ``ServiceUnavailableError``, ``DeadlineExceededError``) are raised for the
Map's Retry; already-recorded items are skipped on the retry.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from qc import QcSettings, process_batch

from shared import aws, batch, config, observability, runtime
from shared.retry import Deadline

logger = Logger()
tracer = Tracer()
metrics = Metrics()

ACCESS_POINT = config.env_access_point("ACCESS_POINT_ARN")
OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
SETTINGS = QcSettings(
    block_bytes=config.env_int("RANGE_BLOCK_BYTES", 1024 * 1024, minimum=64 * 1024, maximum=64 * 1024 * 1024),
    max_blocks=config.env_int("RANGE_MAX_BLOCKS", 4, minimum=1, maximum=64),
    chunk_points=config.env_int("CHUNK_POINTS", 65536, minimum=1024, maximum=4 * 1024 * 1024),
)
MAX_BATCH_ITEMS = config.env_int("MAX_BATCH_ITEMS", 1000, minimum=1, maximum=100_000)
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 15_000, minimum=1_000, maximum=120_000)

S3 = runtime.register_client(aws.client("s3"))
runtime.prime(runtime.warm_client(S3, "get_object", Bucket=OUTPUT_BUCKET, Key="results/warm-up"))

_log_failure = observability.failure_warning(logger, "point cloud failed")


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    items = batch.parse_batch(event, max_items=MAX_BATCH_ITEMS)
    logger.append_keys(execution_id=items.execution_id)
    result = process_batch(
        S3,
        ACCESS_POINT.arn,
        items,
        output_bucket=OUTPUT_BUCKET,
        settings=SETTINGS,
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
        on_record=_log_failure,
    )
    return observability.batch_done(logger, metrics, result, items.execution_id)
