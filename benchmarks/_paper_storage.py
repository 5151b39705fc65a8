"""Build a storage at the paper's size quickly: 252 studies x N fake trials (benchmarks only).

The campaign is ``examples/paper_lhco.toml``'s grid (3 classifiers x IAD/CWoLa/CATHODE x
rotation x 14 signal amounts) on small synthetic data, so every command can run on it.
Each fake trial carries what a real one does: the searched parameters, the user
attributes ``hpo/objective.py`` writes (each metric, its per-repetition list, the truth
max SIC of the ensemble it selects, the hp dict), the lease system attributes and an
artifact record. The journal gets the operations in the order a worker writes them
(ask, one ``set_param`` per parameter, lease, ``renewals`` lease renewals, attributes,
tell), generated in memory by Optuna's own JournalStorage and written in one go;
PostgreSQL gets the same trials through ``create_new_trial`` with a template (its rows
do not depend on the order of operations).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import BaseJournalBackend
from optuna.trial import TrialState

__all__ = ["PAPER_GRID", "build_journal", "build_postgres", "snapshot_journal", "write_campaign"]

PAPER_GRID = """\
[campaign]
name = "{name}"
run_dir = "{run_dir}"
storage = "{storage}"
seed = 1

[data]
source = "synthetic"
scale = 0.03
background_model = "truth"

[grid]
classifiers = ["NN", "AdaBoost", "HGB"]
modes = ["IAD", "CWoLa", "CATHODE"]
rotation = [false, true]
signal = [0, 50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 800, 900, 1000]

