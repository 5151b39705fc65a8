"""CATHODE sampling in the signal region and the samples file CATHODE mode reads.

mjj values are drawn from a Gaussian KDE (bandwidth 0.01, scikit-learn) fitted
to the SR data's mjj after min-max normalisation to the SR bounds and a logit,
as published; features are then drawn from the background model at those mjj,
each kept epoch drawing an equal share, and the rows shuffled together. The
file is a ``.npy`` of rows ``[mjj, features...]`` written atomically, with a
sidecar ``<name>.json`` holding its provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from objectives.errors import DataError
from objectives.flows.background import BackgroundModel

__all__ = ["MjjKDE", "provenance_path", "sample_signal_region", "write_samples"]


@dataclass
class MjjKDE:
    """Gaussian KDE of mjj in ``logit((mjj - lo) / (hi - lo))``, with ``(lo, hi)`` the SR."""

    lo: float
    hi: float
    bandwidth: float = 0.01

    def fit(self, mjj: np.ndarray) -> MjjKDE:
        from sklearn.neighbors import KernelDensity

        mjj = np.asarray(mjj, dtype=np.float64)
        inside = (mjj > self.lo) & (mjj < self.hi)
        if mjj.size == 0 or not inside.all():
            raise DataError(
                f"mjj KDE: expected SR events strictly inside ({self.lo}, {self.hi}), "
                f"got {mjj.size} events, {int((~inside).sum())} outside"
            )
        u = (mjj - self.lo) / (self.hi - self.lo)
        self.kde_ = KernelDensity(kernel="gaussian", bandwidth=self.bandwidth)
        self.kde_.fit((np.log(u) - np.log1p(-u)).reshape(-1, 1))
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        seed = int(rng.integers(2**31 - 1))
        t = self.kde_.sample(n, random_state=seed).ravel()
        return self.lo + (self.hi - self.lo) / (1.0 + np.exp(-t))


def sample_signal_region(
    model: BackgroundModel,
    mjj_sr: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    sr: tuple[float, float] = (3.3, 3.7),
) -> np.ndarray:
    """``n`` background-like SR events as rows ``[mjj, features...]``, shuffled."""
    mjj = MjjKDE(*sr).fit(mjj_sr).sample(n, rng)
    rows = np.column_stack([mjj, model.sample(mjj, rng)])
    return rows[rng.permutation(n)]


def provenance_path(samples_file: str | Path) -> Path:
    """The sidecar JSON next to a samples file: ``samples.npy`` -> ``samples.json``."""
    return Path(samples_file).with_suffix(".json")


def write_samples(path: str | Path, rows: np.ndarray, provenance: Mapping) -> Path:
    """Write ``rows`` to ``path`` (.npy) and its provenance JSON, each atomically."""
    from objectives.files import atomic_path, atomic_write_json

    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"{path}: the samples file must end in .npy")
    with atomic_path(path) as tmp:
        np.save(tmp, np.ascontiguousarray(rows, dtype=np.float64))
    atomic_write_json(provenance_path(path), dict(provenance))
    return path
