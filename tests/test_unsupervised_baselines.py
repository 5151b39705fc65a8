"""The unsupervised family's baselines against what is known about them.

The one-variable cuts score exactly the variable written in the file; BkgDensity ranks
events within one multiplicity exactly as the generator's ``-log p_bkg``; the Isolation
Forest and the flow rank a clearly anomalous toy sample above the background (the sign
of a score is the first thing to get wrong); dequantization keeps every discrete value
inside its unit cell. A campaign runs the methods without hyperparameters once (no study
trials), with only the ``default`` source, and names them in the challenge CSV without
backbone or source.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from _hpo_cli import run_pipeline, studies
from optuna.trial import TrialState
from sklearn.metrics import roc_auc_score

from objectives.darkmachines import (
    SIGNALS,
    DMSyntheticModel,
    DMSyntheticSpec,
    write_events,
    write_synthetic_darkmachines,
)
from objectives.darkmachines.cells import DMCell, DMDataSpec, load_sets
from objectives.errors import DataError, HyperparameterError
from objectives.evaluate import evaluate
from objectives.registry import ORACLES, get_method
from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.baselines import BASELINE_MODE, BASELINES, fit_baseline
from objectives.unsupervised.event_features import (
    COUNT_COLUMNS,
    FEATURES,
    cell_centres,
    dequantize,
    event_features,
)
from objectives.unsupervised.toy import toy_events

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """A user's files written from known records: 2000 background, 300 monojet events."""
    model, rng = DMSyntheticModel(), np.random.default_rng(11)
    folder = tmp_path_factory.mktemp("baselines")
    bkg, sig = model.sample_background(2000, rng), model.sample("monojet", 300, rng)
    write_events(folder / "bkg.csv", bkg)
    write_events(folder / "monojet.csv", sig)
    spec = DMDataSpec(folder / "bkg.csv", (("monojet", folder / "monojet.csv"),))
    return spec, bkg, sig


def _cell(name, spec):
    return DMCell(name, BASELINE_MODE, spec)


def _test_records(spec, bkg, sig):
    """The records of the test set, in its order (test background by event ID, then signal)."""
    sets = load_sets(spec)
    by_id = {r.event_id: r for r in bkg}
    return [by_id[i] for i in sets.test_background.event_id] + list(sig)


@pytest.mark.parametrize(
    ("name", "truth"),
    [
        ("MET", lambda r: math.log(r.met / 1000.0)),
        ("HT", lambda r: math.log(max(sum(o[2] for o in r.objects if o[0] in "jb"), 1) / 1e3)),
        ("NObjects", lambda r: len(r.objects)),
    ],
)
def test_a_cut_scores_exactly_its_variable_as_written_in_the_file(records, name, truth):
    spec, bkg, sig = records
    result = evaluate({}, _cell(name, spec), "full")
    expected = np.array([truth(r) for r in _test_records(spec, bkg, sig)])
    # scores are standardised on held-out background: an increasing affine map of the variable
    scores = result.scores["auc"]
    slope, offset = np.polyfit(expected, scores, 1)
    assert slope > 0
    np.testing.assert_allclose(scores, slope * expected + offset, atol=1e-4)
    y = load_sets(spec).test_signal >= 0
    assert result.per_signal["monojet"]["auc"] == pytest.approx(roc_auc_score(y, expected))
    # no model, no loss: the label-free perturb_auc (any score has one) and the truth
    assert tuple(result.metrics) == ("perturb_auc", *ORACLES[1:])


def test_methods_without_hyperparameters_say_so():
    for name in ("MET", "HT", "NObjects", "BkgDensity"):
        assert get_method(name).default_hyperparameters() == {}
        with pytest.raises(HyperparameterError, match=f"^{name} hyperparameter 'x': unknown; "):
            get_method(name).validate({"x": 1})


