"""GDSII Stream format parser (Calma GDSII Stream Format Manual, release 6.0).

A GDSII file is a sequence of records: a 2-byte big-endian total length (header included, even,
at least 4), a 1-byte record type and a 1-byte data type, then the data. Reals are 8-byte
excess-64 base-16 floating point numbers. This parser streams the records once, keeps no
geometry, and validates the grammar of the manual as it goes (``[x]`` optional, ``{x}*`` any
number)::

    HEADER BGNLIB [LIBDIRSIZE] [SRFNAME] [LIBSECUR] LIBNAME [REFLIBS] [FONTS] [ATTRTABLE]
        [GENERATIONS] [FORMAT [{MASK}+ ENDMASKS]] UNITS {structure}* ENDLIB [NUL padding]
    structure ::= BGNSTR STRNAME [STRCLASS] {element}* ENDSTR
    element   ::= (boundary | path | sref | aref | text | node | box) {PROPATTR PROPVALUE}* ENDEL
    boundary  ::= BOUNDARY [ELFLAGS] [PLEX] LAYER DATATYPE XY
    path      ::= PATH [ELFLAGS] [PLEX] LAYER DATATYPE [PATHTYPE] [WIDTH] [BGNEXTN] [ENDEXTN] XY
    sref      ::= SREF [ELFLAGS] [PLEX] SNAME [STRANS [MAG] [ANGLE]] XY
    aref      ::= AREF [ELFLAGS] [PLEX] SNAME [STRANS [MAG] [ANGLE]] COLROW XY
    text      ::= TEXT [ELFLAGS] [PLEX] LAYER TEXTTYPE [PRESENTATION] [PATHTYPE] [WIDTH]
                      [STRANS [MAG] [ANGLE]] XY STRING
    node      ::= NODE [ELFLAGS] [PLEX] LAYER NODETYPE XY
    box       ::= BOX [ELFLAGS] [PLEX] LAYER BOXTYPE XY

Every record's data type and, where the manual fixes it, its data length are checked. Layer and
data type numbers are read unsigned (0-65535), as gdstk does. Names are decoded losslessly
(``layout.decode_name``) after the NUL padding is removed.

Speed: most bytes of a layout are XY coordinates the summary does not need. Boundaries and paths
in their common shape are recognised in the buffer with one ``struct.unpack_from`` at computed
offsets and their XY payload is skipped without touching it; every other element goes through the
record-by-record grammar (the same checks, only slower). With the C extension (``layout.native``,
native/uc06_layoutscan.c) that in-buffer loop runs compiled: the same elements accepted, the
same stops; without it the Python loop below runs.
"""

from __future__ import annotations

import math
import re
import struct
import sys

import layout
from layout import Decoder, LayoutBuilder, LayoutSummary, TruncatedFileError, decode_name

from shared.errors import InvalidFileError

MAGIC = b"\x00\x06\x00\x02"  # HEADER record: length 6, type 0x00, data type INT2

