"""The signal-agnostic limit and the multiplicity calibration against known truth (issue 25).

An event with N objects has a density in 3N + 2 dimensions: across multiplicities the
exact ``-log p_bkg`` mostly counts objects and calls an event with fewer objects
typical. ``BkgDensity`` and a calibrated detector read a score as the background's own
tail probability within the event's multiplicity, joined with the multiplicity's rarity.
Checked on events drawn from the synthetic generator, whose density is exact: the tail
probabilities are uniform under the background in every multiplicity, an event far from
the bulk ranks high whatever its number of objects, and a calibrated score no longer
follows the multiplicity on background.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kstest, spearmanr

from objectives.darkmachines.format import events_from_records
from objectives.darkmachines.synthetic import DMSyntheticModel
from objectives.metrics import roc_auc
from objectives.unsupervised import EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.calibration import CalibratedDetector, MultiplicityTails, calibrated

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Reference events per multiplicity of the tests' yardstick (the default is 10,000).
PER_COUNT = 2000


def _ks_bound(n_ref: int, n_test: int) -> float:
    """Two-sample Kolmogorov-Smirnov critical value at alpha = 0.001: a reference of
    n_ref events estimates the tail probabilities, n_test events test them."""
    return 1.95 * math.sqrt(1 / n_ref + 1 / n_test)


@pytest.fixture(scope="module")
def model():
    return DMSyntheticModel()


@pytest.fixture(scope="module")
def tails():
    from objectives.unsupervised.bkg_density import background_tails

    return background_tails(per_count=PER_COUNT, seed=1)


@pytest.fixture(scope="module")
def background(model):
    """6000 background events as the detectors see them: 2000 held out, 4000 to test."""
    ev = events_from_records(model.sample_background(6000, np.random.default_rng(3)))
    arrays = EventArrays.from_events(ev)
    return arrays.take(slice(0, 2000)), arrays.take(slice(2000, None))


class _Density(Detector):
    """The exact -log p_bkg as a detector's score: one that learned the density perfectly."""

    method, val_loss, info = "density", None, {}

    def score(self, arrays):
        from objectives.unsupervised.bkg_density import as_object_events

        return -DMSyntheticModel().log_prob_background(as_object_events(arrays))


def test_the_yardsticks_tail_probabilities_are_uniform_in_every_multiplicity(model, tails):
    rng = np.random.default_rng(7)
    for n in (0, 2, 4, 7, 10):
        ev = events_from_records(model.sample_background_given_count(n, 1500, rng))
        t = tails.within(-model.log_prob_background(ev), ev.mask.sum(axis=1))
        assert kstest(t, "uniform").statistic < _ks_bound(PER_COUNT, len(t)), n
    # and the joint p-value of multiplicity and density over the whole background
    ev = events_from_records(model.sample_background(5000, rng))
    p = tails.p_value(-model.log_prob_background(ev), ev.mask.sum(axis=1))
    assert kstest(p, "uniform").statistic < _ks_bound(PER_COUNT, len(p))
    assert tails.pmf.sum() == pytest.approx(1.0)


def test_bkg_density_is_a_p_value_of_the_background_not_an_object_count(background):
    from objectives.unsupervised.baselines import fit_baseline

    val, test = background
    det = fit_baseline("BkgDensity", {}, val, val, seed=0, synthetic=True)
    score = det.score(test)
    # exp(-score) is the background's p-value: uniform under the background
    assert kstest(np.exp(-score), "uniform").statistic < _ks_bound(10_000, len(score))
    # the raw density counts objects; the yardstick hardly follows the multiplicity
    n = test.mask.sum(axis=1)
    assert spearmanr(-det.log_density(test), n)[0] > 0.85
    assert abs(spearmanr(score, n)[0]) < 0.4


