"""Helpers for tests/test_chain.py: tiny campaigns launched on the real SLURM cluster.

A :class:`Chain` is one launched campaign: its TOML file, run directory, the job ids
``hpo launch`` recorded, and read-only access to its studies on PostgreSQL. Nothing here
sleeps as synchronisation: :func:`wait_for` polls a condition and fails with a
description of what it waited for and the last thing it saw; its timeout is a guard
against a hung chain, never a deadline the machine must meet. A chain launched with a
test gate (tests/_gate.py) holds every trial once sampled until the test opens the gate,
so a fault is injected while the trials it needs are certainly running.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import optuna
from _gate import Gate
from _hpo_cli import hpo
from optuna.trial import FrozenTrial, TrialState

from storage.leases import FAIL_REASON, LEASE_WORKER, REQUEUED_FROM, WITHDRAWN
from workers.slurm import TERMINAL_STATES, job_states

T = TypeVar("T")

_BASE = """\
[campaign]
name = "{name}"
run_dir = "run"
storage = "{storage}"
seed = 0

[data]
{data}

[grid]
classifiers = ["HGB"]
modes = ["IAD"]
rotation = [false]
signal = {signal}

[search]
n_trials = {n_trials}
sampler = "tpe"
seed = 0
metrics = {metrics}
objective = "argos"
repetitions = {repetitions}
n_startup_trials = 2

[search.fixed.HGB]
n_ensemble = {n_ensemble}
{hgb_fixed}

# max_iter is searched, so it is narrowed here (a [search.fixed] value would be
# overridden by the searched one); keeps every trial about equally long.
[search.space.HGB]
max_iter = {{ type = "int", low = 25, high = 35 }}
{hgb_space}

[final]
n_runs = 1
statistics = {statistics}
defaults = {defaults}

