"""DROCC: Deep Robust One-Class Classification (Goyal et al., ICML 2020, arXiv:2002.12718).

The background is assumed to lie near a low-dimensional manifold; points at
distance r .. gamma r from a background event are taken as negatives. A
classifier f (backbone + one logit) is trained with

    BCE(f(x), 1) + mu * BCE(f(x_adv), 0),

where x_adv is the hardest negative found by gradient ascent on
``BCE(f(x_adv), 0)`` (points f takes for background) starting from
``x + N(0, 1)``: ``ascent_steps`` steps along the per-event normalised
gradient of size ``ascent_step_size``, each followed by the projection of
``h = x_adv - x`` onto the shell ``r <= ||h|| <= gamma r``. The first
``only_ce_epochs`` epochs use the plain loss (the warm-up of the reference
``DROCCTrainer``; we project after every step, it projects every tenth).

The search runs in the standardised continuous inputs: the kinematics of
real objects and the continuous event features (``log_met, met_phi,
log_ht``); types, masks, padding and counts stay fixed, so ``r`` is in units
of the background's standard deviations. Negatives are scored with the
network in evaluation mode (batch-norm running statistics of the background,
as at test time, and no update of those statistics by negatives).

Score: ``-logit`` (higher = more anomalous). The poster's weakly supervised
variant is not implemented; this is the one-class method of the paper.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from objectives.devices import resolve_device
from objectives.unsupervised._train import (
    Inputs,
    Scaler,
    build,
    minibatches,
    predict,
    torch_threads,
)
from objectives.unsupervised.arrays import N_EVENT_CONTINUOUS, N_KINEMATICS, EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.params import validate

__all__ = ["DROCCDetector", "LogitNet", "adversarial_negatives", "fit_drocc", "perturbation_mask"]


class LogitNet(nn.Module):
    """``backbone -> Linear(1)``: one logit per event, shape ``(n,)``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.out_dim, 1)

    def forward(
        self, objects: torch.Tensor, mask: torch.Tensor, event: torch.Tensor
    ) -> torch.Tensor:
        return self.head(self.backbone(objects, mask, event)).squeeze(1)


