"""The signal-agnostic limit: ``-log p_bkg`` with the synthetic generator's exact density.

With no knowledge of the signal, ranking events by how unlikely the background
makes them is the optimal score against a signal spread over the whole feature
space; on the synthetic DarkMachines set the generator knows ``p_bkg``
exactly (:class:`~objectives.darkmachines.synthetic.DMSyntheticModel`), so this
score is the yardstick of every unsupervised detector. Nothing is trained.
Under a channel's cuts the selected background's density is ``p_bkg`` over the
channel's acceptance, a constant factor: the ranking is unchanged and
``val_loss`` (mean ``-log p_bkg`` of the held-out background) shifts by
``log P(pass)``.

The density is defined for events read in full: files read with fewer object
slots than the generator's 20 (``max_objects``), where events were truncated,
are refused, as are files that are not the generator's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from objectives.darkmachines.format import ObjectEvents
from objectives.darkmachines.synthetic import N_MAX, DMSyntheticModel
from objectives.errors import DataError
from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector

__all__ = ["BkgDensityScore", "as_object_events", "exact_background_density"]


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


@dataclass(eq=False)
class BkgDensityScore(Detector):
    """Score = ``-log p_bkg`` (exact); nothing trained."""

    model: DMSyntheticModel
    val_loss: float
    info: dict[str, Any] = field(default_factory=dict)
    method: str = "BkgDensity"

    def score(self, arrays: EventArrays) -> np.ndarray:
        return -self.model.log_prob_background(as_object_events(arrays))


def exact_background_density(
    val: EventArrays, *, synthetic: bool, n_truncated: int = 0
) -> BkgDensityScore:
    """The exact ``-log p_bkg`` score; ``val`` (held-out background) gives ``val_loss``.

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
            f"the generator's {sum(N_MAX.values())}; read with data.max_objects >= "
            f"{sum(N_MAX.values())}"
        )
    model = DMSyntheticModel()
    det = BkgDensityScore(model, 0.0, {"method": "BkgDensity", "n_val": len(val)})
    det.val_loss = float(np.mean(det.score(val)))
    return det
