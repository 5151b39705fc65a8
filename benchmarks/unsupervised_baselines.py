"""What an unsupervised detector must beat on the synthetic DarkMachines set, per signal.

The family's baselines with their default hyperparameters, trained on background only
(``objectives.unsupervised.baselines``): the one-variable cuts MET, HT and NObjects,
IsolationForest and FlowDensity on the ten event features; beside them the two exact
scores the generator knows: BkgDensity (``-log p_bkg``, the signal-agnostic limit) and
the likelihood ratio (it knows the signal: the supervised bound). Per signal: AUC and
eps_S at eps_B = 1e-2 / 1e-3 / 1e-4, the median and 16-84 % band over ``--seeds``
(each seed draws its own training and validation background and seeds the model; the
cuts and the exact scores do not depend on it). The last column says whether BkgDensity
finds the signal (AUC >= ``FINDABLE_AUC`` = 0.7) or calls it inside the background bulk.

Data: the synthetic set at ``--scale`` (1: 200k background, 20k per signal), half the
background held out as the test set; ``--n-train`` / ``--n-val`` events of the other half
train and validate. Results also go to ``benchmarks/out/unsupervised_baselines.json``.

Usage::

    python benchmarks/unsupervised_baselines.py [--scale 1] [--channel all]
        [--n-train 20000] [--n-val 5000] [--seeds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

TRAINED = ("IsolationForest", "FlowDensity")
METRICS = ("auc", "eps_s_1e-2", "eps_s_1e-3", "eps_s_1e-4")


def _band(values) -> str:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return "nan"
    q16, q50, q84 = np.percentile(v, [16, 50, 84])
    return f"{q50:.3f}" if v.size == 1 or q16 == q84 else f"{q50:.3f} [{q16:.3f}, {q84:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--channel", default="all")
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-val", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from _dm import OUT, dm_spec, train_val_test

    from objectives.darkmachines.cells import exact_limits
    from objectives.unsupervised.baselines import CUTS, FINDABLE_AUC, fit_baseline
    from objectives.unsupervised.metrics import per_signal_truth

    torch.set_num_threads(args.threads)
    spec = dm_spec(args.scale)
    if args.channel != "all":
        from dataclasses import replace

        spec = replace(spec, channel=args.channel)
    results: dict[str, list[dict]] = {}
    seconds: dict[str, list[float]] = {}
    for seed in range(args.seeds):
        train, val, test, test_signal, signals = train_val_test(
            spec, args.n_train, args.n_val, seed=seed
        )
        for name in (*CUTS, *TRAINED):
            if name in CUTS and seed:
                continue  # no training: the same scores for every seed
            t0 = time.process_time()
            det = fit_baseline(name, {}, train, val, seed=seed, n_threads=args.threads)
            scores = det.score(test)
            seconds.setdefault(name, []).append(time.process_time() - t0)
            results.setdefault(name, []).append(per_signal_truth(scores, test_signal, signals))
    for name, score in (("BkgDensity", "background_density"), ("ExactLR", "likelihood_ratio")):
        limits = exact_limits(spec, score)
        results[name] = [{s: {m: lim[m] for m in METRICS} for s, lim in limits.items()}]
    print(
        f"synthetic DarkMachines, scale {args.scale:g}, channel {args.channel}: "
        f"{args.n_train} training / {args.n_val} validation background events, "
        f"{int(np.sum(test_signal < 0))} test background events, seeds {args.seeds}"
    )
    header = ("signal", "method", "AUC", "eps_S 1e-2", "eps_S 1e-3", "eps_S 1e-4", "CPU s")
    rows = []
    for signal in signals:
        for name, runs in results.items():
            cells = [_band([r[signal][m] for r in runs]) for m in METRICS]
            cpu = f"{np.median(seconds[name]):.1f}" if name in seconds else "-"
            rows.append((signal, name, *cells, cpu))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    bkg = results["BkgDensity"][0]
    for signal in signals:
        auc = bkg[signal]["auc"]
        verdict = "findable" if auc >= FINDABLE_AUC else "inside the background bulk"
        print(f"BkgDensity on {signal}: AUC {auc:.3f} -> {verdict}")
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / "unsupervised_baselines.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=1, default=float))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
