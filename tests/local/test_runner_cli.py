"""local.cli and scripts/local-test.sh: arguments, messages, exit codes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from local import cli, sam_engine, usecases
from local.__main__ import split_engine
from local.cli import main, render_table
from local.runner.run import RunResult

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "local-test.sh"


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.unit
def test_unknown_use_case_is_a_usage_error():
    code, _, err = _main("--uc", "no-such-use-case")
    assert code == 2
    assert "unknown use case 'no-such-use-case'; present: " in err


@pytest.mark.unit
def test_bad_fault_spec_is_a_usage_error():
    code, _, err = _main("--fault", "s3:GetObject=often")
    assert code == 2
    assert "unknown mode" in err


@pytest.mark.unit
def test_bad_parameter_is_a_usage_error():
    code, _, err = _main("--parameter", "novalue")
    assert code == 2
    assert "KEY=VALUE" in err


@pytest.mark.unit
@pytest.mark.parametrize("argv", [["--objects", "0"], ["--objects", "many"], ["--bogus"], ["--engine", "docker"]])
def test_argument_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


@pytest.mark.unit
def test_table_has_one_row_per_use_case_and_flags_lost_items():
    ok = RunResult(use_case="a", status="SUCCEEDED", states_executed=9, items_total=4, duration_s=1.5, outputs="s3://x")
    lost = RunResult(use_case="b", status="SUCCEEDED", items_total=4, unaccounted=["k"], items_failed=1)
    failed = RunResult(use_case="c", status="FAILED", error="TooManyFailuresError", cause="3 of 4 failed")
    lines = render_table([ok, lost, failed]).splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line and line.split()[0] in {"a", "b", "c"}}
    assert rows["a"][1:6] == ["SUCCEEDED", "9", "4", "0", "0"]
    assert rows["b"][1] == "INCOMPLETE"
    assert rows["c"][1] == "FAILED"
    assert any("TooManyFailuresError" in line for line in lines)


@pytest.mark.scripts
def test_script_help():
    done = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert "--engine" in done.stdout
    assert "--objects" in done.stdout


@pytest.mark.scripts
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--engine", "podman"], "unknown engine 'podman'"),
        (["--engine"], "--engine needs a value"),
        (["--uc", "no-such-use-case"], "unknown use case"),
        (["--what"], "unrecognized arguments"),
    ],
)
def test_script_rejects_bad_arguments(argv, message):
    done = subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.unit
@pytest.mark.parametrize(
    ("argv", "engine", "rest", "error"),
    [
        (["--uc", "x"], None, ["--uc", "x"], None),
        (["--engine", "sam", "--json"], "sam", ["--json"], None),
        (["--json", "--engine=auto"], "auto", ["--json"], None),
        (["--engine"], None, [], "--engine needs a value (embedded|sam|auto)"),
        (["--engine", "docker"], None, [], "unknown engine 'docker' (expected embedded, sam or auto)"),
    ],
)
def test_one_entry_point_splits_the_engine_from_its_arguments(argv, engine, rest, error):
    assert split_engine(argv) == (engine, rest, error)


@pytest.mark.unit
def test_python_dash_m_local_dispatches_to_the_embedded_engine():
    done = subprocess.run(
        [sys.executable, "-m", "local", "--engine", "embedded", "--uc", "no-such-use-case"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert "unknown use case 'no-such-use-case'; present: " in done.stderr


# --- the options both engines take are one declaration (local.run_arguments) -------------------
@pytest.mark.unit
@pytest.mark.parametrize("name", ["semiconductor-eda", "uc06-semiconductor-eda", "uc06", "uc6", "6"])
def test_both_engines_pick_a_use_case_by_folder_events_name_or_number(name, monkeypatch):
    ran: list[str] = []

    def fake_run(use_case_dir: Path, options: object) -> RunResult:
        ran.append(use_case_dir.name)
        return RunResult(use_case=use_case_dir.name, status="SUCCEEDED")

    monkeypatch.setattr("local.runner.run.run_use_case", fake_run)  # local.cli imports it when it runs
    code, _, _ = _main("--uc", name, "--quiet")
    assert (code, ran) == (0, ["semiconductor-eda"])
    assert sam_engine.parse_args(["--uc", name]).uc == [name]
    # sam_engine.main resolves the names with the same call:
    assert [uc.name for uc in usecases.select(usecases.discover(), [name])] == ["semiconductor-eda"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("parse", "argv", "message"),
    [
        (main, ["--objects", "0"], "expected a positive integer, got '0'"),
        (main, ["--objects", "1.5"], "expected a positive integer, got '1.5'"),
        (sam_engine.parse_args, ["--objects", "0"], "expected an integer from 1 to 10,000, got '0'"),
        (sam_engine.parse_args, ["--objects", "10001"], "expected an integer from 1 to 10,000, got '10001'"),
    ],
)
def test_both_engines_refuse_an_object_count_out_of_range_with_exit_2(parse, argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        parse(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.unit
def test_both_engines_take_the_same_shared_options():
    assert sam_engine.parse_args(["--objects", "10000", "--keep", "k", "--json"]).objects == 10_000
    for parse in (cli.build_parser([]).parse_args, sam_engine.parse_args):
        args = parse(["--uc", "uc1", "--uc", "uc9", "--objects", "7", "--keep", "out", "--json"])
        assert (args.uc, args.objects, args.keep, args.json) == (["uc1", "uc9"], 7, Path("out"), True)
        defaults = parse([])
        assert (defaults.uc, defaults.keep, defaults.json) == ([], None, False)
