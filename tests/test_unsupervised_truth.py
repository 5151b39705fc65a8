"""The unsupervised detectors checked against known truth: the synthetic DarkMachines
generator's exact background density (issue 25 §2-3).

A small synthetic set (8000 background events) is written once per module; ``-log
p_bkg`` comes from the generator's own density. Across object multiplicities ``-log
p_bkg`` mostly counts objects (each adds a density factor below 1), so a detector's
grasp of the background's kinematics is measured within one multiplicity (and
``BkgDensity`` ranks by the background's rarity within and of the multiplicity). The
networks' own scores are checked (``calibration = "none"``). Each test names the failure
it guards against; all train in seconds on one torch thread.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from objectives.errors import EnsembleRefused

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _synthetic(folder, n_signal: int):
    """(train 3000, val 1000, the sets) of a synthetic set with 8000 background events."""
    from objectives.darkmachines import DMSyntheticSpec, write_synthetic_darkmachines
    from objectives.darkmachines.cells import DMDataSpec, load_sets
    from objectives.unsupervised import EventArrays

    paths = write_synthetic_darkmachines(
        DMSyntheticSpec(n_background=8000, n_signal=n_signal, seed=1), folder
    )
    named = tuple((n, p) for n, p in paths.items() if n != "background")
    sets = load_sets(DMDataSpec(paths["background"], named, synthetic=True, test_fraction=0.25))
    pool = EventArrays.from_events(sets.train)
    return pool.take(slice(0, 3000)), pool.take(slice(5000, 6000)), sets


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(train 3000, val 1000, test background 2000, -log p_bkg of the test background)."""
    from objectives.darkmachines.synthetic import DMSyntheticModel
    from objectives.unsupervised import EventArrays

    train, val, sets = _synthetic(tmp_path_factory.mktemp("dm"), n_signal=10)
    test = EventArrays.from_events(sets.test_background)
    nlp = -DMSyntheticModel().log_prob_background(sets.test_background)
    return train, val, test, nlp


@pytest.fixture(scope="module")
def signals(tmp_path_factory):
    """(train 3000, val 1000, test background 2000, {signal: its 1000 test events})."""
    from objectives.unsupervised import EventArrays

    train, val, sets = _synthetic(tmp_path_factory.mktemp("dm"), n_signal=1000)
    test = {n: EventArrays.from_events(e) for n, e in sets.test_signals.items()}
    return train, val, EventArrays.from_events(sets.test_background), test


def _signal_aucs(signals, method: str, hp: dict) -> dict[str, float]:
    """AUC of each signal against the test background, ``method`` fitted for 10 epochs."""
    from objectives.unsupervised import auc, fit

    train, val, background, test = signals
    det = fit(method, train, val, {"epochs": 10, **hp}, seed=0)
    b = det.score(background)
    return {name: auc(b, det.score(events)) for name, events in test.items()}


def _rho_within_multiplicity(scores, nlp, arrays) -> float:
    n = arrays.mask.sum(1)
    total = weight = 0
    for k in np.unique(n):
        m = n == k
        if m.sum() >= 50:
            total += spearmanr(scores[m], nlp[m])[0] * m.sum()
            weight += m.sum()
    return total / weight


# -- inputs ----------------------------------------------------------------------------------
def test_inputs_have_no_constant_and_no_absolute_azimuth(data):
    from objectives.unsupervised import EventArrays
    from objectives.unsupervised._train import Scaler

    train, _, test, _ = data
    scaler = Scaler.fit(train)
    x = scaler.inputs(test)
    # a constant input is a bias in disguise: the one-hot types summed to 1 on every object
    onehot = x.objects[..., :-4][x.mask]
    assert onehot.sum(1).abs().max() < 1e-5
    torch.testing.assert_close(onehot.mean(0), torch.zeros(onehot.shape[1]), atol=0.05, rtol=0)
    # a rotation about the beam axis changes nothing physical, nor what the networks see
    turned = test.objects.copy()
    phi = turned[..., -1] + 1.0
    turned[..., -1] = np.where(test.mask, np.remainder(phi + np.pi, 2 * np.pi) - np.pi, 0.0)
    event = test.event.copy()
    event[:, 1] = np.remainder(event[:, 1] + 1.0 + np.pi, 2 * np.pi) - np.pi
    y = scaler.inputs(EventArrays(turned, test.mask, event))

    def angle(a, b, std):  # difference of two standardised azimuths, wrapped
        d = (a - b) * std
        return torch.remainder(d + np.pi, 2 * np.pi) - np.pi

    torch.testing.assert_close(y.objects[..., :-1], x.objects[..., :-1], atol=1e-4, rtol=0)
    phi = angle(y.objects[..., -1], x.objects[..., -1], scaler.kin_std[-1])
    has = torch.as_tensor(test.mask.any(1))  # MET phi relative to the leading object
    met_phi = angle(y.event[has, 1], x.event[has, 1], scaler.event_std[1])
    assert phi.abs().max() < 1e-4 and met_phi.abs().max() < 1e-4
    keep = [0, *range(2, x.event.shape[1])]
    torch.testing.assert_close(y.event[:, keep], x.event[:, keep], atol=1e-4, rtol=0)


