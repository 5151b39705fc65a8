"""The bump hunt in a campaign (issue 12): windows as a grid dimension, the [bumphunt] rules,
which windows IAD cannot run in on the real SR-only extra background, and the SLURM chain.

Every user error is one line naming the field, checked by ``hpo validate`` before
anything exists.
"""

from __future__ import annotations

import pytest
from _hpo_cli import hpo

from hpo.config import ConfigError, load_campaign
from objectives.regions import Region
from objectives.synthetic import SyntheticSpec, write_synthetic

BASE = """
[campaign]
name = "bh"
run_dir = "run"

[data]
{data}

[grid]
classifiers = ["HGB"]
modes = {modes}
signal = {signal}
{grid}

[search]
n_trials = 2
repetitions = 1

{bumphunt}
"""


def _write(
    tmp_path,
    *,
    data='source = "synthetic"\nscale = 0.02',
    modes='["IAD"]',
    signal="[0, 500]",
    grid="windows = [4, 5, 6]",
    bumphunt="[bumphunt]",
):
    path = tmp_path / "c.toml"
    path.write_text(
        BASE.format(data=data, modes=modes, signal=signal, grid=grid, bumphunt=bumphunt)
    )
    return path


def test_windows_are_a_grid_dimension_with_their_regions(tmp_path):
    from hpo.cells import campaign_cells
    from hpo.data import synthetic_spec

    c = load_campaign(_write(tmp_path))
    assert c.regions == (Region.window(4), Region.window(5), Region.window(6))
    keys = [cc.key for cc in campaign_cells(c)]
    assert keys == [
        "HGB-IAD-norot-N0-baseline-SR3.2-3.6",
        "HGB-IAD-norot-N0-baseline",  # window 5 is today's signal region: no suffix
        "HGB-IAD-norot-N0-baseline-SR3.4-3.8",
        "HGB-IAD-norot-N500-baseline-SR3.2-3.6",
        "HGB-IAD-norot-N500-baseline",
        "HGB-IAD-norot-N500-baseline-SR3.4-3.8",
    ]
    # the synthetic extra background covers the union of the windows
    assert c.data.extra_range == (3.2, 3.8)
    assert synthetic_spec(c).extra_range == (3.2, 3.8)
    b = c.bumphunt
    assert (b.folds, b.eps_b, b.runs, b.hp) == (5, (1e-2, 1e-3, 1e-4), 10, ("default",))
    assert b.delta_sys == {"IAD": "closure"}
    # without windows: the one region data.region, the default window 5
    plain = load_campaign(_write(tmp_path, grid=""))
    assert plain.regions == (Region.window(5),) and plain.data.extra_range == (3.3, 3.7)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"data": 'source = "synthetic"\nregion = [3.4, 3.8]'},
            "grid.windows: the windows set every cell's signal region; drop data.region",
        ),
        ({"grid": "windows = [0, 5]"}, "grid.windows: must be a non-empty list of distinct"),
        ({"grid": "windows = [5, 5]"}, "grid.windows: must be a non-empty list of distinct"),
        (
            {"signal": "[500]"},
            "bumphunt.delta_sys: 'closure' measures delta_sys on background-only data: "
            "add 0 to grid.signal",
        ),
        (
            {"modes": '["CWoLa"]', "bumphunt": '[bumphunt]\ndelta_sys = "mc"'},
            "bumphunt.delta_sys: 'mc' needs a simulated template; CWoLa trains against",
        ),
        (
            {"bumphunt": '[bumphunt]\ndelta_sys = "sidebands"'},
            "bumphunt.delta_sys: 'sidebands' trains CATHODE on sideband data",
        ),
        (
            {"bumphunt": "[bumphunt]\ndelta_sys = [0.01, 0.02]"},
            "bumphunt.delta_sys: a list of delta_sys values must hold one number > -1 per eps_b",
        ),
        (
            {"bumphunt": '[bumphunt]\ndelta_sys = { CATHODE = "mc" }'},
            "bumphunt.delta_sys.CATHODE: not a mode of grid.modes (IAD)",
        ),
        (
            {"bumphunt": '[bumphunt]\nhp = ["argos", "sic"]'},
            "bumphunt.hp: 'sic' is not a hyperparameter source; valid: default, argos, bce",
        ),
        ({"bumphunt": "[bumphunt]\neps_b = [0.1, 1.5]"}, "bumphunt.eps_b: must be a non-empty"),
        ({"bumphunt": "[bumphunt]\nfolds = 1"}, "bumphunt.folds: must be an integer in [2, 20]"),
        ({"bumphunt": "[bumphunt]\nwindow = 5"}, "bumphunt.window: unknown field; valid fields"),
        (
            {"bumphunt": '[bumphunt]\nnegative_delta_sys = "keep"'},
            "bumphunt.negative_delta_sys: must be one of 'zero', 'apply', got 'keep'",
        ),
        (
            {"bumphunt": '[bumphunt]\n[report]\nexperiment = "CDF"'},
            "report.experiment: must be one of 'none', 'ATLAS', 'CMS', 'LHCb', 'ALICE', got 'CDF'",
        ),
        (
            {"bumphunt": '[bumphunt]\n[report]\nlabel = "Preliminary"'},
            "report.label: is the text after the experiment's name; set report.experiment",
        ),
        (
            {
                "data": 'source = "lhco"\ndata_file = "d.h5"\nextrabkg_file = "e.h5"',
                "bumphunt": '[bumphunt]\ndelta_sys = "mc"',
            },
            "bumphunt.alt_extrabkg_file: is required for delta_sys = 'mc' on LHCO files",
        ),
        (
            {
                "modes": '["CATHODE"]',
                "data": 'source = "synthetic"\nbackground_model = "flow"',
                "bumphunt": '[bumphunt]\ndelta_sys = "mc"',
            },
            "bumphunt.delta_sys: 'mc' for CATHODE samples the alternative simulation's exact",
        ),
    ],
)
def test_bad_bumphunt_fields_are_one_line_errors(tmp_path, fields, message):
    path = _write(tmp_path, **fields)
    with pytest.raises(ConfigError, match=None) as err:
        load_campaign(path)
    assert f"{path}: {message}" in str(err.value), str(err.value)
    proc = hpo("validate", str(path))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"hpo: error: {path}: {message}"), proc.stderr


