"""Graceful stop on SIGTERM, SIGINT and SIGUSR1 (SLURM's ``--signal=USR1@60``).

A signal sets a flag. While the worker runs an objective inside
:func:`interruptible`, the handler also raises :class:`WorkerInterrupted` in the main
thread, so the trial ends at once; elsewhere (ask, tell, storage writes) the worker
finishes the operation and stops at the next check.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = [
    "EXIT_CODES",
    "HANDLED_SIGNALS",
    "WorkerInterrupted",
    "handle_signals",
    "interruptible",
    "received_signal",
    "shielded",
]

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
# Exit codes of an interrupted worker: the shell's 128 + signal number.
EXIT_CODES = {int(s): 128 + int(s) for s in HANDLED_SIGNALS}


class WorkerInterrupted(BaseException):
    """Raised inside the objective when the worker got a stop signal.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that an objective's
    ``except Exception`` does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


_received: list[int] = []  # signals received since handle_signals() was entered
_in_objective = False


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    if _in_objective:
        raise WorkerInterrupted(signum)


def received_signal() -> int | None:
    """The first stop signal received, or None."""
    return _received[0] if _received else None


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Install the stop handlers (main thread only; elsewhere a no-op) and restore them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    previous = {s: signal.signal(s, _handler) for s in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """While inside, a stop signal raises :class:`WorkerInterrupted` immediately."""
    global _in_objective
    if _received:
        raise WorkerInterrupted(_received[0])
    _in_objective = True
    try:
        yield
    finally:
        _in_objective = False


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Inside :func:`interruptible`, defer a stop signal until the block ends.

    For storage writes an objective makes itself (user attributes, artifacts):
    interrupting them half-way could leave a journal lock behind. The signal is
    raised as :class:`WorkerInterrupted` right after the block.
    """
    global _in_objective
    was = _in_objective
    _in_objective = False
    try:
        yield
    finally:
        _in_objective = was
    if was and _received:
        raise WorkerInterrupted(_received[0])
