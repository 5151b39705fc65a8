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


class _Scores:
    """The held-out and test scores of a fitted estimator for each selection metric.

    A plain estimator has one ensemble, the same for every selection. One with per-epoch
    states (``Method.epoch_choice``) averages, per selection, the ``hp[epoch_choice]``
    epochs that metric ranks best: ARGOS and BCE on the split's choice events (weighted,
    as the NN ranked them in training), the truth oracle ``max_sic`` on the test set.
    """

    def __init__(
        self, method, hp: dict, clf, held: tuple, choice: tuple, test: tuple, min_template: int
    ):
        """(X, y, w) of the ``held``-out and ``choice`` events; ``test`` = (X, y) or Nones."""
        from objectives.classifiers.outputs import class1_probabilities, epoch_probabilities

        X_va, (X_test, self.y_test) = held[0], test
        X_ch, self.y_ch, self.w_ch = choice
        self.method = method
        self.min_template = min_template
        name = method.name
        if method.epoch_choice is None:
            self.n_best = None
            self.va = class1_probabilities(name, clf, X_va)
            self.test = None if X_test is None else class1_probabilities(name, clf, X_test)
        else:
            self.n_best = hp[method.epoch_choice]
            self.va = epoch_probabilities(name, clf, X_va)
            self.ch = self.va if X_ch is X_va else epoch_probabilities(name, clf, X_ch)
            self.test = None if X_test is None else epoch_probabilities(name, clf, X_test)

    def key(self, selection: str) -> str:
        """Selections with the same key share one ensemble."""
        return "all" if self.n_best is None else selection

    def __call__(self, selection: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(held-out scores or None for the oracle, test scores or None without a test set)."""
        if self.n_best is None:
            return self.va, self.test
        from objectives.classifiers.outputs import best_epochs
        from objectives.metrics import argos, max_sic, weighted_bce

        if selection == "max_sic":
            if self.test is None:
                return None, None
            values = [max_sic(p, self.y_test) for p in self.test]
        elif selection == "argos":
            values = [
                argos(p, self.y_ch, self.w_ch, min_template=self.min_template) for p in self.ch
            ]
        else:
            values = [weighted_bce(p, self.y_ch, self.w_ch) for p in self.ch]
        best = best_epochs(values, self.method.directions[selection], self.n_best)
        if selection == "max_sic":  # averaged in the predictions' own precision, as always
            return None, self.test[best].mean(axis=0)
        test = None if self.test is None else self.test[best].astype(np.float64).mean(axis=0)
        return self.va[best].astype(np.float64).mean(axis=0), test


def evaluate_classifier(
    hp: dict, cell: Cell, split: Split, *, n_jobs: int = 1, device: str = "cpu"
) -> EvaluationResult:
    """Train ``cell.classifier`` with ``hp`` on ``cell`` under ``split``; every metric.

    The estimator comes from the method's factory (``Method.make_estimator``): the
    built-in classifiers and other packages' alike.
    """
    from objectives.registry import get_method

    method = get_method(cell.classifier)
    t0 = time.perf_counter()
    p = prepare(cell)
    t_prep = time.perf_counter() - t0

    tr, va = split.indices(p.y)
    X_tr, y_tr, w_tr = p.X[tr], p.y[tr], p.w[tr]
    X_va, y_va, w_va = p.X[va], p.y[va], p.w[va]
    ch = split.choice_indices(p.y)  # where the NN ranks its epochs (= va but when reserved)
    choice = (X_va, y_va, w_va) if np.array_equal(ch, va) else (p.X[ch], p.y[ch], p.w[ch])
    validation = choice if split.holds_out else None

    seed = split.model_seed()
    clf = method.make_estimator(hp, seed=seed, n_jobs=n_jobs, device=device)
    t1 = time.perf_counter()
    clf.fit(X_tr, y_tr, sample_weight=w_tr, validation=validation)
    t_fit = time.perf_counter() - t1

    metrics: dict[str, float] = {}
    has_test = p.X_test is not None
    y_test = p.y_test if has_test else None
    result = EvaluationResult(metrics=metrics, truth={}, scores={}, y_test=y_test)
    test = (p.X_test, y_test) if has_test else (None, None)
    scores = _Scores(method, hp, clf, (X_va, y_va, w_va), choice, test, cell.argos_min_template)
    held: dict[str, np.ndarray] = {}
    cache: dict[str, tuple] = {}  # one prediction per distinct ensemble
    for sel in CLASSIFIER_METRICS:
        key = "oracle" if sel == "max_sic" and scores.n_best is not None else scores.key(sel)
        if key not in cache:
            p_va, s_test = scores(sel)
            cache[key] = (p_va, s_test, *score_truth(s_test, y_test))
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
