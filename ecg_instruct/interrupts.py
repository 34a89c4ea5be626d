"""Ctrl-C for a command started with SIGINT ignored.

`cmd &` in a non-interactive shell (a script, `bash -c '... & wait'`, some schedulers) starts
`cmd` with SIGINT ignored, and Python then installs no KeyboardInterrupt handler: a build or a
download so started could be stopped only with kill -9, losing the one-line "interrupted,
rerun to resume" ending. Commands call :func:`restore_default_sigint` first.
"""

from __future__ import annotations

import signal
import threading


def restore_default_sigint() -> None:
    """Make SIGINT raise KeyboardInterrupt again if it is ignored (main thread only; worker
    processes still ignore it: the executor stops them)."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
