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

import math
import struct
import zlib
from collections.abc import Hashable
from typing import Any

from layout import Decoder, LayoutBuilder, LayoutSummary

from shared.errors import InvalidFileError

MAGIC = b"%SEMI-OASIS\r\n"
END_RECORD_LENGTH = 256
_INFLATE_WINDOW = 256 * 1024  # decompressed bytes produced per step, whatever the block size

PAD, START, END = 0, 1, 2
CELLNAME, CELLNAME_REF, TEXTSTRING, TEXTSTRING_REF = 3, 4, 5, 6
PROPNAME, PROPNAME_REF, PROPSTRING, PROPSTRING_REF = 7, 8, 9, 10
LAYERNAME, LAYERNAME_TEXT, CELL_REF, CELL_NAME = 11, 12, 13, 14
XYABSOLUTE, XYRELATIVE, PLACEMENT, PLACEMENT_TRANSFORM = 15, 16, 17, 18
TEXT, RECTANGLE, POLYGON, PATH = 19, 20, 21, 22
TRAPEZOID_AB, TRAPEZOID_A, TRAPEZOID_B, CTRAPEZOID, CIRCLE = 23, 24, 25, 26, 27
PROPERTY, PROPERTY_REPEAT, XNAME, XNAME_REF, XELEMENT, XGEOMETRY, CBLOCK = 28, 29, 30, 31, 32, 33, 34

_VALIDATION_SCHEMES = {0: "none", 1: "crc32", 2: "checksum32"}


class _OasisDecoder(Decoder):
    """OASIS primitive types on top of the streaming decoder."""

    def sint(self) -> int:
        value = self.uint()
        return -(value >> 1) if value & 1 else value >> 1

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
            return float(struct.unpack("<f", self.read(4))[0])
        if kind == 7:
            return float(struct.unpack("<d", self.read(8))[0])
        raise InvalidFileError(f"unknown real type {kind} at offset {self.offset}")

    def string(self) -> bytes:
        return self.read(self.uint())

    def name(self) -> str:
        return self.string().decode("ascii", errors="replace")

    def skip_string(self) -> None:
        self.skip(self.uint())

    def g_delta(self) -> None:
        # Form 1: one integer, bit 0 clear. Form 2: bit 0 set, x magnitude, then signed y.
        if self.uint() & 1:
            self.sint()

    def point_list(self) -> None:
        kind = self.uint()
        count = self.uint()
        if kind in (0, 1):
            for _ in range(count):
                self.sint()
        elif kind in (2, 3):
            for _ in range(count):
                self.uint()
        elif kind in (4, 5):
            for _ in range(count):
                self.g_delta()
        else:
            raise InvalidFileError(f"unknown point-list type {kind} at offset {self.offset}")

    def repetition(self) -> None:
        kind = self.uint()
        if kind == 0:  # reuse the previous repetition
            return
        if kind == 1:
            for _ in range(4):
                self.uint()
        elif kind in (2, 3):
            self.uint()
            self.uint()
        elif kind in (4, 6):
            for _ in range(self.uint() + 1):
                self.uint()
        elif kind in (5, 7):
            dimension = self.uint()
            self.uint()  # grid
            for _ in range(dimension + 1):
                self.uint()
        elif kind == 8:
            self.uint()
            self.uint()
            self.g_delta()
            self.g_delta()
        elif kind == 9:
            self.uint()
            self.g_delta()
        elif kind == 10:
            for _ in range(self.uint() + 1):
                self.g_delta()
        elif kind == 11:
            dimension = self.uint()
            self.uint()  # grid
            for _ in range(dimension + 1):
                self.g_delta()
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
    """A chunk source yielding the decompressed bytes of a CBLOCK, never more than ``expected``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    state = {"left": compressed, "produced": 0}

    def next_chunk() -> bytes:
        while True:
            if inflater.unconsumed_tail:
                data = inflater.decompress(inflater.unconsumed_tail, _INFLATE_WINDOW)
            elif state["left"] > 0:
                raw = outer.read(min(state["left"], _INFLATE_WINDOW))
                state["left"] -= len(raw)
                data = inflater.decompress(raw, _INFLATE_WINDOW)
            else:
                data = inflater.flush()
                if not data:
                    return b""
            state["produced"] += len(data)
            if state["produced"] > expected:
                raise InvalidFileError(f"CBLOCK decompresses to more than the declared {expected} bytes")
            if data:
                return data

    def drain() -> None:
        # The block must consume exactly its compressed bytes and produce exactly ``expected``.
        while next_chunk():
            pass
        if state["produced"] != expected:
            raise InvalidFileError(f"CBLOCK decompressed to {state['produced']} bytes, declared {expected}")

    next_chunk.drain = drain  # type: ignore[attr-defined]
    return next_chunk


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
        while True:
            rid = self.dec.uint()
            if rid == END:
                self.end()
                break
            self.record(rid, self.dec, nested=False)
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
        record's own fields (``_GEOMETRY_FIELDS``), then [x] [y] [repetition]."""
        info = dec.byte()
        self._layer_datatype(dec, info)
        for bit, read in _GEOMETRY_FIELDS[rid]:
            if bit is None or info & bit:
                read(dec)
        self._position(dec, info)
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
        source = _inflate_source(dec, compressed, uncompressed)
        inner = _OasisDecoder(source, label=f"{dec.label} CBLOCK at {dec.offset}")
        while not inner.at_eof():
            self.record(inner.uint(), inner, nested=True)
        source.drain()
        self.compressed_blocks += 1


