"""Discriminant distortion detection (DDD, poster of seed 002): anomalies as distorted background.

A distortion (``distort``) turns background events into distorted ones with the
consistent edits of :mod:`objectives.unsupervised.edits`:

* Gaussian smearing with standard deviation ``sigma`` of log pT, eta, phi of
  every real object and of log MET, each object keeping its mass;
* with probability ``p_drop`` an event loses one of its objects;
* with probability ``p_add`` an event gains one object copied from the
  training background (a type by the background's type frequencies, then
  kinematics from that type's empirical distribution).

Both multiplicity edits act per event and change the count by one, so
``p_drop = p_add`` moves as many events up as down in multiplicity. A one-sided
distortion teaches the classifier a direction: trained on dropped objects it
calls *fewer* objects "distorted" and ranks events with more objects than the
background (an added object, a many-jet signal) below random, and the reverse
for added objects. The default grid is therefore two-sided.

A classifier (backbone + logit) is trained to tell distorted (label 1) from
undistorted (label 0) training background (``fit_ddd_point``); its AUC on
held-out background and a distorted copy of it measures how strong the
distortion is, and its AUCs on the generic anomalies of
:mod:`objectives.unsupervised.perturb` (held-out background perturbed) say
whether it inverts any of them. ``fit_ddd_scan`` trains one model per point of
the grid ``sigmas x p_drops x p_adds`` and keeps the models whose held-out AUC
lies in ``auc_band`` (the poster: about 0.7-0.8) *and* that rank every generic
anomaly at least at random (AUC >= 0.5): an ensemble member never inverts one.
Events are scored with the mean of the kept models' logits, each standardised
with the mean and standard deviation of its logits on held-out background. Each
grid point can be run on its own (one Optuna trial per point) with
``fit_ddd_point`` and combined with ``DDDEnsemble.from_models``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from objectives.devices import resolve_device
from objectives.metrics import roc_auc
from objectives.unsupervised import edits
from objectives.unsupervised._train import (
    Scaler,
    build,
    member_seeds,
    minibatches,
    predict,
    torch_threads,
)
from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.drocc import LogitNet
from objectives.unsupervised.params import validate
from objectives.unsupervised.perturb import inverted_kinds, perturbation_aucs

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

#: The perturbation kinds DDD's distortions are made of (left out of its ``perturb_auc``).
DISTORTION_KINDS = ("smear", "drop", "add")


class DDDBandError(RuntimeError):
    """No model of a DDD scan reached the requested AUC band; the message lists the AUCs."""


@dataclass(frozen=True)
class Distortion:
    """Smearing width ``sigma`` and the per-event drop / add probabilities."""

    sigma: float
    p_drop: float
    p_add: float

    def __str__(self) -> str:
        return f"sigma={self.sigma:g} p_drop={self.p_drop:g} p_add={self.p_add:g}"


def distort(
    arrays: EventArrays,
    distortion: Distortion,
    rng: np.random.Generator,
    *,
    pool: np.ndarray | None = None,
) -> EventArrays:
    """A distorted copy of ``arrays``: smeared, then one object dropped / added per event.

    ``pool`` ``(m, F)``: the object rows added objects are copied from
    (default: the real objects of ``arrays``). The same number of random
    draws is made whatever the parameters, so a seed fixes the result.
    """
    edits.check_layout(arrays, "distort")
    if pool is None:
        pool = arrays.objects[arrays.mask]
    out = edits.smear(arrays, distortion.sigma, rng)
    out = edits.drop_objects(out, distortion.p_drop, rng)
    return edits.add_objects(out, distortion.p_add, rng, pool)


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
    #: AUC of each generic anomaly (``perturb``) against held-out background
    generic_aucs: dict[str, float] = field(default_factory=dict)
    trained_on: ClassVar[tuple[str, ...]] = DISTORTION_KINDS

    @property
    def in_band(self) -> bool:
        return self.band[0] <= self.auc <= self.band[1]

    @property
    def inverted(self) -> list[str]:
        """The generic anomalies it ranks below random on held-out background (by more than
        two standard errors: ``perturb.inverted_kinds``)."""
        return inverted_kinds(self.generic_aucs, self.info.get("n_val", 0))

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
    and returns on the CPU, where the held-out logits and ``generic_aucs`` (every kind
    of ``perturb.PERTURBATIONS`` on the held-out background) are computed.
    """
    hp = validate("DDD", {**(hp or {}), "sigmas": [sigma], "p_drops": [p_drop], "p_adds": [p_add]})
    for name, arrays in (("train", train), ("val", val)):
        edits.check_layout(arrays, f"fit_ddd_point {name}")
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
    model = DDDModel(
        d, auc, band, scaler, net, float(l0.mean()), float(max(l0.std(), 1e-12)), n_threads
    )
    model.generic_aucs = perturbation_aucs(model.score, val)
    model.info = {
        "method": "DDD",
        "hp": hp,
        "seed": seed,
        "distortion": {"sigma": d.sigma, "p_drop": d.p_drop, "p_add": d.p_add},
        "auc": auc,
        "generic_aucs": model.generic_aucs,
        "n_train": len(train),
        "n_val": len(val),
        "device": str(where),
        "history": history,
        "fit_seconds": time.perf_counter() - t0,
    }
    return model


@dataclass(eq=False)
class DDDEnsemble(Detector):
    """Kept DDD models (held-out AUC in the band, no generic anomaly inverted); score = mean of
    their standardised logits."""

    models: list[Detector]  # DDDModel, or one read calibrated (CalibratedDetector)
    band: tuple[float, float]
    n_threads: int = 1
    info: dict[str, Any] = field(default_factory=dict)
    method: str = "DDD"
    trained_on: ClassVar[tuple[str, ...]] = DISTORTION_KINDS

    @classmethod
    def from_models(
        cls, models: Sequence[DDDModel], band: tuple[float, float], *, n_threads: int = 1
    ) -> DDDEnsemble:
        """Keep the models in ``band`` that invert no generic anomaly; ``DDDBandError``
        (listing every AUC and inversion) when none is left."""
        in_band = [m for m in models if band[0] <= m.auc <= band[1]]
        kept = [m for m in in_band if not m.inverted]
        if not kept:
            reached = ", ".join(
                f"{m.distortion}: {m.auc:.3f}"
                + (f" (inverts {', '.join(m.inverted)})" if m.inverted else "")
                for m in models
            )
            raise DDDBandError(
                f"DDD: no model has a held-out AUC in [{band[0]:g}, {band[1]:g}] without "
                f"ranking a generic anomaly below random; reached {reached}. "
                "Stronger distortions (larger sigmas, p_drops, p_adds) raise the AUC, weaker ones "
                "lower it; p_drop = p_add keeps the multiplicity edits two-sided; or widen "
                "'auc_band'."
            )
        info = {
            "method": "DDD",
            "band": list(band),
            "aucs": [
                {
                    **m.info["distortion"],
                    "auc": m.auc,
                    "inverts": m.inverted,
                    "kept": any(m is k for k in kept),
                }
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
    """One model per grid point ``sigmas x p_drops x p_adds``, then keep those in ``auc_band``
    that invert no generic anomaly.

    Point i is trained with the i-th seed derived from ``seed`` (row-major
    order of the grid). Raises ``DDDBandError`` when no model is kept.
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
