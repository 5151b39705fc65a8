"""The per-event feature vector of the baselines: what a physicist would look at first.

Ten numbers per event, from :class:`~objectives.unsupervised.arrays.EventArrays`
(GeV, natural logarithms; ``LOG_FLOOR_GEV`` where a quantity is absent)::

    log_met, log_ht, n_j, n_b, n_e, n_mu, n_gamma, log_pt1, log_pt2, log_pt3

the missing transverse energy, HT (scalar pT sum of jets and b-jets), the object
counts (from every object of the line, before any truncation to the array's
slots) and the log pT of the three leading objects (objects of every type,
sorted by pT). ``MET`` and ``HT`` are the one-variable cuts' scores;
:func:`multiplicity` the third one's.

Some values are discrete (the counts) or sit on the floor (no jets: ``log_ht``
at ``log 1e-3``; fewer than three objects). A density model of them would put
infinite density on those points, so :func:`dequantize` spreads each discrete
value over a unit cell (a count ``k`` over ``[k, k + 1)``, a floor value ``f``
over ``(f - 1, f]``, below every real value) with seeded uniform noise for
training, and :func:`cell_centres` puts it at the cell's centre for scoring,
so a score is deterministic.

Example:
    >>> from objectives.unsupervised.toy import toy_events
    >>> event_features(toy_events(4, seed=0)).shape
    (4, 10)
"""

from __future__ import annotations

import math

import numpy as np

from objectives.unsupervised.arrays import EVENT_FEATURES, LOG_FLOOR_GEV, EventArrays

__all__ = [
    "COUNT_COLUMNS",
    "FEATURES",
    "N_LEADING",
    "cell_centres",
    "dequantize",
    "event_features",
    "multiplicity",
]

#: Leading objects whose log pT is a feature.
N_LEADING = 3
_COUNTS = EVENT_FEATURES[3:]  # n_j, n_b, n_e, n_mu, n_gamma
#: Names of the columns of :func:`event_features`, in order.
FEATURES = ("log_met", "log_ht", *_COUNTS, *(f"log_pt{k + 1}" for k in range(N_LEADING)))
#: Columns of :func:`event_features` that hold counts.
COUNT_COLUMNS = tuple(FEATURES.index(c) for c in _COUNTS)
_LOG_FLOOR = math.log(LOG_FLOOR_GEV)
_ON_FLOOR = 1e-4  # a float32 logarithm within this of the floor is on it


def event_features(arrays: EventArrays) -> np.ndarray:
    """``(n, 10)`` float64: the columns of :data:`FEATURES`."""
    ev = arrays.event.astype(np.float64)
    names = list(EVENT_FEATURES)
    log_pt = arrays.kinematics[..., 1].astype(np.float64)
    lead = np.full((len(arrays), N_LEADING), _LOG_FLOOR)
    k = min(N_LEADING, arrays.max_objects)
    lead[:, :k] = np.where(arrays.mask[:, :k], log_pt[:, :k], _LOG_FLOOR)
    return np.column_stack(
        [ev[:, names.index("log_met")], ev[:, names.index("log_ht")]]
        + [ev[:, names.index(c)] for c in _COUNTS]
        + [lead]
    )


def multiplicity(arrays: EventArrays) -> np.ndarray:
    """``(n,)`` the number of objects of every type (the count columns summed)."""
    return event_features(arrays)[:, list(COUNT_COLUMNS)].sum(axis=1)


def _floor_mask(x: np.ndarray) -> np.ndarray:
    mask = np.abs(x - _LOG_FLOOR) <= _ON_FLOOR
    mask[:, list(COUNT_COLUMNS)] = False
    return mask


def dequantize(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``x`` with every discrete value spread uniformly over its unit cell (seeded)."""
    out = np.array(x, dtype=np.float64, copy=True)
    cols = list(COUNT_COLUMNS)
    out[:, cols] += rng.random((len(out), len(cols)))
    floor = _floor_mask(x)
    out[floor] -= rng.random(int(floor.sum()))
    return out


def cell_centres(x: np.ndarray) -> np.ndarray:
    """``x`` with every discrete value at the centre of its unit cell (deterministic)."""
    out = np.array(x, dtype=np.float64, copy=True)
    out[:, list(COUNT_COLUMNS)] += 0.5
    out[_floor_mask(x)] -= 0.5
    return out
