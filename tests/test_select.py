"""``hpo select``: label-free selection across detectors, checked against truth.

The constructed campaign has one detector known to be better: HGB with its default
hyperparameters (up to 200 iterations of 31-leaf trees) next to one-split stumps (the
HGB search space is pinned to a single 2-leaf iteration; AdaBoost is fixed to one
depth-1 tree), in IAD and in CATHODE (exact-background template) mode: two groups of
different templates.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import optuna
import pytest
from _hpo_cli import hpo, run_pipeline, studies

from hpo.config import load_campaign
from hpo.select import pick, selection_groups, template_of

SEL = """
[campaign]
name = "sel"
run_dir = "run"
seed = 0

[data]
source = "synthetic"
scale = 0.05
seed = 2
background_model = "truth"

[grid]
classifiers = ["HGB", "AdaBoost"]
modes = ["IAD", "CATHODE"]
signal = [1000]

[search]
metrics = ["argos", "max_sic"]  # + "default" hyperparameters: three sources per cell
sampler = "random"
n_trials = 2
repetitions = 1
enqueue_defaults = false  # the searched sources stay stumps: the defaults are the good one

[search.fixed.HGB]
n_ensemble = 1

[search.space.HGB]
max_iter = {type = "int", low = 1, high = 1}
max_leaf_nodes = {type = "int", low = 2, high = 2}

[search.fixed.AdaBoost]
n_ensemble = 1
n_estimators = 1
max_depth = 1

[final]
n_runs = 5
statistics = ["half", "full"]
defaults = true
"""
GOOD = "HGB/default"
GROUPS = {"IAD-norot-N1000-baseline": "IAD", "CATHODE-truth-norot-N1000-baseline": "CATHODE"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The constructed campaign through create, run, export, final, select and report."""
    return run_pipeline(tmp_path_factory.mktemp("sel"), "sel", SEL)


def _summary(campaign, group: str, run_dir=None) -> dict:
    root = run_dir or campaign.run_dir
    return json.loads((root / "select" / group / "summary.json").read_text())


def _detector_run(campaign, detector: str, mode: str, stat: str, j: int) -> dict:
    """Final run ``j`` of detector ``HGB/default`` in ``mode``."""
    method, source = detector.split("/")
    return _run(campaign, f"{method}-{mode}-norot-N1000-baseline", source, stat, j)


def _run(campaign, cell: str, source: str, stat: str, j: int) -> dict:
    path = campaign.run_dir / "final" / cell / source / stat / f"run{j}.json"
    return json.loads(path.read_text())


def test_argos_selects_the_better_detector_and_agrees_with_truth(finished):
    campaign, _ = finished
    for group, mode in GROUPS.items():
        s = _summary(campaign, group)
        runs, n = s["runs"], range(campaign.final.n_runs)
        assert [r["run"] for r in runs] == list(n)
        # the truth, read from the final runs themselves: the default HGB is far better
        good, stump = f"HGB-{mode}-norot-N1000-baseline", f"AdaBoost-{mode}-norot-N1000-baseline"
        for j in range(campaign.final.n_runs):
            best = _run(campaign, good, "default", "full", j)["truth"]["argos"]["max_sic"]
            poor = _run(campaign, stump, "argos", "full", j)["truth"]["argos"]["max_sic"]
            assert best > 2 * poor
        argos = [r["picked"]["argos"]["detector"] for r in runs]
        truth = [r["picked"]["max_sic"]["detector"] for r in runs]
        assert argos.count(GOOD) >= len(runs) - 1, argos
        assert sum(a == t for a, t in zip(argos, truth, strict=True)) >= len(runs) - 1
        chosen, oracle = (s["selected"][m]["max_sic"]["median"] for m in ("argos", "max_sic"))
        assert chosen >= 0.95 * oracle
        assert s["selected"]["argos"]["picks"][GOOD] >= len(runs) - 1
        # one detector for the whole group: the best median half-statistics ARGOS
        overall = s["selected"]["argos"]["overall"]
        medians = {
            name: np.median(
                [_detector_run(campaign, name, mode, "half", j)["metrics"]["argos"] for j in n]
            )
            for name in s["selected"]["argos"]["pool"]
        }
        assert overall["detector"] == max(medians, key=medians.get) == GOOD
        assert overall["value"] == pytest.approx(medians[GOOD])
        truths = [
            _detector_run(campaign, GOOD, mode, "full", j)["truth"]["argos"]["max_sic"] for j in n
        ]
        assert overall["max_sic"]["median"] == pytest.approx(np.median(truths))
        assert s["selected"]["max_sic"]["overall"]["detector"] == GOOD
        # what the summary says each pick reached is what the final runs hold
        for r in runs:
            p = r["picked"]["argos"]
            method, source = p["detector"].split("/")
            cell = f"{method}-{mode}-norot-N1000-baseline"
            half = _run(campaign, cell, source, "half", r["run"])
            full = _run(campaign, cell, source, "full", r["run"])
            assert p["value"] == half["metrics"]["argos"]
            assert p["max_sic"] == full["truth"]["argos"]["max_sic"]
        prov = s["provenance"]
        assert prov["campaign_sha256"] == campaign.sha256 and prov["git_revision"]
        assert s["argos_min_template"] == campaign.search.argos_min_template == 0
        assert s["exact_limit_max_sic"] > chosen


