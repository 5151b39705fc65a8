"""Run N worker processes on this machine with a one-line progress display.

Each worker is its own process (``argv_for_worker(i)``), started in a new session so
that a terminal's Ctrl-C reaches only this parent, which forwards SIGINT, SIGTERM and
SIGUSR1 to the process group of every child (a second signal kills them) and waits for
them. A child killed outright leaves its running trial behind; the trial's lease expires
and another worker recovers it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from workers.proc import spawn
from workers.signals import handle_signals, listening, received_signal

__all__ = ["LocalRun", "run_local"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalRun:
    """How the worker processes of one ``run_local`` ended."""

    #: exit code of each worker; ``-N``: killed by signal N
    codes: tuple[int, ...]
    #: the signal that interrupted this run (forwarded to the workers), or None
    interrupted: int | None = None
    #: each worker's log file (None: it wrote to this process's streams)
    logs: tuple[Path | None, ...] = ()

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
    names: Callable[[int], str] = str,
    poll: float = 2.0,
    stream: TextIO | None = None,
) -> LocalRun:
    """Start ``n_workers`` worker processes and wait for all of them.

    SIGINT, SIGTERM and SIGUSR1 to this process are passed on at once to the whole
    process group of every worker (a second signal sends SIGKILL); this process then
    waits until every worker has stopped. A signal that came before (the caller's
    ``handle_signals``) starts no worker.

    Args:
        n_workers: number of processes (>= 1).
        argv_for_worker: the command line of worker ``i`` (0-based).
        progress: returns the one-line progress text (e.g. "HGB-IAD: 12/50 ...").
        log_dir: each worker's stdout+stderr go to ``log_dir/worker-<names(i)>.log``;
            ``None`` lets them inherit this process's streams.
        names: worker ``i``'s name in its log file (unique across processes: its id).
        poll: seconds between progress refreshes.
        stream: where progress goes (default stderr); refreshed in place on a TTY,
            plain lines (on change, at most every ``poll`` s) otherwise.

    Returns:
        The exit code and log of every worker and the signal that stopped the run, if any.
    """
    if not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    stream = stream or sys.stderr
    with handle_signals():
        if received_signal() is not None:  # stopped before anything started
            return LocalRun(codes=(), interrupted=received_signal())
        procs: list[subprocess.Popen] = []
        forward = _forwarder(procs)
        with listening(forward):
            logs = _start(n_workers, argv_for_worker, log_dir, names, procs)
            if received_signal() is not None:  # came while they started: the late ones too
                forward(received_signal(), 1)
            try:
                _watch(procs, progress, n_workers, poll, stream)
            except BaseException:  # e.g. the progress stream's reader went away (`| head`)
                _stop_all(procs, signal.SIGTERM)
                raise
    return LocalRun(
        codes=tuple(p.returncode for p in procs),
        interrupted=received_signal(),
        logs=tuple(logs),
    )


def _start(n_workers, argv_for_worker, log_dir, names, procs) -> list[Path | None]:
    """Spawn the workers (each in its own session, the leader of its process group) into
    ``procs``; returns their log files."""
    paths: list[Path | None] = [None] * n_workers
    if log_dir is not None:
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        paths = [log_dir / f"worker-{names(i)}.log" for i in range(n_workers)]
    try:
        for i, path in enumerate(paths):
            with contextlib.ExitStack() as stack:
                out = stack.enter_context(open(path, "ab")) if path is not None else None
                procs.append(spawn(argv_for_worker(i), stdout=out, stderr=out, new_session=True))
    except BaseException:
        _stop_all(procs, signal.SIGKILL)
        raise
    return paths


def _forwarder(procs: list[subprocess.Popen]) -> Callable[[int, int], None]:
    """The signal listener that passes a stop signal on to every running worker's group."""

    def forward(signum: int, count: int) -> None:
        sig = signum if count == 1 else signal.SIGKILL
        running = [p for p in procs if p.poll() is None]
        _logger.warning(
            "got %s: sending %s to %d workers",
            signal.Signals(signum).name,
            signal.Signals(sig).name,
            len(running),
        )
        for p in running:
            _signal_group(p, sig)

    return forward


def _stop_all(procs: list[subprocess.Popen], sig: int) -> None:
    """``sig`` to every running worker's group, then wait for them: this process is
    leaving, and its workers (each in its own session) must not outlive it unwatched."""
    for p in procs:
        if p.poll() is None:
            _signal_group(p, sig)
    for p in procs:
        p.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the process group ``proc`` leads (it and whatever it started)."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):  # gone already
        pass


def _watch(procs, progress, n_workers: int, poll: float, stream: TextIO) -> None:
    """Show progress until every worker has exited."""
    tty = stream.isatty()
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
        if tty:
            stream.write("\n")
