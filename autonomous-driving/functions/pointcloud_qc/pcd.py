"""PCD (Point Cloud Library's Point Cloud Data format, v0.5-0.7): header, the three DATA encodings.

A PCD file is an ASCII header of ``KEY values`` lines ending with ``DATA ascii|binary|
binary_compressed``, then the points:

- ``ascii``: one line per point, whitespace-separated values in FIELDS order, each line ending
  in a newline (as PCL writes it; a last line without one is taken as truncated);
- ``binary``: POINTS records of sum(SIZE*COUNT) bytes, little-endian, row-major;
- ``binary_compressed``: uint32 compressed size, uint32 uncompressed size, then one LZF block
  whose output is column-major (all values of the first field, then the second, ...).

Everything is streamed from a seekable binary file of known size: chunks of points, never the
whole file. Every declared length is checked against the bytes that remain before it is used, and
the LZF decoder checks every literal run and back-reference; a violation is ``InvalidFileError``.
``binary_compressed`` keeps two flags per declared point, so its sizes are checked before those are
allocated: the compressed size against the bytes that remain, the uncompressed size against POINTS
x point size and against ``LZF_MAX_EXPANSION`` (88) times the compressed size (a WIDTH and POINTS of
2**31 had 4 GiB allocated before the sizes were compared).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from stats import AXES, CloudStats

from shared.errors import InvalidFileError

MAX_HEADER_BYTES = 64 * 1024
MAX_FIELDS = 256
MAX_POINTS = 2**40
ENCODINGS = ("ascii", "binary", "binary_compressed")
_TYPES = {
    ("F", 4): "<f4",
    ("F", 8): "<f8",
    ("I", 1): "i1",
    ("I", 2): "<i2",
    ("I", 4): "<i4",
    ("I", 8): "<i8",
    ("U", 1): "u1",
    ("U", 2): "<u2",
    ("U", 4): "<u4",
    ("U", 8): "<u8",
}
_INTENSITY_NAMES = ("intensity", "i")
LZF_WINDOW = 8192  # the farthest an LZF back-reference reaches
# The most output per compressed byte: a back-reference of 3 bytes (control, length, offset) copies
# at most 7 + 255 + 2 = 264 bytes; a literal run yields fewer bytes than it takes.
LZF_MAX_EXPANSION = 88
_ASCII_LINE_MAX = 64 * 1024
_DATA_LINE = re.compile(rb"(?:^|\n)DATA[^\n]*\n")


@dataclass(frozen=True)
class PcdHeader:
    version: str
    fields: tuple[str, ...]
    sizes: tuple[int, ...]
    types: tuple[str, ...]
    counts: tuple[int, ...]
    width: int
    height: int
    points: int
    encoding: str
    data_offset: int

    @property
    def point_size(self) -> int:
        return sum(s * c for s, c in zip(self.sizes, self.counts, strict=True))

    @property
    def intensity_field(self) -> str | None:
        return next((f for f in self.fields if f.lower() in _INTENSITY_NAMES), None)

    def dtype(self) -> np.dtype[np.void]:
        """The row-major record dtype (a field with COUNT > 1 is a sub-array)."""
        spec: list[tuple[str, str] | tuple[str, str, tuple[int]]] = []
        for i, (name, size, kind, count) in enumerate(
            zip(self.fields, self.sizes, self.types, self.counts, strict=True)
        ):
            label = name if name != "_" else f"_pad{i}"  # PCL writes "_" for padding fields
            code = _TYPES[(kind, size)]
            spec.append((label, code) if count == 1 else (label, code, (count,)))
        return np.dtype(spec)


def _ints(values: list[bytes], key: str, minimum: int) -> tuple[int, ...]:
    out = []
    for value in values:
        if not value.isdigit():
            raise InvalidFileError(f"PCD header: {key} values must be integers, got {value!r}")
        number = int(value)
        if number < minimum:
            raise InvalidFileError(f"PCD header: {key} value {number} is below {minimum}")
        out.append(number)
    return tuple(out)


def parse_header(stream: BinaryIO, size: int) -> PcdHeader:
    """Read the header (at most ``MAX_HEADER_BYTES``); the stream is left at the first data byte."""
    buffer = b""
    while not _DATA_LINE.search(buffer):
        if len(buffer) >= min(size, MAX_HEADER_BYTES):
            if len(buffer) >= MAX_HEADER_BYTES:
                raise InvalidFileError(f"PCD header: no DATA line in the first {MAX_HEADER_BYTES} bytes")
            raise InvalidFileError("PCD header: truncated before the DATA line")
        chunk = stream.read(min(4096, MAX_HEADER_BYTES - len(buffer)))
        if not chunk:
            raise InvalidFileError("PCD header: truncated before the DATA line")
        buffer += chunk
    match = _DATA_LINE.search(buffer)
    if match is None:  # the loop above only ends with a DATA line in the buffer
        raise InvalidFileError("PCD header: no DATA line")
    data_offset = match.end()
    entries: dict[str, list[bytes]] = {}
    for raw in buffer[:data_offset].split(b"\n"):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        parts = line.split()
        try:
            key = parts[0].decode("ascii").upper()
        except UnicodeDecodeError as e:
            raise InvalidFileError(f"PCD header: non-ASCII key {parts[0]!r}") from e
        if key in entries:
            raise InvalidFileError(f"PCD header: {key} appears twice")
        entries[key] = parts[1:]
    for required in ("FIELDS", "SIZE", "TYPE", "WIDTH", "HEIGHT", "DATA"):
        if required not in entries:
            raise InvalidFileError(f"PCD header: missing {required}")
    try:
        fields = tuple(v.decode("ascii") for v in entries["FIELDS"])
        types = tuple(v.decode("ascii").upper() for v in entries["TYPE"])
        encoding = b" ".join(entries["DATA"]).decode("ascii").lower()
        version = b" ".join(entries.get("VERSION", [b""])).decode("ascii")
    except UnicodeDecodeError as e:
        raise InvalidFileError("PCD header: non-ASCII FIELDS, TYPE, DATA or VERSION") from e
    if not fields or len(fields) > MAX_FIELDS:
        raise InvalidFileError(f"PCD header: {len(fields)} fields (1-{MAX_FIELDS} allowed)")
    sizes = _ints(entries["SIZE"], "SIZE", 1)
    counts = _ints(entries["COUNT"], "COUNT", 1) if "COUNT" in entries else (1,) * len(fields)
    if not len(fields) == len(sizes) == len(types) == len(counts):
        raise InvalidFileError(
            f"PCD header: FIELDS/SIZE/TYPE/COUNT lengths differ ({len(fields)}/{len(sizes)}/{len(types)}/{len(counts)})"
        )
    for name, kind, length in zip(fields, types, sizes, strict=True):
        if (kind, length) not in _TYPES:
            raise InvalidFileError(f"PCD header: field {name!r} has unsupported TYPE {kind} SIZE {length}")
    if len(set(fields) - {"_"}) != len([f for f in fields if f != "_"]):
        raise InvalidFileError("PCD header: duplicate field names")
    for axis in AXES:
        if axis not in fields:
            raise InvalidFileError(f"PCD header: no {axis!r} field (fields {' '.join(fields)})")
        if counts[fields.index(axis)] != 1:
            raise InvalidFileError(f"PCD header: field {axis!r} must have COUNT 1")
    (width,) = _ints(entries["WIDTH"][:1], "WIDTH", 0) if len(entries["WIDTH"]) == 1 else (-1,)
    (height,) = _ints(entries["HEIGHT"][:1], "HEIGHT", 0) if len(entries["HEIGHT"]) == 1 else (-1,)
    if width < 0 or height < 0:
        raise InvalidFileError("PCD header: WIDTH and HEIGHT take one integer each")
    points = width * height
    if "POINTS" in entries:
        if len(entries["POINTS"]) != 1:
            raise InvalidFileError("PCD header: POINTS takes one integer")
        (declared,) = _ints(entries["POINTS"], "POINTS", 0)
        if declared != points:
            raise InvalidFileError(f"PCD header: POINTS {declared} != WIDTH*HEIGHT {points}")
    if points > MAX_POINTS:
        raise InvalidFileError(f"PCD header: {points} points is beyond any real file")
    if encoding not in ENCODINGS:
        raise InvalidFileError(f"PCD header: unknown DATA encoding {encoding!r}")
    header = PcdHeader(version, fields, sizes, types, counts, width, height, points, encoding, data_offset)
    stream.seek(data_offset)
    return header


def _intensity_values(header: PcdHeader, rows: np.ndarray) -> npt.NDArray[np.float64] | None:
    name = header.intensity_field
    if name is None:
        return None
    values = rows[name]
    return np.asarray(values.reshape(len(rows), -1)[:, 0], dtype=np.float64)


def _read_binary(stream: BinaryIO, size: int, header: PcdHeader, stats: CloudStats, chunk_points: int) -> None:
    needed = header.points * header.point_size
    remaining = size - header.data_offset
    if needed > remaining:
        raise InvalidFileError(
            f"PCD binary: {header.points} points x {header.point_size} bytes need {needed} bytes, {remaining} remain"
        )
    dtype = header.dtype()
    left = header.points
    while left:
        count = min(chunk_points, left)
        data = stream.read(count * header.point_size)
        if len(data) != count * header.point_size:
            raise InvalidFileError("PCD binary: truncated point data")
        rows = np.frombuffer(data, dtype=dtype, count=count)
        x, y, z = (np.asarray(rows[axis], dtype=np.float64) for axis in AXES)
        stats.add_rows(x, y, z, _intensity_values(header, rows))
        left -= count


def _read_ascii(stream: BinaryIO, size: int, header: PcdHeader, stats: CloudStats, chunk_bytes: int) -> None:
    columns = sum(header.counts)
    index = {name: sum(header.counts[:i]) for i, name in enumerate(header.fields)}
    intensity = header.intensity_field
    pending = b""
    read_points = 0
    position = header.data_offset

    def consume(lines: list[bytes]) -> None:
        nonlocal read_points
        lines = [line for line in lines if line.strip()]
        if not lines:
            return
        if read_points + len(lines) > header.points:
            raise InvalidFileError(f"PCD ascii: more than the {header.points} declared points")
        tokens = b" ".join(lines).split()
        if len(tokens) != len(lines) * columns:
            raise InvalidFileError(f"PCD ascii: a line near point {read_points} does not have {columns} values")
        try:
            table = np.array(tokens).astype(np.float64).reshape(len(lines), columns)
        except ValueError as e:
            raise InvalidFileError(f"PCD ascii: a value near point {read_points} is not a number") from e
        stats.add_rows(
            table[:, index["x"]],
            table[:, index["y"]],
            table[:, index["z"]],
            None if intensity is None else table[:, index[intensity]],
        )
        read_points += len(lines)

    while position < size:
        chunk = stream.read(min(chunk_bytes, size - position))
        if not chunk:
            break
        position += len(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        if len(pending) > _ASCII_LINE_MAX:
            raise InvalidFileError(f"PCD ascii: a line longer than {_ASCII_LINE_MAX} bytes")
        consume(complete)
    if pending.strip():
        # PCL ends every point line with a newline: a last line without one was cut short (a
        # truncated number would otherwise still parse).
        raise InvalidFileError(f"PCD ascii: truncated: the last line has no newline ({read_points} points before it)")
    if read_points != header.points:
        raise InvalidFileError(f"PCD ascii: truncated: {read_points} of {header.points} points")


class LzfStream:
    """Streaming LZF decompression (liblzf's format) with every length and offset checked.

    ``read_input(n)`` returns up to ``n`` compressed bytes. Output is produced in pieces through
    ``chunks()``; only the last ``LZF_WINDOW`` output bytes are kept for back-references.
    """

    def __init__(self, read_input: Callable[[int], bytes], compressed_size: int, expected_size: int) -> None:
        self._read = read_input
        self._left = compressed_size  # compressed bytes not yet fetched
        self._expected = expected_size
        self._inp = b""
        self._pos = 0
        self.produced = 0

    def _need(self, count: int) -> None:
        if len(self._inp) - self._pos >= count:
            return
        pieces = [self._inp[self._pos :]]
        available = len(pieces[0])
        while available < count and self._left > 0:  # a stream may return fewer bytes than asked
            data = self._read(min(self._left, max(65536, count - available)))
            if not data:
                break
            self._left -= len(data)
            pieces.append(data)
            available += len(data)
        self._inp = b"".join(pieces)
        self._pos = 0
        if available < count:
            raise InvalidFileError("LZF: compressed data truncated")

    def _exhausted(self) -> bool:
        return self._pos >= len(self._inp) and self._left == 0

    def chunks(self, piece: int = 256 * 1024) -> Iterator[bytes]:
        window = bytearray()  # last <= LZF_WINDOW bytes already emitted, then new output
        emitted = 0  # bytes of `window` that were already yielded
        while not self._exhausted():
            self._need(1)
            ctrl = self._inp[self._pos]
            self._pos += 1
            if ctrl < 32:
                length = ctrl + 1
                self._need(length)
                if self.produced + length > self._expected:
                    raise InvalidFileError("LZF: output longer than the declared uncompressed size")
                window += self._inp[self._pos : self._pos + length]
                self._pos += length
            else:
                length = ctrl >> 5
                self._need(1)
                if length == 7:
                    length += self._inp[self._pos]
                    self._pos += 1
                    self._need(1)
                offset = ((ctrl & 0x1F) << 8) + self._inp[self._pos] + 1
                self._pos += 1
                length += 2
                if offset > self.produced:
                    raise InvalidFileError(f"LZF: back-reference {offset} before the start of the output")
                if self.produced + length > self._expected:
                    raise InvalidFileError("LZF: output longer than the declared uncompressed size")
                start = len(window) - offset
                if offset >= length:
                    window += window[start : start + length]
                else:  # overlapping copy: the last `offset` bytes repeat
                    pattern = bytes(window[start:])
                    window += (pattern * (length // offset + 1))[:length]
            self.produced += length
            if len(window) - emitted >= piece:
                yield bytes(window[emitted:])
                del window[: max(0, len(window) - LZF_WINDOW)]
                emitted = len(window)
        if self.produced != self._expected:
            raise InvalidFileError(f"LZF: {self.produced} bytes decompressed, {self._expected} declared")
        if len(window) > emitted:
            yield bytes(window[emitted:])


def lzf_decompress(data: bytes, expected_size: int) -> bytes:
    """Whole-buffer convenience over ``LzfStream`` (tests, small blocks)."""
    source = [data]
    stream = LzfStream(lambda n: source.pop() if source else b"", len(data), expected_size)
    return b"".join(stream.chunks())


def _compressed_size(stream: BinaryIO, size: int, header: PcdHeader) -> int:
    """The compressed size from the 8-byte size header, both sizes checked (against the bytes that
    remain, the declared points and what LZF can expand to) before anything is allocated per point."""
    remaining = size - header.data_offset
    if remaining < 8:
        raise InvalidFileError(f"PCD binary_compressed: {remaining} bytes where the 8-byte size header should be")
    prefix = stream.read(8)
    if len(prefix) != 8:
        raise InvalidFileError("PCD binary_compressed: truncated size header")
    compressed = int.from_bytes(prefix[:4], "little")
    uncompressed = int.from_bytes(prefix[4:], "little")
    if compressed > remaining - 8:
        raise InvalidFileError(f"PCD binary_compressed: {compressed} compressed bytes declared, {remaining - 8} remain")
    expected = header.points * header.point_size
    if uncompressed != expected:
        raise InvalidFileError(
            f"PCD binary_compressed: uncompressed size {uncompressed} != {header.points} points x {header.point_size}"
        )
    if uncompressed > LZF_MAX_EXPANSION * compressed:
        raise InvalidFileError(
            f"PCD binary_compressed: {compressed} compressed bytes cannot hold {uncompressed} "
            f"(LZF expands at most {LZF_MAX_EXPANSION}-fold)"
        )
    return compressed


def _read_compressed(stream: BinaryIO, header: PcdHeader, stats: CloudStats, compressed: int) -> None:
    uncompressed = header.points * header.point_size
    if uncompressed == 0:
        if compressed:
            raise InvalidFileError("PCD binary_compressed: data for zero points")
        return
    if compressed == 0:
        raise InvalidFileError("PCD binary_compressed: no compressed data")
    # Column layout: field f occupies points*size_f*count_f bytes, in FIELDS order.
    columns = [
        (name, header.points * length * count, _TYPES[(kind, length)], count)
        for name, length, kind, count in zip(header.fields, header.sizes, header.types, header.counts, strict=True)
    ]
    wanted = {a: a for a in AXES}
    if header.intensity_field is not None:
        wanted[header.intensity_field] = "intensity"
    lzf = LzfStream(stream.read, compressed, uncompressed)
    column = 0
    filled = 0  # bytes of the current column already seen
    carry = b""  # a value split between two pieces
    for piece in lzf.chunks():
        data = carry + piece
        i = 0
        while i < len(data) and column < len(columns):
            name, span, code, count = columns[column]
            if filled == span:
                column, filled = column + 1, 0
                continue
            item = np.dtype(code).itemsize * count
            take = min(len(data) - i, span - filled)
            take -= take % item
            if take == 0:
                break  # less than one value left in this piece
            if name in wanted:
                values = np.frombuffer(data, dtype=code, count=take // np.dtype(code).itemsize, offset=i)
                if count > 1:
                    values = values.reshape(-1, count)[:, 0]
                stats.add_column(wanted[name], filled // item, np.asarray(values, dtype=np.float64))
            i += take
            filled += take
        carry = data[i:]
    if carry:
        raise InvalidFileError("PCD binary_compressed: decompressed data does not end on a value boundary")


def analyse(
    stream: BinaryIO, size: int, *, chunk_points: int = 65536, chunk_bytes: int = 1024 * 1024
) -> dict[str, object]:
    """Parse a whole PCD stream; the QC figures plus the format facts."""
    header = parse_header(stream, size)
    # binary_compressed keeps two flags per declared point: its sizes are checked first.
    compressed = _compressed_size(stream, size, header) if header.encoding == "binary_compressed" else 0
    stats = CloudStats(
        header.points,
        has_intensity=header.intensity_field is not None,
        column_major=header.encoding == "binary_compressed",
    )
    if header.encoding == "binary":
        _read_binary(stream, size, header, stats, chunk_points)
    elif header.encoding == "ascii":
        _read_ascii(stream, size, header, stats, chunk_bytes)
    else:
        _read_compressed(stream, header, stats, compressed)
    return {
        "format": "PCD",
        "encoding": header.encoding,
        "pcd_version": header.version or None,
        "fields": list(header.fields),
        **stats.finish(),
    }
