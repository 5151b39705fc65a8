"""Replay snapshots of a journal: open a large journal without replaying all of it.

Optuna rebuilds a journal storage by replaying every record, ~20 per trial plus every
lease renewal: 515k records (115 MB) for the paper's grid of 252 studies x 100 trials,
30-40 s for every process that opens it, whatever it then reads. Optuna's own hook for
this (``BaseJournalSnapshot``) lets a backend hand back a pickled replay state; this
module stores one next to the journal, ``<journal>.snapshot``:

* a header line (JSON): format, Optuna version, the number of journal records the state
  covers, the byte offset where they end, and SHA-256 digests of the 64 KiB of journal
  before that offset and of the pickled state;
* the pickled state (Optuna's ``JournalStorageReplayResult``).

A process that opens the journal loads the state and replays only the records after the
offset. The snapshot is used only when it provably fits: same Optuna version, the journal
at least as long as the offset and with the same bytes before it (a journal rewritten by
``hpo repair`` or replaced does not match), the state's digest intact, and the file owned
by the user opening it and writable by nobody else (unpickling runs code: a file someone
else could have written is never loaded). Anything else means a full replay, as without
a snapshot.

Optuna offers a state to save every 100 trials created; :func:`write` keeps it only when
at least :data:`MIN_NEW_RECORDS` records (and a tenth of the journal) are newer than the
snapshot on disk. Writing is atomic (temporary file, fsync, rename) and best effort: a
read-only run directory just has no snapshot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import optuna

__all__ = [
    "FORMAT",
    "MIN_NEW_RECORDS",
    "SUFFIX",
    "path_of",
    "read",
    "remove",
    "verified_prefix",
    "write",
]

_logger = logging.getLogger(__name__)

SUFFIX = ".snapshot"
FORMAT = "wsad-hpo journal replay snapshot 1"
MIN_NEW_RECORDS = 10_000
"""A new snapshot is written only when this many records (and a tenth of the journal)
are newer than the last one."""
_CHECK_BYTES = 65536


def path_of(journal: str) -> str:
    """The snapshot file of ``journal``."""
    return journal + SUFFIX


def _journal_digest(journal: str, offset: int) -> str | None:
    start = max(0, offset - _CHECK_BYTES)
    try:
        with open(journal, "rb") as f:
            f.seek(start)
            data = f.read(offset - start)
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest() if len(data) == offset - start else None


def _header(path: str) -> dict | None:
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
    except (OSError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def read(journal: str) -> tuple[dict, bytes] | None:
    """``(header, pickled state)`` of ``journal``'s snapshot when it fits the journal.

    The header: ``format``, ``optuna``, ``records``, ``offset``, ``journal_sha256`` (the
    64 KiB before ``offset``), ``state_sha256``.
    """
    path = path_of(journal)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            line = f.readline()
            state = f.read()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        _logger.warning("journal snapshot %s: not only yours to write; ignored", path)
        return None
    try:
        header = json.loads(line)
        records, offset = int(header["records"]), int(header["offset"])
    except (ValueError, KeyError, TypeError):
        return None
    fits = (
        header.get("format") == FORMAT
        and header.get("optuna") == optuna.__version__
        and records > 0
        and _journal_digest(journal, offset) == header.get("journal_sha256")
        and hashlib.sha256(state).hexdigest() == header.get("state_sha256")
    )
    return (header, state) if fits else None


def verified_prefix(journal: str) -> tuple[int, int] | None:
    """(bytes, records) of ``journal`` that its snapshot covers, when the snapshot's header
    fits the journal: those records were all read and found valid when it was taken."""
    header = _header(path_of(journal))
    try:
        offset, records = int(header["offset"]), int(header["records"])
    except (TypeError, KeyError, ValueError):
        return None
    if header.get("format") != FORMAT or records <= 0:
        return None
    return (
        (offset, records)
        if _journal_digest(journal, offset) == header.get("journal_sha256")
        else None
    )


def write(journal: str, state: bytes, records: int, offset: int) -> bool:
    """Store ``state`` (covering the first ``records`` records, ending at byte ``offset``)
    unless the snapshot on disk is recent enough; True if written."""
    path = path_of(journal)
    current = _header(path)
    done = int(current.get("records", 0)) if current else 0
    if records - done < max(MIN_NEW_RECORDS, records // 10):
        return False
    digest = _journal_digest(journal, offset)
    if digest is None:
        return False
    header = {
        "format": FORMAT,
        "optuna": optuna.__version__,
        "records": records,
        "offset": offset,
        "journal_sha256": digest,
        "state_sha256": hashlib.sha256(state).hexdigest(),
    }
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(header).encode() + b"\n")
            f.write(state)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        _logger.info("journal snapshot %s not written: %s", path, exc.strerror or exc)
        return False
    _logger.info("journal snapshot %s: %d records, %d bytes", path, records, len(state))
    return True


def remove(journal: str) -> None:
    """Delete ``journal``'s snapshot (after the journal itself was rewritten)."""
    Path(path_of(journal)).unlink(missing_ok=True)
