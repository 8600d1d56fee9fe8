"""UC9 discovery: list videos and LiDAR point clouds behind the access point into two manifests.

Event: ``{"execution_id": "<execution name>"}`` (the Step Functions execution name).

One streamed listing of ``SOURCE_PREFIX`` through the FSx for ONTAP S3 access point; each object
goes into one of two JSONL manifests in the output bucket (one ``ObjectInfo`` per line:
``key``, ``size``, ``etag``, ``last_modified``), which the two Distributed Maps read through their
``ItemReader`` (``InputType: JSONL``):

- ``manifests/<execution_id>/video.jsonl``: keys ending in ``VIDEO_SUFFIXES``;
- ``manifests/<execution_id>/pointcloud.jsonl``: keys ending in ``POINTCLOUD_SUFFIXES``.

Both manifests are always written (an empty one when nothing matched), so both Maps can run.

Environment (validated at init; ``ConfigurationError`` names the variable):

============================  ===============================================================
``ACCESS_POINT_ARN``          access point ARN (an alias is refused)
``OUTPUT_BUCKET``             bucket for the manifests
``SOURCE_PREFIX``             listing prefix, default ``""``
``VIDEO_SUFFIXES``            default ``.mp4``
``POINTCLOUD_SUFFIXES``       default ``.pcd,.las,.laz``; must not overlap ``VIDEO_SUFFIXES``
``DEADLINE_MARGIN_MS``        time kept back before Lambda's timeout, default 20000
============================  ===============================================================

Returns counts and locations only (never lists)::

    {"execution_id", "object_count", "total_bytes",
     "video_manifest_bucket", "video_manifest_key", "video_count", "video_total_bytes",
     "video_manifest_bytes", "pointcloud_manifest_bucket", "pointcloud_manifest_key",
     "pointcloud_count", "pointcloud_total_bytes", "pointcloud_manifest_bytes"}

Errors: ``InvalidInputError`` (bad event), typed listing/upload errors (``ThrottlingError``,
``ServiceUnavailableError``, ``AccessDeniedError``, ...), ``DeadlineExceededError`` (no manifest
left behind in every failure case).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import aws, config, discovery, observability, runtime
from shared.discovery import parse_event
from shared.errors import ConfigurationError
from shared.retry import Deadline

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = Logger()
tracer = Tracer()
metrics = Metrics()

VIDEO = "video"
POINTCLOUD = "pointcloud"

ACCESS_POINT = config.env_access_point("ACCESS_POINT_ARN")
OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
SOURCE_PREFIX = config.env_str("SOURCE_PREFIX", "", pattern=discovery.SOURCE_PREFIX_PATTERN)
VIDEO_SUFFIXES = discovery.validate_suffixes("VIDEO_SUFFIXES", config.env_list("VIDEO_SUFFIXES", (".mp4",)))
POINTCLOUD_SUFFIXES = discovery.validate_suffixes(
    "POINTCLOUD_SUFFIXES", config.env_list("POINTCLOUD_SUFFIXES", (".pcd", ".las", ".laz"))
)
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 20_000, minimum=1_000, maximum=120_000)


def _check_disjoint(videos: tuple[str, ...], clouds: tuple[str, ...]) -> None:
    lowered = {s.lower() for s in videos}
    # ".pcd" and ".x.pcd" overlap too: one ends with the other.
    clash = sorted(c for c in clouds if any(c.lower().endswith(v) or v.endswith(c.lower()) for v in lowered))
    if clash:
        raise ConfigurationError(
            f"environment variable POINTCLOUD_SUFFIXES overlaps VIDEO_SUFFIXES: {','.join(clash)}",
            variable="POINTCLOUD_SUFFIXES",
        )


_check_disjoint(VIDEO_SUFFIXES, POINTCLOUD_SUFFIXES)
ROUTES = (
    discovery.ManifestRoute(VIDEO, VIDEO_SUFFIXES),
    discovery.ManifestRoute(POINTCLOUD, POINTCLOUD_SUFFIXES),
)

S3 = runtime.register_client(aws.client("s3"))
runtime.prime(runtime.warm_client(S3, "list_objects_v2", Bucket=ACCESS_POINT.arn, MaxKeys=1))


def discover(
    s3: S3Client,
    *,
    access_point_arn: str,
    output_bucket: str,
    execution_id: str,
    prefix: str,
    routes: tuple[discovery.ManifestRoute, ...] = ROUTES,
    deadline: Deadline,
) -> dict[str, Any]:
    """List once, write both manifests, return the flat counts payload."""
    results = discovery.discover_manifests(
        s3,
        access_point_arn=access_point_arn,
        output_bucket=output_bucket,
        execution_id=execution_id,
        prefix=prefix,
        routes=routes,
        deadline=deadline,
    )
    payload = discovery.summary(execution_id, results)
    payload["object_count"] = sum(r.count for r in results.values())
    payload["total_bytes"] = sum(r.total_bytes for r in results.values())
    return payload


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
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
    )
    metrics.add_metric(name="VideosDiscovered", unit=MetricUnit.Count, value=result["video_count"])
    metrics.add_metric(name="PointCloudsDiscovered", unit=MetricUnit.Count, value=result["pointcloud_count"])
    logger.info("manifests written", extra=result)
    return result
