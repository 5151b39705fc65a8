"""What the service reads from a classifier-family estimator, checked once, in one place.

A method's estimator gives ``predict_proba(X)`` as scikit-learn does, shape ``(n, 2)``
(column 1: P(class 1), signal-region data), or that column alone, shape ``(n,)``; one
that keeps per-epoch states gives ``epoch_predictions(X)``, shape ``(n_epochs, n)``.
Anything else is a :class:`~objectives.errors.MethodError` naming the method, so a
broken estimator stops ``hpo validate`` (and a worker) with one line.

The epoch choice (:func:`best_epochs`) is the NN's: the ``n_best`` epochs ranked best
by a metric, best first, ties to the earlier epoch, nan last.
"""

from __future__ import annotations

import numpy as np

from objectives.errors import MethodError

__all__ = ["best_epochs", "class1_probabilities", "epoch_probabilities"]


def class1_probabilities(method: str, clf, X: np.ndarray) -> np.ndarray:
    """P(class 1) of every row of ``X`` from ``clf.predict_proba``: a float array ``(n,)``."""
    out = np.asarray(clf.predict_proba(X))
    n = X.shape[0]
    if out.ndim == 2 and out.shape == (n, 2):
        out = out[:, 1]
    elif out.shape != (n,):
        raise MethodError(
            f"method {method!r}: predict_proba of {n} events returned shape {out.shape}; "
            f"expected ({n}, 2) (scikit-learn's) or ({n},)"
        )
    return _checked(method, "predict_proba", out)


def epoch_probabilities(method: str, clf, X: np.ndarray) -> np.ndarray:
    """P(class 1) of every epoch for every row of ``X``: ``(n_epochs, n)`` from the estimator."""
    if not hasattr(clf, "epoch_predictions"):
        raise MethodError(
            f"method {method!r}: declares epoch_choice but its estimator has no "
            "epoch_predictions(X)"
        )
    out = np.asarray(clf.epoch_predictions(X))
    n = X.shape[0]
    if out.ndim != 2 or out.shape[1] != n or out.shape[0] < 1:
        raise MethodError(
            f"method {method!r}: epoch_predictions of {n} events returned shape {out.shape}; "
            f"expected (n_epochs, {n})"
        )
    return _checked(method, "epoch_predictions", out)


def _checked(method: str, what: str, out: np.ndarray) -> np.ndarray:
    if out.dtype.kind not in "fiu":
        raise MethodError(f"method {method!r}: {what} returned {out.dtype} values, not numbers")
    return out


def best_epochs(values, direction: str, n_best: int) -> np.ndarray:
    """Indices of the ``n_best`` best epochs by ``values`` (best first; ties: earlier first;
    nan last); ``direction`` is the metric's, ``"maximize"`` or ``"minimize"``."""
    v = np.asarray(values, dtype=np.float64)
    key = -v if direction == "maximize" else v
    order = np.argsort(np.nan_to_num(key, nan=np.inf), kind="stable")
    return order[: min(n_best, v.size)]