# Record types (GDSII Stream Format Manual, release 6.0).
HEADER, BGNLIB, LIBNAME, UNITS, ENDLIB, BGNSTR, STRNAME, ENDSTR = range(8)
BOUNDARY, PATH, SREF, AREF, TEXT, LAYER, DATATYPE, WIDTH, XY, ENDEL, SNAME = range(8, 19)
COLROW, NODE, TEXTTYPE, PRESENTATION, STRING, STRANS, MAG, ANGLE = 0x13, 0x15, 0x16, 0x17, 0x19, 0x1A, 0x1B, 0x1C
REFLIBS, FONTS, PATHTYPE, GENERATIONS, ATTRTABLE, ELFLAGS = 0x1F, 0x20, 0x21, 0x22, 0x23, 0x26
NODETYPE, PROPATTR, PROPVALUE, BOX, BOXTYPE, PLEX, BGNEXTN, ENDEXTN = 0x2A, 0x2B, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x31
STRCLASS, FORMAT, MASK, ENDMASKS, LIBDIRSIZE, SRFNAME, LIBSECUR = 0x34, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B

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
# The data type of every record the grammar admits; records not listed (TEXTNODE, SPACING,
# UINTEGER, USTRING, STYPTABLE, STRTYPE, ELKEY, LINKTYPE, LINKKEYS, TAPENUM, TAPECODE,
# RESERVED: unreleased or tape-only) fit nowhere in the grammar and are rejected where they occur.
_DATA_TYPE = {
    HEADER: INT2, BGNLIB: INT2, LIBNAME: ASCII, UNITS: REAL8, ENDLIB: NO_DATA, BGNSTR: INT2,
    STRNAME: ASCII, ENDSTR: NO_DATA, BOUNDARY: NO_DATA, PATH: NO_DATA, SREF: NO_DATA,
    AREF: NO_DATA, TEXT: NO_DATA, LAYER: INT2, DATATYPE: INT2, WIDTH: INT4, XY: INT4,
    ENDEL: NO_DATA, SNAME: ASCII, COLROW: INT2, NODE: NO_DATA, TEXTTYPE: INT2,
    PRESENTATION: BIT_ARRAY, STRING: ASCII, STRANS: BIT_ARRAY, MAG: REAL8, ANGLE: REAL8,
    REFLIBS: ASCII, FONTS: ASCII, PATHTYPE: INT2, GENERATIONS: INT2, ATTRTABLE: ASCII,
    ELFLAGS: BIT_ARRAY, NODETYPE: INT2, PROPATTR: INT2, PROPVALUE: ASCII, BOX: NO_DATA,
    BOXTYPE: INT2, PLEX: INT4, BGNEXTN: INT4, ENDEXTN: INT4, STRCLASS: BIT_ARRAY, FORMAT: INT2,
    MASK: ASCII, ENDMASKS: NO_DATA, LIBDIRSIZE: INT2, SRFNAME: ASCII, LIBSECUR: INT2,
}
# Records whose data length the manual fixes (bytes after the 4-byte header).
_DATA_LENGTH = {
    HEADER: 2, BGNLIB: 24, UNITS: 16, BGNSTR: 24, LAYER: 2, DATATYPE: 2, WIDTH: 4, COLROW: 4,
    TEXTTYPE: 2, PRESENTATION: 2, STRANS: 2, MAG: 8, ANGLE: 8, PATHTYPE: 2, GENERATIONS: 2,
    ELFLAGS: 2, NODETYPE: 2, PROPATTR: 2, BOXTYPE: 2, PLEX: 4, BGNEXTN: 4, ENDEXTN: 4,
    STRCLASS: 2, FORMAT: 2, LIBDIRSIZE: 2,
}
for _rtype, _dtype in _DATA_TYPE.items():
    if _dtype == NO_DATA:
        _DATA_LENGTH[_rtype] = 0
# XY of the elements whose point count the manual fixes.
_XY_LENGTH = {SREF: 8, AREF: 24, BOX: 40}

