"""Edits of background events that keep every event feature consistent with the objects.

DDD's distortions and the perturbations of the label-free selection metric
(:mod:`objectives.unsupervised.perturb`) are built from these edits, on the
DarkMachines layout of :mod:`objectives.unsupervised.arrays`:

* :func:`smear` -- Gaussian smearing of log pT, eta, phi of every real object
  and of log MET; each object keeps its mass (``E' = sqrt(m^2 + (pT' cosh
  eta')^2)``: smearing log E on its own would give ``E < |p|``, which no real
  event shows and a classifier finds at once);
* :func:`shift_met`, :func:`scale_pt` -- log MET, or every object's log pT, moved
  by a constant (masses kept; softened objects can be held at the background's
  lowest pT of their type, :func:`lowest_log_pt`);
* :func:`drop_objects` -- with probability ``p`` an event loses one of its
  objects, chosen uniformly;
* :func:`add_objects` -- with probability ``p`` an event gains one object in its
  first free slot, copied (type and kinematics) from a pool of background
  objects: a type drawn by the background's type frequencies, then kinematics
  from that type's empirical distribution. An event with every slot used gains none.

After every edit the objects are re-sorted by pT and the counts and ``log_ht`` move
by the change the edit made (HT = scalar pT sum of the ``arrays.HT_TYPES`` objects,
floored at 1 MeV), so an event an edit left alone keeps its event features exactly,
and objects cut by the reader's ``max_objects`` stay counted. Each random edit makes
the same draws whatever its parameters, so one seed fixes the result.

Example:
    >>> from objectives.unsupervised.toy import toy_events
    >>> ev = toy_events(5, seed=0)
    >>> fewer = drop_objects(ev, 1.0, np.random.default_rng(0))
    >>> bool((fewer.mask.sum(1) == ev.mask.sum(1) - 1).all())
    True
"""

from __future__ import annotations

import numpy as np

from objectives.errors import DataError
from objectives.unsupervised.arrays import (
    EVENT_FEATURES,
    HT_TYPES,
    LOG_FLOOR_GEV,
    N_KINEMATICS,
    OBJECT_TYPES,
    EventArrays,
    count_columns,
)

__all__ = [
    "add_objects",
    "check_layout",
    "drop_objects",
    "lowest_log_pt",
    "scale_pt",
    "shift_met",
    "smear",
]

_HT_CODES = np.array([OBJECT_TYPES.index(t) + 1 for t in HT_TYPES])


def check_layout(arrays: EventArrays, where: str) -> None:
    """DataError unless ``arrays`` have the DarkMachines layout (types, event features)."""
    if arrays.n_types != len(OBJECT_TYPES) or arrays.event.shape[1] != len(EVENT_FEATURES):
        raise DataError(
            f"{where}: needs the DarkMachines layout ({len(OBJECT_TYPES)} one-hot types + "
            f"4 kinematics per object, event features {', '.join(EVENT_FEATURES)}), got "
            f"{arrays.objects.shape[2]} object and {arrays.event.shape[1]} event columns"
        )


def _ht(kin: np.ndarray, codes: np.ndarray) -> np.ndarray:
    pt = np.exp(kin[..., 1].astype(np.float64))
    return np.where(np.isin(codes, _HT_CODES), pt, 0.0).sum(1)


