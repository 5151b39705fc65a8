"""Report of the unsupervised cells: the challenge's CSV, ROC curves and eps_S per signal.

Read from the final runs of every unsupervised cell
(``final/<cell>/<source>/<statistics>/run<j>.npz``: test scores standardised
on held-out background, the signal of every test event); each number is the
median over the final runs (16-84 % band in the plots)::

    report/challenge_<statistics>.csv   Signal,Model,Chan,AUC,1e-2,1e-3,1e-4
    report/roc_<cell>.png|pdf           per signal: background vs signal efficiency
    report/eps_s_chan<channel>.png|pdf  eps_S at eps_B = 1e-2, 1e-3, 1e-4 per signal

``Model`` is ``<method>_<backbone>_<hp source>``; ``dSVDD+DDD_<backbone>_<source>``
is the poster's combination (the mean of the two cells' standardised scores, run
by run, where both cells have final runs) and ``ExactLR`` the exact likelihood
ratio (synthetic data: the optimum on that test set). The numbers come from
:mod:`objectives.unsupervised.metrics`; this module only collects and draws.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpo.cells import ENSEMBLE, CampaignCell, campaign_cells
from hpo.config import Campaign
from hpo.plots import save_figure, subplots

__all__ = ["RunSet", "challenge_outputs", "run_sets"]

log = logging.getLogger(__name__)

#: Which hp source stands for a cell in the eps_S plot, first found wins.
_HEADLINE_SOURCES = (ENSEMBLE, "default")


@dataclass
class RunSet:
    """The final runs of one unsupervised cell for one hp source and statistics."""

    cc: CampaignCell
    source: str
    statistics: str
    scores: list[np.ndarray]
    test_signal: np.ndarray
    signals: tuple[str, ...]

    @property
    def model(self) -> str:
        p = self.cc.point
        return f"{p.classifier}_{p.mode}_{self.source}"


def run_sets(campaign: Campaign) -> list[RunSet]:
    """Every (unsupervised cell, source, statistics) with final runs, in grid order."""
    out = []
    for cc in campaign_cells(campaign):
        root = campaign.run_dir / "final" / cc.key
        if cc.point.channel is None or not root.is_dir():
            continue
        for src_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for stat_dir in sorted(p for p in src_dir.iterdir() if p.is_dir()):
                runs = _read_runs(sorted(stat_dir.glob("run*.npz")), cc.metrics[0])
                if runs is not None:
                    out.append(RunSet(cc, src_dir.name, stat_dir.name, *runs))
    return out


def _read_runs(files: list[Path], selection: str):
    scores, test_signal, signals = [], None, ()
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            if "test_signal" not in z.files:
                return None
            scores.append(z[f"scores_{selection}"].astype(np.float64))
            test_signal, signals = z["test_signal"], tuple(str(s) for s in z["signals"])
    return (scores, test_signal, signals) if scores else None


def _bands(truths: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, np.ndarray]]:
    """Signal -> metric -> (median, q16, q84) over runs (nan-aware)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for name in truths[0]:
        out[name] = {}
        for metric in truths[0][name]:
            values = np.array([t[name][metric] for t in truths], dtype=float)
            with np.errstate(all="ignore"):
                out[name][metric] = (
                    np.nanpercentile(values, [50, 16, 84])
                    if np.isfinite(values).any()
                    else np.full(3, np.nan)
                )
    return out


def _truths(rs: RunSet, scores: list[np.ndarray]):
    from objectives.unsupervised.metrics import per_signal_truth

    return _bands([per_signal_truth(s, rs.test_signal, rs.signals) for s in scores])


def _combinations(sets: list[RunSet]) -> list[tuple[RunSet, list[np.ndarray]]]:
    """dSVDD + DDD per (backbone, channel, source, statistics) where both have runs."""
    from objectives.unsupervised.ensemble import combine_scores

    by_key: dict[tuple, dict[str, RunSet]] = defaultdict(dict)
    for rs in sets:
        p = rs.cc.point
        by_key[(p.mode, p.channel, rs.source, rs.statistics)][p.classifier] = rs
    out = []
    for members in by_key.values():
        if not {"dSVDD", "DDD"} <= set(members):
            continue
        a, b = members["dSVDD"], members["DDD"]
        if not np.array_equal(a.test_signal, b.test_signal):
            log.warning("dSVDD and DDD final runs of %s hold different test sets", a.cc.key)
            continue
        n = min(len(a.scores), len(b.scores))
        combined = [combine_scores([a.scores[j], b.scores[j]]) for j in range(n)]
        out.append((a, combined))
    return out


