"""Signal region and short sidebands in the dijet mass, with mask helpers (TeV)."""

from __future__ import annotations

import numpy as np

__all__ = ["SHORT_SIDEBANDS", "SR", "in_short_sidebands", "in_sr", "outside_sr"]

#: Signal region of the LHC Olympics R&D studies, open interval in mjj (TeV).
SR: tuple[float, float] = (3.3, 3.7)
#: Short sidebands of width 0.2 TeV either side of the SR (CWoLa), open intervals (TeV).
SHORT_SIDEBANDS: tuple[tuple[float, float], tuple[float, float]] = ((3.1, 3.3), (3.7, 3.9))


def in_sr(mjj: np.ndarray) -> np.ndarray:
    """Boolean mask of events with ``SR[0] < mjj < SR[1]``."""
    mjj = np.asarray(mjj)
    return (mjj > SR[0]) & (mjj < SR[1])


def in_short_sidebands(mjj: np.ndarray) -> np.ndarray:
    """Boolean mask of events inside either short sideband."""
    mjj = np.asarray(mjj)
    (lo1, hi1), (lo2, hi2) = SHORT_SIDEBANDS
    return ((mjj > lo1) & (mjj < hi1)) | ((mjj > lo2) & (mjj < hi2))


def outside_sr(mjj: np.ndarray) -> np.ndarray:
    """Boolean mask of events outside the SR (the sidebands of CATHODE's background model)."""
    return ~in_sr(mjj)
