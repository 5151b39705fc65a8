"""Overhead of our classifier wrappers against bare scikit-learn / torch on full-size shapes.

Compares, on a toy Gaussian problem of the real training shape (one half of
120k SR data + 272k template, about 196k rows x 4 features, balanced labels):

  (a) HGB: our ensemble of K fits vs K bare ``HistGradientBoostingClassifier.fit`` calls
      (same seeds, same settings, ``class_weight="balanced"`` as in the reference; with
      exactly balanced labels ours takes scikit-learn's faster unweighted path);
  (b) NN: one epoch of our MLP estimator (with its per-epoch validation ARGOS/BCE on
      a held-out set of the same size and the kept weights) vs a bare torch loop
      (same net, batch size, optimiser, threads), without ("bare") and with
      ("bare+val") one forward pass over the validation set per epoch;
  (c) AdaBoost: our ensemble of K models on random halves vs K bare fits on the same halves.

Each measurement runs in a fresh process, after a small warm-up fit of the same
variant (first-call imports and thread-pool start-up excluded): wall time
(``time.perf_counter``) and the growth of peak resident memory (``resource.getrusage``
ru_maxrss, which also sees torch's and OpenMP's allocations) over the warmed-up state.
Each variant runs ``--repeats`` times in alternating order and the minimum is kept
(the machine may be shared). Prints the ratio ours / bare; the target is <= 1.1.

Usage:
    python benchmarks/classifier_overhead.py            # K = 5, 196k rows, 2 threads
    python benchmarks/classifier_overhead.py --k 2 --n-train 50000 --parts hgb,nn
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

PARTS = ("hgb", "nn", "adaboost")


def _toy(n: int, d: int, seed: int, frac: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A fraction ``frac`` of label 1, shifted by 0.3 in every feature and wider in feature 0."""
    rng = np.random.default_rng(seed)
    n1 = round(frac * n)
    y = np.repeat([0, 1], [n - n1, n1])
    rng.shuffle(y)
    X = rng.normal(size=(n, d))
    X += 0.3 * y[:, None]
    X[:, 0] *= 1.0 + 0.3 * y
    return X.astype(np.float32), y


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _hgb(variant: str, X, y, k: int, n_jobs: int) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    from objectives.classifiers import make_classifier

    if variant == "ours":
        make_classifier("HGB", {"n_ensemble": k}, seed=0, n_jobs=n_jobs).fit(X, y)
        return
    seeds = np.random.SeedSequence(0).generate_state(k)  # the seeds ours uses
    models = []
    with threadpool_limits(limits=n_jobs, user_api="openmp"):
        for s in seeds:
            m = HistGradientBoostingClassifier(
                max_iter=200, early_stopping=True, validation_fraction=0.5,
                class_weight="balanced", random_state=int(s),
            )  # fmt: skip
            models.append(m.fit(X, y))


