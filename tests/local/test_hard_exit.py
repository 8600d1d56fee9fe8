"""local.hard_exit: a local run's process (and a test worker at its exit) skips the interpreter's
teardown but nothing it owes the outside world -- its exit status, its buffered output, the atexit
callbacks, a thread still at work."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.unit


def _run(body: str) -> subprocess.CompletedProcess[str]:
    script = "import atexit, sys, threading, time\nfrom local.hard_exit import hard_exit, hard_exit_at_exit\n"
    script += _FREED + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          check=False, cwd=REPO_ROOT)


# An object left in a module global is freed by the interpreter's teardown, which prints "freed";
# a hard exit skips the teardown, so it is never printed.
_FREED = """
class Freed:
    def __del__(self):
        print("freed", flush=True)
kept = Freed()
"""


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
    assert (result.returncode, result.stdout) == (0, "thread finished\nfreed\n")  # the ordinary exit


def test_at_exit_the_teardown_is_skipped_after_the_earlier_callbacks_ran_once() -> None:
    result = _run("""
        atexit.register(lambda: print("registered before", flush=True))
        hard_exit_at_exit(3)
        def work():
            time.sleep(0.3)
            print("thread finished")
        threading.Thread(target=work).start()
        sys.stdout.write("unflushed line\\n")
        """)
    assert result.returncode == 3
    assert result.stdout == "unflushed line\nthread finished\nregistered before\n"


def test_at_exit_a_callback_registered_after_means_the_ordinary_exit() -> None:
    # it ran first (atexit runs the last registered first): running the rest from here would run it
    # again, so nothing is skipped and the status is the process's own
    result = _run("""
        hard_exit_at_exit(3)
        atexit.register(lambda: print("registered after", flush=True))
        """)
    assert (result.returncode, result.stdout) == (0, "registered after\nfreed\n")


def test_the_ordinary_exit_frees_what_a_hard_exit_leaves() -> None:
    # the check above and the two before it rely on "freed": it is printed when nothing is skipped
    assert _run("pass").stdout == "freed\n"
