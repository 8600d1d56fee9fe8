"""Build UC9's annotation model (``model.json``) from scratch: no download, deterministic.

Two small classifiers are fitted by batch gradient descent on a synthetic training set drawn
from written-down rules with a fixed seed, so every build of the same source yields the same
bytes:

- **scene** (softmax regression): label confidences over ``VOCABULARY`` -> one of ``SCENES``.
  Each scene has a probability for each label to be seen (``SCENE_LABELS``); a training frame
  draws labels from it with a confidence in 55-99 %.
- **pointcloud readiness** (logistic regression): QC figures (``inference.pointcloud_features``)
  -> whether the cloud is fit for annotation. Ground truth: NaN ratio < 5 %, zero-point ratio
  < 10 %, at least 1,000 points and an intensity channel that varies.

Plus the detection mapping: Rekognition label -> COCO category and the minimum score kept.

    python autonomous-driving/model/train.py OUTPUT_DIR              # OUTPUT_DIR/model.json
    python autonomous-driving/model/train.py --archive model.tar.gz  # what SageMaker loads

The archive is SageMaker's framework-container layout: ``model.json`` at the root (extracted to
``/opt/ml/model``) and the inference code as ``code/inference.py``. It is byte-for-byte
reproducible (sorted members, zero mtimes, owner 0, no gzip timestamp).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import random
import sys
import tarfile
from operator import mul
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "code"))

from inference import pointcloud_features

MODEL_VERSION = "uc9-annotation-1"
SEED = 20260
SCENES = ["urban", "highway", "rural", "parking"]
VOCABULARY = [
    "Car", "Truck", "Bus", "Person", "Pedestrian", "Bicycle", "Motorcycle", "Traffic Light",
    "Stop Sign", "Building", "Road", "Highway", "Freeway", "Tree", "Vegetation", "Field",
    "Parking Lot", "Parking", "Sidewalk", "Crosswalk",
]  # fmt: skip
SCENE_LABELS: dict[str, dict[str, float]] = {
    "urban": {"Car": 0.9, "Person": 0.7, "Pedestrian": 0.5, "Traffic Light": 0.7, "Building": 0.9,
              "Road": 0.8, "Sidewalk": 0.7, "Crosswalk": 0.5, "Bicycle": 0.3, "Bus": 0.3, "Stop Sign": 0.3},
    "highway": {"Car": 0.95, "Truck": 0.7, "Road": 0.9, "Highway": 0.8, "Freeway": 0.6, "Bus": 0.2,
                "Motorcycle": 0.1, "Tree": 0.2},
    "rural": {"Road": 0.7, "Tree": 0.9, "Vegetation": 0.9, "Field": 0.7, "Car": 0.3, "Truck": 0.2},
    "parking": {"Car": 0.95, "Parking Lot": 0.8, "Parking": 0.7, "Person": 0.4, "Building": 0.4,
                "Truck": 0.2},
}  # fmt: skip
CATEGORIES = [
    {"id": 1, "name": "person", "label": "Person", "min_score": 0.6},
    {"id": 1, "name": "person", "label": "Pedestrian", "min_score": 0.6},
    {"id": 2, "name": "bicycle", "label": "Bicycle", "min_score": 0.6},
    {"id": 3, "name": "car", "label": "Car", "min_score": 0.5},
    {"id": 4, "name": "motorcycle", "label": "Motorcycle", "min_score": 0.6},
    {"id": 6, "name": "bus", "label": "Bus", "min_score": 0.6},
    {"id": 8, "name": "truck", "label": "Truck", "min_score": 0.55},
    {"id": 10, "name": "traffic light", "label": "Traffic Light", "min_score": 0.6},
    {"id": 13, "name": "stop sign", "label": "Stop Sign", "min_score": 0.6},
]
READINESS_THRESHOLD = 0.5


def _scene_samples(rng: random.Random, per_class: int) -> list[tuple[list[float], int]]:
    out = []
    for index, scene in enumerate(SCENES):
        probabilities = SCENE_LABELS[scene]
        for _ in range(per_class):
            x = [rng.uniform(0.55, 0.99) if rng.random() < probabilities.get(w, 0.02) else 0.0 for w in VOCABULARY]
            out.append((x, index))
    rng.shuffle(out)
    return out


def _ready(qc: dict[str, float]) -> bool:
    return (
        qc["nan_ratio"] < 0.05
        and qc["zero_ratio"] < 0.10
        and qc["point_count"] >= 1000
        and qc["intensity_max"] > qc["intensity_min"]
    )


def _pointcloud_samples(rng: random.Random, count: int) -> list[tuple[list[float], int]]:
    out = []
    for _ in range(count):
        points = int(10 ** rng.uniform(1, 6.5))
        qc = {
            "point_count": points,
            "nan_ratio": rng.choice([0.0, 0.0, rng.uniform(0, 0.04), rng.uniform(0.05, 0.6)]),
            "zero_ratio": rng.choice([0.0, rng.uniform(0, 0.09), rng.uniform(0.1, 0.8)]),
            "density": 10 ** rng.uniform(-1, 3),
            "intensity_min": 0.0,
            "intensity_max": rng.choice([0.0, 255.0, 1.0]),
        }
        out.append((pointcloud_features(qc), int(_ready(qc))))
    return out


def _nonzero(samples: list[tuple[list[float], int]], features: int) -> list[tuple[list[int], list[float], int]]:
    """Each sample as (indices, values, label) of its non-zero features only. A zero feature adds
    exactly nothing to a dot product or a gradient (x + 0.0 == x, and no sum here starts at -0.0),
    so the fits below give bit for bit the weights of the dense loops, in a fraction of the time:
    most label confidences of a scene sample are 0."""
    sparse = []
    for x, y in samples:
        if len(x) != features:
            raise ValueError(f"a sample has {len(x)} features, not {features}")
        indices = [j for j, v in enumerate(x) if v != 0.0]
        sparse.append((indices, [x[j] for j in indices], y))
    return sparse


def fit_softmax(
    samples: list[tuple[list[float], int]], classes: int, *, epochs: int = 300, rate: float = 0.5
) -> tuple[list[list[float]], list[float]]:
    features = len(samples[0][0])
    sparse = _nonzero(samples, features)
    weights = [[0.0] * features for _ in range(classes)]
    bias = [0.0] * classes
    n = len(samples)
    for _ in range(epochs):
        grad_w = [[0.0] * features for _ in range(classes)]
        grad_b = [0.0] * classes
        for indices, values, y in sparse:
            logits = [sum(map(mul, map(row.__getitem__, indices), values)) + b
                      for row, b in zip(weights, bias, strict=True)]  # fmt: skip
            top = max(logits)
            exps = [math.exp(s - top) for s in logits]
            total = sum(exps)
            errs = [e / total for e in exps]
            errs[y] -= 1.0
            for k, err in enumerate(errs):
                grad_b[k] += err
                row = grad_w[k]
                for j, v in zip(indices, values, strict=True):
                    row[j] += err * v
        for k in range(classes):
            bias[k] -= rate * grad_b[k] / n
            for j in range(features):
                weights[k][j] -= rate * grad_w[k][j] / n
    return [[round(w, 6) for w in row] for row in weights], [round(b, 6) for b in bias]


def fit_logistic(
    samples: list[tuple[list[float], int]], *, epochs: int = 600, rate: float = 2.0
) -> tuple[list[float], float]:
    features = len(samples[0][0])
    sparse = _nonzero(samples, features)
    weights = [0.0] * features
    bias = 0.0
    n = len(samples)
    for _ in range(epochs):
        grad_w = [0.0] * features
        grad_b = 0.0
        for indices, values, y in sparse:
            z = sum(map(mul, map(weights.__getitem__, indices), values)) + bias
            p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
            err = p - y
            grad_b += err
            for j, v in zip(indices, values, strict=True):
                grad_w[j] += err * v
        bias -= rate * grad_b / n
        for j in range(features):
            weights[j] -= rate * grad_w[j] / n
    return [round(w, 6) for w in weights], round(bias, 6)


def accuracy(predict: Any, samples: list[tuple[list[float], int]]) -> float:
    return sum(1 for x, y in samples if predict(x) == y) / len(samples)


def build() -> dict[str, Any]:
    rng = random.Random(SEED)  # noqa: S311 - reproducible training data, not secrets
    scene_train = _scene_samples(rng, 120)
    scene_weights, scene_bias = fit_softmax(scene_train, len(SCENES))
    cloud_train = _pointcloud_samples(rng, 600)
    cloud_weights, cloud_bias = fit_logistic(cloud_train)

    def scene_predict(x: list[float]) -> int:
        rows = zip(scene_weights, scene_bias, strict=True)
        logits = [sum(w * v for w, v in zip(r, x, strict=True)) + b for r, b in rows]
        return max(range(len(logits)), key=logits.__getitem__)

    def cloud_predict(x: list[float]) -> int:
        return int(sum(w * v for w, v in zip(cloud_weights, x, strict=True)) + cloud_bias >= 0)

    held_out = random.Random(SEED + 1)  # noqa: S311 - reproducible held-out data
    return {
        "version": MODEL_VERSION,
        "categories": CATEGORIES,
        "scene": {
            "classes": SCENES,
            "vocabulary": VOCABULARY,
            "weights": scene_weights,
            "bias": scene_bias,
            "held_out_accuracy": round(accuracy(scene_predict, _scene_samples(held_out, 50)), 4),
        },
        "pointcloud": {
            "features": [
                "nan_ratio", "zero_ratio", "log10_points_over_7", "at_least_1000_points",
                "log10_density_over_4", "intensity_varies",
            ],
            "weights": cloud_weights,
            "bias": cloud_bias,
            "threshold": READINESS_THRESHOLD,
            "held_out_accuracy": round(accuracy(cloud_predict, _pointcloud_samples(held_out, 300)), 4),
        },
    }


def write(output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / "model.json"
    target.write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return target


CODE_DIR = Path(__file__).resolve().parent / "code"


def archive_bytes() -> bytes:
    """``model.tar.gz`` as SageMaker framework containers read it, reproducibly."""
    members = {
        "model.json": (json.dumps(build(), indent=1, sort_keys=True) + "\n").encode("utf-8"),
        "code/inference.py": (CODE_DIR / "inference.py").read_bytes(),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(members[name]))
    return gzip.compress(raw.getvalue(), mtime=0)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--archive":
        target = Path(argv[1])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(archive_bytes())
        sys.stderr.write(f"wrote {target}\n")
        return 0
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.stderr.write("usage: train.py OUTPUT_DIR | train.py --archive FILE\n")
        return 2
    target = write(Path(argv[0]))
    sys.stderr.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
