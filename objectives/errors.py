"""Errors a user of the science core can cause, each with one clear message."""

from __future__ import annotations

__all__ = ["DataError", "HyperparameterError"]


class DataError(ValueError):
    """A data file is missing, malformed, or gives an empty selection.

    The message names the file and the problem, e.g.
    ``data.h5: column 'mj1' is missing (expected the LHC Olympics R&D schema)``.
    """


class HyperparameterError(ValueError):
    """An unknown or out-of-range hyperparameter.

    The message names the parameter, the rule and the value given, e.g.
    ``HGB hyperparameter 'max_iter': must be an integer in [1, 10000], got 0``.
    """
