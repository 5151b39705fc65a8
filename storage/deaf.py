"""Threads that take no signals, so a process's signals reach its main thread.

Python runs signal handlers in the main thread only. When the kernel gives a process's
signal to another thread, the handler waits for the main thread's next bytecode: a stop
signal sent to a worker sleeping (or in a long C call) inside its objective would not
interrupt it. A thread inherits the signal mask of the thread that starts it, so threads
started inside :func:`deaf_threads` (the lease renewal thread, gRPC's own threads) never
take one.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

__all__ = ["deaf_threads"]


@contextlib.contextmanager
def deaf_threads() -> Iterator[None]:
    """Block every signal in this thread while inside (threads started here inherit the
    mask); signals that arrive meanwhile are delivered when the block ends."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
