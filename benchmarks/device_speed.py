"""Training speed per device (issue 14 §5): the published CATHODE background flow and the NN.

Rows, for each device of ``--devices`` that torch sees (a missing one is named and
skipped):

* the CATHODE background MAF's published recipe (15 affine MADE blocks x 128 units,
  batch 256, Adam): events per second (``benchmarks/flows_speed.py``'s timing), seconds
  per epoch over ``--n-train`` sideband events (full-size synthetic data: 705k) and hours
  for the recipe's 100 epochs;
* the NN classifier with the service's defaults (3 x 64, batch 128, dropout, the
  per-epoch validation pass that ranks epochs): seconds per epoch over ``--n-nn``
  events, timed through ``MLPClassifier.fit`` (the code a trial runs).

CPU rows use ``--threads`` threads. Run it on a GPU node as
``python benchmarks/device_speed.py --devices cpu cuda`` to set the GPU against the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows_speed import throughput  # noqa: E402

from objectives.classifiers import make_classifier  # noqa: E402


def nn_epoch_seconds(device: str, n: int, epochs: int, threads: int) -> float:
    """Seconds per epoch of the NN classifier (service defaults) on ``n`` random events."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=n) > 1.0).astype(int)
    clf = make_classifier("NN", {"epochs": epochs}, seed=0, n_jobs=threads, device=device)
    t0 = time.perf_counter()
    clf.fit(X, y)
    return (time.perf_counter() - t0) / epochs


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="\n".join(__doc__.splitlines()[2:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2, help="CPU threads")
    ap.add_argument("--seconds", type=float, default=15.0, help="timed seconds per flow row")
    ap.add_argument("--n-train", type=int, default=705_000, help="flow: sideband events")
    ap.add_argument("--n-nn", type=int, default=200_000, help="NN: training events")
    ap.add_argument("--nn-epochs", type=int, default=3, help="NN: epochs timed")
    args = ap.parse_args()
    print(
        f"torch {torch.__version__}; CUDA: "
        + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
        + f"; CPU rows on {args.threads} threads"
    )
    print("device  flow events/s  flow s/epoch  flow h/100 epochs  NN s/epoch", flush=True)
    for device in args.devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("cuda    skipped: torch sees no CUDA device on this machine", flush=True)
            continue
        rate = throughput(256, args.threads, True, args.seconds, False, device=device)
        per_epoch = args.n_train / rate
        nn_s = nn_epoch_seconds(device, args.n_nn, args.nn_epochs, args.threads)
        print(
            f"{device:6}  {rate:13,.0f}  {per_epoch:12.1f}  {per_epoch * 100 / 3600:17.2f}"
            f"  {nn_s:10.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
