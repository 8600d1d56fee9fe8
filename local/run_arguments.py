"""The options every local engine takes, declared once: ``python -m local`` hands every argument
but ``--engine`` to the engine it picks, so ``--uc``, ``--objects``, ``--keep`` and ``--json``
must mean the same in each (``local.cli`` and ``local.sam_engine``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def object_count(maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from 1 to ``maximum`` (no upper bound when None)."""
    expected = "a positive integer" if maximum is None else f"an integer from 1 to {maximum:,}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from e
        if value < 1 or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def add_run_arguments(
    parser: argparse.ArgumentParser,
    *,
    default_objects: int,
    max_objects: int | None,
    keep_help: str,
    json_help: str,
) -> None:
    """``--uc`` (``local.usecases.select`` resolves the names), ``--objects``, ``--keep``, ``--json``."""
    parser.add_argument(
        "--uc",
        action="append",
        default=[],
        metavar="NAME",
        help="use case to run (folder, events name or number: semiconductor-eda, "
        "uc06-semiconductor-eda, uc6); repeatable; default all",
    )
    limit = "" if max_objects is None else f", at most {max_objects:,}"
    parser.add_argument(
        "--objects",
        type=object_count(max_objects),
        default=default_objects,
        metavar="N",
        help=f"sample objects per use case (default {default_objects}{limit})",
    )
    parser.add_argument("--keep", type=Path, metavar="DIR", help=keep_help)
    parser.add_argument("--json", action="store_true", help=json_help)
