"""Final-run claims with leases (issue 26 §3, §4): no run dropped silently, none trained twice.

A claim (``.run<j>.claim``) holds host, pid, a token and a lease renewed while the run
trains. A live claim is skipped; an expired one (or, on this host, one whose process is
gone) is taken over. ``hpo final`` names every run still missing and exits 3.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _gate import Gate
from _hpo_cli import REPO, hpo
from _tiny_campaign import CELL, tiny_campaign

from hpo.claims import LEASE_S, Claim, HeldClaim, claim, read_claim


# ----------------------------------------------------------------------------- unit
def _write_claim(path: Path, host: str, pid: int, lease_until: float) -> None:
    record = {"host": host, "pid": pid, "token": "t", "lease_until": lease_until}
    path.write_text(json.dumps(record))


def test_a_claim_names_host_pid_and_lease_and_is_released(tmp_path):
    path = tmp_path / ".run0.claim"
    held = claim(path)
    assert isinstance(held, HeldClaim)
    on_disk = read_claim(path)
    assert on_disk.pid == os.getpid() and on_disk.token == held.claim.token
    assert time.time() < on_disk.lease_until <= time.time() + LEASE_S
    # while it is held, anyone else (this process too) sees it live and skips it
    assert claim(path) == on_disk
    held.release()
    assert not path.exists()


def test_the_lease_is_renewed_while_the_run_trains(tmp_path):
    path = tmp_path / ".run0.claim"
    with claim(path, lease=30.0, renew=0.05) as held:
        first = read_claim(path).lease_until
        deadline = time.monotonic() + 60  # a guard; the renewal comes every 0.05 s
        while read_claim(path).lease_until == first:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.01)
        assert read_claim(path).token == held.claim.token
    assert not path.exists()


def test_an_expired_claim_elsewhere_is_taken_over(tmp_path):
    path = tmp_path / ".run0.claim"
    _write_claim(path, "othernode", 12345, time.time() - 1)
    with claim(path) as held:
        assert isinstance(held, HeldClaim) and read_claim(path).pid == os.getpid()
    assert not list(tmp_path.iterdir())  # nothing stale left behind


def test_a_live_claim_elsewhere_is_skipped(tmp_path):
    path = tmp_path / ".run0.claim"
    _write_claim(path, "othernode", 12345, time.time() + 60)
    holder = claim(path)
    assert isinstance(holder, Claim) and "claimed by othernode pid 12345" in holder.describe()
    assert read_claim(path) == holder  # untouched


def test_a_claim_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    import socket

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    path = tmp_path / ".run0.claim"
    _write_claim(path, socket.gethostname(), int(dead.stdout), time.time() + 60)
    with claim(path) as held:
        assert isinstance(held, HeldClaim)


def test_an_old_style_claim_lives_for_a_lease_from_its_mtime(tmp_path):
    """``host:pid`` (written before leases) is live for LEASE_S after it was written."""
    path = tmp_path / ".run0.claim"
    path.write_text("othernode:12345")
    assert isinstance(claim(path), Claim)
    old = time.time() - LEASE_S - 1
    os.utime(path, (old, old))
    with claim(path) as held:
        assert isinstance(held, HeldClaim)


# ----------------------------------------------------------------------------- hpo final
CAMPAIGN = tiny_campaign("claims", n_trials=2, n_runs=3, statistics=("half", "full"))
TRAINED = "INFO hpo.final: final "  # the log line of one trained run


@pytest.fixture
def campaign(tmp_path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN)
    done = hpo("create", str(path))
    assert done.returncode == 0, done.stderr
    return path


def test_a_run_held_elsewhere_is_named_and_the_command_fails_until_it_is_done(campaign):
    """Issue 26 §3: run 0 deleted, ``othernode:12345`` in its claim: ``hpo final -w 2``
    gave 5 of 6 runs, rc 0, and a summary of runs 1-2 only. Now it names the run,
    exits 3 and the summary lists it; once the claim's lease has expired it is taken
    over and everything completes."""
    first = hpo("final", str(campaign), "--source", "default")
    assert first.returncode == 0, first.stderr
    out = campaign.parent / "run" / "final" / CELL / "default" / "full"
    (out / "run0.npz").unlink()
    (out / "run0.json").unlink()
    (out / ".run0.claim").write_text("othernode:12345")

    again = hpo("final", str(campaign), "--source", "default", "-w", "2")
    assert again.returncode == 3, again.stderr
    last = again.stderr.strip().splitlines()[-1]
    assert last.startswith("hpo: error: 1 of 6 final runs missing: "), last
    assert f"{CELL}/default/full run 0 (claimed by othernode pid 12345" in last, last
    summary = json.loads((out / "summary.json").read_text())
    assert summary["missing_runs"] == [0] and [r["run"] for r in summary["runs"]] == [1, 2]

    stale = time.time() - LEASE_S - 1  # the other node died: its lease ran out
    os.utime(out / ".run0.claim", (stale, stale))
    done = hpo("final", str(campaign), "--source", "default", "-w", "2")
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["missing_runs"] == [] and [r["run"] for r in summary["runs"]] == [0, 1, 2]
    assert not list(out.glob(".*claim*"))


def test_a_second_final_skips_the_runs_the_first_has_claimed(campaign, tmp_path):
    """Issue 26 §4: two ``hpo final`` without -w both trained every run. The first is held
    (by the test gate) inside its first run; the second trains the five others, names
    the held one and exits 3; the first then finishes it: six runs, each trained once."""
    gate = Gate(tmp_path / "gate")
    argv = [sys.executable, "-m", "hpo", "final", str(campaign), "--source", "default"]
    env = gate.env({**os.environ, "PYTHONWARNINGS": "ignore"})
    first = subprocess.Popen(argv, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        (held,) = gate.wait_held(1, alive=lambda: first.poll() is None, what="first final")
        second = hpo("final", str(campaign), "--source", "default")
        gate.open()
        _, first_err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 3, second.stderr
    assert f"claimed by {gate.held()[held]['host']} pid {first.pid}" in second.stderr
    assert first.returncode == 0, first_err
    trained = [
        line.split(TRAINED, 1)[1].split(":")[0]
        for err in (first_err, second.stderr)
        for line in err.splitlines()
        if TRAINED in line
    ]
    assert len(trained) == 6 and len(set(trained)) == 6, trained
    assert sum(TRAINED in line for line in first_err.splitlines()) == 1
