"""The poster's table on the synthetic DarkMachines set: AUC and eps_S per signal, per detector.

dSVDD, DROCC and DDD with their default hyperparameters (dSVDD: the ensemble over
d = 5, 8, 13, 21; DROCC: radius 8, 10 ascent steps; DDD: its default distortion grid
of 8 points, the models with held-out AUC in [0.7, 0.8] kept), except the number of
epochs (``--epochs`` caps every method's; the defaults are 20 / 20 / 10), on each backbone of
``--backbones``, trained on background only; then the poster's recommended combination
dSVDD + DDD (mean of the two scores, each standardised on held-out background), beside
the exact likelihood ratio of every signal (the Neyman-Pearson limit on this test set).

Data: the synthetic set at ``--scale`` (1: 200k background, 20k per signal), half the
background held out as the test set (``--scale 1``: 100k test background, so eps_B =
1e-4 is 10 events; ``--test-background`` / ``--test-signal`` keep fewer, for the
transformers whose scoring is slow); ``--n-train`` training and ``--n-val`` validation
events drawn from the other half. On 2 shared CPU cores the MLP runs at 5k events and at
most 10 epochs, the transformers at 1k events, 2 epochs and a 20k + 2k test set (see the
README for the exact commands): their rows are limited by cost, not by the method. Results also
go to ``benchmarks/out/unsupervised_quality_<backbones>.json``.

Usage::

    python benchmarks/unsupervised_quality.py [--scale 1] [--backbones MLP]
        [--methods dSVDD,DROCC,DDD] [--n-train 5000] [--n-val 5000] [--epochs 10]
        [--threads 2]
        [--test-background 0] [--test-signal 0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

METHODS = ("dSVDD", "DROCC", "DDD")


def _fit_all(backbone: str, args, train, val, test, test_signal, signals) -> dict[str, dict]:
    from objectives.errors import HyperparameterError
    from objectives.unsupervised import default_hyperparameters
    from objectives.unsupervised.evaluate import fit_cell_detector
    from objectives.unsupervised.metrics import per_signal_truth

    out = {}
    for method in args.methods.split(","):
        hp = {"backbone": backbone}
        if args.epochs:  # a cap on the method's default number of epochs
            hp["epochs"] = min(args.epochs, default_hyperparameters(method)["epochs"])
            if method == "DROCC":
                hp["only_ce_epochs"] = min(2, hp["epochs"] - 1)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            det = fit_cell_detector(method, hp, train, val, seed=0, n_threads=args.threads)
        except HyperparameterError as exc:  # DDD: no distortion in the band
            print(f"  {method} {backbone}: {exc}", flush=True)
            continue
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        ref = det.score(val)
        z = (det.score(test) - ref.mean()) / max(ref.std(), 1e-12)
        out[method] = {"scores": z, "seconds": seconds, "cpu_seconds": cpu, "info": det.info}
        per = per_signal_truth(z, test_signal, signals)
        print(
            f"  {method} {backbone}: {seconds:.0f} s ({cpu:.0f} CPU s) on {len(train)} events; AUC "
            + ", ".join(f"{s} {v['auc']:.3f}" for s, v in per.items()),
            flush=True,
        )
    return out


def _keep(test_signal: np.ndarray, n_background: int, n_signal: int) -> np.ndarray:
    """Mask of the first ``n_background`` test background and ``n_signal`` events of each
    signal (0: all of them)."""
    keep = np.zeros(len(test_signal), bool)
    for k in np.unique(test_signal):
        idx = np.flatnonzero(test_signal == k)
        n = n_background if k < 0 else n_signal
        keep[idx[: n or len(idx)]] = True
    return keep


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--backbones", default="MLP")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--n-train", type=int, default=5_000)
    ap.add_argument("--n-val", type=int, default=5_000)
    ap.add_argument("--epochs", type=int, default=10, help="cap on every method's; 0: none")
    ap.add_argument("--test-background", type=int, default=0, help="0: all")
    ap.add_argument("--test-signal", type=int, default=0, help="per signal; 0: all")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from _dm import OUT, dm_spec, train_val_test

    from objectives.darkmachines import DMSyntheticModel
    from objectives.darkmachines.cells import load_sets
    from objectives.unsupervised.ensemble import combine_scores
    from objectives.unsupervised.metrics import TRUTH_METRICS, per_signal_truth

    torch.set_num_threads(args.threads)
    spec = dm_spec(args.scale)
    train, val, test, test_signal, signals = train_val_test(spec, args.n_train, args.n_val)
    keep = _keep(test_signal, args.test_background, args.test_signal)
    test, test_signal = test.take(keep), test_signal[keep]
    print(
        f"train {len(train)}, val {len(val)}; test {np.sum(test_signal < 0)} background, "
        f"{np.sum(test_signal == 0)} per signal",
        flush=True,
    )
    # the exact likelihood ratio on the same (sub)set of test events
    model = DMSyntheticModel()
    events = load_sets(spec).test.subset(keep)
    log_bkg = model.log_prob_background(events)
    rows: dict[str, dict] = {}
    lr = {}
    for name in signals:
        lr[name] = per_signal_truth(model.log_prob(events, name) - log_bkg, test_signal, signals)
    rows["exact LR"] = {name: lr[name][name] for name in signals}
    seconds: dict[str, dict[str, float]] = {}
    for backbone in args.backbones.split(","):
        fits = _fit_all(backbone, args, train, val, test, test_signal, signals)
        for method, fit in fits.items():
            rows[f"{method} {backbone}"] = per_signal_truth(fit["scores"], test_signal, signals)
            seconds[f"{method} {backbone}"] = {"wall": fit["seconds"], "cpu": fit["cpu_seconds"]}
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
    for label, per in rows.items():
        cells = [
            f"{per[s]['auc']:.3f} " + " ".join(f"{per[s][m]:.3f}" for m in TRUTH_METRICS[1:])
            for s in signals
        ]
        print(f"{label:<18}" + "".join(f"{c:>28}" for c in cells))
    out = OUT / f"unsupervised_quality_{args.backbones.replace(',', '_')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"args": vars(args), "rows": rows, "seconds": seconds}
    out.write_text(json.dumps(record, indent=2, default=float))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
