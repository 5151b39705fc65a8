"""workers/slurm.py against a real one-node SLURM cluster (deploy/slurm-up.sh).

Run with ``.venv/bin/pytest -m slurm tests/test_slurm_cluster.py`` (about 2 minutes with
the ``slow`` time-limit test, 20 s without: ``-m "slurm and not slow"``). The scripts
are rendered by :func:`workers.slurm.render_sbatch` exactly as ``hpo launch`` does, with
a tiny Python program as the command instead of ``hpo worker``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _slurm_fixture import slurm_cluster  # noqa: F401  (pytest fixture)

from workers.slurm import (
    SlurmError,
    SlurmOptions,
    cancel,
    job_finished,
    job_states,
    render_sbatch,
    submit,
)

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]
REPO = Path(__file__).resolve().parents[1]

# Each array task records its id, host, start and end time; then sleeps a little so
# that the %2 throttle matters.
TASK = """
import json, os, socket, sys, time
out = sys.argv[1]
start = time.time()
time.sleep(1.0)
rec = {"task": int(os.environ["SLURM_ARRAY_TASK_ID"]), "job": os.environ["SLURM_ARRAY_JOB_ID"],
       "host": socket.gethostname(), "pid": os.getpid(), "start": start, "end": time.time()}
with open(os.path.join(out, f"task-{rec['task']}.json"), "w") as f:
    json.dump(rec, f)
"""

# The dependent job: counts the task files (what pick-best does with trials).
SUMMARY = """
import glob, json, os, sys
out = sys.argv[1]
files = sorted(glob.glob(os.path.join(out, "task-*.json")))
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump({"n": len(files), "pid": os.getpid()}, f)
"""

# Sleeps until killed; records which signals reached *this* process (the exec'd command).
SLEEPER = """
import os, signal, sys, time
out, start = sys.argv[1], time.time()
tag = os.environ.get("SLURM_ARRAY_TASK_ID", os.environ["SLURM_JOB_ID"])
def note(name):
    def handler(signum, frame):
        with open(os.path.join(out, f"{tag}.signals"), "a") as f:
            f.write(f"{name} {time.time() - start:.1f}\\n")
        if name == "TERM":
            sys.exit(0)
    return handler
signal.signal(signal.SIGUSR1, note("USR1"))
signal.signal(signal.SIGTERM, note("TERM"))
open(os.path.join(out, f"{tag}.started"), "w").close()
while True:
    time.sleep(0.2)