def test_label_free_pools_leave_out_hyperparameters_picked_with_labels(finished):
    campaign, _ = finished
    s = _summary(campaign, "IAD-norot-N1000-baseline")
    assert s["selections"] == ["argos", "bce", "max_sic"]
    everything = {
        f"{c}/{src}" for c in ("HGB", "AdaBoost") for src in ("argos", "max_sic", "default")
    }
    assert set(s["detectors"]) == everything
    for m in ("argos", "bce"):
        assert set(s["selected"][m]["pool"]) == {d for d in everything if "max_sic" not in d}
    assert set(s["selected"]["max_sic"]["pool"]) == everything


def test_groups_never_compare_different_templates(finished):
    campaign, _ = finished
    written = sorted(p.parent.name for p in (campaign.run_dir / "select").glob("*/summary.json"))
    assert written == sorted(GROUPS)
    for group, mode in GROUPS.items():
        s = _summary(campaign, group)
        assert {d["mode"] for d in s["detectors"].values()} == {mode}
        assert all(d["cell"].split("-")[1] == mode for d in s["detectors"].values())


GRID = """
[campaign]
name = "g"
run_dir = "run"
[data]
background_model = "{model}"
[grid]
classifiers = ["HGB", "NN", "ANODE", "R-ANODE", "BackgroundFlow"]
modes = ["IAD", "CWoLa", "CATHODE"]
rotation = [false, true]
signal = [300, 1000]
"""


@pytest.mark.parametrize("model", ["flow", "truth"])
def test_grouping_keeps_templates_apart(tmp_path, model):
    """Density methods share a group only with CATHODE cells on the same background flow."""
    path = tmp_path / "g.toml"
    path.write_text(GRID.format(model=model))
    campaign = load_campaign(path)
    groups = {g.name: {cc.key for cc in g.cells} for g in selection_groups(campaign)}
    for g in selection_groups(campaign):
        assert len({template_of(campaign, cc.point) for cc in g.cells}) == 1, g.name
    scoring = [k for g in groups.values() for k in g]
    assert len(scoring) == len(set(scoring))  # every scoring cell in exactly one group
    assert not any(k.startswith("BackgroundFlow") for k in scoring)  # no anomaly score
    density = {"ANODE-density-norot-N300-baseline", "R-ANODE-density-norot-N300-baseline"}
    cathode = {"HGB-CATHODE-norot-N300-baseline", "NN-CATHODE-norot-N300-baseline"}
    assert groups["IAD-norot-N300-baseline"] == {
        "HGB-IAD-norot-N300-baseline",
        "NN-IAD-norot-N300-baseline",
    }
    assert groups["CWoLa-rot-N1000-baseline"] == {
        "HGB-CWoLa-rot-N1000-baseline",
        "NN-CWoLa-rot-N1000-baseline",
    }
    if model == "flow":  # the CATHODE template is the flow's samples: ARGOS compares
        assert groups["CATHODE-flow-norot-N300-baseline"] == cathode | density
        assert len(groups) == 12  # 3 templates x 2 rotations x 2 signal amounts
    else:  # the exact-background template is another template: never compared
        assert groups["CATHODE-truth-norot-N300-baseline"] == cathode
        assert groups["CATHODE-flow-norot-N300-baseline"] == density
        assert len(groups) == 14
    rotated = {"HGB-CATHODE-rot-N300-baseline", "NN-CATHODE-rot-N300-baseline"}
    if model == "flow":  # density cells are never rotated
        assert groups["CATHODE-flow-rot-N300-baseline"] == rotated
    else:
        assert groups["CATHODE-truth-rot-N300-baseline"] == rotated


