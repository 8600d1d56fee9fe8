"""What a fake executable of tests/support/fake_cli.py runs: record the call, print the canned reply.

Every ``aws``/``sam``/... call a script under test makes starts a Python for this file, so it
imports only the few standard-library modules it needs (no dataclasses, typing, pathlib, shutil
or subprocess: together they cost more than the call itself) and the fakes run it with ``-S``
(no site-packages). The files it reads and writes in the fake's root (``rules.json``,
``counters.json``, ``calls.jsonl``, ``captured/``) are described in tests/support/fake_cli.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import sys

# typing itself is not imported at run time (a fake call would pay for it); type checkers know this name.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FILE_PREFIXES = ("fileb://", "file://")
EMPTY_REPLY = {"stdout": "", "stderr": "", "exit_code": 0}


def _matches(rule: dict[str, Any], argv: list[str]) -> bool:
    prefix = rule["prefix"]
    if prefix is not None and argv[: len(prefix)] != prefix:
        return False
    pattern = rule["pattern"]
    return pattern is None or re.search(pattern, shlex.join(argv)) is not None


def _copy(source: str, target: str) -> None:
    with open(source, "rb") as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def _capture_files(root: str, call_number: int, argv: list[str]) -> dict[str, str]:
    files: dict[str, str] = {}
    for position, arg in enumerate(argv):
        path_text = arg
        for file_prefix in FILE_PREFIXES:
            if arg.startswith(file_prefix):
                path_text = arg[len(file_prefix) :]
                break
        if not path_text or not os.path.isfile(path_text):
            continue
        target = os.path.join(root, "captured", f"{call_number:04d}-{position:02d}-{os.path.basename(path_text)}")
        _copy(path_text, target)
        files[arg] = target
    return files


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def serve(root: str, program: str, argv: list[str]) -> int:
    """Record one call of ``program`` under the fake root ``root``, print its reply, return its
    exit code."""
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    # Scripts may run fakes concurrently (background jobs); serialize log and counter updates.
    with open(os.path.join(root, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = json.loads(_read(os.path.join(root, "rules.json")))
            counters_path = os.path.join(root, "counters.json")
            counters: dict[str, int] = json.loads(_read(counters_path)) if os.path.exists(counters_path) else {}
            reply: dict[str, Any] = state["defaults"].get(program, EMPTY_REPLY)
            for rule in reversed(state["rules"].get(program, [])):
                if _matches(rule, argv):
                    used = counters.get(rule["id"], 0)
                    reply = rule["replies"][min(used, len(rule["replies"]) - 1)]
                    counters[rule["id"]] = used + 1
                    break
            _write(counters_path, json.dumps(counters))
            log_path = os.path.join(root, "calls.jsonl")
            call_number = len(_read(log_path).splitlines())
            record = {
                "program": program,
                "argv": argv,
                "stdin": stdin,
                "cwd": os.getcwd(),
                "env": {key: value for key, value in os.environ.items() if key.startswith("AWS_")},
                "files": _capture_files(root, call_number, argv),
            }
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    sys.stdout.write(reply["stdout"])
    sys.stderr.write(reply["stderr"])
    return int(reply["exit_code"])
