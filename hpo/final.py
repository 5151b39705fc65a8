"""Final classifier runs: picked hyperparameters on half and full statistics.

For each cell, each hyperparameter source (the selection metrics of the
export, plus ``default`` when ``final.defaults``) and each statistics
setting, ``n_runs`` runs are trained (run ``j`` uses the hyperparameters
picked on repetition ``j``). Outputs::

    <run_dir>/final/<cell key>/<source>/<statistics>/run<j>.npz   test scores, ROC, SIC
    <run_dir>/final/<cell key>/<source>/<statistics>/summary.json

A run whose ``.npz`` already exists is skipped, so ``hpo final`` resumes.
The headline of a source picked by metric ``m`` is the ensemble selected by
``m`` (the NN's epoch choice); default-hyperparameter runs report every
selection.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from hpo.cells import CampaignCell, campaign_cells, final_sources
from hpo.config import Campaign
from hpo.errors import UsageError
from hpo.export import load_exported
from hpo.provenance import campaign_provenance
from hpo.spaces import hyperparameters
from objectives.files import atomic_write_bytes, atomic_write_json
from objectives.metrics import band

__all__ = [
    "FinalError",
    "count_finished",
    "final_dir",
    "final_groups",
    "picked_hyperparameters",
    "run_final",
    "run_units",
    "summarise",
]

log = logging.getLogger(__name__)


def final_dir(campaign: Campaign, cell_key: str, source: str, statistics: str) -> Path:
    """Folder of one (cell, hyperparameter source, statistics) set of final runs."""
    return campaign.run_dir / "final" / cell_key / source / statistics


def picked_hyperparameters(cc: CampaignCell, source: str, run: int) -> tuple[dict, dict]:
    """``(hp, how they were picked)`` of run ``run``: exported by ``source``, or the defaults."""
    campaign, clf = cc.campaign, cc.point.classifier
    fixed = campaign.search.fixed.get(clf, {})
    if source == "default":
        return hyperparameters(clf, {}, fixed, final=True), {"source": "default"}
    record = load_exported(campaign, cc.key, source, run)
    hp = hyperparameters(clf, record["params"], fixed, final=True)
    picked = {
        "source": source,
        "trial_number": record["provenance"]["trial_number"],
        "repetition": record["repetition"],
        "value": record["value"],
    }
    return hp, picked


def _provenance(cc: CampaignCell) -> dict:
    return {"study": cc.study_name, **campaign_provenance(cc.campaign)}


def _run_one(cc: CampaignCell, source: str, statistics: str, run: int, out: Path) -> dict:
    from objectives.evaluate import evaluate

    hp, picked = picked_hyperparameters(cc, source, run)
    cell = cc.cell()
    s = cc.campaign.search
    result = evaluate(hp, cell, statistics, run=run, n_jobs=s.n_jobs, device=s.device)
    y_test = result.y_test if result.y_test is not None else np.zeros(0, np.int8)
    arrays = {"y_test": y_test}
    for sel, scores in result.scores.items():
        curve = result.curves[sel]
        arrays.update(
            {
                f"scores_{sel}": scores.astype(np.float32),
                f"tpr_{sel}": curve.tpr,
                f"fpr_{sel}": curve.fpr,
                f"sic_{sel}": curve.sic,
            }
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
    atomic_write_json(out / f"run{run}.json", record)
    return record


def summarise(campaign: Campaign, cc: CampaignCell, source: str, statistics: str) -> dict:
    """Write ``summary.json`` from the run records present; returns it."""
    out = final_dir(campaign, cc.key, source, statistics)
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("run*.json"))]
    selections = cc.metrics if source == "default" else (source,)
    label_free = [m for m in cc.metrics if m != "max_sic"]
    summary = {
        "cell": {"key": cc.key, **cc.point.to_dict()},
        "source": source,
        "statistics": statistics,
        "headline_selection": source if source != "default" else selections[0],
        "runs": [
            {
                "run": r["run"],
                "max_sic": {s: r["truth"][s]["max_sic"] for s in selections},
                "auc": {s: r["truth"][s]["auc"] for s in selections},
                # label-free metrics of the run: held out on half statistics
                "label_free": {m: r["metrics"].get(m) for m in label_free},
                "picked": r["picked"],
            }
            for r in runs
        ],
        "max_sic": {s: band([r["truth"][s]["max_sic"] for r in runs]) for s in selections},
        "label_free": {m: band([r["metrics"].get(m) for r in runs]) for m in label_free},
        "provenance": _provenance(cc),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


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
        for src in sources
        if src == "default" or src in cc.metrics
        for st in stats
    ]


def _finished(out: Path, run: int) -> bool:
    return (out / f"run{run}.npz").exists() and (out / f"run{run}.json").exists()


def _claim(out: Path, run: int) -> Path | None:
    """Claim run ``run`` for this process (a lock file); None if another live one holds it.

    A claim whose process is gone (killed) is taken over, so ``hpo final -w N`` resumes.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / f".run{run}.claim"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            host, _, pid = path.read_text(errors="replace").partition(":")
            alive = host != socket.gethostname() or _pid_alive(pid)
            if alive:
                return None
            path.unlink(missing_ok=True)  # left by a killed process
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{socket.gethostname()}:{os.getpid()}")
        return path
    return None


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def run_units(
    campaign: Campaign,
    groups: list[tuple[CampaignCell, str, str]],
    *,
    claim: bool = False,
    progress=None,
) -> int:
    """Train every final run of ``groups`` not done yet; returns how many this call trained.

    With ``claim`` (several processes on the same campaign) each run is claimed first,
    so the processes share the work and never train a run twice.
    """
    total, seen, trained = len(groups) * campaign.final.n_runs, 0, 0
    for cc, src, st in groups:
        out = final_dir(campaign, cc.key, src, st)
        for j in range(campaign.final.n_runs):
            seen += 1
            if _finished(out, j):
                continue
            held = _claim(out, j) if claim else None
            if claim and held is None:
                continue  # another process trains it
            try:
                if not _finished(out, j):
                    rec = _run_one(cc, src, st, j, out)
                    trained += 1
                    sel = src if src != "default" else cc.metrics[0]
                    log.info(
                        "final %s %s %s run %d: max SIC %.3g",
                        cc.key,
                        src,
                        st,
                        j,
                        rec["truth"][sel]["max_sic"],
                    )
            finally:
                if held is not None:
                    held.unlink(missing_ok=True)
            if progress:
                progress(seen, total, f"{cc.key} {src} {st} run {j}")
    return trained


