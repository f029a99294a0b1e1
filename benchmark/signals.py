"""How a run ends, as a scheduler sees it: the process exit codes, and SIGTERM turned into an exception.

Exit codes of ``recux`` (documented in the README):

* 0 — every run finished (a sweep: every job finished or was skipped because its results exist);
* 1 — Hydra could not compose the config (e.g. a misspelt group option), or an unexpected error (traceback shown);
* 2 — a recux error in a single run (bad setting, data or plugin; the message names the fix);
* 3 — a sweep (``-m``) finished but some of its jobs failed (each one recorded in its folder, see recux.failure);
* 143 (128 + 15) — the run or sweep was terminated by SIGTERM (e.g. ``timeout``, a scheduler's time limit).

SIGINT (Ctrl-C) keeps Python's and Lightning's own handling.
"""

from __future__ import annotations

import signal
import threading

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_RECUX_ERROR = 2
EXIT_SWEEP_JOBS_FAILED = 3
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, the shell's code for a process killed by SIGTERM


class Terminated(BaseException):
    """The process received SIGTERM. A BaseException (like KeyboardInterrupt) so that ``except Exception``
    blocks do not swallow it; staging folders are discarded on the way out."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"terminated by signal {signal.Signals(signum).name}")
        self.signum = signum


def _raise_terminated(signum, frame) -> None:
    raise Terminated(signum)


def install_sigterm_handler() -> bool:
    """Make SIGTERM raise ``Terminated`` in the main thread (Lightning's trainer calls this handler after its
    own). Returns False where signals cannot be set (not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGTERM, _raise_terminated)
    return True
