"""The bump hunt as a cut-and-count experiment (seed 001, "Resonant searches as cut and count").

A weakly supervised classifier becomes a resonance search: in each signal-region
window, k-fold cross validation trains on ``k - 1`` folds of the window's data
(label 1) against ``k - 1`` folds of the background template (label 0), and scores
the held-out data fold and the held-out template fold (:func:`score_fold`), so
every data event is scored once by a model that never saw it. Then, for one
window, run and background efficiency eps_B (:func:`cut_and_count`,
:meth:`WindowNumbers.of`):

* per fold, the threshold is the (1 - eps_B) quantile ("nearest") of that fold's
  held-out template scores; a data or template event passes when its score is >=
  the threshold. Scores exactly 1 count as saturated, as in the reference: left out
  of the quantile, never passing, but counted in N and N_samples;
* the counts are summed over the folds: N, N_after (data), N_samples,
  N_samples_after (template); eps_eff = N_samples_after / N_samples;
* expected background N_b = eps_eff N (1 + delta_sys), with uncertainty
  sigma_b = N_b sqrt(1 / N_samples_after + sigma_sys^2) (sigma_sys = |delta_sys| unless given);
* the significance Z of N_after over N_b with uncertainty sigma_b (:func:`significance`);
* the relative deviation delta_sys,n = (N_after - eps_eff N) / (eps_eff N) and its
  statistical error sigma_stat = sqrt(1 / (eps_eff N) + 1 / N_samples_after).

delta_sys itself is measured on background-only data (:func:`measure_delta_sys`):
observed over expected minus one, summed over the windows.

Example:
    >>> round(significance(150, 100.0), 4)  # sqrt(2 (150 ln 1.5 - 50))
    4.6518
    >>> significance(90, 100.0)  # below the expectation
    0.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, astuple, dataclass, field
from typing import Any

import numpy as np

from objectives.cells import Cell
from objectives.splits import Split

__all__ = [
    "SATURATED",
    "Counts",
    "FoldScores",
    "WindowNumbers",
    "cut_and_count",
    "delta_sys_of_runs",
    "exact_fold_scores",
    "measure_delta_sys",
    "passes",
    "score_fold",
    "significance",
    "threshold",
]

#: A score this high is saturated (the reference treats it as NaN).
SATURATED = 1.0


def significance(n_obs, b, sigma=0.0):
    """Significance of ``n_obs`` events over a background ``b`` with uncertainty ``sigma``.

    Cowan et al.'s Asimov formula with a background uncertainty (s = sigma)::

        Z^2 = 2 [ n ln( n (b + s^2) / (b^2 + n s^2) )
                  - (b^2 / s^2) ln(1 + s^2 (n - b) / (b (b + s^2))) ]

    which for ``sigma -> 0`` becomes ``2 [n ln(n / b) - (n - b)]``. Z = 0 where the
    observation does not exceed the expectation. Arrays broadcast; scalars in, float out.
    """
    n, b, s2 = np.broadcast_arrays(
        np.asarray(n_obs, dtype=float), np.asarray(b, dtype=float), np.square(sigma, dtype=float)
    )
    z2 = np.zeros(n.shape)
    excess = (n > b) & (b > 0)
    nn, bb, ss = n[excess], b[excess], s2[excess]
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = nn * np.log(nn * (bb + ss) / (bb**2 + nn * ss)) - bb**2 / ss * np.log1p(
            ss * (nn - bb) / (bb * (bb + ss))
        )
        limit = nn * np.log(nn / bb) - (nn - bb)
    z2[excess] = 2 * np.where(ss > 0, exact, limit)
    z = np.sqrt(np.clip(z2, 0.0, None))
    return float(z) if z.ndim == 0 else z


def threshold(template_scores: np.ndarray, eps_b: float, saturated: float | None = SATURATED):
    """The (1 - eps_b) quantile ("nearest") of the template scores, saturated ones left out."""
    s = np.asarray(template_scores, dtype=float)
    if saturated is not None:
        s = s[s != saturated]
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise ValueError("no unsaturated template score to set a threshold on")
    return float(np.quantile(s, 1.0 - eps_b, method="nearest"))


@dataclass(frozen=True)
class Counts:
    """Counts of a cut: data ``n`` / ``n_after``, template ``n_samples`` / ``n_samples_after``."""

    n: int
    n_after: int
    n_samples: int
    n_samples_after: int

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @property
    def eps_eff(self) -> float:
        """The template's efficiency after the cut, ``N_samples_after / N_samples``."""
        return self.n_samples_after / self.n_samples if self.n_samples else float("nan")

    @property
    def expected(self) -> float:
        """Background expected after the cut without a systematic: ``eps_eff N``."""
        return self.eps_eff * self.n


def passes(scores: np.ndarray, cut: float, saturated: float | None = SATURATED) -> np.ndarray:
    """Which ``scores`` pass the cut: ``>= cut``, never NaN, never the ``saturated`` value."""
    s = np.asarray(scores, dtype=float)
    ok = s >= cut  # NaN never passes
    if saturated is not None:
        ok &= s != saturated
    return ok


def _passing(scores: np.ndarray, cut: float, saturated: float | None) -> int:
    return int(np.count_nonzero(passes(scores, cut, saturated)))