[search]
n_trials = {n_trials}
sampler = "random"
seed = 1
metrics = ["argos", "bce", "max_sic"]
objective = "argos"
repetitions = 10
"""


def write_campaign(folder: Path, name: str, storage: str, n_trials: int) -> Path:
    """The paper-grid campaign file in ``folder`` (run directory ``folder/run``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "campaign.toml"
    text = PAPER_GRID.format(name=name, run_dir=folder / "run", storage=storage, n_trials=n_trials)
    path.write_text(text)
    return path


class _MemoryBackend(BaseJournalBackend):
    """Journal records kept in a list (written to a file once, at the end)."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        yield from self.logs[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.logs.extend(json.loads(json.dumps(log)) for log in logs)


def _draw(dist, rng: np.random.Generator) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    if isinstance(dist, IntDistribution):
        return int(rng.integers(dist.low, dist.high + 1))
    if dist.log:
        return float(np.exp(rng.uniform(np.log(dist.low), np.log(dist.high))))
    return float(rng.uniform(dist.low, dist.high))


def _fake_attrs(cc, params: dict, rng: np.random.Generator, reps: int) -> dict[str, Any]:
    from hpo.spaces import hyperparameters

    campaign, clf = cc.campaign, cc.point.classifier
    attrs: dict[str, Any] = {}
    for m in cc.metrics:
        low, high = {"argos": (0.0, 1.0), "bce": (0.6, 0.7), "max_sic": (1.0, 15.0)}[m]
        per_rep = [float(v) for v in rng.uniform(low, high, reps)]
        attrs[m] = float(np.mean(per_rep))
        attrs[f"{m}_per_rep"] = per_rep
        attrs[f"truth_max_sic_{m}"] = float(rng.uniform(1.0, 15.0))
    attrs["hp"] = hyperparameters(clf, params, campaign.search.fixed.get(clf, {}))
    return attrs


def _write_trial(storage, study_id: int, cc, rng, renewals: int, worker: str) -> None:
    """One trial, operation by operation, as a worker writes it."""
    from hpo.spaces import space_for

    dists = space_for(cc.point.classifier)  # Optuna distributions
    trial_id = storage.create_new_trial(study_id)
    params = {}
    for name, dist in dists.items():
        params[name] = _draw(dist, rng)
        storage.set_trial_param(trial_id, name, dist.to_internal_repr(params[name]), dist)
    storage.set_trial_system_attr(trial_id, "lease:worker", worker)
    for _ in range(1 + renewals):
        storage.set_trial_system_attr(trial_id, "lease:expires", time.time() + 60.0)
    attrs = _fake_attrs(cc, params, rng, cc.campaign.search.repetitions)
    for key, value in attrs.items():
        storage.set_trial_user_attr(trial_id, key, value)
    artifact = str(uuid.UUID(int=int(rng.integers(2**63))))
    storage.set_trial_system_attr(
        trial_id,
        f"artifacts:{artifact}",
        json.dumps(
            {
                "artifact_id": artifact,
                "filename": f"sic-{trial_id}.npz",
                "mimetype": "application/octet-stream",
                "encoding": None,
            }
        ),
    )
    storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [attrs[cc.objective]])


def _memory_campaign(campaign, n_trials: int, renewals: int, seed: int):
    """The whole campaign in an in-memory journal: (backend, storage)."""
    from hpo.cells import campaign_cells
    from hpo.studies import create_studies

    backend = _MemoryBackend()
    storage = JournalStorage(backend)
    create_studies(campaign, storage)
    rng = np.random.default_rng(seed)
    cells = campaign_cells(campaign)
    ids = {cc.study_name: storage.get_study_id_from_name(cc.study_name) for cc in cells}
    for i in range(n_trials):  # round-robin over the cells, as an array of workers does
        for cc in cells:
            _write_trial(storage, ids[cc.study_name], cc, rng, renewals, f"bench-{i % 64}")
    return backend, storage


def build_journal(campaign, path: Path, *, renewals: int, seed: int = 0) -> int:
    """Write the campaign's journal to ``path``; returns the number of records."""
    backend, _ = _memory_campaign(campaign, campaign.search.n_trials, renewals, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        for log in backend.logs:
            fh.write(json.dumps(log, separators=(",", ":")) + "\n")
    tmp.replace(path)
    return len(backend.logs)


def snapshot_journal(path: Path) -> bool:
    """Write the replay snapshot a live campaign's workers would have left (Optuna offers
    one every 100 trials; this one covers the whole journal, a live one trails it by at
    most a tenth of the records). False where the code has no snapshots."""
    import pickle

    from storage.journal import open_journal_storage

    storage = open_journal_storage(path)
    backend = storage._backend
    if not hasattr(backend, "save_snapshot"):
        return False
    backend.save_snapshot(pickle.dumps(storage._replay_result))  # what Optuna calls
    return True


def _insert_trials(connection, study_id: int, trials) -> None:
    """Bulk-insert finished trials into Optuna's tables (one statement per table)."""
    import datetime as dt

    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models

    def utc(value):
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    table = models.TrialModel.__table__
    rows = [
        {
            "number": number,
            "study_id": study_id,
            "state": t.state,
            "datetime_start": utc(t.datetime_start),
            "datetime_complete": utc(t.datetime_complete),
        }
        for number, t in enumerate(trials)
    ]
    ids = connection.execute(
        table.insert().returning(table.c.trial_id, sort_by_parameter_order=True), rows
    ).scalars()
    params, values, users, systems = [], [], [], []
    for trial_id, t in zip(ids, trials, strict=True):
        for name, value in t.params.items():
            dist = t.distributions[name]
            params.append(
                {
                    "trial_id": trial_id,
                    "param_name": name,
                    "param_value": dist.to_internal_repr(value),
                    "distribution_json": distribution_to_json(dist),
                }
            )
        stored, kind = models.TrialValueModel.value_to_stored_repr(t.value)
        values.append({"trial_id": trial_id, "objective": 0, "value": stored, "value_type": kind})
        for target, attrs in ((users, t.user_attrs), (systems, t.system_attrs)):
            target.extend(
                {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                for k, v in attrs.items()
            )
    for model, rows in (
        (models.TrialParamModel, params),
        (models.TrialValueModel, values),
        (models.TrialUserAttributeModel, users),
        (models.TrialSystemAttributeModel, systems),
    ):
        connection.execute(model.__table__.insert(), rows)


def build_postgres(campaign, url: str, *, seed: int = 0) -> int:
    """Put the campaign's studies (through Optuna) and trials (bulk inserts into Optuna's
    tables, one transaction per study: the rows ``create_new_trial`` would write) into the
    PostgreSQL database at ``url``."""
    from hpo.cells import campaign_cells
    from hpo.studies import create_studies

    _, memory = _memory_campaign(campaign, campaign.search.n_trials, 0, seed)
    rdb = optuna.storages.RDBStorage(url)
    create_studies(campaign, rdb)
    count = 0
    for cc in campaign_cells(campaign):
        trials = memory.get_all_trials(memory.get_study_id_from_name(cc.study_name))
        with rdb.engine.begin() as connection:
            _insert_trials(connection, rdb.get_study_id_from_name(cc.study_name), trials)
        count += len(trials)
    rdb.engine.dispose()
    return count
