"""Graceful stop on SIGTERM, SIGINT and SIGUSR1 (SLURM's ``--signal=USR1@60``).

A handler only records the signal: it never raises. An exception raised from a handler
lands wherever the interpreter happens to be -- a weakref callback or a ``__del__``
(where Python prints it and swallows it), a ``finally`` block, a storage write -- so the
work stops at safe points instead:

* the worker loop and the local pool look at :func:`received_signal` between trials and
  while they wait (the pool also passes the signal on to its children at once);
* inside :func:`interruptible` (a trial's objective, a command's work), :func:`safe_point`
  raises :class:`WorkerInterrupted`: between repetitions, between ensemble members, at
  the end of every training epoch (``objectives.safepoints`` calls it there), between
  final runs. The flag stays set, so a raise that library code swallowed is raised again
  at the next safe point: no stop signal is lost;
* inside :func:`shielded` (an objective's own storage writes) safe points do nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = [
    "EXIT_CODES",
    "HANDLED_SIGNALS",
    "WorkerInterrupted",
    "handle_signals",
    "interruptible",
    "listening",
    "received_signal",
    "safe_point",
    "shielded",
]

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
#: Exit code of a process stopped by each signal: the shell's 128 + signal number
#: (SIGINT 130, SIGUSR1 138, SIGTERM 143).
EXIT_CODES = {int(s): 128 + int(s) for s in HANDLED_SIGNALS}


class WorkerInterrupted(BaseException):
    """Raised at a safe point once the process got a stop signal.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that an objective's
    ``except Exception`` does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


_received: list[int] = []  # stop signals received since the outermost handle_signals()
_installed = 0  # nesting depth of handle_signals()
_stoppable = 0  # nesting depth of interruptible()
_shield = 0  # nesting depth of shielded()
_listeners: list[Callable[[int, int], None]] = []


def _handler(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    for listener in list(_listeners):
        listener(signum, len(_received))


def received_signal() -> int | None:
    """The first stop signal received, or None."""
    return _received[0] if _received else None


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Record stop signals while inside (main thread only; elsewhere a no-op).

    Nested uses share the outermost one's handlers and record; only the outermost
    forgets earlier signals on entry and restores the previous handlers on exit.
    """
    global _installed
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    if _installed == 0:
        _received.clear()
        previous = {s: signal.signal(s, _handler) for s in HANDLED_SIGNALS}
    _installed += 1
    try:
        yield
    finally:
        _installed -= 1
        for s, old in previous.items():
            signal.signal(s, old)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """While inside, a stop signal raises :class:`WorkerInterrupted` at the next safe point
    (at once, on entry, if one came already)."""
    global _stoppable
    if _received and _installed:
        raise WorkerInterrupted(_received[0])
    _stoppable += 1
    try:
        yield
    finally:
        _stoppable -= 1


def safe_point() -> None:
    """Raise :class:`WorkerInterrupted` if a stop signal came and the work may stop here
    (inside :func:`interruptible`, outside :func:`shielded`, in the main thread)."""
    if (
        _received
        and _installed  # a signal recorded by handlers that are still in place
        and _stoppable
        and not _shield
        and threading.current_thread() is threading.main_thread()
    ):
        raise WorkerInterrupted(_received[0])


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Safe points inside do nothing: an objective's own storage writes (user attributes,
    artifacts) are never cut half-way. A stop signal is still recorded; the worker stops
    after the trial."""
    global _shield
    _shield += 1
    try:
        yield
    finally:
        _shield -= 1


@contextlib.contextmanager
def listening(listener: Callable[[int, int], None]) -> Iterator[None]:
    """Call ``listener(signum, count)`` from the handler on every stop signal while inside
    (``count``: signals received so far); e.g. to pass the signal on to child processes."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
