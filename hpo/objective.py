"""The objective of a trial: hyperparameters -> ``repetitions`` half-statistics evaluations.

Repetition ``j`` always uses run index ``j`` (the same split and model seeds
for every trial, as in the paper; with ``final.holdout = "reserved"`` its held-out
half leaves the reserved events out, :mod:`hpo.holdout`). The study's enqueued
defaults trial (``search.enqueue_defaults``) trains the method's defaults, those
outside the search space included. Every selection metric is stored per
repetition and averaged as trial user attributes; the averaged driving
metric is the trial's value. SIC curves go to the artifact store, never into
user attributes. A multi-signal test set (unsupervised cells) also stores its
per-signal truth, averaged over repetitions, as ``per_signal``.
"""

from __future__ import annotations

import io
import logging
import math
import time

import numpy as np
import optuna

from hpo.cells import CampaignCell, campaign_cells
from hpo.config import Campaign
from hpo.defaults_trial import trial_space
from hpo.holdout import RESERVE_ATTR, search_reserve, search_split
from hpo.metric_text import label, shown, value_text
from hpo.pruners import reported_value
from hpo.spaces import hyperparameters, space_for, suggest
from workers.gate import hold
from workers.signals import safe_point, shielded

__all__ = ["make_objective", "mean_metrics"]

log = logging.getLogger(__name__)


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def mean_metrics(per_rep: list[dict[str, float]]) -> dict[str, float]:
    """Average each metric over repetitions, ignoring NaN (no truth available)."""
    return {key: _nanmean([r[key] for r in per_rep]) for key in per_rep[0]}


def _mean_per_signal(per_rep: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Signal -> each truth metric averaged over repetitions (NaN ignored)."""
    return {name: mean_metrics([r[name] for r in per_rep]) for name in per_rep[0]}


def _sic_artifact(trial: optuna.Trial, run_dir, curves: dict[str, np.ndarray]) -> None:
    from storage.artifacts import artifact_store, upload_file

    buf = io.BytesIO()
    np.savez_compressed(buf, **curves)
    path = run_dir / "tmp" / f"sic-{trial.study.study_name}-{trial.number}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    try:
        upload_file(artifact_store(run_dir), trial, path, mimetype="application/octet-stream")
    finally:
        path.unlink(missing_ok=True)


def _record(
    trial, campaign, metrics, per_rep, truth_sic, per_signal, hp, curves, cpu_start
) -> dict[str, float]:
    """Store the repetitions done (means, per repetition, truth, CPU seconds) as user attrs.

    ``cpu_s`` is the worker process's CPU time over the trial (every thread), so a
    trial's cost reads the same on a busy node as on an idle one. Returns the means.
    """
    avg = mean_metrics(per_rep)
    cpu_s = round(time.process_time() - cpu_start, 3)
    with shielded():  # storage writes are never cut half-way by a stop signal
        trial.set_user_attr("cpu_s", cpu_s)
        # the share of each class its repetitions kept out (final.holdout = "reserved")
        trial.set_user_attr(RESERVE_ATTR, search_reserve(campaign))
        for m in metrics:
            trial.set_user_attr(m, avg[m])
            trial.set_user_attr(f"{m}_per_rep", [r[m] for r in per_rep])
            if label(m) != m:  # what separates trials, for the dashboard (BCE: ln 2 - BCE)
                trial.set_user_attr(label(m), shown(m, avg[m]))
            # truth performance (test max SIC) of the ensemble each metric selects
            if truth_sic[m]:
                trial.set_user_attr(f"truth_max_sic_{m}", _nanmean(truth_sic[m]))
        if per_signal:  # a multi-signal test set: each signal's truth
            trial.set_user_attr("per_signal", _mean_per_signal(per_signal))
        trial.set_user_attr("hp", hp)
        try:
            if curves:
                _sic_artifact(trial, campaign.run_dir, curves)
        except Exception as exc:  # artifacts are a convenience, never lose a trial
            log.warning("could not store SIC curves of trial %d: %s", trial.number, exc)
    return avg


def cell_objective(cc: CampaignCell):
    """The objective of one cell's study."""
    campaign = cc.campaign
    pruner = campaign.search.pruner
    clf = cc.point.classifier
    fixed = campaign.search.fixed.get(clf, {})
    space = space_for(clf, campaign.search.space.get(clf), fixed)
    metrics, driving = cc.metrics, cc.objective

    def objective(trial: optuna.Trial) -> float:
        from objectives.evaluate import evaluate

        cpu_start = time.process_time()
        params = suggest(trial, trial_space(trial, clf, space, fixed))
        hold(f"{cc.study_name}#{trial.number}")  # tests only: WSAD_GATE_DIR
        hp = hyperparameters(clf, params, fixed)
        cell = cc.cell()
        per_rep: list[dict[str, float]] = []
        truth_sic: dict[str, list[float]] = {m: [] for m in metrics}
        per_signal: list[dict[str, dict[str, float]]] = []
        curves = {}
        for j in range(campaign.search.repetitions):
            safe_point()  # a stop signal ends the trial between repetitions
            result = evaluate(
                hp,
                cell,
                search_split(campaign, j),
                n_jobs=campaign.search.n_jobs,
                device=campaign.search.device,
            )
            per_rep.append({m: result.metrics[m] for m in metrics})
            for m in metrics:
                if "max_sic" in result.truth[m]:  # not for a multi-signal test set
                    truth_sic[m].append(result.truth[m]["max_sic"])
            if result.per_signal:
                per_signal.append(result.per_signal)
            if driving in result.curves and result.curves[driving].tpr.size:
                curves[f"rep{j}"] = result.curves[driving].downsampled()
            log.info(
                "%s trial %d rep %d: %s",
                cc.study_name,
                trial.number,
                j,
                ", ".join(value_text(m, v, digits=4) for m, v in per_rep[-1].items()),
            )
            if pruner != "none" and j + 1 < campaign.search.repetitions:
                values = [r[driving] for r in per_rep]
                trial.report(reported_value(pruner, values), step=j)
                if trial.should_prune():
                    _record(
                        trial,
                        campaign,
                        metrics,
                        per_rep,
                        truth_sic,
                        per_signal,
                        hp,
                        curves,
                        cpu_start,
                    )
                    log.info(
                        "%s trial %d pruned after %d repetitions",
                        cc.study_name,
                        trial.number,
                        j + 1,
                    )
                    raise optuna.TrialPruned(f"pruned after {j + 1} repetitions")
        avg = _record(
            trial, campaign, metrics, per_rep, truth_sic, per_signal, hp, curves, cpu_start
        )
        return avg[driving]

    return objective


def make_objective(campaign: Campaign):
    """One callable for every study of the campaign, dispatching on the study name."""
    by_name = {cc.study_name: cell_objective(cc) for cc in campaign_cells(campaign)}

    def objective(trial: optuna.Trial) -> float:
        return by_name[trial.study.study_name](trial)

    return objective