def count_finished(campaign: Campaign, groups: list[tuple[CampaignCell, str, str]]) -> int:
    """Final runs of ``groups`` already on disk."""
    return sum(
        _finished(final_dir(campaign, cc.key, src, st), j)
        for cc, src, st in groups
        for j in range(campaign.final.n_runs)
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
    """
    groups = final_groups(campaign, cells, sources, statistics)
    if workers > 1:
        from workers.local import run_local

        total = len(groups) * campaign.final.n_runs

        def show() -> str:
            return f"[final {count_finished(campaign, groups)}/{total}]"

        logs = campaign.run_dir / "logs" / "final"
        run = run_local(workers, worker_argv, show, log_dir=logs)
        if run.exit_code:
            failed = [i for i, code in enumerate(run.codes) if code]
            raise FinalError(
                f"final process(es) {failed} failed (exit {run.exit_code}); logs in {logs}; "
                "the finished runs are kept: run the command again to resume"
            )
    else:
        run_units(campaign, groups, progress=progress)
    summaries = []
    for cc, src, st in groups:
        summarise(campaign, cc, src, st)
        summaries.append(final_dir(campaign, cc.key, src, st) / "summary.json")
    return summaries


class FinalError(RuntimeError):
    """Parallel final runs that did not all succeed; the message says where the logs are."""
