"""The local runner as strict as AWS, end to end (issue 13): ``--keep``, env.json, unfired faults.

The unit-level checks of the same differences are in tests/local/test_runner_strictness.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from local.cli import main
from local.runner.run import RunOptions, run_use_case
from tests.local.fixtures import mini_samples

pytestmark = pytest.mark.workflow

FIXTURE = Path(__file__).resolve().parents[1] / "local" / "fixtures" / "mini-pipeline"
LONG_NAME = "data/group-1/" + "ü" * 150 + ".dat"  # one 304-byte path segment


def _with_long_key(s3: Any, access_point_arn: str, *, objects: int, seed: int = 0) -> mini_samples.SampleSet:
    samples = mini_samples.generate(s3, access_point_arn, objects=objects, seed=seed)
    s3.put_object(Bucket=access_point_arn, Key=LONG_NAME, Body=b"okok")
    samples.keys.append(LONG_NAME)
    samples.valid.append(LONG_NAME)
    return samples


def test_keep_writes_each_run_into_its_own_folder_and_keys_of_any_length(tmp_path):
    results = [
        run_use_case(
            FIXTURE, RunOptions(objects=4, keep=tmp_path, retry_time_scale=0.0, sample_generator=_with_long_key)
        )
        for _ in range(2)
    ]
    first, second = results
    for result in results:
        assert result.status == "SUCCEEDED", result.cause
        assert result.ok
    assert first.execution_name != second.execution_name
    runs = sorted(p.name for p in (tmp_path / "mini-pipeline").iterdir())
    assert runs == sorted([first.execution_name, second.execution_name])
    for result in results:
        kept = tmp_path / "mini-pipeline" / result.execution_name
        assert result.outputs == str(kept)
        index = json.loads((kept / "s3-keys.json").read_text())
        written = {key: kept / path for keys in index.values() for key, path in keys.items()}
        # Every object is kept, the 304-byte segment included, and only this run's records.
        assert any(max(len(part.encode()) for part in key.split("/")) > 255 for key in written)
        assert all(path.is_file() for path in written.values())
        records = [key for key in written if key.startswith("results/execution_id=")]
        assert records
        assert all(key.startswith(f"results/execution_id={result.execution_name}/") for key in records)
        assert (kept / "lambda.log").is_file()  # one log per run, never appended to another's


def test_template_parameters_win_over_env_json_and_unfired_faults_fail_the_command(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [
            "--uc", "semiconductor-eda", "--objects", "20", "--quiet", "--json", "--retry-time-scale", "0",
            "--parameter", "FileSuffixes=.oas",
            "--fault", "s3:GetObject=transient,match=no-such-object-anywhere",
        ],
        out=out,
        err=err,
    )  # fmt: skip
    document = json.loads(out.getvalue())
    (result,) = document["results"]
    assert result["status"] == "SUCCEEDED", result["cause"]
    # events/env.json says FILE_SUFFIXES=.gds,.gds2,.oas,.oasis; the stack's parameter decides.
    oas = [k for k in result["samples"]["keys"] if k.endswith(".oas")]
    assert oas
    assert result["items_total"] == len(oas)
    assert "DiscoveryFunction.FILE_SUFFIXES" in result["env_overrides"]["kept_from_template"]
    # The fault matched nothing: the run tested nothing of what was asked, so the command fails.
    assert code == 1
    assert document["unfired_faults"] == ["s3:GetObject=transient,match=no-such-object-anywhere"]
    assert result["faults"] == [
        {"fault": "s3:GetObject=transient", "match": "no-such-object-anywhere", "hits": 0, "fired": False}
    ]
    assert "fault never fired" in err.getvalue()
