"""Training plumbing shared by the detectors: standardisation, tensors, seeds, batches.

Habits of ``objectives.classifiers.mlp``: every random choice (weights,
shuffling, noise) draws from one seeded CPU ``torch.Generator``, so a fit makes the
same draws on every device; the global torch RNG is neither read nor changed; the
thread count is set for the duration of a fit and restored. Training runs a fixed
number of epochs (no early stopping) on the fit's ``device``; the trained network
returns to the CPU, where held-out scores and every later prediction are computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from objectives.devices import torch_threads
from objectives.safepoints import safe_point
from objectives.unsupervised.arrays import N_KINEMATICS, EventArrays
from objectives.unsupervised.backbones import init_parameters, make_backbone, pair_features

__all__ = [
    "Inputs",
    "Scaler",
    "build",
    "member_seeds",
    "minibatches",
    "predict",
    "torch_threads",
]

_CHUNK = 4096  # events per forward pass at prediction time
_PAIR_STAT_EVENTS = 2000  # events used to standardise the pair features


class Inputs(NamedTuple):
    """Standardised tensors of a set of events: objects (n, P, F), mask (n, P), event (n, E)."""

    objects: torch.Tensor
    mask: torch.Tensor
    event: torch.Tensor

    def __len__(self) -> int:
        return self.objects.shape[0]

    def take(self, index: torch.Tensor | slice) -> Inputs:
        return Inputs(self.objects[index], self.mask[index], self.event[index])

    def to(self, device: torch.device | str) -> Inputs:
        return Inputs(*(t.to(device) for t in self))


@dataclass(frozen=True)
class Scaler:
    """Per-column mean and standard deviation of the training background.

    Kinematics over real objects, event features over events; the one-hot
    type columns stay 0/1 and padded objects stay 0. ``pair_mean``/``pair_std``
    standardise ln m²_ij and ln ΔR_ij (over real pairs of up to 2000 events).
    """

    kin_mean: tuple[float, ...]
    kin_std: tuple[float, ...]
    event_mean: tuple[float, ...]
    event_std: tuple[float, ...]
    pair_mean: tuple[float, float]
    pair_std: tuple[float, float]

    @classmethod
    def fit(cls, arrays: EventArrays) -> Scaler:
        kin = arrays.kinematics[arrays.mask].astype(np.float64)
        if kin.size == 0:
            kin = np.zeros((1, N_KINEMATICS))
        ev = arrays.event.astype(np.float64)
        sub = arrays.take(slice(0, _PAIR_STAT_EVENTS))
        mask = torch.as_tensor(sub.mask)
        pf = pair_features(torch.as_tensor(sub.kinematics, dtype=torch.float64), mask)
        p = mask.shape[1]
        valid = mask[:, :, None] & mask[:, None, :] & ~torch.eye(p, dtype=torch.bool)
        pf = pf[valid].numpy() if valid.any() else np.zeros((1, 2))
        return cls(
            _t(kin.mean(0)),
            _t(_std(kin)),
            _t(ev.mean(0)),
            _t(_std(ev)),
            _t(pf.mean(0)),
            _t(_std(pf)),
        )

    def inputs(self, arrays: EventArrays) -> Inputs:
        """Standardised float32 tensors of ``arrays``."""
        obj = arrays.objects.copy()
        mask = arrays.mask
        kin = (obj[..., -N_KINEMATICS:] - np.float32(self.kin_mean)) / np.float32(self.kin_std)
        obj[..., -N_KINEMATICS:] = np.where(mask[..., None], kin, 0.0)
        event = (arrays.event - np.float32(self.event_mean)) / np.float32(self.event_std)
        return Inputs(
            torch.as_tensor(obj, dtype=torch.float32),
            torch.as_tensor(mask),
            torch.as_tensor(event, dtype=torch.float32),
        )


def _std(x: np.ndarray) -> np.ndarray:
    s = x.std(0)
    return np.where(s > 1e-6, s, 1.0)


def _t(x: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.atleast_1d(x))


def build(
    head: Callable[[nn.Module], nn.Module],
    hp: dict,
    arrays: EventArrays,
    scaler: Scaler,
    generator: torch.Generator,
    *,
    bias: bool = True,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Backbone ``hp["backbone"]`` wrapped by ``head(backbone)``, initialised from ``generator``.

    Built on the meta device and initialised in place on the CPU, so that no global RNG
    draw happens and every device starts from the same weights; then moved to ``device``.
    """
    with torch.device("meta"):
        backbone = make_backbone(
            hp["backbone"],
            max_objects=arrays.max_objects,
            n_features=arrays.objects.shape[2],
            n_event=arrays.event.shape[1],
            bias=bias,
            mlp_layers=hp["mlp_layers"],
            part_preset=hp["part_preset"],
            kin_mean=scaler.kin_mean,
            kin_std=scaler.kin_std,
            pair_mean=scaler.pair_mean,
            pair_std=scaler.pair_std,
        )
        net = head(backbone)
    net = net.to_empty(device="cpu")
    return init_parameters(net, generator).to(device)


def member_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent 32-bit seeds derived from ``seed``."""
    return [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(n)]


def minibatches(
    n: int, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu"
) -> Iterator[torch.Tensor]:
    """Shuffled index batches on ``device`` covering ``n`` events once (a last batch of one
    is dropped: batch normalisation needs two events); the order is drawn on the CPU."""
    perm = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        if idx.numel() > 1 or n == 1:
            yield idx
    safe_point()  # the end of an epoch: a stop signal ends the fit here


def predict(net: nn.Module, inputs: Inputs) -> torch.Tensor:
    """``net`` output over ``inputs`` in evaluation mode, in chunks, without gradients."""
    net.eval()
    with torch.inference_mode():
        parts = [net(*inputs.take(slice(i, i + _CHUNK))) for i in range(0, len(inputs), _CHUNK)]
    return torch.cat(parts) if parts else torch.empty(0)