def test_bkg_density_ranks_by_the_exact_density_within_a_multiplicity(tmp_path):
    """Within one object multiplicity BkgDensity ranks events exactly as the generator's
    -log p_bkg does; across multiplicities it is the report's signal-agnostic limit."""
    from objectives.darkmachines.cells import exact_limits

    paths = write_synthetic_darkmachines(DMSyntheticSpec(n_background=1500, n_signal=200), tmp_path)
    signals = tuple((n, p) for n, p in paths.items() if n != "background")
    spec = DMDataSpec(paths["background"], signals, synthetic=True)
    result = evaluate({}, _cell("BkgDensity", spec), "half", run=0)
    sets = load_sets(spec)
    exact = -DMSyntheticModel().log_prob_background(sets.test)  # the format's own events
    n_objects = sets.test.mask.sum(axis=1)
    rarity = result.scores["val_loss"]
    for n in np.unique(n_objects):
        same = np.flatnonzero(n_objects == n)
        by_density = rarity[same[np.argsort(exact[same])]]
        assert np.all(np.diff(by_density) >= -1e-9), n
    limits = exact_limits(spec, "background_density")
    for name in sets.signals:
        assert result.per_signal[name]["auc"] == pytest.approx(limits[name]["auc"], abs=1e-12)
    assert math.isfinite(result.metrics["val_loss"])
    # a user's files have no exact density; truncated events have none either
    user = DMDataSpec(paths["background"], signals, synthetic=False)
    with pytest.raises(DataError, match="BkgDensity: needs the synthetic DarkMachines set"):
        evaluate({}, _cell("BkgDensity", user), "half")
    cut = DMDataSpec(paths["background"], signals, synthetic=True, max_objects=4)
    with pytest.raises(DataError, match="read with data.max_objects >= 20"):
        evaluate({}, _cell("BkgDensity", cut), "half")


@pytest.mark.parametrize("name", ["IsolationForest", "FlowDensity"])
def test_a_trained_baseline_ranks_clear_anomalies_above_the_background(name):
    train, val = toy_events(1500, seed=1), toy_events(500, seed=2)
    test_bkg, anomalies = toy_events(500, seed=3), toy_events(500, seed=4, anomalous=True)
    hp = {"epochs": 15, "n_keep": 3} if name == "FlowDensity" else {}
    det = fit_baseline(name, hp, train, val, seed=0)
    again = fit_baseline(name, hp, train, val, seed=0)
    both = EventArrays.concat([test_bkg, anomalies])
    np.testing.assert_array_equal(det.score(both), again.score(both))  # seeded
    y = np.r_[np.zeros(500), np.ones(500)]
    assert roc_auc_score(y, det.score(both)) > 0.9  # higher = more anomalous
    assert math.isfinite(det.val_loss)


def test_the_flows_held_out_loss_falls_with_training():
    train, val = toy_events(1500, seed=1), toy_events(500, seed=2)
    short = fit_baseline("FlowDensity", {"epochs": 1, "n_keep": 1}, train, val, seed=0)
    longer = fit_baseline("FlowDensity", {"epochs": 20, "n_keep": 1}, train, val, seed=0)
    assert longer.val_loss < short.val_loss - 1.0


def test_dequantization_keeps_each_discrete_value_in_its_unit_cell():
    x = event_features(toy_events(400, seed=5))
    counts = list(COUNT_COLUMNS)
    floor = math.log(1e-3)
    noisy = dequantize(x, np.random.default_rng(0))
    assert np.all((noisy[:, counts] >= x[:, counts]) & (noisy[:, counts] < x[:, counts] + 1))
    lead = [FEATURES.index(f"log_pt{k}") for k in (1, 2, 3)]
    on_floor = np.isclose(x[:, lead], floor)
    assert on_floor.any() and (~on_floor).any()  # toy events have 1 to 5 objects
    lifted = noisy[:, lead]
    assert np.all((lifted[on_floor] > floor - 1) & (lifted[on_floor] <= floor))
    assert np.array_equal(lifted[~on_floor], x[:, lead][~on_floor])  # real values untouched
    centred = cell_centres(x)
    np.testing.assert_allclose(centred[:, counts], x[:, counts] + 0.5)
    np.testing.assert_allclose(centred[:, lead][on_floor], floor - 0.5)


