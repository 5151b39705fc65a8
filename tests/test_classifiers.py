"""One behaviour test over every classifier, plus the NN's epoch selection."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from objectives.classifiers import (
    CLASSIFIERS,
    default_hyperparameters,
    make_classifier,
    validate_hyperparameters,
)
from objectives.errors import HyperparameterError
from objectives.metrics import argos, roc_auc, weighted_bce

# Small settings so that every fit takes well under a second.
SMALL = {
    "HGB": {"n_ensemble": 2, "max_iter": 30},
    "AdaBoost": {"n_ensemble": 2, "n_estimators": 10},
    "NN": {"epochs": 4, "n_best_epochs": 2, "batch_size": 64},
}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _toy(seed, n=1200, shift=3.0):
    """Two 2-D Gaussians separated by ``shift`` along x0 (Bayes AUC about 0.98)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 2))
    X[:, 0] += shift * y
    return X, y


def _fit(name, seed=0, hp=None, **fit_kw):
    X, y = _toy(1)
    clf = make_classifier(name, hp or SMALL[name], seed=seed)
    return clf.fit(X, y, **fit_kw)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_fit_predict_shapes_and_learning(name):
    clf = _fit(name)
    X_test, y_test = _toy(2, n=500)
    p = clf.predict_proba(X_test)
    assert p.shape == (500,) and p.dtype == np.float64
    assert np.all((p >= 0) & (p <= 1))
    assert roc_auc(p, y_test) > 0.9
    assert clf.selection_dependent is (name == "NN")


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_deterministic_for_a_seed_and_seeds_differ(name):
    X_test, _ = _toy(2, n=300)
    a = _fit(name, seed=3).predict_proba(X_test)
    b = _fit(name, seed=3).predict_proba(X_test)
    c = _fit(name, seed=4).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_hyperparameters_round_trip_through_json(name):
    hp = default_hyperparameters(name) | SMALL[name]
    again = json.loads(json.dumps(hp))
    assert again == hp
    clf = make_classifier(name, again, seed=0)
    params = clf.get_params()
    assert {k: params[k] for k in hp} == hp
    assert json.loads(json.dumps(params)) == params
    # a fresh dict every time
    default_hyperparameters(name)["n_best_epochs" if name == "NN" else "n_ensemble"] = -1
    assert validate_hyperparameters(name, {}) == default_hyperparameters(name)


def test_search_and_final_defaults():
    assert default_hyperparameters("NN")["epochs"] == 20
    assert default_hyperparameters("nn", final=True)["epochs"] == 100
    assert default_hyperparameters("NN", final=True)["layers"] == [64, 64, 64]
    assert default_hyperparameters("HGB")["n_ensemble"] == 50
    assert default_hyperparameters("adaboost")["n_ensemble"] == 10
    assert type(make_classifier("hGb", {}, seed=0)).name == "HGB"


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_unknown_hyperparameter_lists_valid_names(name):
    with pytest.raises(HyperparameterError, match=rf"{name} hyperparameter 'bogus': unknown") as e:
        make_classifier(name, {"bogus": 1}, seed=0)
    assert "learning_rate" in str(e.value) or "lr" in str(e.value)


@pytest.mark.parametrize(
    ("name", "hp", "message"),
    [
        (
            "HGB",
            {"max_iter": 0},
            "HGB hyperparameter 'max_iter': must be an integer in [1, 10000], got 0",
        ),
        ("HGB", {"max_iter": 2.5}, "'max_iter': must be an integer in [1, 10000], got 2.5"),
        ("HGB", {"learning_rate": 0.0}, "'learning_rate': must be a number in (0, 10], got 0.0"),
        ("HGB", {"early_stopping": "yes"}, "'early_stopping': must be true or false, got 'yes'"),
        ("HGB", {"max_depth": None, "max_bins": 300}, "'max_bins': must be an integer in [2, 255]"),
        ("AdaBoost", {"n_estimators": 0}, "AdaBoost hyperparameter 'n_estimators': must be"),
        ("AdaBoost", {"min_samples_leaf": True}, "'min_samples_leaf': must be an integer"),
        ("NN", {"batch_size": 0}, "NN hyperparameter 'batch_size': must be an integer in [1, "),
        ("NN", {"dropout": 1.0}, "'dropout': must be a number in [0, 1), got 1.0"),
        ("NN", {"layers": []}, "'layers': must be a list of 1 to 16 integers each in [1, 4096]"),
        ("NN", {"layers": [64, 0]}, "'layers': must be a list of 1 to 16 integers"),
        ("NN", {"lr": float("nan")}, "'lr': must be a number in (0, 1], got nan"),
    ],
)
def test_out_of_range_hyperparameters_raise(name, hp, message):
    with pytest.raises(HyperparameterError) as e:
        make_classifier(name, hp, seed=0)
    assert message in str(e.value)


