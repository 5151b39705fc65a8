"""Session fixture ``slurm_cluster``: a real one-node SLURM cluster for the ``slurm`` tests.

Use it from a test module with::

    from _slurm_fixture import slurm_cluster  # noqa: F401  (pytest fixture)
    pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

It runs ``deploy/install-system-deps.sh`` (apt, only if packages are missing) and
``deploy/slurm-up.sh`` once per session, exports ``SLURM_CONF`` into ``os.environ`` for
the session, and stops the cluster at the end if it started it (set
``WSAD_KEEP_SLURM=1`` to leave it running). Skips only when apt itself is unreachable.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_APT_UNREACHABLE = ("Could not resolve", "Failed to fetch", "Temporary failure", "Unable to fetch")


@dataclass(frozen=True)
class SlurmCluster:
    """The running test cluster: its config file and run directory."""

    conf: Path
    run_dir: Path


def _sh(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """Install SLURM if needed, start (or reuse) the one-node cluster, yield it."""
    install = _sh([str(REPO / "deploy/install-system-deps.sh")], timeout=900)
    if install.returncode != 0:
        output = install.stdout + install.stderr
        if any(marker in output for marker in _APT_UNREACHABLE):
            from conftest import unavailable

            unavailable(f"apt is unreachable, cannot install SLURM: {output.strip()[-300:]}")
        pytest.fail(f"deploy/install-system-deps.sh failed:\n{output}")
    run_dir = Path(os.environ.get("WSAD_SLURM_DIR", REPO / ".deploy/slurm"))
    up = _sh([str(REPO / "deploy/slurm-up.sh"), str(run_dir)], timeout=120)
    if up.returncode != 0:
        pytest.fail(f"deploy/slurm-up.sh failed:\n{up.stdout}{up.stderr}")
    started_here = "reusing" not in up.stderr
    conf = run_dir.resolve() / "slurm.conf"
    assert up.stdout.strip() == f"export SLURM_CONF={conf}"
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        yield SlurmCluster(conf=conf, run_dir=run_dir.resolve())
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        if started_here and os.environ.get("WSAD_KEEP_SLURM") != "1":
            _sh([str(REPO / "deploy/slurm-down.sh"), str(run_dir)], timeout=60)