def test_validate_says_a_default_hp_bump_hunt_runs_no_search(tmp_path):
    """Not "2 trials each" as if the bump hunt searched (issue 26 §7)."""
    out = hpo("validate", str(_write(tmp_path))).stdout
    assert "the bump hunt (hpo bumphunt) trains default hyperparameters and runs no search" in out
    assert "hpo run / pipeline / launch search 2 trials each" in out
    assert "hyperparameters: default" in out
    path = _write(tmp_path, bumphunt='[bumphunt]\nhp = ["default", "argos"]')
    out = hpo("validate", str(path)).stdout
    assert "6 cells, 2 trials each" in out and "no search" not in out, out
    assert "hyperparameters: default, argos" in out


@pytest.mark.parametrize(
    ("bumphunt", "warned"),
    [
        ("[bumphunt]\nruns = 1", True),
        ("[bumphunt]\nruns = 2", False),
        ("[bumphunt]\nruns = 1\ndelta_sys = [0, 0.01, 0.05]", False),  # given, not measured
    ],
)
def test_validate_warns_that_one_run_leaves_the_training_spread_out_of_delta_sys(
    tmp_path, bumphunt, warned
):
    proc = hpo("validate", str(_write(tmp_path, bumphunt=bumphunt)))
    assert proc.returncode == 0, proc.stderr
    assert ("bumphunt.runs = 1: the bootstrap error" in proc.stderr) == warned, proc.stderr


def test_report_section_and_negative_delta_sys(tmp_path):
    c = load_campaign(_write(tmp_path))
    assert (c.report.experiment, c.bumphunt.negative_delta_sys) == ("none", "zero")
    text = '[bumphunt]\nnegative_delta_sys = "apply"\n[report]\nexperiment = "CMS"\n'
    c = load_campaign(_write(tmp_path, bumphunt=text + 'label = "Private work"'))
    assert c.bumphunt.negative_delta_sys == "apply"
    assert (c.report.experiment, c.report.label) == ("CMS", "Private work")


def test_per_mode_delta_sys_table(tmp_path):
    path = _write(
        tmp_path,
        modes='["IAD", "CWoLa", "CATHODE"]',
        data='source = "synthetic"\nbackground_model = "truth"',
        bumphunt='[bumphunt]\ndelta_sys = { IAD = "mc", CATHODE = "sidebands" }',
    )
    b = load_campaign(path).bumphunt
    assert b.delta_sys == {"IAD": "mc", "CWoLa": "closure", "CATHODE": "sidebands"}
    given = load_campaign(_write(tmp_path, bumphunt="[bumphunt]\ndelta_sys = [0, 0.01, 0.05]"))
    assert given.bumphunt.delta_sys == {"IAD": (0.0, 0.01, 0.05)}


@pytest.fixture(scope="module")
def sr_only_files(tmp_path_factory):
    """LHCO-schema files whose extra background covers 3.3-3.7 TeV only, as the real one."""
    folder = tmp_path_factory.mktemp("lhco")
    return write_synthetic(SyntheticSpec(scale=0.01, seed=5), folder)


