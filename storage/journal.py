"""Journal files: find and repair what an interrupted append leaves behind.

Optuna's :class:`~optuna.storages.journal.JournalFileBackend` stores one JSON object per
line. It appends under ``<path>.lock`` (created with ``O_CREAT | O_EXCL`` by
:class:`~optuna.storages.journal.JournalFileOpenLock`, forcibly removed by a waiter once its
mtime has not changed for the 30 s grace period), and each reader keeps the byte offset of the
lines it has read. On read, a line without a final newline, or one that does not parse, is
skipped silently while it is the *last* line; once anything follows it, every read raises
``JSONDecodeError``. So a writer killed in the middle of an append leaves a torn last line,
the next append is glued onto it, and from the append after that on no process can read the
journal (issue 11 §2).

This module:

* :func:`check_journal` -- is the end of the file clean (reads the last block or two; a full
  scan with ``full=True``)?
* :func:`repair_tail` -- under the journal's own lock, back the file up and cut a torn tail.
* :func:`open_journal_storage` -- check and repair the tail, then open the storage like
  ``storage.urls`` does, with :class:`GuardedJournalFileBackend`, which also repairs a tail
  torn while the storage is open (under the append lock, before it appends) and turns an
  unreadable journal into a one-line :class:`~storage.errors.StorageError`.
* :func:`rewrite_journal` -- what ``hpo repair`` runs: copy every valid record into a fresh
  journal, verify it with Optuna, replace the original and keep it as a backup.

Record validity
    A record is valid when it is a complete line (ends with ``\\n``) that parses as a JSON
    object with an integer ``op_code`` Optuna knows, a string ``worker_id`` and the fields
    Optuna's replay reads unconditionally for that operation (:func:`is_journal_record`).
    Every other line is *bad*. Records after a bad line are valid and kept, in their order:
    no Optuna reader can ever apply a bad line (it raises, or skips it while it is last), so
    every record written after it was written by a process whose view did not include it,
    and Optuna numbers studies and trials by replay order, so leaving the bad line out keeps
    every id as those writers saw it. A bad line that *contains* complete records -- a
    record glued onto a torn fragment, or a complete record whose newline was lost -- is
    split at ``{"op_code":`` boundaries; pieces that are valid records are kept (each on its
    own line, where the bad line was), the rest is dropped. Valid lines are copied byte for
    byte, so everything before the first bad line stays byte-identical and the read offsets
    of running processes stay correct.

Torn tail
    The bytes after the last valid record when they look like an interrupted append: an
    unterminated fragment, possibly preceded by one newline-terminated bad line (an append
    glued onto a fragment). More bad lines after the last valid record, or a bad line in a
    file without any valid record, count as bad lines, which only :func:`rewrite_journal`
    removes.

Backups (nothing valid is ever lost)
    :func:`repair_tail` copies the whole journal to ``<name>.torn-<UTC>.bak`` before it
    truncates, when the journal is at most :data:`WHOLE_BACKUP_LIMIT` bytes; a larger journal
    gets only the dropped tail, in ``<name>.torn-<UTC>.tail-at-<offset>.bak`` (the bytes
    before ``offset`` are not touched, so ``head -c <offset> journal`` plus that file is the
    original). :func:`rewrite_journal` keeps the original file itself as
    ``<name>.repair-<UTC>.bak`` (a hard link, a copy where links are not supported).

Locking
    Both repairs take ``<path>.lock`` through :class:`~optuna.storages.journal.JournalFileOpenLock`,
    the lock every appender takes, so no append is in flight while they read, truncate or
    replace the file; they refresh the lock's mtime while they hold it, so that no waiter
    breaks it after the grace period. A lock left by a killed process is broken after that
    grace period, as Optuna does.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import optuna
from optuna.storages.journal import (
    BaseJournalBackend,
    JournalFileBackend,
    JournalFileOpenLock,
    JournalStorage,
)
from optuna.storages.journal._base import BaseJournalSnapshot  # not re-exported by Optuna
from optuna.trial import TrialState

from storage import journal_snapshot
from storage.bulk_read import bulk_read
from storage.errors import StorageError

if TYPE_CHECKING:
    from optuna.storages.journal._file import BaseJournalFileLock
    from optuna.trial import FrozenTrial

__all__ = [
    "BLOCK",
    "WHOLE_BACKUP_LIMIT",
    "BadLine",
    "DroppedBytes",
    "GuardedJournalFileBackend",
    "JournalHealth",
    "RepairReport",
    "check_journal",
    "is_journal_record",
    "open_journal_storage",
    "repair_tail",
    "rewrite_journal",
]

_logger = logging.getLogger(__name__)

BLOCK = 8192
"""Bytes read per step of the tail check (more only when the last record is longer)."""
WHOLE_BACKUP_LIMIT = 64 * 1024 * 1024
"""Largest journal that :func:`repair_tail` backs up whole (larger: the dropped tail only)."""

_LOCK_SUFFIX = ".lock"  # JournalFileOpenLock locks "<path>.lock"
_LOCK_REFRESH_S = 5.0  # well inside Optuna's 30 s grace period
_RECORD_START = b'{"op_code":'
_EXCERPT = 40

# Fields Optuna 5's replay (JournalStorageReplayResult) reads unconditionally, by op_code.
_REQUIRED: dict[int, tuple[str, ...]] = {
    0: ("study_name", "directions"),  # CREATE_STUDY
    1: ("study_id",),  # DELETE_STUDY
    2: ("study_id", "user_attr"),  # SET_STUDY_USER_ATTR
    3: ("study_id", "system_attr"),  # SET_STUDY_SYSTEM_ATTR
    4: ("study_id", "datetime_start"),  # CREATE_TRIAL
    5: ("trial_id", "param_name", "param_value_internal", "distribution"),  # SET_TRIAL_PARAM
    6: ("trial_id", "state", "values"),  # SET_TRIAL_STATE_VALUES
    7: ("trial_id", "step", "intermediate_value"),  # SET_TRIAL_INTERMEDIATE_VALUE
    8: ("trial_id", "user_attr"),  # SET_TRIAL_USER_ATTR
    9: ("trial_id", "system_attr"),  # SET_TRIAL_SYSTEM_ATTR
    10: (),  # DISCARD_TRIALS (written only by Rustuna; Optuna skips it)
}
_SET_TRIAL_STATE_VALUES = 6
# TrialState -> the datetime field replay reads for it (RUNNING, COMPLETE, PRUNED, FAIL).
_STATE_NEEDS = {
    0: "datetime_start",
    1: "datetime_complete",
    2: "datetime_complete",
    3: "datetime_complete",
}


_TRIAL_ID = re.compile(rb'"trial_id"\s*:\s*(\d+)')


class BadLine(NamedTuple):
    """A line that is not a valid record: where it starts, its 1-based number, its start."""

    offset: int
    line_number: int | None  # None when found by the tail check of a large file (not counted)
    excerpt: str
    size: int  # bytes, newline included


class DroppedBytes(NamedTuple):
    """Bytes :func:`rewrite_journal` left out: offset in the original, line, size, excerpt."""

    offset: int
    line_number: int
    size: int
    excerpt: str


@dataclass(frozen=True)
class JournalHealth:
    """What :func:`check_journal` found.

    ``tail_offset`` is where a torn tail starts (the file size when there is none);
    ``valid_records`` is counted only by a full scan (``None`` after a tail check);
    ``bad_lines`` are bad lines before the tail -- all of them after a full scan, those in
    the blocks read after a tail check; ``bytes_read`` is what the check read.
    """

    path: str
    size: int
    full: bool
    valid_records: int | None
    tail_offset: int
    bad_lines: tuple[BadLine, ...]
    bytes_read: int

    @property
    def torn_tail_bytes(self) -> int:
        """Bytes after the last complete valid record that an interrupted append left."""
        return self.size - self.tail_offset

    @property
    def ok(self) -> bool:
        """True when there is neither a torn tail nor a bad line."""
        return self.torn_tail_bytes == 0 and not self.bad_lines

    def describe(self, campaign: str | None = None, *, torn_tail: bool = True) -> str:
        """One line for users: what is wrong and what to do ('' when healthy).

        ``torn_tail=False`` leaves the torn tail out: for a caller that opens the journal
        next, which cuts it and says so itself (bytes dropped, backup).
        """
        problems = []
        if self.torn_tail_bytes and torn_tail:
            problems.append(
                f"torn last record ({self.torn_tail_bytes} bytes at byte offset "
                f"{self.tail_offset}; cut, with a backup, the next time a process opens or "
                "appends to the journal)"
            )
        if self.bad_lines:
            first = self.bad_lines[0]
            where = f"line {first.line_number}, " if first.line_number else ""
            problems.append(
                f"{len(self.bad_lines)} unreadable line(s) (first: {where}byte offset "
                f"{first.offset}: '{first.excerpt}'); stop the workers and run "
                f"'hpo repair {campaign or '<campaign>'}'"
            )
        return f"journal {self.path}: " + "; ".join(problems) if problems else ""


@dataclass(frozen=True)
class RepairReport:
    """What :func:`rewrite_journal` did (``changed`` is False for a healthy journal)."""

    path: str
    changed: bool
    backup: str | None
    size_before: int
    size_after: int
    records_kept: int
    records_salvaged: int
    dropped: tuple[DroppedBytes, ...]
    studies: int
    trials: int
    #: trials not restored whole: "<study> trial <n> (<STATE>: what is missing)"
    incomplete: tuple[str, ...] = ()

    @property
    def bytes_dropped(self) -> int:
        """Bytes of the original left out of the rewritten journal."""
        return sum(d.size for d in self.dropped)

    def describe(self) -> str:
        """One line for users."""
        if not self.changed:
            return (
                f"journal {self.path}: healthy ({self.records_kept} records, "
                f"{self.studies} studies, {self.trials} trials); nothing to repair"
            )
        where = ""
        if self.dropped:
            first = self.dropped[0]
            where = f" (first: line {first.line_number}, byte offset {first.offset})"
        partial = ""
        if self.incomplete:
            shown = "; ".join(self.incomplete[:3])
            more = len(self.incomplete) - 3
            partial = (
                f"; {len(self.incomplete)} trial(s) not restored whole, their values stand "
                f"without what the dropped bytes held: {shown}"
                + (f"; and {more} more" if more > 0 else "")
            )
        return (
            f"journal {self.path}: kept {self.records_kept} records "
            f"({self.records_salvaged} recovered from damaged lines), dropped "
            f"{self.bytes_dropped} bytes in {len(self.dropped)} place(s){where}; "
            f"{self.studies} studies, {self.trials} trials; original kept as {self.backup}"
            f"{partial}"
        )


# --------------------------------------------------------------------------- records


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_journal_record(obj: Any) -> bool:
    """Whether a decoded JSON value is a record of Optuna's journal schema (see module doc)."""
    if not isinstance(obj, dict):
        return False
    op = obj.get("op_code")
    if not _is_int(op) or op not in _REQUIRED or not isinstance(obj.get("worker_id"), str):
        return False
    required = _REQUIRED[op]
    if any(key not in obj for key in required):
        return False
    if any(not _is_int(obj[key]) for key in ("study_id", "trial_id") if key in required):
        return False
    for key in ("user_attr", "system_attr"):  # replay asserts exactly one attribute
        if key in required and not (isinstance(obj[key], dict) and len(obj[key]) == 1):
            return False
    if op == _SET_TRIAL_STATE_VALUES:
        state = obj["state"]
        if not _is_int(state) or not 0 <= state <= 4:
            return False
        if state in _STATE_NEEDS and _STATE_NEEDS[state] not in obj:
            return False
    return True


