"""OASIS parser (SEMI P39): streams every record once, keeping names and per-cell facts only.

OASIS records carry no length, so extracting even the cell list means decoding every record:
the info byte of each record says which fields follow. Supported: all record types 0-34 of
OASIS 1.0, the 12 repetition types, the 6 point-list types, the 16 property-value types, CBLOCK
(raw DEFLATE, decompressed incrementally with a bounded output window) and END validation
(CRC-32 or checksum-32 over every byte before the signature, signature little-endian).

Cells may be defined by name (CELL 14) or by reference number (CELL 13) resolved through
CELLNAME records that may appear anywhere in the file, so names are resolved at the end.
"""

from __future__ import annotations

import functools
import math
import re
import struct
import zlib
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import layout
from layout import (
    Budget,
    Decoder,
    LayoutBuilder,
    LayoutSummary,
    TruncatedFileError,
    check_count,
    check_units,
    decode_name,
)

from shared.errors import InvalidFileError

MAGIC = b"%SEMI-OASIS\r\n"
END_RECORD_LENGTH = 256
_INFLATE_WINDOW = 256 * 1024  # decompressed bytes produced per step, whatever the block size
_COMPRESSED_PIECE = 64 * 1024  # compressed bytes read per step (below the decoder's read cap)

PAD, START, END = 0, 1, 2
CELLNAME, CELLNAME_REF, TEXTSTRING, TEXTSTRING_REF = 3, 4, 5, 6
PROPNAME, PROPNAME_REF, PROPSTRING, PROPSTRING_REF = 7, 8, 9, 10
LAYERNAME, LAYERNAME_TEXT, CELL_REF, CELL_NAME = 11, 12, 13, 14
XYABSOLUTE, XYRELATIVE, PLACEMENT, PLACEMENT_TRANSFORM = 15, 16, 17, 18
TEXT, RECTANGLE, POLYGON, PATH = 19, 20, 21, 22
TRAPEZOID_AB, TRAPEZOID_A, TRAPEZOID_B, CTRAPEZOID, CIRCLE = 23, 24, 25, 26, 27
PROPERTY, PROPERTY_REPEAT, XNAME, XNAME_REF, XELEMENT, XGEOMETRY, CBLOCK = 28, 29, 30, 31, 32, 33, 34

_VALIDATION_SCHEMES = {0: "none", 1: "crc32", 2: "checksum32"}


def _byte_class(values: Iterable[int]) -> bytes:
    return b"[" + b"".join(b"\\x%02x" % v for v in values) + b"]"


# Regular expressions that step over OASIS integers without decoding them (the summary needs no
# coordinates): an unsigned-integer is at most 10 bytes (64 bits, as ``Decoder.uint`` accepts),
# continuation bytes have the high bit set. A g-delta is one integer with bit 0 clear (form 1) or
# an integer with bit 0 set followed by a second one (form 2). Runs are matched by the C regex
# engine, ``_RUN_PIECE`` items per call; the patterns are unambiguous, so matching is linear.
_VARINT = rb"[\x80-\xff]{0,9}[\x00-\x7f]"
_EVEN, _ODD = range(0, 256, 2), range(1, 256, 2)
_G1 = b"(?:" + _byte_class(v for v in _EVEN if v < 0x80) + b"|" + _byte_class(v for v in _EVEN if v >= 0x80)
_G1 += rb"[\x80-\xff]{0,8}[\x00-\x7f])"
_G2 = b"(?:" + _byte_class(v for v in _ODD if v < 0x80) + b"|" + _byte_class(v for v in _ODD if v >= 0x80)
_G2 += rb"[\x80-\xff]{0,8}[\x00-\x7f])" + _VARINT
_GDELTA = b"(?:" + _G1 + b"|" + _G2 + b")"
_ITEMS = {"uint": (_VARINT, 10), "g-delta": (_GDELTA, 20)}
_RUN_PIECE = 512
_ZEROS = re.compile(rb"\x00+")


@functools.lru_cache(maxsize=4 * _RUN_PIECE)
def _run(item: str, count: int) -> re.Pattern[bytes]:
    return re.compile(b"(?:" + _ITEMS[item][0] + b"){%d}" % count)