# -- a campaign ----------------------------------------------------------------------------
CAMPAIGN = """
[campaign]
name = "base"
run_dir = "run"
[data]
source = "darkmachines"
scale = 0.01
seed = 2
[grid]
classifiers = ["IsolationForest", "MET", "HT", "NObjects", "BkgDensity"]
[search]
n_trials = 2
sampler = "random"
repetitions = 1
[final]
n_runs = 1
statistics = ["full"]
defaults = false
"""


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    return run_pipeline(tmp_path_factory.mktemp("campaign"), "base", CAMPAIGN)[0]


def test_methods_without_hyperparameters_run_once_in_final_not_in_a_search(campaign):
    from hpo.cells import campaign_cells

    cells = {cc.key: cc for cc in campaign_cells(campaign)}
    assert set(cells) == {f"{m}-baseline-chanall" for m in BASELINES if m != "FlowDensity"}
    for key, study in studies(campaign).items():
        done = study.get_trials(states=(TrialState.COMPLETE,))
        searched = key.startswith("IsolationForest")
        assert len(done) == (2 if searched else 0), key
        assert study.user_attrs["target_trials"] == (2 if searched else 0)
        exported = campaign.run_dir / "hp" / key
        assert exported.is_dir() == searched
        sources = sorted(p.name for p in (campaign.run_dir / "final" / key).iterdir())
        # final.defaults = false, yet a method without hyperparameters runs its one setting
        assert (sources == ["default"]) != searched, (key, sources)
        run = json.loads(
            (campaign.run_dir / "final" / key / sources[0] / "full" / "run0.json").read_text()
        )
        assert set(run["per_signal"]) == set(SIGNALS)


def test_the_challenge_csv_names_baselines_without_backbone(campaign):
    with open(campaign.run_dir / "report" / "challenge_full.csv", newline="") as f:
        models = {row["Model"] for row in csv.DictReader(f)}
    assert {"MET", "HT", "NObjects", "BkgDensity", "IsolationForest_val_loss"} <= models
    assert not any(m.startswith("MET_") or "baseline" in m for m in models)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            'background_file = "b.csv"\nsignal_files = { a = "a.csv" }\n'
            '[grid]\nclassifiers = ["MET", "BkgDensity"]',
            "grid.classifiers: BkgDensity needs the synthetic DarkMachines set",
        ),
        (
            'max_objects = 10\n[grid]\nclassifiers = ["BkgDensity"]',
            "data.max_objects: BkgDensity needs every object of an event",
        ),
    ],
)
def test_the_exact_density_needs_the_generators_files_read_in_full(tmp_path, text, needle):
    from _hpo_cli import hpo

    path = tmp_path / "c.toml"
    path.write_text(f'[campaign]\nname = "s"\n[data]\nsource = "darkmachines"\n{text}\n')
    proc = hpo("validate", str(path))
    assert proc.returncode == 2, proc.stdout
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("hpo: error: ") and needle in line, line


def test_a_campaign_of_cuts_alone_validates_and_defaults_to_their_metrics(tmp_path):
    from _hpo_cli import hpo

    from hpo.config import load_campaign

    path = tmp_path / "c.toml"
    path.write_text(
        '[campaign]\nname = "s"\n[data]\nsource = "darkmachines"\n'
        '[grid]\nclassifiers = ["MET", "HT"]\nchannels = ["all", "3"]\n'
    )
    campaign = load_campaign(path)
    assert campaign.search.metrics == ("perturb_auc", *ORACLES[1:])
    assert campaign.search.objective == "perturb_auc"
    proc = hpo("validate", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "4 cell(s) without hyperparameters to search, evaluated once by hpo final" in proc.stdout
    assert not (tmp_path / "runs").exists()
