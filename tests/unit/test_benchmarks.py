"""benchmarks/: the README's Performance section matches the committed JSON; the discovery numbers
come from a complete manifest; the targets' verdicts follow the numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks import readme
from benchmarks.common import RESULTS, use_cases
from benchmarks.discovery_bench import run_one, summary

pytestmark = pytest.mark.unit


def test_the_readme_performance_section_is_generated_from_the_committed_json() -> None:
    text = readme.README.read_text(encoding="utf-8")
    assert readme.current_section(text) == readme.render(RESULTS), "run: .venv/bin/python -m benchmarks.readme --write"
    assert readme.main(["--check"]) == 0


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    copy = tmp_path / "README.md"
    shutil.copy2(readme.README, copy)
    return copy, results


def test_a_changed_number_makes_the_readme_stale(tmp_path: Path) -> None:
    copy, results = _copy(tmp_path)
    path = results / "discovery.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    report["rows"][0]["objects_per_cpu_s"] += 1
    path.write_text(json.dumps(report), encoding="utf-8")
    args = ["--readme", str(copy), "--results", str(results)]
    assert readme.main(["--check", *args]) == 1
    assert readme.main(["--write", *args]) == 0
    assert readme.main(["--check", *args]) == 0
    assert f"{report['rows'][0]['objects_per_cpu_s']:,}" in readme.current_section(copy.read_text(encoding="utf-8"))


def test_a_readme_without_the_markers_fails_the_check(tmp_path: Path) -> None:
    copy, results = _copy(tmp_path)
    copy.write_text(copy.read_text(encoding="utf-8").replace(readme.END, ""), encoding="utf-8")
    assert readme.main(["--check", "--readme", str(copy), "--results", str(results)]) == 1


def test_a_discovery_run_writes_every_object_into_the_manifest() -> None:
    row = run_one(2_345)
    assert row["written"] == 2_345
    assert row["uploaded_bytes"] == row["manifest_bytes"] > 2_345 * 100
    assert row["objects_per_cpu_s"] is not None
    assert row["objects_per_cpu_s"] > 0


def _row(objects: int, rate: int, rss: float) -> dict[str, float]:
    return {"objects": objects, "objects_per_cpu_s": rate, "peak_rss_mib": rss}


def test_the_targets_are_judged_from_the_slowest_rate_and_the_rss_growth() -> None:
    met = summary([_row(10_000, 60_000, 100.0), _row(1_000_000, 55_000, 109.0)])
    assert (met["throughput_target_met"], met["rss_target_met"]) == (True, True)
    missed = summary([_row(10_000, 60_000, 100.0), _row(1_000_000, 49_999, 111.0)])
    assert (missed["throughput_target_met"], missed["rss_target_met"]) == (False, False)
    assert missed["slowest_objects_per_cpu_s"] == 49_999


def test_use_cases_are_discovered_from_their_templates() -> None:
    found = use_cases()
    assert found, "no use-case folder with a template-deploy.yaml"
    assert all((uc / "template-deploy.yaml").is_file() and (uc / "functions").is_dir() for uc in found)
