"""Storage URLs opened as Optuna storages (the rules of the URL text: ``storage.addresses``).

* ``journal:///abs/path/optuna.journal`` or ``journal:relative/path.journal``
  (relative to ``run_dir``): an append-only journal file, safe for several
  processes on one machine (or an NFS mount) through an open-lock file; a tail
  torn by an interrupted append is repaired before anything is appended
  (``storage.journal``).
* ``postgresql+psycopg2://user@host:port/dbname``: PostgreSQL through
  SQLAlchemy. The password is never part of the URL; libpq reads
  ``$PGPASSWORD`` or ``~/.pgpass`` itself. The storage is Optuna's RDB storage behind
  Optuna's own trial cache (what ``optuna.create_study(storage="postgresql://...")``
  uses): a finished trial is read from the database once per process, so a worker that
  looks at every cell before each trial reads only what changed, not the whole campaign.
* ``grpc://host:port``: a running gRPC storage proxy in front of PostgreSQL
  (``storage.proxy``); opening it waits up to ``PROXY_PATIENCE`` seconds for an answer.

The storages survive pickling (the journal backend keeps only its path, the RDB
storage rebuilds its engine, the proxy client its channel), so they can be handed to
spawned processes.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from storage.addresses import (
    GRPC_SCHEME,
    JOURNAL_SCHEME,
    POSTGRES_SCHEME,
    check_url,
    parse_journal_path,
    redact,
)
from storage.errors import StorageError

__all__ = [
    "GRPC_SCHEME",
    "JOURNAL_SCHEME",
    "POSTGRES_SCHEME",
    "PROXY_PATIENCE",
    "open_storage",
    "parse_journal_path",
    "redact",
]

PROXY_PATIENCE = 10.0
"""Seconds ``open_storage`` waits for a ``grpc://`` proxy to answer."""


def _open_journal(url: str, run_dir: Path | None, campaign: str | None):
    from storage.journal import open_journal_storage

    path = parse_journal_path(url, run_dir=run_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open_journal_storage(path, campaign=campaign)
    except OSError as exc:
        raise StorageError(
            f"storage URL {redact(url)!r}: cannot open journal file {path}: {exc.strerror or exc}"
        ) from exc


def open_storage(
    url: str,
    *,
    run_dir: Path | None = None,
    campaign: str | None = None,
    token_file: Path | None = None,
    tls_ca: Path | None = None,
) -> optuna.storages.BaseStorage:
    """Open the Optuna storage named by ``url`` (see the module docstring for the schemes).

    ``campaign`` (a campaign file) only completes the ``hpo repair`` hint of a damaged
    journal. ``token_file`` / ``tls_ca``: how a ``grpc://`` proxy is reached (its token,
    the CA of its TLS certificate; see ``storage.proxy.ProxyStorage``).

    Raises:
        StorageError: unknown scheme, password in the URL, unreachable server, wrong
            credentials, an outdated schema or an unreadable journal; one line, the
            password never shown.
    """
    kind = check_url(url)
    if kind == JOURNAL_SCHEME:
        return _open_journal(url, run_dir, campaign)
    if kind == GRPC_SCHEME:
        from storage.proxy import ProxyStorage

        proxy = ProxyStorage(url, token_file=token_file, tls_ca=tls_ca)
        proxy.wait_ready(PROXY_PATIENCE)
        return proxy
    from optuna.storages import _CachedStorage

    from storage.postgres import open_postgres

    return _CachedStorage(open_postgres(url))
