"""Fake command-line tools (``aws``, ``sam``, ...) for testing bash scripts without an AWS account.

``FakeCli`` writes small executables into a temporary ``bin/`` directory that the test puts first
on ``PATH``. Every invocation of a fake:

* appends one JSON line to ``calls.jsonl``: ``{"program", "argv", "stdin", "cwd", "env", "files"}``
  where ``argv`` is the argument list *without* the program name, ``env`` holds the ``AWS_*``
  variables the script exported, and ``files`` maps every argument that names an existing file
  (optionally written ``file://`` or ``fileb://``) to a copy taken at call time, so a test can
  inspect an archive the script uploaded and then deleted;
* answers from the replies the test registered: ``reply(program, prefix, ...)`` matches when
  ``argv`` starts with ``prefix`` and/or ``pattern`` (a regex) is found in the shell-quoted
  argument string. The most recently registered matching rule wins, so a test can override a
  fixture's general reply with a specific one. A rule may carry a sequence of replies for repeated
  calls; the last one repeats once the sequence is used up. Without a match the program's default
  reply (``default(...)``; initially exit 0 with empty output) answers.

Use the ``fake_cli`` fixture (registered in ``tests/scripts/conftest.py``; import it from here
into any other conftest)::

    def test_deploy(fake_cli):
        fake_cli.reply("aws", ["cloudformation", "describe-stacks"], stdout={"Stacks": []})
        result = fake_cli.run(["scripts/deploy-hooks.sh", "--dry-run"])
        assert fake_cli.calls("aws")[0][:2] == ["cloudformation", "describe-stacks"]

The fakes run tests/support/fake_cli_runtime.py, with ``-S``: a few standard-library modules, so a
fake call costs little more than a bare Python start-up (not this module's imports, nor pytest's).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# What the fake executables run (standard library only).
_RUNTIME = Path(__file__).resolve().with_name("fake_cli_runtime.py")


@dataclass(frozen=True)
class Reply:
    """One canned answer: what the fake prints and the exit code it returns."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"stdout": self.stdout, "stderr": self.stderr, "exit_code": self.exit_code}


@dataclass(frozen=True)
class Call:
    """One recorded invocation of a fake program."""

    program: str
    argv: list[str]
    stdin: str
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def option(self, name: str) -> str | None:
        """Value of ``--name value`` or ``--name=value`` in argv (the last occurrence), else None."""
        value: str | None = None
        for index, arg in enumerate(self.argv):
            if arg == name and index + 1 < len(self.argv):
                value = self.argv[index + 1]
            elif arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
        return value

    def captured(self, arg: str) -> Path:
        """The copy of the file that argument ``arg`` named when the call was made."""
        try:
            return Path(self.files[arg])
        except KeyError:
            raise KeyError(f"argument {arg!r} of {self.program} {self.argv} named no existing file") from None


def _as_text(value: str | Mapping[str, Any] | Sequence[Any]) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class FakeCli:
    """A directory of fake executables plus the rules that answer their calls."""

    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self.root = root
        self.bin_dir = root / "bin"
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        (root / "captured").mkdir(exist_ok=True)
        self._python = python
        self._rules: dict[str, list[dict[str, Any]]] = {}
        self._defaults: dict[str, dict[str, Any]] = {}
        self._programs: list[str] = []
        self._save_rules()
        (root / "calls.jsonl").touch()

    # ----------------------------------------------------------------------------------- setup
    def install(self, *programs: str) -> None:
        """Create fake executables with these names in ``bin_dir``."""
        for program in programs:
            if not re.fullmatch(r"[A-Za-z0-9._-]+", program):
                raise ValueError(f"not a plain program name: {program!r}")
            script = self.bin_dir / program
            script.write_text(
                f"#!{self._python} -S\n"
                "# Fake CLI written by tests/support/fake_cli.py\n"
                "import sys\n"
                f"sys.path.append({str(_RUNTIME.parent)!r})\n"
                f"from {_RUNTIME.stem} import serve\n"
                f"sys.exit(serve({str(self.root)!r}, {program!r}, sys.argv[1:]))\n",
                encoding="utf-8",
            )
            script.chmod(0o755)
            if program not in self._programs:
                self._programs.append(program)

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A copy of ``base`` (default ``os.environ``) with ``bin_dir`` first on PATH."""
        environment = dict(os.environ if base is None else base)
        environment["PATH"] = f"{self.bin_dir}{os.pathsep}{environment.get('PATH', '')}"
        return environment

    def reply(
        self,
        program: str,
        prefix: Sequence[str] | None = None,
        *,
        pattern: str | None = None,
        stdout: str | Mapping[str, Any] | Sequence[Any] = "",
        stderr: str = "",
        exit_code: int = 0,
        sequence: Sequence[Reply] | None = None,
    ) -> None:
        """Answer calls of ``program`` whose argv starts with ``prefix`` and/or matches ``pattern``.

        ``stdout`` given as a dict or list is sent as JSON. ``sequence`` replaces the single
        reply with one reply per matching call (the last one repeats).
        """
        if prefix is None and pattern is None:
            raise ValueError("give a prefix, a pattern or both; use default() for everything else")
        if pattern is not None:
            re.compile(pattern)
        if sequence is not None:
            if not sequence:
                raise ValueError("sequence must hold at least one Reply")
            replies = [item.to_json() for item in sequence]
        else:
            replies = [Reply(_as_text(stdout), stderr, exit_code).to_json()]
        rules = self._rules.setdefault(program, [])
        rules.append(
            {
                "id": f"{program}-{len(rules)}",
                "prefix": list(prefix) if prefix is not None else None,
                "pattern": pattern,
                "replies": replies,
            }
        )
        self._save_rules()

    def default(
        self,
        program: str,
        *,
        stdout: str | Mapping[str, Any] | Sequence[Any] = "",
        stderr: str = "",
        exit_code: int = 0,
    ) -> None:
        """The reply for calls of ``program`` that match no rule."""
        self._defaults[program] = Reply(_as_text(stdout), stderr, exit_code).to_json()
        self._save_rules()

    # ------------------------------------------------------------------------------ inspection
    def invocations(self, program: str | None = None) -> list[Call]:
        """Every recorded call, in order, optionally of one program only."""
        result = []
        for line in (self.root / "calls.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if program is None or record["program"] == program:
                result.append(Call(**record))
        return result

    def calls(self, program: str | None = None) -> list[list[str]]:
        """The argv lists (without the program name) of the recorded calls."""
        return [call.argv for call in self.invocations(program)]

    def clear(self) -> None:
        """Forget the recorded calls and the sequence positions (rules stay)."""
        (self.root / "calls.jsonl").write_text("", encoding="utf-8")
        (self.root / "counters.json").unlink(missing_ok=True)

    def run(
        self,
        command: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` with the fakes first on PATH; stdin is empty unless ``input`` is given."""
        return subprocess.run(
            [os.fspath(part) for part in command],
            env=self.env(env),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )

    def _save_rules(self) -> None:
        state = {"rules": self._rules, "defaults": self._defaults}
        tmp = self.root / "rules.json.tmp"
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(self.root / "rules.json")


@pytest.fixture
def fake_cli(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeCli:
    """Fake ``aws`` and ``sam`` first on PATH (in this process and its children) for one test."""
    cli = FakeCli(tmp_path_factory.mktemp("fake_cli"))
    cli.install("aws", "sam")
    monkeypatch.setenv("PATH", cli.env()["PATH"])
    return cli
