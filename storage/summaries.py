"""Per-study trial counts and a few attribute values, for many studies in one go.

``hpo status`` needs, per cell, how many trials are in each state and the values of its
metrics over the complete trials; not the trials themselves. Through Optuna's API that
means materialising every trial of every study (25,200 for the paper's grid, with all
their parameters and attributes: 45 s on PostgreSQL). On PostgreSQL :func:`summaries`
asks the database for exactly that instead, in two queries over Optuna's tables
(``trials``, ``studies``, ``trial_user_attributes``, whose schema version
``storage.postgres.open_postgres`` checks); any other storage (a journal, already in
memory; the gRPC proxy) goes through Optuna's API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState

__all__ = ["StudySummary", "summaries"]


@dataclass
class StudySummary:
    """Trials per state and, per requested user attribute, its values on COMPLETE trials."""

    counts: dict[TrialState, int] = field(default_factory=lambda: {s: 0 for s in TrialState})
    values: dict[str, list] = field(default_factory=dict)


def _rdb(storage: BaseStorage) -> RDBStorage | None:
    backend = getattr(storage, "_backend", storage)  # Optuna's _CachedStorage wraps one
    return backend if isinstance(backend, RDBStorage) else None


def summaries(
    storage: BaseStorage, names: Iterable[str], attrs: Iterable[str]
) -> dict[str, StudySummary]:
    """``{study name: summary}`` for the studies of ``names`` that exist."""
    names, attrs = list(names), list(attrs)
    rdb = _rdb(storage)
    return (
        _from_database(rdb, names, attrs) if rdb is not None else _from_api(storage, names, attrs)
    )


def _from_api(storage: BaseStorage, names: list[str], attrs: list[str]) -> dict:
    out = {}
    for name in names:
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:
            continue
        summary = out[name] = StudySummary(values={a: [] for a in attrs})
        for t in storage.get_all_trials(study_id, deepcopy=False):
            summary.counts[t.state] += 1
            if t.state == TrialState.COMPLETE:
                for a in attrs:
                    if a in t.user_attrs:
                        summary.values[a].append(t.user_attrs[a])
    return out


def _from_database(rdb: RDBStorage, names: list[str], attrs: list[str]) -> dict:
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    studies, trials = models.StudyModel.__table__, models.TrialModel.__table__
    user = models.TrialUserAttributeModel.__table__
    joined = trials.join(studies, trials.c.study_id == studies.c.study_id)
    count = (
        sa.select(studies.c.study_name, trials.c.state, sa.func.count())
        .select_from(joined)
        .where(studies.c.study_name.in_(names))
        .group_by(studies.c.study_name, trials.c.state)
    )
    present = sa.select(studies.c.study_name).where(studies.c.study_name.in_(names))
    values = (
        sa.select(studies.c.study_name, user.c.key, user.c.value_json)
        .select_from(joined.join(user, user.c.trial_id == trials.c.trial_id))
        .where(studies.c.study_name.in_(names))
        .where(trials.c.state == TrialState.COMPLETE)
        .where(user.c.key.in_(attrs))
    )
    with rdb.engine.connect() as connection:
        out = {
            name: StudySummary(values={a: [] for a in attrs})
            for (name,) in connection.execute(present)
        }
        for name, state, n in connection.execute(count):
            out[name].counts[TrialState[state] if isinstance(state, str) else state] = n
        if attrs:
            for name, key, value in connection.execute(values):
                out[name].values[key].append(json.loads(value))
    return out
