"""The statistical uncertainty of a measured delta_sys: a bootstrap over events and runs.

delta_sys is measured on background-only data (:func:`objectives.bumphunt.measure_delta_sys`):
per run, observed / expected - 1 summed over the windows, then the median over the
runs. Its statistical error has two sources, and the bootstrap resamples both:

* **events**. The windows overlap (each 0.4 TeV wide, 0.1 TeV apart: an event lies
  in up to four windows, as signal-region data of one and sideband template of
  another for CWoLa), and every run scores the same events again. So the windows
  and runs are not independent measurements, and neither windows nor folds may be
  resampled on their own. Each *event* gets one Poisson(1) weight per replicate,
  the same wherever it is counted: in every window, fold and run, as data or as
  template. An event is known by its raw row (mjj and features,
  :func:`objectives.cells.training_events`), which is the same in every cell that
  holds it. The classifiers and their cuts stay fixed; a replicate's N, N_after,
  N_samples and N_samples_after are the weighted counts (so per window the spread is
  the reference's sigma_stat = sqrt(1 / (eps_eff N) + 1 / N_samples_after)).
* **runs** (new folds and training seeds): resampled with replacement, and the
  replicate's delta_sys is the median over the drawn runs.

The error is the standard deviation of the replicates; a delta_sys is *consistent with
0* where ``|value| < 2 error``. Events that pass no cut in any window, run and
eps_B enter only through N and N_samples: those with the same windows are pooled
(a sum of k Poisson(1) weights is Poisson(k)), so the cost grows with the passing
events only.

Example (one window, no overlap: the error is about sigma_stat):
    >>> from objectives.bumphunt import exact_fold_scores
    >>> rng = np.random.default_rng(1)
    >>> data, template = rng.random(4000), rng.random(8000)
    >>> folds = [[exact_fold_scores(data, template, f, 2, run=0) for f in range(2)]]
    >>> ids = event_ids([data[:, None]], [template[:, None]])
    >>> d = delta_sys_bootstrap([folds], *ids, [0.05])[0]
    >>> sigma_stat = np.sqrt(1 / 200 + 1 / 400)  # 200 data, 400 template events pass
    >>> bool(0.8 < d.error / sigma_stat < 1.2)
    True
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from objectives.bumphunt import SATURATED, FoldScores, passes, threshold

__all__ = ["REPLICATES", "DeltaSys", "background_only_scan", "delta_sys_bootstrap", "event_ids"]

#: Bootstrap replicates of a delta_sys (the error's own relative error is ~1 / sqrt(2 x this)).
REPLICATES = 1000
#: Replicates drawn at once (bounds the memory of the weights of the passing events).
_CHUNK = 100


@dataclass(frozen=True)
class DeltaSys:
    """A measured delta_sys at one eps_B: the median over the runs, its bootstrap error."""

    value: float
    error: float
    per_run: tuple[float, ...]
    replicates: int

    @property
    def consistent_with_zero(self) -> bool:
        """``|value| < 2 error`` (a NaN error is never consistent)."""
        return bool(abs(self.value) < 2 * self.error)


def event_ids(
    data_rows: Sequence[np.ndarray], template_rows: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One integer per distinct event, the same wherever the event is counted.

    ``data_rows[w]`` / ``template_rows[w]``: window ``w``'s raw label-1 / template rows
    (``(n, d)``, e.g. ``[mjj, features]``). Rows equal in every value are one event.
    """
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (*data_rows, *template_rows)]
    width = {a.shape[1] for a in arrays if a.size}
    if len(width) > 1:
        raise ValueError(f"event rows of different widths {sorted(width)}")
    void = np.dtype((np.void, 8 * (width.pop() if width else 1)))
    keys = [a.view(void).ravel() if a.size else np.empty(0, void) for a in arrays]
    _, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    ids = np.split(inverse.ravel(), np.cumsum([len(k) for k in keys])[:-1])
    n = len(data_rows)
    return ids[:n], ids[n:]


