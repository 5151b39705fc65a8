"""Claims of final runs: which process trains which run, under a lease.

Before ``hpo final`` trains run ``j`` of a (cell, source, statistics) folder it claims
it: it creates ``.run<j>.claim`` exclusively, holding its host, pid, a random token and
the time its lease ends (one JSON object). A thread renews the lease while the run
trains; the claim is removed when the run ends, however it ends. Any other process --
another ``hpo final``, a process of ``hpo final -w N``, a SLURM job on another node --

* skips a run whose claim is live: its lease has not expired (and, on this host, its
  process is alive); the summary then names the run as missing;
* takes over a claim whose lease has expired, or, on this host, whose process is gone
  (killed): the stale file is renamed away first, so that one process wins.

A claim written before leases existed (``host:pid``) or one that cannot be read gets
a lease of :data:`LEASE_S` from the file's modification time. Leases compare
wall-clock times of different hosts: their clocks must agree to well under a minute.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from storage.deaf import deaf_threads

__all__ = ["LEASE_S", "RENEW_S", "Claim", "HeldClaim", "claim", "read_claim"]

log = logging.getLogger(__name__)

#: seconds a claim stays valid without renewal (then another process takes it over)
LEASE_S = 300.0
#: seconds between renewals while the run trains
RENEW_S = 30.0


@dataclass(frozen=True)
class Claim:
    """What a claim file says: who holds the run and until when."""

    host: str
    pid: int
    token: str
    lease_until: float  # seconds since the epoch

    def live(self, now: float | None = None) -> bool:
        """Whether the holder may still be training the run."""
        if self.host == socket.gethostname() and not _pid_alive(self.pid):
            return False
        return (time.time() if now is None else now) < self.lease_until

    def describe(self) -> str:
        until = datetime.fromtimestamp(self.lease_until).strftime("%Y-%m-%d %H:%M:%S")
        return f"claimed by {self.host} pid {self.pid}, lease until {until}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:  # unknown (a claim still being written): its lease decides
        return True
    try:
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def read_claim(path: Path) -> Claim | None:
    """The claim in ``path`` (None if there is no file)."""
    try:
        text = path.read_text(errors="replace")
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
        return Claim(
            str(record["host"]), int(record["pid"]), str(record["token"]), record["lease_until"]
        )
    except (ValueError, KeyError, TypeError):
        pass
    # "host:pid" (before leases), or a claim still being written: a lease from its mtime
    host, _, pid = text.strip().partition(":")
    try:
        number = int(pid)
    except ValueError:
        number = -1
    return Claim(host or "?", number, "", mtime + LEASE_S)


def _write(path: Path, claim: Claim) -> None:
    """Replace ``path`` with ``claim`` atomically (a reader sees the old or the new one)."""
    tmp = path.with_name(f"{path.name}.{claim.token}.tmp")
    tmp.write_text(json.dumps(asdict(claim)) + "\n")
    os.replace(tmp, path)


class HeldClaim:
    """A claim this process holds; renewed by a thread until :meth:`release`."""

    def __init__(self, path: Path, claim: Claim, *, lease: float, renew: float) -> None:
        self.path, self.claim, self.lease = path, claim, lease
        self._stop = threading.Event()
        with deaf_threads():  # stop signals go to the main thread, not this one
            self._thread = threading.Thread(
                target=self._renew, args=(renew,), name=f"claim {path.name}", daemon=True
            )
            self._thread.start()

    def _renew(self, every: float) -> None:
        while not self._stop.wait(every):
            current = read_claim(self.path)
            if current is None or current.token != self.claim.token:
                log.warning("%s: taken over by another process (%s)", self.path, current)
                return
            self.claim = Claim(
                self.claim.host, self.claim.pid, self.claim.token, time.time() + self.lease
            )
            _write(self.path, self.claim)

    def release(self) -> None:
        """Stop renewing and remove the claim (if it is still this process's)."""
        self._stop.set()
        self._thread.join()
        current = read_claim(self.path)
        if current is not None and current.token == self.claim.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> HeldClaim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _take_over(path: Path, stale: Claim) -> None:
    """Remove the stale claim ``stale`` from ``path``, unless it changed meanwhile."""
    tomb = path.with_name(f"{path.name}.stale-{secrets.token_hex(4)}")
    try:
        os.rename(path, tomb)  # atomic: of several processes taking over, one moves it
    except FileNotFoundError:
        return
    moved = read_claim(tomb)
    if moved is not None and moved != stale and moved.live():
        # renewed or re-claimed between the look and the rename: put it back
        try:
            os.link(tomb, path)
        except FileExistsError:
            pass
    else:
        log.warning("%s: taking over the stale claim (%s)", path, stale.describe())
    tomb.unlink(missing_ok=True)


def claim(path: Path, *, lease: float = LEASE_S, renew: float = RENEW_S) -> HeldClaim | Claim:
    """Claim ``path`` for this process: a :class:`HeldClaim`, or the live :class:`Claim` of
    the process that holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        mine = Claim(socket.gethostname(), os.getpid(), secrets.token_hex(8), time.time() + lease)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            current = read_claim(path)
            if current is None:  # released meanwhile
                continue
            if current.live():
                return current
            _take_over(path, current)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(asdict(mine)) + "\n")
        return HeldClaim(path, mine, lease=lease, renew=renew)
