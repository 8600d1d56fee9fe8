"""Fuzzing the UC6 layout decoders: real files from the sample generator, mutated and truncated.

For every mutated input, every chunk size (1 byte up to 1 MiB) and with or without the object
size, with the compiled inner loops (native/uc06_layoutscan.c) and with the pure-Python ones,
a decoder either returns a summary whose record is valid JSON (finite numbers only, UTF-8
encodable names) or raises ``InvalidFileError`` (a subclass of it): no IndexError, struct.error,
ValueError, RecursionError, OverflowError or MemoryError escapes. Memory stays within a fixed
multiple of the chunk size plus the decoder's documented caps. Seeded (``derandomize``) with a
bounded number of examples, so the module runs in well under a minute on one core. Every single-bit
flip of the smallest sample of each format is run too (exhaustively, with both implementations).
"""

from __future__ import annotations

import json
import tempfile
import time
import tracemalloc
from functools import cache
from pathlib import Path

import gdstk
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.samples.semiconductor_eda import layout_bytes
from shared.errors import InvalidFileError
from tests.support.mutations import single_bit_flips
from tests.support.uc06 import load_function
from tests.support.uc06_native import IMPLEMENTATIONS, use

pytestmark = pytest.mark.property

M = load_function("metadata_extraction", "layout", "gdsii", "oasis", "extraction")
L = M.layout
CHUNKS = (1, 7, 64, 4096, 1024 * 1024)


@cache
def seeds() -> dict[str, list[bytes]]:
    """Valid files of both formats: GDSII, OASIS plain and CBLOCK-compressed, each validation."""
    oas = [layout_bytes(i, "oas") for i in (0, 1, 2, 3)]  # checksum32/crc32, plain/compressed
    lib = gdstk.Library("FUZZ")
    leaf = lib.new_cell("LEAF_ä")
    leaf.add(gdstk.rectangle((0, 0), (2, 1), layer=3), gdstk.Label("pin", (0, 0), layer=5))
    leaf.add(gdstk.FlexPath([(0, 0), (3, 0), (3, 3)], 0.2, layer=4, simple_path=True))
    lib.new_cell("TOP").add(gdstk.Reference(leaf, (0, 0), columns=3, rows=2, spacing=(5, 5)))
    with tempfile.TemporaryDirectory() as tmp:
        lib.write_oas(Path(tmp) / "n.oas", compression_level=0)  # no validation: mutations parse on
        oas.append((Path(tmp) / "n.oas").read_bytes())
        lib.write_gds(Path(tmp) / "n.gds")
        gds = [layout_bytes(i, "gds") for i in (0, 2)] + [(Path(tmp) / "n.gds").read_bytes()]
    return {"gds": gds, "oas": oas}


@st.composite
def mutated(draw: st.DrawFn, fmt: str) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds()[fmt])))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


def outcome(fmt: str, data: bytes, chunk: int, size_known: bool) -> str:
    """"ok" or the typed error's name; anything else propagates and fails the test."""
    source = L.bytes_source(data, chunk)
    size = len(data) if size_known else None
    try:
        if fmt == "gds":
            summary = M.gdsii.parse(L.Decoder(source, size=size))
        else:
            summary = M.oasis.parse(M.oasis.decoder(source, size=size))
    except InvalidFileError as e:
        error: InvalidFileError = e
    else:
        json.dumps(summary.to_record(), allow_nan=False, ensure_ascii=False).encode("utf-8")
        return "ok"
    assert error.message
    return type(error).__name__


FUZZ = settings(
    derandomize=True,
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@pytest.mark.parametrize("fmt", ["gds", "oas"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_mutated_files_yield_a_valid_record_or_a_typed_error(fmt, implementation):
    @FUZZ
    @given(data=mutated(fmt), chunk=st.sampled_from(CHUNKS), size_known=st.booleans())
    def run(data: bytes, chunk: int, size_known: bool) -> None:
        started = time.process_time()
        outcome(fmt, data, chunk, size_known)
        assert time.process_time() - started < 5  # bounded time per input

    with use(L, implementation):
        run()


@pytest.mark.parametrize("fmt", ["gds", "oas"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_every_chunk_size_gives_the_same_outcome(fmt, implementation):
    @settings(FUZZ, max_examples=100)
    @given(data=mutated(fmt))
    def run(data: bytes) -> None:
        results = {outcome(fmt, data, chunk, True) for chunk in (1, 64, 1024 * 1024)}
        assert len(results) == 1, results

    with use(L, implementation):
        run()


@pytest.mark.parametrize("fmt", ["gds", "oas"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_memory_is_bounded_by_the_chunk_whatever_the_mutation(fmt, implementation):
    @settings(FUZZ, max_examples=40)
    @given(data=mutated(fmt), chunk=st.sampled_from([64, 64 * 1024]))
    def run(data: bytes, chunk: int) -> None:
        tracemalloc.start()
        try:
            outcome(fmt, data, chunk, False)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # Buffer and join (2 x (chunk + cap)), a CBLOCK's inflation window and its inner buffer,
        # and the summary of a sample-sized library.
        bound = 2 * (chunk + L.MAX_READ_BYTES) + 3 * (M.oasis._INFLATE_WINDOW + L.MAX_READ_BYTES) + 256 * 1024
        assert peak < bound

    with use(L, implementation):
        run()


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_unmutated_seeds_all_parse(implementation):
    # The fuzzer starts from valid files: each parses, at every chunk size.
    with use(L, implementation):
        for fmt, files in seeds().items():
            for data in files:
                assert {outcome(fmt, data, chunk, True) for chunk in CHUNKS} == {"ok"}


@pytest.mark.parametrize("fmt", ["gds", "oas"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_every_single_bit_flip_of_a_sample_is_read_or_a_typed_error(fmt, implementation):
    """Exhaustive, over every byte of the smallest sample of each format (OASIS: CBLOCK-compressed,
    CRC-32): ``outcome`` lets nothing but a summary or ``InvalidFileError`` through."""
    with use(L, implementation):
        for flipped in single_bit_flips(layout_bytes(1, fmt)):
            outcome(fmt, flipped, 64 * 1024, True)
