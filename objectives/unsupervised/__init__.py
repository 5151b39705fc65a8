"""Unsupervised anomaly detectors of seed 002: Deep SVDD, DROCC and DDD on MLP / ParT backbones.

Trained on background only, on plain event arrays (``EventArrays``: object
features, mask, event features; ``EventArrays.from_events`` reads the
DarkMachines event sets by duck typing). One entry point::

    det = fit("dSVDD", train, val, {"backbone": "ParT+pair"}, seed=0)
    scores = det.score(test)          # higher = more anomalous
    det.val_loss, det.info            # label-free selection metric, diagnostics

Modules, one concept each: ``arrays`` (EventArrays, column layout),
``params`` (hyperparameter rules as data), ``backbones`` (MLP, ParT),
``dsvdd``, ``drocc``, ``ddd`` (the methods), ``detector`` (``fit``,
``Detector``), ``metrics`` (AUC, signal efficiency at fixed background
efficiency), ``toy`` (a toy generator for tests). Importing this package
loads neither torch nor scikit-learn; ``fit`` does.

Example:
    >>> default_hyperparameters("DROCC")["gamma"]
    2.0
"""

from __future__ import annotations

from typing import Any

from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.detector import BACKBONES, METHODS, Detector, fit
from objectives.unsupervised.metrics import auc, challenge_row, signal_efficiency_at
from objectives.unsupervised.params import RULES, defaults, validate

__all__ = [
    "BACKBONES",
    "METHODS",
    "RULES",
    "Detector",
    "EventArrays",
    "auc",
    "challenge_row",
    "default_hyperparameters",
    "fit",
    "signal_efficiency_at",
    "validate_hyperparameters",
]


def default_hyperparameters(method: str) -> dict[str, Any]:
    """A fresh dict of the defaults of ``method`` ("dSVDD", "DROCC", "DDD"; any case)."""
    return defaults(method)


def validate_hyperparameters(method: str, hp: dict[str, Any] | None) -> dict[str, Any]:
    """``hp`` over the defaults, checked; raises ``HyperparameterError``.

    Call it when a campaign is loaded, so a bad value is rejected before any job runs.
    """
    return validate(method, hp)
