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

Where negatives are searched (:class:`SearchSpace`): in the free physical
coordinates of an event, standardised -- log pT and eta of every real object and
``log(1 + MET)`` -- while the coordinates that follow from them follow: each
object's log E keeps its mass, ``log(1 + HT)`` moves with the jets' pT. Moving
every input on its own (as before) made negatives whose energy no longer matched
their momentum and whose HT no longer matched their jets; the classifier learned
those identities (a perfect, useless separation) and stayed blind to what
anomalies change: on the synthetic DarkMachines set, a background with MET times
1.5 or every pT times 1.3 scored exactly as the background (AUC 0.50). Types,
masks, counts and azimuths stay fixed.

Radius: ``hp["radius"]`` (default 8) is in units of the data's own scale, the
median distance of a training event to its nearest neighbour in that space (up to
2000 events; ``data_scale``). The old fixed radius of 8 standardised units, over
every input, put the negatives so far out that the classifier learned to count
objects (its score's rank correlation with -log p_bkg was 0.8 over all events but
0.15 among events of one multiplicity); in units of the data's scale it does not.

Inputs about the empty event (``input_origin``, as dSVDD's; ``_train.Scaler``). With
radius 8 about it the label-free ``perturb_auc`` on the synthetic DarkMachines set
(MLP, 20k events, 10 epochs) was 0.567-0.584 over seeds 0-4, against 0.513-0.553 for
radius 2 about the mean event (the default before) and 0.469-0.582 for radius 2 about
the empty event, where the classifier did not learn and the inputs' offsets gave the
untrained score an energy direction of random sign (below random on the signals in
two seeds of five). docs/benchmarks.md, run G.

Did it learn? (``info["shell_auc"]``): after training, the AUC of the score on points of
the shell around held-out background (random directions, the training radius) against
that background itself. A classifier that learned what the background is gives it well
above 0.5; below ``SHELL_AUC_MIN`` it barely tells the background from the points
around it, and ``fit_drocc`` logs a warning. On the synthetic DarkMachines set (MLP, 20k
events, 10 epochs, seed 0) this is what radius 2 about the mean event did: shell AUC
0.565, final training losses 0.681 on the background and 0.688 on the negatives (ln 2 =
0.693 is a classifier that says 1/2 to everything); with ``ascent_steps = 0`` and
``radius = 4`` it is 0.763, with ``radius = 8`` 0.998 (and neither finds the signals
better); radius 8 about the empty event (the default) reaches 0.59-0.70. The kinematics fill
their space (log pT, eta and MET vary independently: the background has no
low-dimensional manifold), so the ascent finds, for every event, a point on its shell
that looks like another background event: DROCC's assumption does not hold there
(docs/limits.md).

Negatives are scored with the network in evaluation mode (batch-norm running
statistics of the background, as at test time, and no update of those
statistics by negatives). Score: ``-logit``, higher = more anomalous (the
background is the positive class). The poster's weakly supervised variant is not
implemented; this is the one-class method of the paper.
"""

from __future__ import annotations

import logging
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
from objectives.unsupervised.arrays import EVENT_FEATURES, HT_TYPES, OBJECT_TYPES, EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.params import validate

__all__ = [
    "SHELL_AUC_MIN",
    "DROCCDetector",
    "LogitNet",
    "SearchSpace",
    "adversarial_negatives",
    "fit_drocc",
    "shell_auc",
]

log = logging.getLogger(__name__)

_SCALE_EVENTS = 2000  # training events whose nearest-neighbour distances set the scale
_SHELL_EVENTS = 5000  # held-out events of the shell AUC
#: Below this shell AUC the classifier barely tells the background from points around it.
SHELL_AUC_MIN = 0.6


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


@dataclass(frozen=True)
class SearchSpace:
    """The coordinates DROCC's negatives move in, and the ones that follow them.

    Built from the training ``Scaler`` (inputs are standardised): the moved
    coordinates are the standardised log pT and eta of real objects (``(n, P, 2)``)
    and, for the DarkMachines event layout, ``log(1 + MET)`` (``(n, 1)``). ``apply``
    gives the inputs at ``x + h`` with log E (mass kept) and ``log(1 + HT)`` recomputed,
    differentiably in ``h``.
    """

    scaler: Scaler
    dm_layout: bool

    @classmethod
    def of(cls, scaler: Scaler, arrays: EventArrays) -> SearchSpace:
        dm = arrays.event.shape[1] == len(EVENT_FEATURES) and arrays.n_types == len(OBJECT_TYPES)
        return cls(scaler, dm)

    def shapes(self, inputs: Inputs) -> tuple[tuple[int, ...], tuple[int, ...]]:
        n, p, _ = inputs.objects.shape
        return (n, p, 2), (n, 1 if self.dm_layout else 0)

    def coordinates(self, inputs: Inputs) -> torch.Tensor:
        """``(n, 2 P + 1)``: the moved coordinates of each event, flattened (padding 0)."""
        obj = inputs.objects[..., -3:-1] * inputs.mask[..., None]
        ev = inputs.event[:, :1] if self.dm_layout else inputs.event[:, :0]
        return torch.cat([obj.flatten(1), ev], dim=1)

    def apply(self, inputs: Inputs, h_obj: torch.Tensor, h_ev: torch.Tensor) -> Inputs:
        """The inputs moved by ``h_obj`` (log pT, eta) and ``h_ev`` (log(1 + MET))."""
        sc, x = self.scaler, inputs.objects
        mask = inputs.mask[..., None].to(x.dtype)
        km, ks = x.new_tensor(sc.kin_mean), x.new_tensor(sc.kin_std)
        raw = x[..., -4:] * ks + km
        log_e, log_pt, eta = raw[..., 0], raw[..., 1], raw[..., 2]
        m2 = (torch.exp(2 * log_e) - (torch.exp(log_pt) * torch.cosh(eta)) ** 2).clamp_min(0)
        h = h_obj * mask
        new_pt = log_pt + h[..., 0] * ks[1]
        new_eta = eta + h[..., 1] * ks[2]
        new_e = 0.5 * torch.log(m2 + (torch.exp(new_pt) * torch.cosh(new_eta)) ** 2)
        kin = torch.stack(
            [(new_e - km[0]) / ks[0], x[..., -3] + h[..., 0], x[..., -2] + h[..., 1], x[..., -1]],
            dim=-1,
        )
        objects = torch.cat([x[..., :-4], kin], dim=-1) * mask
        event = inputs.event
        if self.dm_layout:
            em, es = event.new_tensor(sc.event_mean), event.new_tensor(sc.event_std)
            onehot = x[..., :-4] + x.new_tensor(sc.type_mean)
            ht_codes = [OBJECT_TYPES.index(t) for t in HT_TYPES]
            is_ht = onehot[..., ht_codes].sum(-1) * mask[..., 0]
            ht = torch.expm1(event[:, 2] * es[2] + em[2])
            ht = (ht + (is_ht * (torch.exp(new_pt) - torch.exp(log_pt))).sum(1)).clamp_min(0)
            event = torch.cat(
                [
                    event[:, :1] + h_ev,
                    event[:, 1:2],
                    ((torch.log1p(ht) - em[2]) / es[2])[:, None],
                    event[:, 3:],
                ],
                dim=1,
            )
        return Inputs(objects, inputs.mask, event)


def data_scale(space: SearchSpace, inputs: Inputs) -> float:
    """Median distance of an event to its nearest neighbour in ``space`` (up to 2000 events)."""
    x = space.coordinates(inputs.take(slice(0, _SCALE_EVENTS))).double()
    if len(x) < 2:
        return 1.0
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    scale = float(d.min(1).values.median())
    return scale if scale > 1e-6 else 1.0


def _project(h_obj, h_ev, radius: float, gamma: float):
    norm = torch.sqrt((h_obj**2).sum((1, 2)) + (h_ev**2).sum(1)).clamp_min(1e-12)
    scale = norm.clamp(radius, gamma * radius) / norm
    return h_obj * scale[:, None, None], h_ev * scale[:, None]


def adversarial_negatives(
    net: nn.Module,
    inputs: Inputs,
    *,
    space: SearchSpace,
    radius: float,
    gamma: float,
    steps: int,
    step_size: float,
    generator: torch.Generator,
) -> Inputs:
    """Negatives at distance ``[radius, gamma * radius]`` from ``inputs`` in ``space``.

    Starts from ``N(0, 1)`` moves of the searched coordinates (of real objects),
    then ``steps`` normalised gradient-ascent steps on ``BCE(f(x_adv), 0)``, each
    followed by the projection onto the shell (also applied once before the first
    step, so that ``steps = 0`` gives random points on the shell). The network's
    mode is left as it was; gradients of its parameters are not touched.
    """
    shape_obj, shape_ev = space.shapes(inputs)
    where = inputs.objects.device  # the draws are made on the CPU: the same on every device
    m_obj = inputs.mask[..., None].to(inputs.objects.dtype)
    h_obj = torch.randn(shape_obj, generator=generator).to(where) * m_obj
    h_ev = torch.randn(shape_ev, generator=generator).to(where)
    h_obj, h_ev = _project(h_obj, h_ev, radius, gamma)
    zeros = inputs.event.new_zeros(len(inputs))
    for _ in range(steps):
        h_obj = h_obj.detach().requires_grad_(True)
        h_ev = h_ev.detach().requires_grad_(True)
        logits = net(*space.apply(inputs, h_obj, h_ev))
        loss = F.binary_cross_entropy_with_logits(logits, zeros)
        g_obj, g_ev = torch.autograd.grad(loss, [h_obj, h_ev])
        g_obj = g_obj * m_obj
        g_norm = torch.sqrt((g_obj**2).sum((1, 2)) + (g_ev**2).sum(1)).clamp_min(1e-12)
        with torch.no_grad():
            h_obj = h_obj + step_size * g_obj / g_norm[:, None, None]
            h_ev = h_ev + step_size * g_ev / g_norm[:, None]
            h_obj, h_ev = _project(h_obj, h_ev, radius, gamma)
    with torch.no_grad():
        return space.apply(inputs, h_obj.detach(), h_ev.detach())


def shell_auc(
    net: nn.Module, inputs: Inputs, *, space: SearchSpace, radius: float, gamma: float, seed: int
) -> float:
    """AUC of ``-logit`` on random points of the shell around ``inputs`` against ``inputs``
    (the first 5000): 0.5 for a classifier blind to the difference, 1 for a perfect one."""
    from objectives.metrics import roc_auc

    inputs = inputs.take(slice(0, _SHELL_EVENTS))
    net.eval()
    gen = torch.Generator().manual_seed(int(seed))
    negatives = adversarial_negatives(
        net, inputs, space=space, radius=radius, gamma=gamma, steps=0, step_size=0.0,
        generator=gen,
    )  # fmt: skip
    scores = -torch.cat([predict(net, inputs), predict(net, negatives)]).double().numpy()
    truth = np.r_[np.zeros(len(inputs)), np.ones(len(inputs))]
    return roc_auc(scores, truth)


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
    "auto"); ``val_loss`` = held-out BCE(f(x), 1) on the CPU. The shell radius is
    ``hp["radius"]`` times ``data_scale`` of the training background."""
    hp = validate("DROCC", hp)
    where = resolve_device(device)
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    history: list[dict[str, float]] = []
    with torch_threads(n_threads):
        scaler = Scaler.fit(train, origin=hp["input_origin"])
        train_in, val_in = scaler.inputs(train).to(where), scaler.inputs(val)
        space = SearchSpace.of(scaler, train)
        scale = data_scale(space, scaler.inputs(train))
        radius = hp["radius"] * scale
        net = build(LogitNet, hp, train, scaler, gen, device=where)
        opt = torch.optim.Adam(net.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
        for epoch in range(hp["epochs"]):
            adversarial = epoch >= hp["only_ce_epochs"]
            sums = {"ce": 0.0, "adv": 0.0} if adversarial else {"ce": 0.0}
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
                        space=space,
                        radius=radius,
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
        shell = shell_auc(net, val_in, space=space, radius=radius, gamma=hp["gamma"], seed=seed)
        val_logits = predict(net, val_in)
        val_loss = float(
            F.binary_cross_entropy_with_logits(val_logits, torch.ones_like(val_logits))
        )
    if not shell >= SHELL_AUC_MIN:
        log.warning(
            "DROCC barely learned: its score tells held-out background from random points "
            "of the shell around it with AUC %.3f (0.5: blind; training losses %.3f on the "
            "background, %.3f on the negatives, ln 2 = 0.693); its ranking is close to noise",
            shell, history[-1]["ce"], history[-1]["adv"],
        )  # fmt: skip
    info = {
        "method": "DROCC",
        "hp": hp,
        "seed": seed,
        "n_train": len(train),
        "n_val": len(val),
        "device": str(where),
        "data_scale": scale,
        "radius": radius,
        "history": history,
        "final_loss": history[-1],
        "shell_auc": shell,
        "fit_seconds": time.perf_counter() - t0,
    }
    return DROCCDetector(scaler, net, val_loss, n_threads=n_threads, info=info)
