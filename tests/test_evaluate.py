"""The science entry point against truth: cells, splits, rotation and ``evaluate``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from objectives.cells import Cell, DataSpec, prepare, random_rotation
from objectives.errors import DataError
from objectives.evaluate import evaluate
from objectives.synthetic import SyntheticModel, SyntheticSpec, write_synthetic

FAST_HGB = {"n_ensemble": 2, "max_iter": 100}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 5 % synthetic set: 50k background, 5k signal, 30k extra SR background."""
    return write_synthetic(SyntheticSpec(scale=0.05, seed=3), tmp_path_factory.mktemp("syn"))


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """20 % sets, plain and shifted: enough statistics for CWoLa to learn the mjj shift."""
    folder = tmp_path_factory.mktemp("syn_medium")
    return tuple(
        write_synthetic(SyntheticSpec(scale=0.2, seed=3, shifted=s), folder) for s in (False, True)
    )


def cell(files, mode="IAD", signal=500, clf="HGB", rotation=False, **data):
    return Cell(clf, mode, signal, rotation, DataSpec(files[0], files[1], **data))


def test_rotation_is_orthogonal_special_and_seeded():
    R = random_rotation(4)
    assert np.allclose(R @ R.T, np.eye(4), atol=1e-12)
    assert np.isclose(np.linalg.det(R), 1.0)
    assert np.array_equal(R, random_rotation(4))
    assert not np.allclose(R, random_rotation(4, seed=2))


def test_prepare_sizes_and_cache(small):
    c = cell(small, signal=1000)
    p = prepare(c)
    assert prepare(c) is p  # computed once per process
    # the classifier is not part of the preparation key
    assert prepare(cell(small, signal=1000, clf="NN")) is p
    info = p.info
    assert info["n_sr_data"] == int(p.y.sum())
    # scale-free ratios of the calibrated generator: 1000 signal in a 5 % set
    assert 0.6 < info["n_sr_signal"] / 1000 < 0.9
    assert p.X.shape[1] == 4 and p.X_test.shape[1] == 4
    assert np.allclose(p.X.mean(0), 0, atol=1e-4)
    assert set(np.unique(p.y_test)) == {0, 1}
    # balanced classes by weight
    assert np.isclose(p.w[p.y == 1].sum(), p.w[p.y == 0].sum())


def test_rotation_keeps_test_and_train_consistent(small):
    plain, rot = prepare(cell(small)), prepare(cell(small, rotation=True))
    # a rotation keeps norms in the unstandardised space; after standardisation the
    # rotated features must still be a linear image of the plain ones (rank 4)
    assert rot.X.shape == plain.X.shape
    assert not np.allclose(rot.X, plain.X)
    A, *_ = np.linalg.lstsq(plain.X_test[:2000], rot.X_test[:2000], rcond=None)
    assert np.allclose(plain.X_test[:2000] @ A, rot.X_test[:2000], atol=1e-3)


def test_modes_build_the_right_templates(small, tmp_path):
    iad, cwola = prepare(cell(small, "IAD")), prepare(cell(small, "CWoLa"))
    assert iad.info["n_sr_data"] == cwola.info["n_sr_data"]
    assert iad.info["n_template"] != cwola.info["n_template"]
    # identical test sets: cells compare directly
    assert iad.info["n_test_background"] == cwola.info["n_test_background"]
    rng = np.random.default_rng(0)
    mjj = rng.uniform(3.3, 3.7, 50_000)
    samples = np.column_stack([mjj, SyntheticModel().sample_bkg(mjj, rng)])
    path = tmp_path / "samples.npy"
    np.save(path, samples)
    cath = prepare(cell(small, "CATHODE", samples_file=path))
    assert cath.info["n_template"] == min(4 * cath.info["n_sr_data"], 50_000)


def test_bad_samples_file_is_a_clear_error(small, tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 3)))
    with pytest.raises(DataError, match=r"bad\.npy: CATHODE samples must be rows"):
        prepare(cell(small, "CATHODE", samples_file=bad))
    with pytest.raises(DataError, match="needs data.samples_file"):
        prepare(cell(small, "CATHODE"))
    with pytest.raises(DataError, match="cannot inject 99999 signal events"):
        prepare(cell(small, signal=99_999))