# Element grammars: (record type, optional) in order, up to and including XY (and STRING).
_O, _R = True, False
_HEAD = ((ELFLAGS, _O), (PLEX, _O))
_STRANS = ((STRANS, _O), (MAG, _O), (ANGLE, _O))
_ELEMENTS: dict[int, tuple[tuple[int, bool], ...]] = {
    BOUNDARY: (*_HEAD, (LAYER, _R), (DATATYPE, _R), (XY, _R)),
    PATH: (*_HEAD, (LAYER, _R), (DATATYPE, _R), (PATHTYPE, _O), (WIDTH, _O), (BGNEXTN, _O), (ENDEXTN, _O), (XY, _R)),
    SREF: (*_HEAD, (SNAME, _R), *_STRANS, (XY, _R)),
    AREF: (*_HEAD, (SNAME, _R), *_STRANS, (COLROW, _R), (XY, _R)),
    TEXT: (*_HEAD, (LAYER, _R), (TEXTTYPE, _R), (PRESENTATION, _O), (PATHTYPE, _O), (WIDTH, _O), *_STRANS,
           (XY, _R), (STRING, _R)),
    NODE: (*_HEAD, (LAYER, _R), (NODETYPE, _R), (XY, _R)),
    BOX: (*_HEAD, (LAYER, _R), (BOXTYPE, _R), (XY, _R)),
}
_TYPE_RECORD = {BOUNDARY: DATATYPE, PATH: DATATYPE, TEXT: TEXTTYPE, NODE: NODETYPE, BOX: BOXTYPE}
# The library header between BGNLIB and UNITS, in order (FORMAT's MASK list handled apart).
_LIBRARY_HEADER = (
    (LIBDIRSIZE, _O), (SRFNAME, _O), (LIBSECUR, _O), (LIBNAME, _R), (REFLIBS, _O), (FONTS, _O),
    (ATTRTABLE, _O), (GENERATIONS, _O), (FORMAT, _O),
)

# Record headers read as one big-endian 32-bit word: length << 16 | type << 8 | data type.
_HEAD_WORDS = struct.Struct(">IIHIHI").unpack_from  # element, LAYER, layer, DATATYPE, datatype, next
_WORD = struct.Struct(">I").unpack_from
_FAST_HEAD = 20
# The fast path's element kinds: the header word of their type record and their optional
# records (header word, record length) in the grammar's order.
_FAST_KINDS: dict[int, tuple[int, tuple[tuple[int, int], ...]]] = {
    0x00040800: (0x00060E02, ()),  # BOUNDARY: DATATYPE
    0x00040900: (0x00060E02, ((0x00062102, 6), (0x00080F03, 8), (0x00083003, 8), (0x00083103, 8))),  # PATH
    0x00040C00: (0x00061602, ((0x00061701, 6), (0x00062102, 6), (0x00080F03, 8), (0x00061A01, 6),
                              (0x000C1B05, 12), (0x000C1C05, 12))),  # TEXT: TEXTTYPE, PRESENTATION ... ANGLE
}


_RUNS: dict[int, re.Pattern[bytes] | None] = {}
_MAX_RUN_PATTERNS = 256


def _boundary_run(xy_length: int) -> re.Pattern[bytes] | None:
    """A pattern for one or more plain BOUNDARY elements whose XY record is ``xy_length`` bytes
    (header included); None once ``_MAX_RUN_PATTERNS`` lengths have patterns."""
    pattern = _RUNS.get(xy_length)
    if pattern is None and len(_RUNS) < _MAX_RUN_PATTERNS:
        xy_header = re.escape(struct.pack(">HBB", xy_length, XY, INT4))
        element = (
            rb"\x00\x04\x08\x00\x00\x06\x0d\x02..\x00\x06\x0e\x02.."  # BOUNDARY, LAYER, DATATYPE
            + xy_header + b".{%d}" % (xy_length - 4) + rb"\x00\x04\x11\x00"  # XY, ENDEL
        )
        pattern = _RUNS[xy_length] = re.compile(b"(?:" + element + b")++", re.DOTALL)
    return pattern


def _run_layers(buf: bytes, start: int, end: int, stride: int, layers: set[tuple[int, int]]) -> int:
    """Add the layer/datatype pairs of the equal-sized boundaries in ``buf[start:end]`` (one
    every ``stride`` bytes, layer at +8, datatype at +14) without a Python step per element."""
    count = (end - start) // stride
    if count < 16:  # a short run: a Python step per element is cheaper than the set-up below
        for at in range(start + 8, end, stride):
            layers.add(((buf[at] << 8) | buf[at + 1], (buf[at + 6] << 8) | buf[at + 7]))
        return count
    keys = bytearray(4 * count)
    for offset in range(4):  # layer high, layer low, datatype high, datatype low
        field_at = start + (8, 9, 14, 15)[offset]
        keys[offset::4] = buf[field_at:end:stride]
    for key in set(memoryview(keys).cast("I")):
        raw = key.to_bytes(4, sys.byteorder)
        layers.add(((raw[0] << 8) | raw[1], (raw[2] << 8) | raw[3]))
    return count


