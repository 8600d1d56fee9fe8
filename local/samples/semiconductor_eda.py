"""Sample layout files for UC6: real GDSII and OASIS libraries written by gdstk, plus broken ones.

``generate(s3, access_point_arn, objects=N, seed=S)`` writes N layout files through the access
point (keys under ``designs/``), deterministic for a seed:

- valid libraries with a random cell hierarchy, polygons, paths, labels and references on a few
  layers, alternating GDSII (``.gds``/``.gds2``) and OASIS (``.oas``/``.oasis``, CBLOCK-compressed
  or not, with CRC-32 or checksum-32 validation); some carry design-rule findings on purpose
  (two top cells, an empty cell) and one uses a different database unit;
- ``N // 20`` broken files (at most 5 %, clearly inside the template's default tolerance of
  10 %, so a test can add failures on either side of it), cycling through truncated GDSII, an
  OASIS file whose CRC does not match, a text file named ``.gds``, truncated OASIS and a GDSII
  stream with a bad record: the default 40 objects have two, one truncated and one corrupt;
- two objects the suffix filter must skip (``README.txt`` and a ``.lef``), not counted in N.

Keys include a space, non-ASCII characters and the same file name in two folders, so output keys
must be derived from the full source key.
"""

from __future__ import annotations

import datetime as dt
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gdstk

PREFIX = "designs/"
BROKEN_EVERY = 20  # one broken file per this many objects (5 %)
_TIMESTAMP = dt.datetime(2026, 1, 1, 12, 0, 0)  # fixed so GDSII bytes are reproducible
_FOLDERS = ("chip-a", "chip-b/analog", "chip-c/top level", "chip-ä/ip")


@dataclass(frozen=True)
class SampleSet:
    """What ``generate`` wrote: every key, and which the pipeline must read, reject or skip."""

    keys: tuple[str, ...]
    valid: tuple[str, ...]
    corrupt: tuple[str, ...]
    ignored: tuple[str, ...]
    # Expected metadata of the valid files, by key (cell names, top cells, units), for tests.
    expected: dict[str, dict[str, Any]]


def _library(rng: random.Random, index: int) -> tuple[gdstk.Library, dict[str, Any]]:
    """A random but well-formed library; the hierarchy only references lower-numbered cells."""
    unit, precision = (1e-6, 1e-9) if index % 7 != 6 else (1e-6, 1e-10)
    lib = gdstk.Library(f"LIB_{index:03d}", unit=unit, precision=precision)
    count = rng.randint(2, 6)
    cells = [lib.new_cell(f"B{index:03d}_C{i}") for i in range(count)]
    for i, cell in enumerate(cells):
        layer = rng.randint(1, 12)
        cell.add(gdstk.rectangle((0, 0), (rng.uniform(1, 10), rng.uniform(1, 10)), layer=layer, datatype=0))
        cell.add(gdstk.Polygon([(0, 0), (4, 0), (3, 3), (0, 2)], layer=layer + 1, datatype=rng.randint(0, 3)))
        if rng.random() < 0.5:
            cell.add(gdstk.FlexPath([(0, 0), (5, 0), (5, 5)], 0.2, layer=layer, simple_path=True))
        if rng.random() < 0.5:
            cell.add(gdstk.Label(f"net{i}", (1, 1), layer=63, texttype=0))
        if i > 0:
            child = cells[rng.randrange(i)]
            if rng.random() < 0.5:
                cell.add(gdstk.Reference(child, (rng.uniform(0, 50), 0)))
            else:
                cell.add(gdstk.Reference(child, (0, 0), columns=2, rows=3, spacing=(20, 20)))
    top = lib.new_cell(f"B{index:03d}_TOP")
    top.add(gdstk.Reference(cells[-1], (0, 0), rotation=0.5, magnification=2))
    if index % 5 == 3:
        lib.new_cell(f"B{index:03d}_SPARE")  # a second top cell that is also empty: two findings
    referenced = {ref.cell.name for c in lib.cells if isinstance(c, gdstk.Cell) for ref in c.references}
    expected = {
        "cell_names": sorted(c.name for c in lib.cells),
        "top_cells": sorted(c.name for c in lib.cells if c.name not in referenced),
        "db_unit_meters": precision,
        "user_unit": precision / unit,
    }
    return lib, expected