def _csv_rows(campaign: Campaign, sets: list[RunSet], statistics: str) -> list[dict]:
    from hpo.products import dm_limits
    from objectives.unsupervised.metrics import truth_row

    rows = []

    def add(model: str, channel: str, bands: dict) -> None:
        for name, metrics in bands.items():
            truth = {m: float(v[0]) for m, v in metrics.items()}
            rows.append(truth_row(truth, signal=name, model=model, channel=channel))

    chosen = [rs for rs in sets if rs.statistics == statistics]
    for rs in chosen:
        add(rs.model, rs.cc.point.channel, _truths(rs, rs.scores))
    for rs, combined in _combinations(chosen):
        model = f"dSVDD+DDD_{rs.cc.point.mode}_{rs.source}"
        add(model, rs.cc.point.channel, _truths(rs, combined))
    for channel in dict.fromkeys(rs.cc.point.channel for rs in chosen):
        limits = dm_limits(campaign, channel)
        for name, lim in (limits or {}).items():
            truth = {k: v for k, v in lim.items() if k not in ("eps_b", "eps_s")}
            rows.append(truth_row(truth, signal=name, model="ExactLR", channel=channel))
    return rows


def _plot_roc(campaign: Campaign, cell_sets: list[RunSet], folder: Path, plt) -> list[Path]:
    from hpo.products import dm_limits
    from objectives.darkmachines.cells import ROC_GRID
    from objectives.unsupervised.metrics import CHALLENGE_EFFICIENCIES, efficiency_curve

    cc = cell_sets[0].cc
    signals = cell_sets[0].signals
    limits = dm_limits(campaign, cc.point.channel) or {}
    fig, axes = subplots(plt, 1, len(signals))
    for k, (ax, name) in enumerate(zip(axes[0], signals, strict=True)):
        for rs in cell_sets:
            bkg, sig = rs.test_signal < 0, rs.test_signal == k
            curves = np.array([efficiency_curve(s[bkg], s[sig], ROC_GRID) for s in rs.scores])
            with np.errstate(all="ignore"):
                med = np.nanmedian(curves, axis=0)
            ax.plot(med, ROC_GRID, label=f"hp {rs.source}, {rs.statistics}")
            if len(curves) > 1:
                lo, hi = np.nanpercentile(curves, [16, 84], axis=0)
                ax.fill_betweenx(ROC_GRID, lo, hi, alpha=0.15)
        if name in limits:
            ax.plot(limits[name]["eps_s"], limits[name]["eps_b"], "k--", lw=1, label="exact LR")
        for eps in CHALLENGE_EFFICIENCIES:
            ax.axhline(eps, color="grey", lw=0.6, ls=":")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.6)  # random guessing
        ax.set_yscale("log")
        ax.set_ylim(1e-5, 1)
        ax.set_xlim(0, 1)
        ax.set_xlabel(rf"signal efficiency $\epsilon_S$ ({name})")
        if k == 0:
            ax.set_ylabel(r"background efficiency $\epsilon_B$")
            ax.legend(title=cc.key)
    paths = save_figure(fig, folder, f"roc_{cc.key}")
    plt.close(fig)
    return paths