"""


def _script(tmp: Path, name: str, options: SlurmOptions, program: str, kind: str) -> Path:
    path = tmp / f"{name}.sbatch"
    command = [sys.executable, "-c", program, str(tmp / "out")]
    path.write_text(render_sbatch(options, command, kind=kind))
    return path


def _wait(job_ids: list[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        states = job_states(job_ids)
        if all(job_finished(states, j) for j in job_ids):
            return states
        if time.monotonic() > deadline:
            pytest.fail(f"jobs {job_ids} not finished after {timeout:.0f} s: {states}")
        time.sleep(0.5)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    (tmp_path / "logs").mkdir()
    return tmp_path


def test_worker_array_then_afterany_job(tmp: Path) -> None:
    opts = SlurmOptions(
        job_name="t-array", time=5, array_size=5, array_parallel=2, log_dir=str(tmp / "logs")
    )
    array = submit(_script(tmp, "worker", opts, TASK, "worker"))
    pick_opts = SlurmOptions(job_name="t-pick", time=5, log_dir=str(tmp / "logs"))
    pick = submit(
        _script(tmp, "pick", pick_opts, SUMMARY, "pick-best"), dependency=f"afterany:{array}"
    )
    states = _wait([array, pick], timeout=90)

    assert states == {**{f"{array}_{i}": "COMPLETED" for i in range(5)}, pick: "COMPLETED"}
    records = [json.loads((tmp / "out" / f"task-{i}.json").read_text()) for i in range(5)]
    assert [r["task"] for r in records] == list(range(5))
    assert {r["job"] for r in records} == {array}
    # the throttle: never more than 2 tasks at once
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert 1 <= peak <= 2
    # the dependent job ran after every task had finished and saw all their files
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert summary["n"] == 5
    assert (tmp / "out" / "summary.json").stat().st_mtime >= max(r["end"] for r in records)
    # logs: one per task, named by %x-%A_%a, with the banner of the template
    log = (tmp / "logs" / f"t-array-{array}_3.out").read_text()
    assert f"[wsad-hpo] worker task {array}_3 " in log


def test_afterok_on_a_failed_job_cancels_the_dependent(tmp: Path) -> None:
    opts = SlurmOptions(job_name="t-fail", time=5, log_dir=str(tmp / "logs"))
    failing = submit(_script(tmp, "fail", opts, "import sys; sys.exit(3)", "pick-best"))
    final = submit(
        _script(tmp, "final", opts, "print('must not run')", "final"),
        dependency=f"afterok:{failing}",
    )
    states = _wait([failing, final], timeout=60)
    assert states[failing] == "FAILED"
    # --kill-on-invalid-dep=yes: cancelled instead of pending forever
    assert states[final] == "CANCELLED"
    assert not (tmp / "logs" / f"t-fail-{final}.out").exists()


def test_scancel_of_one_array_task_reaches_the_worker(tmp: Path) -> None:
    opts = SlurmOptions(job_name="t-cancel", time=5, array_size=3, log_dir=str(tmp / "logs"))
    array = submit(_script(tmp, "sleep", opts, SLEEPER, "worker"))
    deadline = time.monotonic() + 60
    while not all((tmp / "out" / f"{i}.started").exists() for i in range(3)):
        assert time.monotonic() < deadline, job_states([array])
        time.sleep(0.2)

    cancel(f"{array}_1")
    deadline = time.monotonic() + 30
    while not job_finished(job_states([f"{array}_1"]), f"{array}_1"):
        assert time.monotonic() < deadline, job_states([array])
        time.sleep(0.5)
    states = job_states([array])
    assert states[f"{array}_1"] == "CANCELLED"
    assert states[f"{array}_0"] == states[f"{array}_2"] == "RUNNING"
    # the exec'd Python process itself got SLURM's SIGTERM
    assert (tmp / "out" / "1.signals").read_text().startswith("TERM ")

    cancel(array)
    states = _wait([array], timeout=30)
    assert set(states.values()) == {"CANCELLED"}


def test_submit_error_names_the_command_and_slurms_reason(tmp: Path) -> None:
    opts = SlurmOptions(job_name="t-bad", partition="nosuchpartition", log_dir=str(tmp / "logs"))
    with pytest.raises(SlurmError, match=r"sbatch --parsable .* failed .*[Pp]artition"):
        submit(_script(tmp, "bad", opts, "pass", "final"))
    with pytest.raises(SlurmError, match="does not exist"):
        submit(tmp / "missing.sbatch")
    assert job_states(["99999999"]) == {}


@pytest.mark.slow
def test_time_limit_warns_with_usr1_then_kills_with_timeout(tmp: Path) -> None:
    # --time=1 (minute); the warning is asked 30 s before the end. SLURM checks limits
    # about every 30 s and may send the signal up to 60 s early: expect USR1 within the
    # minute, then SIGTERM at the limit, SIGKILL KillWait (5 s) later; state TIMEOUT.
    opts = SlurmOptions(job_name="t-timeout", time=1, signal="USR1@30", log_dir=str(tmp / "logs"))
    job = submit(_script(tmp, "timeout", opts, SLEEPER, "final"))
    started = time.monotonic()
    states = _wait([job], timeout=180)
    elapsed = time.monotonic() - started
    assert states == {job: "TIMEOUT"}
    lines = (tmp / "out" / f"{job}.signals").read_text().split("\n")
    signals = [(ln.split()[0], float(ln.split()[1])) for ln in lines if ln]
    assert [name for name, _ in signals] == ["USR1", "TERM"]
    usr1, term = signals[0][1], signals[1][1]
    assert usr1 < 60 <= term  # warned before the limit, killed at or after it
    log = (tmp / "logs" / f"t-timeout-{job}.out").read_text()
    assert "DUE TO TIME LIMIT" in log
    print(f"USR1 after {usr1:.0f} s, SIGTERM after {term:.0f} s, TIMEOUT after {elapsed:.0f} s")


def test_slurm_down_all_finds_every_cluster_of_slurm_up(slurm_cluster) -> None:  # noqa: F811
    """``make test`` ends with ``slurm-down.sh --all``: it must see the cluster it started,
    wherever the checkout is (found from the daemons' command lines, not this repo's path)."""
    proc = subprocess.run(
        ["bash", str(REPO / "deploy/slurm-down.sh"), "--all", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert str(slurm_cluster.run_dir) in proc.stdout.split()
