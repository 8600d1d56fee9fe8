"""Leaving a local run's process without the interpreter's teardown.

A run leaves a few hundred thousand objects behind (moto's backends, botocore's models, the
engine's parsed definitions), and freeing them one by one at exit took 0.7-0.8 s of the 3 s of
``scripts/local-test.sh --uc semiconductor-eda --objects 2``. Everything the process owes the
outside world still happens: the atexit callbacks (logging's flush and close, weakref finalizers
such as TemporaryDirectory's), then stdout and stderr are flushed; only the freeing is skipped, as
mypy does for the same reason (``mypy.util.hard_exit``). While any other non-daemon thread is
alive, the exit is the ordinary one, which waits for it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn


def hard_exit(status: int) -> NoReturn:
    if any(thread is not threading.main_thread() and not thread.daemon for thread in threading.enumerate()):
        sys.exit(status)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def hard_exit_at_exit(status: int) -> None:
    """``hard_exit(status)`` when the interpreter exits: after the other non-daemon threads have
    ended (it waits for them before the atexit callbacks), then the callbacks registered before
    this call. For a process whose work is reported by then and whose exit status is known now.

    An atexit pass runs a snapshot of the callbacks, last registered first. Only while this is
    still the last one registered are the callbacks it runs exactly those not yet run; should any
    have been registered (or removed) since, the exit is the ordinary one."""
    registered = atexit._ncallbacks() + 1

    def leave() -> None:
        if atexit._ncallbacks() == registered:
            atexit.unregister(leave)
            hard_exit(status)

    atexit.register(leave)