def real8(data: bytes) -> float:
    """Decode an 8-byte GDSII real: sign bit, 7-bit excess-64 base-16 exponent, 56-bit mantissa."""
    if len(data) != 8:
        raise InvalidFileError(f"an 8-byte real needs 8 bytes, got {len(data)}")
    first = data[0]
    mantissa = int.from_bytes(data[1:], "big")
    value = math.ldexp(mantissa, 4 * ((first & 0x7F) - 64) - 56)
    return -value if first & 0x80 else value


def _name(data: bytes) -> str:
    # Strings are padded with NUL to an even length.
    return decode_name(data.rstrip(b"\x00"))


def _uint2(data: bytes) -> int:
    return (data[0] << 8) | data[1]


class _Parser:
    def __init__(self, dec: Decoder) -> None:
        self.dec = dec
        self.builder = LayoutBuilder()
        self.version = ""
        self.library_name: str | None = None

    # -- records -------------------------------------------------------------------------------
    def record(self) -> tuple[int, bytes]:
        """The next record, its header and data length validated: (record type, data)."""
        dec = self.dec
        dec.fill(4, what="record header")
        buf, pos = dec.buf, dec.pos
        length = (buf[pos] << 8) | buf[pos + 1]
        rtype, dtype = buf[pos + 2], buf[pos + 3]
        start = dec.offset
        if length < 4 or length % 2:
            raise InvalidFileError(f"invalid record length {length} at offset {start}", offset=start)
        name = RECORD_NAMES.get(rtype)
        if name is None:
            raise InvalidFileError(f"unknown record type 0x{rtype:02x} at offset {start}", offset=start)
        expected = _DATA_TYPE.get(rtype)
        if expected is not None and dtype != expected:
            raise InvalidFileError(
                f"{name} record with data type {dtype} (expected {expected}) at offset {start}", offset=start
            )
        fixed = _DATA_LENGTH.get(rtype)
        if fixed is not None and length - 4 != fixed:
            raise InvalidFileError(
                f"{name} record with {length - 4} data bytes (the format requires {fixed}) at offset {start}",
                offset=start,
            )
        if expected == INT4 and (length - 4) % 4:
            raise InvalidFileError(f"{name}: {length - 4} bytes of 4-byte integers at offset {start}", offset=start)
        dec.fill(length, what=f"{name} record")
        data = dec.buf[dec.pos + 4 : dec.pos + length]
        dec.pos += length
        return rtype, data

    def _unexpected(self, rtype: int, where: str) -> InvalidFileError:
        return InvalidFileError(
            f"{where}: unexpected {RECORD_NAMES[rtype]} record before offset {self.dec.offset}",
            offset=self.dec.offset,
        )

    def _sequence(
        self, grammar: tuple[tuple[int, bool], ...], first: tuple[int, bytes], where: str
    ) -> tuple[dict[int, bytes], tuple[int, bytes]]:
        """Match records against ``grammar`` (ordered, some optional) starting with ``first``;
        return the data by record type and the first record after the sequence."""
        found: dict[int, bytes] = {}
        rtype, data = first
        index = 0
        while index < len(grammar):
            slot, optional = grammar[index]
            if rtype == slot:
                found[rtype] = data
                index += 1
                rtype, data = self.record()
                continue
            if not optional:
                raise InvalidFileError(
                    f"{where}: expected {RECORD_NAMES[slot]}, found {RECORD_NAMES[rtype]} "
                    f"before offset {self.dec.offset}",
                    offset=self.dec.offset,
                )
            index += 1
        return found, (rtype, data)

    # -- library -------------------------------------------------------------------------------
    def parse(self) -> LayoutSummary:
        rtype, data = self.record()
        if rtype != HEADER:
            raise InvalidFileError(f"expected HEADER, found {RECORD_NAMES[rtype]}")
        self.version = str(_uint2(data))
        rtype, _ = self.record()
        if rtype != BGNLIB:
            raise InvalidFileError(f"expected BGNLIB, found {RECORD_NAMES[rtype]}")
        found, (rtype, data) = self._sequence(_LIBRARY_HEADER, self.record(), "library header")
        self.library_name = _name(found[LIBNAME])
        if FORMAT in found and rtype == MASK:
            while rtype == MASK:
                rtype, data = self.record()
            if rtype != ENDMASKS:
                raise InvalidFileError(f"FORMAT's MASK list not closed by ENDMASKS (found {RECORD_NAMES[rtype]})")
            rtype, data = self.record()
        if rtype != UNITS:
            raise InvalidFileError(f"library header: expected UNITS, found {RECORD_NAMES[rtype]}")
        user_unit, db_unit = real8(data[:8]), real8(data[8:])
        if not (math.isfinite(user_unit) and math.isfinite(db_unit) and user_unit > 0 and db_unit > 0):
            raise InvalidFileError(f"UNITS must be positive: user {user_unit}, database {db_unit} m")
        while True:
            rtype, data = self.record()
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
        rtype, data = self.record()
        if rtype != STRNAME:
            raise InvalidFileError(f"expected STRNAME after BGNSTR, found {RECORD_NAMES[rtype]}")
        name = _name(data)
        if not name:
            raise InvalidFileError("STRNAME is empty")
        builder = self.builder
        builder.begin_cell(name)
        where = f"structure {name!r}"
        layers: set[tuple[int, int]] = set()
        count = 0
        dec = self.dec
        dec.fill(4, what="record header")
        if dec.buf[dec.pos + 2] == STRCLASS:
            self.record()
        while True:
            # Fast path: the common boundaries and paths straight from the buffer.
            count += self._fast_elements(layers)
            rtype, _ = self.record()
            if rtype == ENDSTR:
                break
            if rtype not in _ELEMENTS:
                raise self._unexpected(rtype, where)
            self.element(rtype, where)
        builder.add_elements(count, layers)
        builder.end_cell()

    def _fast_elements(self, layers: set[tuple[int, int]]) -> int:
        """Consume the run of BOUNDARY, PATH and TEXT elements that lie wholly in the buffer, have
        no ELFLAGS, PLEX or properties and their optional records in the grammar's order; return
        how many. Anything else (or an element crossing the buffer end) is left to the record
        grammar, which applies the same rules record by record."""
        dec = self.dec
        if dec.ensure(_FAST_HEAD) < _FAST_HEAD:
            return 0
        buf, pos = dec.buf, dec.pos
        native = layout.native
        if native is not None:  # the same loop, compiled (native/uc06_layoutscan.c)
            dec.pos, count = native.gdsii_fast(buf, pos, layers)
            return count
        size = len(buf)
        end = size - _FAST_HEAD
        count = 0
        add = layers.add
        head = _HEAD_WORDS
        word_at = _WORD
        kinds = _FAST_KINDS
        streak_word, streak = 0, 0
        while pos <= end:
            # element header, LAYER header, layer, DATATYPE/TEXTTYPE header, its value, next header
            kind, w_layer, layer, w_type, datatype, word = head(buf, pos)
            if w_layer != 0x00060D02:
                break
            at = pos + 16
            if kind == 0x00040800:  # BOUNDARY: no optional record between DATATYPE and XY
                if w_type != 0x00060E02:
                    break
            else:
                shape = kinds.get(kind)
                if shape is None or w_type != shape[0]:
                    break
                strans = False
                for optional, length in shape[1]:
                    if word == optional:
                        if optional == 0x00061A01:  # STRANS
                            strans = True
                        elif optional >= 0x000C0000 and not strans:  # MAG or ANGLE without STRANS
                            word = 0
                            break
                        at += length
                        if at + 4 > size:
                            word = 0  # not wholly in the buffer
                            break
                        (word,) = word_at(buf, at)
            # XY with data type INT4 and a length of 4 + 8k, k >= 1
            if word & 0x7FFFF != 0x41003 or word < 0xC0000:
                break
            at += word >> 16
            if kind == 0x00040C00:  # TEXT: then a STRING record
                if at + 4 > size:
                    break
                (text,) = word_at(buf, at)
                if text & 0x1FFFF != 0x1906 or text < 0x40000:
                    break
                at += text >> 16
            if buf[at : at + 4] != b"\x00\x04\x11\x00":  # ENDEL
                break
            pos = at + 4
            add((layer, datatype))
            count += 1
            # Four boundaries in a row with the same XY length: let the regex engine take the
            # rest of the run (layout tools write long runs of rectangles and vias).
            if kind == 0x00040800 and word == streak_word:
                streak += 1
                if streak >= 4:
                    run = _boundary_run(word >> 16)
                    match = run.match(buf, pos) if run is not None else None
                    if match is not None:
                        count += _run_layers(buf, pos, match.end(), 20 + (word >> 16), layers)
                        pos = match.end()
                    streak = 0
            else:
                streak_word, streak = word, 1
        dec.pos = pos
        return count

    def element(self, kind: int, where: str) -> None:
        start = self.dec.offset
        found, (rtype, _) = self._sequence(_ELEMENTS[kind], self.record(), f"{RECORD_NAMES[kind]} in {where}")
        while rtype == PROPATTR:
            rtype, _ = self.record()
            if rtype != PROPVALUE:
                raise InvalidFileError(f"{where}: PROPATTR without PROPVALUE (found {RECORD_NAMES[rtype]})")
            rtype, _ = self.record()
        if rtype != ENDEL:
            raise InvalidFileError(
                f"{RECORD_NAMES[kind]} element in {where} at offset {start} not closed by ENDEL "
                f"(found {RECORD_NAMES[rtype]})"
            )
        if (MAG in found or ANGLE in found) and STRANS not in found:
            raise InvalidFileError(f"{RECORD_NAMES[kind]} in {where}: MAG or ANGLE without STRANS")
        xy = found[XY]
        wanted = _XY_LENGTH.get(kind)
        if (wanted is not None and len(xy) != wanted) or not xy or len(xy) % 8:
            raise InvalidFileError(
                f"{RECORD_NAMES[kind]} in {where} at offset {start}: XY of {len(xy)} bytes "
                f"({'exactly ' + str(wanted) if wanted else 'a positive multiple of 8'} required)"
            )
        if kind in (SREF, AREF):
            target = _name(found[SNAME])
            if not target:
                raise InvalidFileError(f"{RECORD_NAMES[kind]} in {where} with an empty SNAME")
            self.builder.reference(target)
        else:
            self.builder.element(_uint2(found[LAYER]), _uint2(found[_TYPE_RECORD[kind]]))

    def trailer(self) -> None:
        # Tape-era writers pad the stream with NULs to a block boundary; anything else is garbage.
        dec = self.dec
        while dec.ensure(1):
            rest = dec.buf[dec.pos :]
            zeros = len(rest) - len(rest.lstrip(b"\x00"))
            if zeros < len(rest):
                raise InvalidFileError(f"unexpected data after ENDLIB at offset {dec.offset + zeros}")
            dec.pos = len(dec.buf)


def parse(dec: Decoder) -> LayoutSummary:
    """Parse a whole GDSII stream from ``dec``; raise ``InvalidFileError`` (or a subclass:
    ``TruncatedFileError``, ``LengthLimitError``, ``FileBudgetExceededError``, ...) when it is not
    a complete, well-formed GDSII library, and nothing else."""
    return _Parser(dec).parse()


__all__ = ["MAGIC", "TruncatedFileError", "parse", "real8"]
