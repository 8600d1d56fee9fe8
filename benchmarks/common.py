"""What every benchmark shares: the machine it ran on, where results go, the use cases present."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from benchmarks.snapstart_bench import machine

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


def use_cases() -> list[Path]:
    """Every use-case folder present: a top-level directory with a template-deploy.yaml."""
    return sorted(path.parent for path in REPO.glob("*/template-deploy.yaml"))


def write_result(name: str, payload: dict[str, Any], out: Path | None = None) -> Path:
    """Write ``payload`` with the machine and the UTC date to ``benchmarks/results/<name>.json``."""
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": name,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        **payload,
    }
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
