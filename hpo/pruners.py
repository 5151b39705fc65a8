"""Pruners over repetitions: stop a trial early when its first repetitions show it is hopeless.

Repetition ``j`` uses the same split and model seed in every trial, so trials are paired
per repetition. The objective reports the driving metric of each repetition as the
intermediate value at step ``j``:

* ``wilcoxon`` -- Optuna's ``WilcoxonPruner``: a paired Wilcoxon signed-rank test of the
  trial's repetitions against the same repetitions of the best trial so far; pruned when
  it is worse at p < ``search.pruner_p`` (reported values: each repetition's own);
* ``halving`` -- successive halving over repetitions (Optuna's ``SuccessiveHalvingPruner``,
  rungs at 1, 3, 9 ... repetitions): a trial continues only if its running mean is in the
  top third of the trials that reached the same rung (reported values: the running mean);
* ``none`` -- every trial runs every repetition (the paper's protocol);
* ``auto`` (the default) -- ``wilcoxon`` when a trial has repetitions left after
  ``search.pruner_startup``, else ``none``: the choice of ``benchmarks/pruning_quality.py``
  (TPE + Wilcoxon picked hyperparameters as good as the paper's random search for
  about half its CPU seconds).

A trial always runs ``search.pruner_startup`` repetitions first.
"""

from __future__ import annotations

import warnings

__all__ = ["PRUNERS", "make_pruner", "reported_value", "resolve_pruner"]

PRUNERS = ("none", "wilcoxon", "halving")
#: what ``pruner = "auto"`` becomes where it can act
AUTO_PRUNER = "wilcoxon"


def resolve_pruner(kind: str, repetitions: int, startup: int) -> str:
    """The pruner a campaign runs: ``auto`` becomes AUTO_PRUNER, or ``none`` where a
    trial has no repetition left after ``startup``; any other kind stays as it is."""
    if kind != "auto":
        return kind
    return AUTO_PRUNER if repetitions > startup else "none"


def make_pruner(kind: str, *, p_threshold: float = 0.1, startup: int = 3):
    """The ``optuna.pruners.BasePruner`` of a study (Optuna imported here, not by config)."""
    import optuna

    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "wilcoxon":
        with warnings.catch_warnings():  # experimental in Optuna 5, nothing a user can do
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(p_threshold=p_threshold, n_startup_steps=startup)
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=startup, reduction_factor=3, min_early_stopping_rate=0
        )
    raise ValueError(f"unknown pruner {kind!r}; valid: {', '.join(PRUNERS)}")


def reported_value(kind: str, values: list[float]) -> float:
    """What a repetition reports: its own value (wilcoxon) or the running mean (halving)."""
    if kind == "halving":
        return float(sum(values) / len(values))
    return float(values[-1])
