"""Report of the unsupervised cells: the challenge's CSV, ROC curves and eps_S per signal.

Read from the final runs of every unsupervised cell
(``final/<cell>/<source>/<statistics>/run<j>.npz``: test scores standardised
on held-out background, the signal of every test event, their weights where the
metrics use them, dSVDD's per-dimension parts); each number is the median over the
final runs (16-84 % band in the plots)::

    report/challenge_<statistics>.csv                Signal,Model,Chan,AUC,1e-2,1e-3,1e-4
    report/challenge_<statistics>_signal_labels.csv  the same columns: what used labels
    report/roc_<cell>.png|pdf           per signal: background vs signal efficiency
    report/eps_s_chan<channel>.png|pdf  eps_S at eps_B = 1e-2, 1e-3, 1e-4 per signal

``Model`` is ``<method>_<backbone>_<hp source>``; ``dSVDD_<backbone>_d<dim>_<source>``
a Deep SVDD member of one latent dimension (the challenge lists DeepSVDD per
dimension) beside the average; ``dSVDD+DDD_<backbone>_<source>`` the poster's
combination (the mean of the two cells' standardised scores, run by run, where both
cells have final runs). A baseline has no backbone, and one without hyperparameters
no source (``MET``, ``IsolationForest_default``).

The first file holds only what never saw a signal label: label-free hp sources
(``default``, ``ensemble``, label-free metrics), the baselines and, on synthetic data,
``BkgDensity`` (the signal-agnostic limit: how rare the background makes an event, in
object multiplicity and exact density). Rows whose
hyperparameters a truth metric picked (sources ``auc``, ``eps_s_*``) and
``ExactLR_supervised`` (the exact likelihood ratio: it knows the signal, so it bounds
supervised classifiers, not this family) go to ``_signal_labels.csv``, never beside
them. The report adds, per channel, the one-variable cuts the grid lacks and the exact
scores of synthetic data, so every report shows the detectors beside them; on
synthetic data it names the signals on which BkgDensity's AUC is below
``FINDABLE_AUC``: the background makes their events about as probable as its own, so
they lie in its bulk, out of reach of a detector that must not know the signal. Per
channel and signal it also says whether the best label-free detector row beats the best
baseline row (the cuts, IsolationForest, FlowDensity) in AUC (``beside_baselines``, also in
the label-free CSV's provenance): a detector is only worth running where it does. The
numbers come from :mod:`objectives.unsupervised.metrics` (weighted with the files' event
weights where they differ); this module only collects and draws.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpo.cells import ENSEMBLE, CampaignCell, campaign_cells
from hpo.config import Campaign
from hpo.plots import save_figure, subplots

__all__ = ["RunSet", "beside_baselines", "challenge_outputs", "learning_notes", "run_sets"]

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
    #: event weights of the test set (None: unweighted)
    weights: np.ndarray | None = None
    #: part name ("d5", ...) -> its scores in each run (dSVDD's members)
    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    @property
    def uses_labels(self) -> bool:
        """Whether a truth metric (signal labels) picked its hyperparameters."""
        from objectives.registry import ORACLES

        return self.source in ORACLES

    @property
    def model(self) -> str:
        """``<method>_<backbone>_<hp source>``; a baseline has no backbone, and one without
        hyperparameters (a cut, BkgDensity) no source: ``MET``, ``IsolationForest_default``."""
        from objectives.unsupervised.baselines import BASELINE_MODE

        p = self.cc.point
        parts = [p.classifier]
        parts += [p.mode] if p.mode != BASELINE_MODE else []
        parts += [self.source] if self.cc.searched else []
        return "_".join(parts)


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
                    out.append(RunSet(cc, src_dir.name, stat_dir.name, **runs))
    return out


def _read_runs(files: list[Path], selection: str) -> dict | None:
    scores, test_signal, signals, weights = [], None, (), None
    parts: dict[str, list[np.ndarray]] = defaultdict(list)
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            if "test_signal" not in z.files:
                return None
            scores.append(z[f"scores_{selection}"].astype(np.float64))
            test_signal, signals = z["test_signal"], tuple(str(s) for s in z["signals"])
            weights = z["test_weight"] if "test_weight" in z.files else None
            for key in z.files:
                if key.startswith("part_"):
                    parts[key.removeprefix("part_")].append(z[key].astype(np.float64))
    if not scores:
        return None
    parts = {name: runs for name, runs in parts.items() if len(runs) == len(scores)}
    return {
        "scores": scores,
        "test_signal": test_signal,
        "signals": signals,
        "weights": weights,
        "parts": parts,
    }


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

    return _bands([per_signal_truth(s, rs.test_signal, rs.signals, rs.weights) for s in scores])


def _curve(scores: np.ndarray, test_signal: np.ndarray, k: int, weights) -> np.ndarray:
    """Signal ``k``'s efficiency on the ROC grid against the test background (weighted)."""
    from objectives.darkmachines.cells import ROC_GRID
    from objectives.unsupervised.metrics import efficiency_curve

    bkg, sig = test_signal < 0, test_signal == k
    w = {} if weights is None else {"w_bkg": weights[bkg], "w_sig": weights[sig]}
    return efficiency_curve(scores[bkg], scores[sig], ROC_GRID, **w)


