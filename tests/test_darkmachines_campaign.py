"""Unsupervised campaigns on DarkMachines events, end to end, and their user errors.

A tiny synthetic DarkMachines campaign (dSVDD and DDD on the MLP, journal storage, two
local workers) runs create -> run -> export -> final (with the ensemble over trials) ->
report; every output is checked against what the trials and runs stored, and the
challenge CSV against the exact likelihood ratio. Bad campaigns and bad files stop
``hpo validate`` / ``hpo create`` with one line, exit code 2, nothing created.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from _hpo_cli import exported_mean_pick, hpo, run_pipeline, studies
from optuna.trial import TrialState
from sklearn.metrics import roc_auc_score

from hpo.cells import campaign_cells
from objectives.darkmachines import SIGNALS, DMSyntheticModel, write_events

TINY = """
[campaign]
name = "dm"
run_dir = "run"

[data]
source = "darkmachines"
scale = 0.02                          # 4000 background, 400 events per signal
seed = 1

[grid]
classifiers = ["dSVDD", "DDD"]
backbones = ["MLP"]

[search]
n_trials = 3
sampler = "random"
repetitions = 2

[search.fixed.dSVDD]
epochs = 2
rep_dims = [3, 4]                     # two members: a challenge row per latent dimension

[search.fixed.DDD]
epochs = 2
auc_band = [0.5, 1.0]                 # every distortion of 2 epochs is kept