def _parse_record(data: bytes) -> dict[str, Any] | None:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        return None
    return obj if is_journal_record(obj) else None


def _is_valid_line(line: bytes) -> bool:
    return line.endswith(b"\n") and _parse_record(line) is not None


def _excerpt(data: bytes) -> str:
    data = data.rstrip(b"\r\n")
    text = data[:_EXCERPT].decode("utf-8", "replace")
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text + ("..." if len(data) > _EXCERPT else "")


def _salvage(body: bytes) -> tuple[list[bytes], list[tuple[int, int]]]:
    """Split a bad line (newline removed) into valid records and dropped spans."""
    starts = []
    at = body.find(_RECORD_START, 1)
    while at > 0:
        starts.append(at)
        at = body.find(_RECORD_START, at + 1)
    bounds = [0, *starts, len(body)]
    kept: list[bytes] = []
    dropped: list[tuple[int, int]] = []
    i = 0
    while i < len(bounds) - 1:
        for j in range(i + 1, len(bounds)):
            piece = body[bounds[i] : bounds[j]]
            if _parse_record(piece) is not None:
                kept.append(piece.strip())
                i = j
                break
        else:
            if dropped and dropped[-1][1] == bounds[i]:
                dropped[-1] = (dropped[-1][0], bounds[i + 1])
            else:
                dropped.append((bounds[i], bounds[i + 1]))
            i += 1
    return kept, dropped


