"""The seeded samplers: random search draws the same point for a trial whoever runs it."""

from __future__ import annotations

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from hpo.samplers import make_sampler
from workers.worker import run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)
NAME = "c.HGB-IAD-norot-N1000-baseline"


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("lr", 1e-4, 0.8, log=True) + trial.suggest_int("leaves", 2, 99)


def _run(storage, worker_ids: list[str], per_worker: int) -> dict[int, dict]:
    """Each worker in turn adds ``per_worker`` trials (as SLURM tasks would, one after another)."""
    study = optuna.create_study(study_name=NAME, storage=storage)
    done = 0
    for worker_id in worker_ids:
        done += per_worker

        def factory(name: str, worker_id=worker_id):
            return make_sampler("random", seed=7, study_name=name, worker_id=worker_id)

        summary = run_worker(
            storage, {NAME: done}, _objective, sampler_factory=factory, worker_id=worker_id
        )
        assert summary.exit_code == 0
    return {t.number: t.params for t in study.get_trials()}


def test_random_search_draw_depends_on_trial_not_worker(tmp_path):
    one = _run(JournalStorage(JournalFileBackend(str(tmp_path / "a.journal"))), ["w0"], 6)
    three = _run(
        JournalStorage(JournalFileBackend(str(tmp_path / "b.journal"))), ["x", "y", "z"], 2
    )
    assert one == three and len(one) == 6
    assert len({p["lr"] for p in one.values()}) == 6  # different trials, different draws


def test_tpe_is_seeded_per_worker(tmp_path):
    a = make_sampler("tpe", seed=7, study_name=NAME, worker_id="w0")
    b = make_sampler("tpe", seed=7, study_name=NAME, worker_id="w1")
    c = make_sampler("tpe", seed=7, study_name=NAME, worker_id="w0")
    assert a._rng.rng.random() == c._rng.rng.random() != b._rng.rng.random()
