"""Pick-best: the best trial per cell and selection metric, exported as JSON.

For each cell and each selection metric the export holds the overall best
trial (by the metric averaged over repetitions; with ``final.pick = "mean"`` the
defaults trial unless that trial beats it beyond noise, :mod:`hpo.pick_rule`) and, as
in the paper, the best trial per repetition column ``j``. ``final.pick`` says which a final run
uses: ``"mean"`` (the default) ``best.json`` in every run, ``"per_repetition"``
(the paper's) ``run<j>.json`` in run ``j`` (``best.json`` where the search had no
repetition ``j``, with a warning)::

    <run_dir>/hp/<cell key>/<metric>/best.json
    <run_dir>/hp/<cell key>/<metric>/run<j>.json
    <run_dir>/hp/<cell key>/defaults.json    the enqueued defaults trial's values, if complete

Each file carries provenance (campaign, cell, study, trial number, metric,
value, all metrics of that trial, package/Optuna/git versions, data file
hashes) and is written atomically. ``--yaml`` also writes the reference's
layout ``<clf>/<mode>[_rotated]/Nsig_<N>/run<j>_hp_<metric>.yaml`` so the
paper's plotting code can read the output.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.cells import CampaignCell, campaign_cells
from hpo.config import Campaign
from hpo.holdout import reserve_mismatch
from hpo.pick_rule import PickDecision, decide
from hpo.provenance import data_provenance, methods_provenance, stamp
from hpo.studies import open_created_storage
from objectives.files import atomic_write_json, atomic_write_text
from objectives.registry import DIRECTIONS

__all__ = [
    "ExportError",
    "defaults_path",
    "export_campaign",
    "hp_dir",
    "load_defaults_trial",
    "load_pick",
    "mean_pick",
    "yaml_path",
]

log = logging.getLogger(__name__)

#: Files written at once by an export (8,316 for the paper's grid)
WRITE_THREADS = 8


class ExportError(RuntimeError):
    """Cells that cannot be exported (no or too few complete trials); the message lists them."""


def hp_dir(campaign: Campaign, cell_key: str, metric: str) -> Path:
    """Folder of one cell's exported hyperparameters for one metric."""
    return campaign.run_dir / "hp" / cell_key / metric


def yaml_path(root: Path, cc: CampaignCell, metric: str, run: int) -> Path:
    """The reference's layout: ``<clf>/<mode>[_rotated]/Nsig_<N>/run<j>_hp_<metric>.yaml``.

    Unsupervised cells: ``<method>/<backbone>/chan<channel>/run<j>_hp_<metric>.yaml``.
    """
    p = cc.point
    if p.channel is not None:
        return root / p.classifier / p.mode / f"chan{p.channel}" / f"run{run}_hp_{metric}.yaml"
    mode = p.mode.lower() + ("_rotated" if p.rotation else "")
    prefix = Path(p.feature_set) if p.feature_set != "baseline" else Path()
    return root / prefix / p.classifier / mode / f"Nsig_{p.signal}" / f"run{run}_hp_{metric}.yaml"


def _value(trial: FrozenTrial, metric: str, rep: int | None) -> float:
    if rep is None:
        v = trial.user_attrs.get(metric)
    else:
        per_rep = trial.user_attrs.get(f"{metric}_per_rep") or []
        v = per_rep[rep] if rep < len(per_rep) else None
    return float("nan") if v is None else float(v)


def best_trial(
    trials: list[FrozenTrial], metric: str, rep: int | None = None
) -> FrozenTrial | None:
    """The best complete trial for ``metric`` (averaged, or in repetition ``rep``)."""
    scored = [(t, _value(t, metric, rep)) for t in trials]
    scored = [(t, v) for t, v in scored if not math.isnan(v)]
    if not scored:
        return None
    sign = 1.0 if DIRECTIONS[metric] == "maximize" else -1.0
    # ties: the earlier trial wins, so the choice is the same whichever process reads it
    return max(scored, key=lambda tv: (sign * tv[1], -tv[0].number))[0]


def _per_rep(trial: FrozenTrial, metric: str) -> list:
    return list(trial.user_attrs.get(f"{metric}_per_rep") or [])


