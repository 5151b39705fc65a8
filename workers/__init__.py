"""Workers of wsad-hpo: the trial loop, signal handling, local process pools.

Decides nothing about what a good hyperparameter is; imports ``storage`` only.
"""

from workers.signals import WorkerInterrupted, stop_requested
from workers.worker import WorkerError, WorkerSummary, run_worker

__all__ = ["WorkerError", "WorkerInterrupted", "WorkerSummary", "run_worker", "stop_requested"]
