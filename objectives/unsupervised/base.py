"""The interface of a trained unsupervised detector (a leaf: the methods implement it)."""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from objectives.unsupervised.arrays import EventArrays

__all__ = ["Detector"]


class Detector(abc.ABC):
    """A trained unsupervised detector."""

    #: "dSVDD", "DROCC", "DDD" or a baseline's name
    method: str
    #: label-free selection metric on the held-out background (lower is better);
    #: None for a score without a model (a one-variable cut)
    val_loss: float | None
    #: hyperparameters, seed, sizes, timings and per-method diagnostics (JSON-friendly)
    info: dict[str, Any]
    #: kinds of ``perturb.PERTURBATIONS`` it trained on (left out of its ``perturb_auc``)
    trained_on: tuple[str, ...] = ()

    @abc.abstractmethod
    def score(self, arrays: EventArrays) -> np.ndarray:
        """Anomaly scores ``(n,)`` float64, higher = more anomalous."""
