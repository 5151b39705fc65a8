"""The estimator: the mean of ``n_ensemble`` LightGBM classifiers with different seeds.

scikit-learn's shape, which is all wsad-hpo asks of a classifier: ``fit(X, y,
sample_weight, validation)`` returns the estimator, ``predict_proba(X)`` has shape
``(n, 2)``. The weights wsad-hpo passes already give both classes the same total weight;
``validation`` (the held-out events, or None) is not used: those events are the ones
the label-free metrics score, so they must not steer the training.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LightGBMEnsemble", "make"]


class LightGBMEnsemble:
    """``n_ensemble`` LGBMClassifiers, seeds drawn from ``seed``, probabilities averaged."""

    def __init__(self, hp: dict, *, seed: int, n_jobs: int = 1) -> None:
        self.hp = dict(hp)
        self.seed = seed
        self.n_jobs = n_jobs

    def fit(self, X, y, sample_weight=None, validation=None):
        from lightgbm import LGBMClassifier

        hp = dict(self.hp)
        n = hp.pop("n_ensemble")
        seeds = np.random.SeedSequence(self.seed).generate_state(n)
        self.members_ = [
            LGBMClassifier(
                **hp,
                subsample_freq=1,  # bagging on every iteration (subsample < 1 draws)
                random_state=int(s),
                n_jobs=self.n_jobs,
                deterministic=True,
                force_row_wise=True,
                verbose=-1,
            ).fit(X, y, sample_weight=sample_weight)
            for s in seeds
        ]
        return self

    def predict_proba(self, X) -> np.ndarray:
        return np.mean([m.predict_proba(X) for m in self.members_], axis=0)


def make(hp: dict, *, seed: int, n_jobs: int = 1, device: str = "cpu") -> LightGBMEnsemble:
    """The factory wsad-hpo calls: checked hyperparameters in, an unfitted estimator out."""
    return LightGBMEnsemble(hp, seed=seed, n_jobs=n_jobs)
