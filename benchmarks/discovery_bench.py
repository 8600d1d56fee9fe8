"""Discovery scaling: the access-point listing streamed into a JSONL manifest, 10 k to 1 M objects.

    .venv/bin/python -m benchmarks.discovery_bench [--quick] [--counts N,N,...] [--out PATH]

The code path of every Discovery handler: ``shared.s3ap.list_objects`` over an access point ARN
(``ListObjectsV2`` pages of 1,000, suffix filter) into ``shared.s3ap.ManifestWriter`` (5 MiB
multipart parts). The S3 client is synthetic: pages are generated on demand and uploaded parts are
counted and dropped, so the numbers are the CPU cost of our code, not an emulator's. Each count runs
in a fresh process: objects per second of CPU time (one core) and wall time, and the process's
peak RSS. Targets (issue 17): at least 50,000 objects/s, and peak RSS flat (within 10 %) from the
smallest count to the largest. Prints a table and writes JSON. A measurement, not a test: it exits
1 only if a run fails or the manifest does not hold every object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from benchmarks.common import worker_result, write_result
from shared.s3ap import ManifestWriter, list_objects
from tests.unit.test_s3ap_memory import ARN, DiskBackedS3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

COUNTS = (10_000, 100_000, 1_000_000)
QUICK_COUNTS = (10_000, 100_000)
PART_SIZE = 5 * 1024 * 1024
TARGET_OBJECTS_PER_S = 50_000
RSS_FLAT_WITHIN = 0.10


class SyntheticS3(DiskBackedS3):
    """The memory test's generated listing; parts are counted, not stored."""

    def __init__(self, count: int) -> None:
        super().__init__(count, Path("/dev/null"))
        self.uploaded = 0

    def put_object(self, **kw: Any) -> dict[str, Any]:
        self.uploaded += len(kw["Body"])
        return {}

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        self.parts = []
        return {"UploadId": "u-1"}

    def upload_part(self, **kw: Any) -> dict[str, Any]:
        self.uploaded += len(kw["Body"])
        self.parts.append(len(kw["Body"]))
        return {"ETag": f'"p{kw["PartNumber"]}"'}


def run_one(count: int) -> dict[str, Any]:
    """In this process: list ``count`` objects into a manifest; CPU, wall time and peak RSS."""
    s3 = cast("S3Client", SyntheticS3(count))
    synthetic = cast(SyntheticS3, s3)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu, wall = time.process_time(), time.perf_counter()
    with ManifestWriter(s3, "out", "manifests/bench/manifest.jsonl", part_size=PART_SIZE) as manifest:
        for obj in list_objects(s3, ARN, suffixes=(".gds",)):
            manifest.write(obj.to_dict())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "objects": count,
        "written": manifest.result.count,
        "manifest_bytes": manifest.result.bytes,
        "uploaded_bytes": synthetic.uploaded,
        "parts": len(synthetic.parts),
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "objects_per_cpu_s": round(count / cpu) if cpu else None,
        "objects_per_wall_s": round(count / wall) if wall else None,
        "rss_before_mib": round(rss_before / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
    }


def measure(count: int) -> dict[str, Any]:
    result = worker_result("benchmarks.discovery_bench", str(count))
    if result["written"] != count or result["uploaded_bytes"] != result["manifest_bytes"]:
        raise RuntimeError(f"the manifest of {count} objects is incomplete: {result}")
    return result


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    rss = [row["peak_rss_mib"] for row in rows]
    slowest = min(row["objects_per_cpu_s"] for row in rows)
    growth = (rss[-1] - rss[0]) / rss[0]
    return {
        "slowest_objects_per_cpu_s": slowest,
        "throughput_target": TARGET_OBJECTS_PER_S,
        "throughput_target_met": slowest >= TARGET_OBJECTS_PER_S,
        "peak_rss_growth": round(growth, 4),
        "rss_target_within": RSS_FLAT_WITHIN,
        "rss_target_met": abs(growth) <= RSS_FLAT_WITHIN,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'objects':>10} {'parts':>6} {'manifest MB':>12} {'CPU s':>7} {'objects/s (CPU)':>16} "
        f"{'objects/s (wall)':>17} {'peak RSS MiB':>13}"
    ]
    for row in rows:
        lines.append(
            f"{row['objects']:>10,} {row['parts']:>6} {row['manifest_bytes'] / 1e6:>12.1f} {row['cpu_s']:>7.2f} "
            f"{row['objects_per_cpu_s']:>16,} {row['objects_per_wall_s']:>17,} {row['peak_rss_mib']:>13.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 k and 100 k objects only")
    parser.add_argument("--counts", help="comma-separated object counts (overrides --quick)")
    parser.add_argument("--out", type=Path, help="JSON output (default benchmarks/results/discovery.json)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        sys.stdout.write(json.dumps(run_one(args.worker)) + "\n")
        return 0
    try:
        default = QUICK_COUNTS if args.quick else COUNTS
        counts = tuple(int(c) for c in args.counts.split(",")) if args.counts else default
    except ValueError:
        parser.error(f"--counts must be comma-separated whole numbers, got {args.counts!r}")
    if not counts or min(counts) < 1:
        parser.error("--counts must be whole numbers of at least 1")
    try:
        rows = [measure(count) for count in counts]
    except RuntimeError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    result = summary(rows)
    sys.stdout.write(table(rows) + "\n")
    sys.stdout.write(
        f"slowest {result['slowest_objects_per_cpu_s']:,} objects/s (target {TARGET_OBJECTS_PER_S:,}: "
        f"{'met' if result['throughput_target_met'] else 'MISSED'}); peak RSS growth "
        f"{result['peak_rss_growth']:+.1%} (target within {RSS_FLAT_WITHIN:.0%}: "
        f"{'met' if result['rss_target_met'] else 'MISSED'})\n"
    )
    path = write_result("discovery", {"part_size": PART_SIZE, "rows": rows, "summary": result}, args.out)
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
