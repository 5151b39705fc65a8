"""One entry point: train one hyperparameter set on one cell under a split, and score it.

``evaluate(hp, cell, "half", run=j)`` is what every HPO trial, final run and
benchmark calls; it looks the cell's method up in :mod:`objectives.registry`
and dispatches. The split is a :class:`~objectives.splits.Split` or the
paper's spelling ``"half"`` / ``"full"`` (with ``run``):

* **half statistics**: the method trains on a seeded, stratified half and the
  label-free metrics are computed on the other half (an unbiased score for
  comparing different models);
* **full statistics**: it trains on everything and the label-free metrics are
  computed on the training set; its truth performance is the number a paper
  reports;
* ``Split.kfold(fold, k, run)``: train on ``k - 1`` folds, score the held-out one.

The result is an :class:`~objectives.results.EvaluationResult`: metrics per
selection, the truth (max SIC, AUC) of each selection's ensemble, its test
scores and SIC curve. Deterministic for given ``hp``, ``cell`` and split.

``evaluate_ensemble(hps, cell, split, run)`` trains every hyperparameter set of
``hps`` and averages their scores, for the methods that can (the unsupervised
family: the poster's average over hyperparameter choices).

Example:
    >>> result = evaluate({"max_iter": 50}, cell, "half", run=0)  # doctest: +SKIP
    >>> result.metrics["argos"], result.truth["argos"]["max_sic"]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from objectives.cells import Cell
from objectives.registry import get_method
from objectives.results import EvaluationResult
from objectives.splits import Split

__all__ = ["EvaluationResult", "Split", "evaluate", "evaluate_ensemble"]


def evaluate(
    hp: Mapping[str, Any] | None,
    cell: Cell,
    split: Split | str = "half",
    run: int = 0,
    *,
    n_jobs: int = 1,
    device: str = "cpu",
) -> EvaluationResult:
    """Train ``cell.classifier`` with ``hp`` on ``cell`` under ``split`` and score it.

    ``n_jobs``: CPU threads; ``device``: where torch methods train ("auto", "cpu",
    "cuda"; the others ignore it). Raises HyperparameterError for bad ``hp`` (or an
    unusable device) and DataError for a bad data file, each one message.
    """
    method = get_method(cell.classifier)
    return method.evaluate(hp, cell, Split.of(split, run), n_jobs=n_jobs, device=device)


def evaluate_ensemble(
    hps: Sequence[Mapping[str, Any]],
    cell: Cell,
    split: Split | str = "half",
    run: int = 0,
    *,
    n_jobs: int = 1,
    device: str = "cpu",
) -> EvaluationResult:
    """Train ``cell.classifier`` with every set of ``hps`` under ``split``; average the scores.

    Raises ValueError for a method that cannot average (``Method.can_ensemble``),
    HyperparameterError for a bad set.
    """
    method = get_method(cell.classifier)
    return method.evaluate_ensemble(hps, cell, Split.of(split, run), n_jobs=n_jobs, device=device)
