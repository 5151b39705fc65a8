"""Stop signals (issue 26 §8): a signal sets a flag, the work stops at safe points.

A stop signal only sets a flag; the objective stops at its next safe point (never inside
a weakref callback, where a raise would be printed and swallowed), and a stop that
library code swallowed is raised again at the next one.
"""

from __future__ import annotations

import os
import signal
import sys
import weakref

import optuna
import pytest
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
