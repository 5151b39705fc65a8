"""storage: URLs, errors, leases, recovery, artifacts -- on journal and PostgreSQL."""

from __future__ import annotations

import pickle
import re
import signal
import threading
import time
from pathlib import Path

import optuna
import pytest
from _storage_fixtures import delete_quietly, unique_name
from optuna.trial import TrialState

from storage.addresses import redact
from storage.artifacts import artifact_store, upload_file
from storage.errors import StorageError
from storage.leases import (
    FAIL_REASON,
    LEASE_EXPIRES,
    LEASE_WORKER,
    REQUEUED_FROM,
    Lease,
    recover_stale_trials,
    requeue,
)
from storage.postgres import open_postgres, upgrade
from storage.urls import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_open_reuse_and_pickle(url):
    name = unique_name()
    first = optuna.create_study(study_name=name, storage=open_storage(url))
    first.enqueue_trial({"x": 0.5})
    trial = first.ask()
    first.tell(trial, trial.suggest_float("x", 0, 1))
    # A second open of the same URL (another process would do the same) sees the trial.
    storage = open_storage(url)
    again = optuna.load_study(study_name=name, storage=storage)
    assert [t.value for t in again.trials] == [0.5]
    # Pickled storage (spawned worker processes) still works.
    clone = pickle.loads(pickle.dumps(storage))
    assert optuna.load_study(study_name=name, storage=clone).best_value == 0.5
    delete_quietly(storage, name)


def test_journal_relative_path(tmp_path):
    storage = open_storage("journal:sub/dir/optuna.journal", run_dir=tmp_path)
    optuna.create_study(study_name="s", storage=storage)
    assert (tmp_path / "sub" / "dir" / "optuna.journal").is_file()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("sqlite:///x.db", "unsupported scheme"),
        ("/tmp/optuna.journal", "plain path is not guessed"),
        ("postgresql://u@127.0.0.1:5432/db", "write the driver explicitly"),
        ("journal://relative.journal", "absolute path"),
        ("journal:relative.journal", "needs a run directory"),
        ("postgresql+psycopg2://127.0.0.1:5432/db", "user name is missing"),
        ("postgresql+psycopg2://u@127.0.0.1:5432", "database name required"),
    ],
)
def test_bad_urls(url, fragment):
    with pytest.raises(StorageError, match=fragment):
        open_storage(url)


def test_password_in_url_is_rejected_and_never_shown():
    with pytest.raises(StorageError) as info:
        open_storage("postgresql+psycopg2://wsad:s3cr3tpw@127.0.0.1:5432/wsad_hpo")
    message = str(info.value)
    assert "s3cr3tpw" not in message
    assert "PGPASSWORD" in message and "~/.pgpass" in message
    assert redact("postgresql+psycopg2://u:pw@h:1/d") == "postgresql+psycopg2://u:***@h:1/d"


def test_unreachable_postgres_port():
    url = "postgresql+psycopg2://nobody@127.0.0.1:1/nodb"
    with pytest.raises(StorageError) as info:
        open_storage(url)
    message = str(info.value)
    assert "\n" not in message
    assert url in message and "connecting failed" in message and "deploy/postgres.sh" in message
    assert info.value.__cause__ is not None


@pytest.mark.postgres
def test_wrong_password(postgres_url, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "not-the-password-7f3a")
    with pytest.raises(StorageError) as info:
        open_storage(postgres_url)
    message = str(info.value)
    assert "password authentication failed" in message and "PGPASSWORD" in message
    assert "7f3a" not in message


@pytest.mark.postgres
def test_outdated_schema_names_upgrade_command(postgres_url):
    import sqlalchemy
    from conftest import start_postgres

    url = start_postgres("wsad_test", "wsad_test_schema")
    rdb = open_postgres(url)
    head = rdb.get_current_version()
    # Put the schema back to Optuna 3.0 (before the v3.2.0.a migration added an index).
    with rdb.engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP INDEX IF EXISTS ix_trials_study_id"))
        connection.execute(sqlalchemy.text("DROP INDEX IF EXISTS trials_study_id_key"))
        connection.execute(sqlalchemy.text("UPDATE alembic_version SET version_num='v3.0.0.d'"))
    rdb.engine.dispose()
    with pytest.raises(StorageError, match="hpo db upgrade"):
        open_storage(url)
    assert upgrade(url).endswith(f"-> {head}")
    assert open_postgres(url).get_current_version() == head


