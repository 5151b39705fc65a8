"""The method's defaults as every study's first trial: in and out of the space, once."""

from __future__ import annotations

import optuna
import pytest
from _storage_fixtures import study, url  # noqa: F401 - fixtures
from optuna.trial import TrialState

import storage.leases as leases
from hpo.defaults_trial import (
    DEFAULTS_LABEL,
    defaults_in_space,
    enqueue_defaults,
    in_space,
    trial_space,
)
from hpo.spaces import SEARCH_SPACES, hyperparameters, space_for, suggest
from storage.leases import ENQUEUED_AS, FAIL_REASON, enqueue_once, requeue
from workers.worker import run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)
HGB_SPACE = space_for("HGB")
FIXED = {"n_ensemble": 1}


def _labelled(study):  # noqa: F811
    return [t for t in study.get_trials() if t.user_attrs.get(ENQUEUED_AS) == DEFAULTS_LABEL]


def _hgb_objective(trial: optuna.Trial) -> float:
    """What hpo.objective does with the parameters, without training."""
    params = suggest(trial, trial_space(trial, "HGB", HGB_SPACE, FIXED))
    hp = hyperparameters("HGB", params, FIXED)
    trial.set_user_attr("hp", hp)
    return float(hp["max_iter"])


def _run(study, target: int):  # noqa: F811
    return run_worker(
        study._storage,
        {study.study_name: target},
        _hgb_objective,
        sampler_factory=lambda name: optuna.samplers.RandomSampler(seed=0),
        worker_id="w0",
        poll=0.1,
        lease_interval=0.5,
        lease_expiry=2.0,
    )


def test_defaults_outside_the_space_keep_their_value(study):  # noqa: F811
    """HGB's max_iter 200 (space [2, 199]), max_depth None and max_bins 255 lie outside the
    reference's space: the defaults trial leaves them out of its parameters, so the
    trial trains them as they are (Optuna would warn and store 200, and refuse None)."""
    inside = defaults_in_space("HGB", HGB_SPACE, FIXED)
    assert set(inside) == {"learning_rate", "max_leaf_nodes", "l2_regularization"}
    assert enqueue_defaults(study, "HGB", HGB_SPACE, FIXED)
    with _no_warning():
        summary = _run(study, 3)
    assert summary.completed == 3 and summary.exit_code == 0
    first = study.trials[0]
    assert first.user_attrs[ENQUEUED_AS] == DEFAULTS_LABEL
    assert first.params == inside
    assert first.user_attrs["hp"] == hyperparameters("HGB", {}, FIXED)
    assert first.user_attrs["hp"]["max_iter"] == 200 and first.user_attrs["hp"]["max_depth"] is None
    for t in study.trials[1:]:  # the others are searched as before
        assert set(t.params) == set(HGB_SPACE) and t.params["max_iter"] <= 199


def test_nn_defaults_are_all_in_its_space():
    space = space_for("NN")
    assert defaults_in_space("NN", space, None) == {
        name: hyperparameters("NN", {})[name] for name in space
    }


def test_an_empty_space_enqueues_an_empty_defaults_trial(study):  # noqa: F811
    """A method without searched hyperparameters (here HGB with all of them fixed)."""
    fixed = {name: hyperparameters("HGB", {})[name] for name in SEARCH_SPACES["HGB"]}
    space = space_for("HGB", None, fixed)
    assert space == {} and defaults_in_space("HGB", space, fixed) == {}
    assert enqueue_defaults(study, "HGB", space, fixed)
    assert study.trials[0].system_attrs["fixed_params"] == {}
    summary = run_worker(
        study._storage,
        {study.study_name: 2},
        lambda trial: float(len(suggest(trial, trial_space(trial, "HGB", space, fixed)))),
        sampler_factory=lambda name: optuna.samplers.RandomSampler(seed=0),
        worker_id="w0",
        poll=0.1,
    )
    assert summary.completed == 2 and len(_labelled(study)) == 1


