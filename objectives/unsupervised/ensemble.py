"""Detectors averaged: the poster's average over hyperparameter choices, and combinations.

The poster of seed 002 tunes nothing per signal: it averages the scores of
models trained with different hyperparameters, and recommends dSVDD and DDD in
combination. A :class:`ScoreEnsemble` holds fitted detectors (of one method or
several) with the mean and standard deviation of each member's scores on
held-out background; its score is the mean of the members' standardised
scores, so members of different scales weigh alike.

:func:`fit_trial_ensemble` trains one member per hyperparameter set (the
completed trials of a study, in ``hpo final``'s ``ensemble`` source) and keeps
those that rank no generic anomaly of held-out background below random
(:func:`non_inverting`): the average of members that invert one inverts it too. For DDD
the members are the distortion points of every set, and only the models whose
held-out AUC lies in the band are kept (``DDDEnsemble``): DDD's own recipe,
its scan run as trials, each kept model read as its own set's ``calibration`` says
(:func:`ddd_band_ensemble`). :func:`combine_scores` combines the test scores of
cells that were each standardised on held-out background (as every
unsupervised cell's are): dSVDD + DDD.

Example:
    >>> from objectives.unsupervised.toy import toy_events
    >>> train, val = toy_events(200, seed=1), toy_events(100, seed=2)
    >>> det = fit_trial_ensemble("DROCC", train, val, [{"epochs": 2, "only_ce_epochs": 1},
    ...                          {"epochs": 2, "only_ce_epochs": 1, "radius": 4.0}], seed=0)
    >>> len(det.members) + det.info["n_dropped"], det.score(toy_events(5, seed=3)).shape
    (2, (5,))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from objectives.errors import EnsembleRefused, HyperparameterError
from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.params import canonical_method, validate

__all__ = [
    "ScoreEnsemble",
    "combine_scores",
    "ddd_band_ensemble",
    "fit_trial_ensemble",
    "non_inverting",
]


@dataclass(eq=False)
class ScoreEnsemble(Detector):
    """Fitted detectors; score = mean of each member's score standardised on background."""

    members: list[Detector]
    means: list[float]
    stds: list[float]
    method: str
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, members: Sequence[Detector], background: EventArrays, *, method: str | None = None
    ) -> ScoreEnsemble:
        """Members standardised with their scores on ``background`` (held-out, label-free)."""
        members = list(members)
        if not members:
            raise ValueError("ScoreEnsemble: needs at least one detector")
        ref = [m.score(background) for m in members]
        names = sorted({m.method for m in members})
        return cls(
            members,
            [float(r.mean()) for r in ref],
            [float(max(r.std(), 1e-12)) for r in ref],
            method or "+".join(names),
            {"members": [{"method": m.method, "val_loss": m.val_loss} for m in members]},
        )

    @property
    def val_loss(self) -> float:
        """Mean of the members' own label-free losses."""
        return float(np.mean([m.val_loss for m in self.members]))

    def score(self, arrays: EventArrays) -> np.ndarray:
        z = [
            (m.score(arrays) - mu) / sd
            for m, mu, sd in zip(self.members, self.means, self.stds, strict=True)
        ]
        return np.mean(z, axis=0)


def non_inverting(
    members: Sequence[Detector], background: EventArrays, *, method: str
) -> list[Detector]:
    """The members that rank no generic anomaly (``perturb``) of held-out ``background``
    below random, by more than two standard errors (``perturb.inverted_kinds``):
    a member that does would invert every anomaly of that kind in the average.

    ``EnsembleRefused`` naming what each member inverts when none is left.
    """
    from objectives.unsupervised.perturb import inverted_kinds, perturbation_aucs

    bad = [inverted_kinds(perturbation_aucs(m.score, background), len(background)) for m in members]
    kept = [m for m, kinds in zip(members, bad, strict=True) if not kinds]
    if not kept:
        each = "; ".join(f"set {i}: {', '.join(kinds)}" for i, kinds in enumerate(bad))
        raise EnsembleRefused(
            f"{method} ensemble: every member ranks a generic anomaly of held-out background "
            f"below random ({each}), so their average would too"
        )
    return kept


