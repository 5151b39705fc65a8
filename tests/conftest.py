"""Shared fixtures. Keep small: other areas add their own here."""

from __future__ import annotations

import os
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


@pytest.fixture
def one_torch_thread():
    """torch on one thread during the test (the CPUs are shared), restored after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


#: set by `make test` (and so by CI): a service that cannot start fails the run, never skips it
REQUIRE_SERVICES = os.environ.get("WSAD_REQUIRE_SERVICES") == "1"


def unavailable(reason: str):
    """Skip a test that needs a missing service, or fail it under ``make test``."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (WSAD_REQUIRE_SERVICES=1: make test needs every service)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a PostgreSQL database for tests; skips (fails under make test) without one."""
    if shutil.which("pg_ctlcluster") is None:
        unavailable("PostgreSQL is not installed (pg_ctlcluster missing)")
    try:
        return start_postgres(*TEST_DB)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        unavailable(f"cannot start PostgreSQL with deploy/postgres.sh: {exc}")
