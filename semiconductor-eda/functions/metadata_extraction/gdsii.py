"""GDSII Stream format parser (Calma GDSII Stream Format, release 6/7).

A GDSII file is a sequence of records: a 2-byte big-endian total length (header included, even,
at least 4), a 1-byte record type and a 1-byte data type, then the data. Reals are 8-byte
excess-64 base-16 floating point numbers. This parser streams the records once, keeps no
geometry, and validates the record grammar as it goes:

    HEADER BGNLIB LIBNAME [REFLIBS] [FONTS] [ATTRTABLE] [GENERATIONS] [FORMAT ...] UNITS
    { BGNSTR STRNAME [STRCLASS] { element } ENDSTR }* ENDLIB [zero padding]

An element is BOUNDARY | PATH | SREF | AREF | TEXT | NODE | BOX, its records, then ENDEL.
"""

from __future__ import annotations

import math
import struct

from layout import Decoder, LayoutBuilder, LayoutSummary

from shared.errors import InvalidFileError

MAGIC = b"\x00\x06\x00\x02"  # HEADER record: length 6, type 0x00, data type INT2

# Record types (GDSII Stream Format Manual, release 6.0).
HEADER, BGNLIB, LIBNAME, UNITS, ENDLIB, BGNSTR, STRNAME, ENDSTR = range(8)
BOUNDARY, PATH, SREF, AREF, TEXT, LAYER, DATATYPE, WIDTH, XY, ENDEL, SNAME = range(8, 19)
TEXTTYPE, BOXTYPE, NODETYPE = 0x16, 0x2E, 0x2A
NODE, BOX = 0x15, 0x2D

RECORD_NAMES = {
    0x00: "HEADER", 0x01: "BGNLIB", 0x02: "LIBNAME", 0x03: "UNITS", 0x04: "ENDLIB", 0x05: "BGNSTR",
    0x06: "STRNAME", 0x07: "ENDSTR", 0x08: "BOUNDARY", 0x09: "PATH", 0x0A: "SREF", 0x0B: "AREF",
    0x0C: "TEXT", 0x0D: "LAYER", 0x0E: "DATATYPE", 0x0F: "WIDTH", 0x10: "XY", 0x11: "ENDEL",
    0x12: "SNAME", 0x13: "COLROW", 0x14: "TEXTNODE", 0x15: "NODE", 0x16: "TEXTTYPE",
    0x17: "PRESENTATION", 0x18: "SPACING", 0x19: "STRING", 0x1A: "STRANS", 0x1B: "MAG",
    0x1C: "ANGLE", 0x1D: "UINTEGER", 0x1E: "USTRING", 0x1F: "REFLIBS", 0x20: "FONTS",
    0x21: "PATHTYPE", 0x22: "GENERATIONS", 0x23: "ATTRTABLE", 0x24: "STYPTABLE", 0x25: "STRTYPE",
    0x26: "ELFLAGS", 0x27: "ELKEY", 0x28: "LINKTYPE", 0x29: "LINKKEYS", 0x2A: "NODETYPE",
    0x2B: "PROPATTR", 0x2C: "PROPVALUE", 0x2D: "BOX", 0x2E: "BOXTYPE", 0x2F: "PLEX",
    0x30: "BGNEXTN", 0x31: "ENDEXTN", 0x32: "TAPENUM", 0x33: "TAPECODE", 0x34: "STRCLASS",
    0x35: "RESERVED", 0x36: "FORMAT", 0x37: "MASK", 0x38: "ENDMASKS", 0x39: "LIBDIRSIZE",
    0x3A: "SRFNAME", 0x3B: "LIBSECUR",
}

# Data types: 0 none, 1 bit array, 2 int16, 3 int32, 4 real32 (unused), 5 real64, 6 ASCII.
NO_DATA, BIT_ARRAY, INT2, INT4, REAL4, REAL8, ASCII = range(7)
_EXPECTED_DATA_TYPE = {
    HEADER: INT2, BGNLIB: INT2, LIBNAME: ASCII, UNITS: REAL8, ENDLIB: NO_DATA, BGNSTR: INT2,
    STRNAME: ASCII, ENDSTR: NO_DATA, BOUNDARY: NO_DATA, PATH: NO_DATA, SREF: NO_DATA,
    AREF: NO_DATA, TEXT: NO_DATA, LAYER: INT2, DATATYPE: INT2, WIDTH: INT4, XY: INT4,
    ENDEL: NO_DATA, SNAME: ASCII, NODE: NO_DATA, TEXTTYPE: INT2, BOX: NO_DATA, BOXTYPE: INT2,
    NODETYPE: INT2,
}
_ELEMENT_STARTS = frozenset({BOUNDARY, PATH, SREF, AREF, TEXT, NODE, BOX})
_ELEMENT_TYPE_RECORDS = frozenset({DATATYPE, TEXTTYPE, BOXTYPE, NODETYPE})
# Optional library-header records between LIBNAME and UNITS.
_LIBRARY_HEADER = frozenset({0x1F, 0x20, 0x22, 0x23, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B})


def real8(data: bytes) -> float:
    """Decode an 8-byte GDSII real: sign bit, 7-bit excess-64 base-16 exponent, 56-bit mantissa."""
    if len(data) != 8:
        raise InvalidFileError(f"an 8-byte real needs 8 bytes, got {len(data)}")
    first = data[0]
    mantissa = int.from_bytes(data[1:], "big")
    value = math.ldexp(mantissa, 4 * ((first & 0x7F) - 64) - 56)
    return -value if first & 0x80 else value


def _ascii(data: bytes) -> str:
    # Strings are padded with NUL to an even length.
    return data.rstrip(b"\x00").decode("ascii", errors="replace")