def _iter_records(
    f: BinaryIO,
) -> Iterator[tuple[int, int, bytes, list[bytes], list[tuple[int, int]]]]:
    """Yield (offset, line number, line, kept records, dropped spans) for every line."""
    offset = 0
    for number, line in enumerate(f, start=1):
        if _is_valid_line(line):
            yield offset, number, line, [line.rstrip(b"\r\n")], []
        else:
            kept, spans = _salvage(line.rstrip(b"\r\n") if line.endswith(b"\n") else line)
            if not kept:
                spans = [(0, len(line))]
            yield offset, number, line, kept, spans
        offset += len(line)


# --------------------------------------------------------------------------- checking


def _open_read(path: str) -> BinaryIO:
    """Open a journal for reading (a seam for tests that count the bytes read)."""
    return open(path, "rb")


def _split_tail(
    trailing: list[tuple[BadLine, bool]], last_valid_end: int, size: int
) -> tuple[int, list[BadLine]]:
    """Apply the torn-tail rule to the bad lines after the last valid record.

    Returns the tail offset and the trailing lines that count as bad lines instead.
    """
    terminated = [bad for bad, ends_in_newline in trailing if ends_in_newline]
    if not terminated or (len(terminated) == 1 and last_valid_end > 0):
        return last_valid_end, []
    fragment = [bad for bad, ends_in_newline in trailing if not ends_in_newline]
    return (fragment[0].offset if fragment else size), terminated


