"""ANODE and R-ANODE on full-size synthetic data at N = 1000 and N = 300 injected signal.

For each N: the CATHODE background model (cached per N, seed and hyperparameters
under ``--out/cache``), then on the SR data

  * ANODE   -- the SR data flow, score log p_data - log p_bkg;
  * R-ANODE -- the signal flow with w fixed to the true SR signal fraction, and with
    w learned (from ``--w-init``);

and their max SIC and AUC on the labelled test set (the same events as the
classifier modes' test set), next to the exact likelihood-ratio limit. Epoch
counts are reduced by default (CPU); the published values are 100 (background)
and 300 (R-ANODE).

Usage:
    python benchmarks/flows_anode.py --bkg-epochs 3 --sr-epochs 10
    python benchmarks/flows_anode.py --scale 0.2 --signals 1000 --sr-epochs 20
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def main(argv: list[str] | None = None) -> list[dict]:
    import torch

    from objectives.data import region_data
    from objectives.flows.anode import run_anode
    from objectives.flows.cathode import cached_background
    from objectives.flows.ranode import run_ranode
    from objectives.metrics import max_sic
    from objectives.synthetic import SyntheticModel, SyntheticSpec, write_synthetic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--signals", type=int, nargs="+", default=[1000, 300])
    ap.add_argument("--bkg-epochs", type=int, default=3)
    ap.add_argument("--bkg-batch-size", type=int, default=256)
    ap.add_argument("--bkg-lr", type=float, default=1e-4)
    ap.add_argument("--sr-epochs", type=int, default=10)
    ap.add_argument("--sr-batch-size", type=int, default=256)
    ap.add_argument("--sr-lr", type=float, default=3e-4)
    ap.add_argument("--w-init", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bkg-threads", type=int, default=None, help="default --threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_flows"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)

    spec = SyntheticSpec(scale=args.scale)
    data_file, extra_file = write_synthetic(spec, args.out / "data")
    truth = SyntheticModel()
    bkg_hp = {
        "epochs": args.bkg_epochs,
        "n_keep": min(10, args.bkg_epochs),
        "batch_size": args.bkg_batch_size,
        "lr": args.bkg_lr,
    }
    sr_hp = {
        "epochs": args.sr_epochs,
        "n_keep": min(10, args.sr_epochs),
        "batch_size": args.sr_batch_size,
        "lr": args.sr_lr,
    }
    reports = []
    for n_sig in args.signals:
        rd = region_data(data_file, extra_file, n_sig)
        bg = cached_background(
            args.out / "cache",
            data_file,
            signal=n_sig,
            seed=args.seed,
            hp=bkg_hp,
            n_threads=args.bkg_threads or args.threads,
        )
        torch.set_num_threads(args.threads)
        model = bg.load_model()
        test = {"x_test": rd.test.x, "mjj_test": rd.test.mjj, "y_test": rd.test.label}
        x_sr, m_sr = rd.sr.x, rd.sr.mjj
        w_true = rd.info["n_sr_signal"] / rd.info["n_sr_data"]
        runs = {
            "ANODE": run_anode(model, x_sr, m_sr, sr_hp, seed=args.seed, **test),
            "R-ANODE (true w)": run_ranode(
                model, x_sr, m_sr, sr_hp, seed=args.seed, w=w_true, **test
            ),
            "R-ANODE (learned w)": run_ranode(
                model, x_sr, m_sr, sr_hp, seed=args.seed, w_init=args.w_init, **test
            ),
        }
        exact = float(max_sic(truth.likelihood_ratio(rd.test.x), rd.test.label))
        rep = {
            "data": spec.tag,
            "signal": n_sig,
            "n_sr_data": rd.info["n_sr_data"],
            "n_sr_signal": rd.info["n_sr_signal"],
            "w_true": round(w_true, 5),
            "bkg_hp": bkg_hp,
            "sr_hp": sr_hp,
            "bkg_val_log_likelihood": bg.provenance["val_log_likelihood"],
            "bkg_seconds_per_epoch": bg.provenance["seconds_per_epoch"],
            "exact_LR_max_sic": round(exact, 2),
        }
        for name, ev in runs.items():
            rep[name] = {
                "max_sic": round(ev.truth["val_loss"]["max_sic"], 2),
                "auc": round(ev.truth["val_loss"]["auc"], 4),
                "val_loss": round(ev.metrics["val_loss"], 4),
                "fraction_of_exact": round(ev.truth["val_loss"]["max_sic"] / exact, 3),
                "seconds": ev.info["seconds_total"],
            }
            if "w" in ev.info:
                rep[name]["w"] = round(ev.info["w"], 5)
        print(json.dumps(rep, indent=1), flush=True)
        reports.append(rep)
    out = args.out / f"flows_anode_{spec.tag}_b{args.bkg_epochs}_s{args.sr_epochs}.json"
    out.write_text(json.dumps(reports, indent=1))
    return reports


if __name__ == "__main__":
    main()