[final]
n_runs = 2
statistics = ["full"]
ensemble = true
"""

SOURCES = ("perturb_auc", "val_loss", "auc", "eps_s_1e-2", "eps_s_1e-3", "default", "ensemble")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    return run_pipeline(tmp_path_factory.mktemp("dm"), "dm", TINY)


def test_trials_record_the_label_free_objective_and_the_truth_per_signal(finished):
    campaign, _ = finished
    assert [cc.key for cc in campaign_cells(campaign)] == ["dSVDD-MLP-chanall", "DDD-MLP-chanall"]
    for study in studies(campaign).values():
        # the label-free objective: held-out background perturbed in generic ways
        assert study.direction.name == "MAXIMIZE" and study.metric_names == ["perturb_auc"]
        done = study.get_trials(states=(TrialState.COMPLETE,))
        assert len(done) == campaign.search.n_trials
        for t in done:
            assert t.value == pytest.approx(np.mean(t.user_attrs["perturb_auc_per_rep"]))
            assert np.isfinite(t.user_attrs["val_loss"])  # still recorded
            per_signal = t.user_attrs["per_signal"]
            assert set(per_signal) == set(SIGNALS)
            auc = np.mean([v["auc"] for v in per_signal.values()])
            assert t.user_attrs["auc"] == pytest.approx(auc)
            assert "backbone" not in t.user_attrs["hp"]  # a grid dimension, not an hp


def test_export_picks_the_highest_perturb_auc_and_the_lowest_val_loss(finished):
    campaign, _ = finished
    for cc in campaign_cells(campaign):
        done = studies(campaign)[cc.key].get_trials(states=(TrialState.COMPLETE,))
        folder = campaign.run_dir / "hp" / cc.key
        best = max(done, key=lambda t: (t.user_attrs["perturb_auc"], -t.number))
        record = json.loads((folder / "perturb_auc" / "best.json").read_text())
        best = exported_mean_pick(done, record, best)  # or the defaults trial
        assert record["provenance"]["trial_number"] == best.number
        best = min(done, key=lambda t: (t.user_attrs["val_loss"], t.number))
        record = json.loads((folder / "val_loss" / "best.json").read_text())
        best = exported_mean_pick(done, record, best)
        assert record["provenance"]["trial_number"] == best.number
        assert record["provenance"]["cell"]["channel"] == "all"
        files = record["provenance"]["files"]
        assert set(files) == {"background", *SIGNALS}
        assert all(len(f["sha256"]) == 64 for f in files.values())
        # 2000 test background events cannot measure eps_S at 1e-4: nothing to export
        assert not (folder / "eps_s_1e-4").exists()


def test_final_runs_and_the_ensemble_over_trials(finished):
    campaign, _ = finished
    for cc in campaign_cells(campaign):
        numbers = sorted(
            t.number for t in studies(campaign)[cc.key].get_trials(states=(TrialState.COMPLETE,))
        )
        for source in SOURCES:
            folder = campaign.run_dir / "final" / cc.key / source / "full"
            summary = json.loads((folder / "summary.json").read_text())
            for j in range(campaign.final.n_runs):
                run = json.loads((folder / f"run{j}.json").read_text())
                assert run["info"]["statistics"] == "full" and run["info"]["backbone"] == "MLP"
                with np.load(folder / f"run{j}.npz") as z:
                    signals = [str(s) for s in z["signals"]]
                    assert len(z["test_signal"]) == len(z["y_test"])
                    assert np.array_equal(z["y_test"], z["test_signal"] >= 0)
                assert sorted(signals) == sorted(run["per_signal"])  # JSON keys are sorted
                if source == "ensemble":
                    assert run["picked"]["trial_numbers"] == numbers
                    assert len(run["hp"]) == len(numbers)
            aucs = [
                json.loads((folder / f"run{j}.json").read_text())["per_signal"]["monojet"]["auc"]
                for j in range(campaign.final.n_runs)
            ]
            assert summary["per_signal"]["monojet"]["auc"]["median"] == pytest.approx(
                np.median(aucs)
            )
        assert not (campaign.run_dir / "final" / cc.key / "eps_s_1e-4").exists()


def test_an_ensemble_run_is_trained_again_when_the_search_went_on(finished, tmp_path):
    """The ensemble source averages every complete trial: a trial completed after its runs
    makes them stale, and ``hpo final`` trains them again (once), saying so."""
    import optuna

    from hpo.config import load_campaign

    campaign, _ = finished
    shutil.copytree(campaign.run_dir, tmp_path / "run")
    path = tmp_path / "dm.toml"
    path.write_text(campaign.path.read_text())
    copy = load_campaign(path)
    study = studies(copy)["dSVDD-MLP-chanall"]
    last = study.get_trials(states=(TrialState.COMPLETE,))[-1]
    study.add_trial(
        optuna.trial.create_trial(
            params=last.params, distributions=last.distributions, value=last.value,
            user_attrs=last.user_attrs,
        )
    )  # fmt: skip
    complete = {
        key: sorted(t.number for t in st.get_trials(states=(TrialState.COMPLETE,)))
        for key, st in studies(copy).items()
    }
    numbers = complete["dSVDD-MLP-chanall"]
    final = ("final", str(path), "--source", "ensemble")
    proc = hpo(*final)
    assert proc.returncode == 0, proc.stderr
    n = copy.final.n_runs
    assert proc.stderr.count("training it again") == n, proc.stderr
    assert proc.stderr.count(f"averaged {len(numbers) - 1} trials; the study now has") == n
    for cc in campaign_cells(copy):
        folder = copy.run_dir / "final" / cc.key / "ensemble" / "full"
        for j in range(n):
            run = json.loads((folder / f"run{j}.json").read_text())
            now = complete[cc.key]  # DDD's runs already averaged all of its trials
            assert run["picked"]["trial_numbers"] == now and len(run["hp"]) == len(now)
    proc = hpo(*final)
    assert proc.returncode == 0 and "training it again" not in proc.stderr, proc.stderr


def test_an_ensemble_with_nothing_to_average_is_refused_and_the_rest_goes_on(tmp_path):
    """No DDD distortion of 2 epochs reaches the AUC band [0.99, 1] (the defaults, a grid
    with that band, are neither a trial nor a source here): the ensemble's runs are
    recorded as refused (with why), the summary and report say so, the picked sources
    train, and ``hpo final`` again counts the refused runs as done."""
    text = (
        TINY.replace('classifiers = ["dSVDD", "DDD"]', 'classifiers = ["DDD"]')
        .replace("auc_band = [0.5, 1.0]", "auc_band = [0.99, 1.0]")
        .replace("[search.fixed.dSVDD]\nepochs = 2\n", "[search.fixed.dSVDD]\n")
        .replace("ensemble = true", "ensemble = true\ndefaults = false")
        .replace("repetitions = 2", "repetitions = 2\nenqueue_defaults = false")
    )
    campaign, proc = run_pipeline(tmp_path, "band", text)
    final = campaign.run_dir / "final" / "DDD-MLP-chanall"
    summary = json.loads((final / "ensemble" / "full" / "summary.json").read_text())
    assert summary["runs"] == [] and [r["run"] for r in summary["refused_runs"]] == [0, 1]
    assert all("'auc_band': no model" in r["why"] for r in summary["refused_runs"]), summary
    assert not list((final / "ensemble" / "full").glob("run*.npz"))
    assert "DDD-MLP-chanall, full statistics: source ensemble refused in 2 final run(s)" in (
        proc.stdout
    )
    picked = json.loads((final / "perturb_auc" / "full" / "summary.json").read_text())
    assert len(picked["runs"]) == 2 and picked["refused_runs"] == []
    again = hpo("final", str(campaign.path))
    assert again.returncode == 0 and "refused" not in again.stderr, again.stderr


def _csv(path) -> tuple[str, list[dict]]:
    with open(path, newline="") as f:
        header = f.readline().strip()
        return header, list(csv.DictReader(f, fieldnames=header.split(",")))


def test_report_writes_the_challenge_csv_and_plots(finished):
    campaign, proc = finished
    report = campaign.run_dir / "report"
    header, free = _csv(report / "challenge_full.csv")
    header_labels, labelled = _csv(report / "challenge_full_signal_labels.csv")
    assert header == header_labels == "Signal,Model,Chan,AUC,1e-2,1e-3,1e-4"

    # label-free hp sources, the cuts and the signal-agnostic limit; never a label-picked row
    def cells(sources):  # the cells' rows, dSVDD's also per latent dimension (d3, d4)
        models = ("dSVDD_MLP", "DDD_MLP", "dSVDD+DDD_MLP", "dSVDD_MLP_d3", "dSVDD_MLP_d4")
        return {f"{m}_{s}" for m in models for s in sources}

    label_free = ("perturb_auc", "val_loss", "default", "ensemble")
    assert {r["Model"] for r in free} == cells(label_free) | {"MET", "HT", "NObjects", "BkgDensity"}
    # hp picked by a truth metric, and the exact likelihood ratio (it knows the signal)
    picked = ("auc", "eps_s_1e-2", "eps_s_1e-3")
    assert {r["Model"] for r in labelled} == cells(picked) | {"ExactLR_supervised"}
    rows = free + labelled
    models = {r["Model"] for r in rows}
    assert {r["Chan"] for r in rows} == {"all"}
    by = {(r["Signal"], r["Model"]): r for r in rows}
    for signal in SIGNALS:
        # the CSV holds the medians over the final runs
        folder = campaign.run_dir / "final" / "DDD-MLP-chanall" / "ensemble" / "full"
        runs = [json.loads((folder / f"run{j}.json").read_text()) for j in range(2)]
        median = np.median([r["per_signal"][signal]["auc"] for r in runs])
        assert float(by[(signal, "DDD_MLP_ensemble")]["AUC"]) == pytest.approx(median, abs=5e-4)
        assert by[(signal, "DDD_MLP_ensemble")]["1e-4"] == "nan"
        # dSVDD + DDD: the mean of the two cells' standardised scores, run by run
        k = SIGNALS.index(signal)
        aucs = []
        for j in range(2):
            runs = [
                np.load(campaign.run_dir / "final" / f"{m}-MLP-chanall" / "ensemble" / "full"
                        / f"run{j}.npz")
                for m in ("dSVDD", "DDD")
            ]  # fmt: skip
            both = (runs[0]["scores_val_loss"] + runs[1]["scores_val_loss"]) / 2.0
            rows_ = (runs[0]["test_signal"] < 0) | (runs[0]["test_signal"] == k)
            aucs.append(roc_auc_score(runs[0]["test_signal"][rows_] == k, both[rows_]))
        combined = float(by[(signal, "dSVDD+DDD_MLP_ensemble")]["AUC"])
        assert combined == pytest.approx(np.median(aucs), abs=5e-4)
        # one row per latent dimension: the member's own scores, stored with each run
        folder = campaign.run_dir / "final" / "dSVDD-MLP-chanall" / "default" / "full"
        for part in ("d3", "d4"):
            aucs = []
            for j in range(2):
                with np.load(folder / f"run{j}.npz") as z:
                    rows_ = (z["test_signal"] < 0) | (z["test_signal"] == k)
                    truth = z["test_signal"][rows_] == k
                    aucs.append(roc_auc_score(truth, z[f"part_{part}"][rows_]))
            row = by[(signal, f"dSVDD_MLP_{part}_default")]
            assert float(row["AUC"]) == pytest.approx(np.median(aucs), abs=5e-4)
        # the exact likelihood ratio beats every detector, baseline and the combination
        # (within sampling noise on the out-of-bulk signals, where it is near 1)
        limit = float(by[(signal, "ExactLR_supervised")]["AUC"])
        slack = 2e-3 if limit > 0.99 else 0.0
        for model in models - {"ExactLR_supervised"}:
            assert limit + slack > float(by[(signal, model)]["AUC"]), (signal, model)
    for name in ("roc_dSVDD-MLP-chanall", "roc_DDD-MLP-chanall", "eps_s_chanall"):
        assert (report / f"{name}.png").stat().st_size > 10_000
        assert (report / f"{name}.pdf").exists()
    prov = json.loads((report / "challenge_full.csv.json").read_text())
    assert prov["campaign"] == "dm" and prov["statistics"] == "full"
    # the signals the signal-agnostic limit misses are named as out of reach, the others not
    limit = {s: float(by[(s, "BkgDensity")]["AUC"]) for s in SIGNALS}
    bulk = {s for s, value in limit.items() if value < 0.7}
    assert bulk and set(prov["out_of_reach"]["all"]) == bulk
    (line,) = [x for x in proc.stdout.splitlines() if "the signal-agnostic limit" in x]
    assert {"stop", "heavy_gluino"}.isdisjoint(bulk)  # modelled on the challenge's heavy ones
    for s in SIGNALS:
        assert (f"{s} (AUC" in line) == (s in bulk), line
    for s, value in prov["out_of_reach"]["all"].items():
        assert f"{s} (AUC {value:.2f})" in line and value == pytest.approx(limit[s], abs=1e-3)
    assert "out of reach of any detector that must not know the signal" in line
    assert "ExactLR_supervised" in proc.stdout and "Signal" in proc.stdout


def test_the_report_names_the_final_runs_where_drocc_barely_learned(tmp_path):
    """Read from each final run's detector record: below SHELL_AUC_MIN, counted per cell
    and statistics; runs without a shell AUC (other methods, ensembles) say nothing."""
    from hpo.challenge import learning_notes
    from objectives.unsupervised.drocc import SHELL_AUC_MIN

    def write(cell, source, j, detector, statistics="full"):
        folder = tmp_path / "final" / cell / source / statistics
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"run{j}.json").write_text(json.dumps({"info": {"detector": detector}}))

    low = SHELL_AUC_MIN - 0.08
    write("DROCC-MLP-chanall", "default", 0, {"shell_auc": low})
    write("DROCC-MLP-chanall", "default", 1, {"shell_auc": SHELL_AUC_MIN - 0.02})
    write("DROCC-MLP-chanall", "perturb_auc", 0, {"shell_auc": SHELL_AUC_MIN + 0.15})
    write("DROCC-MLP-chanall", "perturb_auc", 1, {"shell_auc": low})
    write("DROCC-MLP-chanall", "ensemble", 0, {"members": [{"method": "DROCC"}]})
    write("dSVDD-MLP-chanall", "default", 0, {"method": "dSVDD"})
    write("DROCC-MLP-chanall", "default", 0, {"shell_auc": low}, statistics="half")
    notes = learning_notes(tmp_path)
    assert len(notes) == 2, notes  # per cell and statistics, the sources named
    assert notes[0].startswith(
        "DROCC-MLP-chanall, full statistics: DROCC barely learned in 3 of 4 final runs "
        f"(sources default, perturb_auc; shell AUC {low:.3f}-{SHELL_AUC_MIN + 0.15:.3f}"
    ), notes[0]
    assert notes[1].startswith(
        "DROCC-MLP-chanall, half statistics: DROCC barely learned in 1 of 1 final runs"
    ), notes[1]
    assert learning_notes(tmp_path / "nothing") == []


def test_the_report_names_the_final_runs_that_invert_a_generic_anomaly(tmp_path):
    """Two standard errors below 0.5 on the run's held-out events count, per cell and
    statistics; a one-variable cut (inverting by construction) says nothing."""
    from hpo.challenge import learning_notes

    def write(cell, source, j, classifier, aucs):
        folder = tmp_path / "final" / cell / source / "full"
        folder.mkdir(parents=True, exist_ok=True)
        info = {"classifier": classifier, "n_val": 10_000, "perturbation_aucs": aucs}
        (folder / f"run{j}.json").write_text(json.dumps({"info": info}))

    # the threshold at 10,000 events: 0.5 - 2 sqrt(1 / 60,000) = 0.4918
    write("DROCC-MLP-chanall", "default", 0, "DROCC", {"met_up": 0.6, "met_down": 0.44})
    write("DROCC-MLP-chanall", "default", 1, "DROCC", {"met_down": 0.45, "pt_down": 0.39})
    write("DROCC-MLP-chanall", "perturb_auc", 0, "DROCC", {"met_down": 0.495})  # noise
    write("dSVDD-MLP-chanall", "default", 0, "dSVDD", {"met_down": 0.63, "pt_down": 0.62})
    write("MET-baseline-chanall", "default", 0, "MET", {"met_down": 0.0})
    notes = learning_notes(tmp_path)
    assert notes == [
        "DROCC-MLP-chanall, full statistics: final runs rank generic anomalies of held-out "
        "background below random (met_down in 2, pt_down in 1 of 3 runs; sources default): "
        "a signal that differs from the background that way would rank below random too, "
        "whatever its other scores say (docs/unsupervised.md, the label-free selection "
        "metric)"
    ], notes


def test_report_says_per_signal_whether_a_detector_beats_the_baselines(finished):
    """The verdict is read from the label-free CSV's own rows: the best detector row
    (cells, their latent dimensions, the combination) against the best cut; the
    signal-agnostic limit is neither side."""
    campaign, proc = finished
    report = campaign.run_dir / "report"
    _, free = _csv(report / "challenge_full.csv")
    verdicts = json.loads((report / "challenge_full.csv.json").read_text())["beside_baselines"]
    assert set(verdicts) == {"all"} and set(verdicts["all"]) == set(SIGNALS)
    (line,) = [x for x in proc.stdout.splitlines() if "beside the baselines" in x]
    leads = 0
    for signal in SIGNALS:
        rows = [r for r in free if r["Signal"] == signal and r["Model"] != "BkgDensity"]
        cuts = [r for r in rows if r["Model"] in ("MET", "HT", "NObjects")]
        detectors = [r for r in rows if r not in cuts]
        v = verdicts["all"][signal]
        for side, candidates in (("baseline", cuts), ("detector", detectors)):
            top = max(float(r["AUC"]) for r in candidates)
            assert v[f"{side}_auc"] == pytest.approx(top, abs=5e-4)
            # the named row is one of the best (the CSV rounds to 4 digits: ties may differ)
            named = next(r for r in candidates if r["Model"] == v[side])
            assert float(named["AUC"]) == pytest.approx(top, abs=5e-4)
        assert v["detector_leads"] == (v["detector_auc"] > v["baseline_auc"])
        leads += v["detector_leads"]
        assert f"{signal} {v['detector']} {v['detector_auc']:.3f} against" in line
    expected = (
        "no detector beats the best baseline on any signal"
        if leads == 0
        else f"beats the best baseline on {leads} of {len(SIGNALS)} signals"
    )
    assert expected in line, line


# -- user errors ---------------------------------------------------------------------------
FILES = """
[campaign]
name = "f"
run_dir = "run"
[data]
source = "darkmachines"
background_file = "bkg.csv"
signal_files = {{ monojet = "monojet.csv" }}
{extra}
[grid]
classifiers = ["dSVDD"]
{grid}
[search]
n_trials = 1
repetitions = 1
[search.fixed.dSVDD]
epochs = 1
rep_dims = [3]
{fixed}
[final]
n_runs = 1
{final}
"""


@pytest.fixture
def files(tmp_path):
    """A user's background file (1000 events) and one signal file (60 events)."""
    model, rng = DMSyntheticModel(), np.random.default_rng(3)
    write_events(tmp_path / "bkg.csv", model.sample_background(1000, rng))
    write_events(tmp_path / "monojet.csv", model.sample("monojet", 60, rng))
    return tmp_path


