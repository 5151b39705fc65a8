"""Evaluate a classifier (HGB, AdaBoost, NN) on a weakly supervised cell under a split.

The classifier trains on the split's training part of the weakly supervised set
(SR data = 1 vs template = 0). The label-free metrics (ARGOS, BCE) are computed
on the held-out part (half statistics, k-fold) or on the training set itself
(full statistics, where nothing is held out). Each selection metric may pick a
different ensemble (the NN averages the epochs that metric ranks best, ranked on
the split's choice events: the held-out part, or under ``Split.reserved`` the
unreserved events it did not train on; trees have one ensemble). The truth
oracle ``max_sic`` of the NN picks the epochs with the best true max SIC.

Under a split that holds events out, the result also keeps their scores with
their data / template labels (``EvaluationResult.held_out``: the bump hunt's
input). A cell without a test set (a window the extra background does not
cover) has no test scores and NaN truth.
"""

from __future__ import annotations

import time

import numpy as np

from objectives.cells import Cell, prepare
from objectives.results import EvaluationResult, HeldOut, score_truth
from objectives.splits import Split

__all__ = ["CLASSIFIER_METRICS", "evaluate_classifier"]

#: Selection metrics of every classifier: label-free first, then the truth oracle.
CLASSIFIER_METRICS = ("argos", "bce", "max_sic")


def _label_free(
    metric: str, probs: np.ndarray, y: np.ndarray, w: np.ndarray, min_template: int
) -> float:
    from objectives.metrics import argos, weighted_bce

    if metric == "argos":
        return argos(probs, y, min_template=min_template)
    return weighted_bce(probs, y, w)


def _scored_on(split: Split) -> str:
    """Which events the label-free metrics of ``split`` are computed on."""
    if not split.holds_out:
        return "training set"
    return "reserved events" if split.kind == "reserved" else "held-out events"


def _oracle_epochs(clf, X_test: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """NN only: the mean test prediction of the epochs with the highest true max SIC."""
    from objectives.metrics import max_sic

    per_epoch = clf.epoch_predictions(X_test)
    sics = np.array([max_sic(p, y_test) for p in per_epoch])
    return per_epoch[clf.best_epochs("max_sic", values=sics)].mean(axis=0)


def evaluate_classifier(
    hp: dict, cell: Cell, split: Split, *, n_jobs: int = 1, device: str = "cpu"
) -> EvaluationResult:
    """Train ``cell.classifier`` with ``hp`` on ``cell`` under ``split``; every metric."""
    from objectives.classifiers import make_classifier

    t0 = time.perf_counter()
    p = prepare(cell)
    t_prep = time.perf_counter() - t0

    tr, va = split.indices(p.y)
    X_tr, y_tr, w_tr = p.X[tr], p.y[tr], p.w[tr]
    X_va, y_va, w_va = p.X[va], p.y[va], p.w[va]
    ch = split.choice_indices(p.y)  # where the NN ranks its epochs (= va but when reserved)
    validation = (p.X[ch], p.y[ch], p.w[ch]) if split.holds_out else None

    seed = split.model_seed()
    clf = make_classifier(
        cell.classifier,
        hp,
        seed=seed,
        n_jobs=n_jobs,
        device=device,
        argos_min_template=cell.argos_min_template,
    )
    t1 = time.perf_counter()
    clf.fit(X_tr, y_tr, sample_weight=w_tr, validation=validation)
    t_fit = time.perf_counter() - t1

    metrics: dict[str, float] = {}
    has_test = p.X_test is not None
    result = EvaluationResult(
        metrics=metrics, truth={}, scores={}, y_test=p.y_test if has_test else None
    )
    held: dict[str, np.ndarray] = {}
    cache: dict[str, tuple] = {}  # one prediction per distinct ensemble
    for sel in CLASSIFIER_METRICS:
        if sel == "max_sic" and clf.selection_dependent:
            key, p_va = "oracle", None
            if key not in cache:
                s_test = _oracle_epochs(clf, p.X_test, p.y_test) if has_test else None
                cache[key] = (None, s_test, *score_truth(s_test, p.y_test if has_test else None))
        else:
            key = sel if clf.selection_dependent else "all"
            if key not in cache:
                ranked_by = sel if sel != "max_sic" else "argos"
                s_test = clf.predict_proba(p.X_test, selection=ranked_by) if has_test else None
                cache[key] = (
                    clf.predict_proba(X_va, selection=ranked_by),
                    s_test,
                    *score_truth(s_test, p.y_test if has_test else None),
                )
        p_va, s_test, truth, curve = cache[key]
        result.truth[sel], result.curves[sel] = truth, curve
        if s_test is not None:
            result.scores[sel] = s_test
        if p_va is not None and split.holds_out:
            held[sel] = p_va
        metrics[sel] = (
            truth["max_sic"]
            if sel == "max_sic"
            else _label_free(sel, p_va, y_va, w_va, cell.argos_min_template)
        )
    if split.holds_out:
        result.held_out = HeldOut(index=va, label=y_va, scores=held)

    result.info = {
        "cell": cell.key(),
        "classifier": cell.classifier,
        "statistics": split.statistics,
        "split": split.to_dict(),
        "run": split.run,
        "seed": seed,
        "hp": dict(hp),
        "n_train": int(len(y_tr)),
        "n_validation": int(len(y_va)),
        "n_choice": int(len(ch)),
        "validation": _scored_on(split),
        "seconds_prepare": round(t_prep, 3),
        "seconds_fit": round(t_fit, 3),
        "seconds_total": round(time.perf_counter() - t0, 3),
        **{k: v for k, v in p.info.items() if k not in ("mode", "signal", "rotation")},
    }
    return result