def test_the_empty_origin_puts_the_empty_event_at_zero(data):
    # energies (log GeV), log(1 + MET), log(1 + HT) and the counts divided, not centred
    from objectives.unsupervised import EventArrays
    from objectives.unsupervised._train import Scaler

    train, _, test, _ = data
    empty = EventArrays(
        np.zeros_like(test.objects[:3]),
        np.zeros_like(test.mask[:3]),
        np.tile(np.float32([np.log(1e-3), 0.5, np.log(1e-3), 0, 0, 0, 0, 0]), (3, 1)),
    )
    x = Scaler.fit(train, origin="empty").inputs(empty)
    assert not x.objects.any() and not x.event[:, [0, 2, 3, 4, 5, 6, 7]].any()
    mean = Scaler.fit(train)  # the default: the mean background event at zero
    assert mean.inputs(empty).event[:, [0, 2, 3]].abs().min() > 0.5
    torch.testing.assert_close(mean.inputs(train).event.mean(0), torch.zeros(8), atol=1e-4, rtol=0)
    same = Scaler.fit(train, origin="empty")
    assert same.kin_std == mean.kin_std and same.event_std == mean.event_std
    with pytest.raises(ValueError, match="origin"):
        Scaler.fit(train, origin="middle")


# -- Deep SVDD -------------------------------------------------------------------------------
def test_dsvdd_does_not_collapse_and_ranks_by_the_background_density(data):
    # With batch norms and a constant input (both a bias in disguise), 720 steps mapped the
    # background onto c: rank correlation with -log p_bkg -0.16..0.19 over three data seeds
    # (0.53..0.59 with the fix).
    from objectives.unsupervised import fit

    # About the mean event (about the empty one, the default, it follows energies more than
    # the density: the next test).
    train, val, test, nlp = data
    hp = {"rep_dims": [8], "epochs": 15, "lr": 5e-3, "batch_size": 128, "calibration": "none"}
    det = fit("dSVDD", train, val, {**hp, "input_origin": "mean"}, seed=0)
    assert spearmanr(det.score(test), nlp)[0] > 0.4


def test_dsvdd_about_the_empty_event_finds_what_it_missed_about_the_mean_event(signals):
    # About the mean background event a bias-free network calls any unusual input length
    # anomalous: it ranked zprime (in the bulk) below random, 0.37-0.40 here, and stop at
    # 0.79-0.82. About the empty event (energies and counts not centred) zprime 0.52-0.53,
    # stop 0.96-0.97, the mean over six signals 0.70-0.71 against 0.63-0.64 (seeds 0-2).
    mean = _signal_aucs(signals, "dSVDD", {"input_origin": "mean"})
    empty = _signal_aucs(signals, "dSVDD", {"input_origin": "empty"})
    assert mean["zprime"] < 0.45 and mean["stop"] < 0.87
    assert empty["zprime"] > 0.5 and empty["stop"] > 0.93 and empty["heavy_gluino"] > 0.97
    assert np.mean(list(empty.values())) > np.mean(list(mean.values())) + 0.04


# -- DROCC -----------------------------------------------------------------------------------
def test_drocc_learns_the_kinematics_not_the_object_count(data):
    # A radius of 8 standard deviations over every input taught the classifier to count
    # objects: rank correlation with -log p_bkg within one multiplicity 0.15..0.18 (0.35, 0.44
    # with negatives at the data's own scale that keep each object's mass).
    from objectives.unsupervised import fit

    # (Radius 2 about the mean event, the defaults before; about the empty event, the
    # defaults now, the score follows energies more than the density: the next test.)
    train, val, test, nlp = data
    hp = {"epochs": 10, "batch_size": 128, "calibration": "none"}  # the network's own score
    det = fit("DROCC", train, val, {**hp, "input_origin": "mean", "radius": 2.0}, seed=0)
    assert _rho_within_multiplicity(det.score(test), nlp, test) > 0.28