@dataclass(frozen=True)
class _Tally:
    """Which events each counter of the cut and count sums, as sparse incidences."""

    n_windows: int
    n_runs: int
    n_eps: int
    #: the events counted in a passing count or more than once in a window
    tracked: np.ndarray
    #: (tracked, 2 W): how often each tracked event is in a window's data / template
    members: np.ndarray
    #: (tracked, W R E) each: passing data / template events per (window, run, eps)
    data_after: sparse.csr_matrix
    template_after: sparse.csr_matrix
    #: the other events pooled by their windows: group sizes and (groups, 2 W) membership
    pool_sizes: np.ndarray
    pool_members: np.ndarray


def _tally(
    folds: Sequence[Sequence[Sequence[FoldScores]]],
    data_ids: Sequence[np.ndarray],
    template_ids: Sequence[np.ndarray],
    eps_b: Sequence[float],
    saturated: float | None,
) -> _Tally:
    n_w, n_r, n_e = len(folds), len(folds[0]), len(eps_b)
    column = lambda w, r, e: (w * n_r + r) * n_e + e  # noqa: E731
    after: dict[str, tuple[list, list]] = {"data": ([], []), "template": ([], [])}
    counted: list[np.ndarray] = []  # per window: data ids, template ids (each event per fold)
    for w in range(n_w):
        for role, ids in (("data", data_ids[w]), ("template", template_ids[w])):
            held = [getattr(f, f"{role}_index") for f in folds[w][0]]
            counted.append(ids[np.concatenate(held)])
        for r in range(n_r):
            for f in folds[w][r]:
                for e, eps in enumerate(eps_b):
                    cut = threshold(f.template, eps, saturated)
                    for role, ids, scores, index in (
                        ("data", data_ids[w], f.data, f.data_index),
                        ("template", template_ids[w], f.template, f.template_index),
                    ):
                        rows, cols = after[role]
                        passing = ids[index[passes(scores, cut, saturated)]]
                        rows.append(passing)
                        cols.append(np.full(passing.size, column(w, r, e)))
    n_ids = 1 + max(int(c.max()) for c in counted if c.size)
    repeated = [np.unique(c, return_counts=True) for c in counted]
    tracked = np.unique(
        np.concatenate(
            [np.concatenate(after[role][0]) for role in after]
            + [ids[counts > 1] for ids, counts in repeated]
        )
    )
    position = np.full(n_ids, -1)
    position[tracked] = np.arange(tracked.size)
    members = np.zeros((tracked.size, 2 * n_w))
    signature = np.zeros(n_ids, np.int64)  # bit k: in column k (window w data 2w, template 2w+1)
    for k, c in enumerate(counted):
        np.add.at(members[:, k], position[c[position[c] >= 0]], 1)
        signature[c] |= np.int64(1) << k
    pooled = np.ones(n_ids, bool)
    pooled[tracked] = False
    pooled &= signature != 0
    groups, sizes = np.unique(signature[pooled], return_counts=True)
    pool_members = ((groups[:, None] >> np.arange(2 * n_w)) & 1).astype(float)

    def incidence(role: str) -> sparse.csr_matrix:
        rows, cols = (np.concatenate(x) for x in after[role])
        values = np.ones(rows.size)
        shape = (tracked.size, n_w * n_r * n_e)
        return sparse.csr_matrix((values, (position[rows], cols)), shape=shape)

    return _Tally(
        n_w,
        n_r,
        n_e,
        tracked,
        members,
        incidence("data"),
        incidence("template"),
        sizes.astype(float),
        pool_members,
    )


