"""The label-free selection metric of the unsupervised detectors: perturbed background.

A detector is for finding events unlike the background, and no signal label may
pick its hyperparameters. So it is asked to tell held-out background from
copies of the same events perturbed in generic ways (:data:`PERTURBATIONS`)
that it never trained on: missing energy raised, every object harder, one
object more, one object fewer, the kinematics smeared. ``perturbation_aucs``
gives, per kind, the AUC of the perturbed copies (positive) against the events
themselves; 0.5 is a detector blind to that kind, below 0.5 one that ranks it
as *more* background-like than background (an inversion).

``perturb_auc`` -- the campaigns' label-free objective for this family (higher
is better) -- is the mean of those AUCs over the kinds the detector did not
train on (``Detector.trained_on``: DDD's distortions smear, drop and add, so
DDD is judged on the MET and pT shifts). A collapsed network (every event at
the centre) or one blind to the background's structure gets 0.5 whatever its
own loss says, which is why it replaces the methods' ``val_loss`` (still
recorded): a small held-out distance also rewards a Deep SVDD that maps
everything to its centre.

The magnitudes were chosen on the synthetic DarkMachines set so that the exact
background density (``BkgDensity``) itself sees each kind (see
``benchmarks/unsupervised_selection.py`` for how the candidates compared).

Example:
    >>> from objectives.unsupervised.toy import toy_events
    >>> sorted(perturb(toy_events(20, seed=0), seed=0))
    ['add', 'drop', 'met_up', 'pt_up', 'smear']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from objectives.metrics import roc_auc
from objectives.unsupervised import edits
from objectives.unsupervised.arrays import EventArrays

__all__ = [
    "MAX_EVENTS",
    "PERTURBATIONS",
    "Perturbation",
    "inversion_threshold",
    "perturb",
    "perturb_auc",
    "perturbation_aucs",
]

#: Held-out events the AUCs are computed on (the first ones; enough for an AUC error of 0.003).
MAX_EVENTS = 20_000


@dataclass(frozen=True)
class Perturbation:
    """One kind of generic anomaly: ``apply(arrays, rng, pool)`` and what it does."""

    name: str
    description: str
    apply: Callable[[EventArrays, np.random.Generator, np.ndarray], EventArrays]


#: The generic anomalies, in the order they are reported.
PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in (
        Perturbation(
            "met_up", "MET times e (log MET + 1)", lambda a, rng, pool: edits.shift_met(a, 1.0)
        ),
        Perturbation(
            "pt_up",
            "every object's pT times e^0.5 (log pT + 0.5, masses kept)",
            lambda a, rng, pool: edits.scale_pt(a, 0.5),
        ),
        Perturbation(
            "add",
            "one background object added to every event",
            lambda a, rng, pool: edits.add_objects(a, 1.0, rng, pool),
        ),
        Perturbation(
            "drop",
            "one object removed from every event",
            lambda a, rng, pool: edits.drop_objects(a, 1.0, rng),
        ),
        Perturbation(
            "smear",
            "log pT, eta, phi and log MET smeared by N(0, 0.3)",
            lambda a, rng, pool: edits.smear(a, 0.3, rng),
        ),
    )
}


def perturb(
    arrays: EventArrays, *, seed: int, kinds: Iterable[str] | None = None
) -> dict[str, EventArrays]:
    """Perturbed copies of ``arrays`` per kind (all of :data:`PERTURBATIONS` by default).

    Added objects are copied from the objects of ``arrays`` themselves; ``seed`` fixes
    every draw (each kind draws from its own stream).
    """
    names = list(PERTURBATIONS) if kinds is None else list(kinds)
    pool = arrays.objects[arrays.mask]
    streams = np.random.SeedSequence([0x9E7, int(seed)]).spawn(len(PERTURBATIONS))
    rngs = dict(zip(PERTURBATIONS, streams, strict=True))
    return {
        name: PERTURBATIONS[name].apply(arrays, np.random.default_rng(rngs[name]), pool)
        for name in names
    }


def perturbation_aucs(
    score: Callable[[EventArrays], np.ndarray],
    background: EventArrays,
    *,
    seed: int = 0,
    kinds: Iterable[str] | None = None,
) -> dict[str, float]:
    """AUC of each kind's perturbed copies of ``background`` against ``background`` itself.

    ``score`` maps events to anomaly scores (higher = more anomalous), e.g. a
    detector's ``score``; the first :data:`MAX_EVENTS` events of ``background`` are
    used. Events a kind cannot change (no object to drop, no free slot) count as ties.
    """
    background = background.take(slice(0, MAX_EVENTS))
    ref = np.asarray(score(background), dtype=np.float64)
    labels = np.r_[np.zeros(len(ref)), np.ones(len(ref))]
    out = {}
    for name, arrays in perturb(background, seed=seed, kinds=kinds).items():
        moved = np.asarray(score(arrays), dtype=np.float64)
        out[name] = roc_auc(np.r_[ref, moved], labels)
    return out


def inversion_threshold(n_events: int) -> float:
    """The AUC below which a kind counts as inverted, measured on ``n_events`` events.

    Two standard errors below 0.5 (the standard error of an AUC of two samples of
    ``n`` events under no difference is ``sqrt(1 / (6 n))``), so that a detector blind
    to a kind is not taken for one that inverts it.
    """
    n = max(min(int(n_events), MAX_EVENTS), 1)
    return 0.5 - 2.0 * float(np.sqrt(1.0 / (6.0 * n)))


def perturb_auc(aucs: dict[str, float], trained_on: Iterable[str] = ()) -> float:
    """The label-free objective: mean AUC over the kinds not in ``trained_on``."""
    left = [v for k, v in aucs.items() if k not in set(trained_on)]
    if not left:
        raise ValueError("perturb_auc: every perturbation kind was left out")
    return float(np.mean(left))
