"""Detector metrics in the challenge's shape: AUC, signal efficiency at fixed background efficiency.

The challenge's result files have the columns ``Signal,Model,Chan,AUC,1e-2,1e-3,1e-4``:
the AUC and the signal efficiency at background efficiencies 1e-2, 1e-3,
1e-4 (arXiv:2105.14027). ``challenge_row`` returns one such row. The same
numbers under metric names (``TRUTH_METRICS``: ``auc``, ``eps_s_1e-2``, ...) are
the truth oracles of the unsupervised campaign cells: ``per_signal_truth`` per
signal of a test set, ``mean_over_signals`` their means; ``efficiency_curve``
gives the ROC curve on a fixed grid of background efficiencies (for plots and
medians over runs).

Event weights (the third field of the challenge's files): every function takes
optional weights of the background and of the signal events, ``w_bkg`` and
``w_sig``. With weights, the AUC is the weighted probability that a signal event
outscores a background event (ties one half), the cut keeps at most a weighted
share ``eps`` of the background and the signal efficiency is the weighted share of
signal above it. Equal weights give exactly the unweighted numbers (the
unweighted code runs).

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


#: Relative slack of the weighted cut: a cumulative weight within it of eps counts as eps.
_WEIGHT_TOL = 1e-9


def _weights(w, n: int) -> np.ndarray | None:
    """The weights as float64 (n,), or None where they change nothing (None, all equal)."""
    if w is None:
        return None
    w = np.asarray(w, dtype=np.float64).ravel()
    if w.shape != (n,):
        raise ValueError(f"weights: expected {n} values, got {w.shape}")
    return None if n == 0 or np.all(w == w[0]) else w


def _cut_ranks(b_sorted_desc: np.ndarray, w_desc: np.ndarray | None, eps) -> np.ndarray:
    """Per ``eps``: how many of the highest background scores the cut may keep.

    Unweighted ``floor(eps * n)``; weighted, the most leading events whose weights add
    up to at most a share ``eps`` of the total.
    """
    eps = np.asarray(eps, dtype=np.float64)
    if w_desc is None:
        return np.floor(eps * b_sorted_desc.size).astype(np.int64)
    share = np.cumsum(w_desc) / w_desc.sum()
    return np.searchsorted(share, eps * (1 + _WEIGHT_TOL), side="right").astype(np.int64)


def _above(s: np.ndarray, w_sig: np.ndarray | None, cuts: np.ndarray) -> np.ndarray:
    """Share of the signal (weighted) strictly above each cut."""
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    at_or_below = np.searchsorted(s_sorted, cuts, side="right")
    if w_sig is None:
        return (s.size - at_or_below) / max(s.size, 1)
    above = np.r_[np.cumsum(w_sig[order][::-1])[::-1], 0.0]  # weight from each index up
    return above[at_or_below] / above[0]


def efficiency_curve(scores_bkg, scores_sig, eps_b, *, w_bkg=None, w_sig=None) -> np.ndarray:
    """Signal efficiency at each background efficiency of ``eps_b`` (the ROC curve on a grid).

    The cut t at each ``eps`` is the ``k + 1``-th largest background score, ``k`` the
    number of leading background events a share ``eps`` holds (``floor(eps * n_bkg)``
    without weights); an event passes when ``score > t`` (ties never pass), so the
    background efficiency is at most ``eps``. Nan where ``k < 1`` (too little background
    to measure that efficiency) or without signal; 1 where every background event is kept.
    """
    b = np.asarray(scores_bkg, dtype=np.float64).ravel()
    s = np.asarray(scores_sig, dtype=np.float64).ravel()
    wb, ws = _weights(w_bkg, b.size), _weights(w_sig, s.size)
    order = np.argsort(-b, kind="stable")
    b = b[order]
    k = _cut_ranks(b, None if wb is None else wb[order], np.atleast_1d(eps_b))
    out = np.full(k.shape, np.nan)
    ok = (k >= 1) & (k < b.size) & (s.size > 0)
    out[ok] = _above(s, ws, b[k[ok]])
    out[(k >= b.size) & (s.size > 0)] = 1.0  # every background event kept: no cut
    return out


def signal_efficiency_at(
    scores_bkg,
    scores_sig,
    eps_b: Sequence[float] = CHALLENGE_EFFICIENCIES,
    *,
    w_bkg=None,
    w_sig=None,
) -> dict[float, float]:
    """Fraction of signal above the cut that keeps at most ``eps`` of the background, per ``eps``.

    The cut of :func:`efficiency_curve`; nan when ``eps * n_bkg < 1`` (too little
    background to measure that efficiency) or when there is no signal.
    """
    effs = efficiency_curve(scores_bkg, scores_sig, list(eps_b), w_bkg=w_bkg, w_sig=w_sig)
    return {eps: float(v) for eps, v in zip(eps_b, effs, strict=True)}


def truth_metrics(scores_bkg, scores_sig, *, w_bkg=None, w_sig=None) -> dict[str, float]:
    """``{"auc", "eps_s_1e-2", "eps_s_1e-3", "eps_s_1e-4"}`` of one signal against background."""
    weights = {"w_bkg": w_bkg, "w_sig": w_sig}
    eff = signal_efficiency_at(scores_bkg, scores_sig, CHALLENGE_EFFICIENCIES, **weights)
    return {"auc": auc(scores_bkg, scores_sig, **weights)} | {
        f"eps_s_{efficiency_label(e)}": v for e, v in eff.items()
    }


def per_signal_truth(
    scores, test_signal, signals: Sequence[str], weights=None
) -> dict[str, dict[str, float]]:
    """Signal name -> :func:`truth_metrics` on a test set.

    ``test_signal`` holds, per event of ``scores``, the index of its signal in
    ``signals`` (-1 for background); ``weights`` (None: unweighted) the event weights.
    A signal without events gets nan.
    """
    scores = np.asarray(scores, dtype=np.float64)
    test_signal = np.asarray(test_signal)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    bkg = test_signal < 0
    out = {}
    for k, name in enumerate(signals):
        sig = test_signal == k
        out[name] = truth_metrics(
            scores[bkg],
            scores[sig],
            w_bkg=None if w is None else w[bkg],
            w_sig=None if w is None else w[sig],
        )
    return out


def mean_over_signals(per_signal: dict[str, dict[str, float]]) -> dict[str, float]:
    """The mean of each truth metric over the signals (nan values left out; all nan: nan)."""
    out = {}
    for metric in TRUTH_METRICS:
        values = [v[metric] for v in per_signal.values() if not np.isnan(v[metric])]
        out[metric] = float(np.mean(values)) if values else float("nan")
    return out


def auc(scores_bkg, scores_sig, *, w_bkg=None, w_sig=None) -> float:
    """Area under the ROC curve of signal (positive) against background; ties count one half.

    With weights: the weighted probability that a signal event outscores a background one.
    """
    b = np.asarray(scores_bkg, dtype=np.float64).ravel()
    s = np.asarray(scores_sig, dtype=np.float64).ravel()
    wb, ws = _weights(w_bkg, b.size), _weights(w_sig, s.size)
    if wb is None and ws is None:
        return roc_auc(np.r_[b, s], np.r_[np.zeros(b.size), np.ones(s.size)])
    if b.size == 0 or s.size == 0:
        return float("nan")
    wb = np.ones(b.size) if wb is None else wb
    ws = np.ones(s.size) if ws is None else ws
    values, index = np.unique(np.r_[b, s], return_inverse=True)
    bkg_at = np.bincount(index[: b.size], weights=wb, minlength=values.size)
    sig_at = np.bincount(index[b.size :], weights=ws, minlength=values.size)
    below = np.cumsum(bkg_at) - bkg_at
    return float(np.sum(sig_at * (below + 0.5 * bkg_at)) / (wb.sum() * ws.sum()))


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