def _ddd_ensemble(train, val, hps, *, seed: int, n_threads: int, device: str):
    from objectives.unsupervised._train import member_seeds
    from objectives.unsupervised.ddd import distortion_grid, fit_ddd_point

    bands = {tuple(hp["auc_band"]) for hp in hps}
    if len(bands) > 1:
        raise HyperparameterError(
            f"DDD hyperparameter 'auc_band': must be the same in every set of an ensemble, "
            f"got {sorted(bands)}"
        )
    jobs = [(hp, point) for hp in hps for point in distortion_grid(hp)]
    seeds = member_seeds(seed, len(jobs))
    training = {"n_threads": n_threads, "device": device}
    models = [
        fit_ddd_point(train, val, hp, sigma=s, p_drop=d, p_add=a, seed=ps, **training)
        for (hp, (s, d, a)), ps in zip(jobs, seeds, strict=True)
    ]
    readings = [hp["calibration"] for hp, _ in jobs]
    return ddd_band_ensemble(models, readings, bands.pop(), val, n_threads=n_threads)


def ddd_band_ensemble(
    models: Sequence[Any],
    calibrations: Sequence[str],
    band: tuple[float, float],
    val: EventArrays,
    *,
    n_threads: int = 1,
) -> Detector:
    """DDD models of several hyperparameter sets: those in ``band`` that invert no generic
    anomaly (judged on their logits), each read as its set's ``calibration`` says (on
    ``val``, held-out background). ``DDDBandError`` when none is kept."""
    from objectives.unsupervised.calibration import calibrated
    from objectives.unsupervised.ddd import DDDEnsemble

    ens = DDDEnsemble.from_models(models, band, n_threads=n_threads)
    how = {id(m): c for m, c in zip(models, calibrations, strict=True)}
    ens.models = [calibrated(m, val, how[id(m)]) for m in ens.models]
    return ens


def fit_trial_ensemble(
    method: str,
    train: EventArrays,
    val: EventArrays,
    hps: Sequence[dict[str, Any] | None],
    *,
    seed: int,
    n_threads: int = 1,
    device: str = "cpu",
) -> Detector:
    """One member per hyperparameter set of ``hps``, averaged: the members that invert
    no generic anomaly on ``val`` (:func:`non_inverting`; DDD: those in its band too).

    Member ``i`` is trained with the ``i``-th seed derived from ``seed`` on ``device``
    (see ``detector.fit``). Raises
    ``HyperparameterError`` for a bad set, ``EnsembleRefused`` when every member inverts
    a generic anomaly, and DDD's ``DDDBandError`` when no distortion lands in the band.
    """
    from objectives.unsupervised._train import member_seeds
    from objectives.unsupervised.detector import fit

    canon = canonical_method(method)
    hps = [validate(canon, hp) for hp in hps]
    if not hps:
        raise HyperparameterError(f"{canon} ensemble: needs at least one hyperparameter set")
    if canon == "DDD":
        return _ddd_ensemble(train, val, hps, seed=seed, n_threads=n_threads, device=device)
    seeds = member_seeds(seed, len(hps))
    members = [
        fit(canon, train, val, hp, seed=s, n_threads=n_threads, device=device)
        for hp, s in zip(hps, seeds, strict=True)
    ]
    kept = non_inverting(members, val, method=canon)
    ens = ScoreEnsemble.of(kept, val, method=canon)
    ens.info["n_dropped"] = len(members) - len(kept)
    return ens


def combine_scores(scores: Sequence[np.ndarray]) -> np.ndarray:
    """The combination of detectors' scores on one test set: their mean.

    Each array must already be standardised on held-out background (mean 0,
    standard deviation 1 there, as the test scores of every unsupervised cell are),
    so the detectors weigh alike: the poster's dSVDD + DDD.
    """
    arrays = [np.asarray(s, dtype=np.float64) for s in scores]
    if not arrays or len({a.shape for a in arrays}) != 1:
        raise ValueError("combine_scores: needs one or more score arrays of the same shape")
    return np.mean(arrays, axis=0)