def _split_lines(buf: bytes, base: int) -> list[tuple[int, bytes]]:
    lines = []
    start = 0
    while start < len(buf):
        end = buf.find(b"\n", start)
        end = len(buf) if end < 0 else end + 1
        lines.append((base + start, buf[start:end]))
        start = end
    return lines


def _scan_tail(f: BinaryIO, size: int, *, find_bad: bool = True) -> tuple[int, list[BadLine], int]:
    """Read backwards from the end until the last valid record.

    Returns (tail offset, bad lines in the blocks read (if ``find_bad``), bytes read).
    """
    if size == 0:
        return 0, [], 0
    buf = b""
    start = size
    bytes_read = 0
    lines: list[tuple[int, bytes]] = []
    last = -1
    while start > 0:
        new_start = max(0, start - BLOCK)
        f.seek(new_start)
        chunk = f.read(start - new_start)
        bytes_read += len(chunk)
        buf = chunk + buf
        start = new_start
        first = 0
        if start > 0:
            newline = buf.find(b"\n")
            if newline < 0:
                continue
            first = newline + 1  # the window starts inside a line: skip its end
        lines = _split_lines(buf[first:], start + first)
        last = next((k for k in range(len(lines) - 1, -1, -1) if _is_valid_line(lines[k][1])), -1)
        if last >= 0:
            break
    numbered = start == 0  # the window covers the whole file: line numbers are known

    def bad(k: int) -> BadLine:
        offset, line = lines[k]
        return BadLine(offset, k + 1 if numbered else None, _excerpt(line), len(line))

    seen_bad = [bad(k) for k in range(last) if find_bad and not _is_valid_line(lines[k][1])]
    trailing = [(bad(k), lines[k][1].endswith(b"\n")) for k in range(last + 1, len(lines))]
    last_valid_end = lines[last][0] + len(lines[last][1]) if last >= 0 else 0
    tail_offset, more_bad = _split_tail(trailing, last_valid_end, size)
    return tail_offset, seen_bad + more_bad, bytes_read


def _scan_full(f: BinaryIO, known: tuple[int, int] = (0, 0)) -> tuple[int, int, list[BadLine], int]:
    """Read every line after the first ``known`` = (bytes, records), which are valid;
    return (valid records, tail offset, bad lines, bytes read)."""
    offset, valid = known
    f.seek(offset)
    last_valid_end = offset
    bad: list[BadLine] = []
    trailing: list[tuple[BadLine, bool]] = []
    for number, line in enumerate(f, start=valid + 1):
        if _is_valid_line(line):
            valid += 1
            last_valid_end = offset + len(line)
            bad.extend(b for b, _ in trailing)
            trailing = []
        else:
            entry = BadLine(offset, number, _excerpt(line), len(line))
            trailing.append((entry, line.endswith(b"\n")))
        offset += len(line)
    tail_offset, more_bad = _split_tail(trailing, last_valid_end, offset)
    return valid, tail_offset, bad + more_bad, offset - known[0]


