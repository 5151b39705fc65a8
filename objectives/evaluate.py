"""One entry point: train one hyperparameter set on one cell and score it.

``evaluate(hp, cell, statistics="half", run=j)`` is what every HPO trial,
final run and benchmark calls. On **half statistics** the weakly supervised
set is split 50/50 (stratified, seeded by ``run``); the classifier trains on
one half and the label-free metrics (ARGOS, BCE) are computed on the other,
which gives an unbiased score for comparing different models. On **full
statistics** it trains on everything and the label-free metrics are computed
on the training set itself (there is no held-out half); its truth performance
is the number a paper reports.

Each selection metric may pick a different ensemble (the NN averages the 10
best epochs ranked by that metric; trees have one ensemble): ``metrics[m]``
is metric ``m`` of the ensemble selected by ``m``, ``truth[m]`` the max SIC
and AUC of that ensemble on the labelled test set, ``scores[m]`` its test
scores. Max SIC is the truth oracle: never available on real data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from objectives.cells import Cell, half_split, prepare

__all__ = ["STATISTICS", "EvaluationResult", "evaluate", "model_seed"]

STATISTICS = ("half", "full")


@dataclass
class EvaluationResult:
    """Every metric of one training, the test scores and what the run used."""

    metrics: dict[str, float]
    truth: dict[str, dict[str, float]]
    scores: dict[str, np.ndarray] = field(repr=False)
    info: dict = field(default_factory=dict)
    #: truth labels of the test set the scores belong to
    y_test: np.ndarray | None = field(default=None, repr=False)

    def summary(self) -> dict:
        """JSON-friendly metrics and provenance (no arrays)."""
        return {"metrics": self.metrics, "truth": self.truth, "info": self.info}


def model_seed(run: int, statistics: str) -> int:
    """Seed of the model in repetition ``run``; the same for every trial, as in the paper."""
    return int(
        np.random.SeedSequence([0xC0FFEE, int(run), STATISTICS.index(statistics)]).generate_state(
            1
        )[0]
    )


def _label_free(metric: str, probs: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    from objectives.metrics import argos, weighted_bce

    if metric == "argos":
        return argos(probs, y)
    return weighted_bce(probs, y, w)


def _truth(scores: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    from objectives.metrics import max_sic, roc_auc

    if np.unique(y_test).size < 2:
        return {"max_sic": float("nan"), "auc": float("nan")}
    return {"max_sic": float(max_sic(scores, y_test)), "auc": float(roc_auc(scores, y_test))}


def _oracle_epochs(clf, X_test: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """NN only: the mean test prediction of the epochs with the highest true max SIC."""
    from objectives.metrics import max_sic

    per_epoch = clf.epoch_predictions(X_test)
    sics = np.array([max_sic(p, y_test) for p in per_epoch])
    return per_epoch[clf.best_epochs("max_sic", values=sics)].mean(axis=0)


def evaluate(
    hp: dict,
    cell: Cell,
    statistics: str = "half",
    run: int = 0,
    *,
    n_jobs: int = 1,
) -> EvaluationResult:
    """Train ``cell.classifier`` with hyperparameters ``hp`` on ``cell`` and score it.

    Density-method cells (ANODE, R-ANODE, BackgroundFlow) are fitted by
    ``objectives.flows.methods.evaluate_cell``; their metrics are ``val_loss``
    and ``max_sic`` (see ``objectives.methods``).

    Deterministic for given ``hp``, ``cell``, ``statistics`` and ``run``.

    Example:
        >>> result = evaluate({"max_iter": 50}, cell, statistics="half", run=0)  # doctest: +SKIP
        >>> result.metrics["argos"], result.truth["argos"]["max_sic"]  # doctest: +SKIP
    """
    from objectives.classifiers import make_classifier
    from objectives.metrics import SELECTION_METRICS

    if statistics not in STATISTICS:
        raise ValueError(f"statistics must be 'half' or 'full', got {statistics!r}")
    from objectives.methods import is_density

    if is_density(cell.classifier):
        from objectives.flows.methods import evaluate_cell

        return evaluate_cell(hp, cell, statistics, run, n_jobs=n_jobs)
    t0 = time.perf_counter()
    p = prepare(cell)
    t_prep = time.perf_counter() - t0

    if statistics == "half":
        tr, va = half_split(p.y, run)
        X_tr, y_tr, w_tr = p.X[tr], p.y[tr], p.w[tr]
        X_va, y_va, w_va = p.X[va], p.y[va], p.w[va]
        validation = (X_va, y_va, w_va)
    else:
        X_tr, y_tr, w_tr = p.X, p.y, p.w
        X_va, y_va, w_va = X_tr, y_tr, w_tr
        validation = None

    seed = model_seed(run, statistics)
    clf = make_classifier(cell.classifier, hp, seed=seed, n_jobs=n_jobs)
    t1 = time.perf_counter()
    clf.fit(X_tr, y_tr, sample_weight=w_tr, validation=validation)
    t_fit = time.perf_counter() - t1

    metrics: dict[str, float] = {}
    truth: dict[str, dict[str, float]] = {}
    scores: dict[str, np.ndarray] = {}
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for sel in SELECTION_METRICS:
        key = sel if clf.selection_dependent else "all"
        if sel == "max_sic" and clf.selection_dependent:
            s_test = _oracle_epochs(clf, p.X_test, p.y_test)
            scores[sel] = s_test
            truth[sel] = _truth(s_test, p.y_test)
            metrics[sel] = truth[sel]["max_sic"]
            continue
        if key not in cache:
            label_sel = sel if sel != "max_sic" else "argos"
            cache[key] = (
                clf.predict_proba(X_va, selection=label_sel),
                clf.predict_proba(p.X_test, selection=label_sel),
            )
        p_va, s_test = cache[key]
        scores[sel] = s_test
        truth[sel] = _truth(s_test, p.y_test)
        metrics[sel] = (
            truth[sel]["max_sic"] if sel == "max_sic" else _label_free(sel, p_va, y_va, w_va)
        )

    info = {
        "cell": cell.key(),
        "classifier": cell.classifier,
        "statistics": statistics,
        "run": int(run),
        "seed": seed,
        "hp": dict(hp),
        "n_train": int(len(y_tr)),
        "n_validation": int(len(y_va)),
        "validation": "held-out half" if statistics == "half" else "training set",
        "seconds_prepare": round(t_prep, 3),
        "seconds_fit": round(t_fit, 3),
        "seconds_total": round(time.perf_counter() - t0, 3),
        **{k: v for k, v in p.info.items() if k not in ("mode", "signal", "rotation")},
    }
    return EvaluationResult(metrics=metrics, truth=truth, scores=scores, info=info, y_test=p.y_test)
