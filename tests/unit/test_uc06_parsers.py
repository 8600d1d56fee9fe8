"""GDSII and OASIS parsers: files written by gdstk, hand-built edge cases, broken files."""

from __future__ import annotations

import struct
import zlib

import pytest

from shared.errors import InvalidFileError
from tests.support.layout_bytes import astr, real8, rec, sint, uint
from tests.support.uc06 import load_function

pytestmark = pytest.mark.unit

M = load_function("metadata_extraction", "layout", "gdsii", "oasis", "extraction")


def parse_gds(data: bytes, chunk: int = 64 * 1024):
    return M.gdsii.parse(M.layout.Decoder(M.layout.bytes_source(data, chunk)))


def parse_oas(data: bytes, chunk: int = 64 * 1024):
    return M.oasis.parse(M.oasis.decoder(M.layout.bytes_source(data, chunk)))


# --- GDSII records, written by hand for the cases gdstk never writes --------------------------------
def gds_library(structures: list[tuple[str, list[str]]], *, tail: bytes = b"") -> bytes:
    """A library whose structures each hold one boundary and SREFs to the named cells."""
    out = rec(0x00, 2, struct.pack(">h", 600)) + rec(0x01, 2, b"\x00" * 24) + rec(0x02, 6, b"HAND")
    out += rec(0x03, 5, real8(0.001) + real8(1e-9))
    for name, refs in structures:
        out += rec(0x05, 2, b"\x00" * 24) + rec(0x06, 6, name.encode())
        out += rec(0x08, 0) + rec(0x0D, 2, struct.pack(">h", 5)) + rec(0x0E, 2, struct.pack(">h", 1))
        out += rec(0x10, 3, struct.pack(">10i", 0, 0, 1, 0, 1, 1, 0, 1, 0, 0)) + rec(0x11, 0)
        for target in refs:
            out += rec(0x0A, 0) + rec(0x12, 6, target.encode()) + rec(0x10, 3, struct.pack(">2i", 0, 0)) + rec(0x11, 0)
        out += rec(0x07, 0)
    return out + rec(0x04, 0) + tail


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (1.0, bytes.fromhex("4110000000000000")),
        (0.001, bytes.fromhex("3E4189374BC6A7EF")),
        (1e-9, bytes.fromhex("3944B82FA09B5A54")),
        (-2.5, bytes.fromhex("C128000000000000")),
        (0.0, bytes(8)),
    ],
)
def test_gdsii_real8_decodes_the_excess_64_format(value, encoded):
    assert M.gdsii.real8(encoded) == pytest.approx(value, rel=1e-15)


def test_gdsii_from_gdstk(gdstk_files):
    summary = parse_gds(gdstk_files("MYLIB")["gds"])
    record = summary.to_record()
    assert record["format"] == "GDSII"
    assert record["format_version"] == "600"
    assert record["library_name"] == "MYLIB"
    assert record["user_unit"] == pytest.approx(0.001)
    assert record["db_unit_meters"] == pytest.approx(1e-9)
    assert record["cell_names"] == ["LEAF", "MID", "TOP", "UNUSED"]
    assert record["top_cells"] == ["TOP", "UNUSED"]
    assert record["max_hierarchy_depth"] == 3
    assert record["empty_cell_count"] == 1
    assert record["reference_count"] == 2
    assert record["layers"] == ["1/0", "2/1", "3/0", "10/2"]  # numeric order


@pytest.mark.parametrize("variant", ["oas", "oas_plain", "oas_novalidation"])
def test_oasis_from_gdstk_matches_gdsii(gdstk_files, variant):
    files = gdstk_files()
    gds = parse_gds(files["gds"]).to_record()
    oas = parse_oas(files[variant]).to_record()
    assert oas["format"] == "OASIS"
    assert oas["format_version"] == "1.0"
    assert oas["library_name"] is None
    for field in ("cell_names", "top_cells", "max_hierarchy_depth", "empty_cell_count", "reference_count",
                  "layers", "user_unit", "db_unit_meters"):
        assert oas[field] == gds[field], field
    assert (oas["compressed_blocks"] > 0) == (variant != "oas_plain")


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 4096])
def test_results_do_not_depend_on_chunk_boundaries(gdstk_files, chunk):
    files = gdstk_files()
    assert parse_gds(files["gds"], chunk).to_record() == parse_gds(files["gds"]).to_record()
    assert parse_oas(files["oas"], chunk).to_record() == parse_oas(files["oas"]).to_record()


