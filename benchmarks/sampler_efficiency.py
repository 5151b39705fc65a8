"""Sampler efficiency: trials TPE needs to reach the best ARGOS random search finds in 100.

On one scaled-down cell (synthetic data, HGB with a small ensemble), for each
seed: random search (the paper's sampler) runs ``--budget`` trials and records
its best mean ARGOS; TPE (our default) then runs until it reaches that value
or the same budget. Prints the per-seed counts and the median over seeds
(target: fewer than 50). The objective is the service's own search space and
the label-free ARGOS averaged over ``--repetitions`` half-statistics runs.

Usage::

    python benchmarks/sampler_efficiency.py [--seeds 5] [--budget 100] [--scale 0.05]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import optuna
from _common import synthetic_cell

from hpo.samplers import make_sampler
from hpo.spaces import hyperparameters, space_for, suggest
from objectives.evaluate import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--scale", type=float, default=0.05)
    ap.add_argument("--signal", type=int, default=500)
    ap.add_argument("--repetitions", type=int, default=2)
    ap.add_argument("--ensemble", type=int, default=1)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    cell = synthetic_cell("HGB", "IAD", args.signal, scale=args.scale)
    space = space_for("HGB")
    cache: dict[tuple, float] = {}

    def objective(trial: optuna.Trial) -> float:
        hp = hyperparameters("HGB", suggest(trial, space), {"n_ensemble": args.ensemble})
        key = tuple(sorted(hp.items()))
        if key not in cache:
            cache[key] = float(
                np.mean(
                    [
                        evaluate(hp, cell, "half", run=j).metrics["argos"]
                        for j in range(args.repetitions)
                    ]
                )
            )
        return cache[key]

    counts = []
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        rnd = optuna.create_study(
            direction="maximize",
            sampler=make_sampler("random", seed=seed, study_name=f"rnd{seed}", worker_id="bench"),
        )
        rnd.optimize(objective, n_trials=args.budget)
        target = rnd.best_value
        tpe = optuna.create_study(
            direction="maximize",
            sampler=make_sampler("tpe", seed=seed, study_name=f"tpe{seed}", worker_id="bench"),
        )
        needed = None
        for i in range(args.budget):
            tpe.optimize(objective, n_trials=1)
            if tpe.best_value >= target:
                needed = i + 1
                break
        counts.append(needed if needed is not None else args.budget + 1)
        print(
            f"seed {seed}: random best ARGOS {target:.4f} in {args.budget} trials; TPE "
            f"{'reached it after ' + str(needed) if needed else 'did not reach it in'}"
            f"{'' if needed else ' ' + str(args.budget)} trials "
            f"(TPE best {tpe.best_value:.4f})",
            flush=True,
        )
    med = float(np.median(counts))
    shown = ">" + str(args.budget) if med > args.budget else f"{med:.0f}"
    print(
        f"\nmedian trials TPE needs to match random search's {args.budget}-trial best: {shown} "
        f"(target < 50); {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
