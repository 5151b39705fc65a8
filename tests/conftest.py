"""Shared fixtures. Keep small: other areas add their own here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# backend-parametrised `url` and `study` fixtures of the storage and worker tests
pytest_plugins = ("_storage_fixtures",)

REPO = Path(__file__).resolve().parents[1]
TEST_DB = ("wsad_test", "wsad_test")  # (role, database) of the test server


def start_postgres(role: str, db: str) -> str:
    """Start/reuse PostgreSQL via deploy/postgres.sh; return the URL (raises on failure)."""
    from workers.proc import run

    done = run([str(REPO / "deploy" / "postgres.sh"), "--role", role, "--db", db], timeout=120)
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a PostgreSQL database for tests; skips when the server cannot be started."""
    if shutil.which("pg_ctlcluster") is None:
        pytest.skip("PostgreSQL is not installed (pg_ctlcluster missing)")
    try:
        return start_postgres(*TEST_DB)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        pytest.skip(f"cannot start PostgreSQL with deploy/postgres.sh: {exc}")
