"""The one entry point ``fit(method, train, val, hp, seed=...)`` and the ``Detector`` interface.

Every detector is trained on background only (``train``), uses a held-out
background set (``val``) for its label-free selection metric and for the
standardisation of scores, and scores new events with
``Detector.score(arrays)`` -- higher means more anomalous.

``Detector.val_loss`` (lower is better, label-free):

* dSVDD: mean over the ensemble members of the mean squared distance of the
  held-out background to the member's centre c;
* DROCC: held-out BCE of the background as the positive class,
  ``mean(-log sigmoid(f(x)))``;
* DDD: ``|mean AUC of the kept models - centre of the AUC band|`` on held-out
  background / distorted-background pairs (0 when the kept models sit in the
  middle of the band; a point-wise model reports ``|AUC - centre|``).

With ``calibration = "multiplicity"`` (dSVDD's and DROCC's default) the returned
detector reads its score as the joint p-value within its object multiplicity and of
the multiplicity on ``val`` (:mod:`~objectives.unsupervised.calibration`).

Importing this module loads neither torch nor scikit-learn; ``fit`` does.

Example:
    >>> from objectives.unsupervised.toy import toy_events
    >>> det = fit("dSVDD", toy_events(300, seed=1), toy_events(100, seed=2),
    ...           {"rep_dims": [5], "epochs": 2}, seed=0)
    >>> det.score(toy_events(10, seed=3)).shape
    (10,)
"""

from __future__ import annotations

from typing import Any

from objectives.errors import DataError
from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.calibration import calibrated
from objectives.unsupervised.params import BACKBONES, METHODS, canonical_method, validate

__all__ = ["BACKBONES", "METHODS", "Detector", "fit"]


def fit(
    method: str,
    train: EventArrays,
    val: EventArrays,
    hp: dict[str, Any] | None,
    *,
    seed: int,
    n_threads: int = 1,
    device: str = "cpu",
) -> Detector:
    """Train detector ``method`` ("dSVDD", "DROCC", "DDD"; any case) on background ``train``.

    ``hp`` is checked against ``params.RULES`` (missing entries take the
    defaults; ``HyperparameterError`` for unknown or out-of-range values)
    before anything is trained; ``hp["backbone"]`` selects "MLP", "ParT" or
    "ParT+pair". ``seed`` fixes every random choice (same seed, same scores);
    ``n_threads`` is the number of torch threads; ``device`` ("cpu", "cuda", "auto") where
    the networks train (they return on the CPU; every random draw is made on the CPU).
    """
    canon = canonical_method(method)
    params = validate(canon, hp)
    for name, arrays in (("train", train), ("val", val)):
        if not isinstance(arrays, EventArrays):
            raise DataError(f"fit: {name} must be EventArrays, got {type(arrays).__name__}")
        if len(arrays) < 2:
            raise DataError(f"fit: {name} needs at least 2 events, got {len(arrays)}")
    if (train.objects.shape[2], train.event.shape[1]) != (val.objects.shape[2], val.event.shape[1]):
        raise DataError(
            f"fit: train and val differ in features: objects {train.objects.shape[2]} vs "
            f"{val.objects.shape[2]}, event {train.event.shape[1]} vs {val.event.shape[1]}"
        )
    if canon == "dSVDD":
        from objectives.unsupervised.dsvdd import fit_dsvdd as fitter
    elif canon == "DROCC":
        from objectives.unsupervised.drocc import fit_drocc as fitter
    else:
        from objectives.unsupervised.ddd import fit_ddd_scan as fitter
    det = fitter(train, val, params, seed=int(seed), n_threads=n_threads, device=device)
    return calibrated(det, val, params["calibration"])