def _nn(variant: str, X, y, Xv, yv, epochs: int, n_jobs: int) -> None:
    import torch
    import torch.nn.functional as F
    from torch import nn

    from objectives.classifiers import make_classifier

    if variant == "ours":
        hp = {"epochs": epochs}
        make_classifier("NN", hp, seed=0, n_jobs=n_jobs).fit(X, y, validation=(Xv, yv, None))
        return
    torch.set_num_threads(n_jobs)
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Linear(X.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999))
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(np.float32))
    wt = torch.as_tensor(
        np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())), dtype=torch.float32
    )
    Xvt = torch.from_numpy(Xv)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 128):
            idx = perm[i : i + 128]
            loss = F.binary_cross_entropy_with_logits(
                net(Xt[idx]).squeeze(1), yt[idx], weight=wt[idx]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        if variant == "bare+val":  # the least any per-epoch validation needs: one forward pass
            with torch.inference_mode():
                for i in range(0, len(Xvt), 8192):
                    torch.sigmoid(net(Xvt[i : i + 8192]))


def _adaboost(variant: str, X, y, k: int) -> None:
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.tree import DecisionTreeClassifier

    from objectives.classifiers import make_classifier

    if variant == "ours":
        make_classifier("AdaBoost", {"n_ensemble": k}, seed=0).fit(X, y)
        return
    seeds = [int(s) for s in np.random.SeedSequence(0).generate_state(k + 1)]
    rng = np.random.default_rng(seeds[-1])  # the same halves ours draws
    for s in seeds[:-1]:
        idx = np.sort(rng.permutation(len(y))[: len(y) // 2])
        tree = DecisionTreeClassifier(
            max_leaf_nodes=31, min_samples_leaf=20, class_weight="balanced"
        )
        AdaBoostClassifier(estimator=tree, n_estimators=50, random_state=s).fit(X[idx], y[idx])


def _measure(part: str, variant: str, args: argparse.Namespace) -> tuple[float, float]:
    """(seconds, peak RSS growth in MiB) of one variant, in this (fresh) process."""
    X, y = _toy(args.n_train, args.features, 1, args.data_fraction)
    Xv, yv = _toy(args.n_train, args.features, 2, args.data_fraction)
    import sklearn.ensemble  # noqa: F401  (imports outside the timed region)
    import torch  # noqa: F401

    import objectives.classifiers.adaboost  # noqa: F401
    import objectives.classifiers.hgb  # noqa: F401
    import objectives.classifiers.mlp  # noqa: F401

    w = 10_000  # warm-up size: above the NN prediction chunk, so its buffers exist already
    _run(part, variant, (X[:w], y[:w], Xv[:w], yv[:w]), args, k=1)
    rss0 = _maxrss_mib()
    t0 = time.perf_counter()
    _run(part, variant, (X, y, Xv, yv), args, k=args.k)
    return time.perf_counter() - t0, _maxrss_mib() - rss0


def _run(part: str, variant: str, data: tuple, args: argparse.Namespace, k: int) -> None:
    X, y, Xv, yv = data
    if part == "hgb":
        _hgb(variant, X, y, k, args.n_jobs)
    elif part == "nn":
        _nn(variant, X, y, Xv, yv, args.nn_epochs, args.n_jobs)
    else:
        _adaboost(variant, X, y, k)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=196_429, help="training rows")
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument(
        "--data-fraction", type=float, default=0.5, help="label-1 fraction (real IAD: 0.306)"
    )
    parser.add_argument("--k", type=int, default=5, help="ensemble size for HGB and AdaBoost")
    parser.add_argument("--nn-epochs", type=int, default=1)
    parser.add_argument("--n-jobs", type=int, default=2, help="threads for HGB and the NN")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"subset of {PARTS}")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs; min is kept")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {unknown}; valid parts are {', '.join(PARTS)}")

    print(
        f"rows {args.n_train} x {args.features} features, K = {args.k}, "
        f"NN epochs {args.nn_epochs}, threads {args.n_jobs}, label-1 fraction {args.data_fraction}"
    )
    print(f"{'part':<13}{'ours s':>9}{'bare s':>9}{'ratio':>7}{'ours MiB':>10}{'bare MiB':>10}")
    ctx = get_context("spawn")
    for part in parts:
        variants = ("bare", "bare+val", "ours") if part == "nn" else ("bare", "ours")
        runs: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
        for rep in range(args.repeats):
            for variant in variants if rep % 2 == 0 else variants[::-1]:
                with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                    runs[variant].append(pool.submit(_measure, part, variant, args).result())
        t_o, m_o = (min(v) for v in zip(*runs["ours"], strict=True))
        for base in variants[:-1]:
            t_b, m_b = (min(v) for v in zip(*runs[base], strict=True))
            name = part if base == "bare" else f"  vs {base}"
            print(f"{name:<13}{t_o:>9.2f}{t_b:>9.2f}{t_o / t_b:>7.2f}{m_o:>10.1f}{m_b:>10.1f}")
        all_t = "; ".join(f"{k} " + " ".join(f"{t:.2f}" for t, _ in v) for k, v in runs.items())
        print(f"{'':<13}all runs (s): {all_t}", flush=True)


if __name__ == "__main__":
    main()
