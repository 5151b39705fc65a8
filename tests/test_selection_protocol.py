"""Selection without the winner's curse (issue 28), end to end through the CLI.

``PROTOCOL`` runs the product's defaults (the method's defaults enqueued first, the mean
pick, final label-free values on reserved events); ``PAPER`` the paper's protocol
(``search.enqueue_defaults = false``, ``final.pick = "per_repetition"``,
``final.holdout = "search"``). The HGB space is cut to [5, 40] iterations so that its
default of 200 lies outside it.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from _hpo_cli import hpo, run_pipeline, studies
from optuna.trial import TrialState

from hpo.cells import campaign_cells
from hpo.config import load_campaign
from hpo.holdout import search_split
from objectives.cells import prepare
from objectives.splits import Split
from storage.leases import ENQUEUED_AS

PROTOCOL = """
[campaign]
name = "proto"
run_dir = "run"
seed = 0

[data]
source = "synthetic"
scale = 0.03
seed = 1

[grid]
classifiers = ["HGB", "NN"]
modes = ["IAD"]
signal = [600]

[search]
n_trials = 3
sampler = "random"
repetitions = 2
metrics = ["argos", "bce", "max_sic"]

[search.fixed.HGB]
n_ensemble = 1

[search.fixed.NN]
epochs = 3

[search.space.HGB]
max_iter = {type = "int", low = 5, high = 40}

[final]
n_runs = 2
statistics = ["half", "full"]
"""
PAPER = (
    PROTOCOL.replace('name = "proto"', 'name = "paper"')
    .replace('classifiers = ["HGB", "NN"]', 'classifiers = ["HGB"]')
    .replace("n_trials = 3", "n_trials = 3\nenqueue_defaults = false")
    .replace("n_runs = 2", 'n_runs = 2\npick = "per_repetition"\nholdout = "search"')
)
SOURCES = ("argos", "bce", "max_sic", "default")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    return run_pipeline(tmp_path_factory.mktemp("proto"), "proto", PROTOCOL)


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    return run_pipeline(tmp_path_factory.mktemp("paper"), "paper", PAPER)


def _run(campaign, cc, source: str, stat: str, j: int) -> dict:
    folder = campaign.run_dir / "final" / cc.key / source / stat
    return json.loads((folder / f"run{j}.json").read_text())


def _summary(campaign, cc, source: str, stat: str) -> dict:
    folder = campaign.run_dir / "final" / cc.key / source / stat
    return json.loads((folder / "summary.json").read_text())


def test_the_defaults_are_every_studys_first_trial(finished):
    campaign, _ = finished
    for key, study in studies(campaign).items():
        labelled = [t for t in study.trials if t.user_attrs.get(ENQUEUED_AS) == "defaults"]
        assert [t.number for t in labelled] == [0], key
        first = labelled[0]
        clf = key.split("-")[0]
        if clf == "HGB":  # 200 iterations, unlimited depth, 255 bins: outside the space
            assert set(first.params) == {"learning_rate", "max_leaf_nodes", "l2_regularization"}
            assert first.user_attrs["hp"]["max_iter"] == 200
            assert first.user_attrs["hp"]["max_depth"] is None
        else:
            assert first.params == {"lr": 1e-3, "batch_size": 128, "dropout": 0.0,
                                    "weight_decay": 0.0, "beta1": 0.9}  # fmt: skip
        exported = json.loads((campaign.run_dir / "hp" / key / "defaults.json").read_text())
        assert exported["provenance"]["trial_number"] == 0
        assert exported["per_rep"]["argos"] == first.user_attrs["argos_per_rep"]
    proc = hpo("create", str(campaign.path))
    assert proc.returncode == 0, proc.stderr
    for study in studies(campaign).values():
        labelled = [t for t in study.trials if t.user_attrs.get(ENQUEUED_AS) == "defaults"]
        done = study.get_trials(states=(TrialState.COMPLETE,))  # not a racing worker's surplus
        assert len(labelled) == 1 and len(done) == campaign.search.n_trials


def test_final_values_come_from_events_no_choice_was_made_on(finished):
    """Half-statistics final runs score the reserved events: never held out by a trial's
    repetition, never used for the NN's epoch choice; every source the same split."""
    campaign, _ = finished
    reserve = campaign.final.reserve
    for cc in campaign_cells(campaign):
        p = prepare(cc.cell())
        searched = set()
        for j in range(campaign.search.repetitions):
            searched |= set(search_split(campaign, j).indices(p.y)[1].tolist())
        for j in range(campaign.final.n_runs):
            split = Split.reserved(j, reserve)
            for source in SOURCES:
                info = _run(campaign, cc, source, "half", j)["info"]
                assert info["split"] == split.to_dict(), (cc.key, source, j)
                assert info["validation"] == "reserved events"
            scored = set(split.indices(p.y)[1].tolist())
            assert scored and not scored & searched
            assert not scored & set(split.choice_indices(p.y).tolist())
            assert (
                _run(campaign, cc, "argos", "full", j)["info"]["split"] == Split.full(j).to_dict()
            )


