"""Plots and a table from the final summaries and the studies.

* ``max_sic_vs_signal``: median max SIC (16-84 % band) vs injected signal,
  one panel per (mode, rotation, statistics), a line per classifier and
  hyperparameter source;
* ``sic_curves``: median SIC curve over the final runs, per cell;
* ``argos_vs_truth``: every trial's ARGOS against its true max SIC (the
  paper's check that the label-free metric tracks the truth);
* unsupervised cells (DarkMachines data): the challenge's CSV, ROC curves per
  signal and eps_S at eps_B = 1e-2 / 1e-3 / 1e-4 (:mod:`hpo.challenge`).

Each plot is written as PNG and PDF into ``<run_dir>/report``; the SIC
curves are also attached to each study as an artifact for optuna-dashboard.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpo.cells import campaign_cells
from hpo.challenge import challenge_outputs
from hpo.config import Campaign
from hpo.plots import save_figure
from hpo.products import limit as exact_limit

__all__ = ["Report", "make_report", "summary_table"]

log = logging.getLogger(__name__)


@dataclass
class Report:
    folder: Path
    table: str
    files: list[Path]


def _summaries(campaign: Campaign) -> list[dict]:
    """Final summaries of the LHCO cells (the unsupervised ones are reported by hpo.challenge)."""
    root = campaign.run_dir / "final"
    summaries = [json.loads(p.read_text()) for p in sorted(root.glob("*/*/*/summary.json"))]
    return [s for s in summaries if "channel" not in s["cell"]]


def _fmt(band: dict) -> str:
    if not band or not band.get("n"):
        return "n/a"
    return f"{band['median']:.2f} [{band['q16']:.2f}, {band['q84']:.2f}]"


def summary_table(summaries: list[dict]) -> str:
    """A plain table: cell, hp source, statistics, max SIC per selection, label-free metrics."""
    header = ("cell", "hp source", "stat", "max SIC median [16%, 84%] (selection)", "label-free")
    rows = []
    for s in summaries:
        sics = "; ".join(f"{_fmt(b)} ({sel})" for sel, b in s["max_sic"].items())
        free = "; ".join(f"{m} {_fmt(b)}" for m, b in s.get("label_free", {}).items())
        rows.append((s["cell"]["key"], s["source"], s["statistics"], sics, free or "n/a"))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _plot_max_sic(summaries: list[dict], folder: Path, plt) -> list[Path]:
    panels: dict[tuple, dict[tuple, list]] = defaultdict(lambda: defaultdict(list))
    for s in summaries:
        c = s["cell"]
        sel = s["headline_selection"]
        band = s["max_sic"][sel]
        if not band.get("n"):
            continue
        label = (c["classifier"], s["source"] if s["source"] != "default" else f"default/{sel}")
        panels[(c["mode"], c["rotation"], c["feature_set"], s["statistics"])][label].append(
            (c["signal"], band["median"], band["q16"], band["q84"])
        )
    if not panels:
        return []
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4.2), squeeze=False)
    for ax, (key, lines) in zip(axes[0], sorted(panels.items()), strict=True):
        mode, rot, feats, stat = key
        for (clf, src), pts in sorted(lines.items()):
            pts = np.array(sorted(pts))
            yerr = [pts[:, 1] - pts[:, 2], pts[:, 3] - pts[:, 1]]
            ax.errorbar(
                pts[:, 0], pts[:, 1], yerr=yerr, marker="o", capsize=3, label=f"{clf}, hp: {src}"
            )
            if len(pts) > 1:
                ax.fill_between(pts[:, 0], pts[:, 2], pts[:, 3], alpha=0.15)
        ax.set_title(f"{mode}{' rotated' if rot else ''}, {feats}, {stat} statistics")
        ax.set_xlabel("injected signal events N")
        ax.set_ylabel("max SIC (median, 16-84 %)")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.legend(fontsize=7)
    return save_figure(fig, folder, "max_sic_vs_signal")


def _median_sic_curve(run_files: list[Path], selection: str):
    grid = np.linspace(1e-3, 1.0, 200)
    curves = []
    for f in run_files:
        with np.load(f) as z:
            if f"tpr_{selection}" not in z.files:  # no anomaly score (BackgroundFlow)
                continue
            tpr, sic = z[f"tpr_{selection}"], z[f"sic_{selection}"]
        if tpr.size:
            order = np.argsort(tpr)
            curves.append(np.interp(grid, tpr[order], sic[order], left=np.nan, right=np.nan))
    if not curves:
        return None
    arr = np.array(curves)
    keep = np.isfinite(arr).any(axis=0)
    arr, grid = arr[:, keep], grid[keep]
    with np.errstate(all="ignore"):
        return (
            grid,
            np.nanmedian(arr, 0),
            np.nanpercentile(arr, 16, 0),
            np.nanpercentile(arr, 84, 0),
        )


def _plot_sic_curves(campaign: Campaign, folder: Path, plt) -> dict[str, list[Path]]:
    by_cell: dict[str, list[Path]] = {}
    for cc in campaign_cells(campaign):
        root = campaign.run_dir / "final" / cc.key
        if not root.exists():
            continue
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        drawn = False
        for src_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            src = src_dir.name
            selection = src if src != "default" else cc.metrics[0]
            for stat_dir in sorted(p for p in src_dir.iterdir() if p.is_dir()):
                res = _median_sic_curve(sorted(stat_dir.glob("run*.npz")), selection)
                if res is None:
                    continue
                grid, med, lo, hi = res
                ax.plot(grid, med, label=f"hp {src}, {stat_dir.name}")
                ax.fill_between(grid, lo, hi, alpha=0.15)
                drawn = True
        if not drawn:
            plt.close(fig)
            continue
        limit = exact_limit(campaign, cc.point)
        if limit is not None:
            ax.plot(
                limit["tpr"],
                limit["sic"],
                color="black",
                ls="--",
                lw=1,
                label=f"exact likelihood ratio (max {limit['max_sic']:.1f})",
            )
        ax.set_xlabel("signal efficiency")
        ax.set_ylabel("SIC")
        ax.set_title(cc.key, fontsize=9)
        ax.legend(fontsize=7)
        by_cell[cc.study_name] = save_figure(fig, folder, f"sic_{cc.key}")
        plt.close(fig)
    return by_cell


def _plot_argos_vs_truth(campaign: Campaign, folder: Path, plt) -> list[Path]:
    import optuna
    from optuna.trial import TrialState

    from hpo.studies import open_created_storage

    storage = open_created_storage(campaign)
    points = {}
    for cc in campaign_cells(campaign):
        try:
            study = optuna.load_study(study_name=cc.study_name, storage=storage)
        except KeyError:
            continue
        xs, ys = [], []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            a, s = t.user_attrs.get("argos"), t.user_attrs.get("truth_max_sic_argos")
            if a is not None and s is not None and np.isfinite(a) and np.isfinite(s):
                xs.append(a)
                ys.append(s)
        if xs:
            points[cc.key] = (xs, ys)
    if not points:
        return []
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for key, (xs, ys) in points.items():
        ax.scatter(xs, ys, s=12, label=key, alpha=0.7)
    ax.set_xlabel("ARGOS (label-free, held-out half)")
    ax.set_ylabel("true max SIC (test set)")
    ax.set_title("every trial: ARGOS vs truth")
    ax.legend(fontsize=6)
    paths = save_figure(fig, folder, "argos_vs_truth")
    plt.close(fig)
    return paths


def _attach_to_studies(campaign: Campaign, sic_plots: dict[str, list[Path]]) -> None:
    import optuna
    import optuna.artifacts as oa

    from hpo.studies import open_created_storage
    from storage.artifacts import artifact_store

    storage = open_created_storage(campaign)
    store = artifact_store(campaign.run_dir)
    for study_name, paths in sic_plots.items():
        study = optuna.load_study(study_name=study_name, storage=storage)
        png = next(p for p in paths if p.suffix == ".png")
        if study.user_attrs.get("sic_plot_sha") == _digest(png):
            continue
        oa.upload_artifact(
            artifact_store=store, file_path=str(png), study_or_trial=study, mimetype="image/png"
        )
        study.set_user_attr("sic_plot_sha", _digest(png))


def _digest(path: Path) -> str:
    from objectives.files import file_sha256

    return file_sha256(path)[:16]


def make_report(campaign: Campaign) -> Report:
    """Write every plot and return the terminal table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = campaign.run_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    summaries = _summaries(campaign)
    files = _plot_max_sic(summaries, folder, plt)
    plt.close("all")
    sic_plots = _plot_sic_curves(campaign, folder, plt)
    files += [p for ps in sic_plots.values() for p in ps]
    files += _plot_argos_vs_truth(campaign, folder, plt)
    plt.close("all")
    dm_files, dm_table = challenge_outputs(campaign, folder, plt)
    files += dm_files
    plt.close("all")
    try:
        _attach_to_studies(campaign, sic_plots)
    except Exception as exc:  # the dashboard attachment must never fail the report
        log.warning("could not attach SIC plots to the studies: %s", exc)
    tables = ([summary_table(summaries)] if summaries else []) + ([dm_table] if dm_table else [])
    table = "\n\n".join(tables) or "no final summaries yet (run hpo final)"
    return Report(folder=folder, table=table, files=files)
