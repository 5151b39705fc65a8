"""Final classifier runs: picked hyperparameters on half and full statistics.

For each cell, each hyperparameter source (the selection metrics of the
export, plus ``default`` when ``final.defaults``, plus ``ensemble`` when
``final.ensemble``: the scores of every completed trial's hyperparameters
averaged, for the methods that can -- the poster's average over
hyperparameter choices) and each statistics setting, ``n_runs`` runs are
trained (run ``j`` uses the hyperparameters picked on repetition ``j``). Outputs::

    <run_dir>/final/<cell key>/<source>/<statistics>/run<j>.npz   test scores, ROC, SIC
    <run_dir>/final/<cell key>/<source>/<statistics>/summary.json

A run whose ``.npz`` already exists is skipped, so ``hpo final`` resumes, unless it
trained another trial than the export now picks (a re-export changed the pick): that
run is trained again. Each
run is claimed before it is trained (:mod:`hpo.claims`), so processes on one campaign
never train a run twice; a run another live process holds is left out of the summary
(``missing_runs``) and named by :class:`FinalIncomplete`.
The headline of a source picked by metric ``m`` is the ensemble selected by
``m`` (the NN's epoch choice); default-hyperparameter runs report every
selection. Runs on a multi-signal test set (unsupervised cells) also store the
signal of every test event (``test_signal``, ``signals``) and their truth per
signal; their summaries hold the band of every truth metric per signal.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hpo.cells import ENSEMBLE, CampaignCell, campaign_cells, cell_sources, final_sources
from hpo.claims import Claim, claim, read_claim
from hpo.config import Campaign
from hpo.errors import UsageError
from hpo.export import load_pick
from hpo.holdout import final_split, label_free_events, pick_fallback_warning, picked_value_bias
from hpo.pick_rule import runs_kept_defaults
from hpo.provenance import campaign_provenance
from hpo.spaces import hyperparameters
from objectives.errors import EnsembleRefused
from objectives.files import atomic_write_bytes, atomic_write_json
from objectives.metrics import band
from workers.gate import hold
from workers.signals import WorkerInterrupted, safe_point

__all__ = [
    "FinalError",
    "FinalIncomplete",
    "claim_path",
    "count_finished",
    "final_dir",
    "final_groups",
    "missing_runs",
    "picked_hyperparameters",
    "run_final",
    "run_units",
    "summarise",
]

log = logging.getLogger(__name__)


def final_dir(campaign: Campaign, cell_key: str, source: str, statistics: str) -> Path:
    """Folder of one (cell, hyperparameter source, statistics) set of final runs."""
    return campaign.run_dir / "final" / cell_key / source / statistics


def _complete_trials(cc: CampaignCell) -> list:
    """The cell's completed trials, by trial number (``ExportError`` if none)."""
    import optuna
    from optuna.trial import TrialState

    from hpo.export import ExportError
    from hpo.studies import open_created_storage

    storage = open_created_storage(cc.campaign)
    study = optuna.load_study(study_name=cc.study_name, storage=storage)
    done = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    if not done:
        raise ExportError(f"{cc.study_name}: no complete trial to average (run the search first)")
    return done


def _ensemble_hps(cc: CampaignCell) -> tuple[list[dict], list[int]]:
    """Final-run hyperparameters of every completed trial of the cell, by trial number."""
    clf = cc.point.classifier
    fixed = cc.campaign.search.fixed.get(clf, {})
    done = _complete_trials(cc)
    hps = [hyperparameters(clf, t.params, fixed, final=True) for t in done]
    return hps, [t.number for t in done]


def picked_hyperparameters(
    cc: CampaignCell, source: str, run: int
) -> tuple[dict | list[dict], dict]:
    """``(hp, how they were picked)`` of run ``run``: exported by ``source``, the defaults,
    or (``ENSEMBLE``) every complete trial's, a list."""
    campaign, clf = cc.campaign, cc.point.classifier
    fixed = campaign.search.fixed.get(clf, {})
    if source == ENSEMBLE:
        hps, numbers = _ensemble_hps(cc)
        return hps, {"source": ENSEMBLE, "trial_numbers": numbers}
    if source == "default":
        picked = {"source": "default", **_defaults_at_search(cc, run)}
        return hyperparameters(clf, {}, fixed, final=True), picked
    record, name = load_pick(campaign, cc.key, source, run, campaign.final.pick)
    hp = hyperparameters(clf, record["params"], fixed, final=True)
    picked = {
        "source": source,
        "trial_number": record["provenance"]["trial_number"],
        "repetition": record["repetition"],
        "value": record["value"],
        "values_at_search": {source: record["value"]},
        # the export's rule kept the defaults trial (final.defaults_margin)
        "kept_defaults": bool(record.get("pick_rule", {}).get("kept_defaults")),
        **_pick_record(campaign, run, name),
    }
    return hp, picked


