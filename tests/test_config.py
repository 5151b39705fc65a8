"""Campaign validation: every bad field is rejected before anything runs, naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hpo.config import ConfigError, load_campaign

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """
[campaign]
name = "t"
[grid]
classifiers = ["HGB"]
modes = ["IAD"]
signal = [0, 1000]
[search]
n_trials = 3
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_quickstart_is_valid():
    c = load_campaign(ROOT / "examples" / "quickstart.toml")
    assert c.name == "quickstart"
    assert len(c.grid_points()) == 6
    assert c.run_dir.is_absolute()


def test_examples_are_valid():
    for path in sorted((ROOT / "examples").glob("*.toml")):
        load_campaign(path)


def test_paper_example_runs_the_papers_protocol():
    campaign = load_campaign(ROOT / "examples" / "paper_lhco.toml")
    search, final = campaign.search, campaign.final
    assert (search.sampler, search.pruner, search.repetitions) == ("random", "none", 10)
    assert search.argos_min_template == 0
    assert not search.enqueue_defaults  # the paper's search, no defaults trial
    assert (final.pick, final.holdout) == ("per_repetition", "search")


def test_defaults_follow_the_paper(tmp_path):
    c = load_campaign(write(tmp_path, MINIMAL))
    assert c.search.repetitions == 10
    assert c.search.metrics == ("argos", "bce", "max_sic")
    assert c.search.objective == "argos"
    assert c.search.argos_min_template == 0  # the paper's ARGOS: every cut counts
    # issue 28: the defaults searched too, the mean pick, values on reserved events
    assert c.search.enqueue_defaults
    assert (c.final.pick, c.final.holdout, c.final.reserve) == ("mean", "reserved", 0.25)
    assert c.final.defaults_margin == 1.0  # the defaults stay unless beaten beyond 1 s.e.
    assert c.storage == "journal:optuna.journal"
    assert c.run_dir == (tmp_path / "runs" / "t").resolve()
    assert [p.signal for p in c.grid_points()] == [0, 1000]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (("n_trials = 3", "n_trials = 0"), "search.n_trials"),
        (("n_trials = 3", "n_trials = 3\nargos_min_template = -5"), "search.argos_min_template"),
        (("n_trials = 3", "n_trials = 3\nn_trial = 4"), "search.n_trial"),
        (("n_trials = 3", 'n_trials = 3\nenqueue_defaults = "yes"'), "search.enqueue_defaults"),
        (("n_trials = 3", 'n_trials = 3\n[final]\npick = "median"'), "final.pick"),
        (("n_trials = 3", 'n_trials = 3\n[final]\nholdout = "test"'), "final.holdout"),
        (("n_trials = 3", "n_trials = 3\n[final]\nreserve = 0.5"), "final.reserve"),
        (("n_trials = 3", "n_trials = 3\n[final]\ndefaults_margin = -1"), "final.defaults_margin"),
        (("n_trials = 3", "n_trials = 3\n[final]\ndefaults_margin = inf"), "final.defaults_margin"),
        (("n_trials = 3", 'n_trials = 3\n[final]\ndefaults_margin = "1"'), "final.defaults_margin"),
        (("n_trials = 3", 'n_trials = 3\nsampler = "grid"'), "search.sampler"),
        (
            ("n_trials = 3", 'n_trials = 3\nobjective = "max_sic"\nmetrics = ["argos"]'),
            "search.objective",
        ),
        (('modes = ["IAD"]', 'modes = ["IAD", "ANODEX"]'), "grid.modes"),
        (("signal = [0, 1000]", "signal = [-1]"), "grid.signal"),
        (('name = "t"', 'name = "has space"'), "campaign.name"),
        (('name = "t"', 'name = "t"\nstorage = "sqlite:///x.db"'), "campaign.storage"),
        (('name = "t"', ""), "campaign.name"),
        (("[grid]", '[data]\nsource = "lhco"\n[grid]'), "data.data_file"),
        (('modes = ["IAD"]', 'modes = ["CATHODE"]'), "data.samples_file"),
        (("[grid]", '[slurm]\nmem = "lots"\n[grid]'), "slurm.mem"),
        (("n_trials = 3", "n_trials = 3\n[search.fixed.HGB]\nmax_iter = 0"), "search.fixed.HGB"),
        (("n_trials = 3", "n_trials = 3\n[search.fixed.XGB]\nmax_iter = 3"), "search.fixed.XGB"),
        (
            ("n_trials = 3", 'n_trials = 3\n[search.space.NN]\nlr = {type = "float"}'),
            "search.space.NN",
        ),
    ],
)
def test_bad_field_is_named(tmp_path, edit, field):
    old, new = edit
    assert old in MINIMAL
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    message = str(info.value)
    assert f"{field}:" in message or f"{field} " in message, message
    assert str(path) in message


@pytest.mark.parametrize("value", ["-1", "inf", "nan", '"1"', "true"])
def test_defaults_margin_is_a_finite_number_of_at_least_zero(tmp_path, value):
    text = MINIMAL.replace("n_trials = 3", f"n_trials = 3\n[final]\ndefaults_margin = {value}")
    with pytest.raises(ConfigError, match=r"final\.defaults_margin: must be a number >= 0"):
        load_campaign(write(tmp_path, text))
    ok = MINIMAL.replace("n_trials = 3", "n_trials = 3\n[final]\ndefaults_margin = 0")
    assert load_campaign(write(tmp_path, ok)).final.defaults_margin == 0.0


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match=r"\[serach\]: unknown section"):
        load_campaign(write(tmp_path, MINIMAL + "\n[serach]\nx = 1\n"))


def test_not_toml_and_missing(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_campaign(write(tmp_path, "[campaign\n"))
    with pytest.raises(ConfigError, match="campaign file not found"):
        load_campaign(tmp_path / "nope.toml")


def test_cli_reports_one_line_and_exit_2(tmp_path):
    path = write(tmp_path, MINIMAL.replace("n_trials = 3", "n_trials = 0"))
    proc = subprocess.run(
        [sys.executable, "-m", "hpo", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("hpo: error:")
    assert "search.n_trials: must be an integer in [1, 1000000], got 0" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_fixed_hyperparameters_are_not_searched(tmp_path):
    from hpo.spaces import space_for

    assert "max_iter" not in space_for("HGB", None, {"max_iter": 30})
    assert "max_iter" in space_for("HGB")
    text = MINIMAL.replace(
        "n_trials = 3",
        "n_trials = 3\n[search.fixed.HGB]\nmax_iter = 30\n"
        '[search.space.HGB]\nmax_iter = {type = "int", low = 2, high = 9}',
    )
    with pytest.raises(ConfigError, match="search.fixed.HGB: 'max_iter' is both fixed"):
        load_campaign(write(tmp_path, text))


def test_argos_floor_reaches_the_cells(tmp_path):
    from hpo.cells import campaign_cells

    c = load_campaign(
        write(tmp_path, MINIMAL.replace("n_trials = 3", "n_trials = 3\nargos_min_template = 25"))
    )
    assert c.search.argos_min_template == 25
    assert {cc.cell().argos_min_template for cc in campaign_cells(c)} == {25}
