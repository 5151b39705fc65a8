"""Every method a campaign cell can run, with its hyperparameters and selection metrics.

Two families share one interface (``objectives.evaluate.evaluate``):

* **classifiers** (HGB, AdaBoost, NN) trained in a weakly supervised *mode*
  (IAD, CWoLa, CATHODE); label-free selection metrics ARGOS and BCE;
* **density methods**, which run in the signal region against the cached
  CATHODE background flow: ``ANODE`` (score p_data / p_bkg), ``R-ANODE``
  (score log p_S - log p_bkg, signal fraction ``w`` learned or fixed) and
  ``BackgroundFlow`` (the background model itself, optimisable on its own).
  Their cells have mode ``"density"``. Their one label-free selection metric
  is ``val_loss``: the mean negative log-likelihood (nats per event, lower is
  better) on held-out data -- the SR data for ANODE / R-ANODE (of the data
  model / of the signal-plus-background mixture), the sidebands for
  BackgroundFlow. ``max_sic`` is the truth oracle as for classifiers
  (BackgroundFlow has no anomaly score, its max SIC is NaN).

Importing this module loads neither torch nor scikit-learn.
"""

from __future__ import annotations

from typing import Any

from objectives.classifiers import CLASSIFIERS
from objectives.classifiers import default_hyperparameters as _classifier_defaults
from objectives.classifiers import validate_hyperparameters as _validate_classifier
from objectives.errors import HyperparameterError
from objectives.metrics import DIRECTIONS as _CLASSIFIER_DIRECTIONS
from objectives.metrics import SELECTION_METRICS

__all__ = [
    "CLASSIFIERS",
    "DENSITY_METHODS",
    "DENSITY_MODE",
    "DIRECTIONS",
    "METHODS",
    "VAL_LOSS",
    "default_hyperparameters",
    "is_density",
    "selection_metrics",
    "validate_hyperparameters",
]

DENSITY_METHODS = ("ANODE", "R-ANODE", "BackgroundFlow")
METHODS = CLASSIFIERS + DENSITY_METHODS
#: The mode of every density-method cell.
DENSITY_MODE = "density"
#: The label-free selection metric of the density methods.
VAL_LOSS = "val_loss"
DIRECTIONS = {**_CLASSIFIER_DIRECTIONS, VAL_LOSS: "minimize"}

#: Epochs of the flows during a search (final runs use the published numbers).
SEARCH_EPOCHS = 30


def is_density(method: str) -> bool:
    """True for ANODE, R-ANODE and BackgroundFlow."""
    return method in DENSITY_METHODS


def selection_metrics(method: str) -> tuple[str, ...]:
    """The metrics a method's evaluation reports (label-free ones first, then the oracle)."""
    return (VAL_LOSS, "max_sic") if is_density(method) else SELECTION_METRICS


def _flow_defaults(method: str) -> dict[str, Any]:
    from objectives.flows.hyperparameters import (
        ANODE_DEFAULTS,
        BACKGROUND_DEFAULTS,
        RANODE_DEFAULTS,
    )

    if method == "BackgroundFlow":
        return dict(BACKGROUND_DEFAULTS)
    if method == "ANODE":
        return dict(ANODE_DEFAULTS)
    return {**RANODE_DEFAULTS, "w": None}  # None: w is learned


def default_hyperparameters(method: str, *, final: bool = False) -> dict[str, Any]:
    """A fresh dict of defaults; the search setting unless ``final`` (NN and flow epochs)."""
    if not is_density(method):
        return _classifier_defaults(method, final=final)
    hp = _flow_defaults(method)
    if not final:
        hp["epochs"] = min(hp["epochs"], SEARCH_EPOCHS)
        hp["n_keep"] = min(hp["n_keep"], hp["epochs"])
    return hp


def validate_hyperparameters(method: str, hp: dict[str, Any] | None) -> dict[str, Any]:
    """``hp`` over the search defaults, checked; raises ``HyperparameterError``."""
    if not is_density(method):
        return _validate_classifier(method, hp)
    from objectives.flows.hyperparameters import validate

    hp = dict(hp or {})
    w = hp.pop("w", None) if method == "R-ANODE" else None
    if w is not None and not (isinstance(w, int | float) and not isinstance(w, bool) and 0 < w < 1):
        raise HyperparameterError(
            f"R-ANODE hyperparameter 'w': must be a number in (0, 1) or null, got {w!r}"
        )
    defaults = {k: v for k, v in default_hyperparameters(method).items() if k != "w"}
    if "n_keep" not in hp and isinstance(hp.get("epochs"), int):
        hp["n_keep"] = min(defaults["n_keep"], hp["epochs"])  # fewer epochs than kept
    out = validate(hp, defaults, method)
    if method == "R-ANODE":
        out["w"] = None if w is None else float(w)
    return out
