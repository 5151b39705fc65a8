"""Hyperparameter rules as data, and the one validator that reads them.

Every classifier's hyperparameters (name, default, allowed values) live in
``RULES``; ``validate`` turns a user's plain dict (JSON round-trippable:
ints, floats, strings, lists, null) into a complete, normalised dict or
raises ``HyperparameterError`` with one message shape, e.g.
``HGB hyperparameter 'max_iter': must be an integer in [1, 10000], got 0``.

Defaults follow the reference implementation of arXiv:2511.14832.
Importing this module loads neither torch nor scikit-learn.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from objectives.errors import HyperparameterError
from objectives.hyperparameters import Rule, defaults_of
from objectives.hyperparameters import float_rule as _float
from objectives.hyperparameters import int_rule as _int
from objectives.hyperparameters import validate as _validate

__all__ = [
    "CLASSIFIERS",
    "RULES",
    "SEARCH_OVERRIDES",
    "Estimator",
    "Rule",
    "canonical_name",
    "check_inputs",
    "defaults",
    "validate",
]

CLASSIFIERS = ("HGB", "AdaBoost", "NN")

RULES: dict[str, dict[str, Rule]] = {
    "HGB": {
        "learning_rate": _float(0.1, 0.0, 10.0, open_low=True),
        "max_iter": _int(200, 1, 10000),
        "max_leaf_nodes": _int(31, 2, 100000, nullable=True),
        "max_depth": _int(None, 1, 1000, nullable=True),
        "min_samples_leaf": _int(20, 1, 1000000),
        "l2_regularization": _float(0.0, 0.0),
        "max_bins": _int(255, 2, 255),
        "early_stopping": Rule("bool", True),
        "validation_fraction": _float(0.5, 0.0, 1.0, open_low=True, open_high=True),
        "n_iter_no_change": _int(10, 1, 10000),
        "n_ensemble": _int(50, 1, 1000),
    },
    "AdaBoost": {
        "max_depth": _int(None, 1, 1000, nullable=True),
        "max_leaf_nodes": _int(31, 2, 100000, nullable=True),
        "min_samples_leaf": _int(20, 1, 1000000),
        "learning_rate": _float(1.0, 0.0, 100.0, open_low=True),
        "n_estimators": _int(50, 1, 10000),
        "n_ensemble": _int(10, 1, 1000),
    },
    "NN": {
        "layers": Rule("int_list", [64, 64, 64], 1, 4096, length=(1, 16)),
        "lr": _float(1e-3, 0.0, 1.0, open_low=True),
        "batch_size": _int(128, 1, 1000000),
        "dropout": _float(0.0, 0.0, 1.0, open_high=True),
        "weight_decay": _float(0.0, 0.0),
        "beta1": _float(0.9, 0.0, 1.0, open_high=True),
        "epochs": _int(100, 1, 10000),
        "n_best_epochs": _int(10, 1, 10000),
    },
}

#: Settings that differ between the search (``final=False``) and the final runs: the
#: NN trains 20 epochs in the search and 100 in the final runs, as in the paper.
SEARCH_OVERRIDES: dict[str, dict[str, Any]] = {"NN": {"epochs": 20}}


def canonical_name(name: str) -> str:
    """``"hgb"`` -> ``"HGB"``; unknown names raise ``HyperparameterError``."""
    for canon in CLASSIFIERS:
        if isinstance(name, str) and name.lower() == canon.lower():
            return canon
    raise HyperparameterError(
        f"unknown classifier {name!r}; valid classifiers are {', '.join(CLASSIFIERS)}"
    )


def defaults(name: str, *, final: bool = False) -> dict[str, Any]:
    """A fresh dict of default hyperparameters (search setting unless ``final``)."""
    canon = canonical_name(name)
    hp = defaults_of(RULES[canon])
    if not final:
        hp.update(copy.deepcopy(SEARCH_OVERRIDES.get(canon, {})))
    return hp


def validate(name: str, hp: dict[str, Any] | None, *, final: bool = False) -> dict[str, Any]:
    """The complete, normalised hyperparameters: ``hp`` over the defaults.

    Raises ``HyperparameterError`` naming the parameter, the rule and the value
    for an unknown name or a value out of range.
    """
    canon = canonical_name(name)
    return _validate(canon, RULES[canon], hp, defaults(canon, final=final))


class Estimator:
    """Shared plumbing: parameters, input checks and per-member seeds.

    Subclasses set ``name`` (a key of ``RULES``) and store every hyperparameter
    as an attribute of that name in ``__init__``, plus ``seed`` and ``n_jobs``.
    """

    name: str = ""
    selection_dependent: bool = False

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters (JSON-friendly) plus ``seed`` and ``n_jobs``."""
        hp = {k: copy.deepcopy(getattr(self, k)) for k in RULES[self.name]}
        return {**hp, "seed": self.seed, "n_jobs": self.n_jobs}

    def _hyperparameters(self) -> dict[str, Any]:
        return validate(self.name, {k: getattr(self, k) for k in RULES[self.name]}, final=True)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self, attribute: str) -> None:
        if not hasattr(self, attribute):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def _member_seeds(self, n: int) -> list[int]:
        """``n`` independent 32-bit seeds derived from ``self.seed``."""
        return [int(s) for s in np.random.SeedSequence(self.seed).generate_state(n)]


def check_inputs(X, y=None, sample_weight=None, *, where: str = "fit"):
    """``X`` as a 2-D float array (no copy when already one), ``y`` as 0/1 ints, weights."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{where}: X must be a 2-D array (n_events, n_features), got {X.shape}")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if y is None:
        return X
    y = np.asarray(y).ravel()
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"{where}: X has {X.shape[0]} rows but y has {y.shape[0]}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{where}: y must be 0 or 1")
    y = y.astype(np.int64)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64).ravel()
        if sample_weight.shape != y.shape:
            raise ValueError(
                f"{where}: sample_weight has {sample_weight.size} entries, y has {y.size}"
            )
    return X, y, sample_weight