def _defaults_at_search(cc: CampaignCell, run: int) -> dict:
    """The defaults trial's values at search that run ``run`` reads its own against (the
    repetition-``run`` values under the per-repetition pick, else the means); {} without
    an exported defaults trial."""
    from hpo.export import load_defaults_trial

    record = load_defaults_trial(cc.campaign, cc.key)
    if record is None:
        return {}
    values = dict(record["metrics"])
    if cc.campaign.final.pick == "per_repetition":
        for m, per_rep in record["per_rep"].items():
            if per_rep and run < len(per_rep):
                values[m] = per_rep[run]
    return {"trial_number": record["provenance"]["trial_number"], "values_at_search": values}


def _pick_record(campaign: Campaign, run: int, name: str) -> dict:
    """Which exported pick a run used (``final.pick``), and whether it fell back."""
    fallback = campaign.final.pick == "per_repetition" and name == "best.json"
    return {"pick": campaign.final.pick, "file": name, "fallback": fallback}


def _provenance(cc: CampaignCell) -> dict:
    return {"study": cc.study_name, **campaign_provenance(cc.campaign)}


def _run_one(cc: CampaignCell, source: str, statistics: str, run: int, out: Path) -> dict:
    from objectives.evaluate import evaluate, evaluate_ensemble

    hp, picked = picked_hyperparameters(cc, source, run)
    cell = cc.cell()
    s = cc.campaign.search
    run_it = evaluate_ensemble if source == ENSEMBLE else evaluate
    split = final_split(cc.campaign, statistics, run)
    try:
        result = run_it(hp, cell, split, n_jobs=s.n_jobs, device=s.device)
    except EnsembleRefused as exc:  # nothing to average: recorded, the other runs go on
        (out / f"run{run}.npz").unlink(missing_ok=True)
        record = {"run": run, "hp": hp, "picked": picked, "refused": str(exc)}
        atomic_write_json(out / f"run{run}.json", record | {"provenance": _provenance(cc)})
        return record
    y_test = result.y_test if result.y_test is not None else np.zeros(0, np.int8)
    arrays = {"y_test": y_test}
    if result.test_signal is not None:
        arrays.update(test_signal=result.test_signal, signals=np.asarray(result.signals, dtype=str))
    if result.test_weight is not None:
        arrays["test_weight"] = result.test_weight
    for name, scores in result.parts.items():  # dSVDD's members, one per latent dimension
        arrays[f"part_{name}"] = scores.astype(np.float32)
    for sel, scores in result.scores.items():
        arrays[f"scores_{sel}"] = scores.astype(np.float32)
        curve = result.curves.get(sel)
        if curve is not None:
            arrays.update(
                {f"tpr_{sel}": curve.tpr, f"fpr_{sel}": curve.fpr, f"sic_{sel}": curve.sic}
            )
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(out / f"run{run}.npz", buf.getvalue())
    record = {
        "run": run,
        "hp": hp,
        "picked": picked,
        "metrics": result.metrics,
        "truth": result.truth,
        "info": result.info,
        "provenance": _provenance(cc),
    }
    if result.per_signal:
        record["per_signal"] = result.per_signal
    atomic_write_json(out / f"run{run}.json", record)
    return record


