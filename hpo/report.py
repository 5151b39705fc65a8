"""Plots and a table from the final summaries and the studies.

* ``max_sic_vs_signal``: median max SIC (16-84 % band) vs injected signal,
  one panel per (mode, rotation, statistics), a line per classifier and
  hyperparameter source;
* ``sic_curves``: median SIC curve over the final runs, per cell;
* ``argos_vs_truth``: every trial's ARGOS against its true max SIC (the
  paper's check that the label-free metric tracks the truth);
* ``selection_<panel>``: the paper's selection plot, from ``hpo select``: max SIC
  (median, 16-84 % band) vs injected signal of every detector of a group and of
  the detector selected per run by ARGOS, by BCE and by truth, with the exact
  likelihood-ratio limit on synthetic data; one panel per template, rotation,
  feature set (and region).
* unsupervised cells (DarkMachines data): the challenge's CSV, ROC curves per
  signal and eps_S at eps_B = 1e-2 / 1e-3 / 1e-4 (:mod:`hpo.challenge`).

Each plot is written as PNG and PDF into ``<run_dir>/report``; the SIC
curves are also attached to each study as an artifact for optuna-dashboard, and
each selection plot to every study of its groups.
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
from hpo.metric_text import band_text, label
from hpo.plots import pyplot, save_figure, subplots
from hpo.products import limit as exact_limit
from hpo.select import load_selections

__all__ = ["Report", "attach_plots", "make_report", "summary_table"]

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


def _overall_text(selected: dict) -> str:
    """`` (overall NN/default)``: the one detector a metric picks for the whole group."""
    overall = selected.get("overall")  # absent in summaries written before it existed
    return f" (overall {overall['detector']})" if overall else ""


def _selection_label(classifier: str, selection: str) -> str:
    """What a selection means for a method: the NN's epochs ranked by it, else the model."""
    return f"epochs by {selection}" if classifier == "NN" else selection


def _max_sic_text(s: dict) -> str:
    """Max SIC per selection; one number when every selection gave the same ensemble."""
    bands = s["max_sic"]
    if len(bands) > 1 and all(b == next(iter(bands.values())) for b in bands.values()):
        return f"{_fmt(next(iter(bands.values())))} (one ensemble for every selection)"
    clf = s["cell"]["classifier"]
    return "; ".join(f"{_fmt(b)} ({_selection_label(clf, sel)})" for sel, b in bands.items())


def _shift_text(metric: str, shift: dict) -> str:
    """``0.93 -> 1.20``: a value at search and in the final runs (medians)."""
    at, here = (
        band_text(metric, shift[k], digits=3).split(" [")[0] for k in ("at_search", "final")
    )
    return f"{at} -> {here}"


def _label_free_text(s: dict, defaults: dict | None = None) -> str:
    """The label-free bands, where they were computed, and the values at search.

    ``defaults``: the same cell's default-source summary (its defaults trial, picked by
    nothing, is the reference for how values move from the search to the final runs).
    """
    free = "; ".join(
        f"{label(m)} {band_text(m, b, digits=3)}" for m, b in s.get("label_free", {}).items()
    )
    if not free:
        return "n/a"
    on = s.get("label_free_on")
    if on:
        free = f"on the {on.split(' (')[0]}: {free}"
    if s.get("kept_defaults"):  # the export's rule kept the defaults trial as the pick
        free = f"the pick is the defaults trial; {free}"
    shifts = s.get("search_bias") or {}
    reference = (defaults or {}).get("search_bias") or {}
    for m, shift in shifts.items():
        if s["source"] == "default":
            free += f"; defaults trial {label(m)} at search -> here {_shift_text(m, shift)}"
            continue
        free += f"; picked {label(m)} at search -> here {_shift_text(m, shift)}"
        if m in reference:
            free += f" (defaults trial {_shift_text(m, reference[m])})"
    return free


