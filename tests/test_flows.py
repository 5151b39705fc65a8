"""Behaviour of the flow background models, ANODE and R-ANODE, against known truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from objectives.errors import DataError, HyperparameterError
from objectives.flows.background import BackgroundModel, train_background_model
from objectives.flows.hyperparameters import BACKGROUND_DEFAULTS, validate_flow
from objectives.flows.maf import build_maf, build_rqs_flow
from objectives.flows.preprocessing import FlowPreprocessor
from objectives.flows.sampling import MjjKDE, provenance_path, sample_signal_region, write_samples

SMALL = {"n_blocks": 4, "hidden": 48, "lr": 2e-3, "batch_size": 256, "n_keep": 3}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _toy(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    m = rng.uniform(2.5, 4.5, n)
    x = np.column_stack([rng.normal(0.1 * m, 0.05), rng.gamma(2.0, 0.1, n)])
    return x, m


def _hgb_auc(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Held-out AUC of an HGB separating samples ``a`` from ``b``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    X = np.concatenate([a, b])
    y = np.concatenate([np.ones(len(a)), np.zeros(len(b))])
    idx = np.random.default_rng(seed).permutation(len(y))
    tr, te = idx[: len(y) // 2], idx[len(y) // 2 :]
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(X[tr], y[tr])
    return roc_auc_score(y[te], clf.predict_proba(X[te])[:, 1])


# --- preprocessing -------------------------------------------------------------------


def test_preprocessing_round_trip_including_boundary_events():
    rng = np.random.default_rng(0)
    x, m = _toy(1000, rng)
    x[0, 0], x[1, 1] = 0.0, 0.0  # hard boundary values, also extremes of the fit
    pre = FlowPreprocessor.fit(x, m)
    for probe in (x, np.vstack([x.min(0), x.max(0)])):
        z = pre.transform(probe)
        assert np.all(np.isfinite(z))
        np.testing.assert_allclose(pre.inverse(z), probe, rtol=0, atol=1e-12)
    z = pre.transform(x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-9)
    back = FlowPreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(back.transform(x), z)


def test_preprocessing_jacobian_matches_finite_differences():
    rng = np.random.default_rng(1)
    x, m = _toy(200, rng)
    pre = FlowPreprocessor.fit(x, m)
    h = 1e-6
    num = np.zeros(len(x))
    for j in range(x.shape[1]):
        dx = np.zeros_like(x)
        dx[:, j] = h
        num += np.log((pre.transform(x + dx)[:, j] - pre.transform(x - dx)[:, j]) / (2 * h))
    np.testing.assert_allclose(pre.log_abs_det_jacobian(x), num, rtol=1e-5)


def test_preprocessing_clips_far_outside_events_and_rejects_bad_shapes():
    rng = np.random.default_rng(2)
    x, m = _toy(100, rng)
    pre = FlowPreprocessor.fit(x, m)
    z = pre.transform(np.array([[100.0, -100.0]]))
    assert np.all(np.isfinite(z))
    with pytest.raises(DataError, match=r"shape \(n, 2\)"):
        pre.transform(np.zeros((3, 3)))


# --- hyperparameters -----------------------------------------------------------------


def test_hyperparameters_validated_with_clear_messages():
    def validate(hp):
        return validate_flow("BackgroundFlow", hp, final=True, what="bg")

    assert validate(None) == BACKGROUND_DEFAULTS
    assert BACKGROUND_DEFAULTS["n_blocks"] == 15 and BACKGROUND_DEFAULTS["epochs"] == 100
    with pytest.raises(HyperparameterError, match="^bg hyperparameter 'n_blocks': must be an int"):
        validate({"n_blocks": 0})
    with pytest.raises(HyperparameterError, match="'lr'.*got 'fast'"):
        validate({"lr": "fast"})
    with pytest.raises(HyperparameterError, match="'depth': unknown"):
        validate({"depth": 3})
    with pytest.raises(HyperparameterError, match="'n_keep': must be <= epochs"):
        validate({"epochs": 5, "n_keep": 10})
    assert validate({"epochs": 5})["n_keep"] == 5  # fewer epochs than the kept ten


# --- flows -----------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [build_maf, build_rqs_flow])
def test_flow_density_integrates_to_one_in_2d(builder):
    """An untrained flow with random weights is still a normalised density."""
    torch.manual_seed(0)  # test fixture seeding only
    flow = builder(2, **({"n_blocks": 3, "hidden": 16} if builder is build_maf else {"hidden": 16}))
    for p in flow.parameters():  # move away from the identity-like initialisation
        p.data += 0.05 * torch.randn_like(p)
    for name, buf in flow.named_buffers():  # nflows BatchNorm starts with running_var = 0
        if name.endswith("running_var"):
            buf.fill_(1.3)
    flow.eval()
    g = np.linspace(-12, 12, 401)
    zz = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        lp = flow.log_prob(
            torch.as_tensor(zz, dtype=torch.float32), context=torch.full((len(zz), 1), 0.7)
        ).numpy()
    total = np.exp(lp).sum() * (g[1] - g[0]) ** 2
    assert total == pytest.approx(1.0, abs=0.02)


def test_background_model_density_integrates_to_one_in_feature_units():
    """Preprocessing Jacobian included: p(x | m) integrates to 1 over the padded box."""
    rng = np.random.default_rng(3)
    x, m = _toy(3000, rng)
    res = train_background_model(x[:, :1], m, {**SMALL, "epochs": 3}, seed=0)
    pre = res.model.preprocessor
    g = np.linspace(pre.lo[0], pre.hi[0], 20001)[1:-1]
    for mjj in (3.0, 3.5):
        dens = np.exp(res.model.log_prob(g[:, None], np.full(g.size, mjj)))
        assert np.trapezoid(dens, g) == pytest.approx(1.0, abs=0.01)
    assert np.isfinite(res.val_log_likelihood)
    assert res.info["kept_epochs"] and len(res.model.states) == 3


def test_background_model_save_load_and_seeded(tmp_path):
    rng = np.random.default_rng(4)
    x, m = _toy(2000, rng)
    hp = {**SMALL, "epochs": 2, "n_keep": 2}
    a = train_background_model(x, m, hp, seed=7)
    b = train_background_model(x, m, hp, seed=7)
    np.testing.assert_allclose(a.model.log_prob(x[:50], m[:50]), b.model.log_prob(x[:50], m[:50]))
    a.model.save(tmp_path / "bg.pt")
    c = BackgroundModel.load(tmp_path / "bg.pt")
    np.testing.assert_array_equal(c.log_prob(x[:50], m[:50]), a.model.log_prob(x[:50], m[:50]))
    s1 = a.model.sample(np.full(20, 3.5), np.random.default_rng(1))
    s2 = c.sample(np.full(20, 3.5), np.random.default_rng(1))
    np.testing.assert_array_equal(s1, s2)
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(DataError, match="bad.pt"):
        BackgroundModel.load(tmp_path / "bad.pt")


# --- sampling --------------------------------------------------------------------------


def test_mjj_kde_follows_sr_data_and_stays_inside():
    rng = np.random.default_rng(5)
    mjj = 3.3 + 0.4 * rng.beta(2.0, 3.0, 3000)
    kde = MjjKDE(3.3, 3.7).fit(mjj)
    s = kde.sample(10000, rng)
    assert s.min() > 3.3 and s.max() < 3.7
    assert s.mean() == pytest.approx(mjj.mean(), abs=0.005)
    assert s.std() == pytest.approx(mjj.std(), rel=0.05)
    with pytest.raises(DataError, match="outside"):
        MjjKDE(3.3, 3.7).fit(np.array([3.5, 3.8]))


def test_samples_file_written_atomically_with_provenance(tmp_path):
    rng = np.random.default_rng(6)
    x, m = _toy(1500, rng)
    res = train_background_model(x, m, {**SMALL, "epochs": 2, "n_keep": 2}, seed=0)
    rows = sample_signal_region(res.model, rng.uniform(3.31, 3.69, 300), 1000, rng)
    assert rows.shape == (1000, 3) and np.all((rows[:, 0] > 3.3) & (rows[:, 0] < 3.7))
    out = write_samples(tmp_path / "s.npy", rows, {"seed": 0, "signal": 10})
    np.testing.assert_array_equal(np.load(out), rows)
    assert json.loads(provenance_path(out).read_text()) == {"seed": 0, "signal": 10}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.npy"]


# --- against the synthetic truth -------------------------------------------------------


def _synthetic_sidebands(n: int, rng: np.random.Generator):
    from objectives.regions import DEFAULT_REGION
    from objectives.synthetic import SyntheticModel

    model = SyntheticModel()
    mjj = model.sample_mjj_bkg(n, rng)
    mjj = mjj[~DEFAULT_REGION.in_sr(mjj)]
    return model, model.sample_bkg(mjj, rng), mjj


@pytest.mark.slow
def test_flow_samples_follow_the_true_sr_background():
    """Samples at SR mjj vs true SR background: AUC near 0.5; a 1-step model is clearly off."""
    rng = np.random.default_rng(7)
    truth, x_sb, m_sb = _synthetic_sidebands(40000, rng)
    hp = {**SMALL, "n_blocks": 5, "hidden": 64, "epochs": 12, "n_keep": 3}
    good = train_background_model(x_sb, m_sb, hp, seed=0).model
    bad = train_background_model(x_sb, m_sb, hp, seed=0, max_steps=1).model
    m_sr = rng.uniform(3.3, 3.7, 8000)
    real = truth.sample_bkg(m_sr, rng)
    auc_good = _hgb_auc(good.sample(m_sr, rng), real)
    auc_bad = _hgb_auc(bad.sample(m_sr, rng), real)
    assert auc_good < 0.6
    assert auc_bad > 0.6 and auc_bad > auc_good + 0.05
    # The density is close to the truth too: mean log-likelihood gap on the SR background.
    gap = np.mean(truth.log_prob_bkg(real, m_sr) - good.log_prob(real, m_sr))
    assert 0 <= gap < 0.3


class ExactBackground:
    """The synthetic generator's p_bkg(x | m), in a preprocessor's z space (for R-ANODE tests)."""

    def __init__(self, truth, preprocessor: FlowPreprocessor):
        self.truth, self.preprocessor = truth, preprocessor

    def log_prob_z(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        pre = self.preprocessor
        x = pre.inverse(z)
        mjj = c[:, 0] * pre.m_std + pre.m_mean
        return self.truth.log_prob_bkg(x, mjj) - pre.log_abs_det_jacobian(x)


def _sr_with_signal(n_bkg: int, n_sig: int, rng: np.random.Generator):
    from objectives.synthetic import SyntheticModel

    truth = SyntheticModel()
    m_b = truth.sample_mjj_bkg(n_bkg, rng, 3.3, 3.7)
    m_s = rng.uniform(3.3, 3.7, n_sig)
    x = np.concatenate([truth.sample_bkg(m_b, rng), truth.sample_sig(m_s, rng)])
    m = np.concatenate([m_b, m_s])
    y = np.concatenate([np.zeros(n_bkg, np.int8), np.ones(n_sig, np.int8)])
    return truth, x, m, y


@pytest.mark.slow
def test_ranode_true_w_finds_signal_and_learned_w_has_right_order():
    from objectives.flows.ranode import run_ranode

    rng = np.random.default_rng(8)
    n_bkg, n_sig = 12000, 600  # w = 0.048
    truth, x, m, _ = _sr_with_signal(n_bkg, n_sig, rng)
    _, x_t, m_t, y_t = _sr_with_signal(20000, 2000, rng)
    pre = FlowPreprocessor.fit(x, m)
    bkg = ExactBackground(truth, pre)
    hp = {"epochs": 12, "n_keep": 3, "n_transforms": 3, "hidden": 32}
    w_true = n_sig / (n_bkg + n_sig)
    fixed = run_ranode(bkg, x, m, hp, seed=0, w=w_true, x_test=x_t, mjj_test=m_t, y_test=y_t)
    assert fixed.truth["val_loss"]["max_sic"] > 2.0  # random scores reach 1.0
    assert fixed.truth["val_loss"]["auc"] > 0.7
    # w starts a factor ~10 below the truth; a larger w step size for this short fit
    learned = run_ranode(bkg, x, m, hp, seed=0, w_init=0.005, w_lr=3e-2, x_test=x_t, mjj_test=m_t)
    assert w_true / 3 < learned.model.w < 3 * w_true
    assert np.isnan(learned.truth["val_loss"]["max_sic"])
    # The learned signal density draws signal-like events (interpretability).
    xs = learned.model.sample_signal(np.full(2000, 3.5), rng)
    with np.errstate(invalid="ignore"):  # outside both supports: -inf - -inf
        llr = np.nan_to_num(truth.log_prob_sig(xs) - truth.log_prob_bkg(xs, 3.5), nan=-np.inf)
    llr_bkg = truth.log_prob_sig(x[:2000]) - truth.log_prob_bkg(x[:2000], m[:2000])
    assert np.median(llr) > np.median(llr_bkg) + 2


@pytest.mark.slow
def test_anode_scores_signal_higher_than_background():
    from objectives.flows.anode import run_anode

    rng = np.random.default_rng(9)
    truth, x, m, _ = _sr_with_signal(12000, 1200, rng)
    _, x_t, m_t, y_t = _sr_with_signal(20000, 2000, rng)
    pre = FlowPreprocessor.fit(x, m)
    hp = {"epochs": 10, "n_keep": 3, "n_transforms": 3, "hidden": 32}
    ev = run_anode(ExactBackground(truth, pre), x, m, hp, seed=0, x_test=x_t, mjj_test=m_t,
                   y_test=y_t)  # fmt: skip
    assert ev.truth["val_loss"]["auc"] > 0.6
    assert np.isfinite(ev.metrics["val_loss"])
    assert ev.scores["val_loss"].shape == (len(y_t),)


def test_ranode_fit_is_deterministic_for_a_seed():
    """Dropout draws from torch's global RNG; the training loop seeds it in a fork."""
    from objectives.flows.ranode import fit_ranode

    rng = np.random.default_rng(10)
    truth, x, m, _ = _sr_with_signal(1500, 100, rng)
    bkg = ExactBackground(truth, FlowPreprocessor.fit(x, m))
    hp = {"epochs": 2, "n_keep": 1, "n_transforms": 2, "hidden": 16}
    state = torch.random.get_rng_state()
    a = fit_ranode(bkg, x, m, hp, seed=3)
    b = fit_ranode(bkg, x, m, hp, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    np.testing.assert_array_equal(a.score(x[:100], m[:100]), b.score(x[:100], m[:100]))
    assert a.w == b.w


@pytest.mark.slow
def test_cathode_template_matches_shifted_sr_background_where_cwola_does_not(tmp_path):
    """Correlated (shifted) synthetic data without signal: a classifier cannot tell SR data
    from CATHODE samples (AUC ~ 0.5, like IAD), but separates it from the sidebands (CWoLa),
    which is why CWoLa fails on correlated features and CATHODE does not."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from objectives.cells import Cell, DataSpec, prepare
    from objectives.flows.cathode import cached_background
    from objectives.splits import Split
    from objectives.synthetic import SyntheticSpec, write_synthetic

    data_file, extra = write_synthetic(SyntheticSpec(scale=0.05, shifted=True), tmp_path)
    hp = {"n_blocks": 5, "hidden": 64, "epochs": 12, "n_keep": 3, "lr": 2e-3}
    bg = cached_background(tmp_path / "cache", data_file, signal=0, seed=0, hp=hp)
    data = DataSpec(data_file, extra, samples_file=bg.samples_file)
    auc = {}
    for mode in ("CATHODE", "CWoLa"):
        p = prepare(Cell("HGB", mode, 0, False, data))
        tr, va = Split.half(0).indices(p.y)
        clf = HistGradientBoostingClassifier(max_iter=100, random_state=0, class_weight="balanced")
        clf.fit(p.X[tr], p.y[tr])
        auc[mode] = roc_auc_score(p.y[va], clf.predict_proba(p.X[va])[:, 1], sample_weight=p.w[va])
    assert auc["CATHODE"] < 0.55
    assert auc["CWoLa"] > auc["CATHODE"] + 0.05


def test_validation_loss_is_capped_against_far_tail_events():
    from objectives.flows.training import VAL_NLL_CAP, evaluate_loss

    model = torch.nn.Linear(1, 1)
    losses = torch.tensor([1.0, 2.0, 1e30, float("nan")])
    value = evaluate_loss(model, lambda m, t: t, (losses,))
    assert value == pytest.approx((3.0 + 2 * VAL_NLL_CAP) / 4)
