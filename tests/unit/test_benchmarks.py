"""benchmarks/: the README's Performance section matches the committed JSON and covers every
benchmark; the discovery numbers come from a complete manifest; the targets' verdicts follow the
numbers; the payload watch sees what the runner records; the sensor readers' comparison can fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

from benchmarks import readme, sensors_bench
from benchmarks.common import REPO, RESULTS, PeakRss, use_cases
from benchmarks.discovery_bench import run_one, summary
from benchmarks.payload_bench import growth
from benchmarks.pipeline_runs import PayloadWatch, inline_map_limit, measured_run
from local.runner.engine import ChildEventManager
from tests.snapstart.world import function_label, real_functions

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


# --- the README section covers every benchmark ----------------------------------------------------
@pytest.mark.parametrize("name", sorted(set(readme.RENDERERS) | {path.stem for path in RESULTS.glob("*.json")}))
def test_every_committed_result_is_in_the_readme_and_a_change_makes_it_stale(tmp_path: Path, name: str) -> None:
    assert name in readme.RENDERERS, f"benchmarks/results/{name}.json has no renderer in benchmarks/readme.py"
    copy, results = _copy(tmp_path)
    path = results / f"{name}.json"
    assert path.is_file(), f"benchmarks/results/{name}.json is not committed: run benchmarks/run.sh --quick"
    report = json.loads(path.read_text(encoding="utf-8"))
    report["date"] = "1999-12-31"
    path.write_text(json.dumps(report), encoding="utf-8")
    args = ["--readme", str(copy), "--results", str(results)]
    assert readme.main(["--check", *args]) == 1
    assert readme.main(["--write", *args]) == 0
    assert "1999-12-31" in readme.current_section(copy.read_text(encoding="utf-8"))


# --- payload: the watch on the runner's history events, the inline-Map limit ----------------------
def test_the_inline_map_limit_is_the_first_count_over_the_limit() -> None:
    entry = json.dumps({"key": "k" * 60, "size": 1, "etag": "e" * 20}, separators=(",", ":"))
    count = inline_map_limit([entry], limit=10_000)

    def size(n: int) -> int:
        return len(json.dumps({"objects": [json.loads(entry)] * n}, separators=(",", ":")).encode())

    assert size(count) > 10_000 >= size(count - 1)
    # Entries are taken in order and repeated: a longer second entry lowers the count.
    assert inline_map_limit([entry, entry + " " * 200], limit=10_000) < count
    with pytest.raises(ValueError, match="no listed-object entries"):
        inline_map_limit([])


def test_the_watch_keeps_the_largest_payload_and_each_childs_listed_items_once() -> None:
    watch = PayloadWatch()
    main, child = EventManager(), ChildEventManager(map_state="Extract", execution_name="child-1")
    listed = {"key": "a b/ä.gds", "size": 3, "etag": "x", "last_modified": "2026-01-01T00:00:00.000Z"}
    batch = json.dumps({"Items": [listed, {"not": "a listed object"}], "BatchInput": {"n": 1}})
    watch.see(main, "HistoryEventType.TaskStateEntered", {"stateEnteredEventDetails": {"name": "A", "input": "{}"}})
    watch.see(child, "HistoryEventType.TaskStateEntered", {"stateEnteredEventDetails": {"name": "B", "input": batch}})
    # The same child's later states are not its input: their items are not counted again.
    watch.see(child, "HistoryEventType.PassStateEntered", {"stateEnteredEventDetails": {"name": "C", "input": batch}})
    watch.see(main, "HistoryEventType.TaskStateExited", {"stateExitedEventDetails": {"name": "D", "output": "ü" * 50}})
    assert watch.payloads == 4
    assert watch.largest.to_dict() == {
        "bytes": len(batch.encode()),
        "state": "B",
        "event": "TaskStateEntered",
        "in_child_execution": True,
    }
    assert (watch.largest_main.bytes, watch.largest_main.state) == (100, "D")  # UTF-8 bytes, not characters
    assert [json.loads(item) for item in watch.map_items] == [listed]


def test_watching_sees_a_real_local_run_and_puts_moto_back() -> None:
    original = EventManager.add_event
    run = measured_run(REPO / "semiconductor-eda", 12)
    assert EventManager.add_event is original
    assert run.records_succeeded + run.records_failed == 12
    # Every listed object reached the Map exactly once, and no payload carried the listing.
    keys = [json.loads(item)["key"] for item in run.watch.map_items]
    assert len(keys) == len(set(keys)) == 12
    assert 0 < run.watch.largest.bytes < sum(len(item) for item in run.watch.map_items)


# --- sensors: the readers agree, and the comparison tells results apart -------------------------
@pytest.mark.parametrize("kind", sensors_bench.KINDS)
def test_both_sensor_readers_agree_and_ours_reads_at_most_the_file(tmp_path: Path, kind: str) -> None:
    path, other = tmp_path / f"a{sensors_bench.SUFFIX[kind]}", tmp_path / f"b{sensors_bench.SUFFIX[kind]}"
    sensors_bench.write_file(kind, path, 300_000, seed=1)
    sensors_bench.write_file(kind, other, 300_000, seed=2)
    ours, read = sensors_bench._ours(kind, path)
    whole, whole_read = sensors_bench._whole(kind, path)
    assert sensors_bench._same(ours, whole), (ours, whole)
    assert whole_read == path.stat().st_size >= read > 0
    # A different file's results are told apart (the check can fail).
    assert not sensors_bench._same(ours, sensors_bench._whole(kind, other)[0])


def test_the_comparison_allows_float_rounding_only() -> None:
    same = sensors_bench._same
    assert same({"a": [1.0, 2]}, {"a": [1.0 + 1e-13, 2]})
    assert not same({"a": [1.0, 2]}, {"a": [1.0001, 2]})
    assert not same({"a": [1.0, 2]}, {"a": [1.0]})
    assert not same({"a": 1}, {"b": 1})
    assert not same([None], [0.0])


def test_peak_rss_sees_a_block_below_an_earlier_peak() -> None:
    import numpy as np

    earlier = np.ones(200_000_000 // 8)  # a peak before the block, freed
    del earlier
    with PeakRss() as rss:
        block = np.ones(40_000_000 // 8)
        del block
    assert rss.growth_bytes > 30_000_000  # ru_maxrss alone would show 0: the earlier peak is higher
    assert rss.reset


# --- handlers: every function of every use case -------------------------------------------------
def test_the_handlers_benchmark_covers_every_function_of_every_use_case() -> None:
    measured = real_functions()
    assert {uc.name for uc, _ in measured} == {path.name for path in use_cases()}
    for uc in {uc.name: uc for uc, _ in measured}.values():
        assert [fn for u, fn in measured if u.name == uc.name] == list(uc.functions)
    labels = [function_label(uc, fn) for uc, fn in measured]
    assert len(set(labels)) == len(labels)


def test_a_payload_that_grows_with_the_object_count_is_called_growth() -> None:
    assert growth([1_500, 1_530], [100, 1_000]) == {"growth": 0.02, "exponent": 0.0086, "grows": False}
    # Bounded by the batch, longer keys in the larger sample: UC1's 100 / 100,000-object runs.
    assert growth([7_547, 8_686], [100, 100_000])["grows"] is False
    # A payload carrying the listing: ~140 bytes an object, 100 then 1,000 objects.
    assert growth([14_000, 140_000], [100, 1_000]) == {"growth": 9.0, "exponent": 1.0, "grows": True}
    # Slower than in proportion, still growth: 26 % over ten times the objects.
    assert growth([1_000, 1_260], [100, 1_000])["grows"] is True
