"""A toy event generator in the DarkMachines array layout, for tests and examples.

Background: 1 to 5 objects per event (types drawn with fixed frequencies,
mostly jets), log pT ~ N(3.8, 0.5) sorted descending, eta ~ N(0, 1.2),
phi uniform, massless (log E = log pT + log cosh eta); log MET ~ N(3.5, 0.5).
The "anomalous" sample is clearly different: two extra objects (up to the
slot count), harder objects (log pT + 0.8) and larger MET (log MET + 1).
``log_ht`` and the counts follow from the objects as in ``arrays``
(HT = scalar pT sum of jets and b-jets, floored at 1 MeV).

Example:
    >>> bkg = toy_events(100, seed=0)
    >>> bkg.objects.shape, bkg.event.shape
    ((100, 8, 11), (100, 8))
"""

from __future__ import annotations

import numpy as np

from objectives.unsupervised.arrays import (
    HT_TYPES,
    LOG_FLOOR_GEV,
    OBJECT_TYPES,
    EventArrays,
    count_columns,
)

__all__ = ["event_features", "toy_events"]

_TYPE_P = np.array([0.55, 0.15, 0.05, 0.05, 0.05, 0.05, 0.10])


def event_features(
    kinematics: np.ndarray, codes: np.ndarray, log_met: np.ndarray, met_phi: np.ndarray
) -> np.ndarray:
    """``(n, 8)`` event features from objects: log_met, met_phi, log_ht and the counts."""
    n = kinematics.shape[0]
    out = np.zeros((n, 8), dtype=np.float32)
    out[:, 0], out[:, 1] = log_met, met_phi
    ht_codes = [OBJECT_TYPES.index(t) + 1 for t in HT_TYPES]
    pt = np.where(np.isin(codes, ht_codes), np.exp(kinematics[..., 1]), 0.0)
    out[:, 2] = np.log(np.maximum(pt.sum(1), LOG_FLOOR_GEV))
    cols = count_columns()
    for code in range(1, len(OBJECT_TYPES) + 1):
        out[:, cols[code]] += (codes == code).sum(1)
    return out


def toy_events(
    n: int,
    *,
    max_objects: int = 8,
    anomalous: bool = False,
    seed: int = 0,
    extra_objects: int = 2,
    pt_shift: float = 0.8,
    met_shift: float = 1.0,
) -> EventArrays:
    """``n`` toy events (background, or the clearly anomalous sample) as ``EventArrays``.

    The anomalous sample has ``extra_objects`` more objects, log pT shifted by
    ``pt_shift`` and log MET by ``met_shift``; background ignores the three.
    """
    rng = np.random.default_rng(seed)
    if not anomalous:
        extra_objects, pt_shift, met_shift = 0, 0.0, 0.0
    k = 1 + rng.binomial(4, 0.5, n) + extra_objects
    k = np.minimum(k, max_objects)
    mask = np.arange(max_objects) < k[:, None]
    codes = np.where(mask, rng.choice(len(OBJECT_TYPES), (n, max_objects), p=_TYPE_P) + 1, 0)
    log_pt = -np.sort(-rng.normal(3.8 + pt_shift, 0.5, (n, max_objects)), 1)
    eta = rng.normal(0.0, 1.2, (n, max_objects))
    phi = rng.uniform(-np.pi, np.pi, (n, max_objects))
    log_e = log_pt + np.log(np.cosh(eta))
    kin = np.stack([log_e, log_pt, eta, phi], -1) * mask[..., None]
    onehot = (codes[..., None] == np.arange(1, len(OBJECT_TYPES) + 1)).astype(np.float32)
    log_met = rng.normal(3.5 + met_shift, 0.5, n)
    met_phi = rng.uniform(-np.pi, np.pi, n)
    event = event_features(kin, codes, log_met, met_phi)
    return EventArrays(np.concatenate([onehot, kin], -1), mask, event)
