"""UC9's model artifact for local runs: what scripts/package-model.sh uploads before a deploy.

``stack_parameters(session)`` builds ``model.tar.gz`` with the project's own builder
(``autonomous-driving/model/train.py``: the same bytes package-model.sh uploads), puts it in a
bucket of the emulated account under the same content-addressed key, and returns the
``ModelDataUrl`` and ``ModelImageUri`` template parameters (``stack_parameter_values()``: the
same values, nothing created). The runner calls it through
``local.samples.autonomous_driving.stack_parameters``.

Training is deterministic and takes about a second of pure Python, which every run of the use case
paid in every new process; the archive is kept under ``.build/cache/uc9-model/``, named by a digest
of the model's sources (every ``*.py`` under ``autonomous-driving/model``) and the interpreter's
version, so an edit of the sources trains again and an unchanged tree reuses the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_SOURCES = REPO_ROOT / "autonomous-driving" / "model"
TRAIN = MODEL_SOURCES / "train.py"
CACHE_DIR = REPO_ROOT / ".build" / "cache" / "uc9-model"
MODEL_BUCKET = "local-model-artifacts-123456789012"
# The documented public image (SageMaker scikit-learn framework container, us-east-1). Locally no
# image runs: the emulator loads code/inference.py from the archive as that container would.
IMAGE_URI = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


@functools.cache
def archive() -> bytes:
    """model.tar.gz: read from the cache when these sources built it before, else trained (and
    then kept there, written whole or not at all)."""
    cached = CACHE_DIR / f"{source_digest()}.tar.gz"
    if cached.is_file():
        return cached.read_bytes()
    data = train()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f".{cached.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.replace(cached)  # atomic: a concurrent run reads the old state or this whole file
    return data


def source_digest() -> str:
    """What the archive's bytes depend on: the model's Python sources and the interpreter."""
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(MODEL_SOURCES.rglob("*.py")):
        name, data = path.relative_to(MODEL_SOURCES).as_posix().encode(), path.read_bytes()
        digest.update(b"%d:%s%d:%s" % (len(name), name, len(data), data))
    return digest.hexdigest()[:32]


def train() -> bytes:
    """model.tar.gz as ``train.py --archive`` builds it (what package-model.sh uploads)."""
    spec = importlib.util.spec_from_file_location("uc9_model_train", TRAIN)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {TRAIN}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data: bytes = module.archive_bytes()
    return data


def model_key(data: bytes) -> str:
    """package-model.sh's key: <prefix>/<first 16 hex of sha256>/model.tar.gz."""
    return f"autonomous-driving/model/{hashlib.sha256(data).hexdigest()[:16]}/model.tar.gz"


def stack_parameter_values() -> dict[str, str]:
    """The values ``stack_parameters`` returns, without creating anything (for validating a run's
    parameters before it starts)."""
    return {"ModelDataUrl": f"s3://{MODEL_BUCKET}/{model_key(archive())}", "ModelImageUri": IMAGE_URI}


def stack_parameters(session: Any) -> dict[str, str]:
    data = archive()
    s3 = session.client("s3")
    s3.create_bucket(Bucket=MODEL_BUCKET)
    s3.put_object(Bucket=MODEL_BUCKET, Key=model_key(data), Body=data)
    return stack_parameter_values()
