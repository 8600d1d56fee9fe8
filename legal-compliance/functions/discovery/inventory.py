"""UC1 discovery: the file listing (a JSONL manifest) and the ONTAP context of the audited volume.

ONTAP is asked first, so a wrong password, a certificate that does not verify or an unknown SVM or
volume fails the run before anything is listed:

- the SVM by name (``GET /api/svm/svms``), the volume by name in it with its junction path
  (``GET /api/storage/volumes``, ``nas.path``), and the CIFS shares of that volume
  (``GET /api/protocols/cifs/shares``) are written to ``context/<execution_id>/ontap.json``;
- the access point listing is streamed into ``manifests/<execution_id>/manifest.jsonl``.

The state payload carries only the counts, the SVM UUID and the junction path (the ACL
collection needs both to name each file to ONTAP); shares and the listing stay in S3.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from shared.aws import mapped_errors
from shared.errors import ConfigurationError
from shared.s3ap import ManifestWriter, list_objects

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.ontap import OntapClient
    from shared.retry import Deadline

MANIFEST_PREFIX = "manifests"
CONTEXT_PREFIX = "context"
# Check the time budget every this many listed objects (one ListObjectsV2 page).
DEADLINE_CHECK_EVERY = 1000
# The context object lists shares; a volume with more than this many is summarised.
MAX_SHARES = 10_000


def manifest_key(execution_id: str) -> str:
    return f"{MANIFEST_PREFIX}/{execution_id}/manifest.jsonl"


def context_key(execution_id: str) -> str:
    return f"{CONTEXT_PREFIX}/{execution_id}/ontap.json"


def _under(path: str, junction: str) -> bool:
    return path == junction or path.startswith(junction.rstrip("/") + "/")


def ontap_context(ontap: OntapClient, *, svm_name: str, volume_name: str, deadline: Deadline) -> dict[str, Any]:
    """SVM, volume (with its junction path) and the CIFS shares that expose the volume."""
    svm = ontap.svm(svm_name, deadline)
    volume = ontap.volume(str(svm["uuid"]), volume_name, deadline)
    junction = (volume.get("nas") or {}).get("path")
    if not isinstance(junction, str) or not junction.startswith("/"):
        raise ConfigurationError(
            f"ONTAP volume {volume_name} in SVM {svm_name} has no junction path (nas.path): it is not "
            "mounted in the SVM namespace, so its files have no path the file-security API can read",
            volume=volume_name,
        )
    shares: list[dict[str, Any]] = []
    share_count = 0
    for share in ontap.cifs_shares(str(svm["uuid"]), deadline):
        path = share.get("path")
        if isinstance(path, str) and _under(path, junction):
            share_count += 1
            if len(shares) < MAX_SHARES:
                shares.append({"name": share.get("name"), "path": path})
    return {
        "svm": {"uuid": svm["uuid"], "name": svm.get("name", svm_name)},
        "volume": {
            "uuid": volume.get("uuid"),
            "name": volume.get("name", volume_name),
            "junction_path": junction,
            "security_style": (volume.get("nas") or {}).get("security_style"),
        },
        "cifs_shares": shares,
        "cifs_share_count": share_count,
        "cifs_shares_truncated": share_count > len(shares),
    }


def discover(
    s3: S3Client,
    ontap: OntapClient,
    *,
    access_point_arn: str,
    output_bucket: str,
    execution_id: str,
    prefix: str,
    svm_name: str,
    volume_name: str,
    deadline: Deadline,
) -> dict[str, Any]:
    """Write the ONTAP context and the manifest; return their locations, counts and the volume path."""
    context = ontap_context(ontap, svm_name=svm_name, volume_name=volume_name, deadline=deadline)
    context["execution_id"] = execution_id
    context["collected_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    with mapped_errors("PutObject"):
        s3.put_object(
            Bucket=output_bucket,
            Key=context_key(execution_id),
            Body=json.dumps(context, ensure_ascii=False, indent=1).encode("utf-8"),
            ContentType="application/json",
        )
    total_bytes = 0
    with ManifestWriter(s3, output_bucket, manifest_key(execution_id)) as manifest:
        for obj in list_objects(s3, access_point_arn, prefix=prefix):
            manifest.write(obj.to_dict())
            total_bytes += obj.size
            if manifest.count % DEADLINE_CHECK_EVERY == 0:
                # Raising inside the block aborts the multipart upload: no partial manifest.
                deadline.check("listing the access point")
    info = manifest.result
    return {
        "execution_id": execution_id,
        "manifest_bucket": info.bucket,
        "manifest_key": info.key,
        "object_count": info.count,
        "total_bytes": total_bytes,
        "manifest_bytes": info.bytes,
        "context_key": context_key(execution_id),
        "svm_uuid": context["svm"]["uuid"],
        "volume_path": context["volume"]["junction_path"],
        "cifs_share_count": context["cifs_share_count"],
    }
