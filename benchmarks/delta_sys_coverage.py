"""Does ``δ_sys = x ± y`` cover the truth? The bootstrap error of delta_sys over many seeds.

Background-only scans whose true delta_sys is 0 (an exact template:
:func:`objectives.delta_sys.background_only_scan`, nine overlapping windows, k folds,
runs with their own classifiers). Per eps_B it prints how often ``|x| < 2 y`` (a
2-sigma interval states 95 %), the mean and spread of x, and the median error y,
for the bootstrap as it runs (one weight per event across the overlapping windows)
and as if the windows were independent (each window's events their own).

Usage::

    python benchmarks/delta_sys_coverage.py                    # 200 seeds, ~2 min
    python benchmarks/delta_sys_coverage.py --seeds 400 --n-data 20000 --eps 0.01,0.001
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from objectives.delta_sys import background_only_scan, delta_sys_bootstrap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--n-data", type=int, default=6000, help="data events over 2.9-4.1 TeV")
    ap.add_argument("--template", type=float, default=2.25, help="template / data events")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--replicates", type=int, default=300)
    ap.add_argument("--eps", default="0.05,0.01,0.002", help="eps_B values, comma-separated")
    args = ap.parse_args()
    eps_b = [float(e) for e in args.eps.split(",")]
    rows = {}
    t0 = time.perf_counter()
    for shared in (True, False):
        values, errors = [], []
        for seed in range(args.seeds):
            folds, ids = background_only_scan(
                seed,
                n_data=args.n_data,
                n_template=int(args.template * args.n_data),
                runs=args.runs,
                folds=args.folds,
                shared=shared,
            )
            measured = delta_sys_bootstrap(
                folds, *ids, eps_b, replicates=args.replicates, seed=seed
            )
            values.append([d.value for d in measured])
            errors.append([d.error for d in measured])
        rows[shared] = np.array(values), np.array(errors)
    seconds = time.perf_counter() - t0
    n_window = args.n_data * 0.4 / 1.2
    print(
        f"{args.seeds} seeds, {args.n_data} data events (~{n_window:.0f} per window), "
        f"template x{args.template}, {args.runs} runs, {args.folds} folds, "
        f"{args.replicates} replicates; {seconds:.0f} s"
    )
    print(
        f"{'eps_B':>7} {'expected/window':>15} {'bootstrap':>22} {'coverage':>9} "
        f"{'mean x':>8} {'sd x':>7} {'median y':>9}"
    )
    for i, eps in enumerate(eps_b):
        for shared in (True, False):
            x, y = rows[shared][0][:, i], rows[shared][1][:, i]
            how = "overlap counted" if shared else "windows independent"
            print(
                f"{eps:>7g} {eps * n_window:>15.1f} {how:>22} {np.mean(np.abs(x) < 2 * y):>9.3f} "
                f"{np.mean(x):>+8.3f} {np.std(x):>7.3f} {np.median(y):>9.3f}"
            )


if __name__ == "__main__":
    main()
