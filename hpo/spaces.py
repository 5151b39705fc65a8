"""Search spaces, defined once as data, equal to the reference study's.

Each entry is ``{"type": "int"|"float"|"categorical", ...}``. Integer ranges
of the reference are half-open (``int[2, 200)``); here ``high`` is inclusive
(199). ``10^U(-4, -0.1)`` is a log-uniform float in ``[1e-4, 10**-0.1]``.

A campaign may override entries (``[search.space.HGB]``) and fix
hyperparameters that are not searched (``[search.fixed.HGB]``, e.g. the
ensemble size). What differs between the search and the final runs (the NN's
20 vs 100 epochs, the flows' 30 vs published epochs) is the method's own
default, declared in the registry (``objectives.registry``).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = [
    "SEARCH_SPACES",
    "hyperparameters",
    "space_for",
    "suggest",
    "validate_fixed",
    "validate_space_overrides",
]

_LR = {"type": "float", "low": 1e-4, "high": 10**-0.1, "log": True}

SEARCH_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "HGB": {
        "learning_rate": _LR,
        "max_iter": {"type": "int", "low": 2, "high": 199},
        "max_leaf_nodes": {"type": "int", "low": 2, "high": 99},
        "max_depth": {"type": "int", "low": 2, "high": 14},
        "l2_regularization": {"type": "float", "low": 0.0, "high": 10.0},
        "max_bins": {"type": "int", "low": 31, "high": 254},
    },
    "AdaBoost": {
        "max_depth": {"type": "int", "low": 2, "high": 14},
        "max_leaf_nodes": {"type": "int", "low": 2, "high": 99},
        "min_samples_leaf": {"type": "int", "low": 1, "high": 99},
        "learning_rate": _LR,
        "n_estimators": {"type": "int", "low": 2, "high": 99},
    },
    "NN": {
        "lr": {"type": "categorical", "choices": [1e-2, 5e-3, 1e-3, 5e-4, 1e-4]},
        "batch_size": {"type": "categorical", "choices": [64, 128, 256, 512, 1024, 2048, 4096]},
        "dropout": {"type": "categorical", "choices": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]},
        "weight_decay": {"type": "categorical", "choices": [0.0, 1e-5, 1e-4, 1e-3, 1e-2]},
        "beta1": {"type": "categorical", "choices": [0.8, 0.9, 0.95, 0.99]},
    },
}

#: Spline-flow spaces of the density methods (no published space; ranges around
#: the R-ANODE slides' setting of 6 x 2 x 64, 8 bins, dropout 0.2, lr 3e-4).
_SPLINE_FLOW = {
    "lr": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
    "n_transforms": {"type": "int", "low": 2, "high": 8},
    "n_blocks": {"type": "int", "low": 1, "high": 3},
    "hidden": {"type": "categorical", "choices": [32, 64, 128]},
    "dropout": {"type": "categorical", "choices": [0.0, 0.1, 0.2, 0.3]},
    "n_bins": {"type": "categorical", "choices": [4, 8, 16]},
    "batch_size": {"type": "categorical", "choices": [128, 256, 512, 1024]},
}
SEARCH_SPACES["ANODE"] = _SPLINE_FLOW
SEARCH_SPACES["R-ANODE"] = _SPLINE_FLOW
#: The CATHODE background MAF, around the published 15 x 128, lr 1e-4, batch 256.
SEARCH_SPACES["BackgroundFlow"] = {
    "n_blocks": {"type": "int", "low": 4, "high": 20},
    "hidden": {"type": "categorical", "choices": [32, 64, 128, 256]},
    "lr": {"type": "float", "low": 3e-5, "high": 3e-3, "log": True},
    "batch_size": {"type": "categorical", "choices": [256, 512, 1024, 2048, 4096]},
}

#: The unsupervised detectors (seed 002; no published space: ranges around the
#: method papers' defaults). The backbone is a grid dimension, not searched; the
#: poster tunes nothing per signal, so these spaces feed the ensemble over trials.
_NET_LR = {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}
SEARCH_SPACES["dSVDD"] = {
    "lr": _NET_LR,
    "batch_size": {"type": "categorical", "choices": [128, 256, 512]},
    "weight_decay": {"type": "categorical", "choices": [0.0, 1e-6, 1e-5, 1e-4]},
}
#: DROCC: the shell radius in units of the data's scale (the median nearest-neighbour
#: distance of the training background), its width and weight.
SEARCH_SPACES["DROCC"] = {
    "lr": _NET_LR,
    "radius": {"type": "float", "low": 0.25, "high": 4.0, "log": True},
    "gamma": {"type": "categorical", "choices": [1.5, 2.0, 3.0]},
    "mu": {"type": "float", "low": 0.25, "high": 2.0, "log": True},
}
#: DDD: one distortion point per trial (its own scan; the band keeps the good ones that
#: invert no generic anomaly); both multiplicity edits on (a one-sided one inverts).
SEARCH_SPACES["DDD"] = {
    "sigmas": {"type": "float", "low": 0.02, "high": 1.0, "log": True},
    "p_drops": {"type": "float", "low": 0.1, "high": 0.6},
    "p_adds": {"type": "float", "low": 0.1, "high": 0.6},
    "lr": _NET_LR,
}

#: The family's baselines (issue 25 §1). Isolation Forest: trees and events per tree
#: around scikit-learn's 100 x 256, and the share of features per tree.
SEARCH_SPACES["IsolationForest"] = {
    "n_estimators": {"type": "categorical", "choices": [100, 200, 400]},
    "max_samples": {"type": "int", "low": 64, "high": 4096, "log": True},
    "max_features": {"type": "float", "low": 0.5, "high": 1.0},
}
#: FlowDensity: the MAF's size and learning rate around its defaults (5 x 64, 1e-3).
SEARCH_SPACES["FlowDensity"] = {
    "n_blocks": {"type": "int", "low": 2, "high": 10},
    "hidden": {"type": "categorical", "choices": [32, 64, 128]},
    "lr": {"type": "float", "low": 3e-4, "high": 3e-3, "log": True},
}
#: Without hyperparameters: nothing to search (a campaign evaluates them once).
SEARCH_SPACES.update({name: {} for name in ("MET", "HT", "NObjects", "BkgDensity")})

_KEYS = {
    "int": {"type", "low", "high", "step", "log"},
    "float": {"type", "low", "high", "step", "log"},
    "categorical": {"type", "choices"},
}


def _check_entry(name: str, entry: Any) -> None:
    if not isinstance(entry, dict) or entry.get("type") not in _KEYS:
        raise ValueError(f"{name}: must be a table with type = 'int', 'float' or 'categorical'")
    kind = entry["type"]
    extra = set(entry) - _KEYS[kind]
    if extra:
        raise ValueError(f"{name}: unknown key {sorted(extra)[0]!r} for type {kind!r}")
    if kind == "categorical":
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{name}: choices must be a non-empty list")
        return
    low, high = entry.get("low"), entry.get("high")
    num = (int,) if kind == "int" else (int, float)
    if not (isinstance(low, num) and isinstance(high, num)) or isinstance(low, bool):
        raise ValueError(f"{name}: low and high must be {kind} numbers")
    if low > high:
        raise ValueError(f"{name}: low must be <= high, got {low} > {high}")
    if entry.get("log") and low <= 0:
        raise ValueError(f"{name}: a log scale needs low > 0, got {low}")


def validate_space_overrides(classifier: str, overrides: dict[str, Any]) -> None:
    """Check ``[search.space.<CLF>]`` entries; raise ValueError naming the entry."""
    from objectives.registry import get_method

    known = set(get_method(classifier).default_hyperparameters())
    for name, entry in overrides.items():
        if name not in known:
            raise ValueError(
                f"{name}: not a {classifier} hyperparameter; valid: " + ", ".join(sorted(known))
            )
        _check_entry(name, entry)


def validate_fixed(classifier: str, fixed: dict[str, Any]) -> None:
    """Check ``[search.fixed.<CLF>]`` against the method's own parameter rules."""
    from objectives.errors import HyperparameterError
    from objectives.registry import get_method

    try:
        get_method(classifier).validate(fixed)
    except HyperparameterError as exc:
        raise ValueError(str(exc)) from None


