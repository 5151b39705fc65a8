"""Worker ids: unique across processes and hosts.

An id is ``<label>@<host>-<pid>-<random>``: the label says what the worker is
(``local-0``, the SLURM array task ``slurm-<job>_<task>``), the rest makes it unique,
even for two ``hpo run`` on one campaign, a requeued SLURM task or a reused pid. Each
trial's lease records the id of the worker that ran it (``lease:worker``); the TPE
sampler is seeded from the campaign seed, the study and the id, so no two workers draw
the same parameters.
"""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["unique_worker_id", "worker_label"]


def worker_label() -> str:
    """What this process is: its SLURM array task or job, else ``worker``."""
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if job and task:
        return f"slurm-{job}_{task}"
    if os.environ.get("SLURM_JOB_ID"):
        return f"slurm-{os.environ['SLURM_JOB_ID']}"
    return "worker"


def unique_worker_id(label: str) -> str:
    """``label`` made unique: ``<label>@<host>-<pid>-<6 random hex digits>``."""
    return f"{label}@{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
