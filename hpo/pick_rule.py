"""The mean pick's rule toward the defaults (``final.defaults_margin``).

Every trial of a study is evaluated on the same repetition splits, so a candidate's
per-repetition values and the defaults trial's are paired. The best trial by its mean
over repetitions beats the defaults by ARGOS partly by luck: the maximum of many noisy
draws. A one-standard-error rule keeps the defaults unless the candidate's mean is
ahead, in the metric's direction, by more than ``margin`` x the standard error of the
paired per-repetition differences. ``margin = 0`` is the plain best (the paper's); with
fewer than two paired repetitions there is no standard error and the plain best stands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = ["PickDecision", "decide", "inactive_warning", "runs_kept_defaults"]


@dataclass(frozen=True)
class PickDecision:
    """Whether the defaults trial stays the pick, and why.

    ``difference`` is the candidate's mean advantage over the defaults in the metric's
    direction (positive: the candidate is better), ``standard_error`` that of the paired
    per-repetition differences; both None where the rule could not be applied.
    """

    kept_defaults: bool
    difference: float | None
    standard_error: float | None
    margin: float
    repetitions: int
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(v) -> bool:
    return v is not None and math.isfinite(float(v))


def decide(
    candidate: Sequence[float | None],
    defaults: Sequence[float | None],
    direction: str,
    margin: float,
) -> PickDecision:
    """Keep the defaults unless ``candidate`` beats them by more than ``margin`` s.e.

    ``candidate`` and ``defaults`` are the two trials' values per repetition (the same
    splits; None or nan where a repetition has no value: that pair is left out);
    ``direction`` is ``"maximize"`` or ``"minimize"``.
    """
    sign = 1.0 if direction == "maximize" else -1.0
    pairs = [
        (float(c), float(d))
        for c, d in zip(candidate, defaults, strict=False)
        if _finite(c) and _finite(d)
    ]
    n = len(pairs)
    if margin == 0:
        return PickDecision(False, None, None, margin, n, "margin 0: the plain best trial")
    if n < 2:
        return PickDecision(
            False, None, None, margin, n,
            f"{n} paired repetition(s), no standard error: the plain best trial",
        )  # fmt: skip
    diffs = [sign * (c - d) for c, d in pairs]
    mean = sum(diffs) / n
    var = sum((x - mean) ** 2 for x in diffs) / (n - 1)
    se = math.sqrt(var / n)
    if mean > margin * se:
        why = f"ahead of the defaults by {mean:.4g} > {margin:g} x s.e. {se:.4g}"
        return PickDecision(False, mean, se, margin, n, why)
    why = f"ahead of the defaults by {mean:.4g} <= {margin:g} x s.e. {se:.4g}: the defaults kept"
    return PickDecision(True, mean, se, margin, n, why)


def runs_kept_defaults(runs) -> bool:
    """Whether every final run record in ``runs`` trained the defaults trial because the
    export's rule kept it (False for no runs)."""
    runs = list(runs)
    return bool(runs) and all(r["picked"].get("kept_defaults") for r in runs)


def inactive_warning(repetitions: int, margin: float, pick: str) -> str | None:
    """The warning for a campaign whose rule can never act: one repetition per trial
    leaves no standard error, so ``best.json`` is the plain best trial (None otherwise)."""
    if repetitions >= 2 or margin == 0 or pick != "mean":
        return None
    return (
        f"warning: search.repetitions = {repetitions}: final.defaults_margin = {margin:g} "
        "cannot act (no standard error over one repetition), so best.json is the plain "
        "best trial, which beats the defaults partly by luck; set search.repetitions >= 2 "
        "(docs/selection.md)"
    )
