"""Use cases by name, without reading their templates: what a command line needs to pick use cases
(``--uc``) before anything heavy is imported. ``local.usecases`` re-exports all of it.

A use case is a folder with a ``template-deploy.yaml``; its events folder is
``events/uc<NN>-<folder>``, whose name (``uc06-semiconductor-eda``) and number (``uc06``, ``uc6``,
``6``) pick it as well as the folder name does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_NAME = "template-deploy.yaml"


class UseCaseError(ValueError):
    """A template, event or env.json entry a local run cannot use."""


def events_dir_of(directory: Path, events_root: Path | None = None) -> Path:
    """``events/uc<NN>-<folder>`` of the use case in ``directory``."""
    events_root = events_root or REPO_ROOT / "events"
    matches = sorted(events_root.glob(f"uc[0-9]*-{directory.name}"))
    if len(matches) > 1:
        raise UseCaseError(f"{directory.name}: several event folders match: {[m.name for m in matches]}")
    return matches[0] if matches else events_root / f"uc00-{directory.name}"


@dataclass(frozen=True)
class UseCaseFolder:
    """A use case's names without reading its template (for picking use cases by name)."""

    name: str
    directory: Path
    events_name: str


def discover_use_cases(root: Path = REPO_ROOT) -> list[Path]:
    """Every use-case folder: each one holding a ``template-deploy.yaml``, in name order."""
    return sorted(path.parent for path in root.glob(f"*/{TEMPLATE_NAME}"))


def folders(root: Path = REPO_ROOT) -> list[UseCaseFolder]:
    """Every use case present, as ``discover()`` finds them, without loading the templates."""
    return [
        UseCaseFolder(directory.name, directory, events_dir_of(directory, root / "events").name)
        for directory in discover_use_cases(root)
    ]


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def events_name(self) -> str: ...


def select[NamedT: _Named](use_cases: list[NamedT], names: list[str]) -> list[NamedT]:
    """Pick use cases by folder name (semiconductor-eda), events name (uc06-semiconductor-eda) or
    number (uc06, uc6, 6), in the order named. No names: all of them."""
    if not names:
        return use_cases
    chosen: list[NamedT] = []
    for raw in names:
        wanted = raw.strip().lower()
        number = re.fullmatch(r"(?:uc)?0*(\d+)", wanted)
        found = [
            uc
            for uc in use_cases
            if wanted in {uc.name, uc.events_name}
            or (number is not None and re.fullmatch(rf"uc0*{number.group(1)}-.*", uc.events_name))
        ]
        if not found:
            known = ", ".join(f"{uc.name} ({uc.events_name})" for uc in use_cases) or "none"
            raise UseCaseError(f"unknown use case '{raw}'; present: {known}")
        chosen.extend(uc for uc in found if uc not in chosen)
    return chosen
