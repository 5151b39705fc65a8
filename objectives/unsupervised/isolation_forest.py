"""The Isolation Forest baseline (Liu, Ting & Zhou, ICDM 2008; scikit-learn).

Random axis-aligned splits isolate a rare event in fewer splits than a common
one. Trained on the ten event features of
:mod:`~objectives.unsupervised.event_features` of the background (trees need
no standardisation); the anomaly score is ``-score_samples`` (scikit-learn's
``score_samples`` is higher for normal events). ``val_loss`` is the mean anomaly
score of the held-out background (lower: the forest finds the background
ordinary), a weak proxy like Deep SVDD's mean distance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.event_features import event_features

__all__ = ["IsolationForestScore", "fit_isolation_forest"]


@dataclass(eq=False)
class IsolationForestScore(Detector):
    """A fitted forest; score = -score_samples of the event features."""

    forest: IsolationForest
    val_loss: float
    info: dict[str, Any] = field(default_factory=dict)
    method: str = "IsolationForest"

    def score(self, arrays: EventArrays) -> np.ndarray:
        return -self.forest.score_samples(event_features(arrays)).astype(np.float64)


def fit_isolation_forest(
    train: EventArrays, val: EventArrays, hp: dict[str, Any], *, seed: int, n_threads: int = 1
) -> IsolationForestScore:
    """A forest of ``hp["n_estimators"]`` trees on ``train`` (background), seeded."""
    t0 = time.perf_counter()
    forest = IsolationForest(
        n_estimators=hp["n_estimators"],
        max_samples=min(hp["max_samples"], len(train)),
        max_features=hp["max_features"],
        random_state=int(seed) % 2**32,
        n_jobs=n_threads,
    ).fit(event_features(train))
    det = IsolationForestScore(forest, 0.0)
    det.val_loss = float(np.mean(det.score(val)))
    det.info = {
        "method": "IsolationForest",
        "hp": dict(hp),
        "seed": int(seed),
        "n_train": len(train),
        "n_val": len(val),
        "fit_seconds": round(time.perf_counter() - t0, 3),
    }
    return det
