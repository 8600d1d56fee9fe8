"""Hand-built GDSII and OASIS bytes for the UC6 parser tests (records gdstk never writes).

Independent of the parsers: the GDSII real encoder and the OASIS integer encoders are written
from the format manuals, so a test compares the parser against the format, not against itself.
"""

from __future__ import annotations

import struct
import zlib

# --- GDSII --------------------------------------------------------------------------------------


def rec(rtype: int, dtype: int, data: bytes = b"") -> bytes:
    """One GDSII record; odd-length data gets the NUL pad the format requires."""
    if len(data) % 2:
        data += b"\x00"
    return struct.pack(">HBB", len(data) + 4, rtype, dtype) + data


def real8(value: float) -> bytes:
    """Encode an excess-64 base-16 real."""
    if value == 0:
        return b"\x00" * 8
    sign = 0x80 if value < 0 else 0
    value = abs(value)
    exponent = 64
    while value >= 1:
        value /= 16
        exponent += 1
    while value < 1 / 16:
        value *= 16
        exponent -= 1
    mantissa = round(value * 2**56)
    return bytes([sign | exponent]) + mantissa.to_bytes(7, "big")


def int2(*values: int) -> bytes:
    return struct.pack(f">{len(values)}h", *values)


def int4(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


HEADER = rec(0x00, 2, int2(600))
BGNLIB = rec(0x01, 2, bytes(24))
UNITS = rec(0x03, 5, real8(0.001) + real8(1e-9))
ENDLIB = rec(0x04, 0)


def boundary(layer: int = 5, datatype: int = 1, *, extra: bytes = b"", properties: bytes = b"") -> bytes:
    """A BOUNDARY square; ``extra`` goes after BOUNDARY (ELFLAGS, PLEX), ``properties`` before ENDEL."""
    return (
        rec(0x08, 0) + extra + rec(0x0D, 2, int2(layer)) + rec(0x0E, 2, int2(datatype))
        + rec(0x10, 3, int4(0, 0, 1, 0, 1, 1, 0, 1, 0, 0)) + properties + rec(0x11, 0)
    )


def sref(target: bytes | str) -> bytes:
    name = target.encode() if isinstance(target, str) else target
    return rec(0x0A, 0) + rec(0x12, 6, name) + rec(0x10, 3, int4(0, 0)) + rec(0x11, 0)


def structure(name: bytes | str, body: bytes) -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    return rec(0x05, 2, bytes(24)) + rec(0x06, 6, raw) + body + rec(0x07, 0)


def gds(structures: bytes, *, header: bytes = b"", library: bytes = b"HAND", tail: bytes = b"") -> bytes:
    """A library: ``header`` holds the optional records between BGNLIB and UNITS (LIBNAME included
    when given; otherwise LIBNAME comes first)."""
    head = header if header else rec(0x02, 6, library)
    return HEADER + BGNLIB + head + UNITS + structures + ENDLIB + tail


def gds_library(cells: list[tuple[str, list[str]]], *, tail: bytes = b"") -> bytes:
    """Each structure holds one boundary and SREFs to the named cells."""
    body = b"".join(structure(name, boundary() + b"".join(sref(t) for t in refs)) for name, refs in cells)
    return gds(body, tail=tail)


# --- OASIS --------------------------------------------------------------------------------------

OASIS_MAGIC = b"%SEMI-OASIS\r\n"


def uint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sint(value: int) -> bytes:
    return uint((-value << 1) | 1 if value < 0 else value << 1)


def astr(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return uint(len(raw)) + raw


def oasis_start(unit: bytes = uint(0) + uint(1000)) -> bytes:
    """Magic, START "1.0" with ``unit`` (an OASIS real, default 1000 per micron), table offsets in END."""
    return OASIS_MAGIC + uint(1) + astr("1.0") + unit + uint(1)


def oasis_end(body_before: bytes) -> bytes:
    """An END record (table offsets, padding, no validation) of exactly 256 bytes."""
    tables = uint(0) * 12
    head = uint(2) + tables
    pad = 256 - len(head) - 2 - 1  # padding string length byte, validation scheme
    return body_before + head + uint(pad) + b"\x00" * pad + uint(0)


def oasis_file(body: bytes, *, unit: bytes = uint(0) + uint(1000)) -> bytes:
    return oasis_end(oasis_start(unit) + body)


def cblock(payload: bytes, *, level: int = 9) -> bytes:
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    raw = deflate.compress(payload) + deflate.flush()
    return uint(34) + uint(0) + uint(len(payload)) + uint(len(raw)) + raw
