"""Density methods as campaign cells: ``evaluate_cell`` and ``evaluate_density_method``.

Wires the pieces together the way a campaign cell needs them: the cached
background model for (data file, signal amount, seed, background
hyperparameters), the SR data and the labelled test set of
:func:`~objectives.flows.data.load_region_data`, then ANODE or R-ANODE. The
result is a :class:`~objectives.flows.density.DensityEvaluation`, whose
label-free selection metric is ``"val_loss"``. :func:`evaluate_cell` is what
``objectives.evaluate.evaluate`` calls for a density-method cell: it returns
the common ``EvaluationResult``; on half statistics the method sees a seeded
random half of its training events (SR data, or sidebands for BackgroundFlow).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from objectives.flows.density import DensityEvaluation

__all__ = ["DENSITY_METHODS", "evaluate_cell", "evaluate_density_method"]

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
    half: int | None = None,
    background_seed: int | None = None,
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
    features = _features(data)
    bg = cached_background(
        cache_dir,
        data.data_file,
        signal=signal,
        seed=seed if background_seed is None else background_seed,
        hp=background_hp,
        n_threads=n_threads,
        **features,
    )
    rd = load_region_data(data.data_file, data.extrabkg_file, signal, **features)
    if half is not None:
        keep = _half(rd.x_sr.shape[0], half)
        rd.x_sr, rd.mjj_sr = rd.x_sr[keep], rd.mjj_sr[keep]
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
    ev.y_test = rd.y_test
    ev.info.update(
        signal=int(signal),
        background=bg.provenance,
        background_model=str(bg.model_file),
        **{k: v for k, v in rd.info.items() if k != "signal"},
    )
    return ev


def _half(n: int, run: int) -> np.ndarray:
    """The seeded random half of ``n`` unlabelled events used in run ``run``."""
    from objectives.cells import half_split

    return half_split(np.zeros(n, dtype=np.int8), run)[0]


def _features(data: Any) -> dict:
    return {
        "shifted": data.shifted,
        "feature_set": data.feature_set,
        "include_delta_r": data.include_delta_r,
        "n_noise": data.n_noise,
    }


def _background_flow(hp: Mapping, cell: Any, statistics: str, run: int, seed: int, n_jobs: int):
    """Train the background flow with ``hp`` on the cell's sidebands; no anomaly score."""
    from objectives.flows.background import train_background_model
    from objectives.flows.data import load_region_data

    data = cell.data
    rd = load_region_data(data.data_file, None, cell.signal, **_features(data))
    x, m = rd.x_sb, rd.mjj_sb
    if statistics == "half":
        keep = _half(x.shape[0], run)
        x, m = x[keep], m[keep]
    res = train_background_model(x, m, hp, seed=seed, n_threads=n_jobs)
    info = {**res.info, **{k: v for k, v in rd.info.items() if k != "signal"}}
    info["val_log_likelihood"] = res.val_log_likelihood
    return -res.val_log_likelihood, info


def evaluate_cell(hp: Mapping, cell: Any, statistics: str, run: int, *, n_jobs: int = 1):
    """Fit the density method ``cell.classifier`` with ``hp``; an ``EvaluationResult``.

    ``metrics`` holds ``val_loss`` (label-free, lower is better) and ``max_sic``
    (truth oracle); ``truth[m]`` and ``scores[m]`` are the same for both, since a
    density method has one ensemble. BackgroundFlow reports NaN truth and no scores.
    """
    import time

    from objectives.evaluate import EvaluationResult, model_seed
    from objectives.methods import VAL_LOSS, validate_hyperparameters

    t0 = time.perf_counter()
    method = cell.classifier
    hp = validate_hyperparameters(method, dict(hp))
    seed = model_seed(run, statistics)
    data = cell.data
    if method == "BackgroundFlow":
        val_loss, info = _background_flow(hp, cell, statistics, run, seed, n_jobs)
        scores, y_test, truth = None, None, {"max_sic": float("nan"), "auc": float("nan")}
    else:
        if data.background_dir is None:
            raise ValueError(f"{method} cell {cell.key()}: DataSpec.background_dir is not set")
        flow_hp = {k: v for k, v in hp.items() if k != "w"}
        ev = evaluate_density_method(
            method,
            data,
            cell.signal,
            cache_dir=data.background_dir,
            seed=seed,
            hp=flow_hp,
            background_hp=dict(data.background_hp),
            background_seed=data.background_seed,
            w=hp.get("w"),
            n_threads=n_jobs,
            half=run if statistics == "half" else None,
        )
        val_loss, scores = ev.metrics[VAL_LOSS], ev.scores[VAL_LOSS]
        y_test, truth, info = ev.y_test, ev.truth[VAL_LOSS], ev.info
    info.update(
        cell=cell.key(),
        classifier=method,
        statistics=statistics,
        run=int(run),
        seed=seed,
        hp=dict(hp),
        seconds_total=round(time.perf_counter() - t0, 3),
    )
    metrics = {VAL_LOSS: float(val_loss), "max_sic": truth["max_sic"]}
    return EvaluationResult(
        metrics=metrics,
        truth={m: dict(truth) for m in metrics},
        scores={} if scores is None else {m: scores for m in metrics},
        info=info,
        y_test=y_test,
    )