@dataclass(frozen=True)
class Reference:
    """A score the report shows beside the cells of a channel: a cut the grid lacks,
    or an exact score of synthetic data (the same test set)."""

    model: str
    #: the Model column's description in plots
    label: str
    #: knows the signal (the exact likelihood ratio): its rows go to the signal-labels file
    uses_labels: bool
    #: signal -> truth metrics
    truth: dict[str, dict[str, float]]
    #: signal -> signal efficiency on ROC_GRID
    curves: dict[str, np.ndarray]


_REFERENCES: dict[tuple, list[Reference]] = {}


def references(campaign: Campaign, channel: str, statistics: str) -> list[Reference]:
    """The channel's reference scores (computed once per process): the one-variable cuts
    that the grid lacks, and on synthetic data BkgDensity (unless the grid has it) and
    the exact likelihood ratio."""
    from hpo.products import dm_limits
    from objectives.unsupervised.baselines import CUTS

    memo = (campaign.sha256, str(campaign.run_dir), channel, statistics)
    if memo in _REFERENCES:
        return _REFERENCES[memo]
    out = [
        _cut_reference(campaign, cut, channel, statistics)
        for cut in CUTS
        if cut not in campaign.grid.classifiers
    ]
    exact = (
        ("BkgDensity", "BkgDensity (signal-agnostic limit)", False, "background_density"),
        ("ExactLR_supervised", "exact LR (supervised bound)", True, "likelihood_ratio"),
    )
    for model, label, labels, score in exact:
        if model in campaign.grid.classifiers:
            continue
        limits = dm_limits(campaign, channel, score)
        if limits:
            truth = {n: {k: v for k, v in lim.items() if k not in ("eps_b", "eps_s")}
                     for n, lim in limits.items()}  # fmt: skip
            curves = {n: lim["eps_s"] for n, lim in limits.items()}
            out.append(Reference(model, label, labels, truth, curves))
    _REFERENCES[memo] = out
    return out


def _cut_reference(campaign: Campaign, cut: str, channel: str, statistics: str) -> Reference:
    from hpo.data import dm_spec
    from objectives.darkmachines.cells import DMCell
    from objectives.evaluate import evaluate
    from objectives.unsupervised.baselines import BASELINE_MODE

    cell = DMCell(cut, BASELINE_MODE, dm_spec(campaign, channel))
    result = evaluate({}, cell, statistics)
    scores = result.scores[next(iter(result.scores))]
    curves = {
        name: _curve(scores, result.test_signal, k, result.test_weight)
        for k, name in enumerate(result.signals)
    }
    return Reference(cut, f"{cut} (one-variable cut)", False, result.per_signal, curves)


