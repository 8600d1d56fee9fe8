"""UC1 discovery handler: list the audited volume into a manifest, record its ONTAP context.

Event: ``{"execution_id": "<execution name>"}``. See ``inventory.py`` for what is written; returns
the manifest location and counts, the SVM UUID and the volume's junction path. Runs in the VPC
(it calls the ONTAP management endpoint).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from inventory import discover

from shared import aws, config, ontap, runtime
from shared.errors import InvalidInputError
from shared.events import validate_execution_id
from shared.retry import Deadline

logger = Logger()
tracer = Tracer()
metrics = Metrics()

ACCESS_POINT = config.env_access_point("ACCESS_POINT_ARN")
OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
SOURCE_PREFIX = config.env_str("SOURCE_PREFIX", "", pattern=r"[A-Za-z0-9!_.*()/-]{0,512}")
SVM_NAME = config.env_str("ONTAP_SVM_NAME", pattern=r"[A-Za-z_][A-Za-z0-9_.-]{0,46}")
VOLUME_NAME = config.env_str("ONTAP_VOLUME_NAME", pattern=r"[A-Za-z_][A-Za-z0-9_]{0,202}")
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 20_000, minimum=1_000, maximum=120_000)

S3 = runtime.register_client(aws.client("s3"))
ONTAP = ontap.client_from_environment()
runtime.prime(runtime.warm_client(S3, "list_objects_v2", Bucket=ACCESS_POINT.arn, MaxKeys=1))


def parse_event(event: Any) -> str:
    if not isinstance(event, dict):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    return validate_execution_id(event.get("execution_id"))


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_id = parse_event(event)
    logger.append_keys(execution_id=execution_id)
    result = discover(
        S3,
        ONTAP,
        access_point_arn=ACCESS_POINT.arn,
        output_bucket=OUTPUT_BUCKET,
        execution_id=execution_id,
        prefix=SOURCE_PREFIX,
        svm_name=SVM_NAME,
        volume_name=VOLUME_NAME,
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
    )
    metrics.add_metric(name="FilesDiscovered", unit=MetricUnit.Count, value=result["object_count"])
    logger.info("manifest and ONTAP context written", extra=result)
    return result
