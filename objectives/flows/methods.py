"""One call per density method for a cell: ``evaluate_density_method("R-ANODE", data, N, ...)``.

Wires the pieces together the way a campaign cell needs them: the cached
background model for (data file, signal amount, seed, background
hyperparameters), the SR data and the labelled test set of
:func:`~objectives.flows.data.load_region_data`, then ANODE or R-ANODE. The
result is a :class:`~objectives.flows.density.DensityEvaluation` (the shape of
``EvaluationResult``), whose label-free selection metric is ``"val_loss"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from objectives.flows.density import DensityEvaluation

__all__ = ["DENSITY_METHODS", "evaluate_density_method"]

DENSITY_METHODS = ("ANODE", "R-ANODE")


def evaluate_density_method(
    method: str,
    data: Any,
    signal: int,
    *,
    cache_dir: str | Path,
    seed: int,
    hp: Mapping | None = None,
    background_hp: Mapping | None = None,
    w: float | None = None,
    w_init: float = 0.01,
    n_threads: int | None = None,
) -> DensityEvaluation:
    """Fit ``method`` ("ANODE" | "R-ANODE") on the SR data of ``data`` with ``signal`` injected.

    ``data`` is an ``objectives.cells.DataSpec`` (data_file, extrabkg_file, feature_set,
    include_delta_r, n_noise, shifted). ``w`` fixes R-ANODE's signal fraction (None: learned).
    """
    from objectives.flows.anode import run_anode
    from objectives.flows.cathode import cached_background
    from objectives.flows.data import load_region_data
    from objectives.flows.ranode import run_ranode

    if method not in DENSITY_METHODS:
        raise ValueError(
            f"density method must be one of {', '.join(DENSITY_METHODS)}, got {method!r}"
        )
    features = {
        "shifted": data.shifted,
        "feature_set": data.feature_set,
        "include_delta_r": data.include_delta_r,
        "n_noise": data.n_noise,
    }
    bg = cached_background(
        cache_dir,
        data.data_file,
        signal=signal,
        seed=seed,
        hp=background_hp,
        n_threads=n_threads,
        **features,
    )
    rd = load_region_data(data.data_file, data.extrabkg_file, signal, **features)
    model = bg.load_model()
    test = {"x_test": rd.x_test, "mjj_test": rd.mjj_test, "y_test": rd.y_test}
    if method == "ANODE":
        ev = run_anode(model, rd.x_sr, rd.mjj_sr, hp, seed=seed, n_threads=n_threads, **test)
    else:
        ev = run_ranode(
            model,
            rd.x_sr,
            rd.mjj_sr,
            hp,
            seed=seed,
            w=w,
            w_init=w_init,
            n_threads=n_threads,
            **test,
        )
    ev.info.update(
        signal=int(signal),
        background=bg.provenance,
        background_model=str(bg.model_file),
        **{k: v for k, v in rd.info.items() if k != "signal"},
    )
    return ev