def out_of_reach(campaign: Campaign, channel: str) -> dict[str, float]:
    """Signal -> BkgDensity's AUC, for the signals of a synthetic channel where it is below
    ``FINDABLE_AUC`` (inside the background's bulk); {} on a user's files."""
    from hpo.products import dm_limits
    from objectives.unsupervised.baselines import FINDABLE_AUC

    limits = dm_limits(campaign, channel, "background_density") or {}
    return {n: float(lim["auc"]) for n, lim in limits.items() if lim["auc"] < FINDABLE_AUC}


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


def _csv_rows(
    campaign: Campaign, sets: list[RunSet], statistics: str
) -> tuple[list[dict], list[dict]]:
    """(label-free rows, rows that used signal labels) of one statistics setting."""
    from objectives.unsupervised.metrics import truth_row

    free: list[dict] = []
    labelled: list[dict] = []

    def add(model: str, channel: str, bands: dict, uses_labels: bool) -> None:
        for name, metrics in bands.items():
            truth = {m: float(v[0]) for m, v in metrics.items()}
            row = truth_row(truth, signal=name, model=model, channel=channel)
            (labelled if uses_labels else free).append(row)

    chosen = [rs for rs in sets if rs.statistics == statistics]
    for rs in chosen:
        channel = rs.cc.point.channel
        add(rs.model, channel, _truths(rs, rs.scores), rs.uses_labels)
        for part, runs in rs.parts.items():  # dSVDD per latent dimension
            p = rs.cc.point
            add(f"{p.classifier}_{p.mode}_{part}_{rs.source}", channel, _truths(rs, runs),
                rs.uses_labels)  # fmt: skip
    for rs, combined in _combinations(chosen):
        model = f"dSVDD+DDD_{rs.cc.point.mode}_{rs.source}"
        add(model, rs.cc.point.channel, _truths(rs, combined), rs.uses_labels)
    for channel in dict.fromkeys(rs.cc.point.channel for rs in chosen):
        for ref in references(campaign, channel, statistics):
            for name, truth in ref.truth.items():
                row = truth_row(truth, signal=name, model=ref.model, channel=channel)
                (labelled if ref.uses_labels else free).append(row)
    return free, labelled


def _median_curve(rs: RunSet, k: int) -> np.ndarray:
    """(median, q16, q84) of signal ``k``'s ROC curve over the run set's runs."""
    curves = np.array([_curve(s, rs.test_signal, k, rs.weights) for s in rs.scores])
    with np.errstate(all="ignore"):
        return np.nanpercentile(curves, [50, 16, 84], axis=0)


def _headlines(sets: list[RunSet]) -> dict[str, dict[str, RunSet]]:
    """Channel -> cell key -> the run set standing for the cell: a label-free source, the
    ensemble, else the defaults, else its objective; full statistics before half."""
    out: dict[str, dict[str, tuple[tuple, RunSet]]] = defaultdict(dict)
    for rs in sets:
        if rs.uses_labels:
            continue
        stat_rank = (
            ("full", "half").index(rs.statistics) if rs.statistics in ("full", "half") else 2
        )
        order = (*_HEADLINE_SOURCES, rs.cc.objective)
        rank = (order.index(rs.source) if rs.source in order else len(order), stat_rank)
        current = out[rs.cc.point.channel].get(rs.cc.key)
        if current is None or rank < current[0]:
            out[rs.cc.point.channel][rs.cc.key] = (rank, rs)
    return {ch: {key: rs for key, (_, rs) in cells.items()} for ch, cells in out.items()}


