"""One HGB / IAD cell on the built-in synthetic data: seconds per trial or final run."""

from __future__ import annotations

_TEMPLATE = """
[campaign]
name = "{name}"
run_dir = "run"
seed = 0

[data]
source = "synthetic"
scale = 0.03
seed = 1

[grid]
classifiers = ["HGB"]
modes = ["IAD"]
signal = [600]

[search]
n_trials = {n_trials}
sampler = "{sampler}"
n_startup_trials = 10
repetitions = {repetitions}
metrics = ["argos"]

[search.fixed.HGB]
n_ensemble = 1

[search.space.HGB]
max_iter = {{type = "int", low = 5, high = 20}}

[final]
n_runs = {n_runs}
statistics = {statistics}
"""
#: the cell key of that campaign
CELL = "HGB-IAD-norot-N600-baseline"


def tiny_campaign(
    name: str,
    *,
    n_trials: int = 4,
    sampler: str = "random",
    repetitions: int = 1,
    n_runs: int = 2,
    statistics: tuple[str, ...] = ("full",),
) -> str:
    """The campaign TOML (``statistics`` of the final runs)."""
    return _TEMPLATE.format(
        name=name,
        n_trials=n_trials,
        sampler=sampler,
        repetitions=repetitions,
        n_runs=n_runs,
        statistics="[" + ", ".join(f'"{s}"' for s in statistics) + "]",
    )