def space_for(
    classifier: str,
    overrides: dict[str, Any] | None = None,
    fixed: dict[str, Any] | None = None,
) -> dict[str, dict]:
    """The search space of a classifier with the campaign's overrides applied.

    A hyperparameter the campaign fixes (``[search.fixed.<CLF>]``) is not searched.
    """
    space = copy.deepcopy(SEARCH_SPACES[classifier])
    space.update(copy.deepcopy(overrides or {}))
    for name in fixed or {}:
        space.pop(name, None)
    return space


def suggest(trial: Any, space: dict[str, dict]) -> dict[str, Any]:
    """Draw one hyperparameter set from ``space`` through an Optuna trial."""
    params: dict[str, Any] = {}
    for name, e in space.items():
        if e["type"] == "int":
            params[name] = trial.suggest_int(
                name, e["low"], e["high"], step=e.get("step", 1), log=e.get("log", False)
            )
        elif e["type"] == "float":
            params[name] = trial.suggest_float(
                name, e["low"], e["high"], step=e.get("step"), log=e.get("log", False)
            )
        else:
            params[name] = trial.suggest_categorical(name, e["choices"])
    return params


def hyperparameters(
    classifier: str,
    params: dict[str, Any],
    fixed: dict[str, Any] | None = None,
    *,
    final: bool = False,
) -> dict[str, Any]:
    """The full, checked hyperparameter dict a method trains with.

    The method's defaults for the search (or the final runs, with ``final``), then
    the campaign's fixed values, then the searched ``params``, through the method's
    validator (HyperparameterError for a value outside its rules).
    """
    from objectives.registry import get_method

    return get_method(classifier).validate({**(fixed or {}), **params}, final=final)
