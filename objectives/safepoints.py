"""Safe points: the places where a long computation may be stopped.

Training loops call :func:`safe_point` at the end of every epoch, ensembles between
members, the objective between repetitions. By itself it does nothing. A process that
handles stop signals installs a check (``hpo`` installs the one of
:mod:`workers.signals`) that raises there once a stop was asked for, so a signal never
cuts a computation at a random place (a weakref callback, a ``finally`` block, a
storage write) and is never lost: every later safe point raises again.

A leaf module: the science core knows nothing of signals or workers.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["install", "safe_point"]

_check: Callable[[], None] | None = None


def install(check: Callable[[], None] | None) -> None:
    """Make :func:`safe_point` call ``check`` (None: nothing); the previous one is replaced."""
    global _check
    _check = check


def safe_point() -> None:
    """A stop asked for by now takes effect here (the installed check raises)."""
    if _check is not None:
        _check()
