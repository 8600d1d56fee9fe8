"""Byte-level mutations shared by the decoders' exhaustive robustness tests."""

from __future__ import annotations

from collections.abc import Iterator


def single_bit_flips(original: bytes, head: int | None = None) -> Iterator[bytes]:
    """``original`` with one bit flipped, for each of the 8 bits of each of its first ``head``
    bytes (all of them when ``head`` is None), in order."""
    for index in range(len(original) if head is None else head):
        for bit in range(8):
            flipped = bytearray(original)
            flipped[index] ^= 1 << bit
            yield bytes(flipped)