class _OasisDecoder(Decoder):
    """OASIS primitive types on top of the streaming decoder."""

    def uint(self) -> int:
        buf, pos = self.buf, self.pos
        if pos < len(buf):
            b = buf[pos]
            if b < 0x80:
                self.pos = pos + 1
                return b
        return Decoder.uint(self)

    def sint(self) -> int:
        value = self.uint()
        return -(value >> 1) if value & 1 else value >> 1

    def skip_items(self, item: str, count: int, what: str) -> None:
        """Step over ``count`` integers or g-deltas (each at least one byte, so a count beyond the
        bytes left is a truncation at once) without decoding them."""
        self._need(count, what)
        _pattern, widest = _ITEMS[item]
        while count > 0:
            piece = min(count, _RUN_PIECE)
            if len(self.buf) - self.pos < piece * widest:
                self.ensure(piece * widest, what=what)
            match = _run(item, piece).match(self.buf, self.pos)
            if match is None:
                # Truncated or malformed: decode one by one for the exact typed error.
                for _ in range(piece):
                    self.uint() if item == "uint" else self.g_delta()
            else:
                self.pos = match.end()
            count -= piece

    def skip_pad(self) -> None:
        """Step over a run of PAD records (single zero bytes)."""
        while True:
            match = _ZEROS.match(self.buf, self.pos)
            if match is None:
                return
            self.pos = match.end()
            if self.pos < len(self.buf) or not self.ensure(1):
                return

    def real(self, kind: int | None = None) -> float:
        kind = self.uint() if kind is None else kind
        if kind == 0:
            return float(self.uint())
        if kind == 1:
            return -float(self.uint())
        if kind in (2, 3):
            denominator = self.uint()
            if denominator == 0:
                raise InvalidFileError(f"real with zero denominator at offset {self.offset}")
            return (1.0 if kind == 2 else -1.0) / denominator
        if kind in (4, 5):
            numerator, denominator = self.uint(), self.uint()
            if denominator == 0:
                raise InvalidFileError(f"real with zero denominator at offset {self.offset}")
            return (1.0 if kind == 4 else -1.0) * numerator / denominator
        if kind == 6:
            return float(struct.unpack("<f", self.read(4, what="real"))[0])
        if kind == 7:
            return float(struct.unpack("<d", self.read(8, what="real"))[0])
        raise InvalidFileError(f"unknown real type {kind} at offset {self.offset}")

    def string(self) -> bytes:
        return self.read(self.uint(), what="string")

    def name(self) -> str:
        return decode_name(self.string())

    def skip_string(self) -> None:
        self.skip(self.uint(), what="string")

    def g_delta(self) -> None:
        # Form 1: one integer, bit 0 clear. Form 2: bit 0 set, x magnitude, then signed y.
        if self.uint() & 1:
            self.uint()

    def point_list(self) -> None:
        kind = self.uint()
        count = self.uint()
        if kind <= 3:
            self.skip_items("uint", count, "point list")
        elif kind <= 5:
            self.skip_items("g-delta", count, "point list")
        else:
            raise InvalidFileError(f"unknown point-list type {kind} at offset {self.offset}")

    def repetition(self) -> None:
        kind = self.uint()
        if kind == 0:  # reuse the previous repetition
            return
        if kind == 1:
            self.skip_items("uint", 4, "repetition")
        elif kind in (2, 3):
            self.skip_items("uint", 2, "repetition")
        elif kind in (4, 6):
            self.skip_items("uint", self.uint() + 1, "repetition")
        elif kind in (5, 7):
            dimension = self.uint()
            self.uint()  # grid
            self.skip_items("uint", dimension + 1, "repetition")
        elif kind == 8:
            self.skip_items("uint", 2, "repetition")
            self.skip_items("g-delta", 2, "repetition")
        elif kind == 9:
            self.uint()
            self.g_delta()
        elif kind == 10:
            self.skip_items("g-delta", self.uint() + 1, "repetition")
        elif kind == 11:
            dimension = self.uint()
            self.uint()  # grid
            self.skip_items("g-delta", dimension + 1, "repetition")
        else:
            raise InvalidFileError(f"unknown repetition type {kind} at offset {self.offset}")

    def property_value(self) -> None:
        kind = self.uint()
        if kind <= 7:
            self.real(kind)
        elif kind in (8, 9):
            self.uint()
        elif kind in (10, 11, 12):
            self.skip_string()
        elif kind in (13, 14, 15):
            self.uint()
        else:
            raise InvalidFileError(f"unknown property value type {kind} at offset {self.offset}")

    def interval(self) -> None:
        kind = self.uint()
        if kind in (1, 2, 3):
            self.uint()
        elif kind == 4:
            self.uint()
            self.uint()
        elif kind != 0:
            raise InvalidFileError(f"unknown interval type {kind} at offset {self.offset}")


