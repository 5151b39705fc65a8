"""A bad data file stops ``hpo validate`` / ``hpo create`` before anything exists (issue 11 §1).

Small files in the real LHCO schema (written by the synthetic generator, then damaged
with pandas) stand for a user's files; every case must give one line naming the file,
exit code 2, and leave no study, journal or data behind. A file replaced after
``create`` stops the workers with that line, the trial re-queued, not failed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from _hpo_cli import hpo
from optuna.trial import TrialState

from objectives.synthetic import SyntheticSpec, write_synthetic

CAMPAIGN = """
[campaign]
name = "lhco"
run_dir = "run"
[data]
source = "lhco"
data_file = "data.h5"
extrabkg_file = "extra.h5"
{extra}
[grid]
classifiers = ["HGB"]
modes = {modes}
signal = [0, 200]
[search]
n_trials = 3
repetitions = 1
sampler = "random"
[search.fixed.HGB]
n_ensemble = 1
max_iter = 10
"""


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("good")
    data, extra = write_synthetic(SyntheticSpec(scale=0.01, seed=5), folder)
    return pd.read_hdf(data), pd.read_hdf(extra)


def _first(frame: pd.DataFrame, n: int = 3) -> pd.Index:
    return frame.index[:n]


def _damage(kind: str, data: pd.DataFrame, extra: pd.DataFrame, folder: Path) -> str:
    """Write the (damaged) files into ``folder``; returns the campaign's extra [data] lines."""
    data, extra = data.copy(), extra.copy()
    lines = ""
    if kind == "nan":
        data.loc[_first(data), "mj1"] = np.nan
    elif kind == "inf":
        extra.loc[_first(extra), "pxj2"] = np.inf
    elif kind == "missing column":
        data = data.drop(columns=["tau2j1"])
    elif kind == "labels":
        data.loc[_first(data), "label"] = 2
    elif kind == "tau1 zero":
        data.loc[_first(data), "tau1j2"] = 0.0
    elif kind == "negative masses":
        data["mj1"] = -data["mj1"].abs()
    elif kind == "no SR events":
        data = data[(data["label"] == 0) & (data.index % 2 == 0)].iloc[:50]
        data[["pxj1", "pyj1", "pzj1", "pxj2", "pyj2", "pzj2"]] *= 0.1  # mjj far below 3.3
    elif kind == "too little signal":
        keep = data["label"] == 0
        keep[data.index[data["label"] == 1][:100]] = True
        data = data[keep]
    data.to_hdf(folder / "data.h5", key="df", mode="w")
    extra.to_hdf(folder / "extra.h5", key="df", mode="w")
    if kind == "empty file":
        (folder / "data.h5").write_bytes(b"")
    elif kind == "truncated":
        raw = (folder / "data.h5").read_bytes()
        (folder / "data.h5").write_bytes(raw[: len(raw) // 3])
    elif kind == "not hdf5":
        (folder / "extra.h5").write_text("event,mjj\n1,3.5\n")
    elif kind in ("samples shape", "samples rows"):
        rows = 10 if kind == "samples rows" else 5000
        cols = 5 if kind == "samples rows" else 3
        np.save(folder / "samples.npy", np.random.default_rng(0).random((rows, cols)))
        lines = 'background_model = "file"\nsamples_file = "samples.npy"'
    return lines


CASES = {
    "nan": ("data.h5", "NaN or infinite"),
    "inf": ("extra.h5", "NaN or infinite"),
    "missing column": ("data.h5", "needs column(s) ['tau2j1']"),
    "labels": ("data.h5", "column 'label' must hold 0"),
    "tau1 zero": ("data.h5", "tau1"),
    "negative masses": ("data.h5", "column 'mj1' is negative"),
    "no SR events": ("data.h5", "no events in the signal region"),
    "too little signal": ("data.h5", "cannot inject 200 signal events, the file holds 100"),
    "empty file": ("data.h5", "the file is empty"),
    "truncated": ("data.h5", "not a readable pandas HDF5 file"),
    "not hdf5": ("extra.h5", "not a readable pandas HDF5 file"),
    "samples shape": ("samples.npy", "CATHODE samples must be rows [mjj, 4 features]"),
    "samples rows": ("samples.npy", "10 samples, fewer than the"),
}


@pytest.mark.parametrize("kind", list(CASES))
@pytest.mark.parametrize("command", ["validate", "create"])
def test_bad_data_file_stops_before_anything_is_created(tmp_path, good, kind, command):
    lines = _damage(kind, *good, tmp_path)
    modes = '["IAD", "CATHODE"]' if "samples" in kind else '["IAD", "CWoLa"]'
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN.format(extra=lines, modes=modes))
    proc = hpo(command, str(path), timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    name, needle = CASES[kind]
    assert line.startswith(f"hpo: error: {tmp_path / name}"), line
    assert needle in line, line
    assert not (tmp_path / "run").exists()  # no study, no journal, no template


def test_synthetic_signal_beyond_the_generator_is_rejected(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[campaign]\nname = "s"\n[data]\nscale = 0.001\n[grid]\nsignal = [500]\n')
    proc = hpo("validate", str(path))
    assert proc.returncode == 2
    assert "asks for 500 signal events, but the synthetic set at data.scale = 0.001 holds 100" in (
        proc.stderr
    )
    assert not (tmp_path / "runs").exists()


def test_a_file_replaced_after_create_stops_the_workers_with_its_reason(tmp_path, good):
    _damage("none", *good, tmp_path)
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN.format(extra="", modes='["IAD"]'))
    assert hpo("create", str(path)).returncode == 0
    _damage("negative masses", *good, tmp_path)  # the user overwrites the file
    proc = hpo("run", str(path), "-w", "2", timeout=300)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("hpo: error:")]
    assert len(errors) == 1 and "column 'mj1' is negative" in errors[0], proc.stderr
    # no trial failed or ran: the workers stopped before their first trial
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "run" / "optuna.journal")))
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        assert not study.get_trials(states=(TrialState.FAIL, TrialState.COMPLETE))
