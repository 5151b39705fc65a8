"""Metrics against known truth: analytic ARGOS, SIC floor, sklearn's ROC and log loss."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm, spearmanr
from sklearn.metrics import log_loss, roc_auc_score, roc_curve
from sklearn.utils.class_weight import compute_sample_weight

from objectives.metrics import (
    argos,
    balanced_weights,
    max_sic,
    roc_auc,
    sic_curve,
    weighted_bce,
)

# 1-D toy: background N(0, 1), signal N(MU_S, SIG_S); the score x is monotone in the LR.
MU_S, SIG_S = 2.0, 0.5


def _mixture(rng, n_data, n_template, f):
    n_sig = rng.binomial(n_data, f)
    data = np.concatenate([rng.normal(MU_S, SIG_S, n_sig), rng.normal(size=n_data - n_sig)])
    template = rng.normal(size=n_template)
    scores = np.concatenate([data, template])
    is_data = np.concatenate([np.ones(n_data), np.zeros(n_template)]).astype(int)
    return scores, is_data


def _analytic_argos(f):
    t = np.linspace(-3, 6, 200001)
    eps_b = norm.sf(t)
    eps_s = norm.sf(t, MU_S, SIG_S)
    return float(np.max(f * (eps_s - eps_b) / np.sqrt(eps_b)))


def test_argos_matches_analytic_mixture():
    rng = np.random.default_rng(1)
    f = 0.05
    scores, is_data = _mixture(rng, 400_000, 400_000, f)
    expected = _analytic_argos(f)  # about 0.163 here
    # Statistical scale: over seeds the estimate scatters by about 2 % (rel), biased slightly up.
    assert argos(scores, is_data) == pytest.approx(expected, rel=0.06)


def test_argos_is_zero_when_data_equal_template_and_weights_act_like_counts():
    rng = np.random.default_rng(2)
    x = rng.normal(size=1000)
    assert argos(np.concatenate([x, x]), np.repeat([1, 0], 1000)) == pytest.approx(0.0, abs=1e-12)
    # integer weights = repeated events
    s = rng.normal(size=300)
    d = rng.integers(0, 2, 300)
    w = rng.integers(1, 4, 300)
    assert argos(s, d, w) == pytest.approx(argos(np.repeat(s, w), np.repeat(d, w)))


def test_argos_ranking_follows_true_sic():
    rng = np.random.default_rng(3)
    f = 0.05
    x_mix, is_data = _mixture(rng, 100_000, 100_000, f)
    x_test = np.concatenate([rng.normal(MU_S, SIG_S, 20_000), rng.normal(size=100_000)])
    truth = np.repeat([1, 0], [20_000, 100_000])
    noise_levels = [8.0, 4.0, 2.0, 1.0, 0.5, 0.0]  # increasing quality
    argos_vals, sic_vals = [], []
    for sigma in noise_levels:
        argos_vals.append(argos(x_mix + sigma * rng.normal(size=x_mix.size), is_data))
        sic_vals.append(max_sic(x_test + sigma * rng.normal(size=x_test.size), truth))
    assert np.all(np.diff(sic_vals) > 0)  # the family really is ordered by quality
    assert spearmanr(argos_vals, sic_vals).statistic >= 0.9


def test_argos_floor_keeps_only_cuts_with_enough_template_events():
    rng = np.random.default_rng(4)
    s = rng.normal(size=400)
    d = rng.integers(0, 2, 400)
    s[:9], d[:9] = np.linspace(9, 8, 9), [1, 1, 1, 1, 0, 1, 1, 1, 1]  # 8 data, 1 template

    def brute(m):  # every threshold, by hand
        out = []
        for t in np.unique(s):
            n_t = np.sum((s >= t) & (d == 0))
            if n_t >= max(m, 1):
                e_d, e_t = np.mean(s[d == 1] >= t), np.mean(s[d == 0] >= t)
                out.append(e_d / np.sqrt(e_t) - np.sqrt(e_t))
        return max(out)

    for m in (0, 1, 5, 25, 150):
        assert argos(s, d, min_template=m) == pytest.approx(brute(m), rel=1e-12)
    assert argos(s, d, min_template=5) < argos(s, d)  # the one-event cut is gone
    assert np.isnan(argos(s, d, min_template=401))  # no cut has that many template events
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="min_template must be an integer >= 0"):
            argos(s, d, min_template=bad)


def test_argos_floor_estimates_the_truth_where_the_signal_outruns_the_background():
    # Signal N(4, 1) beyond a N(0, 1) background: the true f (eps_S - eps_B) / sqrt(eps_B)
    # grows without bound as the cut tightens, so the unfloored maximum sits on the few
    # template events of the tightest cuts (2.5-4x the truth within the floor here). With
    # the truth Max SIC's floor (25 template events) ARGOS estimates the true maximum over
    # the cuts it keeps: it scatters by about 10 % over seeds.
    mu, f, n_data, n_template = 4.0, 0.005, 60_000, 136_000
    t = np.linspace(-3, 8, 400_001)
    eps_b, eps_s = norm.sf(t), norm.sf(t, mu, 1.0)
    kept = eps_b >= 25 / n_template
    truth = np.max(f * (eps_s[kept] - eps_b[kept]) / np.sqrt(eps_b[kept]))
    ratios = []
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        n_sig = rng.binomial(n_data, f)
        scores = np.concatenate(
            [rng.normal(mu, 1.0, n_sig), rng.normal(size=n_data - n_sig + n_template)]
        )
        is_data = np.repeat([1, 0], [n_data, n_template])
        ratios.append(argos(scores, is_data, min_template=25) / truth)
        assert argos(scores, is_data) > 2 * truth
    assert np.all(np.abs(np.array(ratios) - 1) < 0.25) and abs(np.median(ratios) - 1) < 0.1


def test_sic_curve_excludes_points_below_the_floor_and_matches_sklearn_with_ties():
    rng = np.random.default_rng(4)
    n_bkg = 1000
    truth = np.concatenate([np.ones(300), np.zeros(n_bkg)]).astype(int)
    scores = np.round(rng.normal(size=truth.size) + truth, 1)  # many ties
    tpr, fpr, sic = sic_curve(scores, truth)
    floor = 1.0 / (n_bkg * 0.04)
    fpr_ref, tpr_ref, _ = roc_curve(truth, scores, drop_intermediate=False)
    keep = np.rint(fpr_ref * n_bkg) > 25  # more than 25 background events pass
    np.testing.assert_allclose(fpr, fpr_ref[keep])
    np.testing.assert_allclose(tpr, tpr_ref[keep])
    np.testing.assert_allclose(sic, tpr_ref[keep] / np.sqrt(fpr_ref[keep]))
    assert fpr.min() > floor and (fpr_ref[~keep] <= floor + 1e-12).all() and (~keep).sum() > 1


def test_random_score_has_max_sic_near_one():
    rng = np.random.default_rng(5)
    truth = np.repeat([1, 0], 20_000)
    assert max_sic(rng.random(truth.size), truth) == pytest.approx(1.0, abs=0.05)


def test_perfect_score_is_floor_limited():
    rng = np.random.default_rng(6)
    n_bkg = 5000
    truth = np.repeat([1, 0], [500, n_bkg])
    scores = np.concatenate([rng.uniform(2, 3, 500), rng.uniform(0, 1, n_bkg)])
    # the smallest kept FPR is 26 / n_bkg (FPR > 25 / n_bkg), where TPR is already 1
    assert max_sic(scores, truth) == pytest.approx(np.sqrt(n_bkg / 26))
    assert max_sic(scores, truth, max_rel_error=0.5) == pytest.approx(np.sqrt(n_bkg / 5))


def test_single_class_gives_nan():
    s = np.arange(10.0)
    assert np.isnan(max_sic(s, np.zeros(10, int)))
    assert np.isnan(roc_auc(s, np.ones(10, int)))
    assert np.isnan(argos(s, np.ones(10, int)))
    assert sic_curve(s, np.zeros(10, int))[0].size == 0


def test_nan_scores_give_nan_not_a_ranking():
    s = np.array([0.1, np.nan, 0.7, 0.4])
    y = np.array([0, 1, 1, 0])
    assert np.isnan(argos(s, y)) and np.isnan(weighted_bce(s, y))
    assert np.isnan(max_sic(s, y)) and np.isnan(roc_auc(s, y))


def test_roc_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 2, 2000)
    scores = np.round(rng.normal(size=2000) + truth, 1)
    assert roc_auc(scores, truth) == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)


def test_bce_matches_sklearn_balanced_log_loss():
    rng = np.random.default_rng(8)
    y = (rng.random(3000) < 0.3).astype(int)
    p = np.clip(rng.random(3000), 0.01, 0.99)
    expected = log_loss(y, p, sample_weight=compute_sample_weight("balanced", y))
    assert weighted_bce(p, y) == pytest.approx(expected, rel=1e-12)
    # per-event weights act like repeated events, and already-balanced weights change nothing
    w = rng.integers(1, 4, 3000)
    assert weighted_bce(p, y, w) == pytest.approx(weighted_bce(np.repeat(p, w), np.repeat(y, w)))
    assert weighted_bce(p, y, balanced_weights(y)) == pytest.approx(weighted_bce(p, y))
    # clipping keeps certainty finite
    assert np.isfinite(weighted_bce(np.array([0.0, 1.0]), np.array([1, 0])))


def test_balanced_weights_equalise_class_totals():
    y = np.array([1, 1, 1, 0])
    w = balanced_weights(y, [1.0, 2.0, 1.0, 5.0])
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum()) and w.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(w[:3] / w[0], [1, 2, 1])


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="differ in length"):
        argos(np.zeros(3), np.zeros(4))
