"""UC9 sensor readers, bytes read per item: ours through ranged reads next to the whole-file approach.

    .venv/bin/python -m benchmarks.sensors_bench [--quick] [--sizes-mb N,N] [--runs N] [--out PATH]

For each kind (MP4 key frames, PCD binary, LAS 1.2) and each file size, one seeded file is
generated, then each reader runs in a fresh process per run:

* **ours**: the function's own code (``autonomous-driving/functions/frame_extraction/keyframes.py``,
  ``pointcloud_qc/qc.py``) reading through ``shared.ranged.RangedObjectFile`` with the handlers'
  defaults (1 MiB ranged GETs, 4 blocks cached; for video at most 8 frames, at least 1 s apart),
  served from the file by a ranged-GET stand-in (``tests.support.uc09.FileS3``), so the bytes
  read are what the function would fetch from the access point;
* **whole file**: what a user would otherwise reach for: the object read into memory
  (``GetObject`` without a range), then PyAV decoding every frame of the video and applying the
  same selection rule, laspy reading the whole cloud (``laspy.read``), numpy over the whole PCD.

Reported per file: wall and CPU seconds (the best of N runs), the growth of the reader process's
peak RSS while it reads (from its RSS when the reading starts, imports done; ``PeakRss`` resets the
kernel's peak first), the bytes read, and whether both report the same results (the selected
frames' timestamps, sizes and JPEG bytes; the point count, the bounds and the intensity range).
Sizes 1, 10 and 100 MB by default; ``--quick`` 1 and 32 (a video longer than 8 s, so the frame cap
shows in the bytes read). The issue's 1 GB is ``--sizes-mb 1,10,100,1000`` (several GB of memory
for the whole-file readers; not run here). A measurement, not a test: it exits 1 if a reader fails
or the results disagree.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import random
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import av
import laspy
import numpy as np

from benchmarks.common import PeakRss, WorkerFailedError, worker_result, write_result
from local.samples import autonomous_driving as samples

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.retry import Deadline

KINDS = ("mp4", "pcd", "las")
SUFFIX = {"mp4": ".mp4", "pcd": ".pcd", "las": ".las"}
DEFAULT_SIZES_MB = (1, 10, 100)
QUICK_SIZES_MB = (1, 32)
# The handlers' defaults (frame_extraction/handler.py, pointcloud_qc/handler.py).
BLOCK_BYTES = 1024 * 1024
MAX_BLOCKS = 4
CHUNK_POINTS = 65536
MAX_FRAMES = 8
MIN_INTERVAL_S = 1.0
MAX_WIDTH = 1920
JPEG_QUALITY = 3
VIDEO_FPS = 12
VIDEO_GOP = 12  # one key frame a second
VIDEO_SIZE = (640, 360)
PCD_POINT_BYTES = 16  # x y z intensity, float32
LAS_POINT_BYTES = 28  # point format 1


# --- the files ---------------------------------------------------------------------------------------
def write_video(path: Path, target_bytes: int, rng: random.Random) -> None:
    """H.264 MP4 (libx264, a key frame every second, scene-cut off) of about ``target_bytes`` and at
    least a second: a road scene whose lower third is noise, so the encoder cannot shrink it away."""
    gen = np.random.default_rng(rng.getrandbits(32))
    width, height = VIDEO_SIZE
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(
            "libx264",
            rate=VIDEO_FPS,
            options={
                "g": str(VIDEO_GOP),
                "keyint_min": str(VIDEO_GOP),
                "sc_threshold": "0",
                "bf": "0",
                "preset": "ultrafast",
                "crf": "18",
                "x264-params": f"keyint={VIDEO_GOP}:min-keyint={VIDEO_GOP}:scenecut=0",
            },
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, VIDEO_FPS)
        written = 0
        index = 0
        road = height * 2 // 3
        while written < target_bytes or index < VIDEO_FPS:
            image = np.empty((height, width, 3), dtype=np.uint8)
            image[:road] = (150, 190, 235)
            image[road:] = gen.integers(0, 256, (height - road, width, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
                written += packet.size
            index += 1
        for packet in stream.encode():
            container.mux(packet)


def write_file(kind: str, path: Path, target_bytes: int, seed: int) -> None:
    rng = random.Random(seed)
    if kind == "mp4":
        write_video(path, target_bytes, rng)
    elif kind == "pcd":
        cloud = samples.make_cloud(rng, max(100, target_bytes // PCD_POINT_BYTES), nan_points=50, zero_points=50)
        path.write_bytes(samples.write_pcd(cloud, "binary"))
    else:
        path.write_bytes(
            samples.write_las(samples.las_points(rng, max(100, target_bytes // LAS_POINT_BYTES)), compress=False)
        )


# --- the readers, each in its own process -------------------------------------------------------------
def _source(path: Path) -> Any:
    from shared.ranged import RangedObjectFile
    from tests.support.fakes import FakeDeadline
    from tests.support.uc09 import FileS3

    s3 = FileS3({path.name: path}, {path.name: ""})
    size = path.stat().st_size
    return RangedObjectFile(
        cast("S3Client", s3),
        "bench",
        path.name,
        size=size,
        etag="",
        deadline=cast("Deadline", FakeDeadline(3600.0)),
        block_size=BLOCK_BYTES,
        max_blocks=MAX_BLOCKS,
    )


def _keyframes_module() -> Any:
    from tests.support.uc09 import load_function

    return load_function("frame_extraction", "keyframes").keyframes


def _qc_module() -> Any:
    from tests.support.uc09 import load_function

    return load_function("pointcloud_qc", "qc").qc


def _cloud_summary(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "point_count": figures["point_count"],
        "bounds": figures["bounds"],
        "intensity": [figures["intensity_min"], figures["intensity_max"]],
    }


def _ours(kind: str, path: Path) -> tuple[dict[str, Any], int]:
    source = _source(path)
    if kind == "mp4":
        keyframes = _keyframes_module()
        selection = keyframes.Selection(MAX_FRAMES, MIN_INTERVAL_S, 0.0, MAX_WIDTH, JPEG_QUALITY)
        stream = io.BufferedReader(source, buffer_size=64 * 1024)
        frames = list(keyframes.key_frames(stream, selection, label=path.name, facts=keyframes.VideoFacts()))
        result: dict[str, Any] = {"frames": [[f.pts_seconds, f.width, f.height, _digest(f.jpeg)] for f in frames]}
    else:
        figures = _qc_module().analyse_file(source, label=path.name, chunk_points=CHUNK_POINTS)
        result = _cloud_summary(figures)
    return result, source.bytes_fetched


def _digest(jpeg: bytes) -> str:
    return hashlib.sha256(jpeg).hexdigest()[:16]


def _whole_video(data: bytes) -> dict[str, Any]:
    keyframes = _keyframes_module()  # the same JPEG encoding, so only the reading differs
    frames: list[list[float | int | str]] = []
    last: float | None = None
    with av.open(io.BytesIO(data), mode="r") as container:
        for frame in container.decode(container.streams.video[0]):  # every frame, as a plain decode loop
            if len(frames) >= MAX_FRAMES:
                break
            if not frame.key_frame:
                continue
            at = float(frame.time) if frame.time is not None else 0.0
            if last is not None and at - last < MIN_INTERVAL_S:
                continue
            jpeg, width, height = keyframes.encode_jpeg(frame, max_width=MAX_WIDTH, quality=JPEG_QUALITY)
            frames.append([round(at, 3), width, height, _digest(jpeg)])
            last = at
    return {"frames": frames}


def _bounds(x: Any, y: Any, z: Any) -> dict[str, Any]:
    def pair(v: Any) -> dict[str, float] | None:
        finite = v[np.isfinite(v)]
        return {"min": float(finite.min()), "max": float(finite.max())} if finite.size else None

    return {"x": pair(x), "y": pair(y), "z": pair(z)}


def _whole_pcd(data: bytes) -> dict[str, Any]:
    end = data.index(b"\nDATA binary\n") + len(b"\nDATA binary\n")
    header = dict(line.split(" ", 1) for line in data[:end].decode("ascii").splitlines() if not line.startswith("#"))
    points = int(header["POINTS"])
    rows = np.frombuffer(
        data, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")], count=points, offset=end
    )
    x, y, z = (rows[axis].astype(np.float64) for axis in ("x", "y", "z"))
    intensity = rows["intensity"].astype(np.float64)
    return {
        "point_count": points,
        "bounds": _bounds(x, y, z),
        "intensity": [float(intensity.min()), float(intensity.max())],
    }


def _whole_las(data: bytes) -> dict[str, Any]:
    cloud = laspy.read(io.BytesIO(data))
    x, y, z = (np.asarray(v, dtype=np.float64) for v in (cloud.x, cloud.y, cloud.z))
    intensity = np.asarray(cloud.intensity, dtype=np.float64)
    return {
        "point_count": int(cloud.header.point_count),
        "bounds": _bounds(x, y, z),
        "intensity": [float(intensity.min()), float(intensity.max())],
    }


def _whole(kind: str, path: Path) -> tuple[dict[str, Any], int]:
    data = path.read_bytes()  # GetObject without a range: the whole object in memory
    reader = {"mp4": _whole_video, "pcd": _whole_pcd, "las": _whole_las}[kind]
    return reader(data), len(data)


def _worker(reader: str, kind: str, path: Path) -> None:
    # Imports before the baseline, so the RSS growth is the reading alone.
    _keyframes_module() if kind == "mp4" else _qc_module()
    import shared.ranged  # noqa: F401
    import tests.support.uc09  # noqa: F401

    with PeakRss() as rss:
        wall, cpu = time.perf_counter(), time.process_time()
        result, bytes_read = (_ours if reader == "ours" else _whole)(kind, path)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = rss.growth_bytes
    sys.stdout.write(
        json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_bytes": peak, "bytes_read": bytes_read, "result": result})
        + "\n"
    )


def _run(reader: str, kind: str, path: Path) -> dict[str, Any]:
    return worker_result("benchmarks.sensors_bench", reader, kind, str(path))


def _same(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 relative (both sides compute in float64 from the same stored values)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=1e-9)
    return bool(a == b)


def measure(kind: str, path: Path, runs: int) -> dict[str, Any]:
    size = path.stat().st_size
    row: dict[str, Any] = {"kind": kind, "file": path.name, "bytes": size}
    attempts: dict[str, list[dict[str, Any]]] = {"ours": [], "whole_file": []}
    for _ in range(runs):  # interleaved, so both see the same machine load
        for reader, results in attempts.items():
            results.append(_run(reader, kind, path))
    for reader, results in attempts.items():
        best = min(results, key=lambda r: r["wall_s"])
        row[reader] = {
            "wall_s": round(best["wall_s"], 4),
            "cpu_s": round(best["cpu_s"], 4),
            "peak_rss_mb": round(max(r["peak_rss_bytes"] for r in results) / 1e6, 1),
            "bytes_read": best["bytes_read"],
            "read_fraction": round(best["bytes_read"] / size, 4),
        }
    ours, whole = attempts["ours"][0]["result"], attempts["whole_file"][0]["result"]
    row["agree"] = _same(ours, whole)
    row["summary"] = {"frames": len(ours["frames"])} if kind == "mp4" else {"points": ours["point_count"]}
    if not row["agree"]:
        row["results"] = {"ours": ours, "whole_file": whole}
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        ["file", "MB", "ours s", "whole s", "ours +RSS MB", "whole +RSS MB", "ours read MB", "whole read MB", "agree"]
    ]
    for row in rows:
        ours, whole = row["ours"], row["whole_file"]
        lines.append(
            [
                row["file"],
                f"{row['bytes'] / 1e6:.1f}",
                f"{ours['wall_s']:.2f}",
                f"{whole['wall_s']:.2f}",
                f"{ours['peak_rss_mb']:.1f}",
                f"{whole['peak_rss_mb']:.1f}",
                f"{ours['bytes_read'] / 1e6:.1f}",
                f"{whole['bytes_read'] / 1e6:.1f}",
                "yes" if row["agree"] else "NO",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.rjust(widths[i]) for i, cell in enumerate(line)) for line in lines)


def sizes_mb_arg(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from e
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("one or more sizes in MB, each >= 1")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES_MB} MB instead of {DEFAULT_SIZES_MB}")
    parser.add_argument("--sizes-mb", type=sizes_mb_arg, help="comma-separated file sizes in MB (overrides)")
    parser.add_argument("--runs", type=int, default=3, help="runs per reader and file; the fastest counts")
    parser.add_argument("--out", type=Path, help="JSON output (default benchmarks/results/sensors.json)")
    parser.add_argument("--workdir", type=Path, help="where to write the files (default: a temp dir)")
    parser.add_argument("--worker", nargs=3, metavar=("READER", "KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], args.worker[1], Path(args.worker[2]))
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    sizes_mb: tuple[int, ...] = args.sizes_mb or (QUICK_SIZES_MB if args.quick else DEFAULT_SIZES_MB)
    rows, failures = [], []
    with tempfile.TemporaryDirectory(prefix="sensors-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for kind in KINDS:
            for index, mb in enumerate(sizes_mb):
                path = workdir / f"{kind}-{mb}mb{SUFFIX[kind]}"
                print(f"writing and reading {path.name} ...", file=sys.stderr, flush=True)
                write_file(kind, path, mb * 1_000_000, seed=index)
                try:
                    rows.append(measure(kind, path, args.runs))
                except WorkerFailedError as error:
                    failures.append(str(error))
                path.unlink()
    print(table(rows))
    for failure in failures:
        print(f"NOT MEASURED: {failure}", file=sys.stderr)
    disagree = [row["file"] for row in rows if not row["agree"]]
    if disagree:
        print(f"results disagree: {', '.join(disagree)}", file=sys.stderr)
    if failures:
        return 1
    settings = {
        "block_bytes": BLOCK_BYTES,
        "max_blocks": MAX_BLOCKS,
        "max_frames": MAX_FRAMES,
        "min_interval_s": MIN_INTERVAL_S,
    }
    out = write_result(
        "sensors", {"sizes_mb": list(sizes_mb), "runs": args.runs, "settings": settings, "rows": rows}, args.out
    )
    print(f"wrote {out}")
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
