"""A score's tail probability within its object multiplicity, and the multiplicity's rarity.

An event with N objects is a point in a space of 3N + 2 dimensions (log pT, eta, phi per
object; log MET, METphi): densities, and the scores that follow them, of events with
different N are not comparable, and a density ranks an event with more objects as rarer
because every object multiplies it by a factor below 1 (its azimuth alone by 1/2 pi).
:class:`MultiplicityTails` puts every multiplicity on one scale, the background's own
probabilities:

* ``T_n(s) = P_bkg(S >= s | N = n)``: the tail probability of score ``s`` among background
  events with the same number of objects (uniform on (0, 1) under the background for
  every n: no multiplicity is "typical" by construction);
* ``M(n) = sum of P(k) over the k with P(k) <= P(n)``: how rare the multiplicity itself
  is (the tail probability of the multiplicity's distribution, ordered by probability);
* the joint p-value ``p = F(M(n) T_n(s))``: ``M(n) T_n(s)`` is the background's probability
  of an event at least as rare in multiplicity AND in score at its own multiplicity
  (under the background T is uniform and independent of N), ``F(c) = sum_k P(k) min(1,
  c / M(k))`` its distribution function under the background, so p is uniform too.

:meth:`MultiplicityTails.score` is ``-log p`` (``multiplicity=False``: ``-log T_n``):
higher = more anomalous, as every score of the family.

Estimation from reference scores of background events (a detector's held-out
background; the generator's exact samples for ``BkgDensity``): ``T = (#{reference >= s}
+ 1) / (k + 1)`` among the k reference events of the multiplicity (a conformal p-value,
exactly uniform over ``{1/(k+1), ..., 1}`` for a new background event); above the top
1 % of k >= :data:`TAIL_MIN_EVENTS` reference scores an exponential tail fitted to the
excesses (peaks over a threshold) continues it, so events beyond every reference event
stay ranked. Every multiplicity has its own reference, however few events it holds:
pooling multiplicities would bring back the bias this removes, while a conformal
p-value stays valid for any k, only coarser (k = 0: T = 1, no information beyond the
multiplicity's rarity). Multiplicities above ``n_max`` count as ``n_max``. ``P(k)``:
exact where given (the generator), else the reference frequencies with a pseudo-count
of 1/2 (a multiplicity never seen is rare, not impossible).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> n = rng.integers(0, 3, 3000); s = rng.normal(size=3000) + n  # more objects, higher s
    >>> tails = MultiplicityTails.fit(s, n, n_max=2)
    >>> t = tails.within(s, n)
    >>> [round(float(np.mean(t[n == k] < 0.1)), 2) for k in range(3)]  # uniform per n
    [0.1, 0.1, 0.1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector

__all__ = [
    "CALIBRATIONS",
    "TAIL_MIN_EVENTS",
    "CalibratedDetector",
    "MultiplicityTails",
    "calibrated",
]

#: Values of a detector's ``calibration`` hyperparameter: its raw score, or the joint
#: p-value of the score within its multiplicity and of the multiplicity.
CALIBRATIONS = ("none", "multiplicity")

#: Fewest reference events of a multiplicity for the exponential tail beyond its top 1 %.
TAIL_MIN_EVENTS = 1000
_TAIL_SHARE = 0.01
#: Smallest p-value (a score of at most -log of it, ~690).
_P_FLOOR = 1e-300


def _tail(ref: np.ndarray) -> tuple[float, float, float] | None:
    """(threshold u, T at u, mean excess) of the exponential tail above the top 1 %."""
    k = len(ref)
    if k < TAIL_MIN_EVENTS:
        return None
    m = max(10, int(math.ceil(_TAIL_SHARE * k)))
    u = float(ref[k - m - 1])
    excess = ref[k - m :] - u
    beta = float(np.mean(excess))
    if not beta > 0:
        return None
    return u, (m + 1) / (k + 1), beta


@dataclass(frozen=True)
class MultiplicityTails:
    """Tail probabilities of a score per object multiplicity (see the module docstring).

    Attributes:
        references: per multiplicity 0 .. n_max, the reference scores sorted ascending.
        tails: per multiplicity, the exponential tail ``(u, T(u), mean excess)`` or None.
        pmf: ``(n_max + 1,)`` the background's P(N = n).
    """

    references: tuple[np.ndarray, ...]
    tails: tuple[tuple[float, float, float] | None, ...]
    pmf: np.ndarray

    @classmethod
    def fit(
        cls,
        scores,
        n_objects,
        *,
        n_max: int,
        pmf=None,
    ) -> MultiplicityTails:
        """Calibration from background ``scores`` of events with ``n_objects`` objects.

        ``n_max``: the largest multiplicity (larger ones count as ``n_max``); ``pmf``:
        the exact P(N = n), n = 0 .. n_max (None: the reference frequencies, pseudo-count
        1/2).
        """
        scores = np.asarray(scores, dtype=np.float64).ravel()
        n = np.minimum(np.asarray(n_objects, dtype=np.int64).ravel(), n_max)
        if scores.shape != n.shape or len(scores) == 0:
            raise ValueError(f"scores, n_objects: need equal non-zero lengths, got "
                             f"{scores.shape} and {n.shape}")  # fmt: skip
        counts = np.bincount(n, minlength=n_max + 1)
        if pmf is None:
            pmf = (counts + 0.5) / (counts.sum() + 0.5 * len(counts))
        pmf = np.asarray(pmf, dtype=np.float64)
        if pmf.shape != (n_max + 1,) or np.any(pmf < 0) or not pmf.sum() > 0:
            raise ValueError(f"pmf: need {n_max + 1} non-negative values, got {pmf!r}")
        refs = tuple(np.sort(scores[n == k]) for k in range(n_max + 1))
        return cls(refs, tuple(_tail(r) for r in refs), pmf / pmf.sum())

    @property
    def n_max(self) -> int:
        return len(self.pmf) - 1

    def _n(self, n_objects) -> np.ndarray:
        return np.minimum(np.asarray(n_objects, dtype=np.int64), self.n_max)

    def rarity(self, n_objects) -> np.ndarray:
        """M(n): the background's probability of a multiplicity at most as probable as n."""
        at_most = (self.pmf[None, :] <= self.pmf[:, None]) * self.pmf[None, :]
        return at_most.sum(axis=1)[self._n(n_objects)]

    def within(self, scores, n_objects) -> np.ndarray:
        """T_n(s): the tail probability of each score among background events with as many
        objects (the conformal estimate, exponential beyond the top 1 %)."""
        s = np.asarray(scores, dtype=np.float64)
        n = self._n(n_objects)
        out = np.ones(len(s))
        for m in np.unique(n):
            idx = np.flatnonzero(n == m)
            ref = self.references[m]
            k = len(ref)
            out[idx] = (k - np.searchsorted(ref, s[idx], side="left") + 1) / (k + 1)
            if self.tails[m] is not None:
                u, t_u, beta = self.tails[m]
                far = idx[s[idx] > u]
                out[far] = t_u * np.exp(-(s[far] - u) / beta)
        return out

    def p_value(self, scores, n_objects, *, multiplicity: bool = True) -> np.ndarray:
        """The joint p-value ``F(M(n) T_n(s))`` (``multiplicity=False``: ``T_n(s)``)."""
        t = self.within(scores, n_objects)
        if not multiplicity:
            return np.maximum(t, _P_FLOOR)
        c = self.rarity(n_objects) * t
        m_all = self.rarity(np.arange(self.n_max + 1))
        keep = self.pmf > 0
        ratio = c[:, None] / np.where(keep, m_all, 1.0)[None, :]
        p = np.sum(self.pmf[keep][None, :] * np.minimum(1.0, ratio[:, keep]), axis=1)
        return np.maximum(p, _P_FLOOR)

    def score(self, scores, n_objects, *, multiplicity: bool = True) -> np.ndarray:
        """``-log`` of :meth:`p_value`: higher = rarer under the background."""
        return -np.log(self.p_value(scores, n_objects, multiplicity=multiplicity))


