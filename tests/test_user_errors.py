"""Every error a user can cause: one line ``hpo: error: ...``, exit code 2, nothing created.

Each case is a campaign file (or a command line) that used to give a traceback, a
misleading message or a side effect (issue 11, items 3-5); each is run as the user
would, through ``python -m hpo``.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
from _hpo_cli import hpo

GOOD = """
[campaign]
name = "e"
run_dir = "run"
[data]
scale = 0.02
[grid]
signal = [100]
[search]
n_trials = 1
repetitions = 1
"""


def campaign(folder: Path, *, replace: tuple[str, str] = ("", ""), text: str = "") -> Path:
    """The good campaign with one line replaced (or appended), or ``text`` itself."""
    old, new = replace
    path = folder / "c.toml"
    path.write_text(text or (GOOD.replace(old, new) if old else GOOD + new + "\n"))
    return path


def _busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


# (name, how to build the campaign, command after "hpo", text the message must hold)
CASES = [
    (
        "run_dir is a file",
        {"replace": ('run_dir = "run"', 'run_dir = "afile"')},
        ["create"],
        "campaign.run_dir",
    ),
    (
        "run_dir unwritable",
        {"replace": ('run_dir = "run"', 'run_dir = "/proc/x/run"')},
        ["create"],
        "not a writable",
    ),
    (
        "validate unwritable",
        {"replace": ('run_dir = "run"', 'run_dir = "/proc/x/run"')},
        ["validate"],
        "not a writable",
    ),
    ("campaign is a folder", None, ["validate", "{folder}"], "is a directory"),
    ("no [campaign] header", {"text": 'name = "e"\n'}, ["validate"], "outside any section"),
    ("workers zero", {}, ["run", "-w", "0"], "must be a whole number >= 1"),
    ("bogus final source", {}, ["final", "--source", "bogus"], "--source bogus"),
    ("bogus final cell", {}, ["final", "--cell", "X"], "--cell X: no such cell"),
    ("select before final", {}, ["select"], "no half-statistics final runs to select from"),
    (
        "select without half statistics",
        {"replace": ("", '[final]\nstatistics = ["full"]')},
        ["select"],
        "final.statistics: selecting detectors needs 'half'",
    ),
    ("dashboard port", {}, ["dashboard", "--port", "99999"], "1..65535"),
    ("dashboard port in use", {}, ["dashboard", "--port", "{busy}"], "cannot listen there"),
    ("dashboard open host", {}, ["dashboard", "--host", "0.0.0.0"], "not a loopback address"),
    ("dashboard never created", {}, ["dashboard"], "has no studies yet"),
    ("export never created", {}, ["export"], "has no studies yet"),
    ("status never created", {}, ["status"], "has no studies yet"),
    ("export yaml unwritable", {}, ["export", "--yaml", "/proc/x/yaml"], "--yaml /proc/x/yaml"),
    (
        "postgresql without driver",
        {"replace": ('run_dir = "run"', 'storage = "postgresql://u@h/db"')},
        ["validate"],
        "write the driver explicitly",
    ),
    (
        "password in user-info",
        {"replace": ('run_dir = "run"', 'storage = "postgresql+psycopg2://u:s3cr3tpw@h/db"')},
        ["validate"],
        "contains a password",
    ),
    (
        "password in query",
        {
            "replace": (
                'run_dir = "run"',
                'storage = "postgresql+psycopg2://u@h/db?password=s3cr3tpw"',
            )
        },
        ["launch", "--dry-run"],
        "contains a password",
    ),
    ("slurm time", {"replace": ("", '[slurm]\ntime = "99:99:99"')}, ["validate"], "slurm.time"),
    (
        "huge n_trials",
        {"replace": ("n_trials = 1", "n_trials = 1000000000000")},
        ["validate"],
        "search.n_trials",
    ),
    ("repair never created", {}, ["repair"], "no journal"),
    ("report never created", {}, ["report"], "has no studies yet"),
    (
        "create on an unreachable database",
        {
            "replace": (
                'run_dir = "run"',
                'run_dir = "run"\nstorage = "postgresql+psycopg2://u@127.0.0.1:1/db"',
            )
        },
        ["create"],
        "connecting failed",
    ),
    (
        "create on a journal that is a folder",
        {"replace": ('run_dir = "run"', 'run_dir = "run"\nstorage = "journal:///tmp"')},
        ["create"],
        "journal file /tmp: cannot",
    ),
]
if not torch.cuda.is_available():  # a worker or final run on a node without a GPU
    CUDA = {"replace": ("repetitions = 1", 'repetitions = 1\ndevice = "cuda"')}
    CASES += [
        ("worker on cuda without one", CUDA, ["worker"], "device 'cuda'"),
        ("final on cuda without one", CUDA, ["final"], "device 'cuda'"),
        ("run on cuda without one", CUDA, ["run"], "device 'cuda'"),
    ]


@pytest.mark.parametrize(("name", "build", "command", "needle"), CASES, ids=[c[0] for c in CASES])
def test_user_error_is_one_line_exit_2_and_creates_nothing(tmp_path, name, build, command, needle):
    (tmp_path / "afile").write_text("not a folder")
    path = campaign(tmp_path, **build) if build is not None else tmp_path
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    busy = _busy_port()
    try:
        args = [a.format(folder=tmp_path, busy=busy.getsockname()[1]) for a in command]
        if build is not None:
            args = [args[0], str(path), *args[1:]]
        proc = hpo(*args, timeout=120)
    finally:
        busy.close()
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpo: error: "), proc.stderr
    assert needle in lines[0], lines[0]
    assert "s3cr3tpw" not in proc.stderr + proc.stdout
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_export_without_a_complete_trial_is_one_line(tmp_path) -> None:
    """Issue 26 §6: the error listed every cell on lines of their own."""
    path = campaign(tmp_path, replace=("signal = [100]", "signal = [100, 200, 300, 400]"))
    assert hpo("create", str(path)).returncode == 0
    proc = hpo("export", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hpo: error: cannot export; incomplete cells: e.HGB-IAD-")
    assert lines[0].endswith("and 1 more (`hpo --debug export` lists every one)")
    debug = hpo("--debug", "export", str(path))
    assert debug.stderr.count("incomplete cell e.HGB-IAD-") == 4, debug.stderr


def test_status_on_a_torn_journal_says_one_thing(tmp_path) -> None:
    """Issue 26 §6: status said "dropped 94 bytes" and "cut ... the next time" at once."""
    path = campaign(tmp_path)
    assert hpo("create", str(path)).returncode == 0
    journal = tmp_path / "run" / "optuna.journal"
    with journal.open("ab") as f:
        f.write(b'{"op_code": 4, "worker_id": "w", "study_id": 0, "datetime_sta')
    proc = hpo("status", str(path))
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout + proc.stderr
    assert said.count("torn last record") == 1, said
    assert "dropped 61 bytes of a torn last record" in said
    assert "the next time" not in said