def test_drocc_about_the_empty_event_finds_the_heavy_signals(signals):
    # Radius 8 about the empty event (the defaults) against radius 2 about the mean event
    # (before), seeds 0-2 here: heavy_gluino 0.977-0.986 against 0.808-0.879, stop
    # 0.878-0.951 against 0.791-0.847, the mean over six signals 0.657-0.713 against
    # 0.625-0.652.
    before = _signal_aucs(signals, "DROCC", {"input_origin": "mean", "radius": 2.0})
    now = _signal_aucs(signals, "DROCC", {})
    assert before["heavy_gluino"] < 0.9 and before["stop"] < 0.86
    assert now["heavy_gluino"] > 0.95 and now["stop"] > 0.88
    assert np.mean(list(now.values())) > np.mean(list(before.values())) + 0.02


def test_drocc_scores_its_negatives_above_the_background(data):
    # the background is the positive class: higher score (-logit) = more anomalous
    from objectives.unsupervised import auc, fit
    from objectives.unsupervised.drocc import SearchSpace, adversarial_negatives

    train, val, _, _ = data
    det = fit("DROCC", train, val, {"epochs": 6, "batch_size": 128, "calibration": "none"}, seed=0)
    x = det.scaler.inputs(val)
    neg = adversarial_negatives(
        det.net.eval(),
        x,
        space=SearchSpace.of(det.scaler, val),
        radius=det.info["radius"],
        gamma=2.0,
        steps=0,
        step_size=0.1,
        generator=torch.Generator().manual_seed(0),
    )
    with torch.no_grad():
        background, negatives = -det.net(*x), -det.net(*neg)
    assert auc(background.numpy(), negatives.numpy()) > 0.55  # a flipped sign gives < 0.5
    np.testing.assert_allclose(det.score(val), background.double().numpy(), rtol=1e-5)


# -- DDD -------------------------------------------------------------------------------------
def test_a_trial_ensemble_leaves_out_members_that_invert_a_generic_anomaly(data):
    # A MET cut calls every softer-MET event more background-like than the background:
    # it inverts met_down by construction; the exact density inverts nothing.
    from objectives.unsupervised.baselines import fit_baseline
    from objectives.unsupervised.ensemble import non_inverting

    train, val, _, _ = data
    met = fit_baseline("MET", {}, train, val, seed=0)
    exact = fit_baseline("BkgDensity", {}, train, val, seed=0, synthetic=True)
    assert non_inverting([met, exact], val, method="mixed") == [exact]
    with pytest.raises(EnsembleRefused, match=r"^cut ensemble: every member .*set 0: met_down"):
        non_inverting([met], val, method="cut")


def test_a_ddd_member_never_ranks_a_generic_anomaly_below_random(data):
    # Trained on dropped objects alone, DDD calls fewer objects "distorted" and ranks an
    # added object below random (and the reverse); the band ensemble averaged both kinds.
    from objectives.unsupervised.ddd import DDDEnsemble, fit_ddd_point
    from objectives.unsupervised.perturb import inversion_threshold, perturbation_aucs

    train, val, _, _ = data
    hp = {"epochs": 5, "batch_size": 128}
    drop = fit_ddd_point(train, val, hp, sigma=0.0, p_drop=0.6, p_add=0.0, seed=0)
    add = fit_ddd_point(train, val, hp, sigma=0.0, p_drop=0.0, p_add=0.6, seed=0)
    both = fit_ddd_point(train, val, hp, sigma=0.3, p_drop=0.5, p_add=0.5, seed=0)
    assert "add" in drop.inverted and "drop" in add.inverted and both.inverted == []
    ens = DDDEnsemble.from_models([drop, add, both], (0.5, 1.0))
    assert ens.models == [both]
    assert [r["kept"] for r in ens.info["aucs"]] == [False, False, True]
    low = inversion_threshold(len(val))
    assert min(perturbation_aucs(ens.score, val).values()) >= low


