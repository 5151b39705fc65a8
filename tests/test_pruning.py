"""Pruning over repetitions (issue 14 §1): PRUNED trials, exact counts, never exported."""

from __future__ import annotations

import json
import os

import optuna
import pytest
from _hpo_cli import hpo, studies
from optuna.trial import TrialState

from hpo.config import ConfigError, load_campaign
from hpo.pruners import make_pruner
from workers.worker import run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _paired(trial: optuna.Trial) -> float:
    """Six repetitions of a noisy paired score: a repetition's difficulty (0.1 j) is shared
    by every trial, x shifts all of a trial's repetitions, and each evaluation has its own
    noise, so only trials clearly worse than the best are significantly worse."""
    import numpy as np

    x = trial.suggest_float("x", 0.0, 1.0)
    noise = np.random.default_rng([trial.number, 7]).normal(0.0, 0.3, 6)
    values = []
    for j in range(6):
        values.append(x + 0.1 * j + noise[j])
        trial.report(values[-1], step=j)
        if j < 5 and trial.should_prune():
            raise optuna.TrialPruned()
    return sum(values) / len(values)


@pytest.mark.parametrize("count_pruned", [False, True])
def test_wilcoxon_prunes_worse_trials_and_counts_stay_exact(study, count_pruned):
    def sampler(name):
        return optuna.samplers.RandomSampler(seed=3)

    summary = run_worker(
        study._storage,
        {study.study_name: 12},
        _paired,
        sampler_factory=sampler,
        worker_id="w",
        poll=0.1,
        pruner_factory=lambda name: make_pruner("wilcoxon", p_threshold=0.15, startup=3),
        count_pruned=count_pruned,
    )
    assert summary.exit_code == 0 and summary.pruned > 0
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    counted = len(complete) + (len(pruned) if count_pruned else 0)
    assert counted == 12
    for t in pruned:  # pruned after its startup repetitions, below the best in every one
        steps = t.intermediate_values
        assert 3 <= len(steps) < 6
        earlier = [c for c in complete if c.number < t.number]
        assert any(all(steps[j] < c.intermediate_values[j] for j in steps) for c in earlier)


CAMPAIGN = """
[campaign]
name = "prune"
run_dir = "run"
[data]
scale = 0.02
seed = 3
[grid]
signal = [500]
[search]
n_trials = 8
sampler = "random"
repetitions = 5
pruner = "wilcoxon"
pruner_p = 0.15
pruner_startup = 3
count_pruned = false
[search.fixed.HGB]
n_ensemble = 1
[search.space.HGB]
max_iter = {type = "int", low = 2, high = 60}
learning_rate = {type = "float", low = 0.0001, high = 0.5, log = true}
[final]
n_runs = 1
statistics = ["full"]
defaults = false
"""


def test_campaign_prunes_records_partial_repetitions_and_never_exports_them(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN)
    campaign = load_campaign(path)
    assert hpo("run", str(path), "-w", "1").returncode == 0
    (study,) = studies(campaign).values()
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 8 and pruned, "nothing was pruned"
    for t in pruned:  # the dashboard shows them; their completed repetitions are kept
        assert 3 <= len(t.user_attrs["argos_per_rep"]) < 5
        assert t.user_attrs["argos"] == pytest.approx(
            sum(t.user_attrs["argos_per_rep"]) / len(t.user_attrs["argos_per_rep"])
        )
    for t in pruned + complete:  # each trial's own CPU time: a cost that ignores the load
        wall = (t.datetime_complete - t.datetime_start).total_seconds()
        assert 0 < t.user_attrs["cpu_s"] <= wall * (os.cpu_count() or 1) + 0.5
    assert hpo("export", str(path)).returncode == 0
    numbers = {t.number for t in pruned}
    for record in (tmp_path / "run" / "hp").rglob("*.json"):
        assert json.loads(record.read_text())["provenance"]["trial_number"] not in numbers
    status = hpo("status", str(path)).stdout
    assert f" {len(pruned)} " in status.splitlines()[3]  # the pruned column


def test_pruner_settings_are_checked(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN.replace("pruner_startup = 3", "pruner_startup = 5"))
    with pytest.raises(ConfigError, match="search.pruner_startup: must be below"):
        load_campaign(path)
    path.write_text(CAMPAIGN.replace('pruner = "wilcoxon"', 'pruner = "median"'))
    with pytest.raises(ConfigError, match="search.pruner: must be one of 'auto', 'none'"):
        load_campaign(path)


@pytest.mark.parametrize(
    ("settings", "pruner"),
    [
        ("repetitions = 5", "wilcoxon"),  # the benchmark's choice, where it can act
        ("repetitions = 3", "none"),  # no repetition left after the startup: nothing to prune
        ("repetitions = 5\npruner_startup = 4", "wilcoxon"),
        ("repetitions = 5\npruner_startup = 5", "none"),
        ('repetitions = 5\npruner = "none"', "none"),  # the paper's protocol, explicitly
        ('repetitions = 5\npruner = "halving"', "halving"),
    ],
)
def test_auto_pruner_acts_only_where_it_can(tmp_path, settings, pruner):
    body = CAMPAIGN.replace("repetitions = 5", settings)
    for line in ('pruner = "wilcoxon"\n', "pruner_startup = 3\n", "count_pruned = false\n"):
        body = body.replace(line, "", 1)
    path = tmp_path / "c.toml"
    path.write_text(body)
    search = load_campaign(path).search
    assert search.pruner == pruner
    assert search.count_pruned  # pruning saves repetitions of the same trial budget
