"""Interchangeable classifiers for weakly supervised training: HGB, AdaBoost and a torch MLP.

All three follow scikit-learn's estimator shape: ``fit(X, y, sample_weight,
validation)`` returns ``self``, fitted attributes end in ``_``, and
``predict_proba(X, selection)`` returns P(class 1) as a 1-D array. Classes
are balanced by weights. Tree ensembles ignore ``selection``; the MLP
averages the epochs that the selection metric ranks best
(``selection_dependent = True``).

Importing this package loads neither torch nor scikit-learn; they load in
``make_classifier``.

Example:
    >>> hp = default_hyperparameters("hgb")
    >>> hp["n_ensemble"], hp["max_iter"]
    (50, 200)
    >>> clf = make_classifier("HGB", {"n_ensemble": 2, "max_iter": 10}, seed=0)
    >>> clf.selection_dependent
    False
"""

from __future__ import annotations

from typing import Any, Protocol, Self

import numpy as np

from objectives.classifiers._params import (
    CLASSIFIERS,
    RULES,
    canonical_name,
)
from objectives.classifiers._params import defaults as _defaults
from objectives.classifiers._params import validate as _validate

__all__ = [
    "CLASSIFIERS",
    "RULES",
    "Classifier",
    "canonical_name",
    "default_hyperparameters",
    "make_classifier",
    "validate_hyperparameters",
]


class Classifier(Protocol):
    """What every classifier offers."""

    selection_dependent: bool

    def fit(self, X, y, sample_weight=None, validation=None) -> Self: ...

    def predict_proba(self, X, selection: str = "argos") -> np.ndarray: ...


def default_hyperparameters(name: str, *, final: bool = False) -> dict[str, Any]:
    """A fresh dict of the reference defaults; NN ``epochs`` is 20 unless ``final`` (100)."""
    return _defaults(name, final=final)


def validate_hyperparameters(name: str, hp: dict[str, Any] | None) -> dict[str, Any]:
    """``hp`` over the search defaults, checked; raises ``HyperparameterError``.

    Call it when a campaign is loaded, so a bad value is rejected before any job runs.
    """
    return _validate(name, hp)


def make_classifier(
    name: str,
    hp: dict[str, Any],
    *,
    seed: int,
    n_jobs: int = 1,
    device: str = "cpu",
    argos_min_template: int = 0,
) -> Classifier:
    """A classifier ``name`` ("HGB", "AdaBoost", "NN"; any case) with hyperparameters ``hp``.

    Missing entries take ``default_hyperparameters(name)`` (the search setting:
    final runs pass ``default_hyperparameters(name, final=True)`` merged with
    their picks). ``seed`` fixes every random choice; ``n_jobs`` is the number
    of CPU threads the fit may use; ``device`` where the NN trains (trees: the CPU);
    ``argos_min_template`` the floor of the ARGOS that ranks the NN's epochs.
    """
    canon = canonical_name(name)
    params = _validate(canon, hp)
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an integer >= 1, got {n_jobs!r}")
    if canon == "HGB":
        from objectives.classifiers.hgb import HGBEnsemble as cls
    elif canon == "AdaBoost":
        from objectives.classifiers.adaboost import AdaBoostEnsemble as cls
    else:
        from objectives.classifiers.mlp import MLPClassifier

        return MLPClassifier(
            **params,
            seed=int(seed),
            n_jobs=n_jobs,
            device=device,
            argos_min_template=argos_min_template,
        )
    return cls(**params, seed=int(seed), n_jobs=n_jobs)
