"""workers: the trial loop, exactness, errors, signals, SIGKILL recovery, concurrency."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from _storage_fixtures import unique_name
from optuna.trial import TrialState

from storage.leases import FAIL_REASON, REQUEUED_FROM
from storage.urls import open_storage
from workers.local import run_local
from workers.worker import ERROR_ATTR, SURPLUS_ATTR, run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)
NOOP = Path(__file__).with_name("_noop_worker.py")


def _x(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


def _sampler(name: str) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=0)


def _fast(storage, targets, objective=_x, **kw):
    opts = dict(sampler_factory=_sampler, worker_id="w0", poll=0.1, lease_interval=0.5)
    opts.update(kw)
    return run_worker(storage, targets, objective, lease_expiry=2.0, **opts)


def _states(study: optuna.Study) -> list[TrialState]:
    return [t.state for t in study.get_trials()]


def test_reaches_targets_of_several_studies(url, study):
    other = optuna.create_study(study_name=unique_name(), storage=study._storage)
    summary = _fast(url, {study.study_name: 4, other.study_name: 2})
    assert summary.exit_code == 0 and summary.completed == 6
    assert _states(study) == [TrialState.COMPLETE] * 4
    assert _states(other) == [TrialState.COMPLETE] * 2


def test_surplus_trial_is_not_run(study):
    for value in (0.1, 0.2):
        trial = study.ask()
        study.tell(trial, value)
    busy = study.ask()  # "another worker" runs trial 2 with a fresh lease
    from storage.leases import Lease

    study.enqueue_trial({"x": 0.9})  # a duplicate re-enqueue: would make 4 COMPLETE
    calls = []

    def objective(trial):
        calls.append(trial.number)
        return _x(trial)

    with Lease(study, busy, worker_id="other", interval=0.2, expiry=5):
        threading.Timer(1.0, study.tell, args=(busy, 0.5)).start()
        summary = _fast(study._storage, {study.study_name: 3}, objective)
    assert calls == [] and summary.surplus == 1 and summary.exit_code == 0
    assert _states(study) == [TrialState.COMPLETE] * 3 + [TrialState.FAIL]
    assert study.trials[3].system_attrs[SURPLUS_ATTR] is True


def test_repeated_error_stops_loudly(study):
    def broken(trial):
        raise FileNotFoundError("data file /nope/events.h5 is missing")

    summary = _fast(study._storage, {study.study_name: 10}, broken)
    assert summary.exit_code == 1 and summary.failed == 3
    assert "/nope/events.h5 is missing" in summary.message
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 3  # nothing re-queued
    assert all("FileNotFoundError" in t.system_attrs[ERROR_ATTR] for t in trials)


def test_fatal_error_stops_at_once_and_requeues_the_trial(study):
    """A user's input error (e.g. a replaced data file) fails no trial: it is re-queued."""

    class InputError(ValueError):
        pass

    def broken(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        raise InputError("data.h5: column 'mj1' is negative in 3 row(s)")

    summary = _fast(study._storage, {study.study_name: 5}, broken, fatal=(InputError,))
    assert summary.exit_code == 2 and summary.failed == 0
    assert summary.message == "data.h5: column 'mj1' is negative in 3 row(s)"
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]  # once, re-queued
    assert ERROR_ATTR not in trials[0].system_attrs
    assert trials[1].system_attrs["fixed_params"] == trials[0].params
    # the same error, not declared fatal, fails trial after trial until the repeat limit
    summary = _fast(study._storage, {study.study_name: 5}, broken)
    assert summary.exit_code == 1 and summary.failed == 3


def test_stop_event_and_bad_targets(study):
    stop = threading.Event()

    def objective(trial):
        stop.set()
        return _x(trial)

    summary = _fast(study._storage, {study.study_name: 5}, objective, stop_event=stop)
    assert summary.completed == 1 and summary.exit_code == 0
    with pytest.raises(ValueError, match="targets"):
        _fast(study._storage, {study.study_name: -1})
    with pytest.raises(Exception, match="does not exist"):
        _fast(study._storage, {"no-such-study": 1})


