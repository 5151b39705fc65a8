"""Selection metrics: ARGOS and class-balanced BCE (label-free), SIC and AUC (truth).

Label-free metrics compare *SR data* (``is_data = 1``) with a *background
template* (``is_data = 0``) and never see signal truth. ARGOS
(arXiv:2511.14832) is the maximum over cuts ``score > t`` of

    eps_data / sqrt(eps_template) - sqrt(eps_template),

which equals ``f (eps_S - eps_B) / sqrt(eps_B)`` when the data are
``(1 - f) bkg + f sig`` and the template is the background: it tracks the true
significance improvement without labels. Max SIC needs truth labels and is a
reference only.

Every curve sorts the scores once (O(n log n)) and puts thresholds only at
distinct score values, so ties are never split.

Example:
    >>> import numpy as np
    >>> scores = np.array([0.9, 0.8, 0.3, 0.2])
    >>> float(roc_auc(scores, np.array([1, 1, 0, 0])))
    1.0
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "argos",
    "balanced_weights",
    "band",
    "max_sic",
    "roc_auc",
    "sic_curve",
    "weighted_bce",
]

_PROB_CLIP = 1e-7  # probabilities are clipped to [1e-7, 1 - 1e-7] in the BCE


def _inputs(scores, labels, sample_weight=None, *, what: str = "labels"):
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and {what} differ in length: {s.size} vs {y.size}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what} must be 0 or 1")
    if sample_weight is None:
        w = None
    else:
        w = np.asarray(sample_weight, dtype=np.float64).ravel()
        if w.shape != s.shape:
            raise ValueError(f"sample_weight has length {w.size}, scores have {s.size}")
    return s, y.astype(bool), w


def balanced_weights(y, sample_weight=None) -> np.ndarray:
    """Per-event weights giving both classes the same total weight, mean weight 1.

    ``sample_weight`` (per-event weights) is kept within each class; the result is
    the same whether or not ``sample_weight`` already balanced the classes.
    An absent class gets no weight.
    """
    y = np.asarray(y).ravel().astype(bool)
    w = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, float).ravel()
    out = np.zeros(y.size)
    for cls in (False, True):
        total = w[y == cls].sum()
        if total > 0:
            out[y == cls] = w[y == cls] * (y.size / (2.0 * total))
    return out


def _cumulative(scores: np.ndarray, positive: np.ndarray, w: np.ndarray | None):
    """(Weighted) counts of each class passing ``score >= s`` at every distinct score ``s``.

    Returned in order of decreasing threshold (increasing efficiency), with totals.
    """
    order = np.argsort(-scores)  # ties are grouped below, so no stable sort is needed
    s = scores[order]
    last = np.flatnonzero(s[1:] != s[:-1])  # last index of each run of equal scores
    last = np.append(last, s.size - 1) if s.size else last
    pos = positive[order]
    if w is None:
        cum_p = np.cumsum(pos)[last].astype(np.float64)
        cum_n = (last + 1) - cum_p
    else:
        ws = w[order]  # two sums, not a difference: a class with nothing passing stays at 0
        cum_p = np.cumsum(np.where(pos, ws, 0.0))[last]
        cum_n = np.cumsum(np.where(pos, 0.0, ws))[last]
    total_p = cum_p[-1] if s.size else 0.0
    total_n = cum_n[-1] if s.size else 0.0
    return cum_p, cum_n, total_p, total_n


def argos(scores, is_data, sample_weight=None, *, min_template: int = 0) -> float:
    """ARGOS: max over cuts of ``eps_data / sqrt(eps_template) - sqrt(eps_template)``.

    Args:
        scores: classifier outputs (higher = more data-like), shape (n,).
        is_data: 1 for SR data, 0 for the background template.
        sample_weight: optional per-event weights; efficiencies are weighted.
        min_template: only cuts passing at least this many template events' worth of
            efficiency (``eps_template >= min_template / n_template``) count. 0 (the
            paper's ARGOS) drops only ``eps_template = 0``; 25 is the truth Max SIC's
            rule (20 % relative error on the background estimate), which stops the
            maximum from landing on the few events of the tightest cuts.

    Returns nan when either class is absent (or has no weight), a score is nan (a
    diverged model ranks last), or no cut passes ``min_template``.
    """
    integer = isinstance(min_template, int | np.integer) and not isinstance(min_template, bool)
    if not integer or min_template < 0:
        raise ValueError(f"argos: min_template must be an integer >= 0, got {min_template!r}")
    s, d, w = _inputs(scores, is_data, sample_weight, what="is_data")
    if np.isnan(s).any():
        return float("nan")
    cum_d, cum_t, tot_d, tot_t = _cumulative(s, d, w)
    if tot_d <= 0 or tot_t <= 0:
        return float("nan")
    eps_d = cum_d / tot_d
    eps_t = cum_t / tot_t
    keep = (cum_t > 0) & (eps_t * np.count_nonzero(~d) >= min_template - 1e-9)
    if not keep.any():
        return float("nan")
    root = np.sqrt(eps_t[keep])
    return float(np.max(eps_d[keep] / root - root))


def weighted_bce(probs, y, sample_weight=None) -> float:
    """Class-balanced binary cross-entropy (log loss) of ``probs`` = P(y = 1).

    Both classes get the same total weight (``balanced_weights``); probabilities
    are clipped to ``[1e-7, 1 - 1e-7]``. Nan when a class is absent or a probability is nan.
    """
    p, t, w = _inputs(probs, y, sample_weight, what="y")
    if not (t.any() and (~t).any()) or np.isnan(p).any():
        return float("nan")
    wb = balanced_weights(t, w)
    p = np.clip(p, _PROB_CLIP, 1.0 - _PROB_CLIP)
    loss = -np.where(t, np.log(p), np.log1p(-p))
    return float(np.sum(wb * loss) / np.sum(wb))


def _roc(scores, truth) -> tuple[np.ndarray, np.ndarray, float]:
    s, t, w = _inputs(scores, truth, what="truth")
    if np.isnan(s).any():
        return np.empty(0), np.empty(0), float(np.sum(~t))
    cum_s, cum_b, tot_s, tot_b = _cumulative(s, t, w)
    n_bkg = float(tot_b)
    if tot_s <= 0 or tot_b <= 0:
        return np.empty(0), np.empty(0), n_bkg
    return cum_s / tot_s, cum_b / tot_b, n_bkg


def sic_curve(scores, truth, *, max_rel_error: float = 0.2):
    """TPR, FPR and SIC = TPR / sqrt(FPR), at every distinct score, by increasing FPR.

    Only points with ``FPR > 1 / (n_bkg * max_rel_error**2)`` are kept, where
    ``n_bkg`` is the number of background events (``truth == 0``) passed in: the
    background estimate of a kept cut has at most ``max_rel_error`` relative
    statistical error (a cut passing exactly ``1 / max_rel_error**2`` background
    events is excluded). Empty arrays when truth lacks signal or background or a
    score is nan.
    """
    if not max_rel_error > 0:
        raise ValueError(f"max_rel_error must be > 0, got {max_rel_error}")
    tpr, fpr, n_bkg = _roc(scores, truth)
    if tpr.size == 0:
        return tpr, fpr, np.empty(0)
    # FPR > 1 / (n_bkg r^2)  <=>  n_pass r^2 > 1; the tolerance keeps a cut with exactly
    # 1 / r^2 background events out despite rounding (0.2**2 is not exactly 0.04).
    keep = fpr * n_bkg * max_rel_error**2 > 1.0 + 1e-9
    tpr, fpr = tpr[keep], fpr[keep]
    return tpr, fpr, tpr / np.sqrt(fpr)


def max_sic(scores, truth, *, max_rel_error: float = 0.2) -> float:
    """Maximum of ``sic_curve``; nan when truth lacks signal or background."""
    sic = sic_curve(scores, truth, max_rel_error=max_rel_error)[2]
    return float(sic.max()) if sic.size else float("nan")


def roc_auc(scores, truth) -> float:
    """Area under the ROC curve (ties count one half); nan without both classes."""
    tpr, fpr, _ = _roc(scores, truth)
    if tpr.size == 0:
        return float("nan")
    x = np.concatenate(([0.0], fpr))
    y = np.concatenate(([0.0], tpr))
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def band(values) -> dict[str, float]:
    """Median and 16-84 % band of the finite ``values`` (None and NaN left out), and their count."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"median": float("nan"), "q16": float("nan"), "q84": float("nan"), "n": 0}
    q16, q50, q84 = np.percentile(v, [16, 50, 84])
    return {"median": float(q50), "q16": float(q16), "q84": float(q84), "n": int(v.size)}
