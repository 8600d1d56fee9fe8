"""What the GDSII and OASIS parsers share: a bounded streaming byte decoder and the layout summary.

``Decoder`` reads a file sequentially from a chunk source (ranged GETs in Lambda, bytes in tests)
and keeps at most about one chunk in memory, whatever the file size. ``LayoutBuilder`` collects
per-cell facts while a parser streams the records; ``LayoutSummary`` derives the metadata the
pipeline records (cells, top cells, hierarchy depth, layers, ...).

Nothing here talks to AWS; the handler plugs an S3 range reader in as the chunk source.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.errors import InvalidFileError

ChunkSource = Callable[[], bytes]
"""Returns the next chunk of the file, ``b""`` once the file is exhausted."""

# A corrupt file could otherwise make the layer set grow without bound.
MAX_DISTINCT_LAYERS = 65_536


class TruncatedFileError(InvalidFileError):
    """The file ends in the middle of a record (a partial upload or copy)."""


class Decoder:
    """Sequential reader over a ``ChunkSource`` with a buffer bounded by the chunk size.

    ``offset`` is the absolute position of the next byte. With ``track_checksums`` the CRC-32 and
    the 32-bit byte sum of everything before ``offset`` are available (OASIS END validation).
    """

    def __init__(self, source: ChunkSource, *, track_checksums: bool = False, label: str = "file") -> None:
        self._source = source
        self._buf = b""
        self._pos = 0
        self._base = 0
        self._eof = False
        self._track = track_checksums
        self._crc = 0
        self._sum = 0
        self.label = label

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _fill(self, n: int) -> None:
        """Make at least ``n`` bytes available after the read position, or raise ``TruncatedFileError``."""
        while len(self._buf) - self._pos < n:
            if self._eof:
                raise TruncatedFileError(
                    f"{self.label} ends at byte {self._base + len(self._buf)} in the middle of a record "
                    f"(needed {n} more bytes at offset {self.offset})",
                    offset=self.offset,
                )
            chunk = self._source()
            if not chunk:
                self._eof = True
                continue
            if self._track and self._pos:
                consumed = self._buf[: self._pos]
                self._crc = zlib.crc32(consumed, self._crc)
                self._sum = (self._sum + sum(consumed)) & 0xFFFFFFFF
            self._base += self._pos
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0

    def at_eof(self) -> bool:
        """True when no byte is left."""
        try:
            self._fill(1)
        except TruncatedFileError:
            return True
        return False

    def read(self, n: int) -> bytes:
        """Exactly ``n`` bytes."""
        if n <= 0:
            return b""
        self._fill(n)
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def byte(self) -> int:
        if self._pos >= len(self._buf):
            self._fill(1)
        value = self._buf[self._pos]
        self._pos += 1
        return value

    def skip(self, n: int) -> None:
        """Advance ``n`` bytes without keeping them (still streamed: checksums stay correct)."""
        while n > 0:
            self._fill(1)
            step = min(n, len(self._buf) - self._pos)
            self._pos += step
            n -= step

    def uint(self) -> int:
        """An OASIS unsigned-integer: little-endian base-128, high bit = continuation."""
        buf, pos = self._buf, self._pos
        result = 0
        shift = 0
        while True:
            if pos >= len(buf):
                self._pos = pos
                self._fill(1)
                buf, pos = self._buf, self._pos
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                self._pos = pos
                return result
            shift += 7
            if shift > 63:
                self._pos = pos
                raise InvalidFileError(
                    f"{self.label}: integer longer than 64 bits at offset {self.offset}", offset=self.offset
                )

    def checksums(self) -> tuple[int, int]:
        """CRC-32 and byte sum (mod 2**32) of every byte before ``offset``."""
        if not self._track:
            raise RuntimeError("checksums were not tracked")
        consumed = self._buf[: self._pos]
        return zlib.crc32(consumed, self._crc), (self._sum + sum(consumed)) & 0xFFFFFFFF


def bytes_source(data: bytes, chunk_size: int = 64 * 1024) -> ChunkSource:
    """A ``ChunkSource`` over bytes already in memory (tests, decompressed blocks)."""
    view = memoryview(data)
    position = 0

    def next_chunk() -> bytes:
        nonlocal position
        chunk = bytes(view[position : position + chunk_size])
        position += len(chunk)
        return chunk

    return next_chunk


def _significant(value: float) -> float:
    """12 significant digits: OASIS stores grid steps per micron, GDSII meters per unit, and the
    same unit must compare equal whichever way it was computed (1e-6/10000 is 9.999999999999999e-11)."""
    return float(f"{value:.12g}")


@dataclass
class CellFacts:
    """What one cell contains: element count (geometry, text, references) and references by target."""

    elements: int = 0
    references: dict[Hashable, int] = field(default_factory=dict)


class LayoutBuilder:
    """Accumulates cells, references and layers while a parser streams records.

    Cells are keyed by whatever the format uses to name them before the name is known (OASIS
    reference numbers); ``finish`` resolves keys to names.
    """

    def __init__(self) -> None:
        self.cells: dict[Hashable, CellFacts] = {}
        self.layers: set[tuple[int, int]] = set()
        self.layers_truncated = False
        self.elements = 0
        self.references = 0
        self._current: CellFacts | None = None

    def begin_cell(self, key: Hashable) -> None:
        # A cell defined twice (legal in neither format, but seen in the wild) is merged.
        self._current = self.cells.setdefault(key, CellFacts())

    def end_cell(self) -> None:
        self._current = None

    @property
    def in_cell(self) -> bool:
        return self._current is not None

    def element(self, layer: int | None = None, datatype: int | None = None) -> None:
        if self._current is not None:
            self._current.elements += 1
        self.elements += 1
        if layer is not None and datatype is not None:
            if len(self.layers) < MAX_DISTINCT_LAYERS:
                self.layers.add((layer, datatype))
            elif (layer, datatype) not in self.layers:
                self.layers_truncated = True

    def reference(self, target: Hashable) -> None:
        if self._current is not None:
            self._current.elements += 1
            self._current.references[target] = self._current.references.get(target, 0) + 1
        self.elements += 1
        self.references += 1

    def finish(
        self,
        *,
        file_format: str,
        format_version: str,
        library_name: str | None,
        user_unit: float,
        db_unit_meters: float,
        resolve: Callable[[Hashable], str] = str,
        compressed_blocks: int = 0,
    ) -> LayoutSummary:
        cells: dict[str, dict[str, int]] = {}
        element_counts: dict[str, int] = {}
        for key, facts in self.cells.items():
            name = resolve(key)
            refs = cells.setdefault(name, {})
            for target, count in facts.references.items():
                target_name = resolve(target)
                refs[target_name] = refs.get(target_name, 0) + count
            element_counts[name] = element_counts.get(name, 0) + facts.elements
        return LayoutSummary(
            file_format=file_format,
            format_version=format_version,
            library_name=library_name,
            user_unit=user_unit,
            db_unit_meters=db_unit_meters,
            cell_references=cells,
            cell_elements=element_counts,
            layers=frozenset(self.layers),
            layers_truncated=self.layers_truncated,
            element_count=self.elements,
            reference_count=self.references,
            compressed_blocks=compressed_blocks,
        )


@dataclass(frozen=True)
class LayoutSummary:
    """The metadata of one layout file."""

    file_format: str
    format_version: str
    library_name: str | None
    user_unit: float
    db_unit_meters: float
    cell_references: dict[str, dict[str, int]]
    cell_elements: dict[str, int]
    layers: frozenset[tuple[int, int]]
    layers_truncated: bool
    element_count: int
    reference_count: int
    compressed_blocks: int = 0

    @property
    def cell_names(self) -> list[str]:
        return sorted(self.cell_references)

    @property
    def top_cells(self) -> list[str]:
        """Defined cells that no defined cell references."""
        referenced = {t for refs in self.cell_references.values() for t in refs}
        return sorted(name for name in self.cell_references if name not in referenced)

    @property
    def unresolved_references(self) -> list[str]:
        """Referenced cell names that the file does not define."""
        return sorted({t for refs in self.cell_references.values() for t in refs if t not in self.cell_references})

    @property
    def empty_cells(self) -> list[str]:
        return sorted(name for name, count in self.cell_elements.items() if count == 0)

    @property
    def max_hierarchy_depth(self) -> int:
        """Levels in the deepest chain of references (a cell with no children is depth 1).

        Raises ``InvalidFileError`` on a reference cycle, which neither format allows.
        """
        depth: dict[str, int] = {}
        for root in self.cell_references:
            if root in depth:
                continue
            # Iterative post-order walk: deep hierarchies must not hit the recursion limit.
            on_path: set[str] = {root}
            stack: list[tuple[str, Iterable[str]]] = [(root, iter(self.cell_references[root]))]
            while stack:
                name, children = stack[-1]
                child = next((c for c in children if c in self.cell_references and c not in depth), None)
                if child is None:
                    stack.pop()
                    on_path.discard(name)
                    depth[name] = 1 + max(
                        (depth[c] for c in self.cell_references[name] if c in depth),
                        default=0,
                    )
                    continue
                if child in on_path:
                    raise InvalidFileError(f"cell {child!r} references itself through {name!r} (a cycle)")
                on_path.add(child)
                stack.append((child, iter(self.cell_references[child])))
        return max(depth.values(), default=0)

    def layer_names(self) -> list[str]:
        return [f"{layer}/{datatype}" for layer, datatype in sorted(self.layers)]

    def to_record(self, *, max_names: int = 1000) -> dict[str, Any]:
        """The per-file fields of the result record; name lists are cut at ``max_names``."""
        names = self.cell_names
        tops = self.top_cells
        layers = self.layer_names()
        return {
            "format": self.file_format,
            "format_version": self.format_version,
            "library_name": self.library_name,
            "user_unit": _significant(self.user_unit),
            "db_unit_meters": _significant(self.db_unit_meters),
            "cell_count": len(names),
            "cell_names": names[:max_names],
            "cell_names_truncated": len(names) > max_names,
            "top_cells": tops[:max_names],
            "top_cell_count": len(tops),
            "element_count": self.element_count,
            "reference_count": self.reference_count,
            "layer_count": len(layers),
            "layers": layers[:max_names],
            "unresolved_reference_count": len(self.unresolved_references),
            "empty_cell_count": len(self.empty_cells),
            "max_hierarchy_depth": self.max_hierarchy_depth,
            "compressed_blocks": self.compressed_blocks,
        }