def _int2(data: bytes, record: str) -> tuple[int, ...]:
    if len(data) % 2:
        raise InvalidFileError(f"{record}: odd number of bytes for 2-byte integers")
    return struct.unpack(f">{len(data) // 2}h", data)


class _Parser:
    def __init__(self, dec: Decoder) -> None:
        self.dec = dec
        self.builder = LayoutBuilder()
        self.version = ""
        self.library_name: str | None = None
        self.units: tuple[float, float] | None = None

    def record(self) -> tuple[int, int, bytes]:
        head = self.dec.read(4)
        length = (head[0] << 8) | head[1]
        rtype, dtype = head[2], head[3]
        if length < 4 or length % 2:
            raise InvalidFileError(
                f"invalid record length {length} at offset {self.dec.offset - 4}", offset=self.dec.offset - 4
            )
        if rtype not in RECORD_NAMES:
            raise InvalidFileError(
                f"unknown record type 0x{rtype:02x} at offset {self.dec.offset - 4}", offset=self.dec.offset - 4
            )
        expected = _EXPECTED_DATA_TYPE.get(rtype)
        if expected is not None and dtype != expected:
            raise InvalidFileError(
                f"{RECORD_NAMES[rtype]} record with data type {dtype} (expected {expected}) "
                f"at offset {self.dec.offset - 4}",
                offset=self.dec.offset - 4,
            )
        if rtype in (XY,):
            # Coordinates are never needed: stream past them.
            self.dec.skip(length - 4)
            return rtype, dtype, b""
        return rtype, dtype, self.dec.read(length - 4)

    def expect(self, wanted: int) -> bytes:
        rtype, _, data = self.record()
        if rtype != wanted:
            raise InvalidFileError(
                f"expected {RECORD_NAMES[wanted]}, found {RECORD_NAMES[rtype]} at offset {self.dec.offset}"
            )
        return data

    def parse(self) -> LayoutSummary:
        header = _int2(self.expect(HEADER), "HEADER")
        if len(header) != 1:
            raise InvalidFileError("HEADER must hold one 2-byte version number")
        self.version = str(header[0])
        if len(self.expect(BGNLIB)) != 24:
            raise InvalidFileError("BGNLIB must hold 12 two-byte date fields")
        self.library_name = _ascii(self.expect(LIBNAME))
        while True:
            rtype, _, data = self.record()
            if rtype == UNITS:
                break
            if rtype not in _LIBRARY_HEADER:
                raise InvalidFileError(f"expected UNITS, found {RECORD_NAMES[rtype]}")
        if len(data) != 16:
            raise InvalidFileError("UNITS must hold two 8-byte reals")
        user_unit, db_unit = real8(data[:8]), real8(data[8:])
        if not (math.isfinite(user_unit) and math.isfinite(db_unit) and user_unit > 0 and db_unit > 0):
            raise InvalidFileError(f"UNITS must be positive: user {user_unit}, database {db_unit} m")
        while True:
            rtype, _, data = self.record()
            if rtype == ENDLIB:
                break
            if rtype != BGNSTR:
                raise InvalidFileError(f"expected BGNSTR or ENDLIB, found {RECORD_NAMES[rtype]}")
            self.structure()
        self.trailer()
        return self.builder.finish(
            file_format="GDSII",
            format_version=self.version,
            library_name=self.library_name,
            user_unit=user_unit,
            db_unit_meters=db_unit,
        )

    def structure(self) -> None:
        name = _ascii(self.expect(STRNAME))
        if not name:
            raise InvalidFileError("STRNAME is empty")
        self.builder.begin_cell(name)
        while True:
            rtype, _, _data = self.record()
            if rtype == ENDSTR:
                self.builder.end_cell()
                return
            if rtype == 0x34:  # STRCLASS
                continue
            if rtype not in _ELEMENT_STARTS:
                raise InvalidFileError(f"expected an element or ENDSTR in {name!r}, found {RECORD_NAMES[rtype]}")
            self.element(rtype)

    def element(self, kind: int) -> None:
        layer: int | None = None
        datatype: int | None = None
        target: str | None = None
        while True:
            rtype, _, data = self.record()
            if rtype == ENDEL:
                break
            if rtype in (BGNSTR, ENDSTR, ENDLIB) or rtype in _ELEMENT_STARTS:
                raise InvalidFileError(f"{RECORD_NAMES[kind]} element not closed by ENDEL before {RECORD_NAMES[rtype]}")
            if rtype == LAYER:
                layer = _int2(data, "LAYER")[0]
            elif rtype in _ELEMENT_TYPE_RECORDS:
                datatype = _int2(data, RECORD_NAMES[rtype])[0]
            elif rtype == SNAME:
                target = _ascii(data)
        if kind in (SREF, AREF):
            if not target:
                raise InvalidFileError(f"{RECORD_NAMES[kind]} without SNAME")
            self.builder.reference(target)
        else:
            if layer is None:
                raise InvalidFileError(f"{RECORD_NAMES[kind]} without LAYER")
            self.builder.element(layer, datatype if datatype is not None else 0)

    def trailer(self) -> None:
        # Tape-era writers pad the stream with NULs to a block boundary; anything else is garbage.
        while not self.dec.at_eof():
            if self.dec.byte() != 0:
                raise InvalidFileError(f"unexpected data after ENDLIB at offset {self.dec.offset - 1}")


def parse(dec: Decoder) -> LayoutSummary:
    """Parse a whole GDSII stream from ``dec``; raise ``InvalidFileError`` (or its subclass
    ``TruncatedFileError``) when it is not a complete, well-formed GDSII library."""
    return _Parser(dec).parse()
