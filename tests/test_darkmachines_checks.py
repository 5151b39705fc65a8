"""DarkMachines inputs that would silently mislabel results, caught before the first trial.

A file in GeV, a file that ``apply_cuts = false`` takes for a channel it plainly is not,
a channel without background (skipped; the other channels run), a channel that leaves a
detector a handful of events to train on, and a byte order mark. Errors are one line,
exit code 2, nothing created; what is not wrong but worth knowing is a note.
"""

from __future__ import annotations

import codecs

import numpy as np
import pytest
from _hpo_cli import hpo, studies

from objectives.darkmachines import DMSyntheticModel, EventRecord, read_events, write_events
from objectives.darkmachines.checks import MIN_TRAIN_EVENTS
from objectives.errors import DataError

CAMPAIGN = """
[campaign]
name = "chk"
run_dir = "run"
[data]
source = "darkmachines"
background_file = "bkg.csv"
signal_files = {{ monojet = "monojet.csv" }}
{data}
[grid]
classifiers = {classifiers}
channels = {channels}
[search]
n_trials = 1
sampler = "random"
repetitions = 1
[final]
n_runs = 1
statistics = ["full"]
"""


def _write(folder, *, bkg=None, n_bkg=1000, data="", classifiers='["MET"]', channels='["all"]'):
    model, rng = DMSyntheticModel(), np.random.default_rng(8)
    write_events(
        folder / "bkg.csv", bkg if bkg is not None else model.sample_background(n_bkg, rng)
    )
    write_events(folder / "monojet.csv", model.sample("monojet", 100, rng))
    path = folder / "c.toml"
    path.write_text(CAMPAIGN.format(data=data, classifiers=classifiers, channels=channels))
    return str(path)


def _one_error(proc, folder) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("hpo: error: "), line
    assert not (folder / "run").exists()
    return line


def _notes(proc) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.startswith("note: ")]


def _in_gev(record: EventRecord) -> EventRecord:
    objects = tuple((t, e / 1e3, pt / 1e3, eta, phi) for t, e, pt, eta, phi in record.objects)
    return record._replace(met=record.met / 1e3, objects=objects)


@pytest.mark.parametrize("command", ["validate", "create"])
def test_a_file_in_gev_is_refused_naming_the_unit(tmp_path, command):
    rng = np.random.default_rng(1)
    bkg = [_in_gev(r) for r in DMSyntheticModel().sample_background(1000, rng)]
    line = _one_error(hpo(command, _write(tmp_path, bkg=bkg)), tmp_path)
    assert line.startswith(f"hpo: error: {tmp_path / 'bkg.csv'}: median object pT 0.0"), line
    assert "look like GeV" in line and "in MeV; multiply them by 1000" in line


def test_apply_cuts_false_on_a_file_that_fails_the_channels_cuts_is_said(tmp_path):
    # the synthetic background is inclusive: few of its events pass channel 1's cuts
    path = _write(tmp_path, data="apply_cuts = false", channels='["1"]')
    notes = _notes(hpo("validate", path))
    (note,) = [n for n in notes if "data.apply_cuts = false takes" in n]
    assert note.startswith(
        f"note: {tmp_path / 'bkg.csv'}: data.apply_cuts = false takes these events as "
        "channel 1's, but only "
    )
    assert "% of them pass its cuts (MET >= 200 GeV, HT >= 600 GeV, MET/HT >= 0.2, " in note
    assert "results will be labelled channel 1" in note
    # the file's own channel, or the cuts applied: nothing to say
    for data, channels in (("apply_cuts = false", '["all"]'), ("", '["1", "all"]')):
        notes = _notes(hpo("validate", _write(tmp_path, data=data, channels=channels)))
        assert not any("data.apply_cuts = false takes" in n for n in notes), notes


def test_a_channel_without_background_is_skipped_and_the_others_run(tmp_path):
    # no synthetic background process writes three leptons often: channel 2a keeps none
    model, rng = DMSyntheticModel(), np.random.default_rng(2)
    bkg = [
        r for r in model.sample_background(1500, rng) if sum(o[0][0] in "em" for o in r.objects) < 3
    ]
    path = _write(
        tmp_path, bkg=bkg, classifiers='["MET", "IsolationForest"]', channels='["2a", "all"]'
    )
    skip = f"note: {tmp_path / 'bkg.csv'}: no background event passes channel 2a's cuts"
    assert any(n.startswith(skip) for n in _notes(hpo("validate", path)))
    proc = hpo("pipeline", path, "--workers", "1", timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "channel 2a skipped: no background event" in proc.stdout
    from hpo.config import load_campaign

    campaign = load_campaign(path)
    for key, study in studies(campaign).items():
        done = len(study.trials)
        assert done == (1 if key == "IsolationForest-baseline-chanall" else 0), key
        assert (campaign.run_dir / "final" / key).is_dir() == key.endswith("chanall"), key


def test_no_channel_with_background_is_an_error(tmp_path):
    model, rng = DMSyntheticModel(), np.random.default_rng(2)
    bkg = [
        r for r in model.sample_background(600, rng) if sum(o[0][0] in "em" for o in r.objects) < 3
    ]
    line = _one_error(hpo("validate", _write(tmp_path, bkg=bkg, channels='["2a"]')), tmp_path)
    assert "no background event passes the cuts of any channel of grid.channels (2a)" in line


def _hard(i: int) -> EventRecord:
    """An event passing channel 3 (HT >= 600 GeV, MET >= 100 GeV): four 200 GeV jets."""
    jets = tuple(("j", 2.1e5, 2e5, 0.1 * k, 0.5 * k) for k in range(4))
    return EventRecord(f"h{i}", "njets", 1.0, 1.5e5, 0.2, jets)


@pytest.mark.parametrize("command", ["validate", "create"])
def test_a_channel_leaving_a_handful_of_events_is_refused_naming_the_minimum(tmp_path, command):
    model, rng = DMSyntheticModel(), np.random.default_rng(3)
    soft = [r for r in model.sample_background(1000, rng) if r.met < 1e5]  # never channel 3
    bkg = soft + [_hard(i) for i in range(60)]
    line = _one_error(hpo(command, _write(tmp_path, bkg=bkg, channels='["3"]')), tmp_path)
    assert f"{tmp_path / 'bkg.csv'}: channel 3 keeps 60 background events" in line
    assert "a detector trains on 15 (half of the 30 left" in line
    assert f"the minimum is {MIN_TRAIN_EVENTS}" in line


@pytest.mark.parametrize(
    ("bom", "needle"),
    [
        (codecs.BOM_UTF8, "line 1: starts with a UTF-8 byte order mark (BOM)"),
        (codecs.BOM_UTF16_LE, "line 1: starts with a UTF-16 byte order mark (BOM)"),
    ],
)
def test_a_byte_order_mark_is_named(tmp_path, bom, needle):
    path = _write(tmp_path)
    data = (tmp_path / "bkg.csv").read_bytes()
    (tmp_path / "bkg.csv").write_bytes(bom + data)
    with pytest.raises(DataError, match="BOM") as info:
        read_events(tmp_path / "bkg.csv")
    assert "not ASCII" not in str(info.value)
    line = _one_error(hpo("validate", path), tmp_path)
    assert line.startswith(f"hpo: error: {tmp_path / 'bkg.csv'}, {needle}"), line
    assert "not ASCII" not in line
