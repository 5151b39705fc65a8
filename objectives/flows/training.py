"""The training loop shared by every flow: minibatches, validation, best-epoch keeping.

Data are preloaded as tensors and batches indexed directly (no DataLoader),
which matters on a 2-core CPU. After every epoch the validation loss is
computed in eval mode (batch-norm running statistics); the state dicts of the
``n_keep`` epochs with the lowest validation loss are kept for ensembling.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from objectives.safepoints import safe_point

__all__ = [
    "VAL_NLL_CAP",
    "TrainingHistory",
    "adam",
    "evaluate_loss",
    "split_indices",
    "train_epochs",
]

log = logging.getLogger(__name__)

#: Per-event validation losses are capped at this many nats. A few far-tail events
#: (e.g. a jet mass 30 sigma out in logit space) can get astronomically large
#: losses from an affine flow's exponential extrapolation; uncapped, one such
#: event decides the epoch ranking and the label-free objective.
VAL_NLL_CAP = 100.0

#: A per-event loss: ``loss_fn(model, *tensors) -> (batch,)``.
LossFn = Callable[..., torch.Tensor]


@dataclass
class TrainingHistory:
    """Per-epoch losses and the kept (lowest validation loss) epochs."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    kept_epochs: list[int] = field(default_factory=list)  # 0-based, best first
    kept_states: list[dict] = field(default_factory=list, repr=False)
    seconds: float = 0.0

    @property
    def kept_val_losses(self) -> list[float]:
        return [self.val_loss[e] for e in self.kept_epochs]

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(len(self.train_loss), 1)


def adam(params, *, lr: float, weight_decay: float, decoupled: bool = False):
    """Adam (or AdamW with ``decoupled``) with the fused kernel: the same update rule.

    The fused kernel updates all parameter tensors in one call instead of a dozen
    small ops each; for the 148-tensor CATHODE MAF that is 2 ms instead of 10 ms
    per step on this CPU (``benchmarks/flows_speed.py``).
    """
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    return cls(params, lr=lr, weight_decay=weight_decay, fused=True)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, validation) index arrays, seeded."""
    rng = np.random.default_rng(np.random.SeedSequence([0xF10E, int(seed)]))
    perm = rng.permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@torch.no_grad()
def evaluate_loss(
    model: torch.nn.Module,
    loss_fn: LossFn,
    tensors: Sequence[torch.Tensor],
    chunk: int = 65536,
    cap: float = VAL_NLL_CAP,
) -> float:
    """Mean per-event loss (each capped at ``cap``) over ``tensors`` in eval mode."""
    was_training = model.training
    model.eval()
    total, n = 0.0, tensors[0].shape[0]
    for i in range(0, n, chunk):
        loss = loss_fn(model, *(t[i : i + chunk] for t in tensors)).double()
        total += float(torch.nan_to_num(loss, nan=cap).clamp(max=cap).sum())
    model.train(was_training)
    return total / n


def _snapshot(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def train_epochs(
    model: torch.nn.Module,
    loss_fn: LossFn,
    train: Sequence[torch.Tensor],
    val: Sequence[torch.Tensor],
    *,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    epochs: int,
    n_keep: int,
    seed: int,
    name: str = "flow",
    max_steps: int | None = None,
    device: str = "cpu",
) -> TrainingHistory:
    """Train ``model`` for ``epochs`` epochs; keep the ``n_keep`` best states by validation loss.

    ``max_steps`` stops after that many optimiser steps in total (used to build a
    deliberately under-trained model in tests); the epoch is then validated and kept.
    ``device`` ("cpu", "cuda", "auto"): where the model and tensors train; the model is
    back on the CPU afterwards and the kept states are CPU tensors.
    Deterministic for a given ``seed``: dropout draws from torch's global RNG (and CUDA's
    on a GPU), seeded here inside a fork and restored afterwards; the batch order comes
    from a CPU generator, the same on every device.
    """
    from objectives.devices import resolve_device

    where = resolve_device(device)
    cuda = [where.index or 0] if where.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(int(seed) + 1)  # seeds CUDA's generators too
        model.to(where)
        try:
            return _train_epochs(
                model,
                loss_fn,
                [t.to(where) for t in train],
                [t.to(where) for t in val],
                optimizer,
                batch_size,
                epochs,
                n_keep,
                seed,
                name,
                max_steps,
            )
        finally:
            model.to("cpu")


def _train_epochs(
    model, loss_fn, train, val, optimizer, batch_size, epochs, n_keep, seed, name, max_steps
) -> TrainingHistory:
    gen = torch.Generator().manual_seed(int(seed))
    n = train[0].shape[0]
    hist = TrainingHistory()
    kept: list[tuple[float, int, dict]] = []
    t0 = time.perf_counter()
    steps = 0
    for epoch in range(epochs):
        t_ep = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen).to(train[0].device)
        total, seen = 0.0, 0
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            if idx.numel() < 2:  # batch norm needs two events
                continue
            loss = loss_fn(model, *(t[idx] for t in train)).mean()
            if not torch.isfinite(loss):
                log.warning("%s epoch %d: non-finite loss, batch skipped", name, epoch)
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * idx.numel()
            seen += idx.numel()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                break
        train_loss = total / max(seen, 1)
        val_loss = evaluate_loss(model, loss_fn, val)
        if not math.isfinite(val_loss):
            val_loss = math.inf
        hist.train_loss.append(train_loss)
        hist.val_loss.append(val_loss)
        kept.append((val_loss, epoch, _snapshot(model)))
        kept.sort(key=lambda item: (item[0], item[1]))
        del kept[n_keep:]
        log.info(
            "%s epoch %d/%d: train %.4f val %.4f (%.1f s)",
            name,
            epoch + 1,
            epochs,
            train_loss,
            val_loss,
            time.perf_counter() - t_ep,
        )
        safe_point()  # a stop signal ends the training at the end of an epoch
        if max_steps is not None and steps >= max_steps:
            break
    hist.kept_epochs = [e for _, e, _ in kept]
    hist.kept_states = [s for _, _, s in kept]
    hist.seconds = time.perf_counter() - t0
    return hist
