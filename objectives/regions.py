"""A signal region in the dijet mass, as a value: the window, its short sidebands, masks (TeV).

Every consumer (signal injection and the test set, CWoLa's sidebands, the CATHODE
background model's training region and its SR sampling, the synthetic
generator's extra background, the exact-likelihood limit) takes the region of
its cell; nothing reads a module constant. The default is the LHC Olympics
R&D signal region 3.3-3.7 TeV with short sidebands of 0.2 TeV either side.

Example:
    >>> r = Region.window(6)
    >>> r.sr, r.sidebands
    ((3.4, 3.8), ((3.2, 3.4), (3.8, 4.0)))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_REGION", "Region"]

#: Width of each short sideband (CWoLa), TeV.
SIDEBAND_WIDTH = 0.2
#: The sliding-window scan of the bump hunt: window w is [3.3, 3.7] + (w - 5) * 0.1 TeV.
WINDOW_STEP = 0.1


def _round(x: float) -> float:
    return round(float(x), 6)  # 3.3 + 0.1 is 3.4, not 3.4000000000000004


@dataclass(frozen=True)
class Region:
    """Signal region ``sr = (lo, hi)`` (open interval) and its two short ``sidebands``."""

    sr: tuple[float, float] = (3.3, 3.7)
    sidebands: tuple[tuple[float, float], tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        lo, hi = (_round(v) for v in self.sr)
        if not (0 < lo < hi):
            raise ValueError(f"signal region must be (lo, hi) with 0 < lo < hi TeV, got {self.sr}")
        object.__setattr__(self, "sr", (lo, hi))
        if self.sidebands is None:
            sb = ((_round(lo - SIDEBAND_WIDTH), lo), (hi, _round(hi + SIDEBAND_WIDTH)))
        else:
            (a, b), (c, d) = self.sidebands
            sb = ((_round(a), _round(b)), (_round(c), _round(d)))
            if not (a < b <= lo and hi <= c < d):
                raise ValueError(
                    f"sidebands must lie either side of the SR {self.sr}, got {self.sidebands}"
                )
        object.__setattr__(self, "sidebands", sb)

    @classmethod
    def window(cls, w: int) -> Region:
        """Window ``w`` of the bump hunt's scan: [3.3, 3.7] + (w - 5) * 0.1 TeV (w = 5: default)."""
        shift = (int(w) - 5) * WINDOW_STEP
        return cls((3.3 + shift, 3.7 + shift))

    @property
    def is_default(self) -> bool:
        """True for the LHCO signal region 3.3-3.7 TeV with its short sidebands."""
        return self == DEFAULT_REGION

    @property
    def tag(self) -> str:
        """Short name for keys and paths, e.g. ``SR3.4-3.8``."""
        return f"SR{self.sr[0]:g}-{self.sr[1]:g}"

    def describe(self) -> str:
        """Human-readable, e.g. ``3.3-3.7 TeV``."""
        return f"{self.sr[0]:g}-{self.sr[1]:g} TeV"

    def in_sr(self, mjj: np.ndarray) -> np.ndarray:
        """Boolean mask of events with ``lo < mjj < hi``."""
        mjj = np.asarray(mjj)
        return (mjj > self.sr[0]) & (mjj < self.sr[1])

    def in_sidebands(self, mjj: np.ndarray) -> np.ndarray:
        """Boolean mask of events inside either short sideband (open intervals)."""
        mjj = np.asarray(mjj)
        (lo1, hi1), (lo2, hi2) = self.sidebands
        return ((mjj > lo1) & (mjj < hi1)) | ((mjj > lo2) & (mjj < hi2))

    def to_dict(self) -> dict:
        """JSON-friendly form (for provenance and cache keys)."""
        return {"sr": list(self.sr), "sidebands": [list(s) for s in self.sidebands]}


DEFAULT_REGION = Region()