def test_validate_names_the_windows_iad_cannot_run_in(tmp_path, sr_only_files):
    data_file, extra = sr_only_files
    lhco = f'source = "lhco"\ndata_file = "{data_file}"\nextrabkg_file = "{extra}"'
    path = _write(tmp_path, data=lhco, modes='["IAD", "CWoLa"]', grid="windows = [3, 5, 6]")
    proc = hpo("validate", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"hpo: error: {extra}: the extra background covers mjj 3.300-3.700"), (
        line
    )
    assert "IAD cannot run in windows 3, 6 (signal regions 3.1-3.5, 3.4-3.8 TeV)" in line, line
    assert "CWoLa and CATHODE run in every window" in line
    assert not (tmp_path / "run").exists()
    # CWoLa alone runs in every window (no truth oracle outside 3.3-3.7 TeV)
    cwola = _write(tmp_path, data=lhco, modes='["CWoLa"]', grid="windows = [3, 5, 6]")
    proc = hpo("validate", str(cwola))
    assert proc.returncode == 0, proc.stderr
    assert "6 cells" in proc.stdout
    assert "no test set in windows 3, 6" in proc.stderr


def test_cwola_trains_in_a_window_without_extra_background(sr_only_files):
    """No test set there: the held-out scores exist, the truth oracle is NaN."""
    import math

    from objectives.bumphunt import score_fold
    from objectives.cells import Cell, DataSpec, prepare
    from objectives.errors import DataError

    spec = DataSpec(*sr_only_files, region=Region.window(3))
    cell = Cell("HGB", "CWoLa", 50, False, spec)
    fold = score_fold({"n_ensemble": 1, "max_iter": 10}, cell, 0, 2, 0)
    assert len(fold.data) > 0 and len(fold.template) > 0 and math.isnan(fold.info["max_sic"])
    assert prepare(cell).X_test is None
    with pytest.raises(DataError, match="the extra background covers mjj 3.300-3.700 TeV"):
        prepare(Cell("HGB", "IAD", 50, False, spec))


def test_bumphunt_without_a_section_is_a_usage_error(tmp_path):
    path = _write(tmp_path, bumphunt="")
    proc = hpo("bumphunt", str(path))
    assert proc.returncode == 2
    assert (
        proc.stderr == f"hpo: error: {path}: no [bumphunt] section; the campaign has no bump hunt\n"
    )


def test_launch_dry_run_adds_the_bumphunt_array_and_its_combine_job(tmp_path):
    path = _write(tmp_path, bumphunt="[bumphunt]\nfolds = 2")
    proc = hpo("launch", str(path), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    folder = tmp_path / "run" / "slurm"
    # 3 windows x 2 folds = 6 array tasks, each `hpo bumphunt --slurm-task`
    bump = out.split(f"# ---- {folder / 'bumphunt.sbatch'}")[1].split("# ----")[0]
    assert "#SBATCH --array=0-5%6" in bump  # [slurm] array_parallel (10) capped at 6
    assert "#SBATCH --output=" in bump and "%x-%A_%a.out" in bump
    assert "-m hpo bumphunt --slurm-task" in bump
    assert (
        "$ sbatch --parsable '--dependency=afterok:<pick-best>' --kill-on-invalid-dep=yes "
        f"{folder / 'bumphunt.sbatch'}"
    ) in out
    assert (
        "$ sbatch --parsable '--dependency=afterany:<bumphunt>' --kill-on-invalid-dep=yes "
        f"{folder / 'bumphunt-combine.sbatch'}"
    ) in out
    assert "-m hpo bumphunt --combine --resubmit" in out
    assert not (folder / "jobs.json").exists()


def test_a_samples_file_is_one_regions_template(tmp_path, sr_only_files):
    """A CATHODE samples file drawn in 3.3-3.7 TeV cannot serve window 4."""
    import numpy as np

    data_file, extra = sr_only_files
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.uniform(3.31, 3.69, 8000), rng.random((8000, 4))])
    np.save(tmp_path / "samples.npy", rows)
    lhco = (
        f'source = "lhco"\ndata_file = "{data_file}"\nextrabkg_file = "{extra}"\n'
        'background_model = "file"\nsamples_file = "samples.npy"'
    )
    path = _write(tmp_path, data=lhco, modes='["CATHODE"]', grid="windows = [4, 5]")
    proc = hpo("validate", str(path))
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"hpo: error: {tmp_path / 'samples.npy'}: "), line
    assert "samples have mjj outside the signal region 3.2-3.6 TeV" in line, line
    assert "use data.background_model = 'flow' (a flow per window) or 'truth'" in line
    # the same file for window 5 alone is fine
    ok = _write(tmp_path, data=lhco, modes='["CATHODE"]', grid="windows = [5]")
    assert hpo("validate", str(ok)).returncode == 0