def summarise(campaign: Campaign, cc: CampaignCell, source: str, statistics: str) -> dict:
    """Write ``summary.json`` from the run records present; returns it."""
    out = final_dir(campaign, cc.key, source, statistics)
    records = [json.loads(p.read_text()) for p in sorted(out.glob("run*.json"))]
    runs = [r for r in records if "refused" not in r]
    selections = cc.metrics if source in ("default", ENSEMBLE) else (source,)
    label_free = [m for m in cc.metrics if m in cc.method.label_free]
    truth_keys = sorted({k for r in runs for s in selections for k in r["truth"][s]})
    summary = {
        "cell": {"key": cc.key, **cc.point.to_dict()},
        "source": source,
        "statistics": statistics,
        "headline_selection": source if source in selections else selections[0],
        "runs": [
            {
                "run": r["run"],
                "max_sic": {s: r["truth"][s].get("max_sic") for s in selections},
                "auc": {s: r["truth"][s].get("auc") for s in selections},
                # label-free metrics of the run: held out on half statistics
                "label_free": {m: r["metrics"].get(m) for m in label_free},
                "picked": r["picked"],
            }
            for r in runs
        ],
        "max_sic": {s: band([r["truth"][s].get("max_sic") for r in runs]) for s in selections},
        # every truth metric of the selection's ensemble (median, 16-84 % over runs)
        "truth": {
            s: {k: band([r["truth"][s].get(k) for r in runs]) for k in truth_keys}
            for s in selections
        },
        "label_free": {m: band([r["metrics"].get(m) for r in runs]) for m in label_free},
        **_out_of_sample(campaign, source, statistics, runs, label_free),
        "provenance": _provenance(cc),
        # runs not on disk (held by another process): the bands above leave them out
        "missing_runs": _missing(campaign, out),
        # ensemble runs with nothing to average (objectives.errors.EnsembleRefused)
        "refused_runs": [{"run": r["run"], "why": r["refused"]} for r in records if "refused" in r],
    }
    signals = sorted({name for r in runs for name in r.get("per_signal", {})})
    if signals:
        summary["per_signal"] = {
            name: {
                k: band([r.get("per_signal", {}).get(name, {}).get(k) for r in runs])
                for k in sorted({k for r in runs for k in r.get("per_signal", {}).get(name, {})})
            }
            for name in signals
        }
    atomic_write_json(out / "summary.json", summary)
    return summary


def _out_of_sample(
    campaign: Campaign, source: str, statistics: str, runs: list[dict], label_free: list[str]
) -> dict:
    """Where the label-free values come from, which pick the runs used, and (a searched
    source on half statistics) how much better its picked value looked at search."""
    out: dict = {
        "label_free_on": label_free_events(campaign, statistics),
        "holdout": campaign.final.holdout if statistics == "half" else None,
    }
    if statistics == "half" and source != ENSEMBLE:
        shifts = {m: picked_value_bias(runs, m) for m in label_free}
        out["search_bias"] = {m: b for m, b in shifts.items() if b is not None}
    if source in ("default", ENSEMBLE):
        return out
    out["pick"] = campaign.final.pick
    # runs whose pick is the defaults trial (the export's rule, final.defaults_margin)
    out["kept_defaults"] = runs_kept_defaults(runs)
    out["pick_fallback_runs"] = [r["run"] for r in runs if r["picked"].get("fallback")]
    return out


def _nothing_picked(cc: CampaignCell, source: str) -> bool:
    """Whether the export found no finite value of metric ``source`` in the cell's trials.

    eps_S at a background efficiency the test set cannot measure (fewer than 1 / eps_B
    test background events) is nan in every trial: there is nothing to pick, so its
    final runs are skipped (with a warning) instead of failing the other sources.
    """
    from hpo.export import hp_dir

    if source in ("default", ENSEMBLE):
        return False
    exported = hp_dir(cc.campaign, cc.key, source).parent.is_dir()
    if exported and not hp_dir(cc.campaign, cc.key, source).is_dir():
        log.warning("%s: no trial has a finite %s; no final runs picked by it", cc.key, source)
        return True
    return False


def final_groups(
    campaign: Campaign,
    cells: Iterable[str] | None,
    sources: Iterable[str] | None,
    statistics: Iterable[str] | None,
) -> list[tuple[CampaignCell, str, str]]:
    """Every (cell, source, statistics) asked for; UsageError for an unknown name."""
    wanted_cells = set(cells) if cells else None
    known = {n for cc in campaign_cells(campaign) for n in (cc.key, cc.study_name)}
    for name in sorted((wanted_cells or set()) - known):
        raise UsageError(f"--cell {name}: no such cell in {campaign.path}")
    all_sources = final_sources(campaign)
    sources = list(sources) if sources else all_sources
    unknown = sorted(set(sources) - set(all_sources))
    if unknown:
        raise UsageError(
            f"--source {unknown[0]}: not a hyperparameter source of this campaign; "
            f"valid: {', '.join(all_sources)}"
        )
    stats = list(statistics) if statistics else list(campaign.final.statistics)
    return [
        (cc, src, st)
        for cc in campaign_cells(campaign)
        if wanted_cells is None or cc.key in wanted_cells or cc.study_name in wanted_cells
        for src in cell_sources(cc, sources)
        if not _nothing_picked(cc, src)
        for st in stats
    ]


