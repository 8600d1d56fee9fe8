"""LAS 1.0-1.4 and LAZ (ASPRS LIDAR format; LAZ = LASzip-compressed) through laspy, streamed.

laspy reads the header and VLRs from the seekable file, then ``chunk_iterator`` decodes the
points ``chunk_points`` at a time (LAZ through the ``lazrs`` backend, which PyPI ships as wheels),
so memory is one chunk of points plus the file object's block cache. Before any point is read,
the declared geometry is checked against the bytes that remain, because laspy and lazrs allocate
by what the header declares: the version must be 1.0-1.4 and the header as large as that
version's fields; the header, the offset to the point data, the VLRs between them and the EVLRs
after them must lie inside the file; for uncompressed LAS the declared point count times the
record length must fit between that offset and the end of the file; for LAZ the LASzip VLR's
items must add up to the point record and its chunk table lie inside the point data. Anything
laspy or lazrs rejects, and a point count that does not match the points decoded, is
``InvalidFileError``.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import laspy
import lazrs
import numpy as np
from stats import CloudStats

from shared.errors import InvalidFileError, PipelineError

LAS_MAGIC = b"LASF"
_MIN_HEADER = 227  # LAS 1.0-1.2 public header block size
_VERSION_OFFSET = 24
# Public header block size each LAS 1.x minor version requires (1.3 adds the waveform offset, 1.4
# the extended counts): laspy reads those fields whatever the header size says.
_HEADER_SIZE_OF_MINOR = {0: 227, 1: 227, 2: 227, 3: 235, 4: 375}
_HEADER_SIZE_OFFSET = 94
_OFFSET_TO_POINTS = 96
_VLR_COUNT_OFFSET = 100
_VLR_HEADER = 54  # bytes of each variable length record's header, before its payload
_EVLR_START_OFFSET, _EVLR_COUNT_OFFSET = 235, 243  # LAS 1.4 only
_EVLR_HEADER = 60
_POINT_FORMAT_OFFSET, _POINT_SIZE_OFFSET = 104, 105
_COMPRESSED_BITS = 0xC0  # set in the point format id of a LAZ file
# The LASzip VLR (user "laszip encoded", record 22204): 34 bytes, then six per item.
_LASZIP_USER, _LASZIP_RECORD = b"laszip encoded", 22204
_LASZIP_FIXED, _LASZIP_ITEM = 34, 6
_CHUNKED = (2, 3)  # LASzip compressors whose point data starts with the chunk table's offset
_CHUNK_TABLE_AT_END = 2**64 - 1  # a streaming writer's offset: the real one is the file's last 8 bytes
_LASZIP_ITEM_SIZES = {6: 20, 7: 8, 8: 6, 9: 29, 10: 30, 11: 6, 12: 8, 13: 29}  # 0 and 14: extra bytes


def _field(head: bytes, offset: int, width: int) -> int:
    return int.from_bytes(head[offset : offset + width], "little")


def _check_geometry(stream: BinaryIO, size: int, label: str) -> tuple[int, int]:
    """Header size, offset to point data and record counts, checked against the file size.

    laspy allocates and reads whatever count the header declares, so a flipped bit in the VLR
    count would have it reading millions of records (gigabytes of memory) before any check.
    """
    start = stream.tell()
    head = stream.read(max(_HEADER_SIZE_OF_MINOR.values()))
    stream.seek(start)
    if len(head) < _MIN_HEADER or size < _MIN_HEADER:
        raise InvalidFileError(f"{label}: truncated LAS header ({size} bytes)")
    if not head.startswith(LAS_MAGIC):
        raise InvalidFileError(f"{label}: not a LAS file (signature {head[:4]!r})")
    major, minor = head[_VERSION_OFFSET], head[_VERSION_OFFSET + 1]
    if major != 1 or minor not in _HEADER_SIZE_OF_MINOR:
        raise InvalidFileError(f"{label}: LAS version {major}.{minor} is not LAS 1.0-1.4")
    header_size = _field(head, _HEADER_SIZE_OFFSET, 2)
    offset = _field(head, _OFFSET_TO_POINTS, 4)
    if header_size < _HEADER_SIZE_OF_MINOR[minor]:
        raise InvalidFileError(f"{label}: header size {header_size} is short of LAS 1.{minor}'s")
    if header_size > size:
        raise InvalidFileError(f"{label}: header size {header_size} does not fit a {size}-byte file")
    if offset < header_size or offset > size:
        raise InvalidFileError(f"{label}: point data offset {offset} outside the file ({size} bytes)")
    vlrs = _field(head, _VLR_COUNT_OFFSET, 4)
    if vlrs * _VLR_HEADER > offset - header_size:
        raise InvalidFileError(f"{label}: {vlrs} VLRs declared, {offset - header_size} bytes hold them")
    if minor >= 4:
        evlr_start, evlrs = _field(head, _EVLR_START_OFFSET, 8), _field(head, _EVLR_COUNT_OFFSET, 4)
        if evlrs and (evlr_start < offset or evlrs * _EVLR_HEADER > size - evlr_start):
            raise InvalidFileError(f"{label}: {evlrs} EVLRs at byte {evlr_start} do not fit a {size}-byte file")
    compressed = head[_POINT_FORMAT_OFFSET] & _COMPRESSED_BITS
    point_size = _field(head, _POINT_SIZE_OFFSET, 2)
    if compressed and _check_laszip(stream, header_size, offset, vlrs, point_size=point_size, label=label) in _CHUNKED:
        _check_chunk_table(stream, offset, size, label)
    return header_size, offset


def _check_laszip(stream: BinaryIO, at: int, end: int, vlrs: int, *, point_size: int, label: str) -> int:
    """The LASzip VLR's compressor, once its items are checked to add up to the point record: lazrs
    trusts their sizes to allocate (a flipped size asks for gigabytes and aborts the process, which
    no handler can catch)."""
    start = stream.tell()
    try:
        for _ in range(vlrs):
            stream.seek(start + at)
            vlr = stream.read(_VLR_HEADER)
            user, record, length = vlr[2:18].rstrip(b"\0"), _field(vlr, 18, 2), _field(vlr, 20, 2)
            at += _VLR_HEADER + length
            if at > end:
                raise InvalidFileError(f"{label}: the VLRs run past the point data offset {end}")
            if (user, record) != (_LASZIP_USER, _LASZIP_RECORD):
                continue
            body = stream.read(length)
            items = _field(body, 32, 2)
            if length != _LASZIP_FIXED + _LASZIP_ITEM * items or len(body) != length:
                raise InvalidFileError(f"{label}: LASzip VLR of {length} bytes for {items} items")
            sizes = []
            for i in range(items):
                kind, item_size = _field(body, 34 + 6 * i, 2), _field(body, 36 + 6 * i, 2)
                if _LASZIP_ITEM_SIZES.get(kind, item_size) != item_size or kind not in (*_LASZIP_ITEM_SIZES, 0, 14):
                    raise InvalidFileError(f"{label}: LASzip item type {kind} of {item_size} bytes")
                sizes.append(item_size)
            if sum(sizes) != point_size:
                raise InvalidFileError(f"{label}: LASzip items of {sum(sizes)} bytes for {point_size}-byte points")
            return _field(body, 0, 2)
        raise InvalidFileError(f"{label}: compressed points without a LASzip VLR")
    finally:
        stream.seek(start)


def _check_chunk_table(stream: BinaryIO, offset: int, size: int, label: str) -> None:
    """The chunk table lies inside the file and holds no more chunks than there are bytes: lazrs
    allocates its entries before reading them."""
    start = stream.tell()
    try:
        stream.seek(start + offset)
        table = _field(stream.read(8), 0, 8)
        if table == _CHUNK_TABLE_AT_END:
            stream.seek(start + size - 8)
            table = _field(stream.read(8), 0, 8)
        if not offset + 8 <= table <= size - 8:
            raise InvalidFileError(f"{label}: LAZ chunk table at byte {table} outside the point data")
        stream.seek(start + table)
        header = stream.read(8)
        version, chunks = _field(header, 0, 4), _field(header, 4, 4)
        if version != 0 or chunks > table - offset:
            raise InvalidFileError(f"{label}: LAZ chunk table version {version} with {chunks} chunks")
    finally:
        stream.seek(start)


def analyse(stream: BinaryIO, size: int, *, label: str, chunk_points: int = 65536) -> dict[str, object]:
    """Stream every point of a LAS/LAZ file into the QC figures."""
    _, offset = _check_geometry(stream, size, label)
    try:
        # Lazrs, not laspy's default LazrsParallel: that one allocates a whole LASzip chunk as the
        # header declares it, so a flipped bit in the chunk size asks for gigabytes.
        with laspy.open(stream, closefd=False, laz_backend=laspy.LazBackend.Lazrs) as reader:
            header = reader.header
            compressed = bool(header.are_points_compressed)
            count = int(header.point_count)
            record = int(header.point_format.size)
            if not compressed and count * record > size - offset:
                raise InvalidFileError(
                    f"{label}: {count} points x {record} bytes declared, {size - offset} bytes of point data remain"
                )
            if compressed and count and size - offset < 8:
                raise InvalidFileError(f"{label}: LAZ with {count} points but no point data")
            stats = CloudStats(count, has_intensity="intensity" in header.point_format.dimension_names)
            for points in reader.chunk_iterator(chunk_points):
                if len(points) == 0:
                    break
                stats.add_rows(
                    np.asarray(points.x, dtype=np.float64),
                    np.asarray(points.y, dtype=np.float64),
                    np.asarray(points.z, dtype=np.float64),
                    np.asarray(points.intensity, dtype=np.float64),
                )
            figures = stats.finish()
            version = f"{header.version.major}.{header.version.minor}"
            point_format = int(header.point_format.id)
    except PipelineError:
        raise
    except (
        laspy.errors.LaspyException,
        lazrs.LazrsError,
        ValueError,
        EOFError,
        OSError,
        IndexError,
        KeyError,
        TypeError,
        struct.error,
    ) as e:
        raise InvalidFileError(f"{label}: unreadable LAS/LAZ: {type(e).__name__}: {e}") from e
    return {
        "format": "LAZ" if compressed else "LAS",
        "encoding": "laszip" if compressed else "uncompressed",
        "las_version": version,
        "point_format": point_format,
        **figures,
    }
