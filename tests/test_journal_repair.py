"""Torn and damaged journal files (issue 11 §2): detection, tail repair, rewrite, locking.

Every test works on real Optuna journal files in ``tmp_path`` and first shows what plain
Optuna 5 does with the same bytes.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage
from optuna.storages.journal._storage import JournalOperation

from storage import journal
from storage.errors import StorageError
from storage.journal import (
    BLOCK,
    check_journal,
    is_journal_record,
    open_journal_storage,
    repair_tail,
    rewrite_journal,
)

STUDY = "s"
# A record of another worker: what gets glued onto a torn line, or appended concurrently.
NOTE = b'{"op_code":2,"worker_id":"other-1","study_id":0,"user_attr":{"note":"glued"}}\n'


@pytest.fixture(autouse=True)
def _quiet_optuna():
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(level)


def plain(path: Path) -> JournalStorage:
    """The storage as storage/urls.py opens it today."""
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return JournalStorage(backend)


def make_journal(path: Path, n_trials: int = 5) -> Path:
    """A finished study with ``n_trials`` COMPLETE trials."""
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(study_name=STUDY, storage=plain(path), sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n_trials)
    return path


def ask_tell(storage: optuna.storages.BaseStorage) -> int:
    """What a worker does: ask a trial, suggest, tell. Returns the trial number."""
    study = optuna.load_study(study_name=STUDY, storage=storage)
    trial = study.ask()
    study.tell(trial, trial.suggest_float("x", 0, 1))
    return trial.number


def states(storage: optuna.storages.BaseStorage) -> list[tuple[int, str]]:
    study = optuna.load_study(study_name=STUDY, storage=storage)
    return [(t.number, t.state.name) for t in study.trials]


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def backups(path: Path, tag: str) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.{tag}-*.bak"))


def torn_copy(good: Path, path: Path) -> bytes:
    """``truncate -s -40`` of a copy; returns the torn bytes."""
    shutil.copy(good, path)
    os.truncate(path, path.stat().st_size - 40)
    return path.read_bytes()


COMPLETE5 = [(n, "COMPLETE") for n in range(5)]
# The COMPLETE record of trial 4 is the one that `truncate -s -40` tears.
TORN5 = [*COMPLETE5[:4], (4, "RUNNING")]


# --------------------------------------------------------------------------- 1. torn tail


def test_torn_tail_breaks_plain_optuna_and_is_repaired_on_open(tmp_path, caplog):
    good = make_journal(tmp_path / "good.journal")

    # Plain Optuna 5.0 on `truncate -s -40`: the torn line is skipped silently ...
    broken = tmp_path / "plain.journal"
    torn_copy(good, broken)
    assert states(plain(broken)) == TORN5
    # ... a worker's first append is glued onto it, so its own CREATE_TRIAL is never read
    # back and `ask` fails inside Optuna ...
    with pytest.raises(AttributeError, match="_last_created_trial_id_by_this_process"):
        ask_tell(plain(broken))
    assert states(plain(broken)) == TORN5  # the glued line is skipped while it is last
    # ... and from the next append on every reader fails.
    with pytest.raises(json.JSONDecodeError):
        ask_tell(plain(broken))
    with pytest.raises(json.JSONDecodeError):
        plain(broken)

    # The same with open_journal_storage.
    path = tmp_path / "optuna.journal"
    torn = torn_copy(good, path)
    fragment = len(torn) - (torn.rindex(b"\n") + 1)
    with caplog.at_level(logging.WARNING, logger="storage.journal"):
        storage = open_journal_storage(path)
    assert check_journal(path).ok  # cut on open, before anything is appended
    assert ask_tell(storage) == 5
    assert states(open_journal_storage(path)) == [*TORN5, (5, "COMPLETE")]
    assert states(plain(path)) == [*TORN5, (5, "COMPLETE")]
    assert check_journal(path, full=True).ok

    [backup] = backups(path, "torn")
    assert backup.read_bytes() == torn
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"dropped {fragment} bytes" in warning
    assert str(backup) in warning
    assert "\n" not in warning


def test_tail_torn_while_storage_is_open_is_cut_before_the_next_append(tmp_path, caplog):
    path = make_journal(tmp_path / "optuna.journal")
    storage = open_journal_storage(path)
    assert ask_tell(storage) == 5
    # Another worker is killed in the middle of an append.
    with open(path, "ab") as f:
        f.write(NOTE[:30])
    with caplog.at_level(logging.WARNING, logger="storage.journal"):
        assert ask_tell(storage) == 6  # plain Optuna: AttributeError here, then JSONDecodeError
        assert ask_tell(storage) == 7
    assert states(plain(path)) == [(n, "COMPLETE") for n in range(8)]
    assert len(backups(path, "torn")) == 1
    assert "dropped 30 bytes" in caplog.text


def test_glued_record_in_the_tail_is_kept(tmp_path, caplog):
    """A torn line with a complete record glued on: the fragment goes, the record stays."""
    good = make_journal(tmp_path / "good.journal")
    path = tmp_path / "optuna.journal"
    *head, last = lines(good)  # `last`: the COMPLETE record of trial 4
    path.write_bytes(b"".join(head) + last[:-40] + last)
    assert states(plain(path)) == TORN5  # plain Optuna skips the glued line: result lost

    with caplog.at_level(logging.WARNING, logger="storage.journal"):
        storage = open_journal_storage(path)
    assert states(storage) == COMPLETE5
    assert f"dropped {len(last) - 40} bytes" in caplog.text
    assert "kept 1 complete record" in caplog.text
    assert path.read_bytes() == good.read_bytes()


def test_complete_last_record_without_newline_is_completed_not_dropped(tmp_path):
    good = make_journal(tmp_path / "good.journal")
    path = tmp_path / "optuna.journal"
    path.write_bytes(good.read_bytes()[:-1])
    assert states(plain(path)) == TORN5  # plain Optuna skips it; the next append glues
    assert check_journal(path).torn_tail_bytes == len(lines(good)[-1]) - 1

    assert repair_tail(path) == 0  # nothing dropped: the newline is added
    assert path.read_bytes() == good.read_bytes()
    assert states(open_journal_storage(path)) == COMPLETE5
    assert len(backups(path, "torn")) == 1


def test_large_journal_backs_up_only_the_dropped_tail(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "WHOLE_BACKUP_LIMIT", 1000)  # "large" = over 1000 bytes
    path = tmp_path / "optuna.journal"
    torn = torn_copy(make_journal(tmp_path / "good.journal"), path)
    offset = torn.rindex(b"\n") + 1
    assert repair_tail(path) == len(torn) - offset
    [backup] = backups(path, "torn")
    assert backup.name.endswith(f".tail-at-{offset}.bak")
    assert path.read_bytes() + backup.read_bytes() == torn  # head -c offset + backup = original
    assert states(open_journal_storage(path)) == TORN5


# --------------------------------------------------------------------------- 2. bad line inside


def damaged_journal(tmp_path: Path) -> tuple[Path, Path, list[int]]:
    """A journal with garbage and a glued line in the middle; returns (path, good, offsets)."""
    good = make_journal(tmp_path / "good.journal", n_trials=6)
    records = lines(good)
    garbage = b"\x00\x00garbage after a crash\n"
    glued = records[5][:25] + NOTE  # a torn record with another worker's record glued on
    damaged = [*records[:6], garbage, *records[6:12], glued, *records[12:]]
    path = tmp_path / "optuna.journal"
    path.write_bytes(b"".join(damaged))
    offsets = [sum(map(len, damaged[:6])), sum(map(len, damaged[:13]))]
    return path, good, offsets


def test_bad_line_inside_is_reported_and_rewrite_keeps_every_valid_record(tmp_path):
    path, good, (off_garbage, off_glued) = damaged_journal(tmp_path)
    original = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):  # NUL bytes: json guesses UTF-32; not even deferred
        plain(path)

    with pytest.raises(StorageError) as error:
        open_journal_storage(path, campaign="camp-1")
    message = str(error.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"line 7 (byte offset {off_garbage}" in message
    assert "2 such lines" in message
    assert "hpo repair camp-1" in message
    assert path.read_bytes() == original  # nothing touched

    health = check_journal(path, full=True)
    assert [(b.offset, b.line_number) for b in health.bad_lines] == [
        (off_garbage, 7),
        (off_glued, 14),
    ]
    assert health.valid_records == len(lines(good)) and health.torn_tail_bytes == 0

    report = rewrite_journal(path)
    assert report.changed
    assert report.records_kept == len(lines(good)) + 1  # + the glued record
    assert report.records_salvaged == 1
    assert [(d.offset, d.line_number, d.size) for d in report.dropped] == [
        (off_garbage, 7, len(b"\x00\x00garbage after a crash\n")),
        (off_glued, 14, 25),
    ]
    assert Path(report.backup).read_bytes() == original
    assert report.studies == 1 and report.trials == 6
    assert "\n" not in report.describe()

    study = optuna.load_study(study_name=STUDY, storage=open_journal_storage(path))
    want = optuna.load_study(study_name=STUDY, storage=plain(good))
    assert [(t.number, t.state, t.params, t.values) for t in study.trials] == [
        (t.number, t.state, t.params, t.values) for t in want.trials
    ]
    assert study.user_attrs == {"note": "glued"}
    assert check_journal(path, full=True).ok
    # The valid lines before the first bad line are byte-identical (live read offsets hold).
    assert path.read_bytes()[:off_garbage] == original[:off_garbage]
    assert not rewrite_journal(path).changed  # idempotent: a healthy journal is left alone


def test_bad_line_met_by_an_open_storage_is_a_one_line_storage_error(tmp_path):
    path = make_journal(tmp_path / "optuna.journal")
    ours, theirs = open_journal_storage(path, campaign="camp-1"), plain(path)
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"not json\n" + NOTE)
    with pytest.raises(json.JSONDecodeError):
        states(theirs)
    with pytest.raises(StorageError, match=rf"line 17 \(byte offset {size}.*hpo repair camp-1"):
        states(ours)


# --------------------------------------------------------------------------- 3. locking

_HOLDER = """
import pathlib, sys, time
from optuna.storages.journal import JournalFileOpenLock
path, ready, record = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3].encode()
lock = JournalFileOpenLock(path)
lock.acquire()
with open(path, "ab") as f:  # an append in progress: half a record, then the rest
    f.write(record[:30])
    f.flush()
    ready.touch()
    time.sleep(1.5)
    f.write(record[30:])
