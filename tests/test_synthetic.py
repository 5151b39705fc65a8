"""Synthetic dataset: exact densities, calibration, file round trip, exact likelihood ratio."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from sklearn.metrics import roc_auc_score

from objectives.lhco import load_events
from objectives.regions import DEFAULT_REGION
from objectives.synthetic import (
    N_BKG,
    SHIFT,
    SyntheticModel,
    SyntheticSpec,
    generate,
    sidecar_path,
    synthetic_paths,
    write_synthetic,
)

SR = DEFAULT_REGION.sr
in_sr = DEFAULT_REGION.in_sr
BOX_LO = np.array([0.02, 0.02, 0.1, 0.1])
BOX_HI = np.array([0.3, 0.6, 0.9, 0.9])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    spec = SyntheticSpec(scale=0.05, seed=3)
    out = tmp_path_factory.mktemp("synthetic")
    return spec, out, write_synthetic(spec, out)


def test_mjj_densities_normalise():
    model = SyntheticModel()

    def integral(f, lo, hi):
        return quad(lambda t: float(np.exp(f(np.array([t])))[0]), lo, hi, limit=200)[0]

    assert integral(model.log_prob_mjj_bkg, 1.5, 8.0) == pytest.approx(1, abs=1e-6)
    assert integral(model.log_prob_mjj_sig, 2.5, 4.5) == pytest.approx(1, abs=1e-6)
    assert integral(model.log_prob_mjj_bkg, *SR) == pytest.approx(0.121, abs=0.002)
    assert integral(model.log_prob_mjj_sig, *SR) == pytest.approx(0.772, abs=0.005)


@pytest.mark.parametrize(
    ("shifted", "signal", "mjj"),
    [
        (False, False, 3.5),
        (False, False, 2.8),
        (False, True, 3.5),
        (True, False, 3.0),
        (True, True, 3.4),
    ],
)
def test_density_matches_sampler_on_a_box(shifted, signal, mjj):
    """P(box) from integrating the density (uniform MC) equals the sampled fraction in the box."""
    model = SyntheticModel(shifted=shifted)
    rng = np.random.default_rng(1)
    lo, hi = BOX_LO.copy(), BOX_HI.copy()
    if shifted:
        lo[:2] += SHIFT * mjj
        hi[:2] += SHIFT * mjj
    n = 200_000
    u = lo + (hi - lo) * rng.random((n, 4))
    log_p = model.log_prob_sig(u, mjj) if signal else model.log_prob_bkg(u, mjj)
    dens = np.exp(log_p) * np.prod(hi - lo)
    p_density, err_density = dens.mean(), dens.std() / np.sqrt(n)
    draw = model.sample_sig if signal else model.sample_bkg
    x = draw(np.full(n, mjj), rng)
    p_sample = np.mean(np.all((x > lo) & (x < hi), axis=1))
    err = np.hypot(err_density, np.sqrt(p_sample * (1 - p_sample) / n))
    assert 0.2 < p_sample < 0.95
    assert abs(p_density - p_sample) < 4 * err


def test_background_depends_on_mjj_and_signal_does_not():
    model = SyntheticModel()
    rng = np.random.default_rng(2)
    lo = model.sample_bkg(np.full(50_000, 2.5), rng)
    hi = model.sample_bkg(np.full(50_000, 4.5), rng)
    assert np.median(hi[:, 0]) > 1.2 * np.median(lo[:, 0])  # QCD jet masses grow with mjj
    x = model.sample_sig(np.full(10, 3.5), rng)
    np.testing.assert_array_equal(model.log_prob_sig(x, 3.0), model.log_prob_sig(x, 4.0))


def test_round_trip_through_loader_and_idempotence(written):
    spec, out, (data_path, extra_path) = written
    data, extra = generate(spec)
    for table, path in ((data, data_path), (extra, extra_path)):
        ev = load_events(path)
        np.testing.assert_allclose(ev.mjj, table.mjj, rtol=1e-9)
        np.testing.assert_allclose(ev.x, table.x, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(ev.label, table.label)
    heavier_first = data.frame["mj1"] > data.frame["mj2"]
    assert 0.45 < heavier_first.mean() < 0.55
    assert in_sr(load_events(extra_path).mjj).all()
    stamp = data_path.stat().st_mtime_ns
    assert write_synthetic(spec, out) == (data_path, extra_path)
    assert data_path.stat().st_mtime_ns == stamp
    assert synthetic_paths(spec, out) == (data_path, extra_path)
    assert sidecar_path(spec, out).is_file()


def test_calibration_sr_fractions_and_injection(written):
    spec, _, (data_path, extra_path) = written
    ev = load_events(data_path)
    n_bkg, n_sig, n_extra = spec.sizes
    assert (ev.label == 0).sum() == n_bkg and (ev.label == 1).sum() == n_sig
    assert len(load_events(extra_path)) == n_extra
    f_bkg = in_sr(ev.mjj[ev.label == 0]).mean()
    f_sig = in_sr(ev.mjj[ev.label == 1]).mean()
    assert f_bkg == pytest.approx(0.121, abs=4 * np.sqrt(0.121 * 0.879 / n_bkg))
    assert f_sig == pytest.approx(0.772, abs=4 * np.sqrt(0.772 * 0.228 / n_sig))
    s, b = 1000 * f_sig, N_BKG * f_bkg  # N = 1000 injected into the full-size background
    assert s / b == pytest.approx(0.0064, rel=0.06)
    assert s / np.sqrt(b) == pytest.approx(2.2, rel=0.06)


def test_exact_likelihood_ratio_beats_every_single_feature():
    model = SyntheticModel()
    rng = np.random.default_rng(4)
    n = 20_000
    xb = model.sample_bkg(model.sample_mjj_bkg(n, rng, *SR), rng)
    xs = model.sample_sig(model.sample_mjj_sig(4 * n, rng)[:n], rng)
    x = np.vstack([xb, xs])
    y = np.r_[np.zeros(n), np.ones(n)]
    auc_lr = roc_auc_score(y, model.likelihood_ratio(x))
    singles = [max(a, 1 - a) for a in (roc_auc_score(y, x[:, i]) for i in range(4))]
    assert auc_lr > max(singles) + 0.01
    assert auc_lr > 0.95


@pytest.mark.parametrize(("shifted", "signal"), [(False, False), (True, False), (True, True)])
def test_signal_region_density_matches_monte_carlo(shifted, signal):
    """p(x | SR) of the exact likelihood ratio: P(box | SR) from the density (uniform MC over
    the box) equals the fraction of generated SR events in the box."""
    model = SyntheticModel(shifted=shifted)
    rng = np.random.default_rng(11)
    lo, hi = BOX_LO.copy(), BOX_HI.copy()
    if shifted:
        lo[:2] += SHIFT * 3.5
        hi[:2] += SHIFT * 3.5
    n = 100_000
    u = lo + (hi - lo) * rng.random((n, 4))
    dens = np.exp(model.log_prob_sr(u, signal)) * np.prod(hi - lo)
    p_density, err_density = dens.mean(), dens.std() / np.sqrt(n)
    if signal:  # the signal's own mjj spectrum, restricted to the SR
        mjj = model.sample_mjj_sig(3 * n, rng)
        mjj = mjj[DEFAULT_REGION.in_sr(mjj)][:n]
    else:
        mjj = model.sample_mjj_bkg(n, rng, *SR)
    x = (model.sample_sig if signal else model.sample_bkg)(mjj, rng)
    p_sample = np.mean(np.all((x > lo) & (x < hi), axis=1))
    err = np.hypot(err_density, np.sqrt(p_sample * (1 - p_sample) / len(x)))
    assert 0.1 < p_sample < 0.95
    assert abs(p_density - p_sample) < 4 * err


@pytest.mark.slow
def test_a_classifier_approaches_the_exact_likelihood_ratio_from_below():
    """Neyman-Pearson: a supervised classifier's AUC rises towards the exact LR's with more
    training data, and never beats it beyond the test set's noise."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = SyntheticModel()
    rng = np.random.default_rng(12)

    def sample(n):
        xb = model.sample_bkg(model.sample_mjj_bkg(n, rng, *SR), rng)
        xs = model.sample_sig(np.full(n, 3.5), rng)
        return np.vstack([xb, xs]), np.r_[np.zeros(n), np.ones(n)]

    x_test, y_test = sample(40_000)
    auc_lr = roc_auc_score(y_test, model.likelihood_ratio(x_test))
    aucs = []
    for n in (300, 3_000, 60_000):
        x, y = sample(n)
        clf = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(x, y)
        aucs.append(roc_auc_score(y_test, clf.predict_proba(x_test)[:, 1]))
    assert aucs[0] < aucs[1] < aucs[2] <= auc_lr + 0.002, (aucs, auc_lr)
    assert auc_lr - aucs[2] < 0.01, (aucs, auc_lr)


