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

__all__ = ["band", "final_dir", "run_final", "summarise"]

log = logging.getLogger(__name__)


def final_dir(campaign: Campaign, cell_key: str, source: str, statistics: str) -> Path:
    """Folder of one (cell, hyperparameter source, statistics) set of final runs."""
    return campaign.run_dir / "final" / cell_key / source / statistics


def band(values: list[float | None]) -> dict[str, float]:
    """Median, 16 % and 84 % quantiles and count of the finite values (NaN when none)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"median": float("nan"), "q16": float("nan"), "q84": float("nan"), "n": 0}
    q16, q50, q84 = np.percentile(v, [16, 50, 84])
    return {"median": float(q50), "q16": float(q16), "q84": float(q84), "n": int(v.size)}


def _hp_for(cc: CampaignCell, source: str, run: int) -> tuple[dict, dict]:
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

    hp, picked = _hp_for(cc, source, run)
    cell = cc.cell()
    result = evaluate(hp, cell, statistics, run=run, n_jobs=cc.campaign.search.n_jobs)
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


def run_final(
    campaign: Campaign,
    *,
    cells: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
    statistics: Iterable[str] | None = None,
    progress=None,
) -> list[Path]:
    """Train every final run not done yet and write the summaries; returns their paths."""
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
    todo = [
        (cc, src, st)
        for cc in campaign_cells(campaign)
        if wanted_cells is None or cc.key in wanted_cells or cc.study_name in wanted_cells
        for src in sources
        if src == "default" or src in cc.metrics
        for st in stats
    ]
    summaries = []
    total, done = len(todo) * campaign.final.n_runs, 0
    for cc, src, st in todo:
        out = final_dir(campaign, cc.key, src, st)
        for j in range(campaign.final.n_runs):
            if not (out / f"run{j}.npz").exists() or not (out / f"run{j}.json").exists():
                rec = _run_one(cc, src, st, j, out)
                log.info(
                    "final %s %s %s run %d: max SIC %.3g",
                    cc.key,
                    src,
                    st,
                    j,
                    rec["truth"][src if src != "default" else cc.metrics[0]]["max_sic"],
                )
            done += 1
            if progress:
                progress(done, total, f"{cc.key} {src} {st} run {j}")
        summarise(campaign, cc, src, st)
        summaries.append(out / "summary.json")
    return summaries