def test_summaries_say_where_values_come_from_and_how_the_picks_moved(finished):
    campaign, _ = finished
    for cc in campaign_cells(campaign):
        for source in SOURCES:
            half, full = (_summary(campaign, cc, source, st) for st in ("half", "full"))
            assert half["label_free_on"].startswith("reserved events (0.25 of each class")
            assert full["label_free_on"] == "training set"
            assert "search_bias" not in full
            shifts = half["search_bias"]
            if source == "default":  # the defaults trial, picked by nothing: the reference
                assert set(shifts) == {"argos", "bce"}
                continue
            assert half["pick"] == "mean" and half["pick_fallback_runs"] == []
            best = json.loads((campaign.run_dir / "hp" / cc.key / source / "best.json").read_text())
            if source == "max_sic":  # picked with labels: no label-free value at search
                assert shifts == {}
                continue
            assert set(shifts) == {source}
            assert shifts[source]["at_search"]["median"] == pytest.approx(best["value"])
            runs = [_run(campaign, cc, source, "half", j) for j in range(campaign.final.n_runs)]
            assert all(r["picked"]["file"] == "best.json" for r in runs)  # the mean pick
            finals = [r["metrics"][source] for r in runs]
            assert shifts[source]["final"]["median"] == pytest.approx(np.median(finals))


def test_tables_show_what_drives_a_pick(finished):
    campaign, proc = finished
    out = proc.stdout
    assert "hyperparameters picked by the mean over repetitions" in out  # hpo final says so
    assert "ln2-bce[1e-4]" in out and " bce 0.69" not in out and "bce=0.69" not in out
    rows = [line for line in out.splitlines() if line.startswith(("HGB-IAD", "NN-IAD"))]
    hgb_default = [
        r for r in rows if r.split()[:3] == ["HGB-IAD-norot-N600-baseline", "default", "full"]
    ]
    assert len(hgb_default) == 1 and "(one ensemble for every selection)" in hgb_default[0]
    assert "(argos)" not in hgb_default[0] and "(bce)" not in hgb_default[0]
    nn_argos = [r for r in rows if r.split()[:2] == ["NN-IAD-norot-N600-baseline", "argos"]]
    assert nn_argos and all("(epochs by argos)" in r for r in nn_argos)
    full = [r for r in rows if r.split()[2] == "full"]
    assert full and all("on the training set:" in r for r in full)
    assert "selected by half-statistics truth" in out and "selected by max_sic" not in out
    from hpo.cli import _format_progress

    line = _format_progress(campaign)
    assert "ln2-bce[1e-4]=" in line and "bce=0.69" not in line
    select = json.loads(
        (campaign.run_dir / "select" / "IAD-norot-N600-baseline" / "summary.json").read_text()
    )
    assert select["holdout"] == "reserved" and "warning" not in select
    assert select["selection_names"]["max_sic"] == "half-statistics truth"
    assert set(select["winners_curse"]) == {"HGB/argos", "HGB/bce", "NN/argos", "NN/bce"}


