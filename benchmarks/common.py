"""What every benchmark shares: the machine it ran on, where results go, the use cases present."""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.snapstart_bench import machine

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"


class PeakRss:
    """The growth of this process's peak RSS inside the ``with`` block, from what it was on entry.

    On Linux the peak (``VmHWM``) is reset on entry (``/proc/self/clear_refs``), so a peak reached
    earlier (imports, set-up) does not hide the block's own; elsewhere it falls back to
    ``ru_maxrss``, which can only show growth beyond the earlier peak (``reset`` says which).
    """

    def __init__(self) -> None:
        self.growth_bytes = 0
        self.reset = False
        self._start = 0

    def __enter__(self) -> PeakRss:
        try:
            Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
            self.reset = True
            self._start = _status_kib("VmRSS")
        except OSError:
            self._start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *_: object) -> None:
        peak = _status_kib("VmHWM") if self.reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.growth_bytes = max(0, peak - self._start) * 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


class WorkerFailedError(RuntimeError):
    """A benchmark's worker process failed: what it measured gets no row."""


def worker_result(module: str, *args: str) -> dict[str, Any]:
    """Run ``python -m <module> --worker ARGS...`` in a fresh process from the repository root and
    return the JSON object on the last line of its output."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--worker", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise WorkerFailedError(f"{module} --worker {' '.join(args)}: exit {out.returncode}\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


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
        # Wall times mean little on a shared 2-core machine without the load they ran under.
        "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
        **payload,
    }
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
