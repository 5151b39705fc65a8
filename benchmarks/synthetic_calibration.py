"""Generate the full-size synthetic dataset, load it back and print its calibration figures.

Usage::

    python benchmarks/synthetic_calibration.py [--out runs/synthetic] [--shifted] [--seed 0]
    python benchmarks/synthetic_calibration.py --fit-real ../shared/data/lhco-rd-sr

The second form refits the Gaussian mixtures of ``objectives/synthetic.py`` to
the real SR events and prints them (how the constants there were made).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from objectives import synthetic
from objectives.lhco import load_events
from objectives.regions import DEFAULT_REGION

QUANTILES = (1, 16, 50, 84, 99)
# Real LHCO R&D SR quantiles (../shared/data/README.md), q01/q16/q50/q84/q99.
REAL = {
    "background": [
        (0.027, 0.058, 0.108, 0.215, 0.479),
        (0.002, 0.032, 0.126, 0.326, 0.652),
        (0.152, 0.390, 0.600, 0.756, 0.905),
        (0.093, 0.264, 0.491, 0.683, 0.864),
    ],
    "signal": [
        (0.073, 0.098, 0.111, 0.147, 0.372),
        (0.017, 0.300, 0.383, 0.426, 0.573),
        (0.111, 0.232, 0.380, 0.553, 0.754),
        (0.044, 0.097, 0.189, 0.377, 0.680),
    ],
}
N_INJECT, N_TEMPLATE, N_TEST_SIG, MAX_REL_ERR = 1000, 272_858, 20_000, 0.2


def max_sic(scores: np.ndarray, truth: np.ndarray, max_rel_error: float = MAX_REL_ERR) -> float:
    """max TPR/sqrt(FPR) over thresholds with FPR > 1/(n_bkg * max_rel_error^2)."""
    order = np.argsort(-scores, kind="stable")
    t = truth[order]
    tpr = np.cumsum(t) / t.sum()
    fpr = np.cumsum(1 - t) / (1 - t).sum()
    ok = fpr > 1.0 / ((1 - t).sum() * max_rel_error**2)
    return float(np.max(tpr[ok] / np.sqrt(fpr[ok])))


def fit_real(data_dir: Path, k: int = 8) -> None:
    """Refit the latent Gaussian mixtures to the real SR events and print them."""
    from sklearn.mixture import GaussianMixture

    for name, signal in (("background", False), ("signal", True)):
        a = np.load(data_dir / f"sr_{name}.npy")
        z, log_jac = synthetic.to_latent(a[:, 1:5], a[:, 0], signal)
        ok = np.isfinite(log_jac) & (a[:, 1] > 1e-3) & (a[:, 2] > 1e-4)
        z = z[ok]
        if not signal:
            z = z - np.log(a[ok, 0] / 3.5)[:, None] * synthetic._BKG_DRIFT
        g = GaussianMixture(k, covariance_type="full", random_state=0, reg_covar=1e-4)
        g.fit(z)
        print(f"{name}: weights={np.round(g.weights_, 5).tolist()}")
        print(f"  means={np.round(g.means_, 5).tolist()}")
        print(f"  covs={np.round(g.covariances_, 5).tolist()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/synthetic"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shifted", action="store_true")
    ap.add_argument("--fit-real", type=Path, default=None, metavar="DIR")
    args = ap.parse_args()
    if args.fit_real is not None:
        fit_real(args.fit_real)
        return

    spec = synthetic.SyntheticSpec(scale=1.0, shifted=args.shifted, seed=args.seed)
    t0 = time.perf_counter()
    t_gen = time.perf_counter()
    data_tab, extra_tab = synthetic.generate(spec)
    t_gen = time.perf_counter() - t_gen
    del data_tab, extra_tab
    data_path, extra_path = synthetic.write_synthetic(spec, args.out)
    t_write = time.perf_counter() - t0
    t_load = time.perf_counter()
    data, extra = load_events(data_path), load_events(extra_path)
    t_load = time.perf_counter() - t_load
    print(f"files: {data_path} ({data_path.stat().st_size / 1e6:.0f} MB), {extra_path}")
    print(
        f"generation (in memory) {t_gen:.1f} s; generate + write (or reuse) {t_write:.1f} s; "
        f"load both {t_load:.1f} s"
    )

    sr = DEFAULT_REGION.in_sr(data.mjj)
    bkg, sig = data.label == 0, data.label == 1
    print(f"events: {bkg.sum()} bkg, {sig.sum()} sig, {len(extra)} extra SR bkg")
    print(
        f"in SR: {np.sum(sr & bkg)} bkg ({np.mean(sr[bkg]):.4f}), "
        f"signal fraction in SR {np.mean(sr[sig]):.4f}"
    )
    sig_idx = np.flatnonzero(sig)
    injected = sig_idx[:N_INJECT]
    s = int(np.sum(sr[injected]))
    b = int(np.sum(sr & bkg))
    print(f"N={N_INJECT}: S={s}, B={b}, S/B={s / b:.4%}, S/sqrt(B)={s / np.sqrt(b):.2f}")

    for name, mask in (("background", sr & bkg), ("signal", sr & sig)):
        print(f"{name} SR quantiles q01/q16/q50/q84/q99 (synthetic | real):")
        for i, feat in enumerate(data.feature_names):
            q = np.percentile(data.x[mask, i], QUANTILES)
            print(
                f"  {feat:9s} {' '.join(f'{v:.3f}' for v in q)} | "
                f"{' '.join(f'{v:.3f}' for v in REAL[name][i])}"
            )
        c = np.corrcoef(data.x[mask].T)
        print(
            f"  corr(mJ1,t21_1)={c[0, 2]:.2f} corr(mJ1,t21_2)={c[0, 3]:.2f} "
            f"corr(dmJ,t21_1)={c[1, 2]:.2f} corr(dmJ,t21_2)={c[1, 3]:.2f}"
        )

    test_sig = sig_idx[N_INJECT:][sr[sig_idx[N_INJECT:]]][:N_TEST_SIG]
    x_test = np.vstack([extra.x[N_TEMPLATE:], data.x[test_sig]])
    y_test = np.r_[np.zeros(len(extra) - N_TEMPLATE), np.ones(len(test_sig))]
    model = synthetic.SyntheticModel(shifted=spec.shifted)
    t_lr = time.perf_counter()
    lr = model.likelihood_ratio(x_test)
    t_lr = time.perf_counter() - t_lr
    print(
        f"test set: {int((y_test == 0).sum())} bkg + {int(y_test.sum())} sig; "
        f"exact-LR max SIC = {max_sic(lr, y_test):.2f} (LR on {len(x_test)} events in "
        f"{t_lr:.1f} s)"
    )
    for i, feat in enumerate(data.feature_names):
        best = max(max_sic(x_test[:, i], y_test), max_sic(-x_test[:, i], y_test))
        print(f"  single-feature max SIC {feat}: {best:.2f}")


if __name__ == "__main__":
    main()
