"""Properties of UC9's point-cloud parsers: LZF round-trips (whole and in arbitrary input pieces),
the LZF decoder on arbitrary bytes fails only with InvalidFileError, PCD headers round-trip,
figures match their definition for random clouds in every encoding, and truncating a file at any
offset is a typed error."""

from __future__ import annotations

import contextlib
import io
import random
import re
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.samples import autonomous_driving as samples
from shared.errors import InvalidFileError
from tests.support.mutations import single_bit_flips
from tests.support.uc09 import load_function

pytestmark = pytest.mark.property

QC = load_function("pointcloud_qc", "pcd", "las", "stats")
ENCODINGS = ("ascii", "binary", "binary_compressed")
FIGURES = (
    "point_count",
    "nonfinite_points",
    "zero_points",
    "bounds",
    "density_per_m2",
    "intensity_min",
    "intensity_max",
)

# Data with repeats (what LZF finds back-references in) as well as noise.
compressible = st.lists(
    st.one_of(st.binary(min_size=1, max_size=40), st.tuples(st.binary(min_size=1, max_size=8), st.integers(2, 200))),
    max_size=40,
).map(lambda parts: b"".join(p if isinstance(p, bytes) else p[0] * p[1] for p in parts))


@given(compressible)
@settings(max_examples=200, deadline=None)
def test_lzf_round_trip(data):
    packed = samples.lzf_compress(data)
    assert QC.pcd.lzf_decompress(packed, len(data)) == data


@given(compressible, st.lists(st.integers(1, 64), min_size=1, max_size=20), st.integers(1, 4096))
@settings(max_examples=150, deadline=None)
def test_lzf_streams_from_any_input_pieces_into_any_output_pieces(data, sizes, piece):
    packed = samples.lzf_compress(data)
    position = 0
    calls = 0

    def read(n: int) -> bytes:
        nonlocal position, calls
        take = min(n, sizes[calls % len(sizes)])  # fewer bytes than asked, as a stream may give
        calls += 1
        chunk = packed[position : position + take]
        position += len(chunk)
        return chunk

    stream = QC.pcd.LzfStream(read, len(packed), len(data))
    assert b"".join(stream.chunks(piece)) == data


@given(st.binary(max_size=300), st.integers(0, 2000))
@settings(max_examples=400, deadline=None)
def test_the_lzf_decoder_on_arbitrary_bytes_returns_the_declared_size_or_a_typed_error(data, size):
    try:
        out = QC.pcd.lzf_decompress(data, size)
    except InvalidFileError:
        return
    assert len(out) == size


field_names = st.lists(
    st.sampled_from(["intensity", "rgb", "ring", "t", "normal_x", "label", "_"]), max_size=4, unique=True
)
field_types = st.sampled_from(
    [("F", 4), ("F", 8), ("I", 1), ("I", 2), ("I", 4), ("I", 8), ("U", 1), ("U", 2), ("U", 4), ("U", 8)]
)


@given(field_names, st.data(), st.integers(0, 10**6), st.integers(1, 64), st.sampled_from(ENCODINGS), st.booleans())
@settings(max_examples=200, deadline=None)
def test_pcd_headers_round_trip(extra, data, width, height, encoding, with_points):  # noqa: PLR0917
    names = ["x", "y", "z", *extra]
    types = [("F", 4)] * 3 + [data.draw(field_types) for _ in extra]
    counts = [1, 1, 1] + [data.draw(st.integers(1, 4)) for _ in extra]
    lines = [
        "# .PCD v0.7 - Point Cloud Data file format",
        "VERSION 0.7",
        "FIELDS " + " ".join(names),
        "SIZE " + " ".join(str(s) for _, s in types),
        "TYPE " + " ".join(t for t, _ in types),
        "COUNT " + " ".join(str(c) for c in counts),
        f"WIDTH {width}",
        f"HEIGHT {height}",
        "VIEWPOINT 0 0 0 1 0 0 0",
        *([f"POINTS {width * height}"] if with_points else []),
        f"DATA {encoding}",
    ]
    text = ("\n".join(lines) + "\n").encode()
    stream = io.BytesIO(text + b"payload")
    header = QC.pcd.parse_header(stream, len(text) + 7)
    assert header.fields == tuple(names)
    assert header.types == tuple(t for t, _ in types)
    assert header.sizes == tuple(s for _, s in types)
    assert header.counts == tuple(counts)
    assert (header.width, header.height, header.points) == (width, height, width * height)
    assert header.encoding == encoding
    assert header.data_offset == len(text)
    assert stream.tell() == len(text)
    assert header.point_size == sum(s * c for (_, s), c in zip(types, counts, strict=True))
    assert header.dtype().itemsize == header.point_size


coordinate = st.floats(-1e4, 1e4, width=32) | st.just(0.0) | st.just(float("nan")) | st.just(float("inf"))