def test_the_papers_protocol_states_its_bias(paper):
    campaign, proc = paper
    (cc,) = campaign_cells(campaign)
    (study,) = studies(campaign).values()
    assert not any(ENQUEUED_AS in t.user_attrs for t in study.trials)
    for j in range(campaign.final.n_runs):
        run = _run(campaign, cc, "argos", "half", j)
        assert run["info"]["split"] == Split.half(j).to_dict()
        assert run["picked"]["file"] == f"run{j}.json" and run["picked"]["pick"] == "per_repetition"
        # the value it is compared by is the value it won on
        assert run["metrics"]["argos"] == pytest.approx(run["picked"]["value"])
    summary = _summary(campaign, cc, "argos", "half")
    assert summary["search_bias"]["argos"]["optimism"]["median"] == pytest.approx(0.0, abs=1e-9)
    assert "hyperparameters picked per repetition" in proc.stdout
    assert "warning: final.holdout = 'search'" in proc.stdout


def test_the_per_repetition_pick_warns_where_a_run_has_no_repetition(paper, tmp_path):
    campaign, _ = paper
    (cc,) = campaign_cells(campaign)
    run_dir = tmp_path / "run"
    shutil.copytree(campaign.run_dir, run_dir, ignore=shutil.ignore_patterns("final"))
    text = campaign.path.read_text().replace("n_runs = 2", "n_runs = 3")
    path = tmp_path / "paper.toml"
    path.write_text(text)
    proc = hpo("validate", str(path))
    assert "final.n_runs = 3: run 2 uses the pick by the mean" in proc.stderr
    proc = hpo("final", str(path), "--source", "argos", "--statistics", "full")
    assert proc.returncode == 0, proc.stderr
    assert "search.repetitions = 2 < final.n_runs = 3: run 2 uses the pick by the mean" in (
        proc.stderr
    )
    again = load_campaign(path)
    files = [_run(again, cc, "argos", "full", j)["picked"] for j in range(3)]
    assert [f["file"] for f in files] == ["run0.json", "run1.json", "best.json"]
    assert [f["fallback"] for f in files] == [False, False, True]
    assert _summary(again, cc, "argos", "full")["pick_fallback_runs"] == [2]


def test_a_reserve_set_after_the_search_is_refused(paper, tmp_path):
    """The paper's search held every event out at some repetition: reserving events now
    would score the final runs on events the search chose on."""
    campaign, _ = paper
    shutil.copytree(campaign.run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("final"))
    path = tmp_path / "paper.toml"
    path.write_text(campaign.path.read_text().replace('holdout = "search"', 'holdout = "reserved"'))
    proc = hpo("export", str(path))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "its trials kept 0 of each class out" in proc.stderr
    assert "final.reserve now reserve 0.25" in proc.stderr
    # every trial that ran (a racing worker's surplus trial runs nothing and records nothing)
    study = next(iter(studies(campaign).values()))
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert trial.user_attrs["reserve"] == 0.0


def test_a_surplus_trial_does_not_block_the_export(finished, tmp_path):
    """Two workers racing for a study's last trial leave a FAIL trial that ran nothing and
    recorded no reserve: the export judges the reserve by the trials that ran."""
    campaign, _ = finished
    shutil.copytree(campaign.run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("final"))
    path = tmp_path / "proto.toml"
    path.write_text(campaign.path.read_text())
    copy = load_campaign(path)
    for study in studies(copy).values():
        surplus = study.ask()
        study.tell(surplus, state=TrialState.FAIL)
    proc = hpo("export", str(path))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)


def _export_with_margin(campaign, folder, margin: float):
    """``hpo export`` of the copy in ``folder`` with ``final.defaults_margin = margin``."""
    path = folder / "proto.toml"
    text = campaign.path.read_text().replace("[final]\n", f"[final]\ndefaults_margin = {margin}\n")
    path.write_text(text)
    proc = hpo("export", str(path))
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return load_campaign(path), proc


def _best(campaign, key: str, metric: str) -> dict:
    return json.loads((campaign.run_dir / "hp" / key / metric / "best.json").read_text())


