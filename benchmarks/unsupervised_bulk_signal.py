"""Why does a detector rank a bulk signal below random? Its score split by multiplicity.

A detector's calibrated score (``calibration = multiplicity``, dSVDD's and DROCC's
default) is ``-log F(M(n) T_n(s))``: the rarity ``M(n)`` of the event's object
multiplicity and the tail probability ``T_n(s)`` of its raw score among background events
with as many objects (``objectives.unsupervised.calibration``). BkgDensity is the same
with the generator's exact ``-log p_bkg`` as the score. Per seed, for ``--method`` with
its default hyperparameters (MLP backbone, trained as ``unsupervised_quality.py`` trains
its default trial, so run B's figures are reproduced) and one ``--signal`` against the
test background, this prints the AUC of:

* the calibrated score, the raw score, ``-log T_n`` alone (the part within a
  multiplicity) and ``-log M(n)`` alone (the multiplicity's rarity);
* the same parts of BkgDensity: the exact ``-log p_bkg`` within a multiplicity is what a
  detector that ranks by rarity can reach there;
* per multiplicity with >= 100 events of each kind: the shares, the detector's AUC and
  the exact density's AUC;

and, on the background of the signal's two commonest multiplicities, the Spearman rho of
the raw score and of ``-log p_bkg`` with the leading object's log pT and with log HT,
beside each feature's own AUC on the signal.

For dSVDD also its geometry on the background (:func:`dsvdd_geometry`): per member the
centre's norm, the cosine of each output with the centre (1 % quantile and median: 1 is
an output collinear with c, a network collapsed to one dimension) and the share of
outputs shorter than c; per multiplicity the rho of the raw score with the norm of the
standardised input (how far the event is from the inputs' origin: the empty event by
default, the mean background event with ``--input-origin mean``, the default before run
G of docs/benchmarks.md) and of that norm with log HT.

Usage::

    python benchmarks/unsupervised_bulk_signal.py [--method dSVDD] [--signal zprime]
        [--seeds 3] [--n-train 20000] [--n-val 10000] [--epochs 10] [--threads 1]
        [--input-origin empty|mean]
"""

from __future__ import annotations

import argparse

import numpy as np

_LOG_PT = -3  # the object column of log pT (kinematics log E, log pT, eta, phi last)
_LOG_HT = 2  # the event column of log HT (EVENT_FEATURES)


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def one_seed(spec, args, seed: int) -> None:
    from _dm import train_val_test
    from scipy.stats import spearmanr

    from objectives.unsupervised.baselines import fit_baseline
    from objectives.unsupervised.calibration import CalibratedDetector
    from objectives.unsupervised.evaluate import fit_cell_detector

    train, val, test, test_signal, signals = train_val_test(
        spec, args.n_train, args.n_val, seed=seed
    )
    if args.signal not in signals:
        raise SystemExit(f"--signal: one of {', '.join(signals)}, got {args.signal!r}")
    det = fit_cell_detector(
        args.method,
        {
            "epochs": args.epochs,
            "backbone": "MLP",
            "calibration": "multiplicity",
            **({"input_origin": args.input_origin} if args.input_origin else {}),
        },
        train,
        val,
        seed=1000 * seed,
        n_threads=args.threads,
    )
    assert isinstance(det, CalibratedDetector)
    exact = fit_baseline("BkgDensity", {}, train, val, seed=0, synthetic=True)
    keep = (test_signal < 0) | (test_signal == signals.index(args.signal))
    test, test_signal = test.take(keep), test_signal[keep]
    y, n = test_signal >= 0, test.mask.sum(1)
    raw, nlp = det.inner.score(test), -exact.log_density(test)
    parts = {
        f"{args.method} calibrated": det.score(test),
        f"{args.method} raw": raw,
        f"{args.method} within multiplicity, -log T_n": det.tails.score(raw, n, multiplicity=False),
        "multiplicity rarity alone, -log M(n)": -np.log(det.tails.rarity(n)),
        "BkgDensity": exact.score(test),
        "BkgDensity within multiplicity": exact.tails.score(nlp, n, multiplicity=False),
    }
    print(f"\nseed {seed}: {args.signal} ({y.sum()}) against {(~y).sum()} background events")
    for label, s in parts.items():
        print(f"  AUC {_auc(y, s):.3f}  {label}")
    print("  per multiplicity: share of background / signal, AUC detector / exact density")
    for k in np.unique(n):
        b, s = (n == k) & ~y, (n == k) & y
        if min(b.sum(), s.sum()) >= 100:
            m = n == k
            print(f"    N = {k}: {b.sum() / (~y).sum():.3f} / {s.sum() / y.sum():.3f}, "
                  f"{_auc(y[m], raw[m]):.3f} / {_auc(y[m], nlp[m]):.3f}")  # fmt: skip
    features = {"leading log pT": test.objects[:, 0, _LOG_PT], "log HT": test.event[:, _LOG_HT]}
    for k in np.argsort(np.bincount(n[y]))[::-1][:2]:
        b, m = (n == k) & ~y, n == k
        print(f"  background with N = {k}: Spearman rho with the feature, "
              f"detector / exact -log p_bkg; the feature's AUC on {args.signal}")  # fmt: skip
        for name, f in features.items():
            print(f"    {name}: {spearmanr(raw[b], f[b])[0]:+.2f} / "
                  f"{spearmanr(nlp[b], f[b])[0]:+.2f}; {_auc(y[m], f[m]):.3f}")  # fmt: skip
    if args.method == "dSVDD":
        dsvdd_geometry(det.inner, test.take(~y))


def dsvdd_geometry(ensemble, background) -> None:
    """Print where a dSVDD ensemble's distances come from, on ``background`` events."""
    import torch
    from scipy.stats import spearmanr

    inputs = ensemble.scaler.inputs(background)
    with torch.no_grad():
        for m in ensemble.members:
            out = m.net.eval()(*inputs).double()
            c = m.c.double()
            cos = (out @ c / (out.norm(dim=1) * c.norm()).clamp_min(1e-12)).numpy()
            shorter = float((out.norm(dim=1) < c.norm()).double().mean())
            print(f"  dSVDD d = {m.rep_dim}: |c| {float(c.norm()):.3f}, cosine of the output "
                  f"with c {np.quantile(cos, 0.01):.4f} (1 %) / {np.median(cos):.4f} (median), "
                  f"outputs shorter than c {shorter:.2f}")  # fmt: skip
    raw = ensemble.score(background)
    norm = torch.cat([inputs.objects.flatten(1), inputs.event], 1).double().norm(dim=1).numpy()
    n, ht = background.mask.sum(1), background.event[:, _LOG_HT]
    for k in np.unique(n):
        b = n == k
        if b.sum() >= 1000 and np.ptp(ht[b]) > 0:  # N = 0: no jets, HT constant
            print(f"  background N = {k}: rho(score, |standardised input|) "
                  f"{spearmanr(raw[b], norm[b])[0]:+.2f}, rho(|input|, log HT) "
                  f"{spearmanr(norm[b], ht[b])[0]:+.2f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--method", default="dSVDD", choices=("dSVDD", "DROCC"))
    ap.add_argument("--signal", default="zprime")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--n-val", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--input-origin",
        choices=("empty", "mean"),
        default=None,
        help="the detector's input origin (default: the method's own default, empty)",
    )
    args = ap.parse_args()

    import torch
    from _dm import dm_spec

    torch.set_num_threads(args.threads)
    spec = dm_spec(args.scale)
    for seed in range(args.seeds):
        one_seed(spec, args, seed)


if __name__ == "__main__":
    main()