def check_journal(path: str | os.PathLike[str], *, full: bool = False) -> JournalHealth:
    """Check a journal file without locking or changing it.

    The default tail check reads the last :data:`BLOCK` bytes (more only while no complete
    valid record is among them), so it costs the same on any size of journal; ``full=True``
    reads every line, counts the valid records and finds every bad line -- every line
    after a replay snapshot that fits the journal, since the records it covers were all
    read and found valid when it was taken (:mod:`storage.journal_snapshot`).

    A torn tail seen without the lock may be an append in progress; :func:`repair_tail`
    checks again under the lock.

    Raises:
        StorageError: the file does not exist or cannot be read.
    """
    p = os.fspath(path)
    try:
        with _open_read(p) as f:
            size = os.fstat(f.fileno()).st_size
            if full:
                known = journal_snapshot.verified_prefix(p) or (0, 0)
                valid, tail_offset, bad, bytes_read = _scan_full(f, known)
                size = known[0] + bytes_read
                return JournalHealth(p, size, True, valid, tail_offset, tuple(bad), bytes_read)
            tail_offset, bad, bytes_read = _scan_tail(f, size)
            return JournalHealth(p, size, False, None, tail_offset, tuple(bad), bytes_read)
    except OSError as exc:
        raise StorageError(f"journal file {p}: cannot read it: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------- locking, backups


class _LockRefresher:
    """Keep the mtime of a held lock file fresh, so waiters never break it as stale."""

    def __init__(self, lock_path: str) -> None:
        self._lock_path = lock_path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="journal-lock-refresh", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(_LOCK_REFRESH_S):
            try:
                os.utime(self._lock_path)
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def _journal_lock(path: str) -> Generator[None, None, None]:
    """Hold the journal's append lock (``<path>.lock``, as JournalFileOpenLock takes it)."""
    lock = JournalFileOpenLock(path)
    lock.acquire()
    refresher = _LockRefresher(path + _LOCK_SUFFIX)
    try:
        yield
    finally:
        refresher.stop()
        try:
            lock.release()
        except RuntimeError:
            _logger.warning("journal lock %s%s was already gone on release", path, _LOCK_SUFFIX)


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _backup_names(path: str, tag: str, extra: str = "") -> Iterator[str]:
    base = f"{path}.{tag}-{_utc_stamp()}"
    yield f"{base}{extra}.bak"
    for n in range(2, 10_000):
        yield f"{base}-{n}{extra}.bak"


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_backup(path: str, tag: str, extra: str, write: Callable[[BinaryIO], None]) -> str:
    for name in _backup_names(path, tag, extra):
        try:
            out = open(name, "xb")
        except FileExistsError:
            continue
        with out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        _fsync_dir(name)
        return name
    raise StorageError(f"journal file {path}: no free backup name for {tag}")


def _link_backup(path: str, tag: str) -> str:
    """Keep the current file as a backup: a hard link, else a copy."""
    for name in _backup_names(path, tag):
        try:
            os.link(path, name)
        except FileExistsError:
            continue
        except OSError:
            if os.path.exists(name):
                continue
            return _write_backup(path, tag, "", lambda out: _copy_into(path, out))
        _fsync_dir(name)
        return name
    raise StorageError(f"journal file {path}: no free backup name for {tag}")


def _copy_into(path: str, out: BinaryIO) -> None:
    with open(path, "rb") as src:
        shutil.copyfileobj(src, out, 1024 * 1024)


# --------------------------------------------------------------------------- tail repair


def _repair_tail_locked(path: str) -> int:
    """Cut a torn tail; the caller holds the journal's append lock. Returns bytes dropped."""
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        tail_offset, _, _ = _scan_tail(f, size, find_bad=False)
        if tail_offset >= size:
            return 0
        f.seek(tail_offset)
        tail = f.read(size - tail_offset)
        kept: list[bytes] = []
        dropped = 0
        for _, line in _split_lines(tail, 0):
            records, spans = _salvage(line.rstrip(b"\r\n") if line.endswith(b"\n") else line)
            kept.extend(records)
            dropped += sum(end - start for start, end in spans) if records else len(line)
        if size <= WHOLE_BACKUP_LIMIT:
            backup = _write_backup(path, "torn", "", lambda out: _copy_into(path, out))
        else:
            extra = f".tail-at-{tail_offset}"
            backup = _write_backup(path, "torn", extra, lambda out: out.write(tail))
        f.truncate(tail_offset)
        f.seek(tail_offset)
        f.write(b"".join(record + b"\n" for record in kept))
        f.flush()
        os.fsync(f.fileno())
    recovered = f"; kept {len(kept)} complete record(s) found in it" if kept else ""
    _logger.warning(
        "journal %s: dropped %d bytes of a torn last record at byte offset %d "
        "(an interrupted append)%s; backup: %s",
        path,
        dropped,
        tail_offset,
        recovered,
        backup,
    )
    return dropped


def repair_tail(path: str | os.PathLike[str]) -> int:
    """Cut a torn tail (see the module doc), under the journal's append lock.

    The file is backed up first (whole up to :data:`WHOLE_BACKUP_LIMIT` bytes, else the
    dropped tail only); complete records found inside the tail are kept. Logs one warning
    line with the bytes dropped and the backup's path. Returns the bytes dropped (0 when
    the tail is clean, checked again under the lock).

    Raises:
        StorageError: the file does not exist.
        OSError: the file cannot be locked, read or written.
    """
    p = os.fspath(path)
    if check_journal(p).torn_tail_bytes == 0:
        return 0
    with _journal_lock(p):
        return _repair_tail_locked(p)


# --------------------------------------------------------------------------- opening


def _unreadable_error(path: str, campaign: str | None, cause: BaseException | None) -> StorageError:
    """A one-line error naming the first bad line (a full scan: only on the error path)."""
    hint = (
        f"stop the workers and run 'hpo repair {campaign or '<campaign>'}' "
        "(it keeps a backup of the journal)"
    )
    try:
        health = check_journal(path, full=True)
    except StorageError:
        health = None
    if health is not None and health.bad_lines:
        first = health.bad_lines[0]
        more = f"; {len(health.bad_lines)} such lines in all" if len(health.bad_lines) > 1 else ""
        return StorageError(
            f"journal file {path}: line {first.line_number} (byte offset {first.offset}, "
            f"{first.size} bytes) is not a journal record: '{first.excerpt}'{more}; {hint}"
        )
    reason = str(cause).splitlines()[0] if cause is not None and str(cause) else "unreadable"
    return StorageError(f"journal file {path}: cannot be read ({reason}); {hint}")


class GuardedJournalFileBackend(JournalFileBackend, BaseJournalSnapshot):
    """:class:`~optuna.storages.journal.JournalFileBackend` that never appends onto a torn tail.

    Before each append, under the append lock, it checks the last block of the file and
    cuts a torn tail (with a backup, see :func:`repair_tail`); a read that meets a bad line
    raises a one-line :class:`~storage.errors.StorageError` naming it and ``hpo repair``
    instead of ``JSONDecodeError``. The file format, the lock and pickling are Optuna's.

    It also keeps a replay snapshot next to the journal (:mod:`storage.journal_snapshot`,
    Optuna's ``BaseJournalSnapshot`` hook): opening a large journal loads the state and
    replays only the records after it.
    """

    def __init__(
        self,
        file_path: str,
        lock_obj: BaseJournalFileLock | None = None,
        *,
        campaign: str | None = None,
    ) -> None:
        super().__init__(file_path, lock_obj=lock_obj or JournalFileOpenLock(file_path))
        self._campaign = campaign

    def load_snapshot(self) -> bytes | None:
        found = journal_snapshot.read(self._file_path)
        if found is None:
            return None
        header, state = found
        # where the records after the snapshot start: Optuna's reader seeks there
        self._log_number_offset[int(header["records"])] = int(header["offset"])
        return state

    def save_snapshot(self, snapshot: bytes) -> None:
        # Optuna calls this right after reading to the end of the journal, so the last
        # record number it knows an offset for is the number of records in the state.
        records = max(self._log_number_offset)
        journal_snapshot.write(self._file_path, snapshot, records, self._log_number_offset[records])

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        try:
            yield from super().read_logs(log_number_from)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, "Invalid log format."
            raise _unreadable_error(self._file_path, self._campaign, exc) from exc

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        # Optuna's append (one write, flush, fsync under the lock), after a tail check.
        data = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        self._lock.acquire()
        try:
            _repair_tail_locked(self._file_path)
            with open(self._file_path, "ab") as f:
                f.write(data.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        finally:
            self._lock.release()


def open_journal_storage(
    path: str | os.PathLike[str], *, campaign: str | None = None
) -> JournalStorage:
    """Open a journal file as an Optuna storage, cutting a torn tail first.

    A tail check only (see :func:`check_journal`): a torn tail is repaired under the lock
    (:func:`repair_tail`) before anything is appended; where the journal cannot be written
    (a read-only mount) the torn tail is left, with a warning, since readers skip it. The
    storage uses :class:`GuardedJournalFileBackend` with ``JournalFileOpenLock``, i.e. the
    file format and lock of ``storage.urls``. ``campaign`` only names the campaign in the
    ``hpo repair`` hint of errors.

    Raises:
        StorageError: a bad line before the end of the journal (one line naming the file,
            the line and byte offset and ``hpo repair``), or the file cannot be opened.
    """
    p = os.fspath(path)
    try:
        Path(p).parent.mkdir(parents=True, exist_ok=True)
        if os.path.exists(p):
            health = check_journal(p)
            if health.bad_lines:
                raise _unreadable_error(p, campaign, None)
            if health.torn_tail_bytes:
                try:
                    repair_tail(p)
                except OSError as exc:
                    if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                        raise
                    _logger.warning(
                        "journal %s: cannot cut its torn last record (%s); reading only",
                        p,
                        exc.strerror or exc,
                    )
        backend = GuardedJournalFileBackend(p, JournalFileOpenLock(p), campaign=campaign)
        with bulk_read():  # replay builds millions of objects, none of them cyclic
            return optuna.storages.JournalStorage(backend)
    except OSError as exc:
        raise StorageError(f"journal file {p}: cannot open it: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------- rewrite


class _RecordsBackend(BaseJournalBackend):
    """Read-only journal backend over records parsed from a file (for verification)."""

    def __init__(self, records: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self._records = records
        self._count: int | None = None

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        if self._count is not None and log_number_from >= self._count:
            return
        count = 0
        for count, record in enumerate(self._records(), start=1):
            if count > log_number_from:
                yield record
        self._count = count

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        raise StorageError("verification storage is read-only")


def _kept_records(path: str, stop: int | None = None) -> Iterator[dict[str, Any]]:
    """The records :func:`rewrite_journal` keeps, parsed from the original (up to ``stop``)."""
    with open(path, "rb") as f:
        for offset, _, _, kept, _ in _iter_records(f):
            if stop is not None and offset >= stop:
                return
            for record in kept:
                yield json.loads(record)


def _snapshot(storage: optuna.storages.BaseStorage) -> dict[str, tuple[Any, list[FrozenTrial]]]:
    snap = {}
    for study in storage.get_all_studies():
        study_id = storage.get_study_id_from_name(study.study_name)
        snap[study.study_name] = (
            list(study.directions),
            storage.get_all_trials(study_id, deepcopy=False),
        )
    return snap


def _verify(original: str, rewritten: str, expected: int, first_drop: int | None) -> str | None:
    """Check the rewritten journal against the valid records; return what differs, or None."""
    try:
        read = sum(1 for _ in JournalFileBackend(rewritten).read_logs(0))
        if read != expected:
            return f"Optuna reads {read} records of the {expected} written"
        got = _snapshot(JournalStorage(JournalFileBackend(rewritten)))
        want = _snapshot(JournalStorage(_RecordsBackend(lambda: _kept_records(original))))
        if got != want:
            return "Optuna's replay differs from the replay of the valid records"
        if first_drop is None:
            return None
        before = _snapshot(
            JournalStorage(_RecordsBackend(lambda: _kept_records(original, first_drop)))
        )
    except Exception as exc:  # any failure means "do not replace"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    for name, (directions, trials) in before.items():
        if name not in got:
            continue  # deleted by a later record
        if got[name][0] != directions:
            return f"study {name!r} changed its directions"
        now = {t.number: t for t in got[name][1]}
        for trial in trials:
            if trial.number not in now:
                return f"study {name!r} lost trial {trial.number}"
            if trial.state.is_finished() and now[trial.number] != trial:
                return f"study {name!r}: finished trial {trial.number} changed"
    return None


def rewrite_journal(path: str | os.PathLike[str]) -> RepairReport:
    """Rewrite a journal with only its valid records (what ``hpo repair`` runs).

    Under the journal's append lock: copy every valid record (see the module doc) into a
    temporary file next to it, fsync it, verify it -- Optuna reads exactly the records
    written, its replay equals the replay of the valid records, and every study and
    finished trial readable before the first bad line is unchanged -- then keep the
    original as ``<name>.repair-<UTC>.bak`` and move the new file into place (``os.replace``,
    directory fsynced). A healthy journal is left as it is (``changed`` False, no backup).

    Raises:
        StorageError: the file does not exist, or the rewritten journal failed the
            verification (the original is then left untouched).
        OSError: the file cannot be locked, read or written.
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise StorageError(f"journal file {p} does not exist")
    tmp = f"{p}.repair-{os.getpid()}.tmp"
    with _journal_lock(p):
        try:
            return _rewrite_locked(p, tmp)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _rewrite_locked(path: str, tmp: str) -> RepairReport:
    kept = salvaged = 0
    dropped: list[DroppedBytes] = []
    named: set[int] = set()  # trial ids found in the dropped bytes
    changed = False
    first_drop: int | None = None
    with open(path, "rb") as src, open(tmp, "wb") as out:
        size_before = os.fstat(src.fileno()).st_size
        for offset, number, line, records, spans in _iter_records(src):
            if not spans and records and line.endswith(b"\n"):
                out.write(line)  # a valid line, byte for byte
                kept += 1
                continue
            changed = True
            if first_drop is None:
                first_drop = offset
            for record in records:
                out.write(record + b"\n")
            kept += len(records)
            if not (len(records) == 1 and not spans):  # not just a missing newline
                salvaged += len(records)
            for start, end in spans:
                excerpt = _excerpt(line[start:end])
                dropped.append(DroppedBytes(offset + start, number, end - start, excerpt))
                named.update(int(i) for i in _TRIAL_ID.findall(line[start:end]))
        out.flush()
        os.fsync(out.fileno())
        size_after = out.tell()
    if not changed:
        snap = _snapshot(JournalStorage(JournalFileBackend(path)))
        trials = sum(len(trials) for _, trials in snap.values())
        return RepairReport(
            path, False, None, size_before, size_before, kept, 0, (), len(snap), trials
        )
    problem = _verify(path, tmp, kept, first_drop)
    if problem is not None:
        raise StorageError(
            f"journal file {path}: the rewritten journal failed verification ({problem}); "
            "the original was left unchanged"
        )
    before = _snapshot(JournalStorage(_RecordsBackend(lambda: _kept_records(path, first_drop))))
    backup = _link_backup(path, "repair")
    os.replace(tmp, path)
    _fsync_dir(path)
    journal_snapshot.remove(path)  # its offsets belong to the old file
    snap = _snapshot(JournalStorage(JournalFileBackend(path)))
    report = RepairReport(
        path=path,
        changed=True,
        backup=backup,
        size_before=size_before,
        size_after=size_after,
        records_kept=kept,
        records_salvaged=salvaged,
        dropped=tuple(dropped),
        studies=len(snap),
        trials=sum(len(trials) for _, trials in snap.values()),
        incomplete=_not_whole(snap, before, named),
    )
    _logger.warning("%s", report.describe())
    return report


def _not_whole(after: dict, before: dict, named: set[int]) -> tuple[str, ...]:
    """Trials the rewrite could not restore whole (see :class:`RepairReport`).

    Only trials not yet finished where the first bad line starts can have lost a record.
    Of those: a COMPLETE trial without a parameter that most other COMPLETE trials of its
    study have (its ``set_trial_param`` record was dropped), and any trial whose id is
    in the dropped bytes (a damaged record that still shows it).
    """
    found = []
    for name, (_, trials) in after.items():
        finished = {t.number for t in before.get(name, ((), []))[1] if t.state.is_finished()}
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        for trial in trials:
            if trial.number in finished:
                continue
            others = [t for t in complete if t.number != trial.number]
            usual = {p for t in others for p in t.params}
            usual = {p for p in usual if 2 * sum(p in t.params for t in others) > len(others)}
            is_complete = trial.state == TrialState.COMPLETE
            missing = sorted(usual - set(trial.params)) if is_complete else []
            why = [f"no {', '.join(missing)}"] if missing else []
            if trial._trial_id in named:
                why.append("a dropped record named it")
            if why:
                found.append(f"{name} trial {trial.number} ({trial.state.name}: {'; '.join(why)})")
    return tuple(found)