def summary_table(summaries: list[dict], selections: list[dict] = ()) -> str:
    """A plain table: cell, hp source, statistics, max SIC per selection, label-free metrics.

    BCE shows as ``ln2-bce[1e-4]`` (:mod:`hpo.metric_text`). A default row whose
    selections share one ensemble prints its max SIC once; the NN's are epoch
    selections. Full-statistics label-free values are said to be on the training set.
    Then a line per selection group (``hpo select``): the max SIC reached by the detector
    each metric picked, how often each detector was picked and the one detector the
    metric picks for the whole group; ``max_sic`` there picks on half-statistics truth.
    """
    from hpo.select import picks_text, selection_name

    header = ("cell", "hp source", "stat", "max SIC median [16%, 84%] (selection)", "label-free")
    rows = []
    defaults = {
        (s["cell"]["key"], s["statistics"]): s for s in summaries if s["source"] == "default"
    }
    for s in summaries:
        free = _label_free_text(s, defaults.get((s["cell"]["key"], s["statistics"])))
        rows.append((s["cell"]["key"], s["source"], s["statistics"], _max_sic_text(s), free))
    for s in selections:
        sics = "; ".join(
            f"{_fmt(s['selected'][m]['max_sic'])} ({selection_name(m)})" for m in s["selections"]
        )
        picks = "; ".join(
            f"{selection_name(m)} picks {picks_text(s, m)}{_overall_text(s['selected'][m])}"
            for m in s["selections"]
        )
        group = f"select {s['group']['name']}"
        rows.append((group, "best detector per run", s["truth_statistics"], sics, picks))
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
    fig, axes = subplots(plt, 1, len(panels))
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
        ax.set_xlabel("injected signal events $N$")
        ax.set_ylabel("max SIC (median, 16-84 %)")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.legend(title=f"{mode}{' rotated' if rot else ''}, {feats}, {stat} statistics")
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
        fig, axes = subplots(plt)
        ax, drawn = axes[0][0], False
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
        ax.set_xlabel(r"signal efficiency $\epsilon_S$")
        ax.set_ylabel(r"SIC = $\epsilon_S\,/\,\epsilon_B^{1/2}$")
        ax.legend(title=cc.key)
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
    fig, axes = subplots(plt)
    ax = axes[0][0]
    for key, (xs, ys) in points.items():
        ax.scatter(xs, ys, s=24, label=key, alpha=0.7)
    ax.set_xlabel("ARGOS (label-free, held-out half)")
    ax.set_ylabel("true max SIC (test set)")
    ax.legend(title="every trial: ARGOS vs truth")
    paths = save_figure(fig, folder, "argos_vs_truth")
    plt.close(fig)
    return paths


_SELECTED_STYLE = {
    "argos": ("selected by ARGOS", "tab:red", "-"),
    "bce": ("selected by BCE", "tab:blue", "--"),
    "max_sic": ("selected by half-statistics truth (not a bound)", "black", ":"),
}


def _line(ax, pts: list[tuple], shift: float = 0.0, **style) -> None:
    """Median with 16-84 % error bars and band vs signal (drawn ``shift`` to the right).

    ``pts`` rows are (signal, median, q16, q84).
    """
    arr = np.array(sorted(pts), dtype=float)
    x = arr[:, 0] + shift
    yerr = [arr[:, 1] - arr[:, 2], arr[:, 3] - arr[:, 1]]
    bars = ax.errorbar(x, arr[:, 1], yerr=yerr, marker="o", capsize=3, **style)
    if len(arr) > 1:
        ax.fill_between(x, arr[:, 2], arr[:, 3], color=bars.lines[0].get_color(), alpha=0.12)


def _point(b: dict, signal: int) -> tuple | None:
    return (signal, b["median"], b["q16"], b["q84"]) if b.get("n") else None


