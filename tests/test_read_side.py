"""The read side at campaign scale: export writes many files at once with one provenance,
a starting worker touches the storage only for what is missing, and a journal snapshot
is used only when it fits the journal (issue 14 §4; figures: benchmarks/read_side.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from hpo.cells import campaign_cells
from hpo.config import load_campaign
from hpo.export import export_campaign
from hpo.studies import create_studies, ensure_studies, open_campaign_storage
from objectives.registry import DIRECTIONS

REPS = 3
CAMPAIGN = """\
[campaign]
name = "rs"
run_dir = "run"

[grid]
classifiers = ["HGB"]
signal = [300, 1000]
rotation = [false, true]

[search]
n_trials = 6
sampler = "random"
metrics = ["argos", "bce"]
repetitions = {reps}
"""


@pytest.fixture
def campaign(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN.format(reps=REPS))
    return load_campaign(path)


def _fill(campaign, rng: np.random.Generator) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Six complete trials per cell with the attributes the objective writes."""
    storage = open_campaign_storage(campaign)
    create_studies(campaign, storage)
    out = {}
    for cc in campaign_cells(campaign):
        study = optuna.load_study(study_name=cc.study_name, storage=storage)
        for _ in range(campaign.search.n_trials):
            trial = study.ask()
            trial.suggest_float("learning_rate", 1e-4, 0.5, log=True)
            for m in cc.metrics:
                per_rep = [float(v) for v in rng.uniform(0, 1, REPS)]
                trial.set_user_attr(m, float(np.mean(per_rep)))
                trial.set_user_attr(f"{m}_per_rep", per_rep)
            study.tell(trial, trial.user_attrs["argos"])
        out[cc.key] = study.get_trials(states=(TrialState.COMPLETE,))
    return out


def _best(trials, metric: str, rep: int | None):
    sign = 1 if DIRECTIONS[metric] == "maximize" else -1

    def value(t):
        return t.user_attrs[metric] if rep is None else t.user_attrs[f"{metric}_per_rep"][rep]

    return max(trials, key=lambda t: (sign * value(t), -t.number))


def test_export_writes_every_file_with_one_provenance(campaign) -> None:
    truth = _fill(campaign, np.random.default_rng(3))
    written = export_campaign(campaign)
    assert len(written) == 4 * 2 * (1 + REPS) == len(set(written))
    stamps = set()
    for key, trials in truth.items():
        for metric in ("argos", "bce"):
            for rep in [None, *range(REPS)]:
                name = "best" if rep is None else f"run{rep}"
                path = campaign.run_dir / "hp" / key / metric / f"{name}.json"
                assert path in written
                record = json.loads(path.read_text())
                best = _best(trials, metric, rep)
                assert record["provenance"]["trial_number"] == best.number, (key, metric, rep)
                assert record["params"] == best.params
                assert math.isclose(
                    record["value"],
                    best.user_attrs[metric]
                    if rep is None
                    else best.user_attrs[f"{metric}_per_rep"][rep],
                )
                p = record["provenance"]
                stamps.add((p["written_at"], p["git_revision"], p["data_sha256"]))
    assert len(stamps) == 1, "one export, one provenance stamp"
    assert not list((campaign.run_dir / "hp").rglob(".*")), "temporary files left behind"


def test_a_starting_worker_only_creates_what_is_missing(campaign) -> None:
    storage = open_campaign_storage(campaign)
    create_studies(campaign, storage)
    journal = campaign.run_dir / "optuna.journal"
    size = journal.stat().st_size
    assert ensure_studies(campaign, open_campaign_storage(campaign)) == 0
    assert journal.stat().st_size == size, "a worker start must not append to the journal"
    victim = campaign_cells(campaign)[2]
    optuna.delete_study(study_name=victim.study_name, storage=storage)
    assert ensure_studies(campaign, open_campaign_storage(campaign)) == 1
    study = optuna.load_study(study_name=victim.study_name, storage=storage)
    assert study.user_attrs["cell"]["key"] == victim.key
    assert study.user_attrs["target_trials"] == campaign.search.n_trials
