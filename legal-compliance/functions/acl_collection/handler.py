"""UC1 ACL collection handler: one Distributed Map batch of files, their NTFS ACLs from ONTAP.

Event (from the Map's ItemBatcher)::

    {"Items": [{"key": "...", "size": 123, "etag": "...", "last_modified": "..."}, ...],
     "BatchInput": {"execution_id": "<execution name>", "svm_uuid": "...", "volume_path": "/vol",
                    "ontap": {"endpoint": "host[:port]", "secret_arn": "...", ...}}}

Writes one JSONL object of records for the batch (``collection.py``) and returns the counts. Runs
in the VPC (it calls the ONTAP management endpoint).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from collection import collect, parse_scope

from shared import aws, config, observability, ontap, runtime
from shared.batch import parse_batch
from shared.retry import Deadline

logger = Logger()
tracer = Tracer()
metrics = Metrics()

OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
MAX_BATCH_ITEMS = config.env_int("MAX_BATCH_ITEMS", 1000, minimum=1, maximum=10_000)
# Time kept back to write the batch's records and return before the timeout.
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 15_000, minimum=1_000, maximum=120_000)

S3 = runtime.register_client(aws.client("s3"))
ONTAP = ontap.clients_from_environment()
runtime.prime(runtime.warm_client(S3, "put_object", Bucket=OUTPUT_BUCKET, Key="results/warm-up", Body=b""))
_log_failure = observability.failure_warning(logger, "ACL not collected")


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = parse_batch(event, max_items=MAX_BATCH_ITEMS)
    scope = parse_scope(batch)
    logger.append_keys(execution_id=batch.execution_id)
    result = collect(
        S3,
        ONTAP.get(scope.ontap),
        output_bucket=OUTPUT_BUCKET,
        batch=batch,
        scope=scope,
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
        on_record=_log_failure,
    )
    return observability.batch_done(logger, metrics, result, batch.execution_id)
