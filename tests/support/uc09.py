"""UC9 (autonomous-driving) test helpers: its function folders, events, and sample files."""

from __future__ import annotations

import io
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.support.functions import load_function_from
from tests.support.templates import REPO_ROOT

UC_DIR = REPO_ROOT / "autonomous-driving"
FUNCTIONS_DIR = UC_DIR / "functions"
EVENTS = "uc09-autonomous-driving"


def load_function(function: str, *modules: str) -> SimpleNamespace:
    """Import ``autonomous-driving/functions/<function>/<module>.py`` for each module, together."""
    return load_function_from(FUNCTIONS_DIR / function, *modules, prefix="uc09")


class MemoryS3:
    """Stands in for the S3 client the sample generator writes through: keeps the objects in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.objects[Key] = Body
        return {}


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
