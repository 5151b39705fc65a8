"""Trial leases: liveness of running trials on every backend (journal included).

Optuna's own heartbeat exists only for RDB storages and only inside
``Study.optimize``. Here a running trial carries two system attributes:

* ``lease:expires`` -- wall-clock time (``time.time()``, seconds) after which the
  trial counts as abandoned;
* ``lease:worker`` -- the id of the worker running it.

:class:`Lease` renews the expiry from a daemon thread. :func:`recover_stale_trials`
marks RUNNING trials whose lease expired (or that never got one and are older than a
grace period) as FAIL and enqueues their parameters again.

The hand-over never loses a point: the copy (a WAITING trial with the same parameters
and user attr ``requeued_from``) is enqueued *before* the original is marked FAIL, so a
process killed between the two storage calls leaves a copy, and the next recoverer only
fails the original. Marking FAIL is the claim: the storage refuses to finish a trial
twice, so of several concurrent recoverers exactly one wins; a loser takes back the copy
it enqueued, winners and losers alike keep only the copy with the lowest trial id (a copy
is withdrawn only while no worker has taken it), so each re-queued trial has exactly one
live copy.

An enqueued trial may carry a label (user attr ``enqueued_as``, e.g. a study's defaults
trial); :func:`enqueue_once` enqueues a label's trial only if no trial of the study has it
(racing enqueuers keep the lowest trial id, as racing recoverers do), a re-queued copy
keeps the label, and :func:`duplicate_of` tells a worker that a trial it took is a second
live trial of its label (which it must finish without running).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from types import TracebackType
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from storage.deaf import deaf_threads

__all__ = [
    "ENQUEUED_AS",
    "FAIL_REASON",
    "LEASE_EXPIRES",
    "LEASE_WORKER",
    "REQUEUED_FROM",
    "WITHDRAWN",
    "Lease",
    "duplicate_of",
    "enqueue_once",
    "fail_trial",
    "recover_stale_trials",
    "requeue",
]

_logger = logging.getLogger(__name__)

LEASE_EXPIRES = "lease:expires"
LEASE_WORKER = "lease:worker"
FAIL_REASON = "fail:reason"  # system attr on a trial failed by recovery / requeue
REQUEUED_FROM = "requeued_from"  # user attr on the re-enqueued trial: the old number
WITHDRAWN = "duplicate re-queue, withdrawn"  # FAIL_REASON of a racing recoverer's extra copy
ENQUEUED_AS = "enqueued_as"  # user attr: the label of an enqueued trial; copies keep it


# Optuna's public Study API has no "set a system attr / state of trial N" call; the
# storage and trial ids are reached through these two private attributes only.
def _storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    return study._storage


def _trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    return trial._trial_id


class Lease:
    """Context manager keeping a running trial's lease fresh from a daemon thread.

    Args:
        study: the study of the trial.
        trial: the running trial (``optuna.Trial`` or ``FrozenTrial``).
        worker_id: recorded in ``lease:worker``.
        interval: seconds between renewals.
        expiry: seconds a lease stays valid after each renewal (> interval).

    ``lost`` becomes True when the trial was finished by someone else (e.g. recovered
    as stale by another worker); the caller should then discard its result.
    """

    def __init__(
        self,
        study: optuna.Study,
        trial: optuna.Trial | FrozenTrial,
        *,
        worker_id: str,
        interval: float = 10.0,
        expiry: float = 60.0,
    ) -> None:
        if not 0 < interval < expiry:
            raise ValueError(f"lease: need 0 < interval < expiry, got {interval=} {expiry=}")
        self._storage = _storage(study)
        self._trial_id = _trial_id(trial)
        self.number = trial.number
        self.worker_id = worker_id
        self.interval = float(interval)
        self.expiry = float(expiry)
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def renew(self) -> bool:
        """Push the expiry forward once; False (and ``lost``) if the trial is finished."""
        try:
            self._storage.set_trial_system_attr(
                self._trial_id, LEASE_EXPIRES, time.time() + self.expiry
            )
        except UpdateFinishedTrialError:
            self.lost = True
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.renew():
                    _logger.warning("trial %d finished by someone else; lease lost", self.number)
                    return
            except Exception as exc:  # transient storage trouble: keep trying until expiry
                _logger.warning("lease renewal of trial %d failed: %s", self.number, exc)

    def __enter__(self) -> Lease:
        try:
            self._storage.set_trial_system_attr(self._trial_id, LEASE_WORKER, self.worker_id)
        except UpdateFinishedTrialError:
            self.lost = True
        if self.lost or not self.renew():
            return self
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.number}", daemon=True)
        with deaf_threads():  # a stop signal must interrupt the objective in the main thread
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def fail_trial(study: optuna.Study, trial: FrozenTrial, attrs: dict[str, Any]) -> bool:
    """Set system ``attrs`` on a running ``trial`` and mark it FAIL.

    Returns False when the trial was already finished (someone else won the race).
    """
    storage = _storage(study)
    try:
        for key, value in attrs.items():
            storage.set_trial_system_attr(_trial_id(trial), key, value)
        storage.set_trial_state_values(_trial_id(trial), TrialState.FAIL)
    except UpdateFinishedTrialError:
        return False
    return True


def _params_of(trial: FrozenTrial) -> dict[str, Any]:
    fixed = trial.system_attrs.get("fixed_params") or {}
    return {**fixed, **trial.params}


def _copies(study: optuna.Study, number: int) -> list[FrozenTrial]:
    """Re-queued copies of trial ``number`` that are not FAIL (waiting, running or done)."""
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get(REQUEUED_FROM) == number and t.state != TrialState.FAIL
    ]


def _enqueue_copy(study: optuna.Study, trial: FrozenTrial, reason: str) -> int:
    """A WAITING trial with ``trial``'s parameters; returns its trial id."""
    label = trial.user_attrs.get(ENQUEUED_AS)
    template = optuna.trial.create_trial(
        state=TrialState.WAITING,
        system_attrs={"fixed_params": _params_of(trial)},
        user_attrs={
            REQUEUED_FROM: trial.number,
            "requeue_reason": reason,
            **({ENQUEUED_AS: label} if label is not None else {}),
        },
    )
    return _storage(study).create_new_trial(study._study_id, template_trial=template)