# -- the label-free selection metric ---------------------------------------------------------
def test_perturb_auc_is_half_for_a_collapsed_detector_and_sees_what_the_density_sees(data):
    from objectives.unsupervised.baselines import fit_baseline
    from objectives.unsupervised.perturb import PERTURBATIONS, perturb_auc, perturbation_aucs

    train, val, _, _ = data
    constant = perturbation_aucs(lambda a: np.zeros(len(a)), val)
    assert list(constant) == list(PERTURBATIONS) and set(constant.values()) == {0.5}
    # the raw -log p_bkg: an added object is less likely, a removed one more (fewer factors)
    exact = fit_baseline("BkgDensity", {}, train, val, seed=0, synthetic=True)
    raw = perturbation_aucs(lambda a: -exact.log_density(a), val)
    assert raw["add"] > 0.6 and raw["drop"] < 0.45
    # the yardstick (rarity within the multiplicity, and of it) sees both, and MET
    aucs = perturbation_aucs(exact.score, val)
    assert aucs["add"] > 0.55 and aucs["drop"] > 0.55 and aucs["met_up"] > 0.55
    # and both directions of each shift: softer events are rarer too
    assert aucs["met_down"] > 0.55 and aucs["pt_down"] > 0.55
    # the mirrored shifts guard against inversions; they do not count in the objective
    guards = [k for k, p in PERTURBATIONS.items() if p.guard_only]
    assert guards == ["met_down", "pt_down"]
    kept = [v for k, v in aucs.items() if k not in guards]
    assert perturb_auc(aucs) == pytest.approx(np.mean(kept))
    # DDD is judged on the kinds it did not train on
    own = ("smear", "drop", "add")
    assert perturb_auc(aucs, own) == pytest.approx((aucs["met_up"] + aucs["pt_up"]) / 2)
    with pytest.raises(ValueError, match="every perturbation kind was left out"):
        perturb_auc(aucs, [k for k in PERTURBATIONS if k not in guards])


def test_perturbations_keep_every_event_feature_consistent(data):
    from objectives.unsupervised.perturb import perturb
    from objectives.unsupervised.toy import event_features

    _, val, _, _ = data
    for name, moved in perturb(val, seed=0).items():
        expected = event_features(moved.kinematics, moved.type_codes, moved.event[:, 0], 0)
        np.testing.assert_allclose(moved.event[:, 3:], expected[:, 3:], err_msg=name)
        np.testing.assert_allclose(
            moved.event[:, 2], expected[:, 2], rtol=1e-4, atol=1e-4, err_msg=name
        )
        kin = moved.kinematics.astype(np.float64)[moved.mask]
        ref = val.kinematics.astype(np.float64)[val.mask]

        def masses(k):  # GeV
            m2 = np.exp(2 * k[:, 0]) - (np.exp(k[:, 1]) * np.cosh(k[:, 2])) ** 2
            return np.sort(np.sqrt(np.maximum(m2, 0.0)))

        if name in ("pt_up", "met_up", "smear", "pt_down", "met_down"):  # each keeps its mass
            assert len(kin) == len(ref)
            np.testing.assert_allclose(masses(kin), masses(ref), rtol=1e-2, atol=1.0)
    # softer, but never below the background's lowest pT of the object's type
    soft = perturb(val, seed=0, kinds=["pt_down"])["pt_down"]
    before, after = val.kinematics[..., 1], soft.kinematics[..., 1]
    codes, codes_after = val.type_codes[val.mask], soft.type_codes[soft.mask]
    lowest = {c: before[val.mask][codes == c].min() for c in np.unique(codes)}
    assert all(after[soft.mask][codes_after == c].min() >= lowest[c] - 1e-5 for c in lowest)
    # every event with an object gets softer (its scalar pT sum falls), most by far
    has = val.mask.any(1)
    sums = [np.where(a.mask, np.exp(a.kinematics[..., 1]), 0.0).sum(1)[has] for a in (val, soft)]
    drop = np.log(sums[1] / sums[0])
    assert np.all(drop <= 1e-5) and np.median(drop) < -0.25, np.median(drop)
    n = val.mask.sum(1)
    moved = perturb(val, seed=0, kinds=["add", "drop"])
    np.testing.assert_array_equal(moved["drop"].mask.sum(1), np.maximum(n - 1, 0))
    np.testing.assert_array_equal(moved["add"].mask.sum(1), n + ~val.mask.all(1))
    assert perturb(val, seed=0)["add"].objects.tobytes() == moved["add"].objects.tobytes()


def test_the_family_optimises_perturb_auc_and_records_val_loss():
    from objectives.registry import DIRECTIONS, get_method, method_names

    assert DIRECTIONS["perturb_auc"] == "maximize" and DIRECTIONS["val_loss"] == "minimize"
    for name in method_names("unsupervised"):
        method = get_method(name)
        assert method.label_free[0] == "perturb_auc", name
    for name in ("dSVDD", "DROCC", "DDD"):
        assert get_method(name).label_free == ("perturb_auc", "val_loss")


def test_a_darkmachines_campaign_defaults_to_perturb_auc(tmp_path):
    from hpo.config import load_campaign

    path = tmp_path / "c.toml"
    path.write_text('[campaign]\nname = "u"\n[data]\nsource = "darkmachines"\n')
    search = load_campaign(path).search
    assert search.objective == "perturb_auc"
    assert search.metrics[:2] == ("perturb_auc", "val_loss")
