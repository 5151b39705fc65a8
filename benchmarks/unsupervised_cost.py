"""Training cost of the unsupervised detectors per method and backbone: events/s, time, memory.

Each (method, backbone) trains in a fresh process (peak resident memory is its own) on
``--n-train`` background events of the synthetic DarkMachines set (20 object slots),
``--epochs`` epochs, with the method's defaults otherwise, except: dSVDD one member
(d = 8) and DDD one distortion point (so each row is one network's training; the
defaults train 4 and 8 of them), DROCC with its 10 ascent steps per batch. Reported:
wall time of the fit, training throughput (events x epochs / s; DROCC's ascent steps
and DDD's distorted copy -- twice the events per epoch -- included in the time, not in
the count), both per wall-clock second and per CPU second of the process (all its
threads: the figure that survives a loaded machine), time to score 10k events, peak
RSS. CPU only: no GPU on the machine these figures were measured on.

Usage::

    python benchmarks/unsupervised_cost.py [--n-train 5000] [--epochs 2] [--threads 2]
        [--backbones MLP,ParT,ParT+pair] [--methods dSVDD,DROCC,DDD] [--preset cpu|poster]
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

ONE_NETWORK = {
    "dSVDD": {"rep_dims": [8]},
    "DROCC": {"only_ce_epochs": 0},
    "DDD": {"sigmas": [0.3], "p_drops": [0.0], "p_adds": [0.0]},
}


def _one(method: str, backbone: str, args: dict) -> dict:
    import torch
    from _dm import dm_spec, train_val_test

    from objectives.unsupervised.evaluate import fit_cell_detector

    torch.set_num_threads(args["threads"])
    train, val, test, _, _ = train_val_test(dm_spec(args["scale"]), args["n_train"], 2000)
    hp = {
        **ONE_NETWORK[method],
        "backbone": backbone,
        "part_preset": args["preset"],
        "epochs": args["epochs"],
    }
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    det = fit_cell_detector(method, hp, train, val, seed=0, n_threads=args["threads"])
    fit_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    sample = test.take(slice(0, 10_000))
    t1 = time.perf_counter()
    det.score(sample)
    score_s = time.perf_counter() - t1
    return {
        "method": method,
        "backbone": backbone,
        "fit_s": fit_s,
        "cpu_s": cpu_s,
        "events_per_s": args["n_train"] * args["epochs"] / fit_s,
        "events_per_cpu_s": args["n_train"] * args["epochs"] / cpu_s,
        "score_10k_s": score_s * 10_000 / len(sample),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_start_mb": rss0 / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--methods", default="dSVDD,DROCC,DDD")
    ap.add_argument("--backbones", default="MLP,ParT,ParT+pair")
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--preset", default="cpu", choices=["cpu", "poster"])
    ap.add_argument("--scale", type=float, default=0.1, help="synthetic set (1: 200k bkg)")
    args = ap.parse_args()
    ctx = get_context("spawn")
    print(
        f"n_train {args.n_train}, {args.epochs} epochs, {args.threads} threads, "
        f"ParT preset {args.preset}"
    )
    print(
        "method  backbone    fit (wall)  fit (CPU)   events x epochs / wall s, / CPU s"
        "   score 10k   peak RSS"
    )
    for backbone in args.backbones.split(","):
        for method in args.methods.split(","):
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                r = pool.submit(_one, method, backbone, vars(args)).result()
            print(
                f"{r['method']:<7} {r['backbone']:<10} {r['fit_s']:8.1f} s  {r['cpu_s']:7.1f} s  "
                f"{r['events_per_s']:12.0f} {r['events_per_cpu_s']:12.0f}          "
                f"{r['score_10k_s']:6.2f} s  {r['rss_mb']:6.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