def test_bkg_density_ranks_an_out_of_bulk_event_high_whatever_its_multiplicity(background):
    """Background events cut down to their leading object, with MET times e^1.5: far from
    the bulk, yet the raw density calls them typical (fewer density factors)."""
    from objectives.unsupervised.baselines import fit_baseline
    from objectives.unsupervised.edits import drop_objects, shift_met

    val, test = background
    rng = np.random.default_rng(0)
    toy = test.take(np.flatnonzero(test.mask.sum(axis=1) >= 3)[:1000])
    while (toy.mask.sum(axis=1) > 1).any():
        more = np.flatnonzero(toy.mask.sum(axis=1) > 1)
        one = np.flatnonzero(toy.mask.sum(axis=1) <= 1)
        toy = EventArrays.concat([drop_objects(toy.take(more), 1.0, rng), toy.take(one)])
    toy = shift_met(toy, 1.5)
    det = fit_baseline("BkgDensity", {}, val, val, seed=0, synthetic=True)
    y = np.r_[np.zeros(len(test)), np.ones(len(toy))]
    assert roc_auc(np.r_[det.score(test), det.score(toy)], y) > 0.75
    assert roc_auc(-np.r_[det.log_density(test), det.log_density(toy)], y) < 0.4


def test_a_calibrated_score_does_not_follow_the_multiplicity_on_background(background):
    val, test = background
    density = _Density()
    n_val, n_test = val.mask.sum(axis=1), test.mask.sum(axis=1)
    assert spearmanr(density.score(test), n_test)[0] > 0.85  # the bias to remove
    tails = MultiplicityTails.fit(density.score(val), n_val, n_max=val.max_objects)
    within = tails.within(density.score(test), n_test)
    assert abs(spearmanr(within, n_test)[0]) < 0.05
    for n in np.unique(n_test):
        if (n_test == n).sum() >= 300:
            ref = (n_val == n).sum()
            assert kstest(within[n_test == n], "uniform").statistic < _ks_bound(ref, 300), n
    # joined with the multiplicity's rarity: few objects is rare, not typical
    det = calibrated(density, val, "multiplicity")
    assert isinstance(det, CalibratedDetector) and det.method == "density"
    score = det.score(test)
    common = np.argmax(np.bincount(n_val))
    assert score[n_test == 0].mean() > score[n_test == common].mean() + 0.5
    assert density.score(test)[n_test == 0].mean() < density.score(test)[n_test == common].mean()
    assert calibrated(density, val, "none") is density
    with pytest.raises(ValueError, match="calibration: must be one of none, multiplicity"):
        calibrated(density, val, "within")


def test_the_calibration_hyperparameter_reaches_every_trained_method(background):
    """dSVDD reads its score calibrated by default (its members too), DDD and the
    baselines raw; either way on request, the same training underneath."""
    from objectives.unsupervised.baselines import fit_baseline
    from objectives.unsupervised.detector import fit
    from objectives.unsupervised.parts import score_parts

    val, test = background
    train = test.take(slice(0, 2000))
    hp = {"rep_dims": [3, 4], "epochs": 1, "batch_size": 256}
    cal = fit("dSVDD", train, val, hp, seed=0)
    raw = fit("dSVDD", train, val, {**hp, "calibration": "none"}, seed=0)
    assert isinstance(cal, CalibratedDetector) and not isinstance(raw, CalibratedDetector)
    np.testing.assert_allclose(cal.inner.score(test), raw.score(test))
    assert cal.val_loss == raw.val_loss and cal.info["calibration"] == "multiplicity"
    n = test.mask.sum(axis=1)
    for part, scores in cal.member_scores(test).items():
        inner = cal.member_tails[part].score(raw.member_scores(test)[part], n)
        np.testing.assert_allclose(scores, inner)
    assert set(score_parts(cal, test, val)) == {"d3", "d4"}
    iso = fit_baseline("IsolationForest", {"n_estimators": 20}, train, val, seed=0)
    iso_cal = fit_baseline(
        "IsolationForest", {"n_estimators": 20, "calibration": "multiplicity"}, train, val, seed=0
    )
    assert not isinstance(iso, CalibratedDetector) and isinstance(iso_cal, CalibratedDetector)
    np.testing.assert_allclose(iso_cal.inner.score(test), iso.score(test))