def test_shifted_variant_moves_masses_with_mjj():
    mjj = np.linspace(2.0, 6.0, 1000)
    plain = SyntheticModel().sample_bkg(mjj, np.random.default_rng(5))
    shifted_model = SyntheticModel(shifted=True)
    shifted = shifted_model.sample_bkg(mjj, np.random.default_rng(5))
    np.testing.assert_allclose(
        shifted - plain, np.column_stack([SHIFT * mjj, SHIFT * mjj, 0 * mjj, 0 * mjj]), atol=1e-12
    )
    np.testing.assert_allclose(
        shifted_model.log_prob_bkg(shifted, mjj), SyntheticModel().log_prob_bkg(plain, mjj)
    )
    assert np.corrcoef(shifted[:, 0], mjj)[0, 1] > 0.5
    with pytest.raises(ValueError, match="mjj"):
        shifted_model.log_prob_sig(shifted)


def test_spec_validation():
    with pytest.raises(ValueError, match="scale"):
        SyntheticSpec(scale=0)
    assert SyntheticSpec(scale=0.02).sizes == (20_000, 2_000, 12_257)


def test_shifted_files_round_trip_and_lr_is_informative(tmp_path):
    spec = SyntheticSpec(scale=0.02, shifted=True, seed=1)
    data_path, _ = write_synthetic(spec, tmp_path)
    table, _ = generate(spec)
    ev = load_events(data_path)
    np.testing.assert_allclose(ev.x, table.x, rtol=1e-9, atol=1e-12)
    assert np.corrcoef(ev.x[ev.label == 0, 0], ev.mjj[ev.label == 0])[0, 1] > 0.5
    sr = in_sr(ev.mjj)
    lr = SyntheticModel(shifted=True).likelihood_ratio(ev.x[sr])
    assert roc_auc_score(ev.label[sr], lr) > 0.95