def _strip_truth(src, dst) -> None:
    """Copy the final runs' records with every truth value removed (no test labels)."""
    for path in src.rglob("run*.json"):
        record = json.loads(path.read_text())
        record.pop("truth")
        record["metrics"].pop("max_sic", None)
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record))


def test_label_free_choices_are_the_same_without_test_labels(finished, tmp_path):
    campaign, _ = finished
    path = tmp_path / "sel.toml"
    path.write_text(SEL.replace('run_dir = "run"', f'run_dir = "{tmp_path / "blind"}"'))
    blind = load_campaign(path)
    shutil.copytree(campaign.run_dir / "data", blind.run_dir / "data")
    _strip_truth(campaign.run_dir / "final", blind.run_dir / "final")
    assert not list((blind.run_dir / "final").rglob("*.npz"))  # no test scores either
    proc = hpo("select", str(path))
    assert proc.returncode == 0, proc.stderr
    for group in GROUPS:
        seen, blinded = _summary(campaign, group), _summary(blind, group)
        for m in ("argos", "bce"):
            with_labels = [
                (r["picked"][m]["detector"], r["picked"][m]["value"]) for r in seen["runs"]
            ]
            without = [
                (r["picked"][m]["detector"], r["picked"][m]["value"]) for r in blinded["runs"]
            ]
            assert without == with_labels
            assert all(r["picked"][m]["max_sic"] is None for r in blinded["runs"])
            overall, overall_blind = (x["selected"][m]["overall"] for x in (seen, blinded))
            assert overall_blind["detector"] == overall["detector"]
            assert overall_blind["value"] == overall["value"]
            assert overall_blind["max_sic"]["n"] == 0  # no truth to report
        assert all(r["picked"]["max_sic"] is None for r in blinded["runs"])


def test_pick_takes_the_direction_and_skips_missing_values():
    values = {"a": 1.0, "b": float("nan"), "c": 3.0, "d": None, "e": 3.0}
    assert pick(values, "maximize") == "c"  # the first of equal values
    assert pick(values, "minimize") == "a"
    assert pick({"a": None, "b": float("nan")}, "maximize") is None


def test_report_shows_the_selection_and_attaches_the_plot_to_every_study(finished):
    campaign, proc = finished
    for group in GROUPS:
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(f"select {group}"))
        assert f"ARGOS picks {GOOD}" in line, line
        assert f"(overall {GOOD})" in line, line
    for panel in ("IAD-norot-baseline", "CATHODE-truth-norot-baseline"):
        assert (campaign.run_dir / "report" / f"selection_{panel}.png").stat().st_size > 10_000
        assert (campaign.run_dir / "report" / f"selection_{panel}.pdf").exists()
    for key, study in studies(campaign).items():
        metas = optuna.artifacts.get_all_artifact_meta(study)
        assert "selection_plot_sha" in study.user_attrs, key
        assert sum(m.mimetype == "image/png" for m in metas) == 2  # SIC curves + selection
    # reporting again attaches nothing new: the plots did not change
    assert hpo("report", str(campaign.path)).returncode == 0
    for study in studies(campaign).values():
        assert len(optuna.artifacts.get_all_artifact_meta(study)) == 2


def test_launch_runs_select_after_every_final_job(tmp_path):
    from hpo.launch import launch

    path = tmp_path / "c.toml"
    path.write_text(SEL)
    out = launch(load_campaign(path), dry_run=True)
    finals = [
        f"<final-{s}-{st}>" for s in ("argos", "max_sic", "default") for st in ("half", "full")
    ]
    folder = tmp_path / "run" / "slurm"
    select = f"--kill-on-invalid-dep=yes {folder / 'select.sbatch'}"
    assert f"'--dependency=afterok:{':'.join(finals)}' {select}" in out
    # the report waits for the selection (its plot) as well as the finals
    report = f"--kill-on-invalid-dep=yes {folder / 'report.sbatch'}"
    assert f"'--dependency=afterany:{':'.join(finals)}:<select>' {report}" in out
    assert f"-m hpo select {path}" in out
    path.write_text(SEL.replace('statistics = ["half", "full"]', 'statistics = ["full"]'))
    assert "select.sbatch" not in launch(load_campaign(path), dry_run=True)


