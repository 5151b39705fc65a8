"""What the challenge's comparison needs of the unsupervised results: weights and parts.

The event weights of the files enter the truth metrics: a weight of 2 counts as the event
twice, equal weights change nothing, importance weights give the truth of the reweighted
distribution, and a cell's per-signal truth is the weighted one sklearn computes. Deep
SVDD's members come out one per latent dimension, each standardised like the whole.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from objectives.darkmachines import DMSyntheticModel, write_events
from objectives.darkmachines.cells import ROC_GRID, DMCell, DMDataSpec, load_sets
from objectives.evaluate import evaluate
from objectives.unsupervised.metrics import (
    auc,
    efficiency_curve,
    signal_efficiency_at,
    truth_metrics,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _scores(seed: int = 0):
    rng = np.random.default_rng(seed)
    b, s = rng.normal(0, 1, 4000).round(2), rng.normal(1, 1, 700).round(2)  # with ties
    return b, s, rng.integers(1, 4, b.size), rng.integers(1, 3, s.size)


def test_a_weight_of_k_counts_as_the_event_k_times():
    b, s, wb, ws = _scores()
    rb, rs = np.repeat(b, wb), np.repeat(s, ws)
    assert auc(b, s, w_bkg=wb, w_sig=ws) == pytest.approx(auc(rb, rs), abs=1e-12)
    np.testing.assert_allclose(
        efficiency_curve(b, s, ROC_GRID, w_bkg=wb, w_sig=ws), efficiency_curve(rb, rs, ROC_GRID)
    )
    weighted = signal_efficiency_at(b, s, w_bkg=wb, w_sig=ws)
    repeated = signal_efficiency_at(rb, rs)
    for eps in (1e-2, 1e-3):
        assert weighted[eps] == pytest.approx(repeated[eps], abs=1e-12)


def test_equal_weights_give_exactly_the_unweighted_numbers():
    b, s, _, _ = _scores(1)
    plain = truth_metrics(b, s)
    equal = truth_metrics(b, s, w_bkg=np.full(b.size, 0.3), w_sig=np.full(s.size, 7.0))
    np.testing.assert_equal(equal, plain)


def test_importance_weights_give_the_reweighted_truth():
    # background drawn from N(0, 1) but weighted to N(1, 1); signal N(2, 1)
    rng = np.random.default_rng(2)
    b, s = rng.normal(0, 1, 200_000), rng.normal(2, 1, 50_000)
    w = norm.pdf(b, 1, 1) / norm.pdf(b, 0, 1)
    assert auc(b, s, w_bkg=w) == pytest.approx(norm.cdf(1 / math.sqrt(2)), abs=0.006)
    assert auc(b, s) == pytest.approx(norm.cdf(2 / math.sqrt(2)), abs=0.006)
    # the cut keeping 1 % of the reweighted background: N(1, 1)'s 99 % quantile
    cut = 1 + norm.ppf(0.99)
    eff = signal_efficiency_at(b, s, (1e-2,), w_bkg=w)[1e-2]
    assert eff == pytest.approx(norm.sf(cut, 2, 1), abs=0.02)


@pytest.fixture(scope="module")
def weighted_files(tmp_path_factory):
    """A user's files whose background weights differ by process (multijet events x 5)."""
    model, rng = DMSyntheticModel(), np.random.default_rng(4)
    folder = tmp_path_factory.mktemp("weights")
    bkg = [
        r._replace(weight=5.0 if r.process == "njets" else 1.0)
        for r in model.sample_background(2000, rng)
    ]
    sig = [
        r._replace(weight=float(1 + i % 3)) for i, r in enumerate(model.sample("gluino", 300, rng))
    ]
    write_events(folder / "bkg.csv", bkg)
    write_events(folder / "gluino.csv", sig)
    return folder


def test_a_cells_truth_uses_the_files_weights(weighted_files):
    spec = DMDataSpec(weighted_files / "bkg.csv", (("gluino", weighted_files / "gluino.csv"),))
    sets = load_sets(spec)
    assert sets.info["weights"] == "used"
    result = evaluate({}, DMCell("HT", "baseline", spec), "full")
    y = sets.test_signal >= 0
    scores = result.scores["auc"]
    weighted = roc_auc_score(y, scores, sample_weight=sets.test.weight)
    assert result.per_signal["gluino"]["auc"] == pytest.approx(weighted, abs=1e-9)
    assert abs(weighted - roc_auc_score(y, scores)) > 0.01  # the weights matter here
    np.testing.assert_array_equal(result.test_weight, sets.test.weight)


def test_weights_that_cannot_be_used_are_ignored_and_said_so(tmp_path):
    model, rng = DMSyntheticModel(), np.random.default_rng(5)
    bkg = [
        r._replace(weight=-1.0 if i == 3 else 1.0)
        for i, r in enumerate(model.sample_background(400, rng))
    ]
    write_events(tmp_path / "bkg.csv", bkg)
    write_events(tmp_path / "sig.csv", model.sample("monojet", 50, rng))
    spec = DMDataSpec(
        tmp_path / "bkg.csv", (("monojet", tmp_path / "sig.csv"),), test_fraction=0.99
    )
    sets = load_sets(spec)
    assert sets.info["weights"] == "ignored: 1 test event(s) with weight <= 0"
    assert sets.test_weight is None


def test_dsvdd_parts_are_its_members_one_per_latent_dimension(weighted_files):
    spec = DMDataSpec(weighted_files / "bkg.csv", (("gluino", weighted_files / "gluino.csv"),))
    # read raw (the default reads every score as its multiplicity p-value, members too)
    hp = {"rep_dims": [3, 5], "epochs": 1, "calibration": "none"}
    calibrated = evaluate(
        {**hp, "calibration": "multiplicity"}, DMCell("dSVDD", "MLP", spec), "half"
    )
    assert list(calibrated.parts) == ["d3", "d5"]
    result = evaluate(hp, DMCell("dSVDD", "MLP", spec), "half")
    assert list(result.parts) == ["d3", "d5"]
    # the detector's score is the mean of its members' standardised distances
    mean = np.mean([result.parts["d3"], result.parts["d5"]], axis=0)
    slope, offset = np.polyfit(mean, result.scores["val_loss"], 1)
    assert slope > 0
    np.testing.assert_allclose(result.scores["val_loss"], slope * mean + offset, atol=1e-4)
    assert not np.allclose(result.parts["d3"], result.parts["d5"])
    one = evaluate({"rep_dims": [3], "epochs": 1}, DMCell("dSVDD", "MLP", spec), "half")
    assert one.parts == {}  # one member is the whole: no part row


def test_validate_says_the_metrics_are_weighted(weighted_files):
    from _hpo_cli import hpo

    path = weighted_files / "c.toml"
    path.write_text(
        '[campaign]\nname = "w"\n[data]\nsource = "darkmachines"\nbackground_file = "bkg.csv"\n'
        'signal_files = { gluino = "gluino.csv" }\n[grid]\nclassifiers = ["MET"]\n'
    )
    proc = hpo("validate", str(path))
    assert proc.returncode == 0, proc.stderr
    note = f"note: {weighted_files / 'bkg.csv'}: event weights differ in channel all: "
    assert note + "the truth metrics (AUC, eps_S) weight the test events with them" in proc.stdout
