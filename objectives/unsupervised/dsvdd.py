"""Deep SVDD (Ruff et al., "Deep One-Class Classification", ICML 2018), one-class variant.

A bias-free network phi maps each background event to R^d; the centre c is
the mean of phi over an initial forward pass on training events, with every
component |c_k| < eps pushed to ±eps (a component at zero could be reached by
the all-zero network). Training minimises ``mean ||phi(x) - c||²``; the
anomaly score is the squared distance to c. Bias terms are refused: with them
the network can output c for every input (zero loss, no information;
Ruff et al., Prop. 2). The ensemble (arXiv:2106.10164 style, the challenge's
``DeepSVDD_d5 .. d21``) trains one member per output dimension d, seeds
derived from the fit's seed, and averages the members' scores standardised
with the mean and standard deviation of their held-out background scores.

Network: backbone -> LeakyReLU(0.1) -> Linear(d, bias=False). Besides the
bias terms, two inputs of a network can act as one: a constant input and a batch
normalisation (which re-centres each batch, after which the activation has a
non-zero mean). With both, the poster's MLP lost the background's structure as it
trained: after 720 steps on 3000 synthetic DarkMachines events its distance's rank
correlation with -log p_bkg was -0.16 .. 0.19 (three data sets; 0.53 .. 0.59 with the
fix), and the default ensemble's swung between 0.02 and 0.43 over seeds on 20k events
(0.68 .. 0.71 with the fix). So the bias-free MLP has no batch normalisation and no
input is constant (the one-hot types are centred, see ``_train.Scaler``).

The centre pass runs in training mode, so normalised backbones see the
statistics they are trained with.

A bias-free network is positively homogeneous (``phi(a x) = a phi(x)`` for ``a > 0``),
and at the loss's optimum every output lies on the line through c (projecting onto it
never raises the loss), so the score is how far an event's input vector is from the
background's typical length in its direction: where the inputs' origin lies decides
what "unusual" means. ``input_origin = "empty"`` (default) puts it at the event with
nothing in it (energies and object counts not centred, ``_train.Scaler``); about the
mean background event (``"mean"``, before) the score ranked signals in the bulk below
random (zprime 0.39) and found the heavy ones late (docs/benchmarks.md, run G).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from objectives.devices import resolve_device
from objectives.unsupervised._train import (
    Inputs,
    Scaler,
    build,
    member_seeds,
    minibatches,
    predict,
    torch_threads,
)
from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.params import validate

__all__ = ["DSVDDEnsemble", "DSVDDMember", "SVDDNet", "fit_dsvdd", "init_center"]


class SVDDNet(nn.Module):
    """``backbone -> LeakyReLU(0.1) -> Linear(rep_dim)``; bias-free unless ``bias``."""

    def __init__(self, backbone: nn.Module, rep_dim: int, *, bias: bool = False) -> None:
        super().__init__()
        self.backbone = backbone
        self.act = nn.LeakyReLU(0.1)
        self.proj = nn.Linear(backbone.out_dim, rep_dim, bias=bias)

    def forward(
        self, objects: torch.Tensor, mask: torch.Tensor, event: torch.Tensor
    ) -> torch.Tensor:
        return self.proj(self.act(self.backbone(objects, mask, event)))


def init_center(net: nn.Module, inputs: Inputs, *, eps: float, batch_size: int) -> torch.Tensor:
    """Mean output over ``inputs`` (training mode, no gradients); |c_k| < eps pushed to ±eps."""
    net.train()
    total, count = None, 0
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            part = inputs.take(slice(start, start + batch_size))
            if len(part) < 2 and count:
                continue
            out = net(*part)
            total = out.sum(0) if total is None else total + out.sum(0)
            count += out.shape[0]
    c = total / count
    small = c.abs() < eps
    return torch.where(small & (c < 0), -eps, torch.where(small, eps, c))


def _distances(net: nn.Module, c: torch.Tensor, inputs: Inputs) -> np.ndarray:
    return ((predict(net, inputs) - c) ** 2).sum(1).double().numpy()


@dataclass(eq=False)
class DSVDDMember:
    """One trained network of output dimension ``rep_dim`` with its centre."""

    rep_dim: int
    net: nn.Module
    c: torch.Tensor
    loss_history: list[float]
    val_mean: float  # mean held-out background distance (standardisation and val_loss)
    val_std: float
    seed: int

    def distances(self, inputs: Inputs) -> np.ndarray:
        """Squared distances to ``c``, float64."""
        return _distances(self.net, self.c, inputs)


def _fit_member(
    train_in: Inputs,
    val_in: Inputs,
    train: EventArrays,
    scaler: Scaler,
    hp: dict[str, Any],
    rep_dim: int,
    *,
    seed: int,
    bias: bool = False,
    device: torch.device | str = "cpu",
) -> DSVDDMember:
    """Train one member on ``device`` (where ``train_in`` lies); the member returns on the
    CPU. ``bias=True`` exists for the collapse demonstration only."""
    gen = torch.Generator().manual_seed(seed)
    net = build(
        lambda b: SVDDNet(b, rep_dim, bias=bias), hp, train, scaler, gen, bias=bias, device=device
    )
    n_center = len(train_in) if hp["center_events"] is None else hp["center_events"]
    c = init_center(
        net, train_in.take(slice(0, n_center)), eps=hp["center_eps"], batch_size=hp["batch_size"]
    )
    opt = torch.optim.Adam(net.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    history = []
    for _ in range(hp["epochs"]):
        net.train()
        total, count = 0.0, 0
        for idx in minibatches(len(train_in), hp["batch_size"], gen, device):
            out = net(*train_in.take(idx))
            loss = ((out - c) ** 2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        history.append(total / count)
    net, c = net.to("cpu"), c.cpu()
    d = _distances(net, c, val_in)
    return DSVDDMember(rep_dim, net, c, history, float(d.mean()), float(max(d.std(), 1e-12)), seed)


@dataclass(eq=False)
class DSVDDEnsemble(Detector):
    """Deep SVDD ensemble: mean of the members' standardised squared distances."""

    scaler: Scaler
    members: list[DSVDDMember]
    n_threads: int = 1
    info: dict[str, Any] = field(default_factory=dict)
    method: str = "dSVDD"

    @property
    def val_loss(self) -> float:
        return float(np.mean([m.val_mean for m in self.members]))

    def member_scores(self, arrays: EventArrays) -> dict[int, np.ndarray]:
        """Raw squared distances of each member, keyed by output dimension d."""
        with torch_threads(self.n_threads):
            inputs = self.scaler.inputs(arrays)
            return {m.rep_dim: m.distances(inputs) for m in self.members}

    def score(self, arrays: EventArrays) -> np.ndarray:
        raw = self.member_scores(arrays)
        z = [(raw[m.rep_dim] - m.val_mean) / m.val_std for m in self.members]
        return np.mean(z, axis=0)