def mean_pick(
    campaign: Campaign, done: list[FrozenTrial], metric: str
) -> tuple[FrozenTrial | None, dict | None]:
    """``best.json``'s trial and the rule's decision, with the plain best trial's number
    (``best_trial``; None where ``final.pick`` is not "mean" or nothing has a value).

    The best trial by its mean over repetitions, or the study's defaults trial where the
    best is not ahead of it by more than ``final.defaults_margin`` standard errors of
    their paired per-repetition differences (:func:`hpo.pick_rule.decide`).
    """
    from hpo.defaults_trial import is_defaults_trial

    best = best_trial(done, metric)
    margin = campaign.final.defaults_margin
    if best is None or campaign.final.pick != "mean":
        return best, None
    defaults = next((t for t in done if is_defaults_trial(t)), None)
    chosen = best
    if defaults is None:
        why = "no complete defaults trial: the plain best trial"
        decision = PickDecision(False, None, None, margin, 0, why)
    elif best is defaults:
        n = len(_per_rep(best, metric))
        decision = PickDecision(True, 0.0, None, margin, n, "the best trial is the defaults")
    else:
        decision = decide(
            _per_rep(best, metric), _per_rep(defaults, metric), DIRECTIONS[metric], margin
        )
        chosen = defaults if decision.kept_defaults else best
    return chosen, {"best_trial": best.number, **decision.to_dict()}


def _log_decisions(campaign: Campaign, decisions: list[tuple[str, str, dict]]) -> None:
    """One line: how many mean picks are the defaults, by the rule or as the best trial;
    each decision at debug level (``hpo --debug export``)."""
    if not decisions:
        return
    for key, metric, d in decisions:
        log.debug("pick rule %s %s: best trial %d: %s", key, metric, d["best_trial"], d["reason"])
    kept = [d for *_, d in decisions if d["kept_defaults"]]
    by_rule = sum(d["standard_error"] is not None for d in kept)
    plain = sum(not d["kept_defaults"] and d["standard_error"] is None for *_, d in decisions)
    log.info(
        "pick rule (final.defaults_margin = %g): best.json is the defaults trial in %d of %d "
        "cell/metric picks (%d kept against a trial not ahead beyond the margin, %d where it "
        "is the best trial)%s; `hpo --debug export` lists every decision",
        campaign.final.defaults_margin,
        len(kept),
        len(decisions),
        by_rule,
        len(kept) - by_rule,
        f"; the plain best in {plain} (no defaults trial, one repetition or margin 0)"
        if plain
        else "",
    )


def _record(
    cc: CampaignCell,
    study: optuna.Study,
    trial: FrozenTrial,
    metric: str,
    rep: int | None,
    common: dict,
) -> dict:
    """One exported file's content; ``common`` is the provenance shared by the export."""
    campaign = cc.campaign
    return {
        "classifier": cc.point.classifier,
        "params": dict(trial.params),
        "hp": trial.user_attrs.get("hp", dict(trial.params)),
        "metric": metric,
        "repetition": rep,
        "value": _value(trial, metric, rep),
        "metrics": {m: trial.user_attrs.get(m) for m in cc.metrics},
        "provenance": {
            "campaign": campaign.name,
            "campaign_file": str(campaign.path),
            "campaign_sha256": campaign.sha256,
            "cell": {"key": cc.key, **cc.point.to_dict()},
            "study": study.study_name,
            "trial_number": trial.number,
            **common,
        },
    }


def defaults_path(campaign: Campaign, cell_key: str) -> Path:
    """Where the export keeps the enqueued defaults trial's values of a cell."""
    return campaign.run_dir / "hp" / cell_key / "defaults.json"


def _defaults_record(
    cc: CampaignCell, study: optuna.Study, done: list[FrozenTrial], common: dict
) -> dict | None:
    """The complete defaults trial's values (mean and per repetition), or None.

    Nothing picked it, so its values at search are the reference a picked trial's are
    read against (``search_bias`` of the final summaries).
    """
    from hpo.defaults_trial import is_defaults_trial

    trial = next((t for t in done if is_defaults_trial(t)), None)
    if trial is None:
        return None
    record = _record(cc, study, trial, "defaults", None, common)
    del record["metric"], record["repetition"], record["value"]
    record["per_rep"] = {m: trial.user_attrs.get(f"{m}_per_rep") for m in cc.metrics}
    return record


def load_defaults_trial(campaign: Campaign, cell_key: str) -> dict | None:
    """The exported defaults trial of a cell (None: no complete one, or not exported)."""
    path = defaults_path(campaign, cell_key)
    return json.loads(path.read_text()) if path.exists() else None


def _to_yaml(record: dict) -> str:
    import yaml

    return yaml.safe_dump(
        {
            **record["hp"],
            "_provenance": record["provenance"],
            "_metric": record["metric"],
            "_value": record["value"],
        },
        sort_keys=True,
    )