def test_evaluate_is_deterministic_and_json_friendly(small):
    c = cell(small, signal=1000)
    r1 = evaluate(FAST_HGB, c, "half", run=0)
    r2 = evaluate(FAST_HGB, c, "half", run=0)
    assert r1.metrics == r2.metrics
    assert np.array_equal(r1.scores["argos"], r2.scores["argos"])
    assert set(r1.metrics) == {"argos", "bce", "max_sic"}
    assert r1.info["n_train"] + r1.info["n_validation"] == len(prepare(c).y)
    json.dumps(r1.summary(), allow_nan=True)
    r_full = evaluate(FAST_HGB, c, "full", run=0)
    assert r_full.info["n_train"] == len(prepare(c).y)


def test_iad_with_signal_beats_no_signal(small):
    with_sig = [evaluate(FAST_HGB, cell(small, signal=1000), "full", run=j) for j in range(2)]
    no_sig = [evaluate(FAST_HGB, cell(small, signal=0), "full", run=j) for j in range(2)]
    sic_sig = np.median([r.truth["argos"]["max_sic"] for r in with_sig])
    sic_none = np.median([r.truth["argos"]["max_sic"] for r in no_sig])
    assert sic_sig > 2 * sic_none, (sic_sig, sic_none)
    # ARGOS (label-free) sees the signal too
    assert with_sig[0].metrics["argos"] > no_sig[0].metrics["argos"]


def test_exact_likelihood_ratio_bounds_the_classifier(small):
    from objectives.lhco import load_events
    from objectives.metrics import max_sic

    c = cell(small, signal=1000)
    p = prepare(c)
    r = evaluate(FAST_HGB, c, "full", run=0)
    # the exact LR on the same (unstandardised) test events is the physical limit; the
    # test set rebuilt here from the files: extra SR background after the IAD template,
    # and the SR signal events after the first 1000 (the injected ones)
    extra, events = load_events(small[1]), load_events(small[0])
    in_sr = (extra.mjj > 3.3) & (extra.mjj < 3.7)
    test_bkg = extra.x[in_sr][p.info["n_iad_template"] :]
    sig_idx = np.flatnonzero(events.label == 1)[1000:]
    sr = (events.mjj[sig_idx] > 3.3) & (events.mjj[sig_idx] < 3.7)
    test_sig = events.x[sig_idx][sr][:20_000]
    X = np.concatenate([test_bkg, test_sig])
    y = np.concatenate([np.zeros(len(test_bkg)), np.ones(len(test_sig))])
    np.testing.assert_array_equal(y, p.y_test)
    limit = max_sic(SyntheticModel().likelihood_ratio(X), y)
    assert r.truth["argos"]["max_sic"] <= limit * 1.1
    assert max_sic(np.random.default_rng(0).random(len(y)), y) < 2.0


@pytest.mark.slow
def test_cwola_degrades_on_shifted_data_while_iad_holds(medium):
    """CATHODE's appendix: with features shifted by 0.1 mjj, CWoLa learns the shift."""
    small, shifted = medium

    def sic(files, mode):
        # N = 500 in a 20 % set: S/B ~ 1.2 %, the regime where the shift dominates
        rs = [evaluate(FAST_HGB, cell(files, mode, signal=500), "full", run=j) for j in range(2)]
        return np.median([r.truth["argos"]["max_sic"] for r in rs])

    iad_plain, iad_shift = sic(small, "IAD"), sic(shifted, "IAD")
    cwola_plain, cwola_shift = sic(small, "CWoLa"), sic(shifted, "CWoLa")
    assert cwola_shift < 0.6 * cwola_plain, (cwola_plain, cwola_shift)
    assert iad_shift > 0.6 * iad_plain, (iad_plain, iad_shift)
    assert iad_shift > 1.5 * cwola_shift


