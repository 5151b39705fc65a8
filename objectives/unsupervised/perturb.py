"""The label-free selection metric of the unsupervised detectors: perturbed background.

A detector is for finding events unlike the background, and no signal label may
pick its hyperparameters. So it is asked to tell held-out background from
copies of the same events perturbed in generic ways (:data:`PERTURBATIONS`)
that it never trained on: missing energy raised, every object harder, one
object more, one object fewer, the kinematics smeared (and, as guards, the two shifts
the other way). ``perturbation_aucs``
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

Two more kinds mirror the shifts: MET divided by e (``met_down``) and every object
softer by e^0.5, held at the background's lowest pT of its type (``pt_down``). They
are guards (``Perturbation.guard_only``): like every kind they are checked for
inversions (an ensemble leaves out a member that ranks any kind below random,
``ensemble.non_inverting``, and the report names final runs that do), but they are not
part of ``perturb_auc``. A detector that learned one direction ("harder is anomalous")
ranks softer events as more background-like than background, and a soft signal with
them: DROCC about the empty event ranks chargino at 0.41-0.46 and ``met_down`` at
0.39-0.44 (seeds 0-2), where the exact density gives 0.617 to both MET shifts. Of 21
DROCC fits (7 settings, 3 seeds), 15 ranked chargino or zprime below random: an
inverted kind among the five flagged 7 of them, among the seven 14 (and 4 of the other
6). Counted in the mean, the guards would pick worse on the synthetic signals (most of
them harder than the background): the Spearman rho over trials with the mean signal AUC
(seed 0, 12 trials) falls from +0.88 to +0.12 for dSVDD and from +0.85 to +0.65 for
DROCC (DDD +0.90 both; docs/benchmarks.md).

Example:
    >>> from objectives.unsupervised.toy import toy_events
    >>> sorted(perturb(toy_events(20, seed=0), seed=0))
    ['add', 'drop', 'met_down', 'met_up', 'pt_down', 'pt_up', 'smear']
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
    "inverted_kinds",
    "perturb",
    "perturb_auc",
    "perturbation_aucs",
]

#: Held-out events the AUCs are computed on (the first ones; enough for an AUC error of 0.003).
MAX_EVENTS = 20_000


@dataclass(frozen=True)
class Perturbation:
    """One kind of generic anomaly: ``apply(arrays, rng, pool)`` and what it does.

    ``guard_only``: checked for inversions (an ensemble leaves out a member that ranks it
    below random; the report names final runs that do), not part of ``perturb_auc``.
    """

    name: str
    description: str
    apply: Callable[[EventArrays, np.random.Generator, np.ndarray], EventArrays]
    guard_only: bool = False


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
        Perturbation(
            "met_down",
            "MET divided by e (log MET - 1)",
            lambda a, rng, pool: edits.shift_met(a, -1.0),
            guard_only=True,
        ),
        Perturbation(
            "pt_down",
            "every object's pT divided by e^0.5, not below the background's lowest pT of its type",
            lambda a, rng, pool: edits.scale_pt(a, -0.5, edits.lowest_log_pt(pool)),
            guard_only=True,
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


def inverted_kinds(aucs: dict[str, float], n_events: int) -> list[str]:
    """The kinds of ``aucs`` (measured on ``n_events`` events) ranked below random by more
    than two standard errors (:func:`inversion_threshold`)."""
    low = inversion_threshold(n_events)
    return [kind for kind, auc in aucs.items() if float(auc) < low]


def perturb_auc(aucs: dict[str, float], trained_on: Iterable[str] = ()) -> float:
    """The label-free objective: mean AUC over the kinds not in ``trained_on`` (nor guards)."""
    guards = {k for k, p in PERTURBATIONS.items() if p.guard_only}
    left = [v for k, v in aucs.items() if k not in set(trained_on) | guards]
    if not left:
        raise ValueError("perturb_auc: every perturbation kind was left out")
    return float(np.mean(left))