@dataclass(frozen=True)
class FoldScores:
    """Scores of one fold's held-out events: ``data`` (label 1) and ``template`` (label 0).

    ``data_index`` / ``template_index``: which events they are (rows of the cell's data
    and template), ``info``: what the fold's model reported (max SIC, seconds, ...).
    """

    data: np.ndarray = field(repr=False)
    template: np.ndarray = field(repr=False)
    data_index: np.ndarray = field(repr=False)
    template_index: np.ndarray = field(repr=False)
    info: dict = field(default_factory=dict)


def cut_and_count(
    folds: Sequence[FoldScores], eps_b: float, *, saturated: float | None = SATURATED
) -> Counts:
    """Cut each fold at its own template's (1 - ``eps_b``) quantile; the counts summed.

    ``saturated``: the score value treated as NaN (None for scores that never saturate,
    such as an exact log likelihood ratio).
    """
    total = Counts(0, 0, 0, 0)
    for f in folds:
        cut = threshold(f.template, eps_b, saturated)
        total = total + Counts(
            n=len(f.data),
            n_after=_passing(f.data, cut, saturated),
            n_samples=len(f.template),
            n_samples_after=_passing(f.template, cut, saturated),
        )
    return total


@dataclass(frozen=True)
class WindowNumbers:
    """Everything the reference reports for one window, run and eps_B."""

    N: int
    N_after: int
    N_samples: int
    N_samples_after: int
    eps_eff: float
    N_b: float
    sigma_b: float
    Z: float
    delta_sys_n: float
    sigma_stat: float
    delta_sys: float
    sigma_sys: float

    @classmethod
    def of(
        cls, counts: Counts, delta_sys: float = 0.0, sigma_sys: float | None = None
    ) -> WindowNumbers:
        """The numbers of ``counts`` with the systematic ``delta_sys`` (sigma_sys = |delta_sys|)."""
        sigma_sys = abs(delta_sys) if sigma_sys is None else float(sigma_sys)
        eps_eff, expected = counts.eps_eff, counts.expected
        n_b = expected * (1.0 + delta_sys)
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma_b = n_b * np.sqrt(1.0 / counts.n_samples_after + sigma_sys**2)
            dev = (counts.n_after - expected) / expected
            stat = np.sqrt(1.0 / expected + 1.0 / counts.n_samples_after)
        return cls(
            N=counts.n,
            N_after=counts.n_after,
            N_samples=counts.n_samples,
            N_samples_after=counts.n_samples_after,
            eps_eff=float(eps_eff),
            N_b=float(n_b),
            sigma_b=float(sigma_b),
            Z=significance(counts.n_after, n_b, sigma_b),
            delta_sys_n=float(dev),
            sigma_stat=float(stat),
            delta_sys=float(delta_sys),
            sigma_sys=sigma_sys,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_delta_sys(counts_per_window: Sequence[Counts]) -> float:
    """delta_sys from background-only counts: observed / expected - 1, summed over the windows."""
    observed = sum(c.n_after for c in counts_per_window)
    expected = sum(c.expected for c in counts_per_window)
    return observed / expected - 1.0 if expected > 0 else float("nan")


def delta_sys_of_runs(counts: Sequence[Sequence[Counts]]) -> tuple[float, list[float]]:
    """``(median, per run)`` of :func:`measure_delta_sys` over ``counts[run][window]``.

    The median over the runs is the value a scan applies to every signal amount.
    """
    per_run = [measure_delta_sys(run) for run in counts]
    finite = [v for v in per_run if np.isfinite(v)]
    return (float(np.median(finite)) if finite else float("nan")), per_run


def score_fold(
    hp: Mapping | None,
    cell: Cell,
    fold: int,
    k: int,
    run: int,
    *,
    selection: str = "argos",
    n_jobs: int = 1,
) -> FoldScores:
    """Train on the other ``k - 1`` folds of ``cell``; the held-out fold's scores.

    ``selection``: which ensemble scores (the NN's epochs ranked by that metric; one
    ensemble for trees). Deterministic for given ``hp``, cell, fold, k and run.
    """
    from objectives.evaluate import evaluate

    result = evaluate(hp, cell, Split.kfold(fold, k, run), n_jobs=n_jobs)
    held = result.held_out
    data, template = held.of(selection)
    n_data = int(result.info["n_data"])
    is_data = held.label == 1
    info = {
        "max_sic": result.truth[selection]["max_sic"],
        "seconds_fit": result.info["seconds_fit"],
        "seconds_total": result.info["seconds_total"],
        "seed": result.info["seed"],
        "n_train": result.info["n_train"],
        "selection": selection,
    }
    return FoldScores(
        data=data,
        template=template,
        data_index=held.index[is_data],
        template_index=held.index[~is_data] - n_data,
        info=info,
    )


def exact_fold_scores(
    data_scores: np.ndarray, template_scores: np.ndarray, fold: int, k: int, run: int
) -> FoldScores:
    """Fixed scores (an exact likelihood ratio) of data and template events, cut into folds.

    Rows are the data, then the template, split by ``Split.kfold(fold, k, run)`` as a
    classifier cell's are: the data folds are those of every cell with the same data.
    """
    n_data = len(data_scores)
    y = np.concatenate([np.ones(n_data, np.int8), np.zeros(len(template_scores), np.int8)])
    _, held = Split.kfold(fold, k, run).indices(y)
    d, t = held[held < n_data], held[held >= n_data] - n_data
    return FoldScores(data_scores[d], template_scores[t], d, t, {"score": "exact"})