def _finished(out: Path, run: int) -> bool:
    """Trained (its scores and record on disk), or refused (its record says why)."""
    record = out / f"run{run}.json"
    return record.exists() and ((out / f"run{run}.npz").exists() or _refused(record))


def _refused(record: Path) -> bool:
    try:
        return "refused" in json.loads(record.read_text())
    except (OSError, ValueError):
        return False


def _stale(
    cc: CampaignCell, src: str, out: Path, run: int, complete: list[int] | None = None
) -> str | None:
    """Why finished run ``run`` of a searched source is out of date: it trained another
    trial than the export picks now (``hpo export`` ran again and changed the pick), or,
    for the ``ensemble`` source, averaged other trials than the study's complete ones
    now (the search went on; ``complete``: their numbers, read from the study if None)."""
    if src == "default":
        return None
    picked = json.loads((out / f"run{run}.json").read_text())["picked"]
    if src == ENSEMBLE:
        averaged = picked.get("trial_numbers")
        now = [t.number for t in _complete_trials(cc)] if complete is None else complete
        if averaged == now:
            return None
        return f"averaged {len(averaged or [])} trials; the study now has {len(now)} complete"
    trained = picked.get("trial_number")
    record, _ = load_pick(cc.campaign, cc.key, src, run, cc.campaign.final.pick)
    now = record["provenance"]["trial_number"]
    return None if trained == now else f"trained trial {trained}; the export now picks {now}"


def _done(cc: CampaignCell, src: str, out: Path, run: int) -> bool:
    """Finished, on the trial the export picks now."""
    return _finished(out, run) and not _stale(cc, src, out, run)


# ----------------------------------------------------------------------------- claims
def claim_path(out: Path, run: int) -> Path:
    """The claim file of run ``run`` in folder ``out`` (see :mod:`hpo.claims`)."""
    return out / f".run{run}.claim"


def _train_claimed(cc: CampaignCell, src: str, st: str, j: int, out: Path) -> bool | Claim:
    """Train run ``j`` under a claim: True if trained here, False if it was finished
    meanwhile, or the live :class:`Claim` of the process that trains it."""
    held = claim(claim_path(out, j))
    if isinstance(held, Claim):
        return held
    with held:
        if _done(cc, src, out, j):  # by the process whose claim ended just before ours
            return False
        hold(f"final {cc.key} {src} {st} run{j}")  # tests only: WSAD_GATE_DIR
        rec = _run_one(cc, src, st, j, out)
    if "refused" in rec:
        log.warning("final %s %s %s run %d refused: %s", cc.key, src, st, j, rec["refused"])
        return True
    truth = rec["truth"][src if src in rec["truth"] else cc.metrics[0]]
    log.info(
        "final %s %s %s run %d: %s",
        cc.key,
        src,
        st,
        j,
        ", ".join(f"{k} {v:.3g}" for k, v in truth.items() if v is not None),
    )
    return True


def run_units(
    campaign: Campaign,
    groups: list[tuple[CampaignCell, str, str]],
    *,
    progress=None,
) -> int:
    """Train every final run of ``groups`` not done yet; returns how many this call trained.

    Each run is claimed first (:mod:`hpo.claims`), so that the processes of ``hpo final
    -w N``, a second ``hpo final`` and SLURM jobs share the work and never train a run
    twice; a run another live process holds is skipped (:func:`missing_runs` names it).
    A stop signal takes effect between runs (and at the safe points inside training).
    """
    total, seen, trained = len(groups) * campaign.final.n_runs, 0, 0
    for cc, src, st in groups:
        out = final_dir(campaign, cc.key, src, st)
        complete = None  # the study's complete trials, read once per ensemble group
        for j in range(campaign.final.n_runs):
            seen += 1
            if _finished(out, j):
                if src == ENSEMBLE and complete is None:
                    complete = [t.number for t in _complete_trials(cc)]
                if (why := _stale(cc, src, out, j, complete)) is None:
                    continue
                log.warning("final %s %s %s run %d %s: training it again", cc.key, src, st, j, why)
            safe_point()
            done = _train_claimed(cc, src, st, j, out)
            if isinstance(done, Claim):
                log.warning(
                    "final %s %s %s run %d %s: skipped", cc.key, src, st, j, done.describe()
                )
                continue
            trained += done
            if progress:
                progress(seen, total, f"{cc.key} {src} {st} run {j}")
    return trained


