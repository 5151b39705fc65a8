"""Stop signals (issue 26 §2, §8): every signal reaches every child, work stops at safe points.

In process: a stop signal only sets a flag; the objective stops at its next safe point
(never inside a weakref callback, where a raise would be printed and swallowed), and a
stop that library code swallowed is raised again at the next one. End to end: SIGUSR1,
SIGTERM and SIGINT to ``hpo final -w 2`` and ``hpo run -w 2`` reach both children, which
are held mid-run by the test gate (tests/_gate.py) when the signal is sent, so what the
test sees never depends on the machine's speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import weakref
from pathlib import Path

import optuna
import pytest
from _gate import Gate, kill_leftovers, pid_exists
from _hpo_cli import REPO, hpo
from _tiny_campaign import tiny_campaign
from optuna.trial import TrialState

import hpo as _hpo  # noqa: F401  (connects the science's safe points to the stop flag)
from objectives.safepoints import safe_point
from storage.leases import FAIL_REASON, REQUEUED_FROM
from workers.signals import shielded
from workers.worker import run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _run(study: optuna.Study, objective, target: int = 3):
    return run_worker(
        study._storage,
        {study.study_name: target},
        objective,
        sampler_factory=lambda name: optuna.samplers.RandomSampler(seed=0),
        worker_id="w0",
        poll=0.1,
        lease_interval=0.5,
        lease_expiry=5.0,
    )


@pytest.fixture
def unraisable(monkeypatch) -> list:
    """Exceptions Python printed and swallowed ("Exception ignored in ..."), collected."""
    seen: list = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    return seen


@pytest.fixture
def study() -> optuna.Study:
    """An in-memory study (this module's in-process tests need no storage backend)."""
    return optuna.create_study(study_name="signals")


def _requeued(study: optuna.Study, signame: str) -> None:
    first, queued = study.get_trials()
    assert first.state == TrialState.FAIL and signame in first.system_attrs[FAIL_REASON]
    assert queued.state == TrialState.WAITING and queued.user_attrs[REQUEUED_FROM] == 0
    assert queued.system_attrs["fixed_params"] == first.params


def test_signal_inside_a_weakref_callback_stops_at_the_next_safe_point(study, unraisable):
    """Issue 26 §8: the handler ran inside a weakref callback, where its raise was printed
    and swallowed, and the worker went on. Now: no traceback, the trial stops at the
    next safe point and is re-queued, the worker exits 143."""
    steps = []

    class Model:
        pass

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        model = Model()

        def on_collect(ref) -> None:  # the handler runs here, right after os.kill
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("callback ended")

        ref = weakref.ref(model, on_collect)
        del model  # the callback runs now
        steps.append("after the callback")
        safe_point()  # e.g. the end of an epoch
        steps.append("trained on")
        return x + (ref() is None)

    summary = _run(study, objective)
    assert steps == ["callback ended", "after the callback"]
    assert not unraisable, [u.exc_value for u in unraisable]
    assert summary.exit_code == 128 + signal.SIGTERM and summary.requeued == 1
    _requeued(study, "SIGTERM")


def test_a_swallowed_stop_is_raised_again_at_the_next_safe_point(study):
    """Library code that catches everything (``except BaseException``) cannot lose it."""
    swallowed = []

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        os.kill(os.getpid(), signal.SIGUSR1)
        try:
            safe_point()  # inside library code that swallows everything
        except BaseException as exc:  # noqa: BLE001 - the point of the test
            swallowed.append(type(exc).__name__)
        safe_point()  # the next epoch's end
        return x

    summary = _run(study, objective)
    assert swallowed == ["WorkerInterrupted"]
    assert summary.exit_code == 128 + signal.SIGUSR1
    _requeued(study, "SIGUSR1")


def test_storage_writes_are_never_cut_and_the_worker_stops_after_the_trial(study):
    """Inside ``shielded`` (an objective's own storage writes) a safe point does nothing;
    the trial completes and the worker stops before the next one."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        with shielded():
            os.kill(os.getpid(), signal.SIGINT)
            safe_point()
            trial.set_user_attr("written", True)
        return x

    summary = _run(study, objective)
    assert summary.exit_code == 130 and summary.completed == 1
    assert "between trials" in summary.message
    (trial,) = study.get_trials()
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["written"]


def test_an_error_caused_by_the_stop_requeues_instead_of_failing(study, unraisable):
    """A signal that also broke the objective (here: it came during a ``__del__``, then a
    helper process it killed broke a pipe) is a stop, not a failed trial: re-queued."""

    class Pool:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        Pool()  # collected at once: the signal arrives inside __del__
        raise BrokenPipeError("the pool's worker was killed")

    summary = _run(study, objective)
    assert not unraisable, [u.exc_value for u in unraisable]
    assert summary.exit_code == 143 and summary.failed == 0
    _requeued(study, "SIGTERM")


# ----------------------------------------------------------------------------- end to end
CAMPAIGN = tiny_campaign("sig", n_trials=6, repetitions=2, n_runs=4)


@pytest.fixture(scope="module")
def created(tmp_path_factory) -> Path:
    """The campaign, created (data and study) once for the module."""
    folder = tmp_path_factory.mktemp("sig")
    path = folder / "c.toml"
    path.write_text(CAMPAIGN)
    done = hpo("create", str(path))
    assert done.returncode == 0, done.stderr
    return path


def _start(gate: Gate, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", *args],
        cwd=REPO,
        env=gate.env({**os.environ, "PYTHONWARNINGS": "ignore"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop_held(gate: Gate, proc: subprocess.Popen, sig: int, what: str):
    """Wait until both children hold a run / trial at the gate, send ``sig`` to the parent;
    returns (stdout, stderr, the children's pids)."""
    held = gate.wait_held(2, alive=lambda: proc.poll() is None, what=what)
    children = sorted({record["pid"] for record in held.values()})
    assert len(children) == 2 and proc.pid not in children, held
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        leftovers = [pid for pid in children if pid_exists(pid)]
        kill_leftovers(leftovers)
    assert not leftovers, f"children {leftovers} still ran after the parent exited"
    return out, err, children


def _one_stop_line(err: str, sig: int) -> None:
    name = signal.Signals(sig).name
    lines = [line for line in err.splitlines() if "stopped by" in line]
    assert lines == [line for line in lines if line.startswith(f"hpo: stopped by {name}; ")]
    assert len(lines) == 1 and "rerun to resume" in lines[0], err
    assert "Traceback" not in err and "failed" not in err, err


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_to_final_w2_stops_both_processes(created, tmp_path, sig):
    """Issue 26 §2: USR1 left both children of ``hpo final -w 2`` running; TERM gave exit 1
    "final process(es) [0, 1] failed (exit 143)". Now every signal reaches both, the
    command prints one line and exits 128 + signal; no claim is left behind."""
    gate = Gate(tmp_path / "gate")
    proc = _start(gate, "final", str(created), "--source", "default", "-w", "2")
    _, err, _ = _stop_held(gate, proc, sig, "final -w 2")
    assert proc.returncode == 128 + sig, err
    _one_stop_line(err, sig)
    final = created.parent / "run" / "final"
    assert not list(final.rglob(".*.claim")), "a stopped process left its claim"
    logs = list((created.parent / "run" / "logs" / "final").glob("worker-*.log"))
    stopped = [log for log in logs if f"stopped by {signal.Signals(sig).name}" in log.read_text()]
    assert len(stopped) >= 2  # each child stopped itself (not killed): it said so


def test_usr1_to_run_w2_stops_the_workers_and_requeues_their_trials(created, tmp_path):
    """Issue 26 §2: USR1 killed the parent of ``hpo run -w 2`` silently and its workers
    kept pulling trials. Now both workers re-queue their trial and exit; one line."""
    gate = Gate(tmp_path / "gate")
    proc = _start(gate, "run", str(created), "-w", "2")
    _, err, _ = _stop_held(gate, proc, signal.SIGUSR1, "run -w 2")
    assert proc.returncode == 138, err
    _one_stop_line(err, signal.SIGUSR1)
    from hpo.config import load_campaign
    from hpo.studies import open_campaign_storage

    campaign = load_campaign(created)
    storage = open_campaign_storage(campaign)
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    interrupted = [
        t for t in trials if "interrupted by SIGUSR1" in t.system_attrs.get(FAIL_REASON, "")
    ]
    assert len(interrupted) == 2 and not [t for t in trials if t.state == TrialState.RUNNING]
    assert len([t for t in trials if t.state == TrialState.WAITING]) == 2
