"""UC6 layout parser benchmark: our GDSII and OASIS decoders next to gdstk on the same files.

    .venv/bin/python -m benchmarks.parsers_bench [--quick] [--runs N] [--out PATH] [--workdir DIR]

Generates (with gdstk, seeded) one layout library shaped like a block of a real design: leaf
cells whose shapes are written layer by layer as layout tools do (rectangles, Manhattan and
arbitrary polygons of 5-40 vertices, paths, labels), a middle level of placements and arrays, one
top cell. It is written as GDSII (about 50 MB; ``--quick`` about 4 MB) and as OASIS with gdstk's
defaults (CBLOCK-compressed, CRC-32). Each reader runs in a fresh process per run, interleaved so
all see the same machine load: ours as shipped (with the compiled inner loops of
native/uc06_layoutscan.c, built first by scripts/build-native.sh into .build/native), ours in pure
Python (the reference and fallback decoders), each streaming the file from disk in 1 MiB chunks
(as the Lambda reads ranged GETs) with the object size known; gdstk reads the file and builds all
its geometry. Reported per format: the best of N runs of CPU time as MB/s (one core), the ratio of
ours to gdstk from the same run, the growth of the reader process's peak RSS while it reads, and
whether all report the same cell names, the same top cells and the same layer/datatype pairs.
Prints a table and writes JSON.

This is a measurement, not a test: it exits 1 only if a reader fails or the summaries disagree.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gdstk

from benchmarks.common import PeakRss, write_result
from tests.support.uc06 import load_function

REPO = Path(__file__).resolve().parent.parent
CHUNK_BYTES = 1024 * 1024
NATIVE_DIR = REPO / ".build" / "native"
READERS = ("ours", "python", "gdstk")


def build_library(leaf_shapes: int, *, seed: int = 12) -> gdstk.Library:
    """A seeded block: 40 leaf cells of ``leaf_shapes`` shapes each, 10 middle cells, one top."""
    rng = random.Random(seed)
    lib = gdstk.Library("BENCH", unit=1e-6, precision=1e-9)
    leaves = []
    for index in range(40):
        cell = lib.new_cell(f"LEAF_{index}")
        for layer in range(1, 11):  # shapes written layer by layer
            for _ in range(leaf_shapes // 10):
                x, y = rng.uniform(0, 100), rng.uniform(0, 100)
                kind = rng.random()
                datatype = rng.randint(0, 2)
                if kind < 0.5:
                    w, h = rng.uniform(0.1, 5), rng.uniform(0.1, 5)
                    cell.add(gdstk.rectangle((x, y), (x + w, y + h), layer=layer, datatype=datatype))
                elif kind < 0.7:  # Manhattan polygon (an L or a staircase)
                    steps = rng.randint(2, 10)
                    points = [(x, y)]
                    for _ in range(steps):
                        px, py = points[-1]
                        points += [(px + rng.uniform(0.1, 2), py), (px + rng.uniform(0.1, 2), py + rng.uniform(0.1, 2))]
                    points.append((points[-1][0], y - 1))
                    cell.add(gdstk.Polygon(points, layer=layer, datatype=datatype))
                elif kind < 0.85:
                    n = rng.randint(5, 40)
                    points = [(x + rng.uniform(0, 5), y + rng.uniform(0, 5)) for _ in range(n)]
                    cell.add(gdstk.Polygon(points, layer=layer, datatype=datatype))
                elif kind < 0.97:
                    turns = rng.randint(2, 8)
                    points = [(x, y)] + [(x + rng.uniform(0, 20), y + rng.uniform(0, 20)) for _ in range(turns)]
                    cell.add(gdstk.FlexPath(points, 0.1, layer=layer, datatype=datatype, simple_path=True))
                else:
                    cell.add(gdstk.Label(f"n{layer}_{x:.0f}", (x, y), layer=layer + 100, texttype=datatype))
        leaves.append(cell)
    mids = []
    for index in range(10):
        cell = lib.new_cell(f"MID_{index}")
        for _ in range(20):
            cell.add(gdstk.Reference(rng.choice(leaves), (rng.uniform(0, 1000), rng.uniform(0, 1000))))
        cell.add(gdstk.Reference(rng.choice(leaves), (0, 0), columns=4, rows=4, spacing=(100, 100)))
        mids.append(cell)
    top = lib.new_cell("TOP")
    for mid in mids:
        top.add(gdstk.Reference(mid, (rng.uniform(0, 1e4), 0), rotation=0.5))
    return lib


# --- the readers, each run in its own process -----------------------------------------------------
def _load(reader: str) -> Any:
    """The decoders: as shipped ("ours": the extension importable, as from the layer) or pure Python."""
    if reader == "ours":
        sys.path.insert(0, str(NATIVE_DIR))
    m = load_function("metadata_extraction", "layout", "gdsii", "oasis")
    if reader == "ours" and m.layout.native is None:
        raise SystemExit(f"the extension is not importable from {NATIVE_DIR}")
    if reader == "python":
        m.layout.native = None
    return m


def _ours(path: Path, m: Any) -> dict[str, Any]:
    gdsii, layout, oasis = m.gdsii, m.layout, m.oasis

    size = path.stat().st_size
    with path.open("rb") as handle:
        source = lambda: handle.read(CHUNK_BYTES)  # noqa: E731 - a chunk source, as the range reader
        started = time.process_time()
        if path.suffix == ".gds":
            summary = gdsii.parse(layout.Decoder(source, size=size))
        else:
            summary = oasis.parse(oasis.decoder(source, size=size))
        seconds = time.process_time() - started
    return {
        "seconds": seconds,
        "cells": summary.cell_names,
        "top_cells": summary.top_cells,
        "layers": sorted(list(pair) for pair in summary.layers),
    }


def _gdstk(path: Path) -> dict[str, Any]:
    started = time.process_time()
    lib = gdstk.read_gds(str(path)) if path.suffix == ".gds" else gdstk.read_oas(str(path))
    seconds = time.process_time() - started
    cells = [cell for cell in lib.cells if isinstance(cell, gdstk.Cell)]
    referenced = {
        ref.cell if isinstance(ref.cell, str) else ref.cell.name for cell in cells for ref in cell.references
    }
    layers: set[tuple[int, int]] = set()
    for cell in cells:
        layers.update((p.layer, p.datatype) for p in cell.polygons)
        layers.update((label.layer, label.texttype) for label in cell.labels)
        for path_ in cell.paths:
            layers.update(zip(path_.layers, path_.datatypes, strict=True))
    return {
        "seconds": seconds,
        "cells": sorted(cell.name for cell in cells),
        "top_cells": sorted(cell.name for cell in cells if cell.name not in referenced),
        "layers": sorted(list(pair) for pair in layers),
    }


def _worker(reader: str, path: Path) -> None:
    m = _load(reader) if reader != "gdstk" else None  # imports before the baseline
    # Peak RSS growth while reading (the interpreter and imports are the baseline; the kernel's
    # peak is reset first, so the imports' own peak does not hide the read's).
    with PeakRss() as peak:
        result = _gdstk(path) if m is None else _ours(path, m)
    result["peak_rss_bytes"] = peak.growth_bytes
    sys.stdout.write(json.dumps(result) + "\n")


def _run(reader: str, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.parsers_bench", "--worker", reader, str(path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def measure(path: Path, runs: int) -> dict[str, Any]:
    size = path.stat().st_size
    row: dict[str, Any] = {"file": path.name, "bytes": size}
    results = {}
    # Interleaved (ours, python, gdstk, ours, ...) so all see the same machine load.
    runs_of: dict[str, list[dict[str, Any]]] = {reader: [] for reader in READERS}
    for _ in range(runs):
        for reader in READERS:
            runs_of[reader].append(_run(reader, path))
    for reader, attempts in runs_of.items():
        best = min(attempts, key=lambda r: r["seconds"])
        results[reader] = best
        row[reader] = {
            "mb_per_s": size / 1e6 / max(best["seconds"], 1e-9),
            "seconds": [round(r["seconds"], 4) for r in attempts],
            "peak_rss_mb": max(r["peak_rss_bytes"] for r in attempts) / 1e6,
        }
    row["ours_to_gdstk"] = row["ours"]["mb_per_s"] / row["gdstk"]["mb_per_s"]
    row["python_to_gdstk"] = row["python"]["mb_per_s"] / row["gdstk"]["mb_per_s"]
    row["agree"] = {
        key: results["ours"][key] == results["python"][key] == results["gdstk"][key]
        for key in ("cells", "top_cells", "layers")
    }
    row["cell_count"] = len(results["ours"]["cells"])
    row["layer_count"] = len(results["ours"]["layers"])
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small library (about 4 MB of GDSII)")
    parser.add_argument("--runs", type=int, default=3, help="runs per reader and file; the best counts")
    parser.add_argument("--out", type=Path, help="JSON output (default benchmarks/results/parsers.json)")
    parser.add_argument("--workdir", type=Path, help="where to write the layouts (default: a temp dir)")
    parser.add_argument("--worker", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], Path(args.worker[1]))
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    # ours as shipped: with the compiled inner loops (idempotent; fails loudly if it cannot build)
    subprocess.run([str(REPO / "scripts/build-native.sh"), "--quiet"], check=True)
    with tempfile.TemporaryDirectory(prefix="parsers-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        lib = build_library(1000 if args.quick else 12_000)
        gds_path, oas_path = workdir / "bench.gds", workdir / "bench.oas"
        lib.write_gds(gds_path)
        lib.write_oas(oas_path)  # gdstk's defaults: CBLOCK compression level 6
        rows = [measure(path, args.runs) for path in (gds_path, oas_path)]
    header = (
        f"{'file':<10} {'MB':>7} {'ours MB/s':>10} {'python MB/s':>12} {'gdstk MB/s':>11} {'ours/gdstk':>10} "
        f"{'ours +RSS MB':>12} {'gdstk +RSS MB':>13}  agree"
    )
    lines = [header]
    for row in rows:
        agree = "yes" if all(row["agree"].values()) else f"NO {row['agree']}"
        lines.append(
            f"{row['file']:<10} {row['bytes'] / 1e6:>7.1f} {row['ours']['mb_per_s']:>10.1f} "
            f"{row['python']['mb_per_s']:>12.1f} {row['gdstk']['mb_per_s']:>11.1f} {row['ours_to_gdstk']:>9.2f}x "
            f"{row['ours']['peak_rss_mb']:>12.1f} "
            f"{row['gdstk']['peak_rss_mb']:>13.1f}  {agree} ({row['cell_count']} cells, {row['layer_count']} layers)"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    # The machine (CPU, cores, memory, OS, Python) and the date come with every benchmark's JSON.
    out = write_result("parsers", {"chunk_bytes": CHUNK_BYTES, "rows": rows}, args.out)
    sys.stdout.write(f"wrote {out}\n")
    return 0 if all(all(row["agree"].values()) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