def _multiplicity(arrays: EventArrays) -> np.ndarray:
    return arrays.mask.sum(axis=1)


@dataclass(eq=False)
class CalibratedDetector(Detector):
    """A trained detector whose score is read as ``-log`` of its joint p-value on held-out
    background (:meth:`MultiplicityTails.score`); Deep SVDD's members likewise, each on
    its own. Every other attribute is the inner detector's."""

    inner: Detector
    tails: MultiplicityTails
    member_tails: dict[int, MultiplicityTails] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, det: Detector, val: EventArrays) -> CalibratedDetector:
        """``det`` calibrated on ``val`` (held-out background, never its training set)."""
        n, n_max = _multiplicity(val), val.max_objects
        tails = MultiplicityTails.fit(det.score(val), n, n_max=n_max)
        members = {}
        if hasattr(det, "member_scores"):
            members = {d: MultiplicityTails.fit(s, n, n_max=n_max)
                       for d, s in det.member_scores(val).items()}  # fmt: skip
        return cls(det, tails, members, {**det.info, "calibration": "multiplicity"})

    @property
    def method(self) -> str:  # type: ignore[override]
        return self.inner.method

    @property
    def val_loss(self) -> float | None:  # type: ignore[override]
        return self.inner.val_loss

    @property
    def trained_on(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.inner.trained_on

    def score(self, arrays: EventArrays) -> np.ndarray:
        return self.tails.score(self.inner.score(arrays), _multiplicity(arrays))

    def __getattr__(self, name: str) -> Any:
        """Everything else is the inner detector's (a DDD model's AUC, its distortion)."""
        if name == "inner":  # not set yet (copy, unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def member_scores(self, arrays: EventArrays) -> dict[int, np.ndarray]:
        """Deep SVDD's members' calibrated scores, keyed by output dimension ({} for a
        detector without members)."""
        if not self.member_tails:
            return {}
        n = _multiplicity(arrays)
        raw = self.inner.member_scores(arrays)  # type: ignore[attr-defined]
        return {d: self.member_tails[d].score(s, n) for d, s in raw.items()}


def calibrated(det: Detector, val: EventArrays, calibration: str) -> Detector:
    """``det`` as its ``calibration`` hyperparameter says (one of :data:`CALIBRATIONS`)."""
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration: must be one of {', '.join(CALIBRATIONS)}, "
                         f"got {calibration!r}")  # fmt: skip
    return det if calibration == "none" else CalibratedDetector.fit(det, val)
