"""The poster's table on the synthetic DarkMachines set: AUC and eps_S per signal, per detector.

dSVDD, DROCC and DDD, each with its default hyperparameters (dSVDD: the ensemble over
d = 5, 8, 13, 21, 20 epochs; DROCC: 20 epochs, radius 8; DDD: its default distortion
grid of 8 points, 10 epochs each, the models with held-out AUC in [0.7, 0.8] kept), on
each backbone, trained on background only; then the poster's recommended combination
dSVDD + DDD (mean of the two scores, each standardised on held-out background), beside
the exact likelihood ratio of every signal (the Neyman-Pearson limit on this test set).

Data: the synthetic set at ``--scale`` (1: 200k background, 20k per signal), half the
background held out as the test set (``--scale 1``: 100k test background, so eps_B =
1e-4 is 10 events); training and validation events drawn from the other half. Sizes
that fit on 2 shared CPU cores: the MLP trains on ``--n-train-mlp`` (50k) events; the
transformers on ``--n-train-part`` (5k) events for ``--part-epochs`` (4) epochs (about
1000x the MLP's cost per event, see unsupervised_cost.py); their rows say so. Results
also go to ``benchmarks/out/unsupervised_quality.json``.

Usage::

    python benchmarks/unsupervised_quality.py [--scale 1] [--backbones MLP,ParT]
        [--n-train-mlp 50000] [--n-train-part 5000] [--part-epochs 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

METHODS = ("dSVDD", "DROCC", "DDD")


def _fit_all(backbone: str, args, data) -> dict[str, dict]:
    from objectives.errors import HyperparameterError
    from objectives.unsupervised.evaluate import fit_cell_detector

    train_all, val, test, _, _ = data
    part = backbone != "MLP"
    n_train = args.n_train_part if part else args.n_train_mlp
    train = train_all.take(slice(0, n_train))
    out = {}
    for method in METHODS:
        hp = {"backbone": backbone}
        if part:
            hp["epochs"] = args.part_epochs
            if method == "DROCC":
                hp["only_ce_epochs"] = min(2, args.part_epochs - 1)
        t0 = time.perf_counter()
        try:
            det = fit_cell_detector(method, hp, train, val, seed=0, n_threads=args.threads)
        except HyperparameterError as exc:  # DDD: no distortion in the band
            print(f"  {method} {backbone}: {exc}", flush=True)
            continue
        seconds = time.perf_counter() - t0
        ref = det.score(val)
        z = (det.score(test) - ref.mean()) / max(ref.std(), 1e-12)
        out[method] = {"scores": z, "seconds": seconds, "n_train": n_train, "info": det.info}
        print(f"  {method} {backbone}: {seconds:.0f} s on {n_train} events", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--backbones", default="MLP,ParT")
    ap.add_argument("--n-train-mlp", type=int, default=50_000)
    ap.add_argument("--n-train-part", type=int, default=5_000)
    ap.add_argument("--n-val", type=int, default=10_000)
    ap.add_argument("--part-epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from _dm import OUT, dm_spec, train_val_test

    from objectives.darkmachines.cells import exact_limits
    from objectives.unsupervised.ensemble import combine_scores
    from objectives.unsupervised.metrics import TRUTH_METRICS, per_signal_truth

    torch.set_num_threads(args.threads)
    spec = dm_spec(args.scale)
    data = train_val_test(spec, max(args.n_train_mlp, args.n_train_part), args.n_val)
    _, _, test, test_signal, signals = data
    print(f"test set: {np.sum(test_signal < 0)} background, per signal {np.sum(test_signal == 0)}")
    rows: dict[str, dict] = {}
    limits = exact_limits(spec)
    rows["exact LR"] = {s: {m: limits[s][m] for m in TRUTH_METRICS} for s in signals}
    seconds: dict[str, float] = {}
    for backbone in args.backbones.split(","):
        fits = _fit_all(backbone, args, data)
        for method, fit in fits.items():
            rows[f"{method} {backbone}"] = per_signal_truth(fit["scores"], test_signal, signals)
            seconds[f"{method} {backbone}"] = fit["seconds"]
        if {"dSVDD", "DDD"} <= set(fits):
            both = combine_scores([fits["dSVDD"]["scores"], fits["DDD"]["scores"]])
            rows[f"dSVDD+DDD {backbone}"] = per_signal_truth(both, test_signal, signals)
        if "DDD" in fits:
            kept = [a for a in fits["DDD"]["info"]["aucs"] if a["kept"]]
            print(f"  DDD {backbone}: kept {len(kept)} of {len(fits['DDD']['info']['aucs'])}: "
                  + ", ".join(f"({a['sigma']:g}, {a['p_drop']:g}, {a['p_add']:g}) "
                              f"AUC {a['auc']:.3f}" for a in kept))  # fmt: skip

    print("\nAUC / eps_S at eps_B = 1e-2, 1e-3, 1e-4 per signal")
    print(f"{'model':<18}" + "".join(f"{s:>28}" for s in signals))
    for model, per in rows.items():
        cells = [
            f"{per[s]['auc']:.3f} " + " ".join(f"{per[s][m]:.3f}" for m in TRUTH_METRICS[1:])
            for s in signals
        ]
        print(f"{model:<18}" + "".join(f"{c:>28}" for c in cells))
    out = OUT / "unsupervised_quality.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"args": vars(args), "rows": rows, "seconds": seconds}
    out.write_text(json.dumps(record, indent=2, default=float))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
