"""UC6 through the shared failure boundary: real GDSII/OASIS files, mutated and truncated at random,
each yield exactly one writable record (SUCCEEDED, or FAILED with a typed error), never an escape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.batch import FAILED, SUCCEEDED, item_record
from shared.s3ap import ObjectInfo
from tests.support.uc06 import load_function

pytestmark = pytest.mark.property

M = load_function("metadata_extraction", "extraction", "layout")


def _files() -> dict[str, bytes]:
    import tempfile

    import gdstk

    with tempfile.TemporaryDirectory() as tmp:
        lib = gdstk.Library("LIB", unit=1e-6, precision=1e-9)
        leaf = lib.new_cell("LEAF_ä")
        leaf.add(gdstk.rectangle((0, 0), (2, 1), layer=1, datatype=3))
        top = lib.new_cell("TOP")
        top.add(gdstk.Reference(leaf, (0, 0), columns=3, rows=2, spacing=(3, 3)))
        top.add(gdstk.Label("pin", (0, 0), layer=10))
        lib.write_gds(Path(tmp) / "a.gds")
        lib.write_oas(Path(tmp) / "a.oas", compression_level=6)
        lib.write_oas(Path(tmp) / "b.oas", compression_level=0)
        return {name: (Path(tmp) / name).read_bytes() for name in ("a.gds", "a.oas", "b.oas")}


FILES = _files()
TYPED = {"InvalidFileError", "TruncatedFileError", "LengthLimitError", "ReferenceCycleError",
         "FileBudgetExceededError", "InvalidRecordError"}


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(FILES)))
    data = bytearray(FILES[name])
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]
    return name, bytes(data)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from([1, 7, 64, 4096]))
def test_every_mutated_file_yields_one_writable_record(case, chunk):
    name, data = case
    item = ObjectInfo(key=f"fuzz/{name}", size=len(data), etag="e", last_modified="2026-01-01T00:00:00.000Z")

    def work(it: ObjectInfo, facts: dict[str, Any]) -> Any:
        facts["bytes_read"] = len(data)
        summary = M.extraction.extract(M.layout.bytes_source(data, chunk), label=it.key, size=len(data))
        return summary.to_record(max_names=50)

    record, body = item_record(item, work, defaults={"format": None})
    assert json.loads(body) == record
    assert record["status"] in (SUCCEEDED, FAILED)
    if record["status"] == FAILED:
        assert record["error_type"] in TYPED, record  # a typed error: never InternalError
