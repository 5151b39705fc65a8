"""Discriminant distortion detection (DDD, poster of seed 002): anomalies as distorted background.

A distortion function turns background events into distorted ones
(``distort``):

* Gaussian smearing with standard deviation ``sigma`` of log pT, eta, phi of
  every real object and of log MET (the log variables get a relative smear of
  about ``sigma``; phi is wrapped to [-pi, pi)); the energy follows so that
  each object keeps its mass, ``E' = sqrt(m^2 + (pT' cosh eta')^2)`` with
  ``m^2 = max(E^2 - (pT cosh eta)^2, 0)`` (smearing log E on its own would
  make ``E < |p|``, a distortion no real event shows and a classifier finds
  at once);
* each real object removed with probability ``p_drop``;
* with probability ``p_add`` one object added in the first free slot (events
  with every slot used get none), copied, type and kinematics, from a random
  object of the training background. This is the same as drawing a type
  from the background's type frequencies and then kinematics from that
  type's empirical distribution.

Objects are re-sorted by pT; the counts and ``log_ht`` are updated by the
change they saw (HT = scalar pT sum of the ``arrays.HT_TYPES`` objects,
floored at 1 MeV, as in ``objectives.darkmachines.format``), so an event the
distortion left unchanged keeps its event features exactly, and objects cut
by the reader's ``max_objects`` stay counted.

A classifier (backbone + logit) is trained to tell distorted (label 1) from
undistorted (label 0) training background (``fit_ddd_point``); its AUC on
held-out background and a distorted copy of it measures how strong the
distortion is. ``fit_ddd_scan`` trains one model per point of the grid
``sigmas x p_drops x p_adds``, keeps the models whose held-out AUC lies in
``auc_band`` (the poster: about 0.7-0.8) and scores events with the mean of
the kept models' logits, each standardised with the mean and standard
deviation of its logits on held-out background. Each grid point can be run
on its own (one Optuna trial per point) with ``fit_ddd_point`` and combined
with ``DDDEnsemble.from_models``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from objectives.devices import resolve_device
from objectives.errors import DataError
from objectives.metrics import roc_auc
from objectives.unsupervised._train import (
    Scaler,
    build,
    member_seeds,
    minibatches,
    predict,
    torch_threads,
)
from objectives.unsupervised.arrays import (
    EVENT_FEATURES,
    HT_TYPES,
    LOG_FLOOR_GEV,
    N_KINEMATICS,
    OBJECT_TYPES,
    EventArrays,
    count_columns,
)
from objectives.unsupervised.base import Detector
from objectives.unsupervised.drocc import LogitNet
from objectives.unsupervised.params import validate

__all__ = [
    "DDDBandError",
    "DDDEnsemble",
    "DDDModel",
    "Distortion",
    "distort",
    "distortion_grid",
    "fit_ddd_point",
    "fit_ddd_scan",
]

_HT_CODES = np.array([OBJECT_TYPES.index(t) + 1 for t in HT_TYPES])


class DDDBandError(RuntimeError):
    """No model of a DDD scan reached the requested AUC band; the message lists the AUCs."""


@dataclass(frozen=True)
class Distortion:
    """Smearing width ``sigma`` and the per-object drop / per-event add probabilities."""

    sigma: float
    p_drop: float
    p_add: float

    def __str__(self) -> str:
        return f"sigma={self.sigma:g} p_drop={self.p_drop:g} p_add={self.p_add:g}"


def _check_layout(arrays: EventArrays, where: str) -> None:
    if arrays.n_types != len(OBJECT_TYPES) or arrays.event.shape[1] != len(EVENT_FEATURES):
        raise DataError(
            f"{where}: DDD needs the DarkMachines layout ({len(OBJECT_TYPES)} one-hot types + "
            f"4 kinematics per object, event features {', '.join(EVENT_FEATURES)}), got "
            f"{arrays.objects.shape[2]} object and {arrays.event.shape[1]} event columns"
        )


def _ht(kin: np.ndarray, codes: np.ndarray) -> np.ndarray:
    pt = np.exp(kin[..., 1].astype(np.float64))
    return np.where(np.isin(codes, _HT_CODES), pt, 0.0).sum(1)


def _smear(kin: np.ndarray, noise: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log pT, eta, phi of real objects moved by ``noise[..., 1:]``, each object's mass kept.

    ``kin`` and ``noise`` are ``(n, P, 4)`` (log E, log pT, eta, phi); ``noise[..., 0]``
    is not used (the energy follows from the mass), so the random draws do not depend
    on the parameters.
    """
    k = kin.astype(np.float64)
    log_e, log_pt, eta = k[..., 0], k[..., 1], k[..., 2]
    m2 = np.maximum(np.exp(2 * log_e) - (np.exp(log_pt) * np.cosh(eta)) ** 2, 0.0)
    moved = k + np.where(mask[..., None], noise, 0.0)
    moved[..., 0] = 0.5 * np.log(m2 + (np.exp(moved[..., 1]) * np.cosh(moved[..., 2])) ** 2)
    moved[..., 0] = np.where(mask, moved[..., 0], k[..., 0])
    return moved.astype(kin.dtype)