def _worker(url, name, target, wid, tmp_path, *, sleep=0.0, extra=()):
    argv = [sys.executable, str(NOOP), "--storage", url, "--study", name]
    argv += ["--target", str(target), "--worker-id", wid, "--sleep", str(sleep)]
    argv += ["--summary", str(tmp_path / f"{wid}.json"), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_started(proc) -> None:
    for line in proc.stdout:
        if line.startswith("START"):
            return
    raise AssertionError(f"worker exited with {proc.wait()} before starting a trial")


def test_sigkilled_worker_trial_is_recovered(url, study, tmp_path):
    dead = _worker(url, study.study_name, 3, "dead", tmp_path, sleep=60)
    _wait_started(dead)
    dead.kill()
    dead.wait()
    alive = _worker(url, study.study_name, 3, "alive", tmp_path, sleep=0.05)
    out, _ = alive.communicate(timeout=60)
    assert alive.returncode == 0, out
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    lost = trials[0]
    assert lost.state == TrialState.FAIL and "dead" in lost.system_attrs[FAIL_REASON]
    rerun = [t for t in complete if t.user_attrs.get(REQUEUED_FROM) == 0]
    assert len(rerun) == 1 and rerun[0].params == lost.params
    assert json.loads((tmp_path / "alive.json").read_text())["recovered"] == 1


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGUSR1, 138)],
)
def test_signal_requeues_running_trial(url, study, tmp_path, sig, code):
    proc = _worker(url, study.study_name, 2, "sig", tmp_path, sleep=60)
    _wait_started(proc)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == code, out
    assert signal.Signals(sig).name in out  # the worker logged what happened
    first, queued = study.get_trials()
    assert (
        first.state == TrialState.FAIL
        and signal.Signals(sig).name in first.system_attrs[FAIL_REASON]
    )
    assert queued.state == TrialState.WAITING and queued.user_attrs[REQUEUED_FROM] == 0
    assert queued.system_attrs["fixed_params"] == first.params


def test_concurrent_workers_exact_count(url, study, tmp_path):
    target, n = 40, 8
    procs = [_worker(url, study.study_name, target, f"w{i}", tmp_path) for i in range(n)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * n, outs
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == target
    summaries = [json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(n)]
    assert sum(s["completed"] for s in summaries) == target
    best = {tuple(s["best"]) for s in summaries}
    assert best == {(study.best_trial.number, study.best_value)}


def test_run_local_logs_progress_and_forwards_sigterm(tmp_path):
    url = f"journal://{tmp_path}/optuna.journal"
    name = unique_name()
    study = optuna.create_study(study_name=name, storage=open_storage(url))

    def argv(i: int) -> list[str]:
        return [sys.executable, str(NOOP), "--storage", url, "--study", name, "--target", "4"]

    def progress() -> str:
        return f"{name}: {len(study.get_trials(states=(TrialState.COMPLETE,)))}/4"

    def worker_argv(i: int) -> list[str]:
        return [*argv(i), "--worker-id", f"l{i}"]

    stream = io.StringIO()
    run = run_local(2, worker_argv, progress, log_dir=tmp_path / "logs", poll=0.2, stream=stream)
    assert run.exit_code == 0 and run.codes == (0, 0) and run.interrupted is None
    assert stream.getvalue().strip().splitlines()[-1].startswith(f"{name}: 4/4")
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["worker-0.log", "worker-1.log"]

    # SIGTERM to the parent is forwarded: the children re-queue their trials and exit 143.
    def slow_argv(i: int) -> list[str]:
        return [*argv(i), "--target", "10", "--worker-id", f"s{i}", "--sleep", "60"]

    def stop_when_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(study.get_trials(states=(TrialState.RUNNING,))) == 2:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.2)

    threading.Thread(target=stop_when_running, daemon=True).start()
    run = run_local(2, slow_argv, progress, log_dir=tmp_path / "logs", poll=0.2, stream=stream)
    assert run.exit_code == 143 and run.interrupted == signal.SIGTERM
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 2


def test_stale_trial_looks_spread_over_the_running_workers(monkeypatch):
    """With 80 trials running (80 workers), one worker looks for stale trials about every
    80 / RECOVERERS lease intervals: the study gets ~RECOVERERS looks per interval in all."""
    import workers.worker as worker_module
    from storage.leases import LEASE_EXPIRES

    study = optuna.create_study()
    for _ in range(80):  # other workers' trials, leases valid for an hour
        trial = study.ask()
        study._storage.set_trial_system_attr(trial._trial_id, LEASE_EXPIRES, time.time() + 3600)
    looks = []
    real = worker_module.recover_stale_trials
    monkeypatch.setattr(
        worker_module, "recover_stale_trials", lambda *a, **k: looks.append(1) or real(*a, **k)
    )
    stop = threading.Event()
    threading.Timer(2.0, stop.set).start()

    def objective(trial):
        time.sleep(0.02)
        return trial.suggest_float("x", 0, 1)

    run_worker(
        study._storage,
        {study.study_name: 10_000},
        objective,
        sampler_factory=lambda name: optuna.samplers.RandomSampler(seed=0),
        worker_id="w",
        stop_event=stop,
        lease_interval=0.1,
        lease_expiry=10.0,
    )
    # 2 s = 20 intervals; alone it would look 20 times, spread over 80 workers 2 times
    assert 1 <= len(looks) <= 4