def _plot_roc(
    campaign: Campaign, cell_sets: list[RunSet], baselines: list[RunSet], folder: Path, plt
) -> list[Path]:
    """One cell's ROC curves per signal, beside the channel's baselines and references."""
    from objectives.darkmachines.cells import ROC_GRID
    from objectives.unsupervised.metrics import CHALLENGE_EFFICIENCIES

    cc = cell_sets[0].cc
    signals = cell_sets[0].signals
    refs = references(campaign, cc.point.channel, cell_sets[0].statistics)
    beside = [rs for rs in baselines if rs.cc.key != cc.key]
    fig, axes = subplots(plt, 1, len(signals))
    for k, (ax, name) in enumerate(zip(axes[0], signals, strict=True)):
        for rs in cell_sets:
            med, lo, hi = _median_curve(rs, k)
            labels = " (picked with signal labels)" if rs.uses_labels else ""
            ax.plot(med, ROC_GRID, label=f"hp {rs.source}{labels}, {rs.statistics}")
            if len(rs.scores) > 1:
                ax.fill_betweenx(ROC_GRID, lo, hi, alpha=0.15)
        for rs in beside:  # the baseline cells of the channel
            ax.plot(_median_curve(rs, k)[0], ROC_GRID, ":", lw=1, label=rs.model)
        for ref in refs:  # the baselines the grid lacks, and the exact scores
            if name in ref.curves:
                style = "k--" if ref.uses_labels else ":"
                ax.plot(ref.curves[name], ROC_GRID, style, lw=1, label=ref.label)
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
    """Per channel: eps_S at each challenge eps_B, per signal, for every cell's headline run
    (a label-free source) and the channel's references."""
    from objectives.unsupervised.metrics import CHALLENGE_EFFICIENCIES, efficiency_label

    paths = []
    for channel, cells in _headlines(sets).items():
        chosen = list(cells.values())
        signals = chosen[0].signals
        refs = references(campaign, channel, chosen[0].statistics)
        bulk = out_of_reach(campaign, channel)
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
        ticks = [f"{n}\n(bulk)" if n in bulk else n for n in signals]
        for ax, eps in zip(axes[0], effs, strict=True):
            key = f"eps_s_{efficiency_label(eps)}"
            for ref, marker in zip(refs, "_x+1234", strict=False):
                values = [ref.truth.get(n, {}).get(key, np.nan) for n in signals]
                color = "k" if ref.uses_labels else None
                ax.scatter(x, values, marker=marker, s=120, c=color, label=ref.label)
            ax.axhline(eps, color="grey", lw=0.6, ls=":")  # random guessing
            ax.set_xticks(x, ticks, rotation=30, ha="right")
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
    from hpo.data import skipped_channels
    from hpo.provenance import data_provenance, stamp
    from objectives.files import atomic_write_json, atomic_write_text
    from objectives.unsupervised.metrics import challenge_csv

    sets = run_sets(campaign)
    if not sets:
        return [], ""
    files: list[Path] = []
    tables = []
    channels = list(dict.fromkeys(rs.cc.point.channel for rs in sets))
    bulk = {ch: found for ch in channels if (found := out_of_reach(campaign, ch))}
    for statistics in dict.fromkeys(rs.statistics for rs in sets):
        free, labelled = _csv_rows(campaign, sets, statistics)
        verdicts = beside_baselines(free)  # label-free rows only: never a label-picked one
        notes = [_baselines_note(statistics, ch, v) for ch, v in verdicts.items()]
        for rows, suffix, what, extra, after in (
            (free, "", "label-free", {"beside_baselines": verdicts}, notes),
            (labelled, "_signal_labels", "used signal labels: hp picked by truth, exact LR",
             {}, []),
        ):  # fmt: skip
            if not rows:
                continue
            path = folder / f"challenge_{statistics}{suffix}.csv"
            files.append(atomic_write_text(path, challenge_csv(rows)))
            provenance = {"campaign": campaign.name, "campaign_sha256": campaign.sha256}
            provenance |= {"statistics": statistics, "rows": what}
            provenance |= {"out_of_reach": bulk, **data_provenance(campaign), **stamp()}
            atomic_write_json(path.with_suffix(".csv.json"), provenance | extra)
            tables.append(f"{statistics} statistics, {what} ({path.name}):\n" + _table(rows))
            tables += after
    tables += [_bulk_note(channel, found) for channel, found in bulk.items()]
    tables += learning_notes(campaign.run_dir)
    tables += [
        f"channel {channel} skipped: {why}" for channel, why in skipped_channels(campaign).items()
    ]
    by_cell: dict[str, list[RunSet]] = defaultdict(list)
    for rs in sets:
        by_cell[rs.cc.key].append(rs)
    from objectives.unsupervised.baselines import BASELINE_MODE

    headlines = _headlines(sets)
    for cell_sets in by_cell.values():
        channel = cell_sets[0].cc.point.channel
        baselines = [
            rs for rs in headlines.get(channel, {}).values() if rs.cc.point.mode == BASELINE_MODE
        ]
        files += _plot_roc(campaign, cell_sets, baselines, folder, plt)
    files += _plot_eps_s(campaign, sets, folder, plt)
    return files, "\n\n".join(tables)


