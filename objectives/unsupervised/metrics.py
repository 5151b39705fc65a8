"""Detector metrics in the challenge's shape: AUC, signal efficiency at fixed background efficiency.

The challenge's result files have the columns ``Signal,Model,Chan,AUC,1e-2,1e-3,1e-4``:
the AUC and the signal efficiency at background efficiencies 1e-2, 1e-3,
1e-4 (arXiv:2105.14027). ``challenge_row`` returns one such row.

Example:
    >>> import numpy as np
    >>> bkg = np.arange(1000.0); sig = np.arange(500.0, 1500.0)
    >>> signal_efficiency_at(bkg, sig, eps_b=(1e-2,))
    {0.01: 0.51}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from objectives.metrics import roc_auc

__all__ = ["CHALLENGE_EFFICIENCIES", "auc", "challenge_row", "signal_efficiency_at"]

CHALLENGE_EFFICIENCIES = (1e-2, 1e-3, 1e-4)


def signal_efficiency_at(
    scores_bkg, scores_sig, eps_b: Sequence[float] = CHALLENGE_EFFICIENCIES
) -> dict[float, float]:
    """Fraction of signal above the cut that keeps at most ``eps`` of the background, per ``eps``.

    The cut t is the ``floor(eps * n_bkg) + 1``-th largest background score and
    an event passes when ``score > t`` (ties never pass), so the background
    efficiency is at most ``eps``. Nan when ``eps * n_bkg < 1`` (too little
    background to measure that efficiency) or when there is no signal.
    """
    b = np.sort(np.asarray(scores_bkg, dtype=np.float64).ravel())[::-1]
    s = np.asarray(scores_sig, dtype=np.float64).ravel()
    out = {}
    for eps in eps_b:
        k = int(np.floor(eps * b.size))
        if k < 1 or s.size == 0:
            out[eps] = float("nan")
            continue
        out[eps] = float(np.mean(s > b[k]))
    return out


def auc(scores_bkg, scores_sig) -> float:
    """Area under the ROC curve of signal (positive) against background; ties count one half."""
    b = np.asarray(scores_bkg, dtype=np.float64).ravel()
    s = np.asarray(scores_sig, dtype=np.float64).ravel()
    return roc_auc(np.r_[b, s], np.r_[np.zeros(b.size), np.ones(s.size)])


def challenge_row(scores_bkg, scores_sig, *, signal: str, model: str, channel: str) -> dict:
    """One result row ``{"Signal", "Model", "Chan", "AUC", "1e-2", "1e-3", "1e-4"}``."""
    eff = signal_efficiency_at(scores_bkg, scores_sig, CHALLENGE_EFFICIENCIES)
    row = {"Signal": signal, "Model": model, "Chan": channel, "AUC": auc(scores_bkg, scores_sig)}
    row.update({f"{e:.0e}".replace("e-0", "e-"): v for e, v in eff.items()})
    return row
