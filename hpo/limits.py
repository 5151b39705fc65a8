"""The physical limit of a synthetic cell: the exact likelihood ratio as anomaly score.

On the synthetic dataset the generator knows p_sig(x | SR) / p_bkg(x | SR);
its SIC curve on the cell's test set is the Neyman-Pearson optimum every
method is compared with. Cached in ``<run_dir>/final/<cell>/limit.npz``.
"""

from __future__ import annotations

import io

import numpy as np

from hpo.cells import CampaignCell
from hpo.provenance import atomic_write_bytes

__all__ = ["exact_limit"]


def exact_limit(cc: CampaignCell) -> dict[str, np.ndarray | float] | None:
    """``{"tpr", "fpr", "sic", "max_sic"}`` of the exact likelihood ratio, or None.

    None where no exact likelihood exists: real data, or features beyond the
    four baseline ones (noise, delta R, extended sets).
    """
    c = cc.campaign
    if (
        c.data.source != "synthetic"
        or cc.point.feature_set != "baseline"
        or c.data.include_delta_r
        or c.data.n_noise
    ):
        return None
    path = c.run_dir / "final" / cc.key / "limit.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: (float(z[k]) if k == "max_sic" else z[k]) for k in z.files}
    from dataclasses import replace

    from objectives.cells import MODES, prepare
    from objectives.metrics import max_sic, sic_curve
    from objectives.synthetic import SyntheticModel

    cell = cc.cell()
    if cell.mode not in MODES:  # density methods are scored on the same test set
        cell = replace(cell, classifier="HGB", mode="IAD")
    p = prepare(cell)
    lr = SyntheticModel(shifted=c.data.shifted).likelihood_ratio(p.x_test_raw)
    tpr, fpr, sic = sic_curve(lr, p.y_test)
    out = {"tpr": tpr, "fpr": fpr, "sic": sic, "max_sic": float(max_sic(lr, p.y_test))}
    buf = io.BytesIO()
    np.savez_compressed(buf, **out)
    atomic_write_bytes(path, buf.getvalue())
    return out
