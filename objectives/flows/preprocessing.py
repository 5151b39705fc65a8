"""Feature preprocessing for the flows: min-max scaling, logit, standardisation.

As in ANODE/CATHODE, each feature is scaled into (0, 1) with the minimum and
maximum of the training sidebands, logit-transformed and standardised; the
conditional mjj is standardised. The min-max box is padded by ``margin`` times
the range on each side, so every training event (boundary events included) lies
strictly inside and the transform is exactly invertible there. Events outside
the padded box (possible in the signal region) are clipped to ``[eps, 1 - eps]``
before the logit; only those are not round-tripped, and their count is logged.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from objectives.errors import DataError

__all__ = ["FlowPreprocessor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowPreprocessor:
    """Fitted preprocessing of features ``x`` (n, d) and the condition ``mjj`` (n,)."""

    lo: np.ndarray
    hi: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    m_mean: float
    m_std: float
    eps: float = 1e-7

    @classmethod
    def fit(
        cls, x: np.ndarray, mjj: np.ndarray, *, margin: float = 0.05, eps: float = 1e-7
    ) -> FlowPreprocessor:
        """Fit on training events: padded min-max box, then logit mean and std."""
        x = np.asarray(x, dtype=np.float64)
        mjj = np.asarray(mjj, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2 or mjj.shape != (x.shape[0],):
            raise DataError(
                f"preprocessing: expected x (n>=2, d) and mjj (n,), got {x.shape} and {mjj.shape}"
            )
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(mjj))):
            raise DataError("preprocessing: training events hold NaN/inf")
        xmin, xmax = x.min(axis=0), x.max(axis=0)
        span = np.where(xmax > xmin, xmax - xmin, 1.0)
        lo, hi = xmin - margin * span, xmax + margin * span
        u = (x - lo) / (hi - lo)
        logit = np.log(u) - np.log1p(-u)
        std = logit.std(axis=0)
        m_std = float(mjj.std())
        return cls(
            lo=lo,
            hi=hi,
            mean=logit.mean(axis=0),
            std=np.where(std > 0, std, 1.0),
            m_mean=float(mjj.mean()),
            m_std=m_std if m_std > 0 else 1.0,
            eps=eps,
        )

    @property
    def n_features(self) -> int:
        return int(self.lo.size)

    def _unit(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise DataError(
                f"preprocessing: expected x of shape (n, {self.n_features}), got {x.shape}"
            )
        u = (x - self.lo) / (self.hi - self.lo)
        outside = (u <= self.eps) | (u >= 1 - self.eps)
        if outside.any():
            log.info(
                "preprocessing: %d events outside the padded box clipped", outside.any(1).sum()
            )
            u = np.clip(u, self.eps, 1 - self.eps)
        return u

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Features to the flow's space: ``(logit(minmax(x)) - mean) / std``."""
        u = self._unit(x)
        return (np.log(u) - np.log1p(-u) - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Exact inverse of :meth:`transform` (inside the padded box)."""
        z = np.asarray(z, dtype=np.float64)
        u = 1.0 / (1.0 + np.exp(-(z * self.std + self.mean)))
        return self.lo + u * (self.hi - self.lo)

    def log_abs_det_jacobian(self, x: np.ndarray) -> np.ndarray:
        """``log |dz/dx|`` per event, so ``log p(x) = log p_z(z) + this``."""
        u = self._unit(x)
        per = -np.log(u) - np.log1p(-u) - np.log(self.hi - self.lo) - np.log(self.std)
        return per.sum(axis=1)

    def transform_context(self, mjj: np.ndarray) -> np.ndarray:
        """Standardised mjj as a column (n, 1)."""
        mjj = np.asarray(mjj, dtype=np.float64).reshape(-1, 1)
        return (mjj - self.m_mean) / self.m_std

    def to_dict(self) -> dict:
        """JSON-friendly parameters."""
        return {
            k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, d: dict) -> FlowPreprocessor:
        arrays = {k: np.asarray(d[k], dtype=np.float64) for k in ("lo", "hi", "mean", "std")}
        return cls(
            **arrays, m_mean=float(d["m_mean"]), m_std=float(d["m_std"]), eps=float(d["eps"])
        )
