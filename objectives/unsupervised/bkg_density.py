"""The signal-agnostic limit: how rare the background makes an event, with its exact density.

With no knowledge of the signal, the yardstick of a detector is how atypical the
background makes an event. On the synthetic DarkMachines set the generator knows the
background density exactly (:class:`~objectives.darkmachines.synthetic.DMSyntheticModel`),
but ``-log p_bkg`` itself is no fair yardstick across events with different numbers of
objects: an event with N objects has a density in 3N + 2 dimensions (w.r.t. Lebesgue
measure on log pT, eta, phi per object and log MET, METphi), every object multiplies it
by a factor below 1, and across multiplicities ``-log p_bkg`` mostly counts objects (rank
correlation 0.93 with the count on the synthetic background): it calls an event with
fewer objects "typical" whatever its kinematics. Densities of different dimension are
not comparable at all (a change of units rescales each differently).

``BkgDensity`` therefore ranks events by a probability, which has no dimension: the
joint p-value of :class:`~objectives.unsupervised.calibration.MultiplicityTails` with
``-log p_bkg`` as the score,

    p(x) = F(M(n) T_n(x)),  T_n(x) = P_bkg(log p(X) <= log p(x) | N = n),

``T_n`` the background's own tail probability of its density among events with as many
objects as x (uniform under the background for every n), ``M(n)`` the rarity of the
multiplicity (the background's probability of a multiplicity at most as probable), so
``M(n) T_n(x)`` is the background's probability of an event at least as rare in
multiplicity and in density; ``F`` makes it a p-value. Score ``-log p(x)``. Within one
multiplicity it ranks events exactly as ``-log p_bkg`` does.

``T_n`` is estimated on :data:`REFERENCE_PER_COUNT` events per multiplicity drawn from
the generator given that multiplicity (exactly:
:meth:`~objectives.darkmachines.synthetic.DMSyntheticModel.sample_background_given_count`),
written and parsed through the text format like the files; ``P(N = n)`` is exact. Under
a channel's cuts the reference keeps the events that pass, and ``P(N = n | pass)`` is
the exact ``P(N = n)`` times the reference's pass rate (pseudo-count 1/2); a
multiplicity that few reference events pass has a coarser ``T_n``. The
reference is computed once per process and cut, and cached with the campaign's events
(``cache_dir``). Nothing is trained; ``val_loss`` is the held-out mean ``-log p_bkg``.

The density is defined for events read in full: files read with fewer object slots than
the generator's 20 (``max_objects``), where events were truncated, are refused, as are
files that are not the generator's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from objectives.darkmachines.format import Cuts, ObjectEvents
from objectives.darkmachines.synthetic import N_MAX, DMSyntheticModel
from objectives.errors import DataError
from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.calibration import MultiplicityTails

__all__ = [
    "REFERENCE_PER_COUNT",
    "BkgDensityScore",
    "as_object_events",
    "background_rarity",
    "background_tails",
    "exact_background_density",
]

#: Reference events drawn from the generator per object multiplicity (0 .. 20).
REFERENCE_PER_COUNT = 10_000
_N_MAX = sum(N_MAX.values())
_MEMO: dict[tuple, MultiplicityTails] = {}


def as_object_events(arrays: EventArrays) -> ObjectEvents:
    """The arrays as the format module's events (what the generator's densities read)."""
    n = len(arrays)
    return ObjectEvents(
        kinematics=arrays.kinematics,
        types=arrays.type_codes.astype(np.int8),
        mask=arrays.mask,
        event=arrays.event,
        process=np.full(n, "", dtype=str),
        weight=np.ones(n),
        event_id=np.arange(n).astype(str),
        path=None,
    )


def _reference(cuts: Cuts | None, per_count: int, seed: int) -> dict[str, np.ndarray]:
    """``-log p_bkg`` and multiplicity of the reference events that pass ``cuts``, and the
    background's multiplicity pmf (given the cuts)."""
    from objectives.darkmachines.format import events_from_records, passes
    from objectives.darkmachines.synthetic import GENERATOR_VERSION

    model = DMSyntheticModel()
    rng = np.random.default_rng(np.random.SeedSequence([seed, GENERATOR_VERSION, 25]))
    pmf = model.background_count_pmf()
    scores, counts = [], []
    for n in range(_N_MAX + 1):
        ev = events_from_records(model.sample_background_given_count(n, per_count, rng))
        if cuts is not None:
            ok = passes(ev, cuts)
            pmf[n] *= (ok.sum() + 0.5) / (per_count + 1)
            ev = ev.subset(ok)
        scores.append(-model.log_prob_background(ev))
        counts.append(np.full(len(ev), n))
    return {"scores": np.concatenate(scores), "n": np.concatenate(counts), "pmf": pmf / pmf.sum()}


