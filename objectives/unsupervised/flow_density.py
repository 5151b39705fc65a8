"""The density baseline: ``-log p`` of an affine MAF trained on the background's event features.

The flow is the CATHODE background flow of :mod:`objectives.flows.background`
(preprocessing, MAF, training loop with the best epochs kept and averaged),
trained on the ten event features of
:mod:`~objectives.unsupervised.event_features` with a constant condition (no
mjj here). Discrete values are dequantized for training (seeded uniform noise
over each value's unit cell) and scored at their cell's centre, so the density
is that of a continuous variable and a score is deterministic.

``val_loss``: the mean negative log-likelihood of the held-out background
(dequantized with a seed of its own; each event's loss capped at
``VAL_NLL_CAP`` nats, as the flows' own validation loss is), lower is better.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from objectives.flows.background import BackgroundModel, train_background_model
from objectives.flows.training import VAL_NLL_CAP
from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.event_features import cell_centres, dequantize, event_features

__all__ = ["FlowDensityScore", "fit_flow_density"]


def _no_condition(n: int) -> np.ndarray:
    return np.zeros(n)


@dataclass(eq=False)
class FlowDensityScore(Detector):
    """A trained background flow; score = -log p of the event features (cell centres)."""

    model: BackgroundModel
    val_loss: float
    info: dict[str, Any] = field(default_factory=dict)
    method: str = "FlowDensity"

    def score(self, arrays: EventArrays) -> np.ndarray:
        x = cell_centres(event_features(arrays))
        return -self.model.log_prob(x, _no_condition(len(x)))


def fit_flow_density(
    train: EventArrays,
    val: EventArrays,
    hp: dict[str, Any],
    *,
    seed: int,
    n_threads: int = 1,
    device: str = "cpu",
) -> FlowDensityScore:
    """The MAF of ``hp`` trained on ``train`` (background) on ``device``, seeded."""
    t0 = time.perf_counter()
    rng_train, rng_val = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    x = dequantize(event_features(train), rng_train)
    result = train_background_model(
        x, _no_condition(len(x)), hp, seed=seed, n_threads=n_threads, device=device
    )
    x_val = dequantize(event_features(val), rng_val)
    nll = -result.model.log_prob(x_val, _no_condition(len(x_val)))
    info = {
        "method": "FlowDensity",
        "hp": dict(hp),
        "seed": int(seed),
        "n_train": len(train),
        "n_val": len(val),
        "kept_epochs": result.info["kept_epochs"],
        "fit_seconds": round(time.perf_counter() - t0, 3),
    }
    val_loss = float(np.mean(np.minimum(np.nan_to_num(nll, nan=VAL_NLL_CAP), VAL_NLL_CAP)))
    return FlowDensityScore(result.model, val_loss, info)
