"""ANODE, R-ANODE and the background flow as campaign cells, end to end on journal storage."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from _hpo_cli import run_pipeline, studies
from optuna.trial import TrialState

from hpo.cells import campaign_cells, final_sources
from hpo.config import ConfigError, load_campaign
from objectives.registry import get_method

VAL_LOSS = "val_loss"
#: Random scores reach a max SIC of 1.0 on these test sets (the SIC floor keeps 25 background
#: events); 3.0 is a detector that found the signal (measured: 3.7-8.3 for these settings).
RANDOM_SIC = 3.0

TINY_FLOW = "n_blocks = 2, hidden = 16, epochs = 3, n_keep = 2, batch_size = 512"
FLOW_LINES = TINY_FLOW.replace(", ", "\n")
SPLINE = "epochs = 6\nn_keep = 2\nn_transforms = 2\nn_blocks = 1\nhidden = 32\nbatch_size = 128"

DENSITY = f"""
[campaign]
name = "dens"
run_dir = "run"

[data]
source = "synthetic"
scale = 0.03
seed = 1
background_hp = {{{TINY_FLOW}}}

[grid]
classifiers = ["HGB", "ANODE", "R-ANODE", "BackgroundFlow"]
modes = ["IAD"]
signal = [1000]

[search]
n_trials = 2
sampler = "random"
repetitions = 1
metrics = ["argos", "max_sic"]

[search.fixed.HGB]
n_ensemble = 1
max_iter = 20

[search.fixed.ANODE]
{SPLINE}

[search.fixed.R-ANODE]
{SPLINE}
w = 0.15

[search.space.R-ANODE]
lr = {{type = "float", low = 1e-3, high = 3e-3, log = true}}

[search.fixed.BackgroundFlow]
{FLOW_LINES}

