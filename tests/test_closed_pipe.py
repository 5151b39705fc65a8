"""``hpo … | head``: a reader that stops early ends the command quietly, not with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _gate import Gate, kill_leftovers
from _hpo_cli import REPO, hpo
from _tiny_campaign import tiny_campaign


@pytest.mark.parametrize("args", [["methods"], ["methods", "--json"]])
def test_a_closed_stdout_ends_quietly(args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write meets EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "hpo", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            timeout=300,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == ""
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports a command cut by a pipe


def _processes_naming(text: str) -> list[int]:
    """Pids of the live processes whose command line contains ``text``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_text(errors="replace"):
                pids.append(int(entry.name))
        except OSError:  # ended meanwhile
            continue
    return pids


def test_a_closed_progress_stream_stops_the_workers_too(tmp_path):
    """``hpo run C -w 2 2>&1 | head``: the progress line meets a closed pipe. The command
    ends quietly, and its workers (each in its own session) stop with it: held at the gate
    forever, they would still run if the parent left them behind."""
    path = tmp_path / "c.toml"
    path.write_text(tiny_campaign("pipe", n_trials=4))
    assert hpo("create", str(path)).returncode == 0
    gate = Gate(tmp_path / "gate")  # never opened
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "hpo", "run", str(path), "-w", "2"],
            stdout=subprocess.DEVNULL,
            stderr=write_end,
            cwd=REPO,
            env=gate.env({**os.environ, "PYTHONWARNINGS": "ignore"}),
            timeout=300,
            check=False,
        )
    finally:
        os.close(write_end)
        leftovers = _processes_naming(str(path))
        kill_leftovers(leftovers)
    assert not leftovers, f"workers {leftovers} outlived hpo run"
    assert proc.returncode == 141