def test_unknown_classifier_and_null_limits():
    with pytest.raises(HyperparameterError, match="unknown classifier 'XGB'; valid classifiers"):
        make_classifier("XGB", {}, seed=0)
    assert make_classifier("HGB", {"max_leaf_nodes": None}, seed=0).max_leaf_nodes is None


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_sample_weight_is_honoured(name):
    """Half the events carry swapped labels; the weights decide which half the model follows."""
    rng = np.random.default_rng(5)
    X, y = _toy(6, n=1600)
    swapped = rng.random(y.size) < 0.5
    y[swapped] = 1 - y[swapped]
    X_test, y_test = _toy(7, n=500)
    for w_swapped, w_kept, follows_kept in ((0.1, 1.0, True), (1.0, 0.1, False)):
        w = np.where(swapped, w_swapped, w_kept)
        clf = make_classifier(name, SMALL[name], seed=0).fit(X, y, sample_weight=w)
        auc = roc_auc(clf.predict_proba(X_test), y_test)
        assert auc > 0.85 if follows_kept else auc < 0.15


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_bad_inputs_raise(name):
    X, y = _toy(1, n=100)
    clf = make_classifier(name, SMALL[name], seed=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        clf.predict_proba(X)
    with pytest.raises(ValueError, match="sample_weight has 3 entries"):
        clf.fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        clf.fit(X[:, 0], y)


# -- NN epoch selection -------------------------------------------------------------------


def test_nn_history_has_one_entry_per_epoch_and_is_the_validation_metric():
    X, y = _toy(1)
    Xv, yv = _toy(8, n=600)
    wv = np.where(yv == 1, 2.0, 1.0)
    clf = make_classifier("NN", {"epochs": 5, "batch_size": 64}, seed=0)
    clf.fit(X, y, validation=(Xv, yv, wv))
    hist = clf.validation_history
    assert set(hist) == {"argos", "bce"} and hist["argos"].shape == hist["bce"].shape == (5,)
    per_epoch = clf.epoch_predictions(Xv)
    assert per_epoch.shape == (5, 600)
    np.testing.assert_allclose(hist["argos"], [argos(p, yv, wv) for p in per_epoch], rtol=1e-6)
    np.testing.assert_allclose(hist["bce"], [weighted_bce(p, yv, wv) for p in per_epoch], rtol=1e-6)
    # a floored ARGOS ranks the epochs when the campaign asks for one
    floored = make_classifier("NN", {"epochs": 5, "batch_size": 64}, seed=0, argos_min_template=40)
    floored.fit(X, y, validation=(Xv, yv, wv))
    np.testing.assert_allclose(
        floored.validation_history["argos"],
        [argos(p, yv, wv, min_template=40) for p in per_epoch],
        rtol=1e-6,
    )


def test_nn_without_validation_ranks_on_the_training_set():
    X, y = _toy(1, n=600)
    clf = make_classifier("NN", {"epochs": 3}, seed=0).fit(X, y)
    train = clf.epoch_predictions(X)
    np.testing.assert_allclose(clf.validation_history["bce"], [weighted_bce(p, y) for p in train])


def test_nn_selection_picks_the_best_epochs_per_metric():
    X, y = _toy(1, n=800, shift=1.0)  # hard enough that epochs differ
    Xv, yv = _toy(9, n=800, shift=1.0)
    clf = make_classifier("NN", {"epochs": 8, "n_best_epochs": 3, "lr": 5e-3}, seed=2)
    clf.fit(X, y, validation=(Xv, yv, None))
    hist = clf.validation_history
    best_argos = clf.best_epochs("argos")
    best_bce = clf.best_epochs("bce")
    assert set(best_argos) == set(np.argsort(-hist["argos"])[:3])
    assert set(best_bce) == set(np.argsort(hist["bce"])[:3])
    assert hist["argos"][best_argos].min() >= np.delete(hist["argos"], best_argos).max()
    assert hist["bce"][best_bce].max() <= np.delete(hist["bce"], best_bce).min()
    X_test, _ = _toy(10, n=200)
    per_epoch = clf.epoch_predictions(X_test).astype(np.float64)
    for sel, best in (("argos", best_argos), ("bce", best_bce)):
        np.testing.assert_allclose(
            clf.predict_proba(X_test, selection=sel), per_epoch[best].mean(0)
        )
    # an external per-epoch metric (the truth max SIC, say) ranks through `values`
    values = np.arange(8.0)
    assert list(clf.best_epochs("max_sic", values=values)) == [7, 6, 5]
    with pytest.raises(ValueError, match="needs truth labels"):
        clf.predict_proba(X_test, selection="max_sic")


def test_nn_uses_only_its_own_generator():
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    X, y = _toy(1, n=300)
    hp = {"epochs": 2, "dropout": 0.3}
    a = make_classifier("NN", hp, seed=0).fit(X, y).predict_proba(X)
    b = make_classifier("NN", hp, seed=0).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)  # dropout masks are seeded too
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)


def test_adaboost_fits_when_classes_are_imbalanced_and_nearly_identical():
    """Data vs template at S/B ~ 1 %: the first boosted tree must not be 'worse than random'."""
    from objectives.classifiers import make_classifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60000, 4))
    y = (rng.random(60000) < 0.3).astype(np.int8)  # the real IAD ratio, no signal at all
    clf = make_classifier("AdaBoost", {"n_ensemble": 1, "n_estimators": 2}, seed=0)
    p = clf.fit(X, y).predict_proba(X)
    assert p.shape == (60000,) and np.all(np.isfinite(p))
