"""UC9 (autonomous-driving) test helpers: its function folders, events, and sample files."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.support.fakes import RecordingS3 as MemoryS3
from tests.support.functions import load_function_from
from tests.support.templates import REPO_ROOT

UC_DIR = REPO_ROOT / "autonomous-driving"
FUNCTIONS_DIR = UC_DIR / "functions"
EVENTS = "uc09-autonomous-driving"


def load_function(function: str, *modules: str) -> SimpleNamespace:
    """Import ``autonomous-driving/functions/<function>/<module>.py`` for each module, together."""
    return load_function_from(FUNCTIONS_DIR / function, *modules, prefix="uc09")


def listed_items(ap: Any, keys: list[str]) -> list[dict[str, Any]]:
    """Manifest records (``ObjectInfo`` dicts) of objects behind the access point fixture."""
    out = []
    for key in keys:
        head = ap.s3.head_object(Bucket=ap.arn, Key=key)
        out.append(
            {
                "key": key,
                "size": head["ContentLength"],
                "etag": head["ETag"].strip('"'),
                "last_modified": "2026-11-20T08:15:30.000Z",
            }
        )
    return out


def stored_record(s3: Any, bucket: str, execution_id: str, key: str) -> dict[str, Any]:
    """The result record a batch function wrote for ``key``."""
    from shared.batch import result_key

    record: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=result_key(execution_id, key))["Body"].read())
    return record


class FileS3:
    """A read-only S3 stand-in serving ranged GETs of local files without loading them whole.

    moto keeps each object in memory and copies it on every ranged GET, which would swamp a
    tracemalloc measurement of the reader itself; this serves exactly the requested bytes.
    """

    def __init__(self, files: dict[str, Path], etags: dict[str, str]) -> None:
        self.files = files
        self.etags = etags
        self.requests = 0

    def get_object(self, *, Bucket: str, Key: str, Range: str, IfMatch: str = "", **_: Any) -> dict[str, Any]:  # noqa: N803
        self.requests += 1
        path = self.files[Key]
        size = path.stat().st_size
        start, end = (int(v) for v in Range.removeprefix("bytes=").split("-"))
        end = min(end, size - 1)
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read(end - start + 1)
        return {"Body": io.BytesIO(data), "ContentRange": f"bytes {start}-{end}/{size}", "ETag": f'"{self.etags[Key]}"'}


def sample_files(objects: int = 40, seed: int = 1) -> tuple[Any, dict[str, bytes]]:
    """The UC9 sample set and its objects, generated in memory."""
    from local.samples import autonomous_driving

    s3 = MemoryS3()
    samples = autonomous_driving.generate(s3, "unused-bucket", objects=objects, seed=seed)
    return samples, s3.objects


def rng(seed: int = 0) -> random.Random:
    return random.Random(seed)