def _move(kin: np.ndarray, shift: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log pT, eta, phi of real objects moved by ``shift[..., 1:]``, each object's mass kept.

    ``kin`` and ``shift`` are ``(n, P, 4)`` (log E, log pT, eta, phi); ``shift[..., 0]``
    is not used (the energy follows from the mass); phi is wrapped to [-pi, pi).
    """
    k = kin.astype(np.float64)
    log_e, log_pt, eta = k[..., 0], k[..., 1], k[..., 2]
    m2 = np.maximum(np.exp(2 * log_e) - (np.exp(log_pt) * np.cosh(eta)) ** 2, 0.0)
    moved = k + np.where(mask[..., None], shift, 0.0)
    moved[..., 0] = 0.5 * np.log(m2 + (np.exp(moved[..., 1]) * np.cosh(moved[..., 2])) ** 2)
    moved[..., 3] = np.remainder(moved[..., 3] + np.pi, 2 * np.pi) - np.pi
    return np.where(mask[..., None], moved, k).astype(kin.dtype)


def _rebuild(
    before: EventArrays, objects: np.ndarray, mask: np.ndarray, event: np.ndarray
) -> EventArrays:
    """Edited objects re-sorted by pT, with counts and log_ht moved by the change."""
    k0 = objects.shape[2] - N_KINEMATICS
    key = np.where(mask, -objects[..., k0 + 1], np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    objects = np.take_along_axis(objects, order[..., None], axis=1)
    mask = np.take_along_axis(mask, order, axis=1)
    event = event.copy()
    codes_before = before.type_codes
    codes_after = np.where(mask, objects[..., :k0].argmax(-1) + 1, 0)
    cols = count_columns()
    for code in range(1, len(OBJECT_TYPES) + 1):
        delta = (codes_after == code).sum(1) - (codes_before == code).sum(1)
        event[:, cols[code]] += delta.astype(np.float32)
    ht_before = _ht(before.kinematics, codes_before)
    ht_after = _ht(objects[..., k0:], codes_after)
    changed = np.abs(ht_after - ht_before) > 0
    # a log_ht at the floor means HT = 0 (no jets on the line)
    ht_old = np.exp(event[:, 2].astype(np.float64))
    ht_old = np.where(ht_old > LOG_FLOOR_GEV * (1 + 1e-4), ht_old, 0.0)
    ht_new = np.maximum(ht_old + ht_after - ht_before, LOG_FLOOR_GEV)
    event[changed, 2] = np.log(ht_new[changed]).astype(np.float32)
    return EventArrays(objects, mask, event)


def smear(arrays: EventArrays, sigma: float, rng: np.random.Generator) -> EventArrays:
    """log pT, eta, phi of every real object and log MET smeared by ``N(0, sigma)``."""
    check_layout(arrays, "smear")
    n, p, _ = arrays.objects.shape
    noise = rng.normal(0.0, 1.0, (n, p, N_KINEMATICS)).astype(np.float32)
    met_noise = rng.normal(0.0, 1.0, n).astype(np.float32)
    if sigma == 0:
        return arrays
    obj, ev = arrays.objects.copy(), arrays.event.copy()
    k0 = obj.shape[2] - N_KINEMATICS
    obj[..., k0:] = _move(obj[..., k0:], np.float32(sigma) * noise, arrays.mask)
    ev[:, 0] += np.float32(sigma) * met_noise
    return _rebuild(arrays, obj, arrays.mask, ev)


def shift_met(arrays: EventArrays, delta: float) -> EventArrays:
    """log MET moved by ``delta`` (MET times ``exp(delta)``)."""
    check_layout(arrays, "shift_met")
    ev = arrays.event.copy()
    ev[:, 0] += np.float32(delta)
    return EventArrays(arrays.objects, arrays.mask, ev)


def scale_pt(arrays: EventArrays, delta: float, floor: np.ndarray | None = None) -> EventArrays:
    """Every object's log pT moved by ``delta`` (pT times ``exp(delta)``), masses kept.

    ``floor`` (per object type, ``OBJECT_TYPES`` order, log pT): a softened object
    stops there (or where it was, if below), so no object leaves the selection's pT range.
    """
    check_layout(arrays, "scale_pt")
    obj = arrays.objects.copy()
    k0 = obj.shape[2] - N_KINEMATICS
    shift = np.zeros(obj[..., k0:].shape, np.float32)
    shift[..., 1] = delta
    if floor is not None:
        room = np.asarray(floor, np.float32)[np.maximum(arrays.type_codes - 1, 0)]
        room = np.minimum(room - obj[..., k0 + 1], 0.0)  # how far down it may go (<= 0)
        shift[..., 1] = np.maximum(shift[..., 1], room)
    obj[..., k0:] = _move(obj[..., k0:], shift, arrays.mask)
    return _rebuild(arrays, obj, arrays.mask, arrays.event)


def lowest_log_pt(pool: np.ndarray) -> np.ndarray:
    """Per object type (``OBJECT_TYPES`` order): the lowest log pT among the objects of
    ``pool`` ``(m, F)`` (``+inf`` for a type absent from it)."""
    k0 = pool.shape[1] - N_KINEMATICS
    codes = pool[:, :k0].argmax(1) if len(pool) else np.zeros(0, np.int64)
    out = np.full(k0, np.inf, np.float32)
    np.minimum.at(out, codes, pool[:, k0 + 1].astype(np.float32))
    return out


def drop_objects(arrays: EventArrays, p: float, rng: np.random.Generator) -> EventArrays:
    """With probability ``p`` an event loses one of its objects (chosen uniformly)."""
    check_layout(arrays, "drop_objects")
    n = len(arrays)
    u, which = rng.random(n), rng.random(n)
    counts = arrays.mask.sum(1)
    drop = (u < p) & (counts > 0)
    if not drop.any():
        return arrays
    rows = np.flatnonzero(drop)
    slots = np.minimum((which[rows] * counts[rows]).astype(np.int64), counts[rows] - 1)
    obj, mask = arrays.objects.copy(), arrays.mask.copy()
    mask[rows, slots] = False  # the objects are sorted: the real ones come first
    obj[rows, slots] = 0.0
    return _rebuild(arrays, obj, mask, arrays.event)


def add_objects(
    arrays: EventArrays, p: float, rng: np.random.Generator, pool: np.ndarray
) -> EventArrays:
    """With probability ``p`` an event gains one object copied from ``pool`` ``(m, F)``."""
    check_layout(arrays, "add_objects")
    n = len(arrays)
    u, pick = rng.random(n), rng.integers(0, max(len(pool), 1), n)
    add = (u < p) & (~arrays.mask).any(1) & (len(pool) > 0)
    if not add.any():
        return arrays
    rows = np.flatnonzero(add)
    slots = np.argmax(~arrays.mask[rows], axis=1)
    obj, mask = arrays.objects.copy(), arrays.mask.copy()
    obj[rows, slots] = pool[pick[rows]]
    mask[rows, slots] = True
    return _rebuild(arrays, obj, mask, arrays.event)
