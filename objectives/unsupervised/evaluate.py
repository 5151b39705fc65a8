"""The unsupervised detectors as campaign cells: train on background, score every signal.

:func:`evaluate_unsupervised` is the registry's evaluate function of dSVDD,
DROCC, DDD and the family's baselines (:mod:`objectives.unsupervised.baselines`;
``objectives.evaluate.evaluate`` dispatches here) on a
:class:`~objectives.darkmachines.cells.DMCell`: the detector trains on the
split's training part of the cell's background pool and computes its
label-free ``val_loss`` on the held-out part (half statistics: a seeded half
of the pool; full statistics: the training set itself); it then scores the
test set (held-out background and every signal). A DDD hyperparameter set with
one distortion point trains that one classifier (a trial of DDD's scan, no band
required); a grid trains every point and keeps those in the AUC band.

:func:`evaluate_trial_ensemble` does the same for the average over several
hyperparameter sets (``hpo final``'s ``ensemble`` source; see
:mod:`objectives.unsupervised.ensemble`).

Label-free metrics: ``perturb_auc`` (the campaigns' objective, higher is better;
see :mod:`objectives.unsupervised.perturb`: how well the detector ranks held-out
background perturbed in generic ways above the same events, its AUC per kind in
``info["perturbation_aucs"]``) and the method's own ``val_loss`` (recorded).

Test scores are standardised on the held-out background (mean 0, standard
deviation 1 there: a monotone map, so every truth metric is unchanged), so the
scores of different cells can be averaged (dSVDD + DDD). Truth metrics: per
signal AUC and signal efficiency at background efficiency 1e-2 / 1e-3 / 1e-4
(``EvaluationResult.per_signal``; weighted with the files' event weights where
they differ, ``DMSets.test_weight``), and their means over the signals as the
oracle metrics ``auc``, ``eps_s_1e-2``, ... Deep SVDD's members, one per latent
dimension, come with their own test scores (``EvaluationResult.parts``).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from objectives.darkmachines.cells import DMCell, DMSets, load_sets
from objectives.errors import EnsembleRefused, HyperparameterError
from objectives.results import EvaluationResult
from objectives.splits import Split
from objectives.unsupervised.arrays import EventArrays
from objectives.unsupervised.base import Detector
from objectives.unsupervised.baselines import BASELINES
from objectives.unsupervised.metrics import mean_over_signals, per_signal_truth
from objectives.unsupervised.perturb import perturb_auc, perturbation_aucs

__all__ = ["evaluate_trial_ensemble", "evaluate_unsupervised", "fit_cell_detector"]


@functools.lru_cache(maxsize=8)
def _arrays(sets: DMSets) -> tuple[EventArrays, EventArrays]:
    """(training pool, test set) of a cell as EventArrays, converted once per process."""
    return EventArrays.from_events(sets.train), EventArrays.from_events(sets.test)


def _train_val(sets: DMSets, split: Split) -> tuple[EventArrays, EventArrays]:
    pool, _ = _arrays(sets)
    train, held = split.indices(np.zeros(len(pool), dtype=np.int8))
    return pool.take(train), pool.take(held)


def _band_error(exc: Exception) -> HyperparameterError:
    return HyperparameterError(f"DDD hyperparameter 'auc_band': {str(exc).removeprefix('DDD: ')}")


def fit_cell_detector(
    method: str,
    hp: dict[str, Any],
    train: EventArrays,
    val: EventArrays,
    *,
    seed: int,
    n_threads: int = 1,
    device: str = "cpu",
) -> Detector:
    """``method`` trained with ``hp`` (backbone included, missing entries: the defaults) on
    ``device``; DDD with one distortion point: that one model, without the band."""
    from objectives.unsupervised.calibration import calibrated
    from objectives.unsupervised.ddd import DDDBandError, distortion_grid, fit_ddd_point
    from objectives.unsupervised.detector import fit
    from objectives.unsupervised.params import validate

    hp = validate(method, hp)

    try:
        if method == "DDD" and len(distortion_grid(hp)) == 1:
            ((sigma, p_drop, p_add),) = distortion_grid(hp)
            det = fit_ddd_point(
                train, val, hp, sigma=sigma, p_drop=p_drop, p_add=p_add, seed=seed,
                n_threads=n_threads, device=device,
            )  # fmt: skip
            return calibrated(det, val, hp["calibration"])
        return fit(method, train, val, hp, seed=seed, n_threads=n_threads, device=device)
    except DDDBandError as exc:
        raise _band_error(exc) from None


def _result(
    det: Detector,
    sets: DMSets,
    val: EventArrays,
    cell: DMCell,
    split: Split,
    info: dict[str, Any],
) -> EvaluationResult:
    from objectives.unsupervised.parts import score_parts

    _, test = _arrays(sets)
    ref = det.score(val)
    scores = (det.score(test) - ref.mean()) / max(float(ref.std()), 1e-12)
    per_signal = per_signal_truth(scores, sets.test_signal, sets.signals, sets.test_weight)
    truth = mean_over_signals(per_signal)
    generic = perturbation_aucs(det.score, val)
    # a one-variable cut has no model, so no loss; every score has a perturb_auc
    label_free = {"perturb_auc": perturb_auc(generic, det.trained_on)}
    if det.val_loss is not None:
        label_free["val_loss"] = float(det.val_loss)
    metrics = {**label_free, **truth}
    info.update(
        perturbation_aucs=generic,
        perturbation_trained_on=list(det.trained_on),
        cell=cell.key(),
        classifier=cell.classifier,
        backbone=cell.backbone,
        statistics=split.statistics,
        split=split.to_dict(),
        run=split.run,
        **sets.info,
        detector={k: v for k, v in det.info.items() if k not in ("hp", "history")},
    )
    return EvaluationResult(
        metrics=metrics,
        truth={m: dict(truth) for m in metrics},
        scores={m: scores for m in metrics},
        info=info,
        y_test=(sets.test_signal >= 0).astype(np.int8),
        signals=sets.signals,
        test_signal=sets.test_signal,
        per_signal=per_signal,
        test_weight=sets.test_weight,
        parts=score_parts(det, test, val),
    )


def evaluate_unsupervised(
    hp: dict, cell: DMCell, split: Split, *, n_jobs: int = 1, device: str = "cpu"
) -> EvaluationResult:
    """Train ``cell.classifier`` with (validated) ``hp`` on the cell background under ``split``.

    The networks train on ``device`` ("cpu", "cuda", "auto"; ``n_jobs`` CPU threads) and
    score on the CPU.
    """
    t0 = time.perf_counter()
    sets = load_sets(cell.data)
    train, val = _train_val(sets, split)
    seed = split.model_seed()
    if cell.classifier in BASELINES:
        from objectives.unsupervised.baselines import fit_baseline

        det = fit_baseline(
            cell.classifier, hp, train, val, seed=seed, n_threads=n_jobs, device=device,
            synthetic=cell.data.synthetic, n_truncated=sets.info["n_truncated"],
            cuts=cell.data.cuts, cache_dir=cell.data.cache_dir,
        )  # fmt: skip
    else:
        det = fit_cell_detector(
            cell.classifier,
            {**hp, "backbone": cell.backbone},
            train,
            val,
            seed=seed,
            n_threads=n_jobs,
            device=device,
        )
    info = {"seed": seed, "hp": dict(hp), "n_train": len(train), "n_val": len(val)}
    result = _result(det, sets, val, cell, split, info)
    result.info["seconds_total"] = round(time.perf_counter() - t0, 3)
    return result


def evaluate_trial_ensemble(
    hps: list[dict], cell: DMCell, split: Split, *, n_jobs: int = 1, device: str = "cpu"
) -> EvaluationResult:
    """The average of ``cell.classifier`` trained with every set of ``hps`` (validated).

    Members that invert a generic anomaly are left out, and DDD keeps the distortions
    whose held-out AUC lies in the band; none left is ``EnsembleRefused`` naming what
    each member inverts or the AUCs reached.
    """
    from objectives.unsupervised.ddd import DDDBandError
    from objectives.unsupervised.ensemble import fit_trial_ensemble

    t0 = time.perf_counter()
    sets = load_sets(cell.data)
    train, val = _train_val(sets, split)
    seed = split.model_seed()
    with_backbone = [{**hp, "backbone": cell.backbone} for hp in hps]
    try:
        det = fit_trial_ensemble(
            cell.classifier, train, val, with_backbone, seed=seed, n_threads=n_jobs, device=device
        )
    except DDDBandError as exc:
        raise EnsembleRefused(str(_band_error(exc))) from None
    info = {
        "seed": seed,
        "hp": [dict(hp) for hp in hps],
        "n_members": len(hps),
        "n_train": len(train),
        "n_val": len(val),
    }
    result = _result(det, sets, val, cell, split, info)
    result.info["seconds_total"] = round(time.perf_counter() - t0, 3)
    return result
