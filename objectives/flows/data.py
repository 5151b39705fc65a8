"""The events a density method sees: sidebands, signal-region data, a labelled test set.

The injection rule and the test set are :mod:`objectives.injection`'s, as for
the classifier cells, but mjj is kept, which the conditional flows need: the
sidebands are data outside the SR (the background model trains there), the SR
data are data inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from objectives.errors import DataError
from objectives.injection import inject, n_template, shift, test_signal

__all__ = ["RegionData", "load_region_data", "split_regions"]


@dataclass
class RegionData:
    """Arrays of one (data file, signal amount), mjj kept; ``y_test`` 1 = signal."""

    x_sb: np.ndarray
    mjj_sb: np.ndarray
    x_sr: np.ndarray
    mjj_sr: np.ndarray
    y_sr: np.ndarray  # truth of the SR data (for diagnostics only)
    x_test: np.ndarray | None = None
    mjj_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def split_regions(
    mjj: np.ndarray, x: np.ndarray, label: np.ndarray, signal: int, *, source: str = "<arrays>"
) -> RegionData:
    """Inject the first ``signal`` signal events into the background; split SB / SR."""
    from objectives.regions import in_sr

    in_data, _ = inject(label, int(signal), source)
    sr = in_sr(mjj)
    sb, srd = in_data & ~sr, in_data & sr
    if not srd.any() or not sb.any():
        raise DataError(f"{source}: needs events both inside and outside the SR 3.3-3.7 TeV")
    return RegionData(
        x_sb=x[sb],
        mjj_sb=mjj[sb],
        x_sr=x[srd],
        mjj_sr=mjj[srd],
        y_sr=label[srd].astype(np.int8),
        info={
            "signal": int(signal),
            "n_sideband": int(sb.sum()),
            "n_sr_data": int(srd.sum()),
            "n_sr_signal": int((srd & (label == 1)).sum()),
        },
    )


def load_region_data(
    data_file: str | Path,
    extrabkg_file: str | Path | None,
    signal: int,
    *,
    shifted: bool = False,
    feature_set: str = "baseline",
    include_delta_r: bool = False,
    n_noise: int = 0,
) -> RegionData:
    """Read the LHCO files and build :class:`RegionData` (test set only with ``extrabkg_file``)."""
    from objectives.lhco import load_events
    from objectives.regions import in_sr

    kw = {"feature_set": feature_set, "include_delta_r": include_delta_r, "n_noise": n_noise}
    ev = load_events(data_file, **kw)
    x = shift(ev.mjj, ev.x) if shifted else ev.x
    rd = split_regions(ev.mjj, x, ev.label, int(signal), source=str(ev.path))
    rd.info.update(data_sha256=ev.sha256, features=list(ev.feature_names), shifted=shifted)
    if extrabkg_file is not None:
        extra = load_events(extrabkg_file, **kw)
        xe = shift(extra.mjj, extra.x) if shifted else extra.x
        keep = in_sr(extra.mjj)
        xe, me = xe[keep], extra.mjj[keep]
        n_iad = n_template(xe.shape[0])
        _, injected = inject(ev.label, int(signal), str(ev.path))
        test_sig = test_signal(ev.label, injected, in_sr(ev.mjj))
        rd.x_test = np.concatenate([xe[n_iad:], x[test_sig]])
        rd.mjj_test = np.concatenate([me[n_iad:], ev.mjj[test_sig]])
        rd.y_test = np.concatenate(
            [np.zeros(xe.shape[0] - n_iad, np.int8), np.ones(test_sig.size, np.int8)]
        )
        rd.info.update(extrabkg_sha256=extra.sha256, n_test=int(rd.y_test.size))
    return rd
