"""Cost of one half-statistics evaluation per classifier at full size: wall time, peak memory.

Each classifier runs in a fresh process (so peak resident memory is its own)
on the full-size synthetic IAD cell at N = 1000 (120k SR data + 273k template,
half of it for training), with the search-time defaults: HGB mean of 50
fits, AdaBoost 10 fits on random halves, NN 20 epochs. The preparation of the
cell (loading 1M events, building the sets) is timed separately: it runs once
per process and every trial reuses it.

Usage::

    python benchmarks/evaluation_cost.py [--classifiers HGB,AdaBoost,NN] [--n-jobs 2]
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context


def _one(clf: str, n_jobs: int, overrides: dict) -> dict:
    from _common import synthetic_cell

    from objectives.cells import prepare
    from objectives.classifiers import default_hyperparameters
    from objectives.evaluate import evaluate

    cell = synthetic_cell(clf, "IAD", 1000)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    prepare(cell)
    t_prep = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hp = default_hyperparameters(clf)
    hp.update(overrides)
    t1 = time.perf_counter()
    r = evaluate(hp, cell, "half", run=0, n_jobs=n_jobs)
    t_eval = time.perf_counter() - t1
    rss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "clf": clf,
        "prepare_s": t_prep,
        "eval_s": t_eval,
        "fit_s": r.info["seconds_fit"],
        "rss_prepare_mb": (rss1 - rss0) / 1024,
        "rss_peak_mb": rss2 / 1024,
        "n_train": r.info["n_train"],
        "argos": r.metrics["argos"],
        "max_sic": r.truth["argos"]["max_sic"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--classifiers", default="HGB,AdaBoost,NN")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--hgb-ensemble", type=int, default=None)
    args = ap.parse_args()
    ctx = get_context("spawn")
    print("clf       prepare  evaluate(half)  of which fit  peak RSS   n_train  ARGOS  maxSIC")
    for clf in args.classifiers.split(","):
        overrides = {"n_ensemble": args.hgb_ensemble} if clf == "HGB" and args.hgb_ensemble else {}
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            r = pool.submit(_one, clf, args.n_jobs, overrides).result()
        print(
            f"{r['clf']:<9} {r['prepare_s']:6.1f} s  {r['eval_s']:9.1f} s    "
            f"{r['fit_s']:8.1f} s  {r['rss_peak_mb']:6.0f} MB  {r['n_train']:7d}  "
            f"{r['argos']:.3f}  {r['max_sic']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
