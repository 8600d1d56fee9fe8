"""Loads the canonical events under events/ (the same files `sam local invoke` uses)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = REPO_ROOT / "events"


def event_path(use_case_dir: str, function_name: str) -> Path:
    """``use_case_dir`` is the events folder name, e.g. ``uc06-semiconductor-eda``."""
    return EVENTS_DIR / use_case_dir / f"{function_name}-event.json"


def load_event(use_case_dir: str, function_name: str, **overrides: Any) -> dict[str, Any]:
    """A fresh copy of the event, with top-level keys replaced by ``overrides``."""
    path = event_path(use_case_dir, function_name)
    with path.open(encoding="utf-8") as handle:
        event: dict[str, Any] = json.load(handle)
    event = copy.deepcopy(event)
    event.update(overrides)
    return event


def load_env_json() -> dict[str, Any]:
    with (EVENTS_DIR / "env.json").open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data
