"""LAS 1.0-1.4 and LAZ (ASPRS LIDAR format; LAZ = LASzip-compressed) through laspy, streamed.

laspy reads the header and VLRs from the seekable file, then ``chunk_iterator`` decodes the
points ``chunk_points`` at a time (LAZ through the ``lazrs`` backend, which PyPI ships as wheels),
so memory is one chunk of points plus the file object's block cache. Before any point is read,
the declared geometry is checked against the bytes that remain: the version must be 1.0-1.4 and
the header at least the size that version's fields need, the header size and the offset to the
point data must lie inside the file, and for uncompressed LAS the declared point count
times the record length must fit between that offset and the end of the file. Anything laspy or
lazrs rejects, and a point count that does not match the points decoded, is ``InvalidFileError``.
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


def _check_geometry(stream: BinaryIO, size: int, label: str) -> tuple[int, int]:
    """Header size and offset to point data, checked against the file size."""
    start = stream.tell()
    head = stream.read(_OFFSET_TO_POINTS + 4)
    stream.seek(start)
    if len(head) < _OFFSET_TO_POINTS + 4 or size < _MIN_HEADER:
        raise InvalidFileError(f"{label}: truncated LAS header ({size} bytes)")
    if not head.startswith(LAS_MAGIC):
        raise InvalidFileError(f"{label}: not a LAS file (signature {head[:4]!r})")
    major, minor = head[_VERSION_OFFSET], head[_VERSION_OFFSET + 1]
    if major != 1 or minor not in _HEADER_SIZE_OF_MINOR:
        raise InvalidFileError(f"{label}: LAS version {major}.{minor} is not LAS 1.0-1.4")
    header_size = int.from_bytes(head[_HEADER_SIZE_OFFSET : _HEADER_SIZE_OFFSET + 2], "little")
    offset = int.from_bytes(head[_OFFSET_TO_POINTS : _OFFSET_TO_POINTS + 4], "little")
    if header_size < _HEADER_SIZE_OF_MINOR[minor]:
        raise InvalidFileError(f"{label}: header size {header_size} is short of LAS 1.{minor}'s")
    if header_size > size:
        raise InvalidFileError(f"{label}: header size {header_size} does not fit a {size}-byte file")
    if offset < header_size or offset > size:
        raise InvalidFileError(f"{label}: point data offset {offset} outside the file ({size} bytes)")
    return header_size, offset


def analyse(stream: BinaryIO, size: int, *, label: str, chunk_points: int = 65536) -> dict[str, object]:
    """Stream every point of a LAS/LAZ file into the QC figures."""
    _, offset = _check_geometry(stream, size, label)
    try:
        with laspy.open(stream, closefd=False) as reader:
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