@given(
    st.lists(st.tuples(coordinate, coordinate, coordinate, st.floats(0, 65535, width=32)), min_size=1, max_size=60),
    st.sampled_from(ENCODINGS),
    st.integers(1024, 4096),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_figures_match_their_definition_in_every_encoding(points, encoding, chunk_points):
    x, y, z, intensity = (np.array(column, dtype=np.float32) for column in zip(*points, strict=True))
    cloud = samples.Cloud(x, y, z, intensity)
    data = samples.write_pcd(cloud, encoding)
    got = QC.pcd.analyse(io.BytesIO(data), len(data), chunk_points=chunk_points, chunk_bytes=64)
    expected = samples.expected_figures(x, y, z, intensity)
    assert {f: got[f] for f in FIGURES} == {f: expected[f] for f in FIGURES}


def _files(seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    cloud = samples.make_cloud(rng, 12, nan_points=2, zero_points=1)
    values = samples.las_points(rng, 15)
    files = {encoding: samples.write_pcd(cloud, encoding) for encoding in ENCODINGS}
    files["las"] = samples.write_las(values, compress=False)
    files["laz"] = samples.write_las(values, compress=True)
    return files


def _analyse(data: bytes) -> Any:
    if data.startswith(b"LASF"):
        return QC.las.analyse(io.BytesIO(data), len(data), label="t", chunk_points=8)
    return QC.pcd.analyse(io.BytesIO(data), len(data), chunk_points=8, chunk_bytes=64)


@pytest.mark.parametrize("kind", [*ENCODINGS, "las", "laz"])
def test_truncation_at_every_offset_is_a_typed_error(kind):
    data = _files(1)[kind]
    _analyse(data)  # the whole file is fine
    for offset in range(len(data)):
        with pytest.raises(InvalidFileError):
            _analyse(data[:offset])


@given(st.integers(0, 2**16), st.sampled_from([*ENCODINGS, "las", "laz"]), st.data())
@settings(max_examples=60, deadline=None)
def test_a_byte_flip_is_either_read_or_a_typed_error(seed, kind, data):
    original = bytearray(_files(seed % 8)[kind])
    index = data.draw(st.integers(0, len(original) - 1))
    original[index] ^= data.draw(st.integers(1, 255))
    try:
        figures = _analyse(bytes(original))
    except InvalidFileError:
        return
    assert figures["point_count"] >= 0


def _every_single_bit_flip_is_read_or_a_typed_error(original: bytes, head: int) -> None:
    """Each of the 8 * ``head`` files with one bit of ``original[:head]`` flipped."""
    for flipped in single_bit_flips(original, head):
        try:
            figures = _analyse(flipped)
        except InvalidFileError:
            continue
        assert figures["point_count"] >= 0


@pytest.mark.parametrize("kind", ["las", "laz"])
def test_every_single_bit_flip_of_a_las_header_is_read_or_a_typed_error(kind):
    """Exhaustive over the header, the VLRs and the chunk table's offset: where laspy and lazrs
    allocate by a declared count or size, one flipped bit asked for gigabytes before the checks."""
    original = _files(0)[kind]
    head = int.from_bytes(original[96:100], "little") + 8
    _every_single_bit_flip_is_read_or_a_typed_error(original, head)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_single_bit_flip_of_a_pcd_header_is_read_or_a_typed_error(encoding):
    """Exhaustive over the header and, for binary_compressed, its two sizes and the first LZF bytes."""
    original = _files(0)[encoding]
    head = original.index(b"DATA") + len(f"DATA {encoding}\n") + 16
    _every_single_bit_flip_is_read_or_a_typed_error(original, head)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("value", [0, 10**9, 2**31, 2**32, 2**40, 10**30])
def test_header_numbers_overwritten_with_huge_values_are_refused_without_allocating(encoding, value):
    """Each header number, and every occurrence of it at once (WIDTH and POINTS stay equal), set to
    ``value``: a typed error or the figures, with under 1 MB allocated whatever the points declared
    (binary_compressed allocated two flags per declared point before comparing its sizes)."""
    original = _files(0)[encoding]
    end = original.index(b"DATA")
    header, data = original[:end], original[end:]
    numbers = {m.group() for m in re.finditer(rb"(?<=\s)\d+(?=\s)", header)}
    variants = [header[: m.start()] + b"%d" % value + header[m.end() :] for m in re.finditer(rb"\d+", header)]
    variants += [re.sub(rb"(?<=\s)" + n + rb"(?=\s)", b"%d" % value, header) for n in numbers]
    tracemalloc.start()
    try:
        for variant in variants:
            with contextlib.suppress(InvalidFileError):
                _analyse(variant + data)
            _, peak = tracemalloc.get_traced_memory()
            assert peak < 1024 * 1024, (variant, peak)
    finally:
        tracemalloc.stop()
