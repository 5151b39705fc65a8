"""PostgreSQL storage: engine options, friendly connection errors, schema upgrade.

Connection budget: one pooled connection per worker process (``pool_size=1``,
``max_overflow=0``). Optuna returns the connection after every operation, so the
lease thread and the main thread take turns on it; Optuna's own schema check (which
needs two at once) is replaced by a version comparison in :func:`open_postgres`.
64 workers thus stay below PostgreSQL's default ``max_connections = 100``
(measured by ``benchmarks/storage_overhead.py``).
"""

from __future__ import annotations

import logging
from typing import Any

import optuna

from storage.addresses import redact
from storage.errors import StorageError

__all__ = ["ENGINE_KWARGS", "engine_kwargs", "open_postgres", "upgrade", "UPGRADE_COMMAND"]

_logger = logging.getLogger(__name__)

POOL_SIZE = 1
MAX_OVERFLOW = 0
UPGRADE_COMMAND = "hpo db upgrade <campaign.toml>"
ENGINE_KWARGS: dict[str, Any] = {
    "pool_pre_ping": True,  # survive a server restart between trials
    "pool_size": POOL_SIZE,
    "max_overflow": MAX_OVERFLOW,
    "pool_timeout": 60,  # seconds to wait for the shared connection (lease thread vs main)
    "pool_recycle": 1800,  # seconds; below common firewall / pgbouncer idle limits
    "connect_args": {"connect_timeout": 10, "application_name": "wsad-hpo"},
}


def engine_kwargs() -> dict[str, Any]:
    """A fresh copy of the SQLAlchemy engine options used for every PostgreSQL storage."""
    return {**ENGINE_KWARGS, "connect_args": dict(ENGINE_KWARGS["connect_args"])}


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0].strip() if text else type(orig).__name__


def _hint(detail: str) -> str:
    low = detail.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return "check $PGPASSWORD or ~/.pgpass (host:port:db:user:password, mode 600)"
    if "does not exist" in low:
        return "create the role and database with deploy/postgres.sh --role NAME --db NAME"
    if "connection refused" in low or "could not connect" in low or "timeout" in low:
        return "is the server running? start it with deploy/postgres.sh, check host and port"
    return "check the URL, the server log and $PGPASSWORD / ~/.pgpass"


def _wrap(url: str, action: str, exc: BaseException) -> StorageError:
    if isinstance(exc, RuntimeError) and "storage upgrade" in str(exc):
        return StorageError(
            f"storage {redact(url)}: the Optuna schema is outdated for optuna "
            f"{optuna.__version__}; run `{UPGRADE_COMMAND}`"
        )
    detail = _first_line(exc).replace(url, redact(url))  # SQLAlchemy may quote the URL
    return StorageError(f"storage {redact(url)}: {action} failed: {detail}; {_hint(detail)}")


def open_postgres(
    url: str,
    *,
    skip_compatibility_check: bool = False,
    pool_size: int = POOL_SIZE,
    application_name: str = "wsad-hpo",
) -> optuna.storages.RDBStorage:
    """Open (and create the tables of) an Optuna RDB storage on PostgreSQL.

    The schema version is compared here rather than by Optuna's own check, which holds
    two connections at once and would deadlock a one-connection pool. ``pool_size``:
    the connections this process may hold (one per worker; the storage proxy's threads);
    ``application_name`` names them in ``pg_stat_activity``.
    """
    import sqlalchemy.exc

    try:
        # Creating the schema of a fresh database nests two connections inside Optuna
        # (alembic stamping), which a one-connection pool deadlocks on: do it first on a
        # throwaway engine allowed one extra connection, then open the real storage.
        init = optuna.storages.RDBStorage(
            url, engine_kwargs={**engine_kwargs(), "max_overflow": 1}, skip_compatibility_check=True
        )
        init.engine.dispose()
        kwargs = engine_kwargs()
        kwargs["pool_size"] = pool_size
        kwargs["connect_args"]["application_name"] = application_name
        rdb = optuna.storages.RDBStorage(url, engine_kwargs=kwargs, skip_compatibility_check=True)
        if skip_compatibility_check:
            return rdb
        current, head = rdb.get_current_version(), rdb.get_head_version()
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError, ImportError) as exc:
        raise _wrap(url, "connecting", exc) from exc
    if current != head:
        rdb.engine.dispose()
        raise StorageError(
            f"storage {redact(url)}: the Optuna schema is at version {current}, "
            f"optuna {optuna.__version__} needs {head}; run `{UPGRADE_COMMAND}`"
        )
    return rdb


def upgrade(url: str) -> str:
    """Apply Optuna's schema migrations to the PostgreSQL storage at ``url``.

    Returns a one-line description (versions before and after). Journal storages have
    no schema; for them this returns a message and changes nothing.
    """
    from storage.addresses import JOURNAL_SCHEME, check_url

    if check_url(url) == JOURNAL_SCHEME:
        return f"{redact(url)}: journal storage has no schema to upgrade"
    import sqlalchemy.exc

    rdb = open_postgres(url, skip_compatibility_check=True)
    try:
        before = rdb.get_current_version()
        rdb.upgrade()
        after = rdb.get_current_version()
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError) as exc:
        raise _wrap(url, "schema upgrade", exc) from exc
    finally:
        rdb.remove_session()
        rdb.engine.dispose()
    _logger.info("upgraded %s from schema %s to %s", redact(url), before, after)
    return f"{redact(url)}: schema {before} -> {after}"
