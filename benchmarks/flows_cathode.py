"""CATHODE background model on full-size synthetic data: training time, sample quality, SIC.

Steps (synthetic data with exact densities, ``objectives.synthetic``):

  1. write the synthetic files (``--scale``, 1.0 = LHCO R&D size) and inject ``--signal``;
  2. train the background flow on the sidebands (published setup unless overridden),
     timed: total and per epoch, extrapolated to 100 epochs;
  3. sample 4x the SR data in the SR (mjj KDE + the kept epochs) and measure sample
     quality: held-out AUC of an HGB separating samples from true SR background
     (the extra-background events), target <= 0.52, and the mean log-likelihood gap
     to the true density on true SR background (nats/event, 0 = perfect);
  4. unless ``--no-evaluate``: CATHODE-mode and IAD-mode max SIC with HGB
     (``objectives.evaluate``, full statistics, ``--hgb-ensemble`` models) and the exact
     likelihood-ratio limit on the same test set; target CATHODE >= 0.9 x IAD.

The machine may be shared: the per-epoch time is the figure to extrapolate from.

Usage:
    python benchmarks/flows_cathode.py --epochs 3                 # published batch 256
    python benchmarks/flows_cathode.py --epochs 3 --batch-size 1024 --lr 4e-4   # faster
    python benchmarks/flows_cathode.py --scale 0.1 --epochs 5 --no-evaluate     # quick
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np


def hgb_auc(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Held-out (50/50) AUC of an HGB separating ``a`` (label 1) from ``b``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    n = min(len(a), len(b))
    X = np.concatenate([a[:n], b[:n]])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    idx = np.random.default_rng(seed).permutation(len(y))
    tr, te = idx[: len(y) // 2], idx[len(y) // 2 :]
    clf = HistGradientBoostingClassifier(random_state=seed).fit(X[tr], y[tr])
    return float(roc_auc_score(y[te], clf.predict_proba(X[te])[:, 1]))


def main(argv: list[str] | None = None) -> dict:
    import torch

    from objectives.data import region_data
    from objectives.flows.background import train_background_model
    from objectives.flows.cathode import package_versions
    from objectives.flows.sampling import sample_signal_region, write_samples
    from objectives.lhco import load_events
    from objectives.regions import DEFAULT_REGION
    from objectives.synthetic import SyntheticModel, SyntheticSpec, write_synthetic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--shifted", action="store_true")
    ap.add_argument("--signal", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--n-blocks", type=int, default=15)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--n-keep", type=int, default=None, help="default min(10, epochs)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hgb-ensemble", type=int, default=5)
    ap.add_argument("--no-evaluate", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("runs/bench_flows"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)

    spec = SyntheticSpec(scale=args.scale, shifted=args.shifted)
    data_file, extra_file = write_synthetic(spec, args.out / "data")
    rd = region_data(data_file, extra_file, args.signal)
    hp = {
        "n_blocks": args.n_blocks,
        "hidden": args.hidden,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "n_keep": args.n_keep or min(10, args.epochs),
    }
    res = train_background_model(rd.outside.x, rd.outside.mjj, hp, seed=args.seed)
    per_epoch = res.history.seconds_per_epoch
    tag = f"{spec.tag}_N{args.signal}_b{args.batch_size}_e{args.epochs}"

    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    rows = sample_signal_region(res.model, rd.sr.mjj, 4 * len(rd.sr), rng)
    t_sample = time.perf_counter() - t0
    samples_file = write_samples(
        args.out / f"samples_{tag}.npy", rows, {"benchmark": "flows_cathode", "hp": res.info["hp"]}
    )

    extra = load_events(extra_file)
    sr = DEFAULT_REGION.in_sr(extra.mjj)
    true_x, true_m = extra.x[sr], extra.mjj[sr]
    n = min(200_000, len(true_x), len(rows))
    auc = hgb_auc(rows[:n, 1:], true_x[:n])
    truth = SyntheticModel(shifted=args.shifted)
    k = min(50_000, len(true_x))
    ll_gap = float(
        np.mean(
            truth.log_prob_bkg(true_x[:k], true_m[:k]) - res.model.log_prob(true_x[:k], true_m[:k])
        )
    )
    report = {
        "data": spec.tag,
        "signal": args.signal,
        "n_sideband_train": res.info["n_train"],
        "n_sideband_val": res.info["n_validation"],
        "hp": res.info["hp"],
        "threads": args.threads,
        "epochs_run": res.info["epochs_run"],
        "seconds_train": res.info["seconds_train"],
        "seconds_per_epoch": round(per_epoch, 2),
        "minutes_extrapolated_100_epochs": round(per_epoch * 100 / 60, 1),
        "seconds_sampling": round(t_sample, 1),
        "n_samples": len(rows),
        "sample_auc_vs_true_sr_background": round(auc, 4),
        "loglik_gap_nats_per_event": round(ll_gap, 4),
        "val_log_likelihood": round(res.val_log_likelihood, 4),
        "kept_epochs": res.history.kept_epochs,
        "samples_file": str(samples_file),
        "versions": package_versions(),
    }
    print(json.dumps(report, indent=1), flush=True)

    if not args.no_evaluate:
        from objectives.cells import Cell, DataSpec
        from objectives.evaluate import evaluate
        from objectives.metrics import max_sic

        data = DataSpec(data_file, extra_file, samples_file=samples_file)
        hgb = {"n_ensemble": args.hgb_ensemble}
        sics = {}
        for mode in ("IAD", "CATHODE", "CWoLa"):
            ev = evaluate(hgb, Cell("HGB", mode, args.signal, False, data), "full")
            sics[mode] = ev.truth["argos"]["max_sic"]
        sics["exact_LR"] = float(max_sic(truth.likelihood_ratio(rd.test.x), rd.test.label))
        report.update(
            max_sic={k: round(v, 2) for k, v in sics.items()},
            cathode_over_iad=round(sics["CATHODE"] / sics["IAD"], 3),
            cathode_over_exact=round(sics["CATHODE"] / sics["exact_LR"], 3),
        )
        print(json.dumps({k: report[k] for k in ("max_sic", "cathode_over_iad")}), flush=True)
    out = args.out / f"flows_cathode_{tag}.json"
    out.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
