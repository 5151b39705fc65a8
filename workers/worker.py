"""The worker loop: pull trials from several studies until each has its target.

Exactness rule: a trial runs only if fewer than ``target`` live trials (COMPLETE,
RUNNING, WAITING; and PRUNED where pruned trials count) have a smaller trial number;
otherwise it is *surplus* and is finished as FAIL with system attr ``worker:surplus``
without running. The check is made after ``ask`` and again before ``tell``, counted by
the database where the storage can (PostgreSQL, the storage proxy: :mod:`storage.counts`).
Trials only ever leave the live set and new ones get larger numbers, so a study never
ends with more than ``target`` COMPLETE trials, however many workers race and however
often a trial was re-enqueued. A labelled enqueued trial (a study's defaults trial) that
a lower-numbered live trial of the same label precedes is a duplicate (two enqueuers
raced): it is finished as FAIL without running, so each label runs once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from storage.counts import trial_counts
from storage.leases import (
    FAIL_REASON,
    Lease,
    duplicate_of,
    fail_trial,
    recover_stale_trials,
    requeue,
)
from storage.urls import open_storage
from workers.signals import EXIT_CODES, WorkerInterrupted, handle_signals, interruptible
from workers.signals import received_signal as _received_signal

__all__ = ["ERROR_ATTR", "SURPLUS_ATTR", "WorkerError", "WorkerSummary", "run_worker"]

_logger = logging.getLogger(__name__)

ERROR_ATTR = "worker:error"  # system attr: "<ExceptionType>: message" of a failed objective
SURPLUS_ATTR = "worker:surplus"  # system attr: the trial was not run (target already covered)
LIVE = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
#: about this many looks for stale trials per lease interval, over all workers of a study
RECOVERERS = 8
EXIT_REPEATED_ERROR = 1
#: Exit code after an error the objective declares fatal (a user's input is wrong).
EXIT_FATAL = 2


class WorkerError(RuntimeError):
    """The worker cannot start (e.g. a study in ``targets`` does not exist)."""


@dataclass
class WorkerSummary:
    """What one worker did; ``exit_code`` is what a worker process should exit with."""

    worker_id: str
    completed: int = 0
    failed: int = 0
    #: trials this worker gave back (FAIL, parameters re-queued): signal, outage, fatal error
    requeued: int = 0
    pruned: int = 0
    surplus: int = 0
    recovered: int = 0
    lost: int = 0
    exit_code: int = 0
    message: str = ""
    overhead_s: list[float] = field(default_factory=list)  # ask..tell minus objective, per trial

    @property
    def interrupted(self) -> bool:
        return self.exit_code in EXIT_CODES.values()


def _recent_reads(study: optuna.Study) -> contextlib.AbstractContextManager:
    """Reads that may reuse the storage client's last one (the storage proxy's client:
    ``ProxyStorage.recent_reads``); a plain read elsewhere."""
    relaxed = getattr(study._storage, "recent_reads", None)
    return relaxed() if relaxed is not None else contextlib.nullcontext()


def _live_before(study: optuna.Study, number: int, live=LIVE) -> int:
    """Live trials numbered below ``number``, counted by the database where it can."""
    counts = trial_counts(study._storage, study._study_id, below=number)
    if counts is not None:
        return sum(counts[state] for state in live)
    return sum(1 for t in study.get_trials(deepcopy=False, states=live) if t.number < number)


def _state_counts(study: optuna.Study, live) -> dict:
    """``{TrialState: count}`` of the live trials: the database's count where it can, else
    a read of the trials that may reuse one under a few seconds old (``_recent_reads``)."""
    counts = trial_counts(study._storage, study._study_id)
    if counts is None:
        with _recent_reads(study):
            trials = study.get_trials(deepcopy=False, states=live)
        counts = dict.fromkeys(TrialState, 0)
        for t in trials:
            counts[t.state] += 1
    return counts


def _mark_surplus(study: optuna.Study, trial: optuna.Trial) -> None:
    frozen = study._storage.get_trial(trial._trial_id)
    fail_trial(study, frozen, {SURPLUS_ATTR: True})


def _repeated_error(study: optuna.Study, k: int) -> str | None:
    """The error message if the last ``k`` run trials of the study all failed with it."""
    ran = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
        if t.state == TrialState.COMPLETE or ERROR_ATTR in t.system_attrs
    ]
    last = sorted(ran, key=lambda t: t.number)[-k:]
    messages = {t.system_attrs.get(ERROR_ATTR) for t in last}
    if len(last) == k and len(messages) == 1 and None not in messages:
        return messages.pop()
    return None


class _Loop:
    def __init__(self, storage, targets, objective, sampler_factory, worker_id, opts) -> None:
        self.targets = dict(targets)
        self.objective = objective
        self.worker_id = worker_id
        self.opts = opts
        self.summary = WorkerSummary(worker_id=worker_id)
        self.studies: dict[str, optuna.Study] = {}
        self.next_recovery: dict[str, float] = {}
        self.orphan: tuple[optuna.Study, int] | None = None  # trial cut by a storage outage
        #: the states that count toward a target (PRUNED too with count_pruned) and live ones
        self.counted = (TrialState.COMPLETE,) + (
            (TrialState.PRUNED,) if opts["count_pruned"] else ()
        )
        self.live = self.counted + (TrialState.RUNNING, TrialState.WAITING)
        for name in self.targets:
            try:
                self.studies[name] = optuna.load_study(
                    study_name=name,
                    storage=storage,
                    sampler=sampler_factory(name),
                    pruner=opts["pruner_factory"](name) if opts["pruner_factory"] else None,
                )
            except KeyError as exc:
                raise WorkerError(
                    f"study {name!r} does not exist in the storage (create the campaign first)"
                ) from exc

    def pick(self) -> tuple[optuna.Study | None, bool]:
        """(study with room for a trial or None, whether any study still needs work)."""
        best, best_room, pending = None, 0, False
        for name, study in self.studies.items():
            counts = _state_counts(study, self.live)
            if self._recover(study, counts[TrialState.RUNNING]):  # their copies wait
                counts = _state_counts(study, self.live)
            running, waiting = counts[TrialState.RUNNING], counts[TrialState.WAITING]
            complete = sum(counts[state] for state in self.counted)
            if complete >= self.targets[name]:
                continue
            pending = True
            # WAITING trials (re-queued) are run first; a surplus one is cleaned up on ask.
            room = max(self.targets[name] - complete - running, 1 if waiting else 0)
            if room > best_room:
                best, best_room = study, room
        return best, pending

    def _recover(self, study: optuna.Study, running: int) -> int:
        """Look for stale trials about :data:`RECOVERERS` times per lease interval, over all
        workers: each of ``running`` workers looks once per ``running / RECOVERERS``
        intervals (every look reads every running trial). Returns the trials recovered."""
        name = study.study_name
        if time.monotonic() < self.next_recovery.get(name, 0.0):
            return 0
        spread = max(1.0, running / RECOVERERS)
        self.next_recovery[name] = time.monotonic() + self.opts["lease_interval"] * spread
        recovered = len(recover_stale_trials(study, grace=self.opts["lease_expiry"]))
        self.summary.recovered += recovered
        return recovered

    def _give_back(self, study: optuna.Study, trial: optuna.Trial, exc: WorkerInterrupted) -> None:
        """A stop signal ended the trial: FAIL it and re-queue its parameters."""
        name = f"worker {self.worker_id} {exc}"  # "... interrupted by SIGTERM"
        requeue(study, trial.number, name)
        self.summary.requeued += 1
        self.summary.exit_code = EXIT_CODES[exc.signum]
        self.summary.message = f"trial {trial.number} of {study.study_name} re-queued: {exc}"
        _logger.warning("%s: %s", name, self.summary.message)

    def run_one(self, study: optuna.Study) -> bool:
        """Ask, run and tell one trial; False when the worker must stop."""
        target = self.targets[study.study_name]
        t0 = time.perf_counter()
        with _recent_reads(study):  # Optuna's look for a WAITING trial to take
            trial = study.ask()
        if _live_before(study, trial.number, self.live) >= target:
            _mark_surplus(study, trial)
            self.summary.surplus += 1
            return True
        first = duplicate_of(study, trial)
        if first is not None:
            frozen = study._storage.get_trial(trial._trial_id)
            fail_trial(study, frozen, {FAIL_REASON: f"duplicate of trial {first}, not run"})
            self.summary.surplus += 1
            return True
        objective_s = 0.0
        error: str | None = None
        value = None
        state = TrialState.COMPLETE
        with Lease(
            study,
            trial,
            worker_id=self.worker_id,
            interval=self.opts["lease_interval"],
            expiry=self.opts["lease_expiry"],
        ) as lease:
            if lease.lost:  # recovered by another worker before the lease was written
                self.summary.lost += 1
                return True
            t1 = time.perf_counter()
            try:
                with interruptible():
                    value = self.objective(trial)
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    raise ValueError(f"objective returned {value!r}, expected a number")
            except WorkerInterrupted as exc:
                self._give_back(study, trial, exc)
                return False
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except optuna.exceptions.StorageInternalError:
                self.orphan = (study, trial.number)  # re-queued once the storage is back
                raise
            except self.opts["fatal"] as exc:  # e.g. a data file replaced under the campaign
                requeue(study, trial.number, f"worker {self.worker_id}: {exc}")
                self.summary.requeued += 1
                self.summary.exit_code = EXIT_FATAL
                self.summary.message = str(exc)
                _logger.error("trial %d of %s re-queued: %s", trial.number, study.study_name, exc)
                return False
            except Exception as exc:
                signum = _received_signal()
                if signum is not None:  # e.g. a library's pool killed by the same signal
                    self._give_back(study, trial, WorkerInterrupted(signum))
                    return False
                error = f"{type(exc).__name__}: {exc}"[:2000]
                _logger.exception("trial %d of %s failed", trial.number, study.study_name)
            objective_s = time.perf_counter() - t1
        if lease.lost:
            self.summary.lost += 1
            _logger.warning(
                "trial %d of %s was recovered by another worker; result discarded",
                trial.number,
                study.study_name,
            )
            return True
        if error is not None:
            if not fail_trial(
                study, study._storage.get_trial(trial._trial_id), {ERROR_ATTR: error}
            ):
                self.summary.lost += 1
                return True
            self.summary.failed += 1
            repeated = _repeated_error(study, self.opts["max_repeated_errors"])
            if repeated is not None:
                self.summary.exit_code = EXIT_REPEATED_ERROR
                self.summary.message = (
                    f"study {study.study_name}: the last {self.opts['max_repeated_errors']} "
                    f"trials failed with the same error: {repeated}"
                )
                _logger.error("%s", self.summary.message)
                return False
            return True
        if _live_before(study, trial.number, self.live) >= target:
            _mark_surplus(study, trial)
            self.summary.surplus += 1
            return True
        try:
            if state == TrialState.PRUNED:
                study.tell(trial, state=TrialState.PRUNED)
                self.summary.pruned += 1
            else:
                study.tell(trial, value)
                self.summary.completed += 1
        except optuna.exceptions.UpdateFinishedTrialError:
            self.summary.lost += 1
            return True
        self.summary.overhead_s.append(time.perf_counter() - t0 - objective_s)
        return True


def run_worker(
    storage: optuna.storages.BaseStorage | str,
    targets: dict[str, int],
    objective: Callable[[optuna.Trial], float | Sequence[float]],
    *,
    sampler_factory: Callable[[str], optuna.samplers.BaseSampler],
    worker_id: str,
    stop_event: threading.Event | None = None,
    poll: float = 5.0,
    lease_interval: float = 10.0,
    lease_expiry: float = 60.0,
    max_repeated_errors: int = 3,
    storage_patience: float = 300.0,
    fatal: tuple[type[BaseException], ...] = (),
    pruner_factory: Callable[[str], optuna.pruners.BasePruner] | None = None,
    count_pruned: bool = False,
) -> WorkerSummary:
    """Pull trials from the studies in ``targets`` until each has its COMPLETE target.

    Args:
        storage: an Optuna storage or a storage URL (see ``storage.open_storage``).
        targets: ``{study_name: number of COMPLETE trials wanted}``.
        objective: called with the trial; returns the value(s) to tell. An exception
            fails the trial (``worker:error``, not re-queued); ``optuna.TrialPruned``
            prunes it.
        sampler_factory: builds the sampler of each study (seed it per worker).
        worker_id: recorded in each trial's lease.
        stop_event: when set, the worker stops after the current trial (exit code 0).
        poll: seconds to wait when every study is saturated by others' running trials.
        lease_interval, lease_expiry: lease renewal period and validity (seconds).
        max_repeated_errors: stop (exit code 1) once this many of a study's latest run
            trials failed with the same error message.
        storage_patience: seconds a storage outage (e.g. a database restart) is waited
            out, retrying with backoff; a trial it cut short is re-queued afterwards.
        pruner_factory: builds the pruner of each study (None: Optuna's default, never used
            by an objective that does not report).
        count_pruned: PRUNED trials count toward the targets (else only COMPLETE ones).
        fatal: exception types that stop the worker at once (exit code 2, the message in
            ``summary.message``): the trial is re-queued, not failed, since no trial can
            succeed until the user fixes the input (e.g. a data file).

    Returns:
        A :class:`WorkerSummary`; ``exit_code`` 0 when every study reached its target
        (or ``stop_event`` was set), 1 on a repeated error, 2 on a ``fatal`` error,
        128+signal after SIGTERM,
        SIGINT or SIGUSR1 (the running trial is then FAIL and its parameters re-queued).
    """
    bad = {k: v for k, v in targets.items() if not isinstance(v, int) or v < 0}
    if bad:
        raise ValueError(f"targets: each value must be an integer >= 0, got {bad}")
    if isinstance(storage, str):
        storage = open_storage(storage)
    opts = {
        "lease_interval": lease_interval,
        "lease_expiry": lease_expiry,
        "max_repeated_errors": max_repeated_errors,
        "fatal": tuple(fatal),
        "pruner_factory": pruner_factory,
        "count_pruned": count_pruned,
    }
    loop = _Loop(storage, targets, objective, sampler_factory, worker_id, opts)
    summary = loop.summary
    outage_since: float | None = None
    with handle_signals():
        while True:
            signum = _received_signal()
            if signum is not None:
                summary.exit_code = EXIT_CODES[signum]
                summary.message = f"interrupted by {signal.Signals(signum).name} between trials"
                break
            if stop_event is not None and stop_event.is_set():
                summary.message = "stop requested"
                break
            try:
                if loop.orphan is not None:
                    orphan_study, number = loop.orphan
                    requeue(orphan_study, number, f"worker {worker_id}: storage outage")
                    summary.requeued += 1
                    loop.orphan = None
                    _logger.warning(
                        "storage reachable again; trial %d of %s re-queued",
                        number,
                        orphan_study.study_name,
                    )
                study, pending = loop.pick()
                if not pending:
                    summary.message = "all studies reached their targets"
                    break
                if study is None:
                    _sleep(poll, stop_event)
                    continue
                if not loop.run_one(study):
                    break
                outage_since = None
            except optuna.exceptions.StorageInternalError as exc:
                now = time.monotonic()
                outage_since = outage_since or now
                if now - outage_since > storage_patience:
                    raise
                wait = min(2.0 * (1 + now - outage_since), 10.0)
                _logger.warning(
                    "storage unreachable (%s), retrying in %.0f s (%.0f of %.0f s waited)",
                    _root_cause(exc),
                    wait,
                    now - outage_since,
                    storage_patience,
                )
                _sleep(wait, stop_event)
    _logger.info(
        "worker %s done: %d complete, %d failed, %d re-queued, %d surplus, %d recovered, "
        "%d lost (%s)",
        worker_id,
        summary.completed,
        summary.failed,
        summary.requeued,
        summary.surplus,
        summary.recovered,
        summary.lost,
        summary.message,
    )
    return summary


def _root_cause(exc: BaseException) -> str:
    """The first line of the innermost cause (Optuna wraps a lost connection in a message
    about "invalid data ... exceeding max length", which misleads)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _sleep(seconds: float, stop_event: threading.Event | None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if _received_signal() is not None or (stop_event is not None and stop_event.is_set()):
            return
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))
