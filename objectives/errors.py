"""Errors a user of the science core can cause, each with one clear message."""

from __future__ import annotations

__all__ = ["DataError", "EnsembleRefused", "HyperparameterError", "MethodError"]


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


class MethodError(HyperparameterError):
    """A method (built-in or another package's) cannot be loaded or breaks the interface.

    The message names the method, where it came from and what is wrong, e.g.
    ``method 'LightGBM' (entry point of wsad-lightgbm 0.1.0): cannot import wsad_lightgbm
    (ModuleNotFoundError: No module named 'lightgbm')``. A subclass of
    HyperparameterError: a worker that meets it stops, as for a bad hyperparameter.
    """


class EnsembleRefused(HyperparameterError):
    """An ensemble over trials with nothing to average: every member would rank a generic
    anomaly below random, or (DDD) no distortion landed in the AUC band.

    ``hpo final`` records such a run as refused, with this message, and goes on.
    """
