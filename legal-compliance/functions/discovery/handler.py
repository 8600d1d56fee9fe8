"""UC1 discovery handler: list the audited volume into a manifest, record its ONTAP context.

Event (the state machine passes the stack's settings)::

    {"execution_id": "<execution name>",
     "source": {"access_point_arn": "arn:aws:s3:...:accesspoint/<name>", "prefix": ""},
     "ontap": {"endpoint": "host[:port]", "secret_arn": "...", "ca_bundle": "/opt/ca.pem",
               "verify_tls": true, "read_timeout_seconds": 30, "svm_name": "...", "volume_name": "..."}}

See ``inventory.py`` for what is written; returns the manifest location and counts, the SVM UUID
and the volume's junction path. Runs in the VPC (it calls the ONTAP management endpoint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from inventory import discover

from shared import aws, config, discovery, observability, ontap, runtime
from shared.errors import InvalidInputError
from shared.events import validate_execution_id
from shared.retry import Deadline
from shared.s3ap import AccessPoint

logger = Logger()
tracer = Tracer()
metrics = Metrics()

OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 20_000, minimum=1_000, maximum=120_000)
PREFIX_PATTERN = discovery.SOURCE_PREFIX_PATTERN

S3 = runtime.register_client(aws.client("s3"))
ONTAP = ontap.clients_from_environment()
runtime.prime(runtime.warm_client(S3, "put_object", Bucket=OUTPUT_BUCKET, Key="context/warm-up", Body=b""))


@dataclass(frozen=True)
class Request:
    execution_id: str
    access_point: AccessPoint
    prefix: str
    ontap: ontap.OntapSettings


def parse_event(event: Any) -> Request:
    if not isinstance(event, dict):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    execution_id = validate_execution_id(event.get("execution_id"))
    source = event.get("source")
    if not isinstance(source, dict):
        raise InvalidInputError("event.source must be an object with access_point_arn and prefix", field="source")
    access_point = AccessPoint.parse(source.get("access_point_arn"))
    prefix = source.get("prefix", "")
    if not isinstance(prefix, str) or re.fullmatch(PREFIX_PATTERN, prefix) is None:
        raise InvalidInputError(f"source.prefix must match {PREFIX_PATTERN}", field="source.prefix")
    settings = ontap.OntapSettings.parse(event.get("ontap"))
    if not settings.svm_name or not settings.volume_name:
        raise InvalidInputError("ontap.svm_name and ontap.volume_name are required", field="ontap")
    return Request(execution_id, access_point, prefix, settings)


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(event)
    logger.append_keys(execution_id=request.execution_id)
    result = discover(
        S3,
        ONTAP.get(request.ontap),
        access_point_arn=request.access_point.arn,
        output_bucket=OUTPUT_BUCKET,
        execution_id=request.execution_id,
        prefix=request.prefix,
        svm_name=request.ontap.svm_name,
        volume_name=request.ontap.volume_name,
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
    )
    metrics.add_metric(name="FilesDiscovered", unit=MetricUnit.Count, value=result["object_count"])
    logger.info("manifest and ONTAP context written", extra=result)
    return result