def _labelled(study: optuna.Study, label: str) -> list[FrozenTrial]:
    """The study's trials enqueued as ``label`` (re-queued copies included), by trial id."""
    found = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(ENQUEUED_AS) == label]
    return sorted(found, key=_trial_id)


def enqueue_once(study: optuna.Study, label: str, params: dict[str, Any]) -> bool:
    """Enqueue a WAITING trial with ``params`` labelled ``label`` unless the study has one.

    Any trial with the label, in any state, counts (a finished or failed one is not
    enqueued again). Of racing enqueuers' trials the one with the lowest id stays: the
    others are withdrawn while still WAITING. Returns whether this call's trial stays.
    """
    if _labelled(study, label):
        return False
    template = optuna.trial.create_trial(
        state=TrialState.WAITING,
        system_attrs={"fixed_params": dict(params)},
        user_attrs={ENQUEUED_AS: label},
    )
    mine = _storage(study).create_new_trial(study._study_id, template_trial=template)
    lower = [t for t in _labelled(study, label) if _trial_id(t) < mine]
    if lower:
        _take_back(study, mine)
        return False
    return True


def duplicate_of(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> int | None:
    """The number of a lower-numbered live trial with ``trial``'s label, if there is one.

    Live: any state but FAIL (a failed original's re-queued copy is not a duplicate).
    None for an unlabelled trial, without reading the study.
    """
    label = trial.user_attrs.get(ENQUEUED_AS)
    if label is None:
        return None
    earlier = [
        t.number
        for t in _labelled(study, label)
        if t.number < trial.number and t.state != TrialState.FAIL
    ]
    return earlier[0] if earlier else None


def _take_back(study: optuna.Study, trial_id: int) -> None:
    """Withdraw a duplicate copy, as a worker takes a trial (WAITING -> RUNNING wins once)."""
    storage = _storage(study)
    if storage.set_trial_state_values(trial_id, TrialState.RUNNING):  # nobody took it yet
        storage.set_trial_system_attr(trial_id, FAIL_REASON, WITHDRAWN)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)


def _fail_and_requeue(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    mine = None if _copies(study, trial.number) else _enqueue_copy(study, trial, reason)
    won = fail_trial(study, trial, {FAIL_REASON: reason})
    if mine is not None:
        # of racing recoverers' copies the one with the lowest id stays; none if the trial
        # was told meanwhile (it finished, nothing to re-run)
        told = _storage(study).get_trial(_trial_id(trial)).state != TrialState.FAIL
        lower = [t for t in _copies(study, trial.number) if _trial_id(t) < mine]
        if told or lower:
            _take_back(study, mine)
    if won:
        _logger.info("trial %d failed (%s); parameters re-enqueued", trial.number, reason)
    return won


def requeue(study: optuna.Study, trial_number: int, reason: str) -> None:
    """Mark running trial ``trial_number`` FAIL (``fail:reason``) and enqueue its params again.

    Does nothing if the trial is already finished (it was recovered or told meanwhile).
    """
    trial = study._storage.get_trial(
        study._storage.get_trial_id_from_study_id_trial_number(study._study_id, trial_number)
    )
    if trial.state != TrialState.RUNNING or not _fail_and_requeue(study, trial, reason):
        _logger.info("trial %d already finished; not re-enqueued", trial_number)


def recover_stale_trials(
    study: optuna.Study, *, now: float | None = None, grace: float = 60.0
) -> list[int]:
    """Fail and re-enqueue RUNNING trials whose lease expired.

    A RUNNING trial without a lease counts as stale once it started more than ``grace``
    seconds ago. Returns the numbers of the trials this call recovered (a trial that a
    concurrent recoverer got first is not in the list).
    """
    now = time.time() if now is None else float(now)
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        expires = trial.system_attrs.get(LEASE_EXPIRES)
        if expires is not None:
            if float(expires) >= now:
                continue
            worker = trial.system_attrs.get(LEASE_WORKER, "?")
            reason = f"lease of worker {worker} expired {now - float(expires):.0f} s ago"
        else:
            start = trial.datetime_start
            if start is None or (datetime.fromtimestamp(now) - start).total_seconds() < grace:
                continue
            reason = f"running without a lease for more than {grace:g} s"
        if _fail_and_requeue(study, trial, reason):
            recovered.append(trial.number)
    return recovered
