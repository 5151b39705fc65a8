"""The unsupervised family's baselines: what to beat, and the signal-agnostic limit.

Every detector of the family is compared with the simple things a physicist
tries first, trained on the same background and scored on the same test set:

* ``IsolationForest`` (scikit-learn, Liu, Ting & Zhou 2008) on the ten event
  features of :mod:`~objectives.unsupervised.event_features`; score
  ``-score_samples`` (higher = more anomalous); see
  :mod:`~objectives.unsupervised.isolation_forest`;
* ``FlowDensity``: ``-log p`` of an affine MAF (the CATHODE background flow of
  :mod:`objectives.flows`, without its mjj condition) trained on those features;
  see :mod:`~objectives.unsupervised.flow_density`;
* ``MET``, ``HT``, ``NObjects``: one-variable cuts, the variable itself as the
  score; no hyperparameters and no training (a campaign evaluates them once);
* ``BkgDensity`` (synthetic DarkMachines set only): ``-log p_bkg`` with the
  generator's exact background density, the optimum against a signal spread
  over the feature space: the yardstick of a detector that must not know the
  signal (:mod:`~objectives.unsupervised.bkg_density`). A signal on which it
  reaches an AUC below :data:`FINDABLE_AUC` lies in the background's bulk: out
  of reach of any signal-agnostic detector. (The exact likelihood ratio knows
  the signal: it bounds supervised classifiers, not this family.)

Their cells have the one mode :data:`BASELINE_MODE` (no backbone). Label-free
metric ``val_loss`` (lower is better; held-out background): the Isolation
Forest's mean anomaly score, the flow's and the exact density's mean negative
log-likelihood; a cut has no model and no loss, so it reports only the truth.

Importing this module loads neither torch nor scikit-learn.

Example:
    >>> validate("IsolationForest", {"n_estimators": 50})["max_samples"]
    256
    >>> validate("MET", None)
    {}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from objectives.errors import HyperparameterError
from objectives.flows.hyperparameters import BACKGROUND_RULES
from objectives.hyperparameters import Rule, defaults_of, float_rule, int_rule
from objectives.hyperparameters import validate as _validate
from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.calibration import CALIBRATIONS
from objectives.unsupervised.params import ChoiceRule

__all__ = [
    "BASELINES",
    "BASELINE_MODE",
    "CUTS",
    "FINDABLE_AUC",
    "RULES",
    "SYNTHETIC_ONLY",
    "CutScore",
    "defaults",
    "fit_baseline",
    "validate",
]

#: The mode of every baseline cell (they have no backbone).
BASELINE_MODE = "baseline"
#: One-variable cuts: name -> what the score is.
CUTS = {
    "MET": "missing transverse energy",
    "HT": "scalar pT sum of jets and b-jets",
    "NObjects": "number of objects",
}
#: Every baseline, in registration order.
BASELINES = ("IsolationForest", "FlowDensity", *CUTS, "BkgDensity")
#: Baselines that need the synthetic generator's exact densities.
SYNTHETIC_ONLY = ("BkgDensity",)
#: Below this AUC of ``BkgDensity`` a signal lies in the background's bulk: no detector
#: that must not know the signal can be expected to find it. 0.7 is the lower edge of
#: the AUC band the poster's DDD keeps, and the limit target (a) of issue 25 uses.
FINDABLE_AUC = 0.7

#: The flow of FlowDensity: CATHODE's MAF rules, defaults sized for ten features on a CPU.
_FLOW_DEFAULTS = {
    "n_blocks": 5,
    "hidden": 64,
    "lr": 1e-3,
    "batch_size": 256,
    "epochs": 30,
    "weight_decay": 1e-6,
    "n_keep": 5,
    "val_fraction": 0.2,
}

#: How a trained baseline's score is read (the detectors' rule: raw by default, or the
#: joint p-value within its object multiplicity and of the multiplicity).
_CALIBRATION = ChoiceRule("choice", "none", choices=CALIBRATIONS)

RULES: dict[str, dict[str, Rule]] = {
    # scikit-learn's defaults (Liu et al. 2008: 100 trees of 256 events each)
    "IsolationForest": {
        "n_estimators": int_rule(100, 1, 10_000),
        # events per tree; more than the training set: the training set
        "max_samples": int_rule(256, 2, 10**8),
        "max_features": float_rule(1.0, 0.0, 1.0, open_low=True),
        "calibration": _CALIBRATION,
    },
    "FlowDensity": {
        **{
            name: dataclasses.replace(rule, default=_FLOW_DEFAULTS[name])
            for name, rule in BACKGROUND_RULES.items()
        },
        "calibration": _CALIBRATION,
    },
    **{name: {} for name in CUTS},
    "BkgDensity": {},
}


def defaults(name: str, *, final: bool = False) -> dict[str, Any]:
    """A fresh dict of the defaults of baseline ``name`` (the same for search and final)."""
    return defaults_of(RULES[name])


def validate(name: str, hp: Mapping[str, Any] | None, *, final: bool = False) -> dict[str, Any]:
    """``hp`` over the defaults, checked (``HyperparameterError`` in the one message shape)."""
    rules = RULES[name]
    if not rules and isinstance(hp, Mapping) and hp:
        key = next(iter(hp))
        raise HyperparameterError(
            f"{name} hyperparameter {key!r}: unknown; {name} has no hyperparameters"
        )
    out = _validate(name, rules, hp)
    if name == "FlowDensity" and out["n_keep"] > out["epochs"]:
        raise HyperparameterError(
            f"{name} hyperparameter 'n_keep': must be <= epochs ({out['epochs']}), "
            f"got {out['n_keep']}"
        )
    return out


@dataclass(eq=False)
class CutScore(Detector):
    """A one-variable cut: the variable is the score (no model, no loss)."""

    method: str
    info: dict[str, Any] = field(default_factory=dict)
    val_loss: None = None

    def score(self, arrays: EventArrays) -> np.ndarray:
        from objectives.unsupervised.event_features import FEATURES, event_features, multiplicity

        if self.method == "NObjects":
            return multiplicity(arrays)
        column = FEATURES.index("log_met" if self.method == "MET" else "log_ht")
        return event_features(arrays)[:, column]


def fit_baseline(
    name: str,
    hp: Mapping[str, Any] | None,
    train: EventArrays,
    val: EventArrays,
    *,
    seed: int,
    n_threads: int = 1,
    device: str = "cpu",
    synthetic: bool = False,
    n_truncated: int = 0,
    cuts=None,
    cache_dir=None,
) -> Detector:
    """Baseline ``name`` trained with (validated) ``hp`` on background ``train``.

    ``val`` is the held-out background of its ``val_loss``. ``BkgDensity`` needs the
    synthetic generator's files (``synthetic``) read without truncated events
    (``n_truncated``), DataError otherwise; ``cuts`` (the channel's selection, None:
    none) select its reference events, cached in ``cache_dir``.
    """
    hp = validate(name, hp)
    if name in CUTS:
        return CutScore(name, {"method": name, "variable": CUTS[name]})
    if name in ("IsolationForest", "FlowDensity"):
        from objectives.unsupervised.calibration import calibrated

        model = {k: v for k, v in hp.items() if k != "calibration"}
        if name == "IsolationForest":
            from objectives.unsupervised.isolation_forest import fit_isolation_forest

            det = fit_isolation_forest(train, val, model, seed=seed, n_threads=n_threads)
        else:
            from objectives.unsupervised.flow_density import fit_flow_density

            det = fit_flow_density(train, val, model, seed=seed, n_threads=n_threads, device=device)
        return calibrated(det, val, hp["calibration"])
    from objectives.unsupervised.bkg_density import exact_background_density

    return exact_background_density(
        val, synthetic=synthetic, n_truncated=n_truncated, cuts=cuts, cache_dir=cache_dir
    )
