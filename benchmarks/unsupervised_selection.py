"""Which label-free metric picks unsupervised detectors that find signals? (issue 25 §3)

For each method (dSVDD, DROCC, DDD on ``--backbone``), ``--trials`` hyperparameter sets
are trained on background of the synthetic DarkMachines set: the defaults first, then
random draws from the family's search space (``hpo.spaces``; a DDD trial is one
distortion point, as in a campaign). Each trial records the candidate label-free
metrics on held-out background -- the method's own ``val_loss`` (sign flipped, so that
higher is better for every candidate), the AUC of each generic perturbation of
``objectives.unsupervised.perturb`` (the two guards included) and of a weaker and a
stronger MET / pT shift, their mean over the kinds the detector did not train on
(``perturb_auc``, the family's objective, without the guards; ``with_mirrors``, with
them), over all kinds, and the minimum over the kinds not trained on -- and the truth
on the test set (AUC and eps_S at eps_B = 1e-2 / 1e-3 per signal). Printed: Spearman
rho over the trials of each candidate with each truth metric, per method and signal,
and how the trial each candidate picks compares with the defaults.

Usage::

    python benchmarks/unsupervised_selection.py [--trials 12] [--n-train 20000]
        [--n-val 10000] [--epochs 10] [--methods dSVDD,DROCC,DDD] [--backbone MLP]
        [--seed 0] [--threads 1]

Results also go to ``benchmarks/out/unsupervised_selection_<backbone>_seed<seed>.json``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

METHODS = ("dSVDD", "DROCC", "DDD")
#: Extra magnitudes of the shifts, beside those of ``perturb.PERTURBATIONS``.
EXTRA_SHIFTS = {"met_up0.5": ("met", 0.5), "met_up2": ("met", 2.0)}
EXTRA_SHIFTS |= {"pt_up0.25": ("pt", 0.25), "pt_up1": ("pt", 1.0)}
TRUTH = ("auc", "eps_s_1e-2", "eps_s_1e-3")


def candidates(det, val) -> dict[str, float]:
    """Every candidate label-free metric of a fitted detector (higher = better)."""
    from objectives.unsupervised import edits
    from objectives.unsupervised.metrics import auc
    from objectives.unsupervised.perturb import MAX_EVENTS, perturb_auc, perturbation_aucs

    kinds = perturbation_aucs(det.score, val)
    own = set(det.trained_on)
    out = {"-val_loss": -float(det.val_loss), **kinds}
    ref_events = val.take(slice(0, MAX_EVENTS))
    ref = det.score(ref_events)
    for name, (what, delta) in EXTRA_SHIFTS.items():
        moved = (edits.shift_met if what == "met" else edits.scale_pt)(ref_events, delta)
        out[name] = auc(ref, det.score(moved))
    out["perturb_auc"] = perturb_auc(kinds, own)
    # the guard kinds (the mirrored shifts) counted in the mean as well
    out["with_mirrors"] = float(np.mean([v for k, v in kinds.items() if k not in own]))
    out["mean_all"] = float(np.mean(list(kinds.values())))
    out["min_not_own"] = float(min(v for k, v in kinds.items() if k not in own))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--n-val", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--backbone", default="MLP")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch
    from _dm import OUT, dm_spec, train_val_test, trial_hps
    from scipy.stats import spearmanr

    from objectives.errors import HyperparameterError
    from objectives.unsupervised.evaluate import fit_cell_detector
    from objectives.unsupervised.metrics import per_signal_truth

    torch.set_num_threads(args.threads)
    spec = dm_spec(1.0)
    train, val, test, test_signal, signals = train_val_test(
        spec, args.n_train, args.n_val, seed=args.seed
    )
    print(
        f"train {len(train)}, val {len(val)}; test {np.sum(test_signal < 0)} background, "
        f"{np.sum(test_signal == 0)} per signal; {args.trials} trials per method, "
        f"{args.backbone}, {args.epochs} epochs",
        flush=True,
    )
    record: dict = {"args": vars(args), "methods": {}}
    for method in args.methods.split(","):
        rows = []
        hps = trial_hps(method, args.trials, args.seed, args.epochs)
        if method == "DDD":  # a trial is one distortion point: the defaults' middle one
            hps[0].update(sigmas=[0.5], p_drops=[0.4], p_adds=[0.4])
        for i, hp in enumerate(hps):
            t0 = time.perf_counter()
            try:
                det = fit_cell_detector(
                    method,
                    {**hp, "backbone": args.backbone},
                    train,
                    val,
                    seed=1000 * args.seed + i,
                    n_threads=args.threads,
                )
            except HyperparameterError as exc:
                print(f"  {method} trial {i}: {exc}", flush=True)
                continue
            truth = per_signal_truth(det.score(test), test_signal, signals)
            cand = candidates(det, val)
            rows.append({"hp": hp, "candidates": cand, "truth": truth})
            print(
                f"  {method} trial {i} ({time.perf_counter() - t0:.0f} s): perturb_auc "
                f"{cand['perturb_auc']:.3f}, val_loss {-cand['-val_loss']:.4g}; AUC "
                + ", ".join(f"{s} {v['auc']:.3f}" for s, v in truth.items()),
                flush=True,
            )
        record["methods"][method] = rows
        if len(rows) < 3:
            continue
        names = list(rows[0]["candidates"])
        print(f"\n{method}: Spearman rho over {len(rows)} trials (AUC / eps_S 1e-3 per signal)")
        print(f"{'candidate':<14}" + "".join(f"{s:>16}" for s in signals) + f"{'mean AUC':>10}")
        rho: dict[str, dict] = {}
        for name in names:
            x = [r["candidates"][name] for r in rows]
            cells, rho[name] = [], {}
            for s in signals:
                pair = []
                for metric in ("auc", "eps_s_1e-3"):
                    y = [r["truth"][s][metric] for r in rows]
                    value = spearmanr(x, y)[0] if np.std(y) > 0 and np.std(x) > 0 else np.nan
                    rho[name][f"{s}:{metric}"] = value
                    pair.append(value)
                cells.append(f"{pair[0]:+.2f} / {pair[1]:+.2f}")
            mean_auc = [np.mean([r["truth"][s]["auc"] for s in signals]) for r in rows]
            rho[name]["mean_auc"] = spearmanr(x, mean_auc)[0] if np.std(x) > 0 else np.nan
            print(
                f"{name:<14}" + "".join(f"{c:>16}" for c in cells)
                + f"{rho[name]['mean_auc']:>+10.2f}"
            )  # fmt: skip
        record.setdefault("rho", {})[method] = rho
        default = rows[0]["truth"]
        print(f"{method}: AUC of the trial each candidate picks minus the defaults' (per signal)")
        for name in names:
            best = max(rows, key=lambda r, n=name: r["candidates"][n])["truth"]
            diff = [best[s]["auc"] - default[s]["auc"] for s in signals]
            print(f"{name:<14}" + "".join(f"{d:>+16.3f}" for d in diff))
    out = OUT / f"unsupervised_selection_{args.backbone}_seed{args.seed}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=float))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
