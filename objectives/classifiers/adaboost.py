"""AdaBoost over decision trees: an ensemble of boosted models, each on a random half.

Reference setting (arXiv:2511.14832): AdaBoostClassifier(estimator=
DecisionTreeClassifier(max_depth=None, max_leaf_nodes=31, min_samples_leaf=20,
class_weight="balanced")), learning_rate 1.0, n_estimators 50; the prediction
is the mean of 10 such models, each trained on a random half of the training set.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from sklearn.ensemble import AdaBoostClassifier
from sklearn.tree import DecisionTreeClassifier

from objectives.classifiers._params import RULES, Estimator, check_inputs
from objectives.metrics import balanced_weights
from objectives.safepoints import safe_point

__all__ = ["AdaBoostEnsemble"]

_D = {k: r.default for k, r in RULES["AdaBoost"].items()}


class AdaBoostEnsemble(Estimator):
    """Mean of ``n_ensemble`` AdaBoost models, each fitted on a random half of the events.

    Classes are balanced by the sample weights the boosting itself uses (both
    classes the same total weight; ``sample_weight`` acts within each class), so
    the trees, which the reference balances with ``class_weight="balanced"``,
    and AdaBoost's error of each tree see the same balance. Balancing only the
    trees (as class_weight does) while AdaBoost weighs events by count makes a
    weak first tree "worse than random" at S/B ~ 1 % and the fit fails. The halves and every
    tree's random state derive from ``seed``. Tree fits are single-threaded in
    scikit-learn, so ``n_jobs`` is recorded but does not change the fit.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(400, 2)); y = (X[:, 0] > 0).astype(int)
        >>> clf = AdaBoostEnsemble(n_estimators=5, n_ensemble=2, seed=0).fit(X, y)
        >>> clf.predict_proba(X).shape
        (400,)
    """

    name = "AdaBoost"
    selection_dependent = False

    def __init__(
        self,
        *,
        max_depth: int | None = _D["max_depth"],
        max_leaf_nodes: int | None = _D["max_leaf_nodes"],
        min_samples_leaf: int = _D["min_samples_leaf"],
        learning_rate: float = _D["learning_rate"],
        n_estimators: int = _D["n_estimators"],
        n_ensemble: int = _D["n_ensemble"],
        seed: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.max_depth = max_depth
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.n_ensemble = n_ensemble
        self.seed = seed
        self.n_jobs = n_jobs

    def _member(self, hp: dict, seed: int) -> AdaBoostClassifier:
        tree = DecisionTreeClassifier(
            max_depth=hp["max_depth"],
            max_leaf_nodes=hp["max_leaf_nodes"],
            min_samples_leaf=hp["min_samples_leaf"],
        )
        return AdaBoostClassifier(
            estimator=tree,
            learning_rate=hp["learning_rate"],
            n_estimators=hp["n_estimators"],
            random_state=seed,
        )

    def fit(self, X, y, sample_weight=None, validation=None) -> Self:
        """Train the ensemble; ``validation`` is accepted for interface parity and unused."""
        hp = self._hyperparameters()
        X, y, sample_weight = check_inputs(X, y, sample_weight)
        seeds = self._member_seeds(hp["n_ensemble"] + 1)
        rng = np.random.default_rng(seeds[-1])
        n, half = X.shape[0], max(X.shape[0] // 2, 1)
        members = []
        for s in seeds[:-1]:
            idx = np.sort(rng.permutation(n)[:half])
            wi = balanced_weights(y[idx], None if sample_weight is None else sample_weight[idx])
            members.append(self._member(hp, s).fit(X[idx], y[idx], sample_weight=wi))
            safe_point()  # a stop signal ends the fit between members
        self.estimators_ = members
        return self

    def predict_proba(self, X, selection: str = "argos") -> np.ndarray:
        """Mean P(class 1) over the ensemble; ``selection`` is ignored (one ensemble)."""
        X = check_inputs(X, where="predict_proba")
        self._check_fitted("estimators_")
        total = np.zeros(X.shape[0])
        for m in self.estimators_:
            total += m.predict_proba(X)[:, 1]
        return total / len(self.estimators_)
