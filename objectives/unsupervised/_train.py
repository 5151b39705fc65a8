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
from objectives.unsupervised.arrays import (
    EVENT_FEATURES,
    KINEMATICS,
    LOG_FLOOR_GEV,
    N_KINEMATICS,
    ORIGINS,
    EventArrays,
)
from objectives.unsupervised.backbones import init_parameters, make_backbone, pair_features

__all__ = [
    "Inputs",
    "Scaler",
    "build",
    "member_seeds",
    "minibatches",
    "network_view",
    "predict",
    "torch_threads",
]

_CHUNK = 4096  # events per forward pass at prediction time
#: Event columns (DarkMachines layout) the networks see as log(1 + x/GeV): log_met, log_ht.
LOG1P_EVENT_COLUMNS = (0, 2)
_PAIR_STAT_EVENTS = 2000  # events used to standardise the pair features
#: What the "empty" origin leaves uncentred, so that zero is the empty event: an object's
#: log E and log pT (log GeV: 0 is 1 GeV, a padded slot is 0) and, in the DarkMachines
#: event layout, log(1 + MET/GeV), log(1 + HT/GeV) and the object counts.
_EMPTY_KINEMATICS = tuple(KINEMATICS.index(k) for k in ("log_e", "log_pt"))
_EMPTY_EVENT = tuple(EVENT_FEATURES.index(k) for k in EVENT_FEATURES if k != "met_phi")


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


def network_view(arrays: EventArrays) -> EventArrays:
    """What the networks see of ``arrays`` (before standardisation).

    * Azimuths relative to the leading object (its own becomes 0; MET phi too, for the
      DarkMachines event layout): a rotation about the beam axis changes nothing
      physical, so the absolute angle is one pure-noise input per object.
    * For the DarkMachines event layout, ``log(1 + MET/GeV)`` and ``log(1 + HT/GeV)``
      instead of logs floored at 1 MeV: an event without jets had ``log_ht = log(1e-3)
      = -6.9`` against a bulk near 4, a second mode 11 units away; where many events
      have no jets (a leptonic channel) it inflates the standard deviation and squeezes
      the HT of the others into a fraction of one. ``log1p`` puts the mode at 0. (On the
      synthetic set, 2.4 % of the background has no jets: little changes there.)
    """
    obj, ev, mask = arrays.objects.copy(), arrays.event.copy(), arrays.mask
    phi = obj[..., -1]
    lead = np.where(mask[:, 0], phi[:, 0], 0.0).astype(np.float32)
    obj[..., -1] = np.where(mask, _wrap(phi - lead[:, None]), 0.0)
    if ev.shape[1] == len(EVENT_FEATURES):
        ev[:, 1] = _wrap(ev[:, 1] - lead)
        for col in LOG1P_EVENT_COLUMNS:
            x = np.exp(ev[:, col].astype(np.float64))
            ev[:, col] = np.log1p(np.where(x > LOG_FLOOR_GEV * (1 + 1e-4), x, 0.0))
    return EventArrays(obj, mask, ev)


def _wrap(phi: np.ndarray) -> np.ndarray:
    return (np.remainder(phi + np.pi, 2 * np.pi) - np.pi).astype(np.float32)


@dataclass(frozen=True)
class Scaler:
    """Standardisation of the training background's ``network_view``.

    Kinematics by their mean and standard deviation over real objects, event
    features over events; the one-hot type columns of real objects centred on the
    background's type frequencies (``type_mean``), so that no input is constant: a
    constant input (before, the one-hot of the leading object summed to 1 in every
    event) is a bias term in disguise, with which a Deep SVDD maps every event to its
    centre. Padded objects stay 0. ``pair_mean``/``pair_std`` standardise ln m²_ij and
    ln ΔR_ij (over real pairs of up to 2000 events).

    ``origin="empty"`` (``fit``) divides the energy-like inputs (``_EMPTY_KINEMATICS``,
    ``_EMPTY_EVENT``) by their standard deviation without centring them: zero is then the
    event with nothing in it, not the mean background event. A bias-free network (Deep
    SVDD) is positively homogeneous in its inputs, so its score measures how far an
    event's input vector lies from the background's typical length in its direction:
    about the mean event, any unusual event, soft or hard; about the empty event, one
    whose energies and object counts are atypical for its pattern (docs/unsupervised.md).
    """

    kin_mean: tuple[float, ...]
    kin_std: tuple[float, ...]
    event_mean: tuple[float, ...]
    event_std: tuple[float, ...]
    pair_mean: tuple[float, float]
    pair_std: tuple[float, float]
    type_mean: tuple[float, ...]

    @classmethod
    def fit(cls, arrays: EventArrays, *, origin: str = "mean") -> Scaler:
        if origin not in ORIGINS:
            raise ValueError(f"Scaler origin must be one of {ORIGINS}, got {origin!r}")
        arrays = network_view(arrays)
        real = arrays.objects[arrays.mask].astype(np.float64)
        if real.size == 0:
            real = np.zeros((1, arrays.objects.shape[2]))
        kin = real[:, -N_KINEMATICS:]
        ev = arrays.event.astype(np.float64)
        sub = arrays.take(slice(0, _PAIR_STAT_EVENTS))
        mask = torch.as_tensor(sub.mask)
        pf = pair_features(torch.as_tensor(sub.kinematics, dtype=torch.float64), mask)
        p = mask.shape[1]
        valid = mask[:, :, None] & mask[:, None, :] & ~torch.eye(p, dtype=torch.bool)
        pf = pf[valid].numpy() if valid.any() else np.zeros((1, 2))
        kin_mean, ev_mean = kin.mean(0), ev.mean(0)
        if origin == "empty":
            kin_mean[list(_EMPTY_KINEMATICS)] = 0.0
            if ev.shape[1] == len(EVENT_FEATURES):
                ev_mean[list(_EMPTY_EVENT)] = 0.0
        return cls(
            _t(kin_mean),
            _t(_std(kin)),
            _t(ev_mean),
            _t(_std(ev)),
            _t(pf.mean(0)),
            _t(_std(pf)),
            _t(real[:, :-N_KINEMATICS].mean(0)),
        )

    def inputs(self, arrays: EventArrays) -> Inputs:
        """Standardised float32 tensors of ``arrays`` (their ``network_view``)."""
        arrays = network_view(arrays)
        obj = arrays.objects.copy()
        mask = arrays.mask
        kin = (obj[..., -N_KINEMATICS:] - np.float32(self.kin_mean)) / np.float32(self.kin_std)
        obj[..., -N_KINEMATICS:] = kin
        obj[..., :-N_KINEMATICS] -= np.float32(self.type_mean)
        obj = np.where(mask[..., None], obj, np.float32(0))
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
