"""Storage of wsad-hpo: storage URLs, leases of running trials, artifacts.

Knows nothing about physics. Importing it stays light (Optuna only).
"""

from storage.errors import StorageError
from storage.leases import Lease, recover_stale_trials, requeue
from storage.postgres import upgrade
from storage.urls import open_storage, redact

__all__ = [
    "Lease",
    "StorageError",
    "open_storage",
    "recover_stale_trials",
    "redact",
    "requeue",
    "upgrade",
]
