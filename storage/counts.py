"""How many trials of a study are in each state, counted by the database.

A worker's exactness checks need one number ("live trials numbered below mine"); read
through Optuna they cost every unfinished trial of the study (hundreds of them with
hundreds of workers, each turned into a ``FrozenTrial``). PostgreSQL counts them in one
indexed query instead; the storage proxy forwards the same query
(:class:`storage.proxy.ProxyStorage.trial_counts`). Other storages (journal files) have
no such query: :func:`trial_counts` returns None and the caller counts the trials itself.
"""

from __future__ import annotations

from optuna.storages import RDBStorage
from optuna.trial import TrialState

__all__ = ["count_by_state", "states_present", "trial_counts"]


def count_by_state(backend: RDBStorage, study_id: int, below: int | None = None) -> dict:
    """``{TrialState: count}`` of a study's trials (numbered below ``below`` if given).

    Raises:
        KeyError: no study with this id.
        optuna.exceptions.StorageInternalError: the database failed (as Optuna's own
            reads raise it: the worker waits it out like any outage).
    """
    import sqlalchemy as sa
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    trials, studies = models.TrialModel.__table__, models.StudyModel.__table__
    query = sa.select(trials.c.state, sa.func.count()).where(trials.c.study_id == study_id)
    if below is not None:
        query = query.where(trials.c.number < below)
    study = sa.select(studies.c.study_id).where(studies.c.study_id == study_id)
    with _create_scoped_session(backend.scoped_session) as session:
        rows = session.execute(query.group_by(trials.c.state)).all()
        if not rows and session.execute(study).first() is None:
            raise KeyError(f"no study with id {study_id}")
    counts = dict.fromkeys(TrialState, 0)
    counts.update(dict(rows))  # the state column reads back as TrialState
    return counts


def trial_counts(storage, study_id: int, below: int | None = None) -> dict | None:
    """:func:`count_by_state` on a PostgreSQL storage or through the storage proxy; None
    where the storage cannot count (the caller reads the trials instead)."""
    storage = getattr(storage, "_backend", storage)  # Optuna wraps an RDBStorage in a cache
    if isinstance(storage, RDBStorage):
        return count_by_state(storage, study_id, below)
    counter = getattr(storage, "trial_counts", None)
    return None if counter is None else counter(study_id, below)


def states_present(counts: dict | None, states) -> bool:
    """Whether ``counts`` shows any trial in ``states`` (True when nothing was counted)."""
    return counts is None or any(counts.get(state, 0) for state in states)
