"""The unsupervised detectors as cells on synthetic DarkMachines events, against truth.

The synthetic generator knows each signal's exact likelihood ratio (LR): no score can
rank a test set better, and every detector trained on background only must beat random
guessing on at least one built-in signal. Also: the data layer of a cell (channel cuts,
the seeded background split, the events cache), the ensemble over trials, DROCC's
shell and DDD's band on these events, and the truth numbers against an independent
computation.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from objectives.darkmachines import (
    CHANNELS,
    DMSyntheticModel,
    DMSyntheticSpec,
    passes,
    write_events,
    write_synthetic_darkmachines,
)
from objectives.darkmachines.cells import DMCell, DMDataSpec, exact_limits, load_sets
from objectives.darkmachines.synthetic import HEAVY_SIGNALS, SIGNALS
from objectives.errors import DataError, EnsembleRefused, HyperparameterError
from objectives.evaluate import evaluate, evaluate_ensemble
from objectives.registry import get_method
from objectives.splits import Split
from objectives.unsupervised.metrics import TRUTH_METRICS, efficiency_curve

#: 12000 background events, two thirds held out: the detectors train on 4000, the test
#: set holds 8000 background and 2000 events per signal, so the AUC of random scores has a
#: standard error sqrt((8000 + 2000 + 1) / (12 * 8000 * 2000)) = 0.0072 around 0.5.
N_BACKGROUND, N_SIGNAL, TEST_FRACTION = 12000, 2000, 2 / 3
N_TEST = round(N_BACKGROUND * TEST_FRACTION)
AUC_SE = math.sqrt((N_TEST + N_SIGNAL + 1) / (12 * N_TEST * N_SIGNAL))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    spec = DMSyntheticSpec(n_background=N_BACKGROUND, n_signal=N_SIGNAL, seed=7)
    return write_synthetic_darkmachines(spec, tmp_path_factory.mktemp("dm"))


def _spec(paths, **kw) -> DMDataSpec:
    signals = tuple((n, p) for n, p in paths.items() if n != "background")
    return DMDataSpec(
        paths["background"], signals, synthetic=True, test_fraction=TEST_FRACTION, **kw
    )


@pytest.fixture(scope="module")
def spec(paths):
    return _spec(paths)


# -- the data of a cell -------------------------------------------------------------------
def test_background_split_is_seeded_disjoint_and_signals_are_test_only(spec, paths):
    sets = load_sets(spec)
    ids = lambda ev: set(ev.event_id.tolist())  # noqa: E731
    pool, test = ids(sets.train), ids(sets.test_background)
    assert not pool & test and len(pool | test) == N_BACKGROUND
    assert len(test) == N_TEST
    assert sets.signals == tuple(n for n in paths if n != "background")
    assert np.array_equal(
        np.bincount(sets.test_signal + 1), [len(test)] + [N_SIGNAL] * len(SIGNALS)
    )
    other = load_sets(
        DMDataSpec(spec.background_file, spec.signal_files, seed=1, test_fraction=TEST_FRACTION)
    )
    assert ids(other.test_background) != test  # another seed, another split
    assert len(other.test_background) == len(test)


def test_channel_cuts_select_the_cell_events_and_absent_signals_are_named(paths, caplog):
    with caplog.at_level(logging.WARNING):
        sets = load_sets(_spec(paths, channel="2b"))
    for ev in (sets.train, sets.test_background, *sets.test_signals.values()):
        assert passes(ev, CHANNELS["2b"]).all()
    every = load_sets(_spec(paths))  # channel "all": no selection
    selected = sum(passes(ev, CHANNELS["2b"]).sum() for ev in (every.train, every.test_background))
    assert 0 < len(sets.train) + len(sets.test_background) == selected < N_BACKGROUND
    # monojet events have no leptons: absent from the two-lepton channel, said so
    assert "monojet" in sets.info["empty_signals"] and "monojet" not in sets.signals
    assert any("no monojet event in channel 2b" in r.message for r in caplog.records)
    # files that already hold one channel's events: the channel only labels them
    labelled = load_sets(_spec(paths, channel="2b", apply_cuts=False))
    assert len(labelled.train) + len(labelled.test_background) == N_BACKGROUND
    assert labelled.info["channel"] == "2b" and not labelled.info["empty_signals"]


def test_events_cache_is_read_back_without_parsing(paths, tmp_path, monkeypatch):
    cached = _spec(paths, cache_dir=tmp_path)
    first = load_sets(cached)
    import objectives.darkmachines.cells as cells

    cells._parse.cache_clear()
    cells._load_sets.cache_clear()
    monkeypatch.setattr(cells, "read_events", lambda *a, **k: pytest.fail("parsed again"))
    again = load_sets(cached)
    for a, b in ((first.train, again.train), (first.test, again.test)):
        np.testing.assert_array_equal(a.kinematics, b.kinematics)
        np.testing.assert_array_equal(a.event, b.event)
        np.testing.assert_array_equal(a.types, b.types)


def test_a_malformed_line_names_file_and_line_or_is_counted(tmp_path):
    model = DMSyntheticModel()
    rng = np.random.default_rng(0)
    bkg = write_events(tmp_path / "bkg.csv", model.sample_background(40, rng))
    sig = write_events(tmp_path / "sig.csv", model.sample("monojet", 10, rng))
    lines = bkg.read_text().splitlines(keepends=True)
    lines[6] = "7;njets;1;12000;0.1;j,1,2,3;\n"  # an object with 4 values
    bkg.write_text("".join(lines))
    spec = DMDataSpec(bkg, (("monojet", sig),))
    with pytest.raises(DataError, match=rf"^{bkg}, line 7: object 1 'j,1,2,3': expected 5"):
        load_sets(spec)
    sets = load_sets(DMDataSpec(bkg, (("monojet", sig),), skip_bad_lines=True))
    assert sets.info["n_skipped_lines"] == {"background": 1, "monojet": 0}
    assert len(sets.train) + len(sets.test_background) == 39


# -- truth --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detectors(spec):
    """Each method trained on background only (the 4000-event pool, MLP), on the test set."""
    hps = {
        "dSVDD": {},  # the defaults: the challenge's ensemble over d = 5, 8, 13, 21
        "DROCC": {},
        "DDD": {"sigmas": 0.1, "p_drops": 0.2, "p_adds": 0.0, "epochs": 10},
    }
    return {m: evaluate(hp, DMCell(m, "MLP", spec), Split.full(0)) for m, hp in hps.items()}


def test_exact_likelihood_ratio_has_the_highest_auc_of_any_score(spec, detectors):
    limits = exact_limits(spec)
    sets = load_sets(spec)
    test, label = sets.test, sets.test_signal
    simple = {
        "MET": test.event[:, 0],
        "HT": test.event[:, 2],
        "n_objects": test.mask.sum(axis=1).astype(float),
    }
    for k, name in enumerate(sets.signals):
        rows = (label < 0) | (label == k)
        y = label[rows] == k
        lr = limits[name]["auc"]
        # far out of the bulk every score nears 1: the LR is not beaten beyond noise
        heavy = name in HEAVY_SIGNALS
        margin = -AUC_SE if heavy else 3 * AUC_SE
        assert (lr > 0.995) if heavy else (0.85 < lr < 0.995), (name, lr)
        for method, result in detectors.items():
            assert lr > result.per_signal[name]["auc"] + margin, (name, method)
        for feature, score in simple.items():  # either orientation
            auc = roc_auc_score(y, score[rows])
            assert lr > max(auc, 1 - auc) + margin, (name, feature, auc)


# Threshold: 0.55 is 7 standard errors of a random score's AUC (AUC_SE = 0.0072) above
# 0.5 (for the best of the 4 soft signals, a random score passes with probability < 1e-10),
# so a detector passing it has learned something about the background that a signal
# breaks. The heavy signals (far out of the bulk) would make it too easy: left out.
# Measured here (MLP; run 0, the one tested): dSVDD 0.65 (gluino), DROCC 0.63 (chargino),
# DDD 0.88 (monojet); runs 1 and 2 give dSVDD 0.81 / 0.65, DROCC 0.56 / 0.71, DDD 0.88 /
# 0.88. DROCC is the least stable (the signal it finds changes with the seed), and it ranks
# monojet as more background-like than background (AUC ~0.2): a detector need not separate
# every signal.
SEPARATES = 0.55


@pytest.mark.parametrize("method", ["dSVDD", "DROCC", "DDD"])
def test_each_detector_separates_a_built_in_signal_better_than_random(method, detectors):
    result = detectors[method]
    soft = [s for s in result.per_signal if s not in HEAVY_SIGNALS]
    best = max(soft, key=lambda s: result.per_signal[s]["auc"])
    assert AUC_SE < 0.0075
    assert result.per_signal[best]["auc"] > SEPARATES, result.per_signal


def test_truth_numbers_match_an_independent_computation(detectors):
    result = detectors["DDD"]
    scores, label = result.scores["val_loss"], result.test_signal
    bkg = np.sort(scores[label < 0])
    for k, name in enumerate(result.signals):
        sig = scores[label == k]
        truth = result.per_signal[name]
        auc = roc_auc_score(np.r_[np.zeros(bkg.size), np.ones(sig.size)], np.r_[bkg, sig])
        assert truth["auc"] == pytest.approx(auc, abs=1e-12)
        for eps in (1e-2, 1e-3):
            n_pass = int(eps * bkg.size)  # background events above the cut
            cut = bkg[bkg.size - n_pass - 1]
            assert np.sum(bkg > cut) <= n_pass
            assert truth[f"eps_s_{eps:.0e}".replace("e-0", "e-")] == np.mean(sig > cut)
        assert math.isnan(truth["eps_s_1e-4"])  # 4000 test background events: unmeasurable
        np.testing.assert_allclose(efficiency_curve(bkg, sig, [1.0]), [1.0])
    for metric in TRUTH_METRICS:
        values = [v[metric] for v in result.per_signal.values() if not math.isnan(v[metric])]
        mean = sum(values) / len(values) if values else math.nan
        assert result.metrics[metric] == pytest.approx(mean, nan_ok=True)


# -- method properties on these events ----------------------------------------------------
def test_dsvdd_with_bias_terms_is_refused_by_the_registry(spec):
    with pytest.raises(HyperparameterError, match=r"^dSVDD hyperparameter 'bias': must be false"):
        evaluate({"bias": True}, DMCell("dSVDD", "MLP", spec), "full")
    with pytest.raises(HyperparameterError, match=r"grid dimension: grid.backbones"):
        get_method("DROCC").validate({"backbone": "ParT"})


def test_drocc_negatives_lie_at_the_requested_radius(spec):
    from objectives.unsupervised import EventArrays
    from objectives.unsupervised._train import Scaler, build
    from objectives.unsupervised.drocc import (
        LogitNet,
        SearchSpace,
        adversarial_negatives,
        data_scale,
    )
    from objectives.unsupervised.params import validate

    train = EventArrays.from_events(load_sets(spec).train).take(slice(0, 500))
    hp = get_method("DROCC").validate({"radius": 3.0, "gamma": 1.5})
    scaler = Scaler.fit(train)
    x = scaler.inputs(train)
    space = SearchSpace.of(scaler, train)
    radius = hp["radius"] * data_scale(space, x)  # in units of the data's own scale
    gen = torch.Generator().manual_seed(0)
    net = build(LogitNet, validate("DROCC", {**hp, "backbone": "MLP"}), train, scaler, gen).eval()
    neg = adversarial_negatives(
        net,
        x,
        space=space,
        radius=radius,
        gamma=hp["gamma"],
        steps=hp["ascent_steps"],
        step_size=hp["ascent_step_size"],
        generator=gen,
    )
    dist = (space.coordinates(neg) - space.coordinates(x)).norm(dim=1)
    assert (dist >= radius - 1e-4).all() and (dist <= 1.5 * radius + 1e-4).all()
    assert torch.equal(neg.mask, x.mask)


def test_ddd_ensemble_keeps_exactly_the_trials_in_its_band(spec):
    cell = DMCell("DDD", "MLP", spec)
    trials = [{"sigmas": s, "p_drops": 0.3, "p_adds": 0.3, "epochs": 4} for s in (0.02, 0.5)]
    band = [0.55, 0.8]
    result = evaluate_ensemble([{**t, "auc_band": band} for t in trials], cell, Split.half(0))
    rows = result.info["detector"]["aucs"]
    assert len(rows) == 2 and any(r["kept"] for r in rows)
    for row in rows:  # kept: in the band and no generic anomaly ranked below random
        assert row["kept"] == (band[0] <= row["auc"] <= band[1] and not row["inverts"]), rows
    assert result.info["detector"]["n_kept"] == sum(r["kept"] for r in rows)
    with pytest.raises(HyperparameterError, match=r"^DDD hyperparameter 'auc_band': no model"):
        evaluate_ensemble([{**t, "auc_band": [0.99, 1.0]} for t in trials], cell, Split.half(0))


def test_ensemble_over_trials_is_the_mean_of_standardised_members(spec):
    from objectives.unsupervised import EventArrays, fit
    from objectives.unsupervised.ensemble import ScoreEnsemble

    sets = load_sets(spec)
    pool = EventArrays.from_events(sets.train)
    train, val = pool.take(slice(0, 1000)), pool.take(slice(1000, 1500))
    hps = [{"epochs": 2, "only_ce_epochs": 1, "radius": r} for r in (2.0, 8.0)]
    members = [fit("DROCC", train, val, hp, seed=s) for hp, s in zip(hps, (1, 2), strict=True)]
    ens = ScoreEnsemble.of(members, val)
    test = EventArrays.from_events(sets.test_background).take(slice(0, 200))
    z = [(m.score(test) - m.score(val).mean()) / m.score(val).std() for m in members]
    np.testing.assert_allclose(ens.score(test), (z[0] + z[1]) / 2, rtol=1e-6, atol=1e-9)
    assert ens.val_loss == pytest.approx(np.mean([m.val_loss for m in members]))
    # in a cell, members that invert a generic anomaly are left out: these two DROCCs
    # (2 epochs) each invert one, so their average is refused; dSVDD's two are kept
    with pytest.raises(EnsembleRefused, match=r"^DROCC ensemble: every member .*set 1: "):
        evaluate_ensemble(hps, DMCell("DROCC", "MLP", spec), Split.half(0))
    two = [{"epochs": 2, "rep_dims": [d]} for d in (5, 8)]
    cell_result = evaluate_ensemble(two, DMCell("dSVDD", "MLP", spec), Split.half(0))
    assert cell_result.info["n_members"] == 2 and len(cell_result.info["hp"]) == 2
    assert cell_result.info["detector"]["n_dropped"] == 0