def _per_run(t: _Tally, weights: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """delta_sys (replicates, runs, eps) of weighted counts (tracked and pooled weights)."""
    totals = weights @ t.members + pooled @ t.pool_members  # (B, 2W): N, N_samples per window
    n, n_samples = totals[:, 0::2], totals[:, 1::2]
    shape = (len(weights), t.n_windows, t.n_runs, t.n_eps)
    after = np.asarray((t.data_after.T @ weights.T).T).reshape(shape)
    samples_after = np.asarray((t.template_after.T @ weights.T).T).reshape(shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = samples_after / n_samples[:, :, None, None] * n[:, :, None, None]
        return after.sum(axis=1) / expected.sum(axis=1) - 1.0


def delta_sys_bootstrap(
    folds: Sequence[Sequence[Sequence[FoldScores]]],
    data_ids: Sequence[np.ndarray],
    template_ids: Sequence[np.ndarray],
    eps_b: Sequence[float],
    *,
    replicates: int = REPLICATES,
    seed: int = 0,
    saturated: float | None = SATURATED,
) -> list[DeltaSys]:
    """delta_sys and its bootstrap error at each eps_B, from background-only held-out scores.

    ``folds[w][r]``: the held-out :class:`~objectives.bumphunt.FoldScores` of window
    ``w`` and run ``r`` (every fold); ``data_ids[w]`` / ``template_ids[w]``: the event of
    each label-1 / template row of window ``w`` (:func:`event_ids`). The value is
    :func:`objectives.bumphunt.delta_sys_of_runs`'s.
    """
    t = _tally(folds, data_ids, template_ids, eps_b, saturated)
    observed = _per_run(t, np.ones((1, t.tracked.size)), t.pool_sizes[None, :])[0]
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, replicates, _CHUNK):
        b = min(_CHUNK, replicates - start)
        weights = rng.poisson(1.0, (b, t.tracked.size)).astype(float)
        pooled = rng.poisson(t.pool_sizes, (b, t.pool_sizes.size)).astype(float)
        per_run = _per_run(t, weights, pooled)  # (b, R, E)
        runs = rng.integers(t.n_runs, size=(b, t.n_runs))
        drawn = np.take_along_axis(per_run, runs[:, :, None], axis=1)
        with warnings.catch_warnings():  # a replicate with nothing expected: NaN, left out
            warnings.simplefilter("ignore", RuntimeWarning)
            draws.append(np.nanmedian(drawn, axis=1))
    draws = np.concatenate(draws)  # (replicates, E)
    out = []
    for e in range(t.n_eps):
        finite = observed[:, e][np.isfinite(observed[:, e])]
        good = draws[:, e][np.isfinite(draws[:, e])]
        out.append(
            DeltaSys(
                value=float(np.median(finite)) if finite.size else float("nan"),
                error=float(np.std(good, ddof=1)) if good.size > 1 else float("nan"),
                per_run=tuple(float(v) for v in observed[:, e]),
                replicates=int(good.size),
            )
        )
    return out


def _random_folds(data: np.ndarray, template: np.ndarray, k: int, rng) -> list[FoldScores]:
    """Scores cut into ``k`` folds at random (each event held out once)."""
    d, t = rng.permutation(len(data)), rng.permutation(len(template))
    return [
        FoldScores(data[i], template[j], i, j)
        for i, j in zip(np.array_split(d, k), np.array_split(t, k), strict=True)
    ]


def background_only_scan(
    seed: int,
    *,
    n_data: int = 3000,
    n_template: int = 6000,
    runs: int = 3,
    folds: int = 3,
    noise: float = 0.02,
    shared: bool = True,
):
    """``(folds, (data_ids, template_ids))`` of a scan whose true delta_sys is 0.

    Known truth for :func:`delta_sys_bootstrap`: background-only data and an exact
    template (both drawn from one density: mjj ~ U(2.9, 4.1) TeV, a feature
    u ~ U(0, 1)), the nine 0.4 TeV windows 0.1 TeV apart of the bump hunt; the
    classifier of each (window, run) scores u plus its own Gaussian ``noise``.
    ``shared=False`` gives each window's events ids of their own, as if the windows
    did not overlap (wrong: for comparison).
    """
    rng = np.random.default_rng(seed)
    data = rng.uniform([2.9, 0], [4.1, 1], (n_data, 2))
    template = rng.uniform([2.9, 0], [4.1, 1], (n_template, 2))
    data_rows, template_rows, out = [], [], []
    for w in range(9):
        lo, hi = 2.9 + 0.1 * w, 3.3 + 0.1 * w
        d = data[(data[:, 0] >= lo) & (data[:, 0] < hi)]
        t = template[(template[:, 0] >= lo) & (template[:, 0] < hi)]
        # a window's copy of an event is another event unless shared
        offset = 0.0 if shared else 10.0 * (w + 1)
        data_rows.append(d + offset)
        template_rows.append(t + offset)
        per_run = []
        for _ in range(runs):
            sd = d[:, 1] + noise * rng.standard_normal(len(d))
            st = t[:, 1] + noise * rng.standard_normal(len(t))
            per_run.append(_random_folds(sd, st, folds, rng))
        out.append(per_run)
    return out, event_ids(data_rows, template_rows)