@pytest.mark.slow
def test_cathode_with_a_trained_flow_beats_cwola_on_shifted_data(medium, tmp_path):
    """CATHODE's claim: its flow interpolates the mjj correlation into the SR, so CATHODE
    mode keeps finding the signal where CWoLa (trained against the sidebands) fails."""
    from objectives.flows.cathode import cached_background

    _, shifted = medium
    hp = {"n_blocks": 6, "hidden": 64, "epochs": 10, "n_keep": 3, "lr": 2e-3, "batch_size": 512}
    bg = cached_background(tmp_path, shifted[0], signal=500, seed=0, hp=hp, n_threads=2)

    def sic(mode, **data):
        rs = [
            evaluate(FAST_HGB, cell(shifted, mode, signal=500, **data), "full", run=j)
            for j in range(2)
        ]
        return np.median([r.truth["argos"]["max_sic"] for r in rs])

    cathode, cwola = sic("CATHODE", samples_file=bg.samples_file), sic("CWoLa")
    assert cathode > 1.5 * cwola, (cathode, cwola)
    assert cathode > 2.0, cathode


def test_nn_ensembles_differ_per_selection_metric(small):
    hp = {"epochs": 6, "n_best_epochs": 2, "batch_size": 512}
    r = evaluate(hp, cell(small, signal=1000, clf="NN"), "half", run=0)
    assert r.info["classifier"] == "NN"
    from objectives.metrics import max_sic

    # the oracle metric is the max SIC of the scores it selected, on the labelled test set
    assert r.metrics["max_sic"] == pytest.approx(max_sic(r.scores["max_sic"], r.y_test))
    assert 0.0 < r.metrics["bce"] < 2.0
    assert not np.array_equal(r.scores["argos"], r.scores["max_sic"]) or not np.array_equal(
        r.scores["bce"], r.scores["max_sic"]
    )


@pytest.mark.parametrize("clf", ["HGB", "NN"])
def test_argos_floor_of_the_cell_reaches_every_argos(small, clf):
    """A cell's ``argos_min_template`` floors its result's ARGOS (NN epochs: test_classifiers)."""
    from dataclasses import replace

    from objectives.metrics import argos

    hp = FAST_HGB if clf == "HGB" else {"epochs": 4, "n_best_epochs": 2, "batch_size": 512}
    plain = cell(small, signal=1000, clf=clf)
    floored = replace(plain, argos_min_template=25)
    assert floored.key() == plain.key()  # the same cell, scored differently
    r = evaluate(hp, floored, "half", run=0)
    held = r.held_out
    assert r.metrics["argos"] == pytest.approx(
        argos(held.scores["argos"], held.label, min_template=25), rel=1e-12
    )
    if clf == "HGB":  # its tightest cuts hold a handful of template events: the floor binds
        assert r.metrics["argos"] != pytest.approx(argos(held.scores["argos"], held.label))


def test_reserved_split_scores_the_reserved_events_and_ranks_epochs_elsewhere(small, monkeypatch):
    """Under Split.reserved the NN ranks its epochs on unreserved events it did not train
    on, and every label-free value comes from the reserved events alone."""
    from objectives.classifiers.mlp import MLPClassifier
    from objectives.metrics import argos
    from objectives.splits import Split

    ranked_on = []
    fit = MLPClassifier.fit

    def spy(self, X, y, sample_weight=None, validation=None):
        ranked_on.append(validation[1].size)
        return fit(self, X, y, sample_weight=sample_weight, validation=validation)

    monkeypatch.setattr(MLPClassifier, "fit", spy)
    c = cell(small, signal=1000, clf="NN")
    p = prepare(c)
    split = Split.reserved(1, 0.2)  # 20 % scored, 30 % to rank the epochs on
    r = evaluate({"epochs": 3, "n_best_epochs": 2, "batch_size": 1024}, c, split)
    train, held = split.indices(p.y)
    choice = split.choice_indices(p.y)
    assert not np.intersect1d(choice, held).size and not np.intersect1d(choice, train).size
    assert ranked_on == [choice.size] and choice.size != held.size
    np.testing.assert_array_equal(r.held_out.index, held)
    assert r.info["n_validation"] == held.size and r.info["n_choice"] == choice.size
    assert r.info["validation"] == "reserved events" and r.info["n_train"] == train.size
    scores = r.held_out.scores["argos"]
    assert r.metrics["argos"] == pytest.approx(argos(scores, r.held_out.label))