def background_tails(
    cuts: Cuts | None = None,
    *,
    per_count: int = REFERENCE_PER_COUNT,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> MultiplicityTails:
    """The calibration of ``-log p_bkg`` per multiplicity (once per process and cut; with
    ``cache_dir``, built once into that artifact cache)."""
    memo = (cuts, per_count, seed)
    if memo in _MEMO:
        return _MEMO[memo]
    if cache_dir is None:
        ref = _reference(cuts, per_count, seed)
    else:
        from objectives.cache import ArtifactCache
        from objectives.darkmachines.synthetic import GENERATOR_VERSION

        def build(out: Path) -> dict:
            np.savez(out / "reference.npz", **_reference(cuts, per_count, seed))
            return {}

        fields = {"generator_version": GENERATOR_VERSION, "per_count": per_count, "seed": seed,
                  "cuts": None if cuts is None else asdict(cuts)}  # fmt: skip
        entry = ArtifactCache(cache_dir).get_or_build("bkg-density-reference", fields, build)
        with np.load(entry.file("reference.npz"), allow_pickle=False) as z:
            ref = {name: z[name] for name in z.files}
    tails = MultiplicityTails.fit(ref["scores"], ref["n"], n_max=_N_MAX, pmf=ref["pmf"])
    _MEMO[memo] = tails
    return tails


def background_rarity(
    model: DMSyntheticModel, tails: MultiplicityTails, ev: ObjectEvents
) -> np.ndarray:
    """The yardstick's score ``-log F(M(n) T_n(x))`` of events read in full."""
    return tails.score(-model.log_prob_background(ev), ev.mask.sum(axis=1))


@dataclass(eq=False)
class BkgDensityScore(Detector):
    """Score = ``-log`` of the background's p-value of an event at least as rare in
    multiplicity and in exact density; nothing trained."""

    model: DMSyntheticModel
    tails: MultiplicityTails
    val_loss: float
    info: dict[str, Any] = field(default_factory=dict)
    method: str = "BkgDensity"

    def log_density(self, arrays: EventArrays) -> np.ndarray:
        """The exact ``log p_bkg`` (a density of 3N + 2 dimensions: compare within one N)."""
        return self.model.log_prob_background(as_object_events(arrays))

    def score(self, arrays: EventArrays) -> np.ndarray:
        return background_rarity(self.model, self.tails, as_object_events(arrays))


def exact_background_density(
    val: EventArrays,
    *,
    synthetic: bool,
    n_truncated: int = 0,
    cuts: Cuts | None = None,
    cache_dir: str | Path | None = None,
) -> BkgDensityScore:
    """The yardstick for events selected by ``cuts``; ``val`` (held-out background) gives
    ``val_loss`` (its mean ``-log p_bkg``).

    Raises DataError unless the events are the synthetic generator's (``synthetic``),
    read without truncation (``n_truncated == 0``).
    """
    if not synthetic:
        raise DataError(
            "BkgDensity: needs the synthetic DarkMachines set (the generator's exact "
            "background density); a user's files have none"
        )
    if n_truncated:
        raise DataError(
            f"BkgDensity: {n_truncated} event(s) were truncated to fewer object slots than "
            f"the generator's {_N_MAX}; read with data.max_objects >= {_N_MAX}"
        )
    model = DMSyntheticModel()
    tails = background_tails(cuts, cache_dir=cache_dir)
    info = {"method": "BkgDensity", "n_val": len(val), "reference_per_count": REFERENCE_PER_COUNT}
    det = BkgDensityScore(model, tails, 0.0, info)
    det.val_loss = float(-np.mean(det.log_density(val)))
    return det