def distort(
    arrays: EventArrays,
    distortion: Distortion,
    rng: np.random.Generator,
    *,
    pool: np.ndarray | None = None,
) -> EventArrays:
    """A distorted copy of ``arrays`` (see the module docstring).

    ``pool`` ``(m, F)``: the object rows added objects are copied from
    (default: the real objects of ``arrays``). The same number of random
    draws is made whatever the parameters, so a seed fixes the result.
    """
    _check_layout(arrays, "distort")
    obj, mask, ev = arrays.objects.copy(), arrays.mask.copy(), arrays.event.copy()
    n, p, nf = obj.shape
    k0 = nf - N_KINEMATICS
    codes_before, ht_before = arrays.type_codes, _ht(arrays.kinematics, arrays.type_codes)
    if pool is None:
        pool = arrays.objects[arrays.mask]
    noise = rng.normal(0.0, 1.0, (n, p, N_KINEMATICS)).astype(np.float32)
    met_noise = rng.normal(0.0, 1.0, n).astype(np.float32)
    drop_u = rng.random((n, p))
    add_u = rng.random(n)
    pick = rng.integers(0, max(len(pool), 1), n)

    sigma = np.float32(distortion.sigma)
    if distortion.sigma > 0:
        obj[..., k0:] = _smear(obj[..., k0:], sigma * noise, mask)
    phi = obj[..., k0 + 3]
    outside = mask & ((phi < -np.pi) | (phi >= np.pi))
    obj[..., k0 + 3] = np.where(outside, np.remainder(phi + np.pi, 2 * np.pi) - np.pi, phi)
    ev[:, 0] += sigma * met_noise

    drop = mask & (drop_u < distortion.p_drop)
    mask &= ~drop
    obj[drop] = 0.0

    add = (add_u < distortion.p_add) & (~mask).any(1) & (len(pool) > 0)
    rows = np.flatnonzero(add)
    if rows.size:
        slots = np.argmax(~mask[rows], axis=1)
        obj[rows, slots] = pool[pick[rows]]
        mask[rows, slots] = True

    key = np.where(mask, -obj[..., k0 + 1], np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    obj = np.take_along_axis(obj, order[..., None], axis=1)
    mask = np.take_along_axis(mask, order, axis=1)

    codes_after = np.where(mask, obj[..., :k0].argmax(-1) + 1, 0)
    cols = count_columns()
    for code in range(1, len(OBJECT_TYPES) + 1):
        delta = (codes_after == code).sum(1) - (codes_before == code).sum(1)
        ev[:, cols[code]] += delta.astype(np.float32)
    ht_after = _ht(obj[..., k0:], codes_after)
    changed = np.abs(ht_after - ht_before) > 0
    # a log_ht at the floor means HT = 0 (no jets on the line)
    ht_old = np.exp(ev[:, 2].astype(np.float64))
    ht_old = np.where(ht_old > LOG_FLOOR_GEV * (1 + 1e-4), ht_old, 0.0)
    ht_new = np.maximum(ht_old + ht_after - ht_before, LOG_FLOOR_GEV)
    ev[changed, 2] = np.log(ht_new[changed]).astype(np.float32)
    return EventArrays(obj, mask, ev)


@dataclass(eq=False)
class DDDModel(Detector):
    """One distortion's classifier; ``score`` = logit standardised on held-out background."""

    distortion: Distortion
    auc: float
    band: tuple[float, float]
    scaler: Scaler
    net: nn.Module
    logit_mean: float
    logit_std: float
    n_threads: int = 1
    info: dict[str, Any] = field(default_factory=dict)
    method: str = "DDD"

    @property
    def in_band(self) -> bool:
        return self.band[0] <= self.auc <= self.band[1]

    @property
    def val_loss(self) -> float:
        """``|auc - band centre|``."""
        return abs(self.auc - 0.5 * (self.band[0] + self.band[1]))

    def logits(self, arrays: EventArrays) -> np.ndarray:
        """Raw logits (distorted-like = high), float64."""
        with torch_threads(self.n_threads):
            return predict(self.net, self.scaler.inputs(arrays)).double().numpy()

    def score(self, arrays: EventArrays) -> np.ndarray:
        return (self.logits(arrays) - self.logit_mean) / self.logit_std


def fit_ddd_point(
    train: EventArrays,
    val: EventArrays,
    hp: dict[str, Any] | None,
    *,
    sigma: float,
    p_drop: float,
    p_add: float,
    seed: int,
    n_threads: int = 1,
    device: str = "cpu",
) -> DDDModel:
    """Train the distorted-vs-background classifier of one distortion; ``.auc`` on held-out pairs.

    ``hp`` are the DDD hyperparameters (the grid entries are ignored here;
    ``auc_band`` sets ``in_band`` and ``val_loss``). The distortion of the
    training and of the held-out background both copy added objects from
    the training background. The network trains on ``device`` ("cpu", "cuda", "auto")
    and returns on the CPU, where the held-out logits are computed.
    """
    hp = validate("DDD", {**(hp or {}), "sigmas": [sigma], "p_drops": [p_drop], "p_adds": [p_add]})
    for name, arrays in (("train", train), ("val", val)):
        _check_layout(arrays, f"fit_ddd_point {name}")
    d = Distortion(float(sigma), float(p_drop), float(p_add))
    where = resolve_device(device)
    t0 = time.perf_counter()
    rng = np.random.default_rng(int(seed))
    gen = torch.Generator().manual_seed(int(seed))
    pool = train.objects[train.mask]
    with torch_threads(n_threads):
        d_train = distort(train, d, rng, pool=pool)
        d_val = distort(val, d, rng, pool=pool)
        scaler = Scaler.fit(train)
        x = scaler.inputs(EventArrays.concat([train, d_train])).to(where)
        y = torch.cat([torch.zeros(len(train)), torch.ones(len(train))]).to(where)
        net = build(LogitNet, hp, train, scaler, gen, device=where)
        opt = torch.optim.Adam(net.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
        history = []
        for _ in range(hp["epochs"]):
            net.train()
            total = 0.0
            for idx in minibatches(len(x), hp["batch_size"], gen, where):
                loss = F.binary_cross_entropy_with_logits(net(*x.take(idx)), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            history.append(total / len(x))
        net = net.to("cpu")
        l0 = predict(net, scaler.inputs(val)).double().numpy()
        l1 = predict(net, scaler.inputs(d_val)).double().numpy()
    auc = roc_auc(np.r_[l0, l1], np.r_[np.zeros(len(l0)), np.ones(len(l1))])
    band = (hp["auc_band"][0], hp["auc_band"][1])
    info = {
        "method": "DDD",
        "hp": hp,
        "seed": seed,
        "distortion": {"sigma": d.sigma, "p_drop": d.p_drop, "p_add": d.p_add},
        "auc": auc,
        "n_train": len(train),
        "n_val": len(val),
        "device": str(where),
        "history": history,
        "fit_seconds": time.perf_counter() - t0,
    }
    return DDDModel(
        d, auc, band, scaler, net, float(l0.mean()), float(max(l0.std(), 1e-12)), n_threads, info
    )


@dataclass(eq=False)
class DDDEnsemble(Detector):
    """Kept DDD models (held-out AUC in the band); score = mean of their standardised logits."""

    models: list[DDDModel]
    band: tuple[float, float]
    n_threads: int = 1
    info: dict[str, Any] = field(default_factory=dict)
    method: str = "DDD"

    @classmethod
    def from_models(
        cls, models: Sequence[DDDModel], band: tuple[float, float], *, n_threads: int = 1
    ) -> DDDEnsemble:
        """Keep the models in ``band``; ``DDDBandError`` (listing every AUC) when none is."""
        kept = [m for m in models if band[0] <= m.auc <= band[1]]
        reached = ", ".join(f"{m.distortion}: {m.auc:.3f}" for m in models)
        if not kept:
            raise DDDBandError(
                f"DDD: no model has a held-out AUC in [{band[0]:g}, {band[1]:g}]; "
                f"reached {reached}. "
                "Stronger distortions (larger sigmas, p_drops, p_adds) raise the AUC, weaker ones "
                "lower it; or widen 'auc_band'."
            )
        info = {
            "method": "DDD",
            "band": list(band),
            "aucs": [
                {**m.info["distortion"], "auc": m.auc, "kept": any(m is k for k in kept)}
                for m in models
            ],
            "n_kept": len(kept),
            "fit_seconds": sum(m.info.get("fit_seconds", 0.0) for m in models),
        }
        return cls(kept, tuple(band), n_threads=n_threads, info=info)

    @property
    def val_loss(self) -> float:
        """``|mean AUC of the kept models - band centre|``."""
        return abs(float(np.mean([m.auc for m in self.models])) - 0.5 * sum(self.band))

    def score(self, arrays: EventArrays) -> np.ndarray:
        return np.mean([m.score(arrays) for m in self.models], axis=0)


def distortion_grid(hp: dict[str, Any]) -> list[tuple[float, float, float]]:
    """The grid ``sigmas x p_drops x p_adds`` of DDD hyperparameters, in row-major order."""
    return list(itertools.product(hp["sigmas"], hp["p_drops"], hp["p_adds"]))


def fit_ddd_scan(
    train: EventArrays,
    val: EventArrays,
    hp: dict[str, Any],
    *,
    seed: int,
    n_threads: int = 1,
    device: str = "cpu",
) -> DDDEnsemble:
    """One model per grid point ``sigmas x p_drops x p_adds``, then keep those in ``auc_band``.

    Point i is trained with the i-th seed derived from ``seed`` (row-major
    order of the grid). Raises ``DDDBandError`` when no model lands in the band.
    """
    hp = validate("DDD", hp)
    grid = distortion_grid(hp)
    seeds = member_seeds(seed, len(grid))
    training = {"n_threads": n_threads, "device": device}
    models = [
        fit_ddd_point(train, val, hp, sigma=s, p_drop=pd, p_add=pa, seed=ps, **training)
        for (s, pd, pa), ps in zip(grid, seeds, strict=True)
    ]
    ens = DDDEnsemble.from_models(models, tuple(hp["auc_band"]), n_threads=n_threads)
    ens.info.update({"hp": hp, "seed": seed, "point_seeds": seeds})
    return ens