def missing_runs(campaign: Campaign, groups: list[tuple[CampaignCell, str, str]]) -> list[str]:
    """One line per final run of ``groups`` not on disk, saying who holds its claim."""
    lines = []
    for cc, src, st in groups:
        out = final_dir(campaign, cc.key, src, st)
        for j in _missing(campaign, out):
            holder = read_claim(claim_path(out, j))
            why = holder.describe() if holder is not None and holder.live() else "not trained"
            lines.append(f"{cc.key}/{src}/{st} run {j} ({why})")
    return lines


def _missing(campaign: Campaign, out: Path) -> list[int]:
    return [j for j in range(campaign.final.n_runs) if not _finished(out, j)]


def count_finished(campaign: Campaign, groups: list[tuple[CampaignCell, str, str]]) -> int:
    """Final runs of ``groups`` already on disk."""
    return sum(
        _finished(final_dir(campaign, cc.key, src, st), j)
        for cc, src, st in groups
        for j in range(campaign.final.n_runs)
    )


# ----------------------------------------------------------------------------- processes
def _run_processes(campaign: Campaign, groups, workers: int, worker_argv) -> None:
    """Train the runs of ``groups`` in ``workers`` processes (``worker_argv(i)``); a stop
    signal reaches each of them (:func:`workers.local.run_local`) and is raised here as
    :class:`WorkerInterrupted` once they have stopped."""
    from workers.ids import unique_worker_id
    from workers.local import run_local

    total = len(groups) * campaign.final.n_runs

    def show() -> str:
        return f"[final {count_finished(campaign, groups)}/{total}]"

    names = [unique_worker_id(f"final-{i}") for i in range(workers)]
    logs = campaign.run_dir / "logs" / "final"
    run = run_local(workers, worker_argv, show, log_dir=logs, names=names.__getitem__)
    if run.interrupted is not None:
        raise WorkerInterrupted(run.interrupted)
    if run.exit_code:
        failed = [i for i, code in enumerate(run.codes) if code]
        raise FinalError(
            f"final process(es) {failed} failed (exit {run.exit_code}); logs in {logs}; "
            "the finished runs are kept: run the command again to resume"
        )


def run_final(
    campaign: Campaign,
    *,
    cells: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
    statistics: Iterable[str] | None = None,
    progress=None,
    workers: int = 1,
    worker_argv=None,
) -> list[Path]:
    """Train every final run not done yet and write the summaries; returns their paths.

    ``workers`` > 1 trains the runs in that many processes (``worker_argv(i)`` gives the
    command line of process ``i``: ``hpo final ... --claim``), sharing them by claims.

    Raises:
        FinalIncomplete: after writing the summaries, when runs are missing (another
            live process holds their claims); the message names each.
    """
    groups = final_groups(campaign, cells, sources, statistics)
    if (warning := pick_fallback_warning(campaign)) and any(
        src not in ("default", ENSEMBLE) for _, src, _ in groups
    ):
        log.warning("%s", warning.removeprefix("warning: "))
    if workers > 1:
        _run_processes(campaign, groups, workers, worker_argv)
    else:
        run_units(campaign, groups, progress=progress)
    summaries = []
    for cc, src, st in groups:
        summarise(campaign, cc, src, st)
        summaries.append(final_dir(campaign, cc.key, src, st) / "summary.json")
    missing = missing_runs(campaign, groups)
    if missing:
        total = len(groups) * campaign.final.n_runs
        raise FinalIncomplete(
            f"{len(missing)} of {total} final runs missing: {'; '.join(missing)}; "
            f"the summaries leave them out; run the command again once they are free"
        )
    return summaries


class FinalIncomplete(RuntimeError):
    """Final runs are missing after ``hpo final`` (held by another live process)."""


class FinalError(RuntimeError):
    """Parallel final runs that did not all succeed; the message says where the logs are."""
