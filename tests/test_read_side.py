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
from hpo.holdout import RESERVE_ATTR, search_reserve
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
enqueue_defaults = false
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
            trial.set_user_attr(RESERVE_ATTR, search_reserve(campaign))
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


# ----------------------------------------------------------------------------- snapshots
def _journal_with_trials(path, n: int) -> None:
    """A journal of one study with ``n`` finished trials (one record each)."""
    from storage.journal import open_journal_storage

    study = optuna.create_study(study_name="s", storage=open_journal_storage(path))
    for i in range(n):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": i / n},
                distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                value=float(i),
                user_attrs={"argos": float(i)},
            )
        )


def _state(path) -> list[tuple]:
    from storage.journal import open_journal_storage

    study = optuna.load_study(study_name="s", storage=open_journal_storage(path))
    return [(t.number, t.state, t.params, t.value, t.user_attrs) for t in study.get_trials()]


@pytest.fixture
def snapshotted(tmp_path, monkeypatch):
    """A 150-trial journal whose snapshot (saved by Optuna at trial 100) covers 101."""
    from storage import journal_snapshot

    monkeypatch.setattr(journal_snapshot, "MIN_NEW_RECORDS", 10)
    path = tmp_path / "optuna.journal"
    _journal_with_trials(path, 150)
    found = journal_snapshot.read(str(path))
    assert found is not None, "Optuna offered no snapshot at trial 100"
    assert found[0]["records"] == 102  # the study and trials 0..100
    return path


def test_a_snapshot_gives_the_state_a_full_replay_gives(snapshotted) -> None:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from storage.journal import GuardedJournalFileBackend

    backend = GuardedJournalFileBackend(str(snapshotted))
    assert backend.load_snapshot() is not None
    assert backend._log_number_offset[102] > 0  # the replay starts after the snapshot
    full = optuna.load_study(
        study_name="s", storage=JournalStorage(JournalFileBackend(str(snapshotted)))
    )
    expected = [(t.number, t.state, t.params, t.value, t.user_attrs) for t in full.get_trials()]
    assert _state(snapshotted) == expected and len(expected) == 150


def test_a_snapshot_that_does_not_fit_is_ignored(snapshotted, tmp_path) -> None:
    import os

    from storage import journal_snapshot

    snap = journal_snapshot.path_of(str(snapshotted))
    expected = _state(snapshotted)
    original = open(snap, "rb").read()
    # someone else could have written it: unpickling it would run their code
    os.chmod(snap, 0o620)
    assert journal_snapshot.read(str(snapshotted)) is None
    os.chmod(snap, 0o600)
    # a damaged state, a different journal, a shorter journal
    open(snap, "wb").write(original[:-1] + bytes([original[-1] ^ 1]))
    assert journal_snapshot.read(str(snapshotted)) is None
    open(snap, "wb").write(original)
    assert journal_snapshot.read(str(snapshotted)) is not None
    data = snapshotted.read_bytes()
    snapshotted.write_bytes(data.replace(b'"x"', b'"y"', 1))
    assert journal_snapshot.read(str(snapshotted)) is None
    snapshotted.write_bytes(data[: len(data) // 3])
    assert journal_snapshot.read(str(snapshotted)) is None
    snapshotted.write_bytes(data)
    assert _state(snapshotted) == expected


def test_a_full_journal_check_reads_only_what_the_snapshot_does_not_cover(snapshotted) -> None:
    import os

    from storage import journal_snapshot
    from storage.journal import check_journal

    snap = journal_snapshot.path_of(str(snapshotted))
    with_snapshot = check_journal(snapshotted, full=True)
    os.rename(snap, f"{snap}.away")
    without = check_journal(snapshotted, full=True)
    os.rename(f"{snap}.away", snap)
    assert with_snapshot.ok and without.ok
    assert with_snapshot.valid_records == without.valid_records == 151
    assert with_snapshot.size == without.size == without.bytes_read
    assert with_snapshot.bytes_read < without.bytes_read / 2
    with open(snapshotted, "ab") as f:  # a bad line after the snapshot is still found
        f.write(
            b'{"op_code": 99}\n'
            + b'{"op_code":4,"worker_id":"w","study_id":0,"datetime_start":null}\n'
        )
    bad = check_journal(snapshotted, full=True)
    assert [b.line_number for b in bad.bad_lines] == [152]


# ----------------------------------------------------------------------------- summaries
@pytest.mark.postgres
def test_status_counts_from_the_database_equal_counts_from_the_trials(postgres_url) -> None:
    """storage.summaries' two queries against Optuna's own reading of the same trials."""
    from _storage_fixtures import delete_quietly, unique_name

    from storage.summaries import summaries
    from storage.urls import open_storage

    storage = open_storage(postgres_url)
    names = [unique_name("sum"), unique_name("sum")]
    rng = np.random.default_rng(5)
    states = [TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED]
    try:
        for name in names:
            study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
            for i in range(12):
                trial = study.ask()
                trial.set_user_attr("argos", float(rng.uniform()))
                trial.set_user_attr("other", [1, 2])
                if i % 4 == 0:
                    continue  # stays RUNNING
                state = states[i % 3]
                value = trial.user_attrs["argos"] if state == TrialState.COMPLETE else None
                study.tell(trial, value, state=state)
            study.enqueue_trial({"x": 0.5})
        found = summaries(storage, [*names, "no-such-study"], ["argos"])
        assert set(found) == set(names)
        for name in names:
            trials = optuna.load_study(study_name=name, storage=storage).get_trials()
            assert found[name].counts == {s: sum(t.state == s for t in trials) for s in TrialState}
            complete = [t.user_attrs["argos"] for t in trials if t.state == TrialState.COMPLETE]
            assert sorted(found[name].values["argos"]) == sorted(complete)
            assert found[name].counts[TrialState.WAITING] == 1 and len(trials) == 13
    finally:
        for name in names:
            delete_quietly(storage, name)


def test_progress_reads_counts_and_best_values(campaign) -> None:
    from hpo.studies import progress

    truth = _fill(campaign, np.random.default_rng(8))
    rows = {r.study_name.split(".", 1)[1]: r for r in progress(campaign)}
    assert set(rows) == set(truth)
    for key, trials in truth.items():
        row = rows[key]
        assert (row.complete, row.running, row.waiting, row.failed) == (6, 0, 0, 0)
        assert row.best["argos"] == max(t.user_attrs["argos"] for t in trials)
        assert row.best["bce"] == min(t.user_attrs["bce"] for t in trials)
