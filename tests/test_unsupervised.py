"""The unsupervised detectors of seed 002 (dSVDD, DROCC, DDD) on toy event arrays.

One behaviour test runs every method on every backbone; then one test per
method property (separation of a toy signal, the Deep SVDD collapse with
bias terms, the DROCC shell, the DDD band) and the backbones' masking.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from objectives.errors import DataError, HyperparameterError
from objectives.unsupervised import (
    BACKBONES,
    METHODS,
    EventArrays,
    auc,
    challenge_row,
    default_hyperparameters,
    fit,
    signal_efficiency_at,
    validate_hyperparameters,
)
from objectives.unsupervised._train import Scaler, build
from objectives.unsupervised.backbones import make_backbone
from objectives.unsupervised.ddd import DDDBandError, Distortion, distort, fit_ddd_point
from objectives.unsupervised.drocc import (
    SHELL_AUC_MIN,
    LogitNet,
    SearchSpace,
    adversarial_negatives,
    data_scale,
    shell_auc,
)
from objectives.unsupervised.dsvdd import _fit_member
from objectives.unsupervised.params import validate
from objectives.unsupervised.toy import event_features, toy_events

# Tiny settings: each fit takes well under a second on one thread.
TINY = {
    "dSVDD": {"rep_dims": [3, 5], "epochs": 2, "batch_size": 64},
    "DROCC": {"epochs": 2, "only_ce_epochs": 1, "ascent_steps": 2, "batch_size": 64},
    # sigma 1 is a strong distortion: the held-out AUC is far above 0.5 even after 2 epochs
    "DDD": {
        "epochs": 2,
        "batch_size": 64,
        "sigmas": [1.0],
        "p_drops": [0.3],
        "p_adds": [0.3],
        "auc_band": [0.5, 1.0],
    },
}
TRAIN = toy_events(240, max_objects=6, seed=1)
VAL = toy_events(80, max_objects=6, seed=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- one behaviour test over every method x backbone --------------------------------------
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("method", METHODS)
def test_every_detector_fits_scores_and_validates(method, backbone):
    hp = {"backbone": backbone, **TINY[method]}
    det = fit(method, TRAIN, VAL, hp, seed=3)
    test = toy_events(50, max_objects=6, seed=4, anomalous=True)
    scores = det.score(test)
    assert scores.shape == (50,) and scores.dtype == np.float64
    assert np.isfinite(scores).all() and scores.std() > 0
    assert np.isfinite(det.val_loss)
    assert det.method == method and det.info["hp"]["backbone"] == backbone
    # deterministic for a seed, and the seed matters
    assert np.array_equal(fit(method, TRAIN, VAL, hp, seed=3).score(test), scores)
    assert not np.array_equal(fit(method, TRAIN, VAL, hp, seed=4).score(test), scores)
    # unknown names and out-of-range values: one message shape, raised before training
    with pytest.raises(HyperparameterError, match=rf"^{method} hyperparameter 'depth': unknown"):
        fit(method, TRAIN, VAL, {**hp, "depth": 3}, seed=3)
    pattern = rf"^{method} hyperparameter 'lr': must be a number in \(0, 1\], got 0$"
    with pytest.raises(HyperparameterError, match=pattern):
        fit(method, TRAIN, VAL, {**hp, "lr": 0}, seed=3)
    with pytest.raises(HyperparameterError, match=rf"^{method} hyperparameter 'backbone'"):
        fit(method, TRAIN, VAL, {**hp, "backbone": "GNN"}, seed=3)


def test_hyperparameters_are_data():
    for method in METHODS:
        hp = default_hyperparameters(method)
        assert validate_hyperparameters(method.lower(), hp) == hp
    assert default_hyperparameters("dSVDD")["rep_dims"] == [5, 8, 13, 21]
    assert default_hyperparameters("DDD")["auc_band"] == [0.7, 0.8]
    assert validate("drocc", {"backbone": "part+PAIR"})["backbone"] == "ParT+pair"
    msg = "DROCC hyperparameter 'only_ce_epochs': must be smaller than epochs (5)"
    with pytest.raises(HyperparameterError, match=re.escape(msg)):
        validate("DROCC", {"epochs": 5, "only_ce_epochs": 5})
    with pytest.raises(HyperparameterError, match="'auc_band': must be a list of 2 to 2 numbers"):
        validate("DDD", {"auc_band": [0.7]})
    with pytest.raises(HyperparameterError, match="unknown unsupervised method 'SVDD'"):
        fit("SVDD", TRAIN, VAL, {}, seed=0)


# -- each detector separates a clearly anomalous toy signal -------------------------------
SEPARATION = {
    "dSVDD": {},
    "DROCC": {},
    # smearing and both multiplicity edits; band widened: the small MLP reaches ~0.55-0.75
    "DDD": {
        "sigmas": [0.2, 0.4],
        "p_drops": [0.3],
        "p_adds": [0.3],
        "auc_band": [0.55, 0.95],
    },
}


@pytest.mark.parametrize("method", METHODS)
def test_detectors_separate_a_toy_signal(method):
    # Signal: every object's log pT shifted by 0.8 (1.6 standard deviations) and log MET
    # by 1.0 (2 s.d.). Random guessing gives AUC 0.5 with a standard error of ~0.013 for
    # 1000 + 1000 events, so 0.6 is ~8 standard errors above random; measured with these
    # settings (MLP, defaults, seed 0): dSVDD 0.74, DROCC 0.86, DDD 0.76.
    train, val = toy_events(1500, seed=11), toy_events(500, seed=12)
    bkg = toy_events(1000, seed=13)
    sig = toy_events(1000, seed=14, anomalous=True, extra_objects=0)
    det = fit(method, train, val, SEPARATION[method], seed=0)
    assert auc(det.score(bkg), det.score(sig)) > 0.6


# -- Deep SVDD: bias terms collapse, so they are refused ----------------------------------
def test_dsvdd_with_bias_collapses_and_is_refused():
    train, val = toy_events(1000, seed=21), toy_events(300, seed=22)
    scaler = Scaler.fit(train)
    train_in, val_in = scaler.inputs(train), scaler.inputs(val)
    hp = validate("dSVDD", {"epochs": 30, "lr": 1e-2, "batch_size": 128})
    spread = {}
    for bias in (True, False):
        m = _fit_member(train_in, val_in, train, scaler, hp, 8, seed=0, bias=bias)
        c2 = float((m.c**2).sum())
        d = m.distances(val_in)
        spread[bias] = d.std() / c2
        if bias:
            # every event mapped (almost) onto c: near-zero loss, near-constant scores
            assert m.loss_history[-1] < 2e-3 * c2
            assert spread[bias] < 5e-3
    assert spread[False] > 5 * spread[True]
    msg = "dSVDD hyperparameter 'bias': must be false (with bias terms"
    with pytest.raises(HyperparameterError, match=re.escape(msg)):
        fit("dSVDD", TRAIN, VAL, {"bias": True}, seed=0)


# -- DROCC: negatives on the shell r <= ||x_adv - x|| <= gamma r ---------------------------
@pytest.mark.parametrize("steps", [0, 5])
def test_drocc_negatives_lie_on_the_shell_and_stay_physical(steps):
    scaler = Scaler.fit(TRAIN)
    x = scaler.inputs(TRAIN)
    space = SearchSpace.of(scaler, TRAIN)
    gen = torch.Generator().manual_seed(0)
    net = build(LogitNet, validate("DROCC", {}), TRAIN, scaler, gen).eval()
    radius, gamma = 1.5, 2.0
    neg = adversarial_negatives(
        net, x, space=space, radius=radius, gamma=gamma, steps=steps, step_size=0.5, generator=gen
    )
    moved = space.coordinates(neg) - space.coordinates(x)  # log pT, eta, log(1 + MET)
    dist = moved.norm(dim=1)
    assert (dist >= radius - 1e-4).all() and (dist <= gamma * radius + 1e-4).all()
    assert torch.equal(neg.mask, x.mask)
    # types, azimuths, MET phi and counts never move; padding stays zero
    assert torch.equal(neg.objects[..., :-4], x.objects[..., :-4])
    assert torch.equal(neg.objects[..., -1], x.objects[..., -1])
    assert torch.equal(neg.objects[~x.mask], torch.zeros_like(neg.objects[~x.mask]))
    assert torch.equal(neg.event[:, [1, 3, 4, 5, 6, 7]], x.event[:, [1, 3, 4, 5, 6, 7]])
    # what follows from the moved coordinates follows: each object's mass, HT from its jets
    km, ks = torch.tensor(scaler.kin_mean), torch.tensor(scaler.kin_std)
    em, es = torch.tensor(scaler.event_mean), torch.tensor(scaler.event_std)

    def physics(inputs):
        kin = (inputs.objects[..., -4:] * ks + km).double()
        p = torch.exp(kin[..., 1]) * torch.cosh(kin[..., 2])
        m2 = 1 - (p / torch.exp(kin[..., 0])) ** 2  # (m / E)^2
        jets = (inputs.objects[..., :2] + torch.tensor(scaler.type_mean[:2])).sum(-1) > 0.5
        ht = torch.where(jets & inputs.mask, torch.exp(kin[..., 1]), 0.0).sum(1)
        return m2[inputs.mask], ht, torch.expm1(inputs.event[:, 2].double() * es[2] + em[2])

    m2_x, ht_x, ht_event_x = physics(x)
    m2_neg, ht_neg, ht_event_neg = physics(neg)
    torch.testing.assert_close(m2_neg, m2_x, rtol=0, atol=2e-3)  # float32 inputs
    torch.testing.assert_close(ht_event_neg - ht_event_x, ht_neg - ht_x, rtol=1e-3, atol=0.05)
    if steps:  # the ascent finds negatives the classifier takes for background
        start = adversarial_negatives(
            net, x, space=space, radius=radius, gamma=gamma, steps=0, step_size=0.5, generator=gen
        )
        with torch.no_grad():
            assert net(*neg).mean() > net(*start).mean()


def test_drocc_radius_follows_the_data_scale():
    scaler = Scaler.fit(TRAIN, origin="empty")  # DROCC's default inputs
    space = SearchSpace.of(scaler, TRAIN)
    scale = data_scale(space, scaler.inputs(TRAIN))
    x = space.coordinates(scaler.inputs(TRAIN)).double()
    d = torch.cdist(x, x).fill_diagonal_(float("inf")).min(1).values
    assert scale == pytest.approx(float(d.median()))
    det = fit("DROCC", TRAIN, VAL, {**TINY["DROCC"], "radius": 2.0}, seed=0)
    assert det.info["data_scale"] == pytest.approx(scale)
    assert det.info["radius"] == pytest.approx(2.0 * scale)


def test_drocc_measures_whether_it_learned_and_warns_when_it_barely_did(caplog):
    """The shell AUC: exactly 0.5 for a classifier blind to everything (a constant logit),
    near 1 for one trained against far-out negatives; below SHELL_AUC_MIN a fit warns."""
    scaler = Scaler.fit(TRAIN)
    space = SearchSpace.of(scaler, TRAIN)
    val = scaler.inputs(VAL)
    blind = build(LogitNet, validate("DROCC", {}), TRAIN, scaler, torch.Generator().manual_seed(0))
    with torch.no_grad():
        blind.head.weight.zero_()
    assert shell_auc(blind, val, space=space, radius=1.0, gamma=2.0, seed=0) == 0.5
    # about the mean event (about the empty one the offsets slow it: 0.74 here)
    hp = {**TINY["DROCC"], "epochs": 8, "radius": 8.0, "lr": 1e-2, "input_origin": "mean"}
    with caplog.at_level("WARNING", logger="objectives.unsupervised.drocc"):
        det = fit("DROCC", TRAIN, VAL, hp, seed=0)
    assert det.info["shell_auc"] > 0.9 and "barely learned" not in caplog.text
    assert set(det.info["final_loss"]) == {"ce", "adv"}
    with caplog.at_level("WARNING", logger="objectives.unsupervised.drocc"):
        det = fit("DROCC", TRAIN, VAL, {**hp, "mu": 0.0, "radius": 0.05}, seed=0)
    assert det.info["shell_auc"] < SHELL_AUC_MIN
    assert f"AUC {det.info['shell_auc']:.3f} (0.5: blind" in caplog.text


# -- DDD: distortions, the band, per-point fits -------------------------------------------
def test_distortion_keeps_event_features_consistent():
    rng = np.random.default_rng(0)
    same = distort(TRAIN, Distortion(0.0, 0.0, 0.0), rng)
    for a, b in ((same.objects, TRAIN.objects), (same.mask, TRAIN.mask), (same.event, TRAIN.event)):
        assert np.array_equal(a, b)
    d = distort(TRAIN, Distortion(0.2, 0.3, 0.5), rng)
    assert (d.mask.sum(1) != TRAIN.mask.sum(1)).any()
    pt = np.where(d.mask, d.kinematics[..., 1], -np.inf)
    assert np.array_equal(pt, -np.sort(-pt, axis=1))  # sorted by pT, padding last
    assert (d.mask[:, :-1] | ~d.mask[:, 1:]).all()
    expected = event_features(d.kinematics, d.type_codes, d.event[:, 0], d.event[:, 1])
    np.testing.assert_allclose(d.event[:, 2:], expected[:, 2:], rtol=1e-4, atol=1e-4)
    # the multiplicity edits act per event and move the count by one
    fewer = distort(TRAIN, Distortion(0.0, 1.0, 0.0), rng)
    np.testing.assert_array_equal(fewer.mask.sum(1), np.maximum(TRAIN.mask.sum(1) - 1, 0))
    more = distort(TRAIN, Distortion(0.0, 0.0, 1.0), rng)
    full = TRAIN.mask.all(1)
    np.testing.assert_array_equal(more.mask.sum(1), TRAIN.mask.sum(1) + ~full)
    empty = TRAIN
    for _ in range(TRAIN.max_objects):
        empty = distort(empty, Distortion(0.0, 1.0, 0.0), rng)
    assert not empty.mask.any() and (empty.event[:, 3:] == 0).all()
    np.testing.assert_allclose(empty.event[:, 2], np.log(1e-3), rtol=1e-6)


def test_ddd_keeps_models_in_the_band_and_explains_a_miss():
    hp = {"epochs": 5, "lr": 1e-2, "batch_size": 64, "sigmas": [0.05, 1.0], "p_drops": [0.0]}
    hp |= {"p_adds": [0.0], "auc_band": [0.6, 1.0]}
    det = fit("DDD", TRAIN, VAL, hp, seed=0)
    kept = [row for row in det.info["aucs"] if row["kept"]]
    assert 1 <= len(kept) == len(det.models) < 2
    assert all(0.6 <= m.auc <= 1.0 for m in det.models)
    assert det.val_loss == pytest.approx(abs(np.mean([m.auc for m in det.models]) - 0.8))
    with pytest.raises(DDDBandError, match=r"no model has a held-out AUC in \[0.99, 1\] without"):
        fit("DDD", TRAIN, VAL, {**hp, "sigmas": [0.05], "auc_band": [0.99, 1.0]}, seed=0)
    point = fit_ddd_point(TRAIN, VAL, hp, sigma=1.0, p_drop=0.0, p_add=0.0, seed=5)
    assert point.in_band == (0.6 <= point.auc <= 1.0)
    assert point.val_loss == pytest.approx(abs(point.auc - 0.8))


# -- backbones: padding never reaches the output ------------------------------------------
@pytest.mark.parametrize("backbone", BACKBONES)
def test_padding_never_influences_the_backbone(backbone):
    scaler = Scaler.fit(TRAIN)
    x = scaler.inputs(TRAIN.take(slice(0, 40)))
    gen = torch.Generator().manual_seed(0)
    net = build(
        lambda b: b, validate("dSVDD", {"backbone": backbone}), TRAIN, scaler, gen, bias=True
    )
    net.eval()
    garbage = torch.randn(x.objects.shape, generator=gen) * 5.0
    noisy = torch.where(x.mask[..., None], x.objects, garbage)
    with torch.no_grad():
        ref = net(*x)
        torch.testing.assert_close(net(noisy, x.mask, x.event), ref)
        if backbone != "MLP":  # the transformer takes any number of (padded) slots
            extra = torch.randn(40, 3, x.objects.shape[2], generator=gen)
            wide = (
                torch.cat([noisy, extra], 1),
                torch.cat([x.mask, torch.zeros(40, 3, dtype=torch.bool)], 1),
                x.event,
            )
            torch.testing.assert_close(net(*wide), ref, rtol=1e-5, atol=1e-5)


def test_part_poster_preset_has_the_poster_size():
    net = make_backbone("ParT+pair", max_objects=6, n_features=11, n_event=8, part_preset="poster")
    assert len(net.blocks) == 8 and len(net.cls_blocks) == 2 and net.blocks[0].attn.heads == 8
    assert [m.out_features for m in net.fc if isinstance(m, torch.nn.Linear)] == [64, 256, 64]


# -- arrays and metrics --------------------------------------------------------------------
def test_event_arrays_from_duck_typed_events():
    kin = np.zeros((2, 3, 4), np.float32)
    kin[0, :2] = [[5.0, 4.5, 0.1, 0.2], [4.0, 3.9, -0.3, 1.0]]
    kin[1, 0] = [6.0, 5.5, 1.0, -2.0]
    types = np.array([[1, 5, 0], [7, 0, 0]], np.int8)
    ev = SimpleNamespace(kinematics=kin, types=types, mask=types > 0, event=np.zeros((2, 8)))
    a = EventArrays.from_events(ev)
    assert a.objects.shape == (2, 3, 11) and a.objects.dtype == np.float32
    assert np.array_equal(a.type_codes, types) and np.array_equal(a.kinematics, kin)
    with pytest.raises(DataError, match="lacks 'event'"):
        EventArrays.from_events(SimpleNamespace(kinematics=kin, types=types, mask=types > 0))
    with pytest.raises(DataError, match="mask must have shape"):
        EventArrays(np.zeros((2, 3, 11)), np.zeros((2, 4), bool), np.zeros((2, 8)))


def test_layout_matches_the_darkmachines_reader(tmp_path):
    # the format module (written in parallel) defines HT, the counts and the log floor;
    # the toy's event features and DDD's updates must follow the same conventions
    fmt = pytest.importorskip("objectives.darkmachines.format")
    records = [
        fmt.EventRecord(
            "1",
            "tt",
            1.0,
            52000.0,
            0.3,
            (("j", 9e4, 6e4, 0.5, 1.0), ("m+", 4e4, 3.5e4, -0.2, -2.0)),
        ),
        fmt.EventRecord(
            "2", "w", 1.0, 1e4, -1.0, (("e-", 3e4, 2e4, 1.1, 0.1), ("g", 2e4, 1.5e4, 0.0, 2.0))
        ),
        fmt.EventRecord(
            "3", "qcd", 1.0, 0.0, 0.0, (("b", 8e4, 7e4, 0.3, 0.0), ("j", 5e4, 4e4, -1.0, 3.0))
        ),
    ]
    ev = fmt.read_events(fmt.write_events(tmp_path / "ev.csv", records), max_objects=4)
    a = EventArrays.from_events(ev)
    assert np.array_equal(a.objects, fmt.object_features(ev))
    expected = event_features(a.kinematics, a.type_codes, a.event[:, 0], a.event[:, 1])
    np.testing.assert_allclose(a.event, expected, rtol=1e-6, atol=1e-6)
    rng = np.random.default_rng(0)
    empty = distort(distort(a, Distortion(0.0, 1.0, 0.0), rng), Distortion(0.0, 1.0, 0.0), rng)
    assert not empty.mask.any()
    np.testing.assert_allclose(empty.event[:, 2], np.log(fmt.LOG_FLOOR_GEV), rtol=1e-6)


def test_signal_efficiency_and_challenge_row():
    bkg, sig = np.arange(10000.0), np.arange(9000.0, 10500.0)
    eff = signal_efficiency_at(bkg, sig)
    # cut above the 101st / 11th / 2nd largest background score
    assert eff == {1e-2: 600 / 1500, 1e-3: 510 / 1500, 1e-4: 501 / 1500}
    assert np.isnan(signal_efficiency_at(bkg[:50], sig, eps_b=(1e-2,))[1e-2])
    row = challenge_row(bkg, sig, signal="sig", model="dSVDD_MLP", channel="1")
    assert list(row) == ["Signal", "Model", "Chan", "AUC", "1e-2", "1e-3", "1e-4"]