def test_hand_built_gdsii_hierarchy_and_unresolved_reference():
    summary = parse_gds(gds_library([("A", ["B", "GHOST"]), ("B", []), ("C", ["B"])], tail=b"\x00" * 100))
    assert summary.cell_names == ["A", "B", "C"]
    assert summary.top_cells == ["A", "C"]
    assert summary.unresolved_references == ["GHOST"]
    assert summary.max_hierarchy_depth == 2
    assert summary.library_name == "HAND"


def test_gdsii_reference_cycle_is_invalid():
    with pytest.raises(InvalidFileError, match="cycle"):
        parse_gds(gds_library([("A", ["B"]), ("B", ["A"])])).to_record()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (gds_library([("A", [])], tail=b"\x00\x01"), "after ENDLIB"),
        (gds_library([("A", [])]).replace(rec(0x11, 0), b"", 1), "not closed by ENDEL"),
        (rec(0x00, 2, struct.pack(">h", 600)) + rec(0x7E, 0), "unknown record type"),
        (rec(0x00, 2, struct.pack(">h", 600)) + struct.pack(">HBB", 3, 1, 2), "invalid record length"),
        (rec(0x00, 6, b"XX"), "data type"),
        (gds_library([("A", [])]).replace(real8(1e-9), real8(0.0)), "UNITS must be positive"),
    ],
)
def test_malformed_gdsii_is_a_typed_error(data, message):
    with pytest.raises(InvalidFileError, match=message):
        parse_gds(data)


@pytest.mark.parametrize("fmt", ["gds", "oas", "oas_plain"])
def test_every_truncation_is_a_truncated_or_invalid_file(gdstk_files, fmt):
    data = gdstk_files()[fmt]
    parse = parse_gds if fmt == "gds" else parse_oas
    truncated = 0
    for cut in range(len(data)):
        with pytest.raises(InvalidFileError):
            parse(data[:cut])
        try:
            parse(data[:cut])
        except M.layout.TruncatedFileError:
            truncated += 1
        except InvalidFileError:
            pass
    assert truncated > len(data) // 2  # most cuts end inside a record


def test_oasis_crc_and_checksum_mismatch_are_detected(gdstk_files):
    files = gdstk_files()
    for variant, scheme in (("oas", "crc32"), ("oas_plain", "checksum32")):
        damaged = bytearray(files[variant])
        damaged[-10] ^= 0x40  # inside the END record's padding string: still parses
        with pytest.raises(InvalidFileError, match=f"{scheme} validation failed"):
            parse_oas(bytes(damaged))


# --- OASIS, written by hand -----------------------------------------------------------------------
def oasis_file(body: bytes, *, unit: int = 1000) -> bytes:
    # START: version, unit as a positive whole number, offset-flag 0 with 6 empty table entries.
    start = uint(1) + astr("1.0") + uint(0) + uint(unit) + uint(0) + b"\x00" * 12
    padding = 256 - 1 - 2 - 1  # END id, 2-byte padding length, validation scheme 0
    end = uint(2) + uint(padding) + b"\x00" * padding + uint(0)
    assert len(end) == 256
    return M.oasis.MAGIC + start + body + end