def _plot_eps_s(campaign: Campaign, sets: list[RunSet], folder: Path, plt) -> list[Path]:
    """Per channel: eps_S at each challenge eps_B, per signal, for every cell's headline run."""
    from hpo.products import dm_limits
    from objectives.unsupervised.metrics import CHALLENGE_EFFICIENCIES, efficiency_label

    paths = []
    by_channel: dict[str, dict[str, tuple[tuple, RunSet]]] = defaultdict(dict)
    for rs in sets:
        stat_rank = (
            ("full", "half").index(rs.statistics) if rs.statistics in ("full", "half") else 2
        )
        order = (*_HEADLINE_SOURCES, rs.cc.objective)
        rank = (order.index(rs.source) if rs.source in order else len(order), stat_rank)
        current = by_channel[rs.cc.point.channel].get(rs.cc.key)
        if current is None or rank < current[0]:
            by_channel[rs.cc.point.channel][rs.cc.key] = (rank, rs)
    for channel, cells in by_channel.items():
        chosen = [rs for _, rs in cells.values()]
        signals = chosen[0].signals
        limits = dm_limits(campaign, channel) or {}
        effs = CHALLENGE_EFFICIENCIES
        fig, axes = subplots(plt, 1, len(effs))
        x = np.arange(len(signals))
        width = 0.8 / max(len(chosen), 1)
        for i, rs in enumerate(chosen):
            bands = _truths(rs, rs.scores)
            for ax, eps in zip(axes[0], effs, strict=True):
                key = f"eps_s_{efficiency_label(eps)}"
                med, lo, hi = (np.array([bands[n][key][q] for n in signals]) for q in range(3))
                ax.errorbar(
                    x + (i - (len(chosen) - 1) / 2) * width,
                    med,
                    yerr=[med - lo, hi - med],
                    fmt="o",
                    ms=4,
                    capsize=2,
                    label=f"{rs.cc.point.classifier} {rs.cc.point.mode} ({rs.source}, "
                    f"{rs.statistics})",
                )
        for ax, eps in zip(axes[0], effs, strict=True):
            key = f"eps_s_{efficiency_label(eps)}"
            if limits:
                ax.scatter(
                    x, [limits[n][key] for n in signals], marker="_", s=300, c="k", label="exact LR"
                )
            ax.axhline(eps, color="grey", lw=0.6, ls=":")  # random guessing
            ax.set_xticks(x, signals, rotation=30, ha="right")
            ax.set_xlim(-0.5, len(signals) - 0.5)
            ax.tick_params(axis="x", which="minor", bottom=False, top=False)
            ax.set_yscale("log")
            ax.set_ylabel(rf"$\epsilon_S$ at $\epsilon_B$ = {efficiency_label(eps)}")
        axes[0][0].legend(title=f"channel {channel}")
        paths += save_figure(fig, folder, f"eps_s_chan{channel}")
        plt.close(fig)
    return paths


def challenge_outputs(campaign: Campaign, folder: Path, plt) -> tuple[list[Path], str]:
    """Write the CSV files and plots of the unsupervised cells; returns (paths, table)."""
    from hpo.provenance import data_provenance, stamp
    from objectives.files import atomic_write_json, atomic_write_text
    from objectives.unsupervised.metrics import challenge_csv

    sets = run_sets(campaign)
    if not sets:
        return [], ""
    files: list[Path] = []
    tables = []
    for statistics in dict.fromkeys(rs.statistics for rs in sets):
        rows = _csv_rows(campaign, sets, statistics)
        path = folder / f"challenge_{statistics}.csv"
        files.append(atomic_write_text(path, challenge_csv(rows)))
        provenance = {"campaign": campaign.name, "campaign_sha256": campaign.sha256}
        provenance |= {"statistics": statistics, **data_provenance(campaign), **stamp()}
        atomic_write_json(path.with_suffix(".csv.json"), provenance)
        tables.append(f"{statistics} statistics ({path.name}):\n" + _table(rows))
    by_cell: dict[str, list[RunSet]] = defaultdict(list)
    for rs in sets:
        by_cell[rs.cc.key].append(rs)
    for cell_sets in by_cell.values():
        files += _plot_roc(campaign, cell_sets, folder, plt)
    files += _plot_eps_s(campaign, sets, folder, plt)
    return files, "\n\n".join(tables)


def _table(rows: list[dict]) -> str:
    header = ("Signal", "Model", "Chan", "AUC", "1e-2", "1e-3", "1e-4")
    cells = [header] + [
        tuple(str(r[c]) if c in header[:3] else f"{r[c]:.3f}" for c in header) for r in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells)