def _write(lib: gdstk.Library, workdir: Path, kind: str, index: int) -> bytes:
    path = workdir / f"f{index}.{kind}"
    if kind == "gds":
        lib.write_gds(path, timestamp=_TIMESTAMP)
    else:
        lib.write_oas(
            path,
            compression_level=6 if index % 2 else 0,
            validation="crc32" if index % 3 else "checksum32",
        )
    return path.read_bytes()


def layout_bytes(index: int, kind: str, *, seed: int = 0) -> bytes:
    """The bytes of one valid sample library (``kind`` "gds" or "oas"), as ``generate`` writes
    them for object ``index`` (OASIS: CBLOCK-compressed for odd indexes, CRC-32 or checksum-32)."""
    if kind not in ("gds", "oas"):
        raise ValueError(f"kind must be 'gds' or 'oas', got {kind!r}")
    lib, _ = _library(random.Random(f"{seed}:{index}"), index)
    with tempfile.TemporaryDirectory(prefix="uc6-sample-") as tmp:
        return _write(lib, Path(tmp), kind, index)


def _broken(kind: int, valid_gds: bytes, valid_oas: bytes) -> tuple[str, bytes]:
    """(suffix, bytes) of one broken file of ``kind`` (cycling through five kinds).

    The first two differ in both format and error (truncated GDSII, corrupt OASIS), so the
    smallest sample with broken files already has one of each.
    """
    match kind % 5:
        case 0:
            return ".gds", valid_gds[: len(valid_gds) * 2 // 3]  # cut mid-record
        case 1:
            damaged = bytearray(valid_oas)
            damaged[-10] ^= 0x01  # inside the END record's padding: parses, validation fails
            return ".oas", bytes(damaged)
        case 2:
            return ".gds", b"this is a text file with a layout suffix\n"
        case 3:
            return ".oas", valid_oas[: len(valid_oas) - 100]  # END record missing
        case _:
            damaged = bytearray(valid_gds)
            damaged[6] = 0x7F  # BGNLIB's record type becomes an unknown type
            return ".gds", bytes(damaged)


def _folder(i: int) -> str:
    return _FOLDERS[i % len(_FOLDERS)]


def generate(s3: Any, access_point_arn: str, *, objects: int, seed: int = 0) -> SampleSet:
    """Write ``objects`` layout files (one in twenty broken) and two non-layout objects."""
    if objects < 0:
        raise ValueError("objects must be >= 0")
    rng = random.Random(seed)
    broken_count = objects // BROKEN_EVERY
    valid_count = objects - broken_count

    def put(key: str, body: bytes) -> None:
        s3.put_object(Bucket=access_point_arn, Key=key, Body=body)

    valid: list[str] = []
    corrupt: list[str] = []
    expected: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="uc6-samples-") as tmp:
        workdir = Path(tmp)
        reference_gds = reference_oas = b""
        for i in range(valid_count):
            lib, facts = _library(rng, i)
            is_gds = i % 2 == 0
            suffix = (".gds", ".gds2")[i % 4 == 2] if is_gds else (".oas", ".oasis")[i % 4 == 3]
            data = _write(lib, workdir, "gds" if is_gds else "oas", i)
            # The same file name in two folders: result keys must not collide.
            key = f"{PREFIX}{_folder(i)}/block_{i:03d}{suffix}"
            put(key, data)
            valid.append(key)
            expected[key] = {"format": "GDSII" if is_gds else "OASIS", **facts}
            if is_gds and not reference_gds:
                reference_gds = data
            if not is_gds and not reference_oas:
                reference_oas = data
        if broken_count and not (reference_gds and reference_oas):
            lib, _ = _library(rng, 999)
            reference_gds = _write(lib, workdir, "gds", 998)
            reference_oas = _write(lib, workdir, "oas", 999)
        for j in range(broken_count):
            suffix, data = _broken(j, reference_gds, reference_oas)
            key = f"{PREFIX}{_folder(j)}/broken_{j:03d}{suffix}"
            put(key, data)
            corrupt.append(key)
    ignored = [f"{PREFIX}README.txt", f"{PREFIX}chip-a/cells.lef"]
    for key in ignored:
        put(key, b"not a layout file\n")
    return SampleSet(
        keys=tuple(valid + corrupt + ignored),
        valid=tuple(valid),
        corrupt=tuple(corrupt),
        ignored=tuple(ignored),
        expected=expected,
    )