def beside_baselines(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """Channel -> signal -> the best detector row and the best baseline row by AUC.

    ``rows`` are label-free CSV rows. Baselines are what a physicist would try first (the
    one-variable cuts, IsolationForest, FlowDensity); ``BkgDensity`` is the
    signal-agnostic limit, neither side. Every other row is a detector (dSVDD, its
    latent dimensions, DROCC, DDD, dSVDD+DDD, a plugin's method). Channels without both
    sides are left out. Each entry: ``detector``, ``detector_auc``, ``baseline``,
    ``baseline_auc``, ``detector_leads`` (strictly higher AUC)."""
    from objectives.unsupervised.baselines import BASELINES, SYNTHETIC_ONLY

    best: dict[tuple[str, str, str], dict] = {}
    for row in rows:
        family = row["Model"].split("_")[0]
        if family in SYNTHETIC_ONLY or not np.isfinite(row["AUC"]):
            continue
        side = "baseline" if family in BASELINES else "detector"
        key = (row["Chan"], row["Signal"], side)
        if key not in best or row["AUC"] > best[key]["AUC"]:
            best[key] = row
    out: dict[str, dict[str, dict]] = {}
    for (channel, signal, side), row in best.items():
        other = best.get((channel, signal, "baseline"))
        if side != "detector" or other is None:
            continue
        out.setdefault(channel, {})[signal] = {
            "detector": row["Model"],
            "detector_auc": float(row["AUC"]),
            "baseline": other["Model"],
            "baseline_auc": float(other["AUC"]),
            "detector_leads": bool(row["AUC"] > other["AUC"]),
        }
    return out


def _baselines_note(statistics: str, channel: str, verdicts: dict[str, dict]) -> str:
    """The report's line on whether any detector beats the simple things, per signal."""
    leads = sum(v["detector_leads"] for v in verdicts.values())
    parts = [
        f"{signal} {v['detector']} {v['detector_auc']:.3f} against {v['baseline']} "
        f"{v['baseline_auc']:.3f}"
        for signal, v in verdicts.items()
    ]
    verdict = (
        "no detector beats the best baseline on any signal"
        if leads == 0
        else f"the best detector beats the best baseline on {leads} of {len(verdicts)} signals"
    )
    return (
        f"channel {channel}, {statistics} statistics, beside the baselines (best label-free "
        f"detector row against the best of the cuts, IsolationForest, FlowDensity; AUC): "
        f"{verdict}: " + "; ".join(parts)
    )


def _final_values(run_dir: Path, read) -> dict[tuple[str, str], dict[str, list]]:
    """(cell, statistics) -> source -> ``read(record)`` of each final run whose record has
    it (``read`` returns None, or raises KeyError / TypeError, where it does not)."""
    found: dict[tuple[str, str], dict[str, list]] = defaultdict(dict)
    for folder in sorted(p for p in (run_dir / "final").glob("*/*/*") if p.is_dir()):
        values = []
        for path in sorted(folder.glob("run*.json")):
            try:
                value = read(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                continue
            if value is not None:
                values.append(value)
        if values:
            cell, source, statistics = folder.relative_to(run_dir / "final").parts
            found[(cell, statistics)][source] = values
    return found


def _shell_auc(record: dict) -> float | None:
    value = record["info"]["detector"]["shell_auc"]
    return float(value) if isinstance(value, int | float) else None


def _inverted(record: dict) -> list[str] | None:
    """The generic anomalies a final run ranks below random on held-out background (None
    for a one-variable cut: it inverts the opposite of its variable by construction)."""
    from objectives.unsupervised.baselines import CUTS
    from objectives.unsupervised.perturb import inverted_kinds

    info = record["info"]
    if info["classifier"] in CUTS:
        return None
    return inverted_kinds(info["perturbation_aucs"], int(info["n_val"]))


def learning_notes(run_dir: Path) -> list[str]:
    """One line per cell and statistics whose final runs include a DROCC that barely
    learned (``shell_auc`` below ``SHELL_AUC_MIN`` in the run's detector record,
    :mod:`objectives.unsupervised.drocc`): its scores there are close to noise; one per
    source whose runs were refused (an ensemble with nothing to average); and one where a
    final run ranks a generic anomaly of held-out background (``perturb``) below random:
    a signal of that kind would rank below random too."""
    from objectives.unsupervised.drocc import SHELL_AUC_MIN

    notes = []
    for (cell, statistics), by_source in _final_values(run_dir, _shell_auc).items():
        values = [v for vs in by_source.values() for v in vs]
        low = sorted(src for src, vs in by_source.items() if min(vs) < SHELL_AUC_MIN)
        if low:
            n_low = sum(v < SHELL_AUC_MIN for v in values)
            notes.append(
                f"{cell}, {statistics} statistics: DROCC barely learned in {n_low} of "
                f"{len(values)} final runs (sources {', '.join(low)}; shell AUC "
                f"{min(values):.3f}-{max(values):.3f}, below {SHELL_AUC_MIN:g}: its classifier "
                "barely tells held-out background from points around it, so these scores "
                "are close to noise; docs/limits.md)"
            )
    for (cell, statistics), by_source in _final_values(run_dir, lambda r: r["refused"]).items():
        for source, why in by_source.items():
            notes.append(
                f"{cell}, {statistics} statistics: source {source} refused in {len(why)} final "
                f"run(s), nothing to average: {why[0]}"
            )
    for (cell, statistics), by_source in _final_values(run_dir, _inverted).items():
        runs = [kinds for ks in by_source.values() for kinds in ks]
        counts = {k: sum(k in kinds for kinds in runs) for k in sorted({*sum(runs, [])})}
        if counts:
            sources = sorted(src for src, ks in by_source.items() if any(ks))
            each = ", ".join(f"{k} in {n}" for k, n in counts.items())
            notes.append(
                f"{cell}, {statistics} statistics: final runs rank generic anomalies of "
                f"held-out background below random ({each} of {len(runs)} runs; sources "
                f"{', '.join(sources)}): a signal that differs from the background that way "
                "would rank below random too, whatever its other scores say "
                "(docs/unsupervised.md, the label-free selection metric)"
            )
    return notes


def _bulk_note(channel: str, found: dict[str, float]) -> str:
    """The report's line on the signals no signal-agnostic detector can be expected to find."""
    from objectives.unsupervised.baselines import FINDABLE_AUC

    listed = ", ".join(f"{name} (AUC {value:.2f})" for name, value in found.items())
    return (
        f"channel {channel}: the signal-agnostic limit BkgDensity (the background's "
        "probability of an event at least as rare in object multiplicity and in exact "
        f"density) stays below AUC {FINDABLE_AUC:g} on {listed}: the background makes "
        "these signals' events about as probable as its own, so they lie in its bulk, out "
        "of reach of any detector that must not know the signal (one that does better "
        "there, e.g. a one-variable cut, does so by an assumption that happens to fit the "
        "signal)"
    )


def _table(rows: list[dict]) -> str:
    header = ("Signal", "Model", "Chan", "AUC", "1e-2", "1e-3", "1e-4")
    cells = [header] + [
        tuple(str(r[c]) if c in header[:3] else f"{r[c]:.3f}" for c in header) for r in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells)
