"""Detector metrics in the challenge's shape: AUC, signal efficiency at fixed background efficiency.

The challenge's result files have the columns ``Signal,Model,Chan,AUC,1e-2,1e-3,1e-4``:
the AUC and the signal efficiency at background efficiencies 1e-2, 1e-3,
1e-4 (arXiv:2105.14027). ``challenge_row`` returns one such row. The same
numbers under metric names (``TRUTH_METRICS``: ``auc``, ``eps_s_1e-2``, ...) are
the truth oracles of the unsupervised campaign cells: ``per_signal_truth`` per
signal of a test set, ``mean_over_signals`` their means; ``efficiency_curve``
gives the ROC curve on a fixed grid of background efficiencies (for plots and
medians over runs).

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

__all__ = [
    "CHALLENGE_COLUMNS",
    "CHALLENGE_EFFICIENCIES",
    "TRUTH_METRICS",
    "auc",
    "challenge_csv",
    "challenge_row",
    "efficiency_curve",
    "efficiency_label",
    "mean_over_signals",
    "per_signal_truth",
    "signal_efficiency_at",
    "truth_metrics",
    "truth_row",
]

CHALLENGE_EFFICIENCIES = (1e-2, 1e-3, 1e-4)
#: Columns of the challenge's result files.
CHALLENGE_COLUMNS = ("Signal", "Model", "Chan", "AUC", "1e-2", "1e-3", "1e-4")


def efficiency_label(eps: float) -> str:
    """``1e-2`` for 0.01: the challenge's column name of a background efficiency."""
    return f"{eps:.0e}".replace("e-0", "e-")


#: Truth metrics of one signal: AUC and the signal efficiency at each challenge efficiency.
TRUTH_METRICS = ("auc",) + tuple(f"eps_s_{efficiency_label(e)}" for e in CHALLENGE_EFFICIENCIES)


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


def efficiency_curve(scores_bkg, scores_sig, eps_b) -> np.ndarray:
    """Signal efficiency at each background efficiency of ``eps_b`` (the ROC curve on a grid).

    The cut of :func:`signal_efficiency_at` at every ``eps``: nan where
    ``eps * n_bkg < 1`` or without signal.
    """
    b = np.sort(np.asarray(scores_bkg, dtype=np.float64).ravel())[::-1]
    s = np.sort(np.asarray(scores_sig, dtype=np.float64).ravel())
    k = np.floor(np.asarray(eps_b, dtype=np.float64) * b.size).astype(np.int64)
    out = np.full(k.shape, np.nan)
    ok = (k >= 1) & (k < b.size) & (s.size > 0)
    out[ok] = 1.0 - np.searchsorted(s, b[k[ok]], side="right") / max(s.size, 1)
    out[(k >= b.size) & (s.size > 0)] = 1.0  # every background event kept: no cut
    return out


def truth_metrics(scores_bkg, scores_sig) -> dict[str, float]:
    """``{"auc", "eps_s_1e-2", "eps_s_1e-3", "eps_s_1e-4"}`` of one signal against background."""
    eff = signal_efficiency_at(scores_bkg, scores_sig, CHALLENGE_EFFICIENCIES)
    return {"auc": auc(scores_bkg, scores_sig)} | {
        f"eps_s_{efficiency_label(e)}": v for e, v in eff.items()
    }


def per_signal_truth(scores, test_signal, signals: Sequence[str]) -> dict[str, dict[str, float]]:
    """Signal name -> :func:`truth_metrics` on a test set.

    ``test_signal`` holds, per event of ``scores``, the index of its signal in
    ``signals`` (-1 for background). A signal without events gets nan.
    """
    scores = np.asarray(scores, dtype=np.float64)
    test_signal = np.asarray(test_signal)
    bkg = scores[test_signal < 0]
    return {name: truth_metrics(bkg, scores[test_signal == k]) for k, name in enumerate(signals)}


def mean_over_signals(per_signal: dict[str, dict[str, float]]) -> dict[str, float]:
    """The mean of each truth metric over the signals (nan values left out; all nan: nan)."""
    out = {}
    for metric in TRUTH_METRICS:
        values = [v[metric] for v in per_signal.values() if not np.isnan(v[metric])]
        out[metric] = float(np.mean(values)) if values else float("nan")
    return out


def auc(scores_bkg, scores_sig) -> float:
    """Area under the ROC curve of signal (positive) against background; ties count one half."""
    b = np.asarray(scores_bkg, dtype=np.float64).ravel()
    s = np.asarray(scores_sig, dtype=np.float64).ravel()
    return roc_auc(np.r_[b, s], np.r_[np.zeros(b.size), np.ones(s.size)])


def challenge_row(scores_bkg, scores_sig, *, signal: str, model: str, channel: str) -> dict:
    """One result row ``{"Signal", "Model", "Chan", "AUC", "1e-2", "1e-3", "1e-4"}``."""
    return truth_row(
        truth_metrics(scores_bkg, scores_sig), signal=signal, model=model, channel=channel
    )


def truth_row(truth: dict[str, float], *, signal: str, model: str, channel: str) -> dict:
    """The challenge's row of :func:`truth_metrics` values (``auc``, ``eps_s_1e-2``, ...)."""
    row = {"Signal": signal, "Model": model, "Chan": channel, "AUC": truth["auc"]}
    row.update(
        {efficiency_label(e): truth[f"eps_s_{efficiency_label(e)}"] for e in CHALLENGE_EFFICIENCIES}
    )
    return row


def challenge_csv(rows: Sequence[dict]) -> str:
    """Rows as the text of a challenge result file (header ``Signal,Model,Chan,AUC,1e-2,...``).

    Numbers with 4 significant digits (the challenge's own files round to 2 decimals);
    an undefined efficiency is written ``nan``. Names must not hold commas or newlines.
    """
    lines = [",".join(CHALLENGE_COLUMNS)]
    for row in rows:
        cells = []
        for column in CHALLENGE_COLUMNS:
            value = row[column]
            if column in ("Signal", "Model", "Chan"):
                text = str(value)
                if any(c in text for c in ',"\n\r'):
                    raise ValueError(
                        f"{column}: must not hold commas, quotes or newlines: {text!r}"
                    )
                cells.append(text)
            else:
                cells.append("nan" if np.isnan(value) else f"{value:.4g}")
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"
