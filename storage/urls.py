"""Storage URLs with explicit schemes, opened as Optuna storages.

Two schemes are accepted, never guessed from the shape of a string:

* ``journal:///abs/path/optuna.journal`` or ``journal:relative/path.journal``
  (relative to ``run_dir``): an append-only journal file, safe for several
  processes on one machine (or an NFS mount) through an open-lock file.
* ``postgresql+psycopg2://user@host:port/dbname``: PostgreSQL through
  SQLAlchemy. The password is never part of the URL; libpq reads
  ``$PGPASSWORD`` or ``~/.pgpass`` itself.

Both storages survive pickling (the journal backend keeps only its path, the RDB
storage rebuilds its engine), so they can be handed to spawned processes.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import optuna

from storage.errors import StorageError

__all__ = ["JOURNAL_SCHEME", "POSTGRES_SCHEME", "open_storage", "redact", "parse_journal_path"]

JOURNAL_SCHEME = "journal"
POSTGRES_SCHEME = "postgresql+psycopg2"
_EXPECTED = (
    "expected 'journal:///abs/path.journal', 'journal:relative/path.journal' or "
    "'postgresql+psycopg2://user@host:port/dbname'"
)


def redact(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (safe to log)."""
    return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", str(url))


def _scheme(url: str) -> str:
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", url)
    return match.group(1).lower() if match else ""


def parse_journal_path(url: str, *, run_dir: Path | None = None) -> Path:
    """Return the file path of a ``journal:`` URL (relative paths resolved in ``run_dir``)."""
    rest = url[len(JOURNAL_SCHEME) + 1 :]
    if rest.startswith("//"):
        path_text = rest[2:]
        if not path_text.startswith("/"):
            raise StorageError(
                f"storage URL {url!r}: 'journal://' must be followed by an absolute path "
                f"(three slashes, e.g. 'journal:///data/run/optuna.journal'); "
                f"for a path relative to the run directory write 'journal:{path_text}'"
            )
        return Path(path_text)
    if not rest:
        raise StorageError(f"storage URL {url!r}: the journal file path is empty; {_EXPECTED}")
    path = Path(rest)
    if path.is_absolute():
        return path
    if run_dir is None:
        raise StorageError(
            f"storage URL {url!r}: relative journal path needs a run directory "
            "(pass run_dir, or use an absolute path 'journal:///abs/path.journal')"
        )
    return Path(run_dir) / path


def _open_journal(url: str, run_dir: Path | None) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = parse_journal_path(url, run_dir=run_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
        return optuna.storages.JournalStorage(backend)
    except OSError as exc:
        raise StorageError(
            f"storage URL {url!r}: cannot open journal file {path}: {exc.strerror or exc}"
        ) from exc


def _check_postgres_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.password is not None:
        raise StorageError(
            f"storage URL {redact(url)!r} contains a password: remove it from the URL and "
            "put it in $PGPASSWORD or ~/.pgpass (host:port:db:user:password, mode 600)"
        )
    if not parts.hostname or not parts.path.strip("/"):
        raise StorageError(
            f"storage URL {redact(url)!r}: expected "
            "'postgresql+psycopg2://user@host:port/dbname' (host and database name required)"
        )
    if parts.username is None:
        raise StorageError(
            f"storage URL {redact(url)!r}: the user name is missing "
            "(expected 'postgresql+psycopg2://user@host:port/dbname')"
        )


def open_storage(url: str, *, run_dir: Path | None = None) -> optuna.storages.BaseStorage:
    """Open the Optuna storage named by ``url`` (see the module docstring for the schemes).

    Raises:
        StorageError: unknown scheme, password in the URL, unreachable server, wrong
            credentials or an outdated schema; one line, the password never shown.
    """
    if not isinstance(url, str) or not url:
        raise StorageError(f"storage URL must be a non-empty string; {_EXPECTED}, got {url!r}")
    scheme = _scheme(url)
    if scheme == JOURNAL_SCHEME:
        return _open_journal(url, run_dir)
    if scheme == POSTGRES_SCHEME:
        _check_postgres_url(url)
        from storage.postgres import open_postgres

        return open_postgres(url)
    shown = redact(url)
    hint = ""
    if scheme in ("postgresql", "postgres"):
        hint = " (write the driver explicitly: 'postgresql+psycopg2://...')"
    elif not scheme:
        hint = " (no scheme: a plain path is not guessed to be a journal file)"
    raise StorageError(f"storage URL {shown!r}: unsupported scheme{hint}; {_EXPECTED}")
