"""Samplers, seeded so that parallel workers never share a seed.

* ``random`` reproduces the paper's random search. Each trial's parameters
  come from a generator seeded by (campaign seed, study, trial number), so the
  search is reproducible whichever worker runs which trial.
* ``tpe`` (the default) is Optuna's TPE with ``n_startup_trials`` random
  trials; each worker seeds it from (campaign seed, study, worker id).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import optuna
from optuna.samplers import BaseSampler, RandomSampler, TPESampler

__all__ = ["TrialSeededRandomSampler", "derive_seed", "make_sampler"]


def derive_seed(*parts: Any) -> int:
    """A 32-bit seed from any mix of ints and strings (stable across processes)."""
    words = [p if isinstance(p, int) else zlib.crc32(str(p).encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


class TrialSeededRandomSampler(BaseSampler):
    """Random search whose draws depend only on (seed, trial number, parameter name)."""

    def __init__(self, seed: int) -> None:
        self._seed = seed

    def infer_relative_search_space(self, study, trial):  # noqa: D102
        return {}

    def sample_relative(self, study, trial, search_space):  # noqa: D102
        return {}

    def sample_independent(self, study, trial, param_name, param_distribution):  # noqa: D102
        seed = derive_seed(self._seed, study.study_name, trial.number, param_name)
        return RandomSampler(seed=seed).sample_independent(
            study, trial, param_name, param_distribution
        )


def make_sampler(
    kind: str, *, seed: int, study_name: str, worker_id: str, n_startup_trials: int = 10
) -> optuna.samplers.BaseSampler:
    """The sampler one worker uses on one study."""
    if kind == "random":
        return TrialSeededRandomSampler(seed)
    if kind == "tpe":
        return TPESampler(
            seed=derive_seed(seed, study_name, worker_id),
            n_startup_trials=n_startup_trials,
            constant_liar=True,
        )
    raise ValueError(f"unknown sampler {kind!r}; valid: random, tpe")