def _inflate_source(outer: _OasisDecoder, compressed: int, expected: int) -> Any:
    """A chunk source yielding the decompressed bytes of a CBLOCK, never more than ``expected``;
    the outer decoder's budget is consulted before every window is inflated."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    state = {"left": compressed, "produced": 0}

    def next_chunk() -> bytes:
        while True:
            outer.check_budget()
            try:
                if inflater.unconsumed_tail:
                    data = inflater.decompress(inflater.unconsumed_tail, _INFLATE_WINDOW)
                elif state["left"] > 0:
                    raw = outer.read(min(state["left"], _COMPRESSED_PIECE), what="CBLOCK data")
                    state["left"] -= len(raw)
                    data = inflater.decompress(raw, _INFLATE_WINDOW)
                else:
                    data = inflater.flush()
                    if not data:
                        return b""
            except zlib.error as e:
                raise InvalidFileError(f"{outer.label}: corrupt CBLOCK before offset {outer.offset}: {e}") from e
            state["produced"] += len(data)
            if state["produced"] > expected:
                raise InvalidFileError(f"CBLOCK decompresses to more than the declared {expected} bytes")
            if data:
                return data

    def drain() -> None:
        # The block must consume exactly its compressed bytes and produce exactly ``expected``.
        while next_chunk():
            pass
        if state["produced"] != expected or not inflater.eof:
            raise InvalidFileError(f"CBLOCK decompressed to {state['produced']} bytes, declared {expected}")

    next_chunk.drain = drain  # type: ignore[attr-defined]
    return next_chunk


def _skip_repetition(buf: bytes, pos: int) -> int:
    """The position after the repetition at ``pos`` in ``buf``, or -1 when it is not wholly in
    the buffer or not of a common small form (the general decoder then takes the record)."""
    kind = buf[pos]
    pos += 1
    if kind == 0:  # reuse the previous repetition
        return pos
    shape = _REPETITION_SHAPES.get(kind)
    if shape is None:
        return -1
    uints, gdeltas, listed = shape
    runs = _FAST_RUNS
    if listed is None:
        match = runs[0][uints].match(buf, pos)
        if match is not None and gdeltas:
            match = runs[1][gdeltas].match(buf, match.end())
        return -1 if match is None else match.end()
    dimension = buf[pos]  # the list holds dimension + 1 spaces
    if dimension >= 0x7F:
        return -1
    match = runs[0][uints].match(buf, pos + 1)  # the grid, if any
    if match is not None:
        match = runs[listed == "g-delta"][dimension + 1].match(buf, match.end())
    return -1 if match is None else match.end()


# Repetition types 1-11: (integers after the type or the dimension, g-deltas after those, and the
# kind of the variable-length list: None, "uint" or "g-delta").
_REPETITION_SHAPES: dict[int, tuple[int, int, str | None]] = {
    1: (4, 0, None), 2: (2, 0, None), 3: (2, 0, None), 8: (2, 2, None), 9: (1, 1, None),
    4: (0, 0, "uint"), 6: (0, 0, "uint"), 5: (1, 0, "uint"), 7: (1, 0, "uint"),
    10: (0, 0, "g-delta"), 11: (1, 0, "g-delta"),
}
class _Runs(dict[int, re.Pattern[bytes]]):
    """Patterns for runs of ``count`` items (< 128: the fast path's counts are one-byte integers),
    compiled on first use: compiling all of them at import would cost a cold start 0.3 s."""

    def __init__(self, item: str) -> None:
        super().__init__()
        self.item = item

    def __missing__(self, count: int) -> re.Pattern[bytes]:
        pattern = self[count] = _run(self.item, count)
        return pattern


_FAST_RUNS = (_Runs("uint"), _Runs("g-delta"))
_FLUSH_EVERY = 4096  # elements counted locally between flushes (bounds the local layer set)


class _Parser:
    def __init__(self, dec: _OasisDecoder) -> None:
        self.dec = dec
        self.builder = LayoutBuilder()
        self.version = ""
        self.unit = 0.0
        self.offset_flag = 0
        self.cellnames: dict[int, str] = {}
        self.implicit_cellname = 0
        self.implicit_counters = {TEXTSTRING: 0, PROPNAME: 0, PROPSTRING: 0, XNAME: 0}
        self.compressed_blocks = 0
        self._reset_modal()

    def _reset_modal(self) -> None:
        self.placement_cell: Hashable | None = None
        self.layer: int | None = None
        self.datatype: int | None = None
        self.textlayer: int | None = None
        self.texttype: int | None = None
        self.last_property_values = False

    # -- structure -------------------------------------------------------------------------
    def parse(self) -> LayoutSummary:
        if self.dec.read(len(MAGIC)) != MAGIC:
            raise InvalidFileError("not an OASIS file (magic bytes missing)")
        if self.dec.uint() != START:
            raise InvalidFileError("the START record must follow the magic bytes")
        self.start()
        self.stream(self.dec, nested=False)
        self.end()
        return self.builder.finish(
            file_format="OASIS",
            format_version=self.version,
            library_name=None,
            # One database unit is 1/unit micron; user units are microns.
            user_unit=1.0 / self.unit,
            db_unit_meters=1e-6 / self.unit,
            resolve=self.resolve,
            compressed_blocks=self.compressed_blocks,
        )

    def start(self) -> None:
        self.version = self.dec.name()
        if self.version != "1.0":
            raise InvalidFileError(f"unsupported OASIS version {self.version!r} (1.0 expected)")
        self.unit = self.dec.real()
        if not (math.isfinite(self.unit) and self.unit > 0):
            raise InvalidFileError(f"START unit must be positive, got {self.unit}")
        # 1e-310 grid steps per micron is positive but makes the user unit infinite.
        check_units(1.0 / self.unit, 1e-6 / self.unit, what="OASIS START unit")
        self.offset_flag = self.dec.uint()
        if self.offset_flag not in (0, 1):
            raise InvalidFileError(f"START offset-flag must be 0 or 1, got {self.offset_flag}")
        if self.offset_flag == 0:
            self.table_offsets()

    def table_offsets(self) -> None:
        for _ in range(6):
            self.dec.uint()  # strict flag
            self.dec.uint()  # offset

    def end(self) -> None:
        record_start = self.dec.offset - 1  # the END record id is the single byte 0x02
        if self.offset_flag == 1:
            self.table_offsets()
        self.dec.skip_string()  # padding-string
        scheme = self.dec.uint()
        if scheme not in _VALIDATION_SCHEMES:
            raise InvalidFileError(f"unknown validation scheme {scheme}")
        crc, byte_sum = self.dec.checksums()
        if scheme:
            signature = struct.unpack("<I", self.dec.read(4))[0]
            computed = crc if scheme == 1 else byte_sum
            if signature != computed:
                raise InvalidFileError(
                    f"{_VALIDATION_SCHEMES[scheme]} validation failed: file says {signature:#010x}, "
                    f"content gives {computed:#010x}",
                    scheme=_VALIDATION_SCHEMES[scheme],
                )
        length = self.dec.offset - record_start
        if length != END_RECORD_LENGTH:
            raise InvalidFileError(f"END record is {length} bytes long, the format requires {END_RECORD_LENGTH}")
        if not self.dec.at_eof():
            raise InvalidFileError(f"data after the END record at offset {self.dec.offset}")

    def resolve(self, key: Hashable) -> str:
        if isinstance(key, int):
            try:
                return self.cellnames[key]
            except KeyError:
                raise InvalidFileError(f"cell reference number {key} has no CELLNAME record") from None
        return str(key)

    # -- the hot loop ----------------------------------------------------------------------
    def stream(self, dec: _OasisDecoder, *, nested: bool) -> None:
        """Decode records until END (top level; ``dec`` is then just after the END record id) or
        the end of a CBLOCK (nested).

        The common geometry records (RECTANGLE, POLYGON, PATH, TEXT, PAD, XY mode) are decoded in
        place on the buffer with their modal layer and datatype in local variables, and whatever
        the summary does not need is stepped over by the regular expressions above. A record that
        runs past the end of the buffer, or that is in any way unusual (a multi-byte record id, an
        integer that fails the fast match), is rewound to its start and decoded again by the
        general record methods, which refill the buffer and raise the exact typed error; this is
        sound because a record changes the parser's state only once it is complete here. With the C
        extension (``layout.native``) the in-buffer loop runs compiled, record for record the same.
        """
        builder = self.builder
        runs = _FAST_RUNS
        plans = _GEOMETRY_PLAN
        zeros = _ZEROS.match
        four = runs[0][4].match
        native = layout.native
        while True:
            buf, pos = dec.buf, dec.pos
            size = len(buf)
            layer, datatype = self.layer, self.datatype
            textlayer, texttype = self.textlayer, self.texttype
            in_cell = builder.in_cell
            layers: set[tuple[int, int]] = set()
            count = 0
            start = pos
            if native is not None:  # the same loop, compiled (native/uc06_layoutscan.c)
                start, count, layer, datatype, textlayer, texttype = native.oasis_fast(
                    buf, pos, layer, datatype, textlayer, texttype, in_cell, layers, _FLUSH_EVERY
                )
            else:
                try:
                    while count < _FLUSH_EVERY:
                        start = pos
                        rid = buf[pos]
                        if rid == RECTANGLE and buf[pos + 1] == 0x7B:
                            # The common rectangle: explicit layer, datatype, width, height, x, y.
                            layer, datatype = buf[pos + 2], buf[pos + 3]
                            if layer >= 0x80 or datatype >= 0x80 or not in_cell:
                                break
                            match = four(buf, pos + 4)
                            if match is None:
                                break
                            pos = match.end()
                            layers.add((layer, datatype))
                            count += 1
                        elif rid in (RECTANGLE, POLYGON, PATH):
                            info = buf[pos + 1]
                            pos += 2
                            if info & 0x01:
                                layer = buf[pos]
                                pos += 1
                                if layer >= 0x80:
                                    break
                            if info & 0x02:
                                datatype = buf[pos]
                                pos += 1
                                if datatype >= 0x80:
                                    break
                            if rid == PATH:
                                skip = 0
                                if info & 0x40:  # half-width
                                    match = runs[0][1].match(buf, pos)
                                    if match is None:
                                        break
                                    pos = match.end()
                                if info & 0x80:  # extension scheme 0000SSEE, then the explicit ones
                                    scheme = buf[pos]
                                    pos += 1
                                    if scheme >= 0x80:
                                        break
                                    skip += ((scheme >> 2) & 3 == 3) + (scheme & 3 == 3)
                                point_list = info & 0x20
                                after = bool(info & 0x10) + bool(info & 0x08)
                            else:
                                skip, point_list, after, _ = plans[rid][info]
                            if point_list:
                                if skip:
                                    match = runs[0][skip].match(buf, pos)
                                    if match is None:
                                        break
                                    pos = match.end()
                                    skip = 0
                                kind = buf[pos]
                                points = buf[pos + 1]
                                if kind > 5 or points >= 0x80:
                                    break
                                match = runs[kind >= 4][points].match(buf, pos + 2)
                                if match is None:
                                    break
                                pos = match.end()
                            skip += after
                            if skip:
                                match = runs[0][skip].match(buf, pos)
                                if match is None:
                                    break
                                pos = match.end()
                            if info & 0x04:
                                pos = _skip_repetition(buf, pos)
                                if pos < 0:
                                    break
                            if not in_cell:
                                break
                            if layer is not None and datatype is not None:
                                layers.add((layer, datatype))
                            count += 1
                        elif rid == TEXT:
                            info = buf[pos + 1]
                            pos += 2
                            if info & 0x40:  # explicit text string: a reference number or a string
                                if info & 0x20:
                                    match = runs[0][1].match(buf, pos)
                                    if match is None:
                                        break
                                    pos = match.end()
                                else:
                                    length = buf[pos]
                                    if length >= 0x80:
                                        break
                                    pos += 1 + length
                            if info & 0x01:
                                textlayer = buf[pos]
                                pos += 1
                                if textlayer >= 0x80:
                                    break
                            if info & 0x02:
                                texttype = buf[pos]
                                pos += 1
                                if texttype >= 0x80:
                                    break
                            skip = bool(info & 0x10) + bool(info & 0x08)
                            if skip:
                                match = runs[0][skip].match(buf, pos)
                                if match is None:
                                    break
                                pos = match.end()
                            if info & 0x04:
                                pos = _skip_repetition(buf, pos)
                                if pos < 0:
                                    break
                            if pos > size or not in_cell:
                                break
                            if textlayer is not None and texttype is not None:
                                layers.add((textlayer, texttype))
                            count += 1
                        elif rid == PAD:
                            match = zeros(buf, pos)
                            pos = pos + 1 if match is None else match.end()
                        elif rid in (XYABSOLUTE, XYRELATIVE):
                            pos += 1
                        else:
                            break
                    else:
                        start = pos
                except IndexError:
                    pass  # the record runs past the buffer: decoded again below
            # Commit what was decoded completely, then one record the general way.
            self.layer, self.datatype = layer, datatype
            self.textlayer, self.texttype = textlayer, texttype
            builder.add_elements(count, layers)
            dec.pos = start
            if count >= _FLUSH_EVERY:
                continue
            if dec.at_eof():
                if nested:
                    return
                raise TruncatedFileError(f"{dec.label} ends at byte {dec.offset} before the END record")
            rid = dec.uint()
            if rid == END and not nested:
                return
            if rid == PAD:
                dec.skip_pad()
                continue
            self.record(rid, dec, nested=nested)

    # -- records ---------------------------------------------------------------------------
    def record(self, rid: int, dec: _OasisDecoder, *, nested: bool) -> None:
        if rid in (PAD, XYABSOLUTE, XYRELATIVE):
            return
        if rid == CBLOCK and not nested:
            self.cblock(dec)
            return
        handler = _HANDLERS.get(rid)
        if handler is None:
            if rid in (START, END) or (rid == CBLOCK and nested):
                raise InvalidFileError(f"record {rid} is not allowed at offset {dec.offset}")
            raise InvalidFileError(f"unknown record type {rid} at offset {dec.offset}")
        handler(self, dec)

    def cellname(self, dec: _OasisDecoder, explicit: bool) -> None:
        name = dec.name()
        if explicit:
            number = dec.uint()
        else:
            number = self.implicit_cellname
            self.implicit_cellname += 1
        if number not in self.cellnames:
            check_count(len(self.cellnames), layout.MAX_CELLS, "cell names")
            self.builder.retain(name)
        self.cellnames[number] = name

    def named(self, dec: _OasisDecoder, kind: int, explicit: bool) -> None:
        # TEXTSTRING / PROPNAME / PROPSTRING names are not needed, only their extent.
        dec.skip_string()
        if explicit:
            dec.uint()
        else:
            self.implicit_counters[kind] += 1

    def layername(self, dec: _OasisDecoder) -> None:
        dec.skip_string()
        dec.interval()
        dec.interval()

    def cell(self, dec: _OasisDecoder, by_reference: bool) -> None:
        key: Hashable = dec.uint() if by_reference else dec.name()
        self._reset_modal()
        self.builder.begin_cell(key)

    def placement(self, dec: _OasisDecoder, transformed: bool) -> None:
        info = dec.byte()
        if info & 0x80:  # C: explicit cell
            self.placement_cell = dec.uint() if info & 0x40 else dec.name()
        if self.placement_cell is None:
            raise InvalidFileError(f"PLACEMENT without a cell at offset {dec.offset}")
        if transformed:
            if info & 0x04:  # M
                dec.real()
            if info & 0x02:  # A
                dec.real()
        if info & 0x20:
            dec.sint()
        if info & 0x10:
            dec.sint()
        if info & 0x08:
            dec.repetition()
        if not self.builder.in_cell:
            raise InvalidFileError(f"PLACEMENT outside a CELL at offset {dec.offset}")
        self.builder.reference(self.placement_cell)

    def text(self, dec: _OasisDecoder) -> None:
        info = dec.byte()
        if info & 0x40:  # C: explicit text string
            if info & 0x20:
                dec.uint()
            else:
                dec.skip_string()
        if info & 0x01:
            self.textlayer = dec.uint()
        if info & 0x02:
            self.texttype = dec.uint()
        if info & 0x10:
            dec.sint()
        if info & 0x08:
            dec.sint()
        if info & 0x04:
            dec.repetition()
        self._element(self.textlayer, self.texttype)

    def _element(self, layer: int | None, datatype: int | None) -> None:
        if not self.builder.in_cell:
            raise InvalidFileError(f"geometry or text outside a CELL at offset {self.dec.offset}")
        self.builder.element(layer, datatype)

    def _layer_datatype(self, dec: _OasisDecoder, info: int) -> None:
        if info & 0x01:
            self.layer = dec.uint()
        if info & 0x02:
            self.datatype = dec.uint()

    def _position(self, dec: _OasisDecoder, info: int) -> None:
        if info & 0x10:
            dec.sint()
        if info & 0x08:
            dec.sint()
        if info & 0x04:
            dec.repetition()

    def geometry(self, dec: _OasisDecoder, rid: int) -> None:
        """RECTANGLE, POLYGON, TRAPEZOID, CTRAPEZOID, CIRCLE: info byte, [layer] [datatype], the
        record's own fields, then [x] [y] [repetition]; every field but layer and datatype is
        stepped over undecoded (``_GEOMETRY_PLAN``)."""
        info = dec.byte()
        if info & 0x01:
            self.layer = dec.uint()
        if info & 0x02:
            self.datatype = dec.uint()
        before, point_list, after, repetition = _GEOMETRY_PLAN[rid][info]
        if point_list:
            if before:
                dec.skip_items("uint", before, "geometry")
            dec.point_list()
            before = 0
        if before + after:
            dec.skip_items("uint", before + after, "geometry")
        if repetition:
            dec.repetition()
        self._element(self.layer, self.datatype)

    def path(self, dec: _OasisDecoder) -> None:
        info = dec.byte()  # EWPXYRDL
        self._layer_datatype(dec, info)
        if info & 0x40:
            dec.uint()  # half-width
        if info & 0x80:
            scheme = dec.uint()  # 0000SSEE
            if (scheme >> 2) & 0x03 == 3:
                dec.sint()
            if scheme & 0x03 == 3:
                dec.sint()
        if info & 0x20:
            dec.point_list()
        self._position(dec, info)
        self._element(self.layer, self.datatype)

    def property(self, dec: _OasisDecoder) -> None:
        info = dec.byte()  # UUUUVCNS
        if info & 0x04:
            if info & 0x02:
                dec.uint()
            else:
                dec.skip_string()
        if info & 0x08:  # V: reuse the previous value list
            if not self.last_property_values:
                raise InvalidFileError(f"PROPERTY reuses values that were never given, at offset {dec.offset}")
            return
        count = info >> 4
        if count == 15:
            count = dec.uint()
        for _ in range(count):
            dec.property_value()
        self.last_property_values = True

    def xname(self, dec: _OasisDecoder, explicit: bool) -> None:
        dec.uint()
        dec.skip_string()
        if explicit:
            dec.uint()

    def xelement(self, dec: _OasisDecoder) -> None:
        dec.uint()
        dec.skip_string()

    def xgeometry(self, dec: _OasisDecoder) -> None:
        info = dec.byte()  # 000XYRDL
        dec.uint()
        self._layer_datatype(dec, info)
        dec.skip_string()
        self._position(dec, info)
        self._element(self.layer, self.datatype)

    def cblock(self, dec: _OasisDecoder) -> None:
        method = dec.uint()
        if method != 0:
            raise InvalidFileError(f"CBLOCK compression type {method} (only 0, DEFLATE, exists)")
        uncompressed = dec.uint()
        compressed = dec.uint()
        dec._need(compressed, "CBLOCK")  # the compressed bytes must be in the file
        source = _inflate_source(dec, compressed, uncompressed)
        inner = _OasisDecoder(source, size=uncompressed, label=f"{dec.label} CBLOCK at {dec.offset}")
        self.stream(inner, nested=True)
        source.drain()
        self.compressed_blocks += 1


def _plan(rid: int, info: int) -> tuple[int, bool, int, bool]:
    """(integers before the point list, point list present, integers after it, repetition present)
    of a geometry record with this info byte. Info bytes: RECTANGLE SWHXYRDL, POLYGON 00PXYRDL,
    TRAPEZOID OWHXYRDL (+ delta-a and/or delta-b, always present), CTRAPEZOID TWHXYRDL, CIRCLE
    00rXYRDL."""
    width_height = bool(info & 0x40) + bool(info & 0x20)
    before = {
        RECTANGLE: width_height,
        POLYGON: 0,
        TRAPEZOID_AB: width_height + 2,
        TRAPEZOID_A: width_height + 1,
        TRAPEZOID_B: width_height + 1,
        CTRAPEZOID: bool(info & 0x80) + width_height,
        CIRCLE: bool(info & 0x20),
    }[rid]
    point_list = rid == POLYGON and bool(info & 0x20)
    return before, point_list, bool(info & 0x10) + bool(info & 0x08), bool(info & 0x04)


_GEOMETRY_RECORDS = (RECTANGLE, POLYGON, TRAPEZOID_AB, TRAPEZOID_A, TRAPEZOID_B, CTRAPEZOID, CIRCLE)
_GEOMETRY_PLAN = {rid: tuple(_plan(rid, info) for info in range(256)) for rid in _GEOMETRY_RECORDS}

_HANDLERS: dict[int, Any] = {
    CELLNAME: lambda p, d: p.cellname(d, False),
    CELLNAME_REF: lambda p, d: p.cellname(d, True),
    TEXTSTRING: lambda p, d: p.named(d, TEXTSTRING, False),
    TEXTSTRING_REF: lambda p, d: p.named(d, TEXTSTRING, True),
    PROPNAME: lambda p, d: p.named(d, PROPNAME, False),
    PROPNAME_REF: lambda p, d: p.named(d, PROPNAME, True),
    PROPSTRING: lambda p, d: p.named(d, PROPSTRING, False),
    PROPSTRING_REF: lambda p, d: p.named(d, PROPSTRING, True),
    LAYERNAME: _Parser.layername,
    LAYERNAME_TEXT: _Parser.layername,
    CELL_REF: lambda p, d: p.cell(d, True),
    CELL_NAME: lambda p, d: p.cell(d, False),
    PLACEMENT: lambda p, d: p.placement(d, False),
    PLACEMENT_TRANSFORM: lambda p, d: p.placement(d, True),
    TEXT: _Parser.text,
    **{rid: (lambda p, d, rid=rid: p.geometry(d, rid)) for rid in _GEOMETRY_RECORDS},
    PATH: _Parser.path,
    PROPERTY: _Parser.property,
    PROPERTY_REPEAT: lambda p, d: None,
    XNAME: lambda p, d: p.xname(d, False),
    XNAME_REF: lambda p, d: p.xname(d, True),
    XELEMENT: _Parser.xelement,
    XGEOMETRY: _Parser.xgeometry,
}


def parse(dec: Decoder) -> LayoutSummary:
    """Parse a whole OASIS file; raise ``InvalidFileError`` (or a subclass: ``TruncatedFileError``,
    ``LengthLimitError``, ``FileBudgetExceededError``, ...) when it is not a complete, well-formed
    OASIS 1.0 file, and nothing else. ``dec`` must come from ``decoder`` (checksums tracked)."""
    if not isinstance(dec, _OasisDecoder):
        raise TypeError("use oasis.decoder(source) to create the decoder")
    return _Parser(dec).parse()


def decoder(
    source: Callable[[], bytes], *, size: int | None = None, budget: Budget | None = None, label: str = "file"
) -> Decoder:
    """The decoder ``parse`` needs: OASIS primitives and checksum tracking; ``size`` (the object
    size) bounds every declared length, ``budget`` is consulted before every chunk and window."""
    return _OasisDecoder(source, size=size, budget=budget, track_checksums=True, label=label)