# Fields between [layer][datatype] and [x][y][repetition]: (info-byte bit, or None when the
# field is always present; reader). Info bytes: RECTANGLE SWHXYRDL, POLYGON 00PXYRDL,
# TRAPEZOID OWHXYRDL (+ delta-a and/or delta-b), CTRAPEZOID TWHXYRDL, CIRCLE 00rXYRDL.
_WIDTH_HEIGHT = ((0x40, _OasisDecoder.uint), (0x20, _OasisDecoder.uint))
_GEOMETRY_FIELDS: dict[int, tuple[tuple[int | None, Any], ...]] = {
    RECTANGLE: _WIDTH_HEIGHT,
    POLYGON: ((0x20, _OasisDecoder.point_list),),
    TRAPEZOID_AB: (*_WIDTH_HEIGHT, (None, _OasisDecoder.sint), (None, _OasisDecoder.sint)),
    TRAPEZOID_A: (*_WIDTH_HEIGHT, (None, _OasisDecoder.sint)),
    TRAPEZOID_B: (*_WIDTH_HEIGHT, (None, _OasisDecoder.sint)),
    CTRAPEZOID: ((0x80, _OasisDecoder.uint), *_WIDTH_HEIGHT),
    CIRCLE: ((0x20, _OasisDecoder.uint),),
}

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
    **{rid: (lambda p, d, rid=rid: p.geometry(d, rid)) for rid in _GEOMETRY_FIELDS},
    PATH: _Parser.path,
    PROPERTY: _Parser.property,
    PROPERTY_REPEAT: lambda p, d: None,
    XNAME: lambda p, d: p.xname(d, False),
    XNAME_REF: lambda p, d: p.xname(d, True),
    XELEMENT: _Parser.xelement,
    XGEOMETRY: _Parser.xgeometry,
}


def parse(dec: Decoder) -> LayoutSummary:
    """Parse a whole OASIS file; raise ``InvalidFileError`` (or ``TruncatedFileError``) when it is
    not a complete, well-formed OASIS 1.0 file. ``dec`` must track checksums for END validation."""
    if not isinstance(dec, _OasisDecoder):
        raise TypeError("use oasis.decoder(source) to create the decoder")
    return _Parser(dec).parse()


def decoder(source: Any, *, label: str = "file") -> Decoder:
    """The decoder ``parse`` needs: OASIS primitives and checksum tracking."""
    return _OasisDecoder(source, track_checksums=True, label=label)