def test_lease_renews_and_records_worker(study):
    trial = study.ask()
    with Lease(study, trial, worker_id="w-1", interval=0.2, expiry=0.6) as lease:
        time.sleep(1.0)  # longer than expiry: only renewal keeps it alive
        attrs = study.trials[0].system_attrs
        assert attrs[LEASE_WORKER] == "w-1"
        assert attrs[LEASE_EXPIRES] > time.time()
        assert recover_stale_trials(study) == []
    assert not lease.lost


def _blocked_signals(thread_id: int) -> set[int]:
    """The signals a thread of this process blocks (Linux: /proc/self/task/<id>/status)."""
    status = Path(f"/proc/self/task/{thread_id}/status").read_text()
    mask = int(re.search(r"SigBlk:\s*([0-9a-f]+)", status).group(1), 16)
    return {n for n in range(1, 65) if mask >> (n - 1) & 1}


def test_the_lease_thread_takes_no_signals(study):
    """A stop signal must reach the main thread, whose handler interrupts the objective;
    one the kernel gave the lease thread would wait out the objective's sleep."""
    trial = study.ask()
    with Lease(study, trial, worker_id="w-1", interval=0.2, expiry=0.6) as lease:
        in_lease = _blocked_signals(lease._thread.native_id)
        in_main = _blocked_signals(threading.get_native_id())
    stop = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}
    assert stop <= in_lease and not stop & in_main


def test_recover_expired_lease_requeues_same_params(study):
    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    with Lease(study, trial, worker_id="dead", interval=1, expiry=2):
        pass  # lease written once, then the "worker" vanishes
    assert recover_stale_trials(study) == []  # not yet expired
    assert recover_stale_trials(study, now=time.time() + 5) == [trial.number]
    old, new = study.get_trials()
    assert old.state == TrialState.FAIL and "dead" in old.system_attrs[FAIL_REASON]
    assert new.state == TrialState.WAITING and new.user_attrs[REQUEUED_FROM] == old.number
    rerun = study.ask()
    assert rerun.number == new.number and rerun.suggest_float("x", 0.0, 1.0) == x


def test_recover_trial_without_lease_after_grace(study):
    study.ask()
    assert recover_stale_trials(study, grace=60) == []
    assert recover_stale_trials(study, now=time.time() + 61, grace=60) == [0]


