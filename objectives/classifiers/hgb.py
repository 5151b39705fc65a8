"""Histogram gradient boosting: an ensemble of scikit-learn HGB classifiers with different seeds.

Reference setting (arXiv:2511.14832): learning_rate 0.1, max_iter 200,
max_leaf_nodes 31, max_depth None, l2_regularization 0, max_bins 255, early
stopping on a 50 % internal validation split, classes balanced by weights;
the prediction is the mean of 50 models with different seeds.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from objectives.classifiers._params import RULES, Estimator, check_inputs
from objectives.metrics import balanced_weights
from objectives.safepoints import safe_point

__all__ = ["HGBEnsemble"]

_D = {k: r.default for k, r in RULES["HGB"].items()}


class HGBEnsemble(Estimator):
    """Mean of ``n_ensemble`` HistGradientBoostingClassifiers trained with different seeds.

    Every member sees the whole training set with class-balanced weights
    (``sample_weight`` kept within each class); members differ by the seed of
    the early-stopping split and of the binning subsample. ``n_jobs`` caps
    the OpenMP threads of each fit.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(400, 2)); y = (X[:, 0] > 0).astype(int)
        >>> clf = HGBEnsemble(max_iter=20, n_ensemble=2, seed=0).fit(X, y)
        >>> clf.predict_proba(X).shape
        (400,)
    """

    name = "HGB"
    selection_dependent = False

    def __init__(
        self,
        *,
        learning_rate: float = _D["learning_rate"],
        max_iter: int = _D["max_iter"],
        max_leaf_nodes: int | None = _D["max_leaf_nodes"],
        max_depth: int | None = _D["max_depth"],
        min_samples_leaf: int = _D["min_samples_leaf"],
        l2_regularization: float = _D["l2_regularization"],
        max_bins: int = _D["max_bins"],
        early_stopping: bool = _D["early_stopping"],
        validation_fraction: float = _D["validation_fraction"],
        n_iter_no_change: int = _D["n_iter_no_change"],
        n_ensemble: int = _D["n_ensemble"],
        seed: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_bins = max_bins
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_ensemble = n_ensemble
        self.seed = seed
        self.n_jobs = n_jobs

    def _member(self, hp: dict, seed: int) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            learning_rate=hp["learning_rate"],
            max_iter=hp["max_iter"],
            max_leaf_nodes=hp["max_leaf_nodes"],
            max_depth=hp["max_depth"],
            min_samples_leaf=hp["min_samples_leaf"],
            l2_regularization=hp["l2_regularization"],
            max_bins=hp["max_bins"],
            early_stopping=hp["early_stopping"],
            validation_fraction=hp["validation_fraction"],
            n_iter_no_change=hp["n_iter_no_change"],
            random_state=seed,
        )

    def fit(self, X, y, sample_weight=None, validation=None) -> Self:
        """Train the ensemble; ``validation`` is accepted for interface parity and unused."""
        hp = self._hyperparameters()
        X, y, sample_weight = check_inputs(X, y, sample_weight)
        w = balanced_weights(y, sample_weight)
        if w.size and np.all(w == w[0]):
            w = None  # uniform: scikit-learn's faster unweighted path fits the same model
        members = []
        with threadpool_limits(limits=self.n_jobs, user_api="openmp"):
            for s in self._member_seeds(hp["n_ensemble"]):
                members.append(self._member(hp, s).fit(X, y, sample_weight=w))
                safe_point()  # a stop signal ends the fit between members
        self.estimators_ = members
        self.n_iter_ = np.array([m.n_iter_ for m in members])
        return self

    def predict_proba(self, X, selection: str = "argos") -> np.ndarray:
        """Mean P(class 1) over the ensemble; ``selection`` is ignored (one ensemble)."""
        X = check_inputs(X, where="predict_proba")
        self._check_fitted("estimators_")
        total = np.zeros(X.shape[0])
        with threadpool_limits(limits=self.n_jobs, user_api="openmp"):
            for m in self.estimators_:
                total += m.predict_proba(X)[:, 1]
        return total / len(self.estimators_)