def export_campaign(
    campaign: Campaign,
    *,
    storage=None,
    yaml_dir: Path | None = None,
    require_complete: bool = False,
) -> list[Path]:
    """Export every cell; refuse (listing them) cells with no complete trial.

    With ``require_complete`` every cell must also have reached its target
    number of complete trials (the SLURM pick-best job uses this).
    """
    from storage.bulk_read import bulk_read

    storage = storage or open_created_storage(campaign)
    with bulk_read():
        problems, loaded = _load_complete(campaign, storage, require_complete)
    if problems:
        raise ExportError(_describe_problems(problems))

    # versions, git revision and data hashes once per export, not once per file
    common = {**data_provenance(campaign), "methods": methods_provenance(campaign), **stamp()}
    files: list[tuple[Callable[[Path, Any], Path], Path, Any]] = []
    decisions = []
    for cc, study, done in loaded:
        for metric in cc.metrics:
            best, rule = mean_pick(campaign, done, metric)
            picks = {"best": best}
            for j in range(campaign.search.repetitions):
                picks[f"run{j}"] = best_trial(done, metric, j)
            for name, trial in picks.items():
                if trial is None:
                    log.warning(
                        "%s: no finite %s value, nothing exported for %s",
                        cc.study_name,
                        metric,
                        name,
                    )
                    continue
                rep = None if name == "best" else int(name[3:])
                record = _record(cc, study, trial, metric, rep, common)
                if rep is None and rule is not None:
                    record["pick_rule"] = rule
                    decisions.append((cc.key, metric, rule))
                path = hp_dir(campaign, cc.key, metric) / f"{name}.json"
                files.append((atomic_write_json, path, record))
                if yaml_dir is not None and rep is not None:
                    path = yaml_path(yaml_dir, cc, metric, rep)
                    files.append((atomic_write_text, path, _to_yaml(record)))
        if (record := _defaults_record(cc, study, done, common)) is not None:
            files.append((atomic_write_json, defaults_path(campaign, cc.key), record))
        log.info("exporting %s (%d complete trials)", cc.study_name, len(done))
    _write_all(files)
    _log_decisions(campaign, decisions)
    return [path for write, path, _ in files if write is atomic_write_json]


#: Incomplete cells named in the one-line export error (``--debug`` logs every one).
SHOWN_PROBLEMS = 3


def _describe_problems(problems: list[str]) -> str:
    """One line: the first incomplete cells, how many more (each logged at debug level)."""
    for problem in problems:
        log.debug("incomplete cell %s", problem)
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return f"cannot export; incomplete cells: {shown}" + (
        f"; and {more} more (`hpo --debug export` lists every one)" if more > 0 else ""
    )


def _load_complete(campaign: Campaign, storage, require_complete: bool):
    """(problems, [(cell, study, complete trials)]) over every cell of the campaign."""
    problems, loaded = [], []
    for cc in campaign_cells(campaign):
        if not cc.target_trials:
            continue  # nothing searched: nothing to export (hpo final uses its defaults)
        try:
            study = optuna.load_study(study_name=cc.study_name, storage=storage)
        except KeyError:
            problems.append(f"{cc.study_name}: no such study (run `hpo create` first)")
            continue
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not done:
            problems.append(f"{cc.study_name}: no complete trial")
        elif require_complete and len(done) < cc.target_trials:
            problems.append(f"{cc.study_name}: {len(done)} of {cc.target_trials} trials complete")
        elif why := reserve_mismatch(campaign, done):
            problems.append(f"{cc.study_name}: {why}")
        else:
            loaded.append((cc, study, done))
    return problems, loaded


def _write_all(files, threads: int = WRITE_THREADS) -> None:
    """Write every ``(writer, path, content)`` atomically, ``threads`` at a time (a file
    system's metadata latency, not its bandwidth, is what thousands of small files wait
    for: 5-8 ms per file here, 9x less with 8 at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(write, path, content) for write, path, content in files]
        for future in futures:
            future.result()  # the first error (a full disk, say) is raised here


def load_pick(
    campaign: Campaign, cell_key: str, metric: str, run: int, pick: str
) -> tuple[dict, str]:
    """``(record, file name)`` of the exported pick final run ``run`` uses.

    ``pick = "mean"``: ``best.json``; ``"per_repetition"``: ``run<j>.json``, else
    ``best.json`` (the search had fewer repetitions than final runs: the caller warns).
    """
    folder = hp_dir(campaign, cell_key, metric)
    names = ("best.json",) if pick == "mean" else (f"run{run}.json", "best.json")
    for name in names:
        path = folder / name
        if path.exists():
            return json.loads(path.read_text()), name
    raise ExportError(f"{folder}: no exported hyperparameters (run `hpo export` first)")