def test_density_argos_holds_out_the_cathode_events_against_the_flow_samples(tmp_path):
    """ANODE's ARGOS and BCE, recomputed from the CATHODE classifier cell's own split."""
    import torch
    from scipy.special import expit

    from objectives.cells import Cell, DataSpec, prepare, read_samples
    from objectives.evaluate import evaluate
    from objectives.flows.anode import fit_anode
    from objectives.flows.methods import load_background_model
    from objectives.metrics import argos, weighted_bce
    from objectives.registry import get_method
    from objectives.splits import Split
    from objectives.synthetic import SyntheticSpec, write_synthetic
    from objectives.templates import background_flow

    torch.set_num_threads(1)
    spec = DataSpec(*write_synthetic(SyntheticSpec(scale=0.02, seed=5), tmp_path))
    quick = get_method("BackgroundFlow").quick_hp
    flow = background_flow(spec, 800, seed=0, hp=quick, cache_dir=tmp_path / "flows")
    data = dataclasses.replace(spec, background_model=flow.model_file)  # samples: the flow's
    hp = get_method("ANODE").validate(get_method("ANODE").quick_hp)
    result = evaluate(hp, Cell("ANODE", "density", 800, False, data), "half", run=1)

    cathode = dataclasses.replace(data, samples_file=flow.samples_file)
    y = prepare(Cell("HGB", "CATHODE", 800, False, cathode)).y  # 1 = SR data, 0 = samples
    train, held = Split.half(1).indices(y)
    n = int(y.sum())
    sr = data.events(800).sr
    mjj_t, x_t = read_samples(flow.samples_file, sr.x.shape[1])
    model = fit_anode(
        load_background_model(flow.model_file),
        sr.x[train[train < n]],
        sr.mjj[train[train < n]],
        hp,
        seed=Split.half(1).model_seed(),
    )
    t = held[held >= n] - n
    scores = np.concatenate(
        [model.score(sr.x[held[held < n]], sr.mjj[held[held < n]]), model.score(x_t[t], mjj_t[t])]
    )
    is_data = np.concatenate([np.ones((held < n).sum()), np.zeros(t.size)]).astype(int)
    assert result.metrics["argos"] == pytest.approx(argos(scores, is_data), rel=1e-9)
    assert result.metrics["bce"] == pytest.approx(weighted_bce(expit(scores), is_data), rel=1e-9)
    assert result.info["n_held_out_template"] == t.size == (y == 0).sum() // 2


FAMILIES = """
[campaign]
name = "fam"
run_dir = "run"

[data]
source = "synthetic"
scale = 0.03
seed = 1
background_model = "flow"
background_hp = {n_blocks = 2, hidden = 16, epochs = 3, n_keep = 2, batch_size = 512}

[grid]
classifiers = ["HGB", "ANODE", "R-ANODE"]
modes = ["CATHODE"]
signal = [1000]

[search]
metrics = ["argos", "max_sic"]
n_trials = 1
repetitions = 1

[search.fixed.HGB]
n_ensemble = 1
max_iter = 20

[search.fixed.ANODE]
epochs = 4
n_keep = 2
n_transforms = 2
n_blocks = 1
hidden = 16

[search.fixed.R-ANODE]
epochs = 4
n_keep = 2
n_transforms = 2
n_blocks = 1
hidden = 16
w = 0.1

[final]
n_runs = 2
defaults = false
"""


def test_selection_spans_classifiers_and_density_methods_on_one_template(tmp_path):
    """CATHODE on the trained flow, ANODE and R-ANODE: one group, one ARGOS, same events."""
    campaign, _ = run_pipeline(tmp_path, "fam", FAMILIES)
    s = _summary(campaign, "CATHODE-flow-norot-N1000-baseline")
    assert set(s["group"]["cells"]) == {
        "HGB-CATHODE-norot-N1000-baseline",
        "ANODE-density-norot-N1000-baseline",
        "R-ANODE-density-norot-N1000-baseline",
    }
    assert set(s["selected"]["argos"]["pool"]) == {
        "HGB/argos",
        "ANODE/val_loss",
        "R-ANODE/val_loss",
    }
    for r in s["runs"]:
        assert r["picked"]["argos"]["detector"] in s["selected"]["argos"]["pool"]
    from hpo.cells import campaign_cells

    cathode = next(cc for cc in campaign_cells(campaign) if cc.point.mode == "CATHODE")
    hgb = _run(campaign, cathode.key, "argos", "half", 0)
    for method in ("ANODE", "R-ANODE"):
        run = _run(campaign, f"{method}-density-norot-N1000-baseline", "val_loss", "half", 0)
        assert np.isfinite(run["metrics"]["argos"]) and np.isfinite(run["metrics"]["bce"])
        info = run["info"]
        # the CATHODE classifier's template, and as many held-out events
        assert info["template"] == str(cathode.cell().data.samples_file)
        assert info["n_held_out_data"] + info["n_held_out_template"] == hgb["info"]["n_validation"]