def _break_line(path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[lineno - 1] = text
    path.write_text("".join(lines))


def _campaign(folder, **parts) -> str:
    path = folder / "c.toml"
    path.write_text(FILES.format(**{"extra": "", "grid": "", "fixed": "", "final": "", **parts}))
    return str(path)


CASES = [
    ("malformed line", {}, "bkg.csv", "bkg.csv, line 5: object 2"),
    ("missing signal file", {}, "monojet.csv", "data file not found (data.background_file"),
    ("bias", {"fixed": "bias = true"}, None, "dSVDD hyperparameter 'bias': must be false"),
    ("backbone as hp", {"fixed": 'backbone = "ParT"'}, None, "grid dimension: grid.backbones"),
    ("unknown backbone", {"grid": 'backbones = ["GNN"]'}, None, "grid.backbones"),
    ("unknown channel", {"grid": 'channels = ["4"]'}, None, "grid.channels"),
    ("LHCO field", {"extra": "region = [3.3, 3.7]"}, None, "data.region: does not apply"),
]


@pytest.mark.parametrize(("name", "parts", "damaged", "needle"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "create"])
def test_a_bad_campaign_or_file_stops_before_anything_exists(
    files, command, name, parts, damaged, needle
):
    if name == "malformed line":
        _break_line(files / "bkg.csv", 5, "5;njets;1;9000;0.2;j,5e4,4e4,0.1,0.2;j,1,2;\n")
    if name == "missing signal file":
        (files / "monojet.csv").unlink()
    proc = hpo(command, _campaign(files, **parts), timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("hpo: error: ") and needle in line, line
    if damaged:
        assert line.startswith(f"hpo: error: {files / damaged}"), line
    assert not (files / "run").exists()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('source = "darkmachines"\n[grid]\nclassifiers = ["HGB"]', "method 'HGB' needs"),
        ('source = "synthetic"\n[grid]\nclassifiers = ["DDD"]', "method 'DDD' needs"),
        ('source = "darkmachines"\nbackground_file = "b.csv"', "data.signal_files: is required"),
        ('source = "synthetic"\n[final]\nensemble = true', "final.ensemble: no method"),
        ('source = "synthetic"\nmax_objects = 10', "data.max_objects: does not apply"),
        (
            'source = "darkmachines"\napply_cuts = false\n[grid]\nchannels = ["1", "2a"]',
            "grid.channels: must hold one channel with data.apply_cuts = false",
        ),
    ],
)
def test_sources_and_methods_must_agree(tmp_path, text, needle):
    path = tmp_path / "c.toml"
    path.write_text(f'[campaign]\nname = "s"\n[data]\n{text}\n')
    proc = hpo("validate", str(path))
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr


def test_skipped_lines_are_counted_and_shown(files):
    _break_line(files / "bkg.csv", 5, "not an event\n")
    _break_line(files / "monojet.csv", 2, "2;monojet;1;-5;0;\n")  # negative MET
    path = _campaign(files, extra="skip_bad_lines = true")
    proc = hpo("validate", path)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if line.startswith("note: ")]
    assert f"note: {files / 'bkg.csv'}: 1 malformed line(s) skipped" in notes[-2]
    assert f"note: {files / 'monojet.csv'}: 1 malformed line(s) skipped" in notes[-1]
    # 500 test background events: eps_S at 1e-4 is unmeasurable, and said so
    assert any("eps_S at eps_B = 0.0001 needs >= 10000" in n for n in notes)


def test_a_file_broken_after_create_stops_the_workers_with_its_line(files):
    path = _campaign(files)
    assert hpo("create", path).returncode == 0
    _break_line(files / "monojet.csv", 3, "3;monojet;1;5000;0;g,1,2,3,x;\n")
    proc = hpo("run", path, "-w", "2", timeout=300)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("hpo: error:")]
    assert len(errors) == 1, proc.stderr
    assert f"{files / 'monojet.csv'}, line 3: object 1 phi: not a number: 'x'" in errors[0]
