"""Run N worker processes on this machine with a one-line progress display.

Each worker is its own process (``argv_for_worker(i)``), started in a new session so
that a terminal's Ctrl-C reaches only this parent, which forwards SIGINT/SIGTERM to
every child (a second signal kills them). A child killed outright leaves its running
trial behind; the trial's lease expires and another worker recovers it.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TextIO

from workers.proc import spawn

__all__ = ["LocalRun", "run_local"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalRun:
    """How the worker processes of one ``run_local`` ended."""

    #: exit code of each worker; ``-N``: killed by signal N
    codes: tuple[int, ...]
    #: the signal that interrupted this run (forwarded to the workers), or None
    interrupted: int | None = None

    @property
    def exit_code(self) -> int:
        """128 + signal if interrupted, else the first worker's non-zero code (as a shell)."""
        if self.interrupted is not None:
            return 128 + self.interrupted
        return next((128 - c if c < 0 else c for c in self.codes if c != 0), 0)


def run_local(
    n_workers: int,
    argv_for_worker: Callable[[int], list[str]],
    progress: Callable[[], str],
    *,
    log_dir: Path | None = None,
    poll: float = 2.0,
    stream: TextIO | None = None,
) -> LocalRun:
    """Start ``n_workers`` worker processes and wait for all of them.

    Args:
        n_workers: number of processes (>= 1).
        argv_for_worker: the command line of worker ``i`` (0-based).
        progress: returns the one-line progress text (e.g. "HGB-IAD: 12/50 ...").
        log_dir: each worker's stdout+stderr go to ``log_dir/worker-<i>.log``;
            ``None`` lets them inherit this process's streams.
        poll: seconds between progress refreshes.
        stream: where progress goes (default stderr); refreshed in place on a TTY,
            plain lines (on change, at most every ``poll`` s) otherwise.

    Returns:
        The exit code of every worker and the signal that interrupted the run, if any.
    """
    if not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    stream = stream or sys.stderr
    tty = stream.isatty()
    logs = []
    if log_dir is not None:
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    try:
        for i in range(n_workers):
            out = None
            if log_dir is not None:
                out = open(log_dir / f"worker-{i}.log", "ab")  # closed in finally
                logs.append(out)
            procs.append(spawn(argv_for_worker(i), stdout=out, stderr=out, new_session=True))
    except BaseException:
        for p in procs:
            p.kill()
        for f in logs:
            f.close()
        raise

    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        sig = signum if len(received) == 1 else signal.SIGKILL
        _logger.warning(
            "got %s: sending %s to %d workers",
            signal.Signals(signum).name,
            signal.Signals(sig).name,
            sum(p.poll() is None for p in procs),
        )
        for p in procs:
            if p.poll() is None:
                p.send_signal(sig)

    previous = {}
    for s in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[s] = signal.signal(s, forward)
        except ValueError:  # not the main thread: no forwarding
            pass
    last_text, last_time = None, 0.0
    try:
        while True:
            running = sum(p.poll() is None for p in procs)
            text = f"{progress()} | workers running {running}/{n_workers}"
            if tty:
                stream.write("\r\033[K" + text)
                stream.flush()
            elif text != last_text and time.monotonic() - last_time >= poll or running == 0:
                stream.write(text + "\n")
                stream.flush()
                last_text, last_time = text, time.monotonic()
            if running == 0:
                break
            time.sleep(poll)
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
        for f in logs:
            f.close()
        if tty:
            stream.write("\n")
    return LocalRun(
        codes=tuple(p.returncode for p in procs),
        interrupted=int(received[0]) if received else None,
    )
