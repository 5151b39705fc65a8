"""A test gate: hold a trial or a final run at its start until a test lets it go.

Fault-injection tests (tests/test_chain.py, the signal tests) must act while a process
is inside a trial or a final run -- a ``scancel``, a database restart, a signal -- on
any machine, however busy. With ``WSAD_GATE_DIR`` set, each trial (once its parameters
are sampled and its lease written) and each final run writes ``<dir>/<name>.held`` (a
JSON line: name, host, pid, SLURM task) and waits until ``<dir>/<name>.go`` or
``<dir>/all.go`` exists. The wait is a safe point: a stop signal ends it. Unset (as
always outside tests) the gate does nothing.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

from workers.signals import received_signal, safe_point

__all__ = ["GATE_ENV", "OPEN_ALL", "go_file", "hold"]

GATE_ENV = "WSAD_GATE_DIR"
#: the file that opens the gate for every name
OPEN_ALL = "all.go"
_POLL_S = 0.05


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.#=-]", "_", name)


def go_file(gate: Path, name: str) -> Path:
    """The file that lets ``name`` go on."""
    return gate / f"{_file_name(name)}.go"


def hold(name: str) -> None:
    """Announce ``name`` and wait for the test's go (nothing unless ``WSAD_GATE_DIR``)."""
    folder = os.environ.get(GATE_ENV)
    if not folder:
        return
    gate, base = Path(folder), _file_name(name)
    record = {
        "name": name,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_task": os.environ.get("SLURM_ARRAY_TASK_ID"),
    }
    held = gate / f"{base}.held"
    tmp = gate / f".{base}.held.{os.getpid()}"
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, held)  # the test never reads half a record
    while not (go_file(gate, name).exists() or (gate / OPEN_ALL).exists()):
        if received_signal() is not None:
            safe_point()  # raises where the work may stop; elsewhere its next safe point does
            return
        time.sleep(_POLL_S)
