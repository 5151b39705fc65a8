"""The test side of ``workers.gate``: hold trials / final runs until the test has acted.

A process started with :meth:`Gate.env` writes ``<name>.held`` into the gate folder when
it starts a trial or a final run, then waits for the go. :meth:`Gate.wait_held` waits for
those marker files (an event, whatever the machine's speed); the timeout only turns a
process that never gets there into a clear failure.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from workers.gate import GATE_ENV, OPEN_ALL, go_file

#: seconds after which a wait fails: a guard against a hung process, never a sync point
GUARD_S = 600.0


class Gate:
    """A gate folder; every process started with :meth:`env` holds at its gate points."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a process that holds at the gate."""
        return {**(os.environ if base is None else base), GATE_ENV: str(self.folder)}

    def held(self) -> dict[str, dict]:
        """``{name: record}`` of every trial / run that reached the gate so far."""
        out = {}
        for path in sorted(self.folder.glob("*.held")):
            record = json.loads(path.read_text())
            out[record["name"]] = record
        return out

    def wait_held(
        self, n: int, *, alive: Callable[[], bool] = lambda: True, what: str = ""
    ) -> dict[str, dict]:
        """Wait until ``n`` trials / runs are held; fail at once if ``alive()`` turns False."""
        end = time.monotonic() + GUARD_S
        while True:
            held = self.held()
            if len(held) >= n:
                return held
            assert alive(), f"the process ended before {n} were held ({what}): {sorted(held)}"
            assert time.monotonic() < end, f"nothing held after {GUARD_S} s ({what})"
            time.sleep(0.05)

    def open(self, name: str | None = None) -> None:
        """Let ``name`` (every name: None) go on."""
        (self.folder / OPEN_ALL if name is None else go_file(self.folder, name)).touch()


def pid_exists(pid: int) -> bool:
    """Whether process ``pid`` still exists (a zombie counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def kill_leftovers(pids: list[int]) -> None:
    """SIGKILL these processes (started by the test) if they still run."""
    import signal

    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
