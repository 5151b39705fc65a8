"""Training speed of the CATHODE background MAF, side by side: batch size, threads, optimiser.

Times optimiser steps of the published model (15 affine MADE blocks x 128
units, batch norm, nflows) on random 4-feature events with one context
variable -- the cost does not depend on the values -- and extrapolates to 100
epochs over ``--n-train`` sideband events (full-size synthetic data: 705k).
Rows: the published batch 256 with torch's default Adam, the fused Adam
kernel this project uses (same update rule), and larger batches on one and
two threads. ``--compile`` adds a ``torch.compile`` row (slow to warm up).

Usage::

    python benchmarks/flows_speed.py                  # ~3 minutes
    python benchmarks/flows_speed.py --seconds 20 --compile
"""

from __future__ import annotations

import argparse
import time

import torch

from objectives.flows.maf import build_maf

#: (batch size, threads, fused Adam) rows of the default table
ROWS = [
    (256, 1, False),
    (256, 1, True),
    (256, 2, True),
    (1024, 1, True),
    (1024, 2, True),
    (2048, 2, True),
    (4096, 2, True),
]


def throughput(
    batch: int, threads: int, fused: bool, seconds: float, compiled: bool, device: str = "cpu"
) -> float:
    """Training events per second on ``device`` after a warm-up of 10 steps."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    flow = build_maf(4).to(device)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-4, weight_decay=1e-6, fused=fused)
    x, c = torch.randn(batch * 64, 4, device=device), torch.rand(batch * 64, 1, device=device)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else lambda: None

    def loss_fn(xb, cb):
        return -flow.log_prob(xb, context=cb).mean()

    step_loss = torch.compile(loss_fn) if compiled else loss_fn

    def step(i: int) -> None:
        sl = slice((i % 64) * batch, (i % 64 + 1) * batch)
        loss = step_loss(x[sl], c[sl])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(10):
        step(i)
    sync()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step(n)
        n += 1
    sync()
    return n * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=15.0, help="timed seconds per row")
    ap.add_argument("--n-train", type=int, default=705_000, help="sideband training events")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--compile", action="store_true", help="add a torch.compile row")
    args = ap.parse_args()
    rows = [(b, t, f, False) for b, t, f in ROWS]
    if args.compile:
        rows.append((256, 1, True, True))
    print(f"background MAF (15 x 128, nflows), {args.n_train:,} events x {args.epochs} epochs")
    print("batch  threads  optimiser         events/s   s/epoch   minutes/100 epochs")
    for batch, threads, fused, compiled in rows:
        rate = throughput(batch, threads, fused, args.seconds, compiled)
        per_epoch = args.n_train / rate
        opt = ("fused Adam" if fused else "Adam") + (" +compile" if compiled else "")
        print(
            f"{batch:5d}  {threads:7d}  {opt:<16}  {rate:9,.0f}  {per_epoch:8.1f}"
            f"   {per_epoch * args.epochs / 60:8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