def test_concurrent_recoverers_requeue_once(url, study):
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    storages = [open_storage(url) for _ in range(4)]
    studies = [optuna.load_study(study_name=study.study_name, storage=s) for s in storages]
    barrier = threading.Barrier(len(studies))
    results: list[list[int]] = [[] for _ in studies]
    future = time.time() + 3600

    def recover(i: int) -> None:
        barrier.wait()
        results[i] = recover_stale_trials(studies[i], now=future, grace=1)

    threads = [threading.Thread(target=recover, args=(i,)) for i in range(len(studies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(sum(results, [])) == [0]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1


def test_requeue_survives_a_kill_between_its_two_storage_calls(study, monkeypatch):
    """Issue 11 §8: a recoverer killed after the first storage call loses no point.

    The copy is enqueued before the original is failed; the kill is injected exactly
    between the two calls. The next recoverer only fails the original: one copy, the
    same parameters, so the point is re-run once (not lost, not twice)."""
    import storage.leases as leases

    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    real_fail = leases.fail_trial

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("SIGKILL between enqueue and FAIL")

    monkeypatch.setattr(leases, "fail_trial", killed)
    with pytest.raises(KeyboardInterrupt):
        recover_stale_trials(study, now=time.time() + 3600, grace=1)
    monkeypatch.setattr(leases, "fail_trial", real_fail)
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING, TrialState.WAITING]
    assert recover_stale_trials(study, now=time.time() + 3600, grace=1) == [0]
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.WAITING]
    rerun = study.ask()
    assert rerun.user_attrs[REQUEUED_FROM] == 0 and rerun.suggest_float("x", 0.0, 1.0) == x


def test_racing_recoverers_leave_exactly_one_copy_per_trial(url, study):
    """Eight recoverers race over five stale trials (three rounds): every trial ends with
    exactly one live copy carrying its parameters; duplicates are withdrawn, never run."""
    for _ in range(3):
        before = len(study.get_trials())
        stale = []
        for _ in range(5):
            trial = study.ask()
            stale.append((trial.number, trial.suggest_float("x", 0.0, 1.0)))
        studies = [
            optuna.load_study(study_name=study.study_name, storage=open_storage(url))
            for _ in range(8)
        ]
        barrier = threading.Barrier(len(studies))

        def recover(s: optuna.Study, barrier: threading.Barrier) -> None:
            barrier.wait()
            recover_stale_trials(s, now=time.time() + 3600, grace=1)

        threads = [threading.Thread(target=recover, args=(s, barrier)) for s in studies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        trials = study.get_trials()[before:]
        for number, x in stale:
            live = [
                t
                for t in trials
                if t.user_attrs.get(REQUEUED_FROM) == number and t.state == TrialState.WAITING
            ]
            assert len(live) == 1, [(t.number, t.state, t.user_attrs) for t in trials]
            assert live[0].system_attrs["fixed_params"] == {"x": x}
        for _ in study.get_trials(states=(TrialState.WAITING,)):  # run them: next round
            trial = study.ask()
            study.tell(trial, 0.0)


def test_requeue_and_lease_lost(study):
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    with Lease(study, trial, worker_id="w", interval=0.1, expiry=5) as lease:
        requeue(study, trial.number, "test stop")
        time.sleep(0.4)
        assert lease.lost
    requeue(study, trial.number, "again")  # already finished: no second copy
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.WAITING]


def test_artifacts_round_trip(study, tmp_path):
    store = artifact_store(tmp_path / "run")
    trial = study.ask()
    for target, name in ((trial, "curves.npz"), (study, "summary.json")):
        source = tmp_path / name
        source.write_bytes(name.encode() * 10)
        artifact_id = upload_file(store, target, source)
        with store.open_reader(artifact_id) as reader:
            assert reader.read() == name.encode() * 10
    assert (tmp_path / "run" / "artifacts").is_dir()


MOUNTS = """\
sysfs /sys sysfs rw 0 0
/dev/sda1 / ext4 rw 0 0
server:/export/home /home nfs4 rw,relatime 0 0
/dev/sdb1 /home/local ext4 rw 0 0
"""


def test_journal_on_network_filesystem_is_warned_for_multi_node_campaigns(tmp_path):
    from storage.addresses import filesystem_type, shared_journal_warning

    assert filesystem_type(Path("/home/alice/run/optuna.journal"), MOUNTS) == "nfs4"
    assert filesystem_type(Path("/home/local/run/optuna.journal"), MOUNTS) == "ext4"
    assert filesystem_type(Path("/tmp/x"), MOUNTS) == "ext4"
    warning = shared_journal_warning("journal:optuna.journal", Path("/home/alice/run"), 8, MOUNTS)
    assert "network file system (nfs4)" in warning and "PostgreSQL" in warning
    assert (
        shared_journal_warning("journal:optuna.journal", Path("/home/alice/run"), 1, MOUNTS) == ""
    )
    assert shared_journal_warning("journal:x.journal", Path("/home/local/run"), 8, MOUNTS) == ""
    pg = "postgresql+psycopg2://u@h/db"
    assert shared_journal_warning(pg, Path("/home/alice/run"), 8, MOUNTS) == ""
