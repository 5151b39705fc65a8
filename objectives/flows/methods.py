"""Density methods as campaign cells: :func:`evaluate_density` for ANODE, R-ANODE, BackgroundFlow.

ANODE and R-ANODE fit the signal-region data of the cell's region against the
background flow the cell names (``cell.data.background_model``, built once by
:func:`objectives.templates.background_flow`); a trial only loads it.
``BackgroundFlow`` trains the background flow itself on the data outside the
signal region (no anomaly score). On half statistics (or a k-fold split) the
method sees the split's training part of its events, a seeded random half of
them; the label-free metric ``val_loss`` is each flow's held-out negative
log-likelihood (see the modules of the methods).

ANODE and R-ANODE also report the classifiers' label-free metrics, so one metric
compares every detector of a signal region (``hpo select``): ARGOS of the anomaly
score and BCE between the held-out signal-region data and held-out samples of the
background flow in the signal region (the CATHODE template of the same flow:
``cell.data.samples_file``, by default the samples cached with the model). The SR
data are split with the template exactly as a CATHODE classifier's training set
(:meth:`~objectives.splits.Split.weak_indices`), so a CATHODE cell on that flow
holds out the same events. BCE is that of the classifier the densities imply,
P(data | x) = r / (1 + r) with r = p_data / p_bkg (ANODE: exp(score); R-ANODE:
1 - w + w exp(score)), class-balanced like the classifiers'. On full statistics
both are computed on the training events, as for the classifiers.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from objectives.cells import Cell
from objectives.errors import DataError
from objectives.results import EvaluationResult
from objectives.splits import Split

__all__ = ["evaluate_density", "load_background_model"]


@functools.lru_cache(maxsize=4)
def _load(path: str, size: int, mtime_ns: int):
    from objectives.flows.background import BackgroundModel

    return BackgroundModel.load(path)


def load_background_model(path: str | Path):
    """The background flow stored at ``path``, loaded once per process (per file version)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: background model not found ({exc.strerror or exc})") from exc
    return _load(str(path.resolve()), st.st_size, st.st_mtime_ns)


def _train_part(n: int, split: Split) -> np.ndarray:
    """Indices of the ``n`` unlabelled events a method trains on under ``split``."""
    return split.indices(np.zeros(n, dtype=np.int8))[0]


def _background_flow(hp: dict, cell: Cell, split: Split, seed: int, n_jobs: int, device: str):
    from objectives.flows.background import train_background_model

    rd = cell.data.events(cell.signal, with_test=False)
    part = rd.outside.take(_train_part(len(rd.outside), split))
    res = train_background_model(part.x, part.mjj, hp, seed=seed, n_threads=n_jobs, device=device)
    info = {**res.info, **rd.info, "val_log_likelihood": res.val_log_likelihood}
    return EvaluationResult.from_scores(
        {"val_loss": -res.val_log_likelihood}, None, None, info, oracle=False
    )


def _held_out_metrics(
    model, rd, template, held_data, held_template, min_template: int
) -> dict[str, float]:
    """ARGOS and BCE of the fitted model between held-out SR data and template samples."""
    from scipy.special import expit

    from objectives.metrics import argos, weighted_bce

    mjj_t, x_t = template
    scores = np.concatenate(
        [
            model.score(rd.sr.x[held_data], rd.sr.mjj[held_data]),
            model.score(x_t[held_template], mjj_t[held_template]),
        ]
    )
    is_data = np.concatenate(
        [np.ones(held_data.size, np.int8), np.zeros(held_template.size, np.int8)]
    )
    return {
        "argos": argos(scores, is_data, min_template=min_template),
        "bce": weighted_bce(expit(model.log_data_ratio(scores)), is_data),
    }


def _signal_region_method(hp: dict, cell: Cell, split: Split, seed: int, n_jobs: int, device: str):
    from objectives.cells import cathode_template
    from objectives.flows.anode import run_anode
    from objectives.flows.cathode import samples_beside
    from objectives.flows.ranode import run_ranode

    if cell.data.background_model is None:
        raise DataError(
            f"{cell.key()}: {cell.classifier} needs a trained background flow "
            "(DataSpec.background_model; build it with objectives.templates.background_flow)"
        )
    background = load_background_model(cell.data.background_model)
    rd = cell.data.events(cell.signal)
    samples = cell.data.samples_file or samples_beside(cell.data.background_model)
    template = cathode_template(samples, len(rd.sr), rd.sr.x.shape[1])
    train, held_data, _, held_template = split.weak_indices(len(rd.sr), len(template[1]))
    part = rd.sr.take(train)
    flow_hp = {k: v for k, v in hp.items() if k != "w"}
    if rd.test is None:  # they score the labelled test set: the extra background must cover
        raise DataError(rd.info["no_extra_background"])
    test = {"x_test": rd.test.x, "mjj_test": rd.test.mjj, "y_test": rd.test.label}
    if cell.classifier == "ANODE":
        result = run_anode(
            background,
            part.x,
            part.mjj,
            flow_hp,
            seed=seed,
            n_threads=n_jobs,
            device=device,
            **test,
        )
    else:
        result = run_ranode(
            background,
            part.x,
            part.mjj,
            flow_hp,
            w=hp.get("w"),
            seed=seed,
            n_threads=n_jobs,
            device=device,
            **test,
        )
    label_free = {
        **{m: v for m, v in result.metrics.items() if m != "max_sic"},
        **_held_out_metrics(
            result.model, rd, template, held_data, held_template, cell.argos_min_template
        ),
    }
    info = {
        **result.info,
        "background_model": str(cell.data.background_model),
        "template": str(samples),
        "n_held_out_data": int(held_data.size),
        "n_held_out_template": int(held_template.size),
        **rd.info,
    }
    # a trial keeps scores, not the flow
    return EvaluationResult.from_scores(label_free, result.scores["max_sic"], result.y_test, info)


def evaluate_density(
    hp: dict, cell: Cell, split: Split, *, n_jobs: int = 1, device: str = "cpu"
) -> EvaluationResult:
    """Fit the density method ``cell.classifier`` with (validated) ``hp`` under ``split``.

    ``metrics`` holds ``val_loss`` (label-free, lower is better) and, for ANODE and
    R-ANODE, ``argos`` and ``bce`` (label-free, against the flow's samples) and
    ``max_sic`` (truth oracle); all share one ensemble's test scores.
    """
    t0 = time.perf_counter()
    seed = split.model_seed()
    if cell.classifier == "BackgroundFlow":
        result = _background_flow(hp, cell, split, seed, n_jobs, device)
    else:
        result = _signal_region_method(hp, cell, split, seed, n_jobs, device)
    result.info.update(
        cell=cell.key(),
        classifier=cell.classifier,
        statistics=split.statistics,
        split=split.to_dict(),
        run=split.run,
        seed=seed,
        hp=dict(hp),
        signal=int(cell.signal),
        seconds_total=round(time.perf_counter() - t0, 3),
    )
    return result
