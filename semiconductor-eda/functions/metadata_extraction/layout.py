"""What the GDSII and OASIS parsers share: a bounded streaming byte decoder and the layout summary.

``Decoder`` reads a file sequentially from a chunk source (ranged GETs in Lambda, bytes in tests)
into one ``bytes`` buffer that the parsers scan in place (``buf`` and ``pos``), refilled by
``ensure(n)``. Its memory is bounded whatever the file declares:

- every declared length is checked against the bytes that remain (``size``, the object size,
  when the caller knows it) before anything is read: a CELLNAME of length 2**40 in a 100 MB file
  is a ``TruncatedFileError`` at once, not a read until the end of the file;
- one contiguous read (a name, a record) is at most ``MAX_READ_BYTES`` (``LengthLimitError``
  beyond it); longer payloads (point lists, padding, strings the summary does not need) are
  streamed past, never buffered;
- chunks are joined once per refill (no re-concatenation), so the buffer holds at most the
  unread rest (< ``MAX_READ_BYTES``) plus the chunks that complete the read: peak memory is about
  ``2 * (chunk size + MAX_READ_BYTES)`` while a refill joins, whatever the file size.

An optional ``budget`` (a callable returning True once the time budget is spent, e.g.
``Deadline.expired``) is consulted before every chunk is fetched and while a compressed block is
inflated; when it is spent the parser raises ``FileBudgetExceededError`` naming the bytes reached
and the file size, a permanent error: the same file would not finish on a retry either.

``LayoutBuilder`` collects per-cell facts while a parser streams the records; ``LayoutSummary``
holds the metadata the pipeline records (cells, top cells, hierarchy depth, layers, ...). Names
are decoded losslessly by ``decode_name``: distinct byte strings stay distinct names.

``native`` is the C extension of the parsers' in-buffer loops (native/uc06_layoutscan.c, in the
layer) when it can be imported, else None; the Python loops are the reference and the fallback.

Nothing here talks to AWS; the handler plugs an S3 range reader in as the chunk source.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import InvalidFileError


class Kernel(Protocol):
    """The compiled inner loops (native/uc06_layoutscan.c, built by scripts/build-native.sh and
    shipped in the layer): each one a port of a Python fast path, which stays the reference."""

    def gdsii_fast(self, buf: bytes, pos: int, layers: set[tuple[int, int]], /) -> tuple[int, int]: ...

    def oasis_fast(  # noqa: PLR0917 - the C function's positional signature
        self,
        buf: bytes,
        pos: int,
        layer: int | None,
        datatype: int | None,
        textlayer: int | None,
        texttype: int | None,
        in_cell: bool,
        layers: set[tuple[int, int]],
        limit: int,
        /,
    ) -> tuple[int, int, int | None, int | None, int | None, int | None]: ...

    def byte_sum(self, data: bytes, start: int = 0, /) -> int: ...


native: Kernel | None
"""The extension when it is importable, else None: the pure-Python decoders run (only slower)."""
try:
    import uc06_layoutscan as _compiled  # type: ignore[import-not-found]

    native = _compiled
except ImportError:
    native = None

ChunkSource = Callable[[], bytes]
"""Returns the next chunk of the file, ``b""`` once the file is exhausted."""

Budget = Callable[[], bool]
"""Returns True once the time budget of the file is spent (``Deadline.expired`` fits)."""

# A corrupt file could otherwise make the layer set grow without bound.
MAX_DISTINCT_LAYERS = 65_536
# The longest single read: a GDSII record is at most 65,535 bytes; an OASIS name longer than this
# is rejected (no layout tool writes one; the memory bound depends on this cap).
MAX_READ_BYTES = 128 * 1024


# What a file may define, so memory stays bounded by these (about 400 bytes per cell or pair)
# and not by the file's size: far above real designs (full chips have 10^4 to 10^5 cells).
MAX_CELLS = 1_000_000
MAX_REFERENCE_EDGES = 2_000_000
MAX_NAME_CHARACTERS = 64 * 1024 * 1024  # all cell names kept, together


class TruncatedFileError(InvalidFileError):
    """The file ends in the middle of a record (a partial upload or copy), or a declared length
    reaches past its end."""


class LengthLimitError(InvalidFileError):
    """A declared length exceeds the documented cap of what the decoder buffers (``MAX_READ_BYTES``)."""


class CountLimitError(InvalidFileError):
    """The file defines more cells, names or references than the documented caps (``MAX_CELLS``,
    ``MAX_REFERENCE_EDGES``): refused rather than held in memory without bound."""


def check_count(count: int, limit: int, what: str) -> None:
    """Raise ``CountLimitError`` when ``count`` things already exist and ``limit`` is reached."""
    if count >= limit:
        raise CountLimitError(f"the file defines more than {limit} {what}", limit=limit)


class ReferenceCycleError(InvalidFileError):
    """A cell references itself, directly or through others (neither format allows it)."""


class FileBudgetExceededError(InvalidFileError):
    """The file could not be parsed within the time budget of one invocation (permanent: a retry
    would get no further). Message and details name the bytes reached and the file size."""


_ASCII_SAFE = bytes(range(0x20, 0x7F)).replace(b"\\", b"")


def decode_name(data: bytes) -> str:
    """A cell or library name: UTF-8 where valid, each other byte as ``\\xNN``, a literal backslash
    as ``\\\\``; injective, so distinct byte strings stay distinct names. Names without a backslash
    that are valid UTF-8 come out exactly as gdstk reports them."""
    if not data.translate(None, _ASCII_SAFE):  # plain printable ASCII: the common case
        return data.decode("ascii")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data.replace(b"\\", b"\\\\").decode("utf-8", errors="backslashreplace")
    return text.replace("\\", "\\\\")


class Decoder:
    """Sequential reader over a ``ChunkSource``; the parsers scan ``buf`` from ``pos`` in place.

    ``offset`` is the absolute position of the next byte (``base + pos``). ``size`` is the
    number of bytes the file holds, when known (the object size): every declared length is
    checked against it. With ``track_checksums`` the CRC-32 and the 32-bit byte sum of everything
    before ``offset`` are available (OASIS END validation).
    """

    def __init__(
        self,
        source: ChunkSource,
        *,
        size: int | None = None,
        budget: Budget | None = None,
        track_checksums: bool = False,
        label: str = "file",
        on_fill: Callable[[], None] | None = None,
    ) -> None:
        self._source = source
        self.buf = b""
        self.pos = 0
        self.base = 0
        self.size = size
        self._eof = False
        self._track = track_checksums
        self._crc = 0
        self._sum = 0
        self._budget = budget
        self._on_fill = on_fill
        self.label = label

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def check_budget(self) -> None:
        """Raise ``FileBudgetExceededError`` when the budget is spent (called before every fetch)."""
        if self._on_fill is not None:
            self._on_fill()
        if self._budget is not None and self._budget():
            size = "unknown" if self.size is None else str(self.size)
            raise FileBudgetExceededError(
                f"{self.label}: time budget spent after {self.offset} of {size} bytes",
                bytes_reached=self.offset,
                file_size=self.size,
            )

    def remaining(self) -> int | None:
        """Bytes left after ``offset`` when the size is known."""
        return None if self.size is None else self.size - self.offset

    def _need(self, n: int, what: str) -> None:
        """Reject a declared length that reaches past the end of the file (size known)."""
        if self.size is not None and self.offset + n > self.size:
            raise TruncatedFileError(
                f"{self.label}: {what} of {n} bytes at offset {self.offset} reaches past the end "
                f"of the file ({self.size} bytes)",
                offset=self.offset,
            )

    def _consume(self) -> None:
        """Drop the bytes before ``pos`` from the buffer (checksums updated)."""
        if self.pos:
            if self._track:
                consumed = self.buf[: self.pos]
                self._crc = zlib.crc32(consumed, self._crc)
                self._sum = _byte_sum(consumed, self._sum)
            self.base += self.pos
            self.buf = self.buf[self.pos :]
            self.pos = 0

    def ensure(self, n: int, *, what: str = "record") -> int:
        """Make ``n`` bytes available at ``buf[pos:]`` if the file has them; return how many are
        available (fewer than ``n`` only at the end of the file). Never buffers more than
        ``MAX_READ_BYTES`` beyond one chunk."""
        have = len(self.buf) - self.pos
        if have >= n or self._eof:
            return have
        if n > MAX_READ_BYTES:
            raise LengthLimitError(
                f"{self.label}: {what} of {n} bytes at offset {self.offset} exceeds the "
                f"{MAX_READ_BYTES}-byte limit",
                offset=self.offset,
            )
        self._consume()
        parts = [self.buf]
        while have < n:
            self.check_budget()
            chunk = self._source()
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self.buf = b"".join(parts)
        return have

    def _truncated(self, n: int) -> TruncatedFileError:
        return TruncatedFileError(
            f"{self.label} ends at byte {self.base + len(self.buf)} in the middle of a record "
            f"(needed {n} more bytes at offset {self.offset})",
            offset=self.offset,
        )

    def fill(self, n: int, *, what: str = "record") -> None:
        """Exactly like ``ensure`` but raise ``TruncatedFileError`` when fewer than ``n`` remain."""
        self._need(n, what)
        if self.ensure(n, what=what) < n:
            raise self._truncated(n)

    def at_eof(self) -> bool:
        """True when no byte is left."""
        return self.ensure(1) == 0

    def read(self, n: int, *, what: str = "string") -> bytes:
        """Exactly ``n`` bytes (at most ``MAX_READ_BYTES``)."""
        if n <= 0:
            return b""
        self.fill(n, what=what)
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        return data

    def byte(self) -> int:
        if self.pos >= len(self.buf):
            self.fill(1)
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def skip(self, n: int, *, what: str = "payload") -> None:
        """Advance ``n`` bytes without keeping them (streamed chunk by chunk: memory stays one
        chunk, checksums stay correct)."""
        self._need(n, what)
        while n > 0:
            have = len(self.buf) - self.pos
            if have == 0:
                if self.ensure(1) == 0:
                    raise self._truncated(n)
                continue
            step = min(n, have)
            self.pos += step
            n -= step
            if self.pos == len(self.buf):
                self._consume()

    def uint(self) -> int:
        """An OASIS unsigned-integer: little-endian base-128, high bit = continuation (64 bits at most)."""
        buf, pos = self.buf, self.pos
        result = 0
        shift = 0
        while True:
            if pos >= len(buf):
                self.pos = pos
                self.fill(1)
                buf, pos = self.buf, self.pos
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                self.pos = pos
                return result
            shift += 7
            if shift > 63:
                self.pos = pos
                raise InvalidFileError(
                    f"{self.label}: integer longer than 64 bits at offset {self.offset}", offset=self.offset
                )

    def checksums(self) -> tuple[int, int]:
        """CRC-32 and byte sum (mod 2**32) of every byte before ``offset``."""
        if not self._track:
            raise RuntimeError("checksums were not tracked")
        consumed = self.buf[: self.pos]
        return zlib.crc32(consumed, self._crc), _byte_sum(consumed, self._sum)


def _byte_sum(data: bytes, start: int) -> int:
    """``(start + sum(data)) mod 2**32`` (OASIS checksum-32), compiled when the extension is present."""
    if native is not None:
        return native.byte_sum(data, start)
    return (start + sum(data)) & 0xFFFFFFFF


def bytes_source(data: bytes, chunk_size: int = 64 * 1024) -> ChunkSource:
    """A ``ChunkSource`` over bytes already in memory (tests, benchmarks)."""
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


def check_units(user_unit: float, db_unit_meters: float, *, what: str) -> None:
    """Both units must be finite, positive, normal floats: every number in a record is finite."""
    for value in (user_unit, db_unit_meters):
        if not (math.isfinite(value) and value >= 2.2250738585072014e-308):
            raise InvalidFileError(
                f"{what}: units out of range (user unit {user_unit!r}, database unit {db_unit_meters!r} m)"
            )


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
        self._edges = 0
        self._name_characters = 0
        self._current: CellFacts | None = None

    def begin_cell(self, key: Hashable) -> None:
        # A cell defined twice (legal in neither format, but seen in the wild) is merged.
        current = self.cells.get(key)
        if current is None:
            check_count(len(self.cells), MAX_CELLS, "cells")
            self.retain(key)
            current = self.cells[key] = CellFacts()
        self._current = current

    def retain(self, name: Hashable) -> None:
        """Count the characters of a name kept until the end (``MAX_NAME_CHARACTERS`` in all)."""
        if isinstance(name, str):
            self._name_characters += len(name)
            check_count(self._name_characters, MAX_NAME_CHARACTERS + 1, "characters of cell names")

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

    def add_elements(self, count: int, layers: Collection[tuple[int, int]]) -> None:
        """``count`` elements of the current cell at once, on ``layers`` (fast paths count locally).

        Near ``MAX_DISTINCT_LAYERS`` the pairs are taken in sorted order, so which ones are kept
        does not depend on the order a set happens to iterate in (the compiled and the Python fast
        paths fill their local sets in different orders)."""
        if self._current is not None:
            self._current.elements += count
        self.elements += count
        if len(self.layers) + len(layers) > MAX_DISTINCT_LAYERS:
            layers = sorted(layers)
        for key in layers:
            if len(self.layers) < MAX_DISTINCT_LAYERS:
                self.layers.add(key)
            elif key not in self.layers:
                self.layers_truncated = True

    def reference(self, target: Hashable) -> None:
        if self._current is not None:
            self._current.elements += 1
            references = self._current.references
            if target not in references:
                self._edges += 1
                check_count(self._edges, MAX_REFERENCE_EDGES, "distinct (cell, referenced cell) pairs")
                self.retain(target)
                references[target] = 0
            references[target] += 1
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
        """The summary; raises ``InvalidFileError`` for units out of range and
        ``ReferenceCycleError`` for a reference cycle, so the summary's record is always valid."""
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

    def __post_init__(self) -> None:
        # Checked and computed once, here: ``to_record`` never raises and every number in it is
        # finite; units out of range and reference cycles are the parser's typed errors.
        check_units(self.user_unit, self.db_unit_meters, what=self.file_format)
        object.__setattr__(self, "_depth", hierarchy_depth(self.cell_references))

    @property
    def max_hierarchy_depth(self) -> int:
        """Levels in the deepest chain of references (a cell with no children is depth 1)."""
        depth: int = self.__dict__["_depth"]
        return depth

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


def hierarchy_depth(cell_references: dict[str, dict[str, int]]) -> int:
    """Levels in the deepest chain of references among defined cells (a leaf is depth 1).

    Raises ``ReferenceCycleError`` on a reference cycle, which neither format allows.
    """
    depth: dict[str, int] = {}
    for root, root_refs in cell_references.items():
        if root in depth:
            continue
        # Iterative post-order walk: deep hierarchies must not hit the recursion limit.
        on_path: set[str] = {root}
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(root_refs))]
        while stack:
            name, children = stack[-1]
            child = next((c for c in children if c in cell_references and c not in depth), None)
            if child is None:
                stack.pop()
                on_path.discard(name)
                depth[name] = 1 + max((depth[c] for c in cell_references[name] if c in depth), default=0)
                continue
            if child in on_path:
                raise ReferenceCycleError(f"cell {child!r} references itself through {name!r} (a cycle)")
            on_path.add(child)
            stack.append((child, iter(cell_references[child])))
    return max(depth.values(), default=0)