def test_enqueueing_is_idempotent(study):  # noqa: F811
    assert enqueue_defaults(study, "HGB", HGB_SPACE, FIXED)
    study.set_user_attr("defaults_enqueued", False)  # a restart that lost the marker
    assert not enqueue_defaults(study, "HGB", HGB_SPACE, FIXED)
    assert not enqueue_once(study, DEFAULTS_LABEL, {})
    _run(study, 2)
    assert not enqueue_once(study, DEFAULTS_LABEL, {})  # a finished one counts too
    assert len(_labelled(study)) == 1


def test_racing_enqueuers_keep_one(study, monkeypatch):  # noqa: F811
    """Two workers create a missing study at once; both saw no defaults trial."""
    assert enqueue_once(study, DEFAULTS_LABEL, {"learning_rate": 0.1})
    looks = []  # the late enqueuer looked before the first one's trial existed
    real = leases._labelled

    def late(s, label):
        looks.append(label)
        return [] if len(looks) == 1 else real(s, label)

    monkeypatch.setattr(leases, "_labelled", late)
    assert not enqueue_once(study, DEFAULTS_LABEL, {"learning_rate": 0.1})
    states = [t.state for t in _labelled(study)]
    assert states == [TrialState.WAITING, TrialState.FAIL]  # the later one withdrawn


def test_a_worker_never_runs_a_second_defaults_trial(study):  # noqa: F811
    """The withdrawal itself was lost (the enqueuer died): two WAITING defaults trials."""
    for _ in range(2):
        template = optuna.trial.create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": {}},
            user_attrs={ENQUEUED_AS: DEFAULTS_LABEL},
        )
        study._storage.create_new_trial(study._study_id, template_trial=template)
    summary = _run(study, 3)
    assert summary.completed == 3 and summary.exit_code == 0
    first, second = _labelled(study)
    assert first.state == TrialState.COMPLETE and first.value == 200.0
    assert second.state == TrialState.FAIL
    assert second.system_attrs[FAIL_REASON] == f"duplicate of trial {first.number}, not run"
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 3


def test_a_requeued_defaults_trial_stays_the_defaults(study):  # noqa: F811
    assert enqueue_defaults(study, "HGB", HGB_SPACE, FIXED)
    taken = study.ask()  # a worker took it and was stopped by SIGTERM
    requeue(study, taken.number, "worker w1 interrupted by SIGTERM")
    summary = _run(study, 2)
    assert summary.completed == 2
    copy = next(t for t in study.trials if t.user_attrs.get("requeued_from") == taken.number)
    assert copy.user_attrs[ENQUEUED_AS] == DEFAULTS_LABEL and copy.value == 200.0
    assert "max_iter" not in copy.params


@pytest.mark.parametrize(
    ("entry", "value", "inside"),
    [
        ({"type": "int", "low": 2, "high": 199}, 200, False),
        ({"type": "int", "low": 2, "high": 199}, None, False),
        ({"type": "int", "low": 2, "high": 200, "step": 2}, 31, False),
        ({"type": "int", "low": 2, "high": 99}, 31, True),
        ({"type": "float", "low": 1e-4, "high": 0.79, "log": True}, 0.1, True),
        ({"type": "float", "low": 1e-4, "high": 0.79, "log": True}, 1.0, False),
        ({"type": "categorical", "choices": [64, 128]}, 128, True),
        ({"type": "categorical", "choices": [0.0, 0.1]}, 0, False),  # an int is no 0.0
        ({"type": "categorical", "choices": [True, False]}, 1, False),
    ],
)
def test_in_space(entry, value, inside):
    assert in_space(entry, value) is inside


class _no_warning:
    """No warning of any kind (Optuna warns for an enqueued value outside a distribution)."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self._seen = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        messages = [str(w.message) for w in self._seen]
        assert not messages, messages
