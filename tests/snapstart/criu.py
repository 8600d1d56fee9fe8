"""Checkpoint/restore of a function host with CRIU: the local stand-in for Lambda SnapStart.

``Snapshot(spec, workdir)`` starts ``tests/snapstart/host.py`` with ``--snapshot``, waits until
init and the before-snapshot hooks are done, and checkpoints the process (``criu dump``, which
also ends it). Each ``restore()`` then starts one execution environment from the images and
returns what the host reported. ``cold_run()`` runs the same host without a snapshot.

Facts this relies on (DESIGN §8): CRIU >= 4.1 (``scripts/build-criu.sh`` installs it in
``.tools/criu``); a restored process gets its original PID back, so each restore runs in its own
PID namespace (``unshare -p -f --mount-proc``) and two restores never collide; an established
TCP connection cannot be dumped (CRIU refuses unless told to, and a real snapshot would restore a
dead socket anyway); the restored process keeps the monotonic clock value it had at dump time.
Must run as root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CRIU = REPO_ROOT / ".tools" / "criu" / "bin" / "criu"
READY_TIMEOUT_S = 60.0
RESTORE_TIMEOUT_S = 120.0


class CriuError(RuntimeError):
    """A checkpoint or restore failed; the message carries CRIU's error lines."""


def require_criu() -> Path:
    if not os.access(CRIU, os.X_OK):
        raise CriuError(f"{CRIU} not found: run scripts/build-criu.sh (or scripts/test-snapstart.sh)")
    if os.geteuid() != 0:
        raise CriuError("checkpoint/restore with CRIU needs root")
    return CRIU


@dataclass(frozen=True)
class FunctionSpec:
    """One function to host: its code directory and handler, an event, its environment."""

    label: str
    code_dir: Path
    handler: str
    event: Path
    env: dict[str, str] = field(default_factory=dict)


def _host_env(spec: FunctionSpec, control: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO_ROOT),  # shared/ as the layer provides it, and tests.support
        "TMPDIR": str(control / "tmp"),
        # Static fake credentials: without them botocore would ask the instance metadata service
        # and keep that connection open across the checkpoint.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "FsxnS3apPipelinesSnapStart",
    }
    env.update(spec.env)
    return env


def _host_command(
    spec: FunctionSpec, control: Path, *, snapshot: bool, invocations: int, rehooked: int = 0
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "tests.snapstart.host",
        "--code-dir",
        str(spec.code_dir),
        "--handler",
        spec.handler,
        "--event",
        str(spec.event),
        "--control",
        str(control),
        "--invocations",
        str(invocations),
        "--rehooked-invocations",
        str(rehooked),
    ]
    if snapshot:
        command.append("--snapshot")
    return command


def _fresh_control(path: Path) -> Path:
    (path / "tmp").mkdir(parents=True, exist_ok=False)
    return path


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@dataclass
class ColdRun:
    init: dict[str, Any]
    result: dict[str, Any]
    started_at: float  # wall clock when the process was started
    wall_ms: float  # from starting the process to its exit

    @property
    def first_response_ms(self) -> float:
        """A cold start: from starting the process to the end of the first invocation (wall clock)."""
        return (float(self.result["invocations"][0]["finished_at"]) - self.started_at) * 1000


def cold_run(spec: FunctionSpec, workdir: Path, *, invocations: int = 1, rehooked: int = 0) -> ColdRun:
    """A fresh process: init, then ``invocations`` invocations (no hooks, as without SnapStart),
    then ``rehooked`` invocations each after the after-restore hooks."""
    control = _fresh_control(workdir)
    started_at = time.time()
    started = time.perf_counter()
    completed = subprocess.run(
        _host_command(spec, control, snapshot=False, invocations=invocations, rehooked=rehooked),
        env=_host_env(spec, control),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RESTORE_TIMEOUT_S,
        check=False,
    )
    wall_ms = (time.perf_counter() - started) * 1000
    if completed.returncode != 0:
        raise RuntimeError(f"{spec.label}: host exited {completed.returncode}:\n{completed.stderr[-4000:]}")
    return ColdRun(_read(control / "init.json"), _read(control / "result.json"), started_at, wall_ms)