def perturbation_mask(inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Float masks (1 = searched) of the object ``(n, P, F)`` and event ``(n, E)`` entries."""
    obj = torch.zeros_like(inputs.objects)
    obj[..., -N_KINEMATICS:] = inputs.mask[..., None].to(obj.dtype)
    ev = torch.zeros_like(inputs.event)
    ev[:, :N_EVENT_CONTINUOUS] = 1.0
    return obj, ev


def _project(h_obj, h_ev, radius: float, gamma: float):
    norm = torch.sqrt((h_obj**2).sum((1, 2)) + (h_ev**2).sum(1)).clamp_min(1e-12)
    scale = norm.clamp(radius, gamma * radius) / norm
    return h_obj * scale[:, None, None], h_ev * scale[:, None]


def adversarial_negatives(
    net: nn.Module,
    inputs: Inputs,
    *,
    radius: float,
    gamma: float,
    steps: int,
    step_size: float,
    generator: torch.Generator,
) -> Inputs:
    """Negatives at distance ``[radius, gamma * radius]`` from ``inputs`` (DROCC's ascent).

    Starts from ``x + N(0, 1)`` on the searched entries, then ``steps``
    normalised gradient-ascent steps on ``BCE(f(x_adv), 0)``, each followed
    by the projection onto the shell (also applied once before the first
    step, so that ``steps = 0`` gives random points on the shell). The
    network's mode is left as it was; gradients of its parameters are not touched.
    """
    m_obj, m_ev = perturbation_mask(inputs)
    where = inputs.objects.device  # the draws are made on the CPU: the same on every device
    h_obj = torch.randn(inputs.objects.shape, generator=generator).to(where) * m_obj
    h_ev = torch.randn(inputs.event.shape, generator=generator).to(where) * m_ev
    h_obj, h_ev = _project(h_obj, h_ev, radius, gamma)
    zeros = inputs.event.new_zeros(len(inputs))
    for _ in range(steps):
        h_obj = h_obj.detach().requires_grad_(True)
        h_ev = h_ev.detach().requires_grad_(True)
        logits = net(inputs.objects + h_obj, inputs.mask, inputs.event + h_ev)
        loss = F.binary_cross_entropy_with_logits(logits, zeros)
        g_obj, g_ev = torch.autograd.grad(loss, [h_obj, h_ev])
        g_obj, g_ev = g_obj * m_obj, g_ev * m_ev
        g_norm = torch.sqrt((g_obj**2).sum((1, 2)) + (g_ev**2).sum(1)).clamp_min(1e-12)
        with torch.no_grad():
            h_obj = h_obj + step_size * g_obj / g_norm[:, None, None]
            h_ev = h_ev + step_size * g_ev / g_norm[:, None]
            h_obj, h_ev = _project(h_obj, h_ev, radius, gamma)
    return Inputs(inputs.objects + h_obj.detach(), inputs.mask, inputs.event + h_ev.detach())


@dataclass(eq=False)
class DROCCDetector(Detector):
    """A trained DROCC classifier; ``score = -logit``."""

    scaler: Scaler
    net: nn.Module
    val_loss: float
    n_threads: int = 1
    info: dict[str, Any] = field(default_factory=dict)
    method: str = "DROCC"

    def logits(self, arrays: EventArrays) -> np.ndarray:
        """The classifier's logit (background-like = high), float64."""
        with torch_threads(self.n_threads):
            return predict(self.net, self.scaler.inputs(arrays)).double().numpy()

    def score(self, arrays: EventArrays) -> np.ndarray:
        return -self.logits(arrays)


def fit_drocc(
    train: EventArrays,
    val: EventArrays,
    hp: dict[str, Any],
    *,
    seed: int,
    n_threads: int = 1,
    device: str = "cpu",
) -> DROCCDetector:
    """Train a DROCC classifier on background ``train`` on ``device`` ("cpu", "cuda",
    "auto"); ``val_loss`` = held-out BCE(f(x), 1) on the CPU."""
    hp = validate("DROCC", hp)
    where = resolve_device(device)
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    history: list[dict[str, float]] = []
    with torch_threads(n_threads):
        scaler = Scaler.fit(train)
        train_in, val_in = scaler.inputs(train).to(where), scaler.inputs(val)
        net = build(LogitNet, hp, train, scaler, gen, device=where)
        opt = torch.optim.Adam(net.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
        for epoch in range(hp["epochs"]):
            adversarial = epoch >= hp["only_ce_epochs"]
            sums = {"ce": 0.0, "adv": 0.0}
            count = 0
            for idx in minibatches(len(train_in), hp["batch_size"], gen, where):
                batch = train_in.take(idx)
                net.train()
                logits = net(*batch)
                ce = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
                loss = ce
                if adversarial:
                    net.eval()
                    neg = adversarial_negatives(
                        net,
                        batch,
                        radius=hp["radius"],
                        gamma=hp["gamma"],
                        steps=hp["ascent_steps"],
                        step_size=hp["ascent_step_size"],
                        generator=gen,
                    )
                    neg_logits = net(*neg)
                    adv = F.binary_cross_entropy_with_logits(
                        neg_logits, torch.zeros_like(neg_logits)
                    )
                    loss = ce + hp["mu"] * adv
                    sums["adv"] += adv.item() * len(idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sums["ce"] += ce.item() * len(idx)
                count += len(idx)
            history.append({k: v / count for k, v in sums.items()})
        net = net.to("cpu")
        val_logits = predict(net, val_in)
        val_loss = float(
            F.binary_cross_entropy_with_logits(val_logits, torch.ones_like(val_logits))
        )
    info = {
        "method": "DROCC",
        "hp": hp,
        "seed": seed,
        "n_train": len(train),
        "n_val": len(val),
        "device": str(where),
        "history": history,
        "fit_seconds": time.perf_counter() - t0,
    }
    return DROCCDetector(scaler, net, val_loss, n_threads=n_threads, info=info)