def test_the_mean_pick_keeps_the_defaults_unless_a_trial_beats_them_beyond_noise(
    finished, tmp_path
):
    """Margin 0 exports the plain best; a margin of 1e9 standard errors keeps the defaults
    trial wherever a trial is not the defaults; ``hpo final`` then trains again every
    run made on the pick the export replaced, and the summaries and ``hpo select`` say
    that the pick is the defaults."""
    from hpo.export import best_trial

    campaign, _ = finished
    shutil.copytree(campaign.run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("select"))
    plain, _ = _export_with_margin(campaign, tmp_path, 0)
    best = {}
    for key, study in studies(plain).items():
        done = study.get_trials(states=(TrialState.COMPLETE,))
        for metric in plain.search.metrics:
            best[key, metric] = best_trial(done, metric).number
            record = _best(plain, key, metric)
            assert record["provenance"]["trial_number"] == best[key, metric]
            rule = record["pick_rule"]
            assert rule["best_trial"] == best[key, metric] and rule["margin"] == 0
            assert rule["kept_defaults"] == (best[key, metric] == 0), rule
    searched = [key for (key, metric), n in best.items() if metric == "argos" and n != 0]
    assert searched  # the fixture's search (seeded): a trial beats the defaults by ARGOS
    final = ("final", "--source", "argos")
    proc = hpo(*final, str(plain.path))
    assert proc.returncode == 0, proc.stderr

    kept, proc = _export_with_margin(campaign, tmp_path, 1e9)
    n = len(best)
    assert f"best.json is the defaults trial in {n} of {n} cell/metric picks" in proc.stderr
    for (key, metric), number in best.items():
        record = _best(kept, key, metric)
        assert record["provenance"]["trial_number"] == 0  # the defaults trial
        rule = record["pick_rule"]
        assert rule["kept_defaults"] and rule["best_trial"] == number
        if number != 0:
            assert rule["standard_error"] is not None and rule["difference"] >= 0
            assert rule["margin"] == 1e9
    proc = hpo(*final, str(kept.path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("training it again") == 2 * len(searched) * kept.final.n_runs
    for cc in campaign_cells(kept):
        for st in ("half", "full"):
            runs = [_run(kept, cc, "argos", st, j)["picked"] for j in range(kept.final.n_runs)]
            assert all(r["trial_number"] == 0 and r["kept_defaults"] for r in runs), runs
            assert _summary(kept, cc, "argos", st)["kept_defaults"]
    proc = hpo("select", str(kept.path))
    assert proc.returncode == 0, proc.stderr
    select = json.loads(
        (kept.run_dir / "select" / "IAD-norot-N600-baseline" / "summary.json").read_text()
    )
    assert select["detectors"]["HGB/argos"]["kept_defaults"]
    assert not select["detectors"]["HGB/default"]["kept_defaults"]
    assert "HGB/argos" in proc.stdout and "the pick is the defaults trial" in proc.stdout
    proc = hpo("report", str(kept.path))
    assert proc.returncode == 0, proc.stderr
    rows = [r.split() for r in proc.stdout.splitlines() if r.startswith(("HGB-IAD", "NN-IAD"))]
    kept_rows = {r[1] for r in rows if "the pick is the defaults trial;" in " ".join(r)}
    argos = [r for r in rows if r[1] == "argos"]
    assert argos and all("the pick is the defaults trial;" in " ".join(r) for r in argos)
    assert "default" not in kept_rows  # the default source is no pick


def test_validate_says_when_the_rule_toward_the_defaults_cannot_act(tmp_path):
    """One repetition leaves the rule no standard error: best.json is the plain best."""
    for reps, warned in ((1, True), (2, False)):
        path = tmp_path / f"proto{reps}.toml"
        path.write_text(PROTOCOL.replace("repetitions = 2", f"repetitions = {reps}"))
        proc = hpo("validate", str(path))
        assert proc.returncode == 0, proc.stderr
        said = "final.defaults_margin = 1 cannot act" in proc.stderr
        assert said == warned, proc.stderr
