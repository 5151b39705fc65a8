"""Shared pieces of the density-based detectors (ANODE, R-ANODE).

Both work in the feature space of the background model's preprocessing
(``z = background.preprocessor.transform(x)``), so densities of the signal-region
flows and of the background model are directly comparable and the Jacobian
cancels in every score. The signal-region flows condition on mjj standardised
with the SR data's own mean and width.

The label-free selection metric is ``"val_loss"``: the ensemble's mean negative
log-likelihood on the held-out 20 % of the SR data (lower is better).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from objectives.flows.background import seeded_init
from objectives.flows.maf import build_rqs_flow
from objectives.flows.preprocessing import FlowPreprocessor

__all__ = [
    "SELECTION",
    "BackgroundDensity",
    "SRFlowEnsemble",
    "logmeanexp",
]

#: Name of the label-free selection metric of the density methods (minimise).
SELECTION = "val_loss"
_CHUNK = 65536


class BackgroundDensity(Protocol):
    """What ANODE and R-ANODE need of a background model (``BackgroundModel`` has it)."""

    preprocessor: FlowPreprocessor

    def log_prob_z(self, z: np.ndarray, c: np.ndarray) -> np.ndarray: ...


def logmeanexp(a: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.logaddexp.reduce(a, axis=axis) - np.log(a.shape[axis])


class SRFlowEnsemble:
    """Kept epochs of a spline flow p(z | mjj) in the signal region."""

    def __init__(self, n_features: int, hp: dict, states: list[dict], m_mean: float, m_std: float):
        self.hp, self.states = dict(hp), states
        self.m_mean, self.m_std = float(m_mean), float(m_std)
        with seeded_init(0):  # weights are overwritten by the kept states
            self.flow = build_sr_flow(n_features, hp).double()
        self._loaded = -1

    def context(self, mjj: np.ndarray) -> np.ndarray:
        return ((np.asarray(mjj, dtype=np.float64) - self.m_mean) / self.m_std).reshape(-1, 1)

    def _member(self, k: int) -> torch.nn.Module:
        if self._loaded != k:
            self.flow.load_state_dict(
                {n: v.double() if v.is_floating_point() else v for n, v in self.states[k].items()}
            )
            self._loaded = k
        return self.flow.eval()

    @torch.no_grad()
    def member_log_prob(self, z: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """log p(z | mjj) per kept epoch, shape (members, n)."""
        zt = torch.as_tensor(z, dtype=torch.float64)
        ct = torch.as_tensor(self.context(mjj))
        out = np.empty((len(self.states), zt.shape[0]))
        for k in range(len(self.states)):
            flow = self._member(k)
            for i in range(0, zt.shape[0], _CHUNK):
                sl = slice(i, i + _CHUNK)
                out[k, sl] = flow.log_prob(zt[sl], context=ct[sl]).numpy()
        return out

    def log_prob(self, z: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """Ensemble log p(z | mjj): log of the mean member density."""
        return logmeanexp(self.member_log_prob(z, mjj))

    @torch.no_grad()
    def sample(self, mjj: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One z per mjj; member k draws the k-th equal share."""
        c = self.context(mjj)
        noise = rng.standard_normal((c.shape[0], self.flow._distribution._shape[0]))
        z = np.empty_like(noise)
        for k, part in enumerate(np.array_split(np.arange(c.shape[0]), len(self.states))):
            flow = self._member(k)
            zz, _ = flow._transform.inverse(
                torch.as_tensor(noise[part]), context=torch.as_tensor(c[part])
            )
            z[part] = zz.numpy()
        return z


def build_sr_flow(n_features: int, hp: dict):
    """The spline flow of the SR density fits, from validated hyperparameters."""
    return build_rqs_flow(
        n_features,
        n_transforms=hp["n_transforms"],
        n_blocks=hp["n_blocks"],
        hidden=hp["hidden"],
        dropout=hp["dropout"],
        n_bins=hp["n_bins"],
        tail_bound=hp["tail_bound"],
    )