lock.release()
"""


@pytest.mark.parametrize("repair", [repair_tail, rewrite_journal], ids=["tail", "rewrite"])
def test_repair_waits_for_an_append_in_progress(tmp_path, repair):
    path = make_journal(tmp_path / "optuna.journal")
    if repair is rewrite_journal:  # give the rewrite something to do
        records = lines(path)
        path.write_bytes(b"".join([*records[:4], b"garbage\n", *records[4:]]))
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(ready), NOTE.decode()],
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        assert check_journal(path).torn_tail_bytes == 30  # what a lock-free repair would cut
        started = time.monotonic()
        repair(path)
        waited = time.monotonic() - started
    finally:
        assert holder.wait(timeout=60) == 0
    assert waited > 0.5  # it waited for the lock (the holder keeps it for 1.5 s)
    assert lines(path)[-1] == NOTE
    assert check_journal(path, full=True).ok
    assert optuna.load_study(study_name=STUDY, storage=plain(path)).user_attrs == {"note": "glued"}
    assert not Path(f"{path}.lock").exists()


# --------------------------------------------------------------------------- 4. checking


class _CountingReader:
    """A file wrapper that counts the bytes read through it."""

    total = 0

    def __init__(self, f):
        self._f = f

    def read(self, n=-1):
        data = self._f.read(n)
        _CountingReader.total += len(data)
        return data

    def __iter__(self):
        for line in self._f:
            _CountingReader.total += len(line)
            yield line

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


def test_check_journal_healthy_and_cheap_on_a_large_journal(tmp_path, monkeypatch):
    path = make_journal(tmp_path / "optuna.journal")
    health = check_journal(path)
    assert health.ok and health.torn_tail_bytes == 0 and health.bad_lines == ()
    assert health.describe() == ""
    full = check_journal(path, full=True)
    assert full.ok and full.valid_records == len(lines(path))
    assert open_journal_storage(path) is not None and not backups(path, "torn")

    # ~4 MB of valid records (500 x BLOCK).
    big = tmp_path / "big.journal"
    filler = b'{"op_code":8,"worker_id":"w","trial_id":0,"user_attr":{"k":"' + b"v" * 180 + b'"}}\n'
    n_filler = 500 * BLOCK // len(filler)
    big.write_bytes(path.read_bytes() + filler * n_filler)
    size = big.stat().st_size

    monkeypatch.setattr(journal, "_open_read", lambda p: _CountingReader(open(p, "rb")))
    _CountingReader.total = 0
    health = check_journal(big)
    assert health.ok and health.valid_records is None
    assert _CountingReader.total == health.bytes_read <= BLOCK

    with open(big, "ab") as f:
        f.write(filler[:100])
    _CountingReader.total = 0
    health = check_journal(big)
    assert health.torn_tail_bytes == 100 and health.tail_offset == size
    assert _CountingReader.total <= 2 * BLOCK

    _CountingReader.total = 0
    full = check_journal(big, full=True)
    assert full.valid_records == len(lines(path)) + n_filler and full.torn_tail_bytes == 100
    assert _CountingReader.total == size + 100


def test_garbage_everywhere_is_bad_lines_not_a_torn_tail(tmp_path):
    """A file with no journal record in it is never truncated as a 'torn tail'."""
    path = tmp_path / "notes.journal"
    path.write_bytes(b"some notes\nmore notes\n")
    health = check_journal(path)
    assert health.torn_tail_bytes == 0 and len(health.bad_lines) == 2
    with pytest.raises(StorageError, match="line 1 .*hpo repair <campaign>"):
        open_journal_storage(path)
    assert path.read_bytes() == b"some notes\nmore notes\n"


# --------------------------------------------------------------------------- record rule


def test_record_rule_covers_optunas_operations():
    assert set(journal._REQUIRED) == {int(op) for op in JournalOperation}
    ok = {"op_code": 6, "worker_id": "w", "trial_id": 1, "state": 1, "values": [0.5]}
    assert not is_journal_record(ok)  # COMPLETE needs datetime_complete
    assert is_journal_record({**ok, "datetime_complete": "2026-01-01T00:00:00+00:00"})
    assert not is_journal_record({**ok, "op_code": True})
    assert not is_journal_record({**ok, "op_code": 99})
    assert not is_journal_record({"op_code": 1, "study_id": 0})  # no worker_id
    assert not is_journal_record({"op_code": 8, "worker_id": "w", "trial_id": 0, "user_attr": {}})
    assert not is_journal_record([1, 2])


def test_storage_survives_pickling(tmp_path):
    path = make_journal(tmp_path / "optuna.journal")
    storage = pickle.loads(pickle.dumps(open_journal_storage(path)))
    assert ask_tell(storage) == 5
    assert states(plain(path)) == [(n, "COMPLETE") for n in range(6)]


def _param_line(path: Path, trial_id: int, name: str) -> bytes:
    """The journal line that set parameter ``name`` of trial ``trial_id``."""
    for line in lines(path):
        record = json.loads(line)
        if record.get("trial_id") == trial_id and record.get("param_name") == name:
            return line
    raise AssertionError(f"no {name} record of trial {trial_id}")


@pytest.mark.parametrize("damage", ["whole line", "tail of the line"])
def test_repair_names_a_complete_trial_it_could_not_restore_whole(tmp_path, damage):
    """Issue 26 §6: a COMPLETE trial that lost its `max_leaf_nodes` record stayed
    COMPLETE after `hpo repair`, unmentioned."""
    path = tmp_path / "optuna.journal"
    study = optuna.create_study(study_name=STUDY, storage=plain(path))
    study.optimize(
        lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("max_leaf_nodes", 2, 99),
        n_trials=5,
    )
    line = _param_line(path, study.trials[3]._trial_id, "max_leaf_nodes")
    bad = b"\x00\x00garbage\n" if damage == "whole line" else line[:-12] + b"\x00\n"
    path.write_bytes(path.read_bytes().replace(line, bad))

    report = rewrite_journal(path)
    restored = optuna.load_study(study_name=STUDY, storage=plain(path)).trials[3]
    assert restored.state.name == "COMPLETE" and "max_leaf_nodes" not in restored.params
    reason = "no max_leaf_nodes" + ("; a dropped record named it" if damage != "whole line" else "")
    assert report.incomplete == (f"{STUDY} trial 3 (COMPLETE: {reason})",)
    text = report.describe()
    assert "\n" not in text
    assert "1 trial(s) not restored whole, their values stand without what the dropped " in text
    assert text.endswith(f"{STUDY} trial 3 (COMPLETE: {reason})")


def test_hpo_repair_prints_the_trials_it_could_not_restore_whole(tmp_path):
    from _hpo_cli import hpo

    toml = tmp_path / "c.toml"
    toml.write_text('[campaign]\nname = "r"\nstorage = "journal:///' + f'{tmp_path}/j.journal"\n')
    path = tmp_path / "j.journal"
    study = optuna.create_study(study_name=STUDY, storage=plain(path))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("k", 2, 9), n_trials=3)
    line = _param_line(path, study.trials[1]._trial_id, "k")
    path.write_bytes(path.read_bytes().replace(line, b"\x00\x00garbage\n"))
    done = hpo("repair", str(toml))
    assert done.returncode == 0, done.stderr
    assert f"{STUDY} trial 1 (COMPLETE: no k)" in done.stdout, done.stdout