def _plot_selection(selections: list[dict], folder: Path, plt) -> dict[str, list[Path]]:
    """One selection plot per panel; returns study name -> the plot of its panel."""
    panels: dict[str, list[dict]] = defaultdict(list)
    for s in selections:
        panels[s["group"]["panel"]].append(s)
    by_study: dict[str, list[Path]] = {}
    for panel, groups in sorted(panels.items()):
        fig, axes = subplots(plt, wide=1.3)
        ax = axes[0][0]
        detectors: dict[str, list] = defaultdict(list)
        chosen: dict[str, list] = defaultdict(list)
        one_detector: list[tuple] = []  # ARGOS's one detector for every run
        limit = []
        for s in groups:
            n = s["group"]["signal"]
            for name, d in s["detectors"].items():
                if (p := _point(d["max_sic"], n)) is not None:
                    detectors[name].append(p)
            for m in s["selections"]:
                if (p := _point(s["selected"][m]["max_sic"], n)) is not None:
                    chosen[m].append(p)
            overall = s["selected"].get("argos", {}).get("overall")
            if overall and (p := _point(overall["max_sic"], n)) is not None:
                one_detector.append(p)
            if s.get("exact_limit_max_sic") is not None:
                limit.append((n, s["exact_limit_max_sic"]))
        signals = [s["group"]["signal"] for s in groups]
        span = max(max(signals) - min(signals), 100)
        step = 0.012 * span  # the selected lines side by side
        ax.set_xlim(min(signals) - 0.06 * span, max(signals) + 0.06 * span)
        for name, pts in sorted(detectors.items()):
            _line(ax, pts, lw=1, alpha=0.6, ms=3, label=name)
        for k, (m, pts) in enumerate(chosen.items(), start=1):
            label, color, ls = _SELECTED_STYLE.get(m, (f"selected by {m}", None, "-"))
            _line(ax, pts, k * step, lw=2.2, ls=ls, color=color, ms=5, label=label)
        if one_detector:
            shift = (len(chosen) + 1) * step
            style = dict(lw=1.4, ls="-.", color="tab:red", mfc="white", ms=5)
            _line(ax, one_detector, shift, label="ARGOS: one detector for all runs", **style)
        if limit:
            xs, ys = zip(*sorted(limit), strict=True)
            ax.plot(
                xs, ys, color="grey", ls="--", marker="_", ms=16, label="exact likelihood ratio"
            )
        ax.set_xlabel("injected signal events $N$")
        ax.set_ylabel("max SIC (median, 16-84 %)")
        ax.legend(title=f"detector selection, {panel}", ncol=2)
        paths = save_figure(fig, folder, f"selection_{panel}")
        plt.close(fig)
        for s in groups:
            by_study.update({name: paths for name in s["group"]["studies"]})
    return by_study


def attach_plots(campaign: Campaign, plots: dict[str, list[Path]], attr: str) -> None:
    """Attach each study's PNG to it as an artifact (optuna-dashboard shows it).

    ``attr`` names the study user attribute that remembers the attached file's digest,
    so an unchanged plot is not attached twice.
    """
    import optuna
    import optuna.artifacts as oa

    from hpo.studies import open_created_storage
    from storage.artifacts import artifact_store

    storage = open_created_storage(campaign)
    store = artifact_store(campaign.run_dir)
    for study_name, paths in plots.items():
        study = optuna.load_study(study_name=study_name, storage=storage)
        png = next(p for p in paths if p.suffix == ".png")
        if study.user_attrs.get(attr) == _digest(png):
            continue
        oa.upload_artifact(
            artifact_store=store, file_path=str(png), study_or_trial=study, mimetype="image/png"
        )
        study.set_user_attr(attr, _digest(png))


def _digest(path: Path) -> str:
    from objectives.files import file_sha256

    return file_sha256(path)[:16]


def make_report(campaign: Campaign) -> Report:
    """Write every plot and return the terminal table."""
    from hpo.studies import open_created_storage

    open_created_storage(campaign)  # never created: said so, and nothing made on disk
    folder = campaign.run_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    summaries = _summaries(campaign)
    selections = load_selections(campaign)
    with pyplot(campaign.report) as plt:
        files = _plot_max_sic(summaries, folder, plt)
        plt.close("all")
        sic_plots = _plot_sic_curves(campaign, folder, plt)
        files += [p for ps in sic_plots.values() for p in ps]
        files += _plot_argos_vs_truth(campaign, folder, plt)
        selection_plots = _plot_selection(selections, folder, plt)
        files += sorted({p for ps in selection_plots.values() for p in ps})
        plt.close("all")
        dm_files, dm_table = challenge_outputs(campaign, folder, plt)
        files += dm_files
    for plots, attr in ((sic_plots, "sic_plot_sha"), (selection_plots, "selection_plot_sha")):
        try:
            attach_plots(campaign, plots, attr)
        except Exception as exc:  # the dashboard attachment must never fail the report
            log.warning("could not attach plots to the studies: %s", exc)
    tables = [summary_table(summaries, selections)] if summaries else []
    tables += [dm_table] if dm_table else []
    table = "\n\n".join(tables) or "no final summaries yet (run hpo final)"
    return Report(folder=folder, table=table, files=files)