def test_hand_built_oasis_with_every_geometry_record_and_name_tables_at_the_end():
    cell_b = uint(14) + astr("B")  # CELL by name
    geometry = (
        uint(20) + bytes([0x7B]) + uint(4) + uint(0) + uint(10) + uint(20) + sint(-5) + sint(5)  # RECTANGLE WHXY DL
        + uint(21) + bytes([0x3B]) + uint(4) + uint(1) + uint(0) + uint(2) + sint(3) + sint(-3) + sint(1) + sint(0)
        + uint(22) + bytes([0xFB]) + uint(5) + uint(0) + uint(3) + uint(0x0F) + sint(1) + sint(2)
        + uint(4) + uint(1) + uint(0b0101) + sint(0) + sint(0) + sint(0)  # PATH: g-delta form 2, x, y
        + uint(23) + bytes([0x7B]) + uint(6) + uint(0) + uint(10) + uint(5) + sint(1) + sint(-1) + sint(0) + sint(0)
        + uint(26) + bytes([0xFB]) + uint(7) + uint(0) + uint(3) + uint(4) + uint(4) + sint(0) + sint(0)
        + uint(27) + bytes([0x3B]) + uint(8) + uint(0) + uint(9) + sint(0) + sint(0)
        + uint(19) + bytes([0x5B]) + astr("label") + uint(63) + uint(1) + sint(0) + sint(0)  # TEXT C XY T L
        + uint(20) + bytes([0x0C]) + sint(1) + uint(1) + uint(2) + uint(3) + uint(4) + uint(5)  # Y + repetition type 1
        + uint(28) + bytes([0x24]) + astr("prop") + uint(8) + uint(7) + uint(10) + astr("v")  # PROPERTY 2 values
        + uint(29)  # PROPERTY repeat
        + uint(15) + uint(16)  # XYABSOLUTE, XYRELATIVE
        + uint(33) + bytes([0x03]) + uint(0) + uint(9) + uint(0) + astr("xg")  # XGEOMETRY
    )
    placement_a = uint(13) + uint(0)  # CELL by reference number 0 (named "A" at the end)
    placements = (
        uint(17) + bytes([0xC8]) + uint(1) + uint(4) + uint(2) + uint(3) + uint(10) + uint(10)  # by ref 1, repetition 4
        + uint(18) + bytes([0x86]) + astr("B") + uint(0) + uint(2) + uint(7) + struct.pack("<d", 90.0)
        + uint(17) + bytes([0x30]) + sint(5) + sint(5)  # modal cell (B) again
        + uint(17) + bytes([0x80]) + astr("EXTERNAL")
    )
    compressed_b_extra = uint(21) + bytes([0x23]) + uint(1) + uint(2) + uint(0) + uint(1) + sint(5)  # POLYGON, 1-deltas
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = deflate.compress(compressed_b_extra) + deflate.flush()
    cblock = uint(34) + uint(0) + uint(len(compressed_b_extra)) + uint(len(raw)) + raw
    names = (
        uint(4) + astr("A") + uint(0) + uint(4) + astr("B") + uint(1)  # CELLNAME with explicit numbers
        + uint(5) + astr("text") + uint(7) + astr("pn") + uint(10) + astr("ps") + uint(3)
        + uint(11) + astr("METAL") + uint(4) + uint(1) + uint(3) + uint(3) + uint(0)  # LAYERNAME intervals
        + uint(30) + uint(0) + astr("x") + uint(32) + uint(1) + astr("e")
    )
    summary = parse_oas(oasis_file(cell_b + geometry + cblock + placement_a + placements + names))
    assert summary.cell_names == ["A", "B"]
    assert summary.top_cells == ["A"]
    assert summary.unresolved_references == ["EXTERNAL"]
    assert summary.reference_count == 4
    assert summary.compressed_blocks == 1
    assert summary.db_unit_meters == pytest.approx(1e-9)
    assert {(4, 0), (4, 1), (5, 0), (6, 0), (7, 0), (8, 0), (63, 1), (9, 0), (1, 2)} == set(summary.layers)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (uint(13) + uint(5), "has no CELLNAME"),
        (uint(20) + bytes([0x03]) + uint(1) + uint(1), "outside a CELL"),
        (uint(14) + astr("C") + uint(99), "unknown record type 99"),
        (uint(14) + astr("C") + uint(21) + bytes([0x20]) + uint(9) + uint(0), "unknown point-list type 9"),
        (uint(14) + astr("C") + uint(20) + bytes([0x04]) + uint(12), "unknown repetition type 12"),
        (uint(34) + uint(1) + uint(0) + uint(0), "compression type 1"),
        (uint(34) + uint(0) + uint(5) + uint(3) + b"\xff\xff\xff", "corrupt|CBLOCK|invalid"),
        (uint(1), "not allowed"),
    ],
)
def test_malformed_oasis_is_a_typed_error(body, message):
    with pytest.raises(InvalidFileError, match=message):
        M.extraction.extract(M.layout.bytes_source(oasis_file(body)), label="x.oas")


def test_oasis_end_record_must_be_256_bytes():
    data = oasis_file(b"")
    shortened = data[:-256] + uint(2) + uint(3) + b"\x00" * 3 + uint(0)
    with pytest.raises(InvalidFileError, match="END record is"):
        parse_oas(shortened)


def test_content_decides_the_format_not_the_name(gdstk_files):
    files = gdstk_files()
    assert M.extraction.extract(M.layout.bytes_source(files["oas"]), label="named.gds").file_format == "OASIS"
    with pytest.raises(InvalidFileError, match="neither GDSII nor OASIS"):
        M.extraction.extract(M.layout.bytes_source(b"hello world"), label="text.gds")
    with pytest.raises(InvalidFileError, match="empty"):
        M.extraction.extract(M.layout.bytes_source(b""), label="empty.oas")


def test_decoder_memory_is_bounded_by_the_chunk():
    chunks = [bytes(1000)] * 200
    source = iter(chunks)
    dec = M.layout.Decoder(lambda: next(source, b""))
    largest = 0
    while not dec.at_eof():
        dec.skip(400)
        largest = max(largest, len(dec.buf))
    assert dec.offset == 200_000
    assert largest <= 2000