[slurm]
time = "{time}"
final_time = "10"
cpus_per_task = 1
mem = "1G"
array_size = {array_size}
array_parallel = {array_parallel}
signal = "{signal_spec}"
extra = {extra}
{slurm_more}
"""

SYNTHETIC = 'source = "synthetic"\nscale = 0.03\nseed = 0\nbackground_model = "truth"'


def toml_list(values: list[Any]) -> str:
    """A TOML inline array of strings / numbers."""
    return json.dumps(values)


def write_campaign(folder: Path, prefix: str, storage: str, **fields: Any) -> Path:
    """Write a tiny HGB/IAD campaign with a unique name into ``folder``; return its path.

    ``fields`` override the defaults below (lists are written as TOML arrays).
    """
    values: dict[str, Any] = {
        "name": f"{prefix}-{uuid.uuid4().hex[:8]}",
        "storage": storage,
        "data": SYNTHETIC,
        "signal": [1000],
        "n_trials": 4,
        "metrics": ["argos", "bce"],
        "repetitions": 2,
        "n_ensemble": 1,
        "statistics": ["half", "full"],
        "defaults": True,
        "time": "10",
        "array_size": 2,
        "array_parallel": 2,
        "signal_spec": "USR1@90",
        "extra": [],
        "hgb_fixed": "",  # extra TOML lines of [search.fixed.HGB] / [search.space.HGB]
        "hgb_space": "",
        "slurm_more": "",  # extra TOML lines of [slurm] (e.g. proxy = "job")
    }
    values.update(fields)
    for key in ("signal", "metrics", "statistics", "extra"):
        values[key] = toml_list(values[key])
    values["defaults"] = "true" if values["defaults"] else "false"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "campaign.toml"
    path.write_text(_BASE.format(**values))
    return path


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.5,
    show: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            detail = show() if show is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{detail}")
        time.sleep(interval)


@dataclass
class Chain:
    """A campaign launched with ``hpo launch``."""

    toml: Path
    name: str
    storage: str
    run_dir: Path
    jobs: dict[str, str] = field(default_factory=dict)
    launch_output: str = ""
    _storage: Any = field(default=None, repr=False)

    @classmethod
    def launch(cls, toml: Path, storage: str, gate: Gate | None = None) -> Chain:
        """``python -m hpo launch TOML`` (its jobs holding at ``gate``, if given); fails the
        test with its output if it fails."""
        done = hpo("launch", str(toml), env=None if gate is None else gate.env())
        assert done.returncode == 0, f"hpo launch failed:\n{done.stdout}\n{done.stderr}"
        run_dir = toml.parent / "run"
        jobs = json.loads((run_dir / "slurm" / "jobs.json").read_text())["jobs"]
        name = toml.read_text().split('name = "', 1)[1].split('"', 1)[0]
        return cls(toml, name, storage, run_dir, jobs, done.stdout)

    # ---------------------------------------------------------------- SLURM
    def states(self) -> dict[str, str]:
        """``{job or array task id: state}`` for every job of the chain."""
        return job_states(self.jobs.values())

    def state_of(self, name: str, states: dict[str, str] | None = None) -> dict[str, str]:
        """States of one job of the chain (an array gives one entry per task)."""
        job = self.jobs[name]
        states = self.states() if states is None else states
        return {k: v for k, v in states.items() if k == job or k.startswith(f"{job}_")}

    def finished(self) -> bool:
        """True once every job (and every array task) is in a terminal state."""
        states = self.states()
        if any("[" in k for k in states):  # array tasks not yet started
            return False
        return all(self.state_of(n, states) for n in self.jobs) and all(
            s in TERMINAL_STATES for s in states.values()
        )

    def wait(self, timeout: float) -> dict[str, str]:
        """Wait until the whole chain has finished; return the final states."""
        wait_for(self.finished, timeout=timeout, what=f"chain {self.name}", show=self.describe)
        return self.states()

    def log(self, name: str, task: int | None = None) -> str:
        """Text of a job's log (``task`` for the worker array)."""
        job = self.jobs[name]
        suffix = f"{job}_{task}" if task is not None else job
        path = self.run_dir / "slurm" / "logs" / f"{self.name}-{name}-{suffix}.out"
        return path.read_text() if path.exists() else ""

    def worker_id(self, task: int) -> str:
        """The label of the worker ids of array task ``task`` (an id: ``<label>@host-pid-x``)."""
        return f"slurm-{self.jobs['worker']}_{task}"

    def task_of(self, worker_id: str) -> int | None:
        """The array task whose worker had id ``worker_id`` (None: not one of this chain)."""
        label = worker_id.split("@", 1)[0]
        prefix = f"slurm-{self.jobs['worker']}_"
        return int(label[len(prefix) :]) if label.startswith(prefix) else None

    def held_trials(self, gate: Gate) -> dict[int, tuple[str, int]]:
        """``{array task: (study, trial number)}`` of the trials held at ``gate`` so far."""
        held = {}
        for name, record in gate.held().items():
            if record.get("slurm_task") is not None and "#" in name:
                study, number = name.rsplit("#", 1)
                held[int(record["slurm_task"])] = (study, int(number))
        return held

    def cancel_all(self) -> None:
        """scancel every job of the chain (cleanup; ignores errors)."""
        subprocess.run(["scancel", *self.jobs.values()], capture_output=True, check=False)

    # ---------------------------------------------------------------- studies
    def studies(self) -> dict[str, optuna.Study]:
        """``{study name: study}`` of the campaign (fresh connection each call)."""
        from storage.urls import open_storage

        if self._storage is None:  # one engine (pool_pre_ping survives a server restart)
            self._storage = open_storage(self.storage)
        names = [
            n
            for n in optuna.get_all_study_names(storage=self._storage)
            if n.startswith(f"{self.name}.")
        ]
        return {n: optuna.load_study(study_name=n, storage=self._storage) for n in sorted(names)}

    def trials(self) -> dict[str, list[FrozenTrial]]:
        """Every trial of every study of the campaign."""
        return {n: s.get_trials(deepcopy=False) for n, s in self.studies().items()}

    def describe(self) -> str:
        """Job states, trial counts and the tails of the logs, for failure messages."""
        lines = [f"chain {self.name}: jobs {self.jobs}"]
        try:
            lines.append(f"states {self.states()}")
            for name, trials in self.trials().items():
                counts = {s.name: 0 for s in TrialState}
                for t in trials:
                    counts[t.state.name] += 1
                lines.append(f"{name}: {counts}")
        except Exception as exc:  # the description must not hide the real failure
            lines.append(f"(could not read state: {exc})")
        for path in sorted((self.run_dir / "slurm" / "logs").glob("*.out")):
            lines += [f"--- {path.name}", *path.read_text().splitlines()[-8:]]
        return "\n".join(lines)


def running_trials(chain: Chain) -> list[tuple[str, FrozenTrial]]:
    """RUNNING trials of the campaign that carry a worker lease."""
    return [
        (name, t)
        for name, trials in chain.trials().items()
        for t in trials
        if t.state == TrialState.RUNNING and LEASE_WORKER in t.system_attrs
    ]


def requeue_target(trials: list[FrozenTrial], number: int) -> FrozenTrial | None:
    """Follow re-queues from trial ``number`` to the trial that finally ran its params."""
    live = [t for t in trials if t.system_attrs.get(FAIL_REASON) != WITHDRAWN]
    by_source = {t.user_attrs.get(REQUEUED_FROM): t for t in live}
    current = by_source.get(number)
    seen = set()
    while current is not None and current.state != TrialState.COMPLETE:
        if current.number in seen or FAIL_REASON not in current.system_attrs:
            return current  # not re-queued again: the chain ends here, unfinished
        seen.add(current.number)
        current = by_source.get(current.number)
    return current
