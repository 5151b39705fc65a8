"""Named parts of a detector's score: Deep SVDD's members, one per latent dimension.

The DarkMachines challenge lists Deep SVDD once per output dimension
(``DeepSVDD_Reduced_d5``, ``_d8``, ``_d13``, ``_d21``); the family's dSVDD averages
those members. :func:`score_parts` gives each member's test scores, standardised on
the held-out background like the whole detector's, named ``d<dim>``, so a report can
show the members beside their average. An ensemble over trials (several dSVDD fits)
averages each dimension's standardised scores over the fits that have it. A detector
with fewer than two distinct parts has none (the part would be the whole).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector

__all__ = ["score_parts"]


def _standardised(test: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return (test - ref.mean()) / max(float(ref.std()), 1e-12)


def _members(det: Detector, test: EventArrays, val: EventArrays) -> dict[str, np.ndarray]:
    if hasattr(det, "member_scores"):  # a Deep SVDD fit: raw distances per dimension
        raw_test, raw_val = det.member_scores(test), det.member_scores(val)
        return {f"d{d}": _standardised(raw_test[d], raw_val[d]) for d in raw_test}
    sums: dict[str, list[np.ndarray]] = defaultdict(list)
    for member in getattr(det, "members", ()):  # an ensemble of fits
        if isinstance(member, Detector):
            for name, scores in _members(member, test, val).items():
                sums[name].append(scores)
    return {name: np.mean(parts, axis=0) for name, parts in sums.items()}


def score_parts(det: Detector, test: EventArrays, val: EventArrays) -> dict[str, np.ndarray]:
    """Part name -> test scores standardised on ``val`` (held-out background); {} for a
    detector without at least two parts."""
    parts = _members(det, test, val)
    return dict(sorted(parts.items(), key=lambda kv: int(kv[0][1:]))) if len(parts) > 1 else {}
