"""local.hard_exit: a local run's process skips the interpreter's teardown but nothing it owes the
outside world -- its exit status, its buffered output, the atexit callbacks, a thread still at work."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.unit


def _run(body: str) -> subprocess.CompletedProcess[str]:
    script = "import atexit, sys, threading, time\nfrom local.hard_exit import hard_exit\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          check=False, cwd=REPO_ROOT)


def test_the_status_buffered_output_and_atexit_callbacks_survive() -> None:
    # stdout is a pipe here, so block-buffered: without the flush the text would be lost
    result = _run("""
        atexit.register(lambda: print("atexit ran", flush=True))
        sys.stdout.write("unflushed line\\n")
        sys.stderr.write("on stderr\\n")
        hard_exit(3)
        """)
    assert result.returncode == 3
    assert result.stdout == "unflushed line\natexit ran\n"
    assert result.stderr == "on stderr\n"


def test_a_non_daemon_thread_still_running_is_waited_for() -> None:
    result = _run("""
        def work():
            time.sleep(0.3)
            print("thread finished")
        threading.Thread(target=work).start()
        hard_exit(0)
        """)
    assert (result.returncode, result.stdout) == (0, "thread finished\n")
