"""The statistical error of a measured delta_sys (issue 26 §7), against known truth.

Background-only events with an exact template (data and template drawn from one
density): delta_sys is 0 in expectation, so ``|delta_sys| < 2 error`` must hold at
about the rate a Gaussian interval states (95 %) over many seeds. The scan is the
bump hunt's: nine overlapping windows, k folds, runs with their own classifiers.
The windows' overlap must be counted: three copies of one window measure what that
window measures, with the same error, where independent windows would shrink it by
sqrt(3).
"""

from __future__ import annotations

import numpy as np
import pytest

from objectives.bumphunt import cut_and_count, delta_sys_of_runs, exact_fold_scores
from objectives.delta_sys import background_only_scan, delta_sys_bootstrap, event_ids

EPS_B = (0.05, 0.01)


def _measure(seed: int, replicates=200, **kwargs):
    folds, ids = background_only_scan(seed, **kwargs)
    return delta_sys_bootstrap(folds, *ids, EPS_B, replicates=replicates, seed=seed)


def test_value_is_the_median_over_runs_of_the_cut_and_count():
    folds, ids = background_only_scan(0)
    measured = delta_sys_bootstrap(folds, *ids, EPS_B, replicates=50)
    for i, eps in enumerate(EPS_B):
        counts = [
            [cut_and_count(window[r], eps, saturated=None) for window in folds] for r in range(3)
        ]
        median, per_run = delta_sys_of_runs(counts)
        assert measured[i].value == pytest.approx(median)
        assert measured[i].per_run == pytest.approx(per_run)
        assert measured[i].replicates == 50 and measured[i].error > 0


def test_the_interval_covers_zero_at_the_stated_rate_with_an_exact_template():
    seeds = range(100)
    covered = np.array([[d.consistent_with_zero for d in _measure(s)] for s in seeds])
    rate = covered.mean(axis=0)
    # a 2-sigma interval covers 95 %; 100 seeds: binomial sd 2.2 %
    assert np.all(rate >= 0.89) and np.all(rate <= 0.995), rate


def test_windows_treated_as_independent_undercover():
    """The same events in overlapping windows: ignoring that shrinks the error."""
    seeds = range(40)
    shared = np.array([[d.error for d in _measure(s)] for s in seeds])
    apart = np.array([[d.error for d in _measure(s, shared=False)] for s in seeds])
    ratio = np.median(shared / apart, axis=0)
    assert np.all(ratio > 1.3), ratio  # each event lies in up to 4 windows


def test_copies_of_one_window_measure_that_window_with_its_error():
    rng = np.random.default_rng(5)
    d, t = rng.random((900, 2)), rng.random((1800, 2))
    runs = [[exact_fold_scores(d[:, 1], t[:, 1], f, 3, r) for f in range(3)] for r in range(2)]
    one = delta_sys_bootstrap([runs], *event_ids([d], [t]), EPS_B, replicates=300, seed=1)
    three = delta_sys_bootstrap(
        [runs] * 3, *event_ids([d] * 3, [t] * 3), EPS_B, replicates=300, seed=1
    )
    for a, b in zip(one, three, strict=True):
        assert b.value == pytest.approx(a.value)
        assert b.error == pytest.approx(a.error)  # not a / sqrt(3)


def test_a_single_window_error_is_the_reference_sigma_stat():
    """No overlap, one run: the spread is sqrt(1 / (eps_eff N) + 1 / N_samples_after)."""
    rng = np.random.default_rng(2)
    d, t = rng.random((6000, 1)), rng.random((12000, 1))
    folds = [[[exact_fold_scores(d[:, 0], t[:, 0], f, 2, 0) for f in range(2)]]]
    (m,) = delta_sys_bootstrap(folds, *event_ids([d], [t]), [0.05], replicates=2000)
    c = cut_and_count(folds[0][0], 0.05, saturated=None)
    sigma_stat = np.sqrt(1 / c.expected + 1 / c.n_samples_after)
    assert m.error == pytest.approx(sigma_stat, rel=0.08)