def fit_dsvdd(
    train: EventArrays,
    val: EventArrays,
    hp: dict[str, Any],
    *,
    seed: int,
    n_threads: int = 1,
    device: str = "cpu",
) -> DSVDDEnsemble:
    """One Deep SVDD member per ``hp["rep_dims"]`` entry, trained on ``train`` (background)
    on ``device`` ("cpu", "cuda", "auto")."""
    hp = validate("dSVDD", hp)
    where = resolve_device(device)
    t0 = time.perf_counter()
    with torch_threads(n_threads):
        scaler = Scaler.fit(train, origin=hp["input_origin"])
        train_in, val_in = scaler.inputs(train).to(where), scaler.inputs(val)
        seeds = member_seeds(seed, len(hp["rep_dims"]))
        members = [
            _fit_member(train_in, val_in, train, scaler, hp, d, seed=s, device=where)
            for d, s in zip(hp["rep_dims"], seeds, strict=True)
        ]
    info = {
        "method": "dSVDD",
        "hp": hp,
        "seed": seed,
        "n_train": len(train),
        "n_val": len(val),
        "member_seeds": seeds,
        "device": str(where),
        "member_val_loss": {m.rep_dim: m.val_mean for m in members},
        "member_final_train_loss": {m.rep_dim: m.loss_history[-1] for m in members},
        "center_norm": {m.rep_dim: float(m.c.norm()) for m in members},
        "fit_seconds": time.perf_counter() - t0,
    }
    return DSVDDEnsemble(scaler, members, n_threads=n_threads, info=info)
