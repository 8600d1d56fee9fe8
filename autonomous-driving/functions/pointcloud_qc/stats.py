"""Quality figures of one point cloud, accumulated chunk by chunk (memory independent of the size).

Definitions (the same for PCD, LAS and LAZ):

- ``point_count``: points in the file (the header's count, verified against the data read).
- ``nonfinite_points``: points with at least one of x, y, z NaN or infinite; ``nan_ratio`` is
  their share of ``point_count``.
- ``zero_points``: points whose x, y and z are all exactly 0 (a sensor's "no return");
  ``zero_ratio`` is their share.
- ``bounds``: per axis, min and max over that axis's finite values (a NaN in one coordinate does
  not hide the others); ``None`` when the axis has none.
- ``density_per_m2``: points with finite x, y, z divided by the area of the XY bounding box of
  those bounds, in points per square metre (coordinates are taken as metres: LAS scaled
  coordinates and PCD sensor frames normally are); ``None`` when the area is 0.
- ``intensity_min``/``intensity_max``: range of the finite intensity values (PCD field
  ``intensity`` or ``i``; LAS ``intensity``); ``None`` when the file has no intensity.

Column-major data (PCD ``binary_compressed`` stores all x, then all y, ...) needs two flags per
point (2 bytes/point, ``numpy.bool_``) to tell which points are non-finite or zero once every
column has been seen; row formats need nothing per point.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.errors import InvalidFileError

AXES = ("x", "y", "z")
FloatArray = npt.NDArray[np.float64]


class _Range:
    __slots__ = ("high", "low")

    def __init__(self) -> None:
        self.low = math.inf
        self.high = -math.inf

    def update(self, values: FloatArray) -> None:
        finite = values[np.isfinite(values)]
        if finite.size:
            self.low = min(self.low, float(finite.min()))
            self.high = max(self.high, float(finite.max()))

    def pair(self) -> tuple[float, float] | None:
        return (self.low, self.high) if self.low <= self.high else None


class CloudStats:
    """Accumulates the figures; ``add_rows`` for row formats, ``add_column`` for column-major data."""

    def __init__(self, declared_points: int, *, has_intensity: bool, column_major: bool = False) -> None:
        self.declared_points = declared_points
        self.has_intensity = has_intensity
        self._axes = {axis: _Range() for axis in AXES}
        self._intensity = _Range()
        self._rows = 0
        self._nonfinite = 0
        self._zero = 0
        self._column_major = column_major
        self._column_seen: dict[str, int] = {}
        if column_major:
            self._bad = np.zeros(declared_points, dtype=np.bool_)
            self._nonzero = np.zeros(declared_points, dtype=np.bool_)

    def add_rows(self, x: FloatArray, y: FloatArray, z: FloatArray, intensity: FloatArray | None = None) -> None:
        if self._column_major:
            raise RuntimeError("add_rows on column-major statistics")
        count = len(x)
        if self._rows + count > self.declared_points:
            raise InvalidFileError(f"more points than the {self.declared_points} declared")
        for axis, values in zip(AXES, (x, y, z), strict=True):
            self._axes[axis].update(values)
        bad = ~(np.isfinite(x) & np.isfinite(y) & np.isfinite(z))
        self._nonfinite += int(bad.sum())
        self._zero += int(((x == 0) & (y == 0) & (z == 0)).sum())
        if intensity is not None:
            self._intensity.update(intensity)
        self._rows += count

    def add_column(self, field: str, start: int, values: FloatArray) -> None:
        """Values ``start .. start+len`` of one column (``x``, ``y``, ``z`` or ``intensity``)."""
        if not self._column_major:
            raise RuntimeError("add_column on row statistics")
        end = start + len(values)
        if end > self.declared_points:
            raise InvalidFileError(f"column {field} holds more than the {self.declared_points} declared points")
        self._column_seen[field] = max(self._column_seen.get(field, 0), end)
        if field == "intensity":
            self._intensity.update(values)
            return
        self._axes[field].update(values)
        self._bad[start:end] |= ~np.isfinite(values)
        self._nonzero[start:end] |= values != 0

    def finish(self) -> dict[str, Any]:
        """The record fields; ``InvalidFileError`` when fewer points were read than declared."""
        n = self.declared_points
        if self._column_major:
            short = {f: seen for f, seen in self._column_seen.items() if seen != n}
            missing = [axis for axis in AXES if axis not in self._column_seen]
            if short or missing:
                raise InvalidFileError(f"columns incomplete: {short or missing} of {n} points")
            nonfinite = int(self._bad.sum())
            zero = int((~self._nonzero & ~self._bad).sum())
        else:
            if self._rows != n:
                raise InvalidFileError(f"{self._rows} points read, {n} declared")
            nonfinite, zero = self._nonfinite, self._zero
        bounds = {axis: self._axes[axis].pair() for axis in AXES}
        finite_points = n - nonfinite
        density: float | None = None
        bx, by = bounds["x"], bounds["y"]
        if bx is not None and by is not None:
            area = (bx[1] - bx[0]) * (by[1] - by[0])
            if area > 0 and math.isfinite(area):
                density = finite_points / area
        intensity = self._intensity.pair() if self.has_intensity else None
        return {
            "point_count": n,
            "nonfinite_points": nonfinite,
            "zero_points": zero,
            "nan_ratio": nonfinite / n if n else 0.0,
            "zero_ratio": zero / n if n else 0.0,
            "bounds": {
                axis: None if pair is None else {"min": pair[0], "max": pair[1]} for axis, pair in bounds.items()
            },
            "density_per_m2": density,
            "intensity_min": None if intensity is None else intensity[0],
            "intensity_max": None if intensity is None else intensity[1],
        }
