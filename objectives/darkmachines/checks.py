"""Plausibility checks of DarkMachines files: inputs that would silently mislabel results.

A file can be well-formed and still wrong for what a campaign says it is:

* :func:`unit_problem` -- energies in GeV where the format wants MeV: every object
  of the challenge has pT >= 15 GeV (its object selection; the synthetic generator
  too), so a median object pT below :data:`MIN_MEDIAN_PT_GEV` (1 GeV) after the
  reader's MeV -> GeV conversion means the numbers were written in GeV (or
  smaller); a file without objects is judged by its median MET the same way;
* :func:`pass_fraction` and :func:`describe_cuts` -- with ``apply_cuts = false`` the
  files are taken as one channel's events: what share of them passes that
  channel's cuts, and the cuts in words;
* :data:`MIN_TRAIN_EVENTS` -- the fewest background events a detector may train on
  under half statistics (a channel of a small file can keep a handful).

Only numpy; the format module's arrays are read as they are.

Example:
    >>> describe_cuts(CHANNELS["3"])
    'MET >= 100 GeV, HT >= 600 GeV'
"""

from __future__ import annotations

import math

import numpy as np

from objectives.darkmachines.format import CHANNELS, Cuts, ObjectEvents, passes

__all__ = [
    "CHANNELS",
    "MIN_MEDIAN_PT_GEV",
    "MIN_TRAIN_EVENTS",
    "describe_cuts",
    "pass_fraction",
    "unit_problem",
]

#: Below this median object pT (GeV) a file's numbers are not in MeV.
MIN_MEDIAN_PT_GEV = 1.0
#: The fewest background events a detector trains on under half statistics: fewer, and
#: it learns the sample, not the background (every default is sized for thousands).
MIN_TRAIN_EVENTS = 200


def _median_gev(log_gev: np.ndarray) -> float:
    return float(np.exp(np.median(log_gev))) if log_gev.size else math.nan


def unit_problem(ev: ObjectEvents) -> str | None:
    """Why the events look like GeV (or smaller) instead of MeV, or None."""
    pt = _median_gev(ev.kinematics[..., 1][ev.mask].astype(np.float64))
    met = _median_gev(ev.event[:, 0].astype(np.float64))
    if not math.isnan(pt):
        if pt >= MIN_MEDIAN_PT_GEV:
            return None
        what = f"median object pT {pt:.3g} GeV (median MET {met:.3g} GeV)"
    elif not math.isnan(met) and met < MIN_MEDIAN_PT_GEV:
        what = f"median MET {met:.3g} GeV and no objects"
    else:
        return None
    return (
        f"{what}, far below any DarkMachines object (pT >= 15 GeV): the numbers look like "
        "GeV, but the format's energies, pT and MET are in MeV; multiply them by 1000"
    )


def pass_fraction(ev: ObjectEvents, cuts: Cuts) -> float:
    """Share of the events passing ``cuts`` (nan without events)."""
    return float(np.mean(passes(ev, cuts))) if len(ev) else math.nan


def describe_cuts(cuts: Cuts) -> str:
    """The cuts in words, e.g. ``MET >= 50 GeV, >= 3 lepton(s) with pT >= 15 GeV``."""
    parts = [
        f"{label} >= {value:g}{unit}"
        for label, value, unit in (
            ("MET", cuts.min_met, " GeV"),
            ("HT", cuts.min_ht, " GeV"),
            ("MET/HT", cuts.min_met_over_ht, ""),
        )
        if value > 0
    ]
    parts += [
        f">= {o.n} {o.kind}(s)" + (f" with pT >= {o.min_pt:g} GeV" if o.min_pt else "")
        for o in cuts.objects
    ]
    return ", ".join(parts) or "none"