[final]
n_runs = 1
statistics = ["full"]
defaults = false
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The four-method campaign run through create, 2 workers, export, final and report."""
    return run_pipeline(tmp_path_factory.mktemp("dens"), "dens", DENSITY)


def test_density_methods_are_one_cell_per_signal_amount(tmp_path):
    path = tmp_path / "c.toml"
    grid = 'modes = ["IAD", "CWoLa"]\nrotation = [false, true]'
    path.write_text(DENSITY.replace('modes = ["IAD"]', grid))
    keys = [cc.key for cc in campaign_cells(load_campaign(path))]
    assert sum(k.startswith("HGB-") for k in keys) == 4  # 2 modes x 2 rotations
    for method in ("ANODE", "R-ANODE", "BackgroundFlow"):
        assert f"{method}-density-norot-N1000-baseline" in keys
    assert len(keys) == 7


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("batch_size = 512}", "batch_size = 512, blocks = 3}", "data.background_hp"),
        ("w = 0.15", "w = 1.5", "search.fixed.R-ANODE"),
        ("lr = {type", "bins = {type", "search.space.R-ANODE"),
    ],
)
def test_bad_density_settings_name_the_field(tmp_path, old, new, field):
    assert old in DENSITY
    path = tmp_path / "c.toml"
    path.write_text(DENSITY.replace(old, new))
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_campaign(path)


def test_density_hyperparameters_defaults_and_validation():
    ranode = get_method("R-ANODE")
    search, final = ranode.default_hyperparameters(), ranode.default_hyperparameters(final=True)
    assert search["epochs"] == 30 and final["epochs"] == 300 and final["w"] is None
    assert ranode.validate({"epochs": 4})["n_keep"] == 4
    assert get_method("ANODE").validate({})["n_transforms"] == 6
    assert get_method("BackgroundFlow").default_hyperparameters(final=True)["n_blocks"] == 15


def test_density_studies_minimise_val_loss_and_record_truth(finished):
    campaign, _ = finished
    by_key = studies(campaign)
    for method in ("ANODE", "R-ANODE", "BackgroundFlow"):
        study = by_key[f"{method}-density-norot-N1000-baseline"]
        assert study.direction.name == "MINIMIZE"
        assert study.metric_names == [VAL_LOSS]
        done = study.get_trials(states=(TrialState.COMPLETE,))
        assert len(done) == campaign.search.n_trials
        for t in done:
            assert np.isfinite(t.value) and t.value == t.user_attrs[VAL_LOSS]
            assert "argos" not in t.user_attrs
            if method == "BackgroundFlow":
                assert "max_sic" not in t.user_attrs
            else:  # the oracle is recorded; a trained detector finds the injected signal
                assert t.user_attrs["max_sic"] > RANDOM_SIC
        if method == "R-ANODE":
            assert {t.user_attrs["hp"]["w"] for t in done} == {0.15}
            # the searched trials stay in the campaign's space; the defaults trial (its lr
            # outside that space) trains the method's defaults
            searched = [t for t in done if t.user_attrs.get("enqueued_as") != "defaults"]
            assert len(searched) == len(done) - 1
            assert all(1e-3 <= t.params["lr"] <= 3e-3 for t in searched)
    assert by_key["HGB-IAD-norot-N1000-baseline"].metric_names == ["argos"]


def test_background_flow_is_trained_once_for_every_density_cell(finished):
    campaign, _ = finished
    root = campaign.run_dir / "artifacts" / "background_models"
    entries = [p for p in root.iterdir() if p.is_dir()]
    assert len(entries) == 1  # every ANODE and R-ANODE trial and final run shares it
    info = json.loads((entries[0] / "MANIFEST.json").read_text())["info"]
    assert info["hyperparameters"]["n_blocks"] == 2 and info["signal"] == 1000
    assert info["seed"] == campaign.data.seed


def test_density_cells_export_and_final_runs(finished):
    campaign, proc = finished
    assert final_sources(campaign) == ["argos", "max_sic", VAL_LOSS]
    for method in ("ANODE", "R-ANODE", "BackgroundFlow"):
        key = f"{method}-density-norot-N1000-baseline"
        best = json.loads((campaign.run_dir / "hp" / key / VAL_LOSS / "best.json").read_text())
        study = studies(campaign)[key]
        assert best["provenance"]["trial_number"] == study.best_trial.number
        summary = json.loads(
            (campaign.run_dir / "final" / key / VAL_LOSS / "full" / "summary.json").read_text()
        )
        assert summary["label_free"][VAL_LOSS]["n"] == 1
        sic = summary["max_sic"][VAL_LOSS]["median"]
        assert sic is None if method == "BackgroundFlow" else sic > RANDOM_SIC  # NaN: null
        assert not (campaign.run_dir / "final" / key / "argos").exists()
    assert "R-ANODE-density" in proc.stdout and "val_loss" in proc.stdout


def test_density_study_is_readable_in_optuna(finished):
    campaign, _ = finished
    from hpo.studies import open_campaign_storage

    names = optuna.get_all_study_names(open_campaign_storage(campaign))
    assert "dens.R-ANODE-density-norot-N1000-baseline" in names


@pytest.mark.parametrize("shifted", [False, True])
def test_density_methods_and_classifier_modes_share_one_test_set(tmp_path, shifted):
    from objectives.cells import Cell, DataSpec, prepare
    from objectives.synthetic import SyntheticSpec, write_synthetic

    files = write_synthetic(SyntheticSpec(scale=0.02, seed=3, shifted=shifted), tmp_path)
    rd = DataSpec(*files).events(700)  # what the density methods train and test on
    p = prepare(Cell("HGB", "IAD", 700, False, DataSpec(*files)))
    np.testing.assert_array_equal(rd.test.label, p.y_test)
    # the classifier's test set is the same events, standardised with the training set
    X = np.concatenate([rd.sr.x, rd.iad_template.x])
    np.testing.assert_allclose((rd.test.x - X.mean(0)) / X.std(0), p.X_test, rtol=1e-5, atol=1e-5)
    assert rd.info["n_sr_signal"] == p.info["n_sr_signal"] > 0
    assert len(rd.sr) == p.info["n_sr_data"]
