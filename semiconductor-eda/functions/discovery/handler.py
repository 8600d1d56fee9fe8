"""UC6 discovery: list the layout files behind the FSx for ONTAP S3 access point into a manifest.

Event: ``{"execution_id": "<execution name>"}``. The listing is streamed page by page into
``manifests/<execution_id>/manifest.jsonl`` in the output bucket (one ``ObjectInfo`` per line),
so memory and the returned payload are the same for ten objects or ten million. Returns the
manifest location and counts only; the Distributed Map reads the manifest itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import aws, config, discovery, observability, runtime
from shared.discovery import parse_event
from shared.retry import Deadline

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger()
tracer = Tracer()
metrics = Metrics()

ACCESS_POINT = config.env_access_point("ACCESS_POINT_ARN")
OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
SOURCE_PREFIX = config.env_str("SOURCE_PREFIX", "", pattern=discovery.SOURCE_PREFIX_PATTERN)
FILE_SUFFIXES = discovery.validate_suffixes(
    "FILE_SUFFIXES", config.env_list("FILE_SUFFIXES", (".gds", ".gds2", ".oas", ".oasis"))
)
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 20_000, minimum=1_000, maximum=120_000)

S3 = runtime.register_client(aws.client("s3"))
runtime.prime(runtime.warm_client(S3, "list_objects_v2", Bucket=ACCESS_POINT.arn, MaxKeys=1))


def manifest_key(execution_id: str) -> str:
    return discovery.manifest_key(execution_id)


def discover(
    s3: S3Client,
    *,
    access_point_arn: str,
    output_bucket: str,
    execution_id: str,
    prefix: str,
    suffixes: Iterable[str],
    deadline: Deadline,
) -> dict[str, Any]:
    """Stream the filtered listing into the manifest; return its location and counts."""
    info = discovery.discover_manifests(
        s3,
        access_point_arn=access_point_arn,
        output_bucket=output_bucket,
        execution_id=execution_id,
        prefix=prefix,
        routes=[discovery.ManifestRoute("manifest", tuple(suffixes))],
        deadline=deadline,
    )["manifest"]
    return {
        "execution_id": execution_id,
        "manifest_bucket": info.bucket,
        "manifest_key": info.key,
        "object_count": info.count,
        "total_bytes": info.total_bytes,
        "manifest_bytes": info.manifest_bytes,
    }


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_id = parse_event(event)
    logger.append_keys(execution_id=execution_id)
    result = discover(
        S3,
        access_point_arn=ACCESS_POINT.arn,
        output_bucket=OUTPUT_BUCKET,
        execution_id=execution_id,
        prefix=SOURCE_PREFIX,
        suffixes=FILE_SUFFIXES,
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
    )
    metrics.add_metric(name="FilesDiscovered", unit=MetricUnit.Count, value=result["object_count"])
    logger.info("manifest written", extra=result)
    return result
