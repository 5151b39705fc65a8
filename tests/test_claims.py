"""Final-run claims with leases (issue 26 §3, §4): no run dropped silently, none trained twice.

A claim (``.run<j>.claim``) holds host, pid, a token and a lease renewed while the run
trains. A live claim is skipped; an expired one (or, on this host, one whose process is
gone) is taken over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

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