@dataclass
class Restore:
    result: dict[str, Any]
    started_at: float  # wall clock when `criu restore` was started
    wall_ms: float  # from starting `criu restore` to the restored process exiting

    @property
    def first_response_ms(self) -> float:
        """From starting the restore to the end of the first invocation (wall clock)."""
        return (float(self.invocations[0]["finished_at"]) - self.started_at) * 1000

    @property
    def invocations(self) -> list[dict[str, Any]]:
        invocations: list[dict[str, Any]] = self.result["invocations"]
        return invocations


def _criu_errors(log: Path) -> str:
    if not log.exists():
        return f"(no log at {log})"
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    # CRIU complains about RLIMIT_NOFILE in some sandboxes without failing; not the cause.
    errors = [line for line in lines if "Error" in line and "RLIMIT_NOFILE" not in line]
    return "\n".join(errors[-20:] or lines[-20:])


class Snapshot:
    """One checkpoint of a function host after init, restorable any number of times."""

    def __init__(self, spec: FunctionSpec, workdir: Path, *, invocations: int = 1, rehooked: int = 0) -> None:
        self.spec = spec
        self.workdir = workdir
        self.invocations = invocations
        self.rehooked = rehooked  # invocations after running the after-restore hooks once more
        self.control = _fresh_control(workdir / "control")
        self.images = workdir / "images"
        self.images.mkdir()
        self.init: dict[str, Any] = {}
        self.dump_ms = 0.0
        self._restores = 0

    def take(self) -> dict[str, Any]:
        """Run init and the before-snapshot hooks, then dump; returns the host's init report."""
        criu = require_criu()
        stderr_path = self.workdir / "host.stderr"
        with stderr_path.open("w") as stderr:
            # Own session: the dumped tree must not share a session or terminal with the test runner.
            process = subprocess.Popen(
                _host_command(
                    self.spec, self.control, snapshot=True, invocations=self.invocations, rehooked=self.rehooked
                ),
                env=_host_env(self.spec, self.control),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        try:
            self._wait_ready(process, stderr_path)
            started = time.perf_counter()
            dump = subprocess.run(
                [
                    str(criu),
                    "dump",
                    "--tree",
                    str(process.pid),
                    "--images-dir",
                    str(self.images),
                    "--log-file",
                    "dump.log",
                ],
                capture_output=True,
                text=True,
                timeout=RESTORE_TIMEOUT_S,
                check=False,
            )
            self.dump_ms = (time.perf_counter() - started) * 1000
            if dump.returncode != 0:
                raise CriuError(f"{self.spec.label}: criu dump failed:\n{_criu_errors(self.images / 'dump.log')}")
            process.wait(timeout=10)  # criu ends the dumped process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        self.init = _read(self.control / "init.json")
        (self.control / "go").touch()  # every restored copy finds it at its first poll
        return self.init

    def _wait_ready(self, process: subprocess.Popen[bytes], stderr_path: Path) -> None:
        ready = self.control / "ready.json"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready.exists():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{self.spec.label}: host exited {process.returncode} during init:\n"
                    + stderr_path.read_text(encoding="utf-8", errors="replace")[-4000:]
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.spec.label}: host not ready after {READY_TIMEOUT_S} s")
            time.sleep(0.01)

    def restore(self) -> Restore:
        """Start one execution environment from the snapshot, in its own PID namespace."""
        criu = require_criu()
        self._restores += 1
        log = f"restore-{self._restores}.log"
        (self.control / "result.json").unlink(missing_ok=True)
        started_at = time.time()
        started = time.perf_counter()
        command = ["unshare", "--pid", "--fork", "--mount-proc"]  # a PID namespace of its own
        command += [str(criu), "restore", "--images-dir", str(self.images), "--log-file", log]
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=RESTORE_TIMEOUT_S,
            check=False,
        )
        wall_ms = (time.perf_counter() - started) * 1000
        if completed.returncode != 0:
            raise CriuError(
                f"{self.spec.label}: criu restore exited {completed.returncode}:\n{_criu_errors(self.images / log)}"
            )
        result = _read(self.control / "result.json")
        result_path = self.control / f"result-{self._restores}.json"
        (self.control / "result.json").rename(result_path)
        return Restore(result, started_at, wall_ms)
