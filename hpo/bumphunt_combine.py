"""The bump hunt's combine step: the cut and count over the stored units, results and plots.

For each mode and hyperparameter source of ``[bumphunt]``, once every unit exists
(:mod:`hpo.bumphunt`), the cut and count of :mod:`objectives.bumphunt` runs per
series, window, run and eps_B, delta_sys is measured or taken as given, and::

    <run_dir>/bumphunt/<mode>/<hp source>/results.json
    <run_dir>/bumphunt/<mode>/<hp source>/significance.{png,pdf}  Z vs window per eps_B,
        median and 16-84 % band over the runs, a line per signal amount; the exact
        likelihood ratio's cut and count (synthetic data) dashed: the limit
    <run_dir>/bumphunt/<mode>/<hp source>/delta_sys.{png,pdf}     delta_sys,n vs window
        of the background-only series delta_sys is measured on, with sigma_stat

``results.json`` holds per series, window, eps_B and run: N, N_after, N_samples,
N_samples_after, eps_eff, N_b, sigma_b, Z, delta_sys_n, sigma_stat (and the delta_sys
applied), with medians and 16-84 % bands over the runs; the delta_sys of every
group (classifier x rotation x features) with how it was obtained; provenance. The
significance plot is attached to the study of every cell of the scan.

delta_sys: ``"closure"`` from the grid's signal-0 series of the same group, ``"mc"``
from the series trained against the alternative simulation (on synthetic data with
the exact delta_sys that mismodelling implies for an optimal classifier beside it),
``"sidebands"`` from CATHODE on the sidebands; each the median over the runs of
observed / expected - 1 summed over the windows.

The limit (synthetic data): the same cut and count with the exact likelihood ratio
as the score, on the same data folds, against every extra-background event of the
window as the template (exact background, about 5x the window's data: more than
any mode's template, so no mode's template statistics beat it), delta_sys = 0.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hpo.bumphunt import (
    Series,
    Unit,
    Window,
    bumphunt_dir,
    load_unit,
    missing_units,
    series_of,
    windows,
)
from hpo.config import Campaign
from hpo.errors import UsageError
from hpo.plots import save_figure

__all__ = ["combine", "combined", "describe_missing", "eps_key", "summary"]

log = logging.getLogger(__name__)

#: Per-run numbers summarised by a median and 16-84 % band in results.json.
BANDED = ("Z", "delta_sys_n", "sigma_stat", "N_after", "N_b", "eps_eff")


def eps_key(eps: float) -> str:
    """``1e-3`` -> ``"0.001"`` (the key of an efficiency in results.json)."""
    return f"{eps:g}"


def describe_missing(missing: dict[int, list[Unit]]) -> str:
    units = [u for us in missing.values() for u in us]
    shown = "\n  ".join(u.describe() for u in units[:8])
    more = f"\n  ... and {len(units) - 8} more" if len(units) > 8 else ""
    return (
        f"{len(units)} bump-hunt units missing in tasks {sorted(missing)} "
        f"(run `hpo bumphunt` again, or `hpo bumphunt --task T`):\n  {shown}{more}"
    )


def _counts(campaign: Campaign, source: str, series: Series, window: Window) -> list[list]:
    """counts[run][eps] of one series in one window."""
    from objectives.bumphunt import cut_and_count

    b = campaign.bumphunt
    out = []
    for run in range(b.runs):
        folds = [load_unit(campaign, Unit(source, series, window, f, run)) for f in range(b.folds)]
        out.append([cut_and_count(folds, eps) for eps in b.eps_b])
    return out


def _max_sic(campaign: Campaign, source: str, series: Series, win: list[Window]) -> dict:
    import json

    from objectives.metrics import band

    b = campaign.bumphunt
    values = []
    for w in win:
        for run in range(b.runs):
            for f in range(b.folds):
                _, record = Unit(source, series, w, f, run).paths(campaign)
                values.append(json.loads(record.read_text())["info"].get("max_sic"))
    return band(values)


def _window_entry(campaign: Campaign, numbers_by_run: list[list]) -> dict:
    """``{eps: {"runs": [...], <quantity>: band}}`` of numbers[run][eps]."""
    from objectives.metrics import band

    out = {}
    for i, eps in enumerate(campaign.bumphunt.eps_b):
        runs = [numbers_by_run[r][i].to_dict() for r in range(len(numbers_by_run))]
        out[eps_key(eps)] = {"runs": runs, **{q: band([r[q] for r in runs]) for q in BANDED}}
    return out


def _measured(counts: dict[Window, list[list]], eps_b: tuple[float, ...]) -> dict:
    """delta_sys per eps_B (median over runs) from background-only counts[window][run][eps]."""
    from objectives.bumphunt import delta_sys_of_runs

    win = list(counts)
    n_runs = len(counts[win[0]])
    values, per_run = [], []
    for i in range(len(eps_b)):
        median, runs = delta_sys_of_runs([[counts[w][r][i] for w in win] for r in range(n_runs)])
        values.append(median)
        per_run.append(runs)
    return {"values": values, "per_run": per_run}


def _exact_counts(campaign: Campaign, spec_of, signal: int, score: str) -> dict[Window, list]:
    """counts[window][run][eps] of exact scores on the folds the cells use (synthetic data).

    ``spec_of(window)``: the DataSpec whose SR data and extra background are scored; the
    data folds are those of every cell, the extra background is cut into as many.
    """
    from hpo.products import templates_dir
    from objectives.bumphunt import cut_and_count, exact_fold_scores
    from objectives.templates import exact_scores

    b = campaign.bumphunt
    out = {}
    for w in windows(campaign):
        s_data, s_template = exact_scores(
            spec_of(w),
            signal,
            shifted=campaign.data.shifted,
            cache_dir=templates_dir(campaign),
            score=score,
            mismodelling=b.mismodelling,
        )
        out[w] = []
        for run in range(b.runs):
            folds = [exact_fold_scores(s_data, s_template, f, b.folds, run) for f in range(b.folds)]
            out[w].append([cut_and_count(folds, eps, saturated=None) for eps in b.eps_b])
    return out


def _has_exact(campaign: Campaign, feature_set: str) -> bool:
    d = campaign.data
    return (
        d.source == "synthetic"
        and feature_set == "baseline"
        and not (d.include_delta_r or d.n_noise)
    )


def _results(campaign: Campaign, mode: str, source: str) -> dict:
    from dataclasses import replace

    from hpo.data import alternative_file, data_spec
    from objectives.bumphunt import WindowNumbers

    b = campaign.bumphunt
    win = windows(campaign)
    method = b.delta_sys[mode]
    all_series = series_of(campaign, mode)
    counts = {s: {w: _counts(campaign, source, s, w) for w in win} for s in all_series}

    delta_sys: dict[str, dict] = {}
    for group in dict.fromkeys(s.group for s in all_series):
        clf, rot, fs = group
        entry: dict = {"method": method if isinstance(method, str) else "given"}
        if isinstance(method, tuple):
            entry["values"] = list(method)
        else:
            variant = "nominal" if method == "closure" else method
            ref = Series(clf, mode, rot, fs, 0, variant)
            entry.update(series=ref.key, **_measured(counts[ref], b.eps_b))
            if method == "mc" and _has_exact(campaign, fs):
                alt = alternative_file(campaign)

                def alt_spec(w: Window, ref: Series = ref, alt: Path = alt) -> object:
                    return replace(data_spec(campaign, ref.point(w)), extrabkg_file=alt)

                exact = _exact_counts(campaign, alt_spec, 0, "mismodelling")
                entry["exact"] = _measured(exact, b.eps_b)["values"]
                entry["exact_note"] = (
                    "delta_sys of the exact nominal / alternative-simulation ratio as the score: "
                    "the largest an optimal classifier measures on this mismodelling"
                )
        delta_sys["-".join([clf, "rot" if rot else "norot", fs])] = entry

    def numbers(c: list[list], deltas: list[float]) -> list[list]:
        return [
            [WindowNumbers.of(c[r][i], deltas[i]) for i in range(len(b.eps_b))]
            for r in range(len(c))
        ]

    series_out = {}
    for s in all_series:
        group = "-".join([s.classifier, "rot" if s.rotation else "norot", s.feature_set])
        applied = delta_sys[group]["values"] if s.variant == "nominal" else [0.0] * len(b.eps_b)
        series_out[s.key] = {
            **s.to_dict(),
            "delta_sys_group": group,
            "delta_sys_method": delta_sys[group]["method"] if s.variant == "nominal" else None,
            "max_sic_per_fold": _max_sic(campaign, source, s, win),
            "windows": {
                w.key: _window_entry(campaign, numbers(counts[s][w], applied)) for w in win
            },
        }

    limit = {}
    zeros = [0.0] * len(b.eps_b)
    for signal in campaign.grid.signal:
        ref = next(
            (s for s in all_series if s.signal == signal and _has_exact(campaign, s.feature_set)),
            None,
        )
        if ref is not None and ref.variant == "nominal":
            exact = _exact_counts(
                campaign, lambda w, ref=ref: data_spec(campaign, ref.point(w)), signal, "signal"
            )
            limit[f"N{signal}"] = {
                "signal": signal,
                "score": "exact log likelihood ratio against every extra-background event "
                "in the window (exact background, more events than any mode's template), "
                "delta_sys = 0",
                "windows": {w.key: _window_entry(campaign, numbers(exact[w], zeros)) for w in win},
            }
    return {
        "mode": mode,
        "hp_source": source,
        "folds": b.folds,
        "runs": b.runs,
        "eps_b": list(b.eps_b),
        "windows": [{"key": w.key, "window": w.number, "region": list(w.region.sr)} for w in win],
        "delta_sys": delta_sys,
        "series": series_out,
        "limit": limit,
    }


# ----------------------------------------------------------------------------- plots
def _x(win: list[Window]) -> tuple[np.ndarray, str, list[str]]:
    """Plot positions of the windows: their numbers, else the SR centres in TeV."""
    if all(w.number is not None for w in win):
        return (
            np.array([w.number for w in win], float),
            "signal-region window",
            [f"{w.number}\n{w.region.sr[0]:g}-{w.region.sr[1]:g}" for w in win],
        )
    centres = np.array([sum(w.region.sr) / 2 for w in win])
    return centres, "signal-region centre (TeV)", [f"{c:g}" for c in centres]


def _band_line(ax, x, entries: list[dict], quantity: str, **style) -> None:
    med = np.array([e[quantity]["median"] for e in entries])
    lo = np.array([e[quantity]["q16"] for e in entries])
    hi = np.array([e[quantity]["q84"] for e in entries])
    (line,) = ax.plot(x, med, marker="o", **style)
    ax.fill_between(x, lo, hi, alpha=0.15, color=line.get_color())


def _groups(results: dict) -> dict[str, list[tuple[str, dict]]]:
    out: dict[str, list[tuple[str, dict]]] = {}
    for key, s in results["series"].items():
        if s["variant"] == "nominal":
            out.setdefault(s["delta_sys_group"], []).append((key, s))
    return out


def _plot_significance(results: dict, win: list[Window], folder: Path, plt) -> list[Path]:
    x, xlabel, ticks = _x(win)
    eps_b, groups = results["eps_b"], _groups(results)
    fig, axes = plt.subplots(
        len(groups), len(eps_b), figsize=(4.6 * len(eps_b), 3.8 * len(groups)), squeeze=False
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, (group, members) in zip(axes, sorted(groups.items()), strict=True):
        deltas = results["delta_sys"][group]["values"]
        for ax, eps, delta in zip(row, eps_b, deltas, strict=True):
            k = eps_key(eps)
            for i, (_, s) in enumerate(sorted(members, key=lambda m: m[1]["signal"])):
                colour = colours[i % len(colours)]
                entries = [s["windows"][w.key][k] for w in win]
                _band_line(ax, x, entries, "Z", color=colour, label=f"N = {s['signal']}")
                limit = results["limit"].get(f"N{s['signal']}")
                if limit:
                    med = [limit["windows"][w.key][k]["Z"]["median"] for w in win]
                    ax.plot(
                        x, med, ls="--", lw=1, color=colour, label=f"exact LR, N = {s['signal']}"
                    )
            ax.set_title(
                f"{results['mode']} {group}, hp {results['hp_source']}\n"
                f"eps_B = {eps:g}, delta_sys = {delta:.3g}",
                fontsize=9,
            )
            ax.set_xticks(x, ticks, fontsize=7)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("significance Z (median, 16-84 %)")
            ax.axhline(3.0, color="grey", lw=0.8, ls=":")
            ax.legend(fontsize=6)
    paths = save_figure(fig, folder, "significance")
    plt.close(fig)
    return paths


def _plot_delta_sys(results: dict, win: list[Window], folder: Path, plt) -> list[Path]:
    refs = {g: d for g, d in results["delta_sys"].items() if d.get("series") in results["series"]}
    if not refs:
        return []
    x, xlabel, ticks = _x(win)
    eps_b = results["eps_b"]
    fig, axes = plt.subplots(
        len(refs), len(eps_b), figsize=(4.6 * len(eps_b), 3.6 * len(refs)), squeeze=False
    )
    for row, (group, d) in zip(axes, sorted(refs.items()), strict=True):
        s = results["series"][d["series"]]
        for ax, eps, delta, i in zip(row, eps_b, d["values"], range(len(eps_b)), strict=True):
            k = eps_key(eps)
            med = np.array([s["windows"][w.key][k]["delta_sys_n"]["median"] for w in win])
            stat = np.array([s["windows"][w.key][k]["sigma_stat"]["median"] for w in win])
            (line,) = ax.plot(x, med, marker="o", label="delta_sys,n (median over runs)")
            ax.fill_between(
                x, med - stat, med + stat, alpha=0.2, color=line.get_color(), label="+- sigma_stat"
            )
            ax.axhline(delta, color="black", lw=1, label=f"delta_sys = {delta:.3g} ({d['method']})")
            if "exact" in d:
                ax.axhline(
                    d["exact"][i],
                    color="black",
                    ls="--",
                    lw=1,
                    label=f"exact ratio: {d['exact'][i]:.3g}",
                )
            ax.axhline(0.0, color="grey", lw=0.8, ls=":")
            ax.set_title(f"{results['mode']} {group}: {d['series']}\neps_B = {eps:g}", fontsize=9)
            ax.set_xticks(x, ticks, fontsize=7)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("(N_after - eps_eff N) / (eps_eff N)")
            ax.legend(fontsize=6)
    paths = save_figure(fig, folder, "delta_sys")
    plt.close(fig)
    return paths


def _studies(campaign: Campaign, mode: str) -> list[str]:
    """The study of every grid cell of the scan in ``mode``."""
    from hpo.cells import study_name

    return [
        study_name(campaign, s.point(w))
        for s in series_of(campaign, mode)
        if s.variant == "nominal"
        for w in windows(campaign)
    ]


def combine(campaign: Campaign) -> list[Path]:
    """Cut and count over every unit; results.json and plots per mode and source. Their paths.

    UsageError listing the missing units when the scan is incomplete.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hpo.provenance import data_provenance, stamp
    from hpo.report import attach_plots
    from objectives.files import atomic_write_json

    missing = missing_units(campaign)
    if missing:
        raise UsageError(describe_missing(missing))
    written = []
    win = windows(campaign)
    provenance = {
        "campaign": campaign.name,
        "campaign_file": str(campaign.path),
        "campaign_sha256": campaign.sha256,
        **data_provenance(campaign),
        **stamp(),
    }
    for mode in campaign.grid.modes:
        for source in campaign.bumphunt.hp:
            folder = bumphunt_dir(campaign, mode, source)
            results = _results(campaign, mode, source)
            results["provenance"] = provenance
            written.append(atomic_write_json(folder / "results.json", results))
            plot = _plot_significance(results, win, folder, plt)
            written += plot + _plot_delta_sys(results, win, folder, plt)
            try:
                plots = {name: plot for name in _studies(campaign, mode)}
                attach_plots(campaign, plots, f"bumphunt_plot_sha_{source}")
            except UsageError:  # never created (default hp need no search): no studies
                log.info("no studies to attach the significance plot to")
            except Exception as exc:  # the dashboard attachment must never fail the step
                log.warning("could not attach the significance plot to the studies: %s", exc)
    return written


def combined(campaign: Campaign) -> bool:
    """Whether every mode and hyperparameter source has its results.json."""
    return all(
        (bumphunt_dir(campaign, mode, source) / "results.json").is_file()
        for mode in campaign.grid.modes
        for source in campaign.bumphunt.hp
    )


def summary(campaign: Campaign) -> str:
    """A plain table of the results: median Z per window, eps_B and series (and the limit)."""
    import json

    lines = []
    for mode in campaign.grid.modes:
        for source in campaign.bumphunt.hp:
            path = bumphunt_dir(campaign, mode, source) / "results.json"
            if not path.is_file():
                continue
            r = json.loads(path.read_text())
            keys = [w["key"] for w in r["windows"]]
            lines.append(f"{mode}, hp {source}: {path}")
            for group, d in r["delta_sys"].items():
                values = ", ".join(f"{v:.3g}" for v in d["values"])
                exact = ", ".join(f"{v:.3g}" for v in d.get("exact", []))
                lines.append(
                    f"  delta_sys {group} ({d['method']}): [{values}]"
                    + (f"  exact [{exact}]" if exact else "")
                )
            rows = [(k, s) for k, s in r["series"].items() if s["variant"] == "nominal"]
            rows += [(f"exact LR N={v['signal']}", v) for v in r["limit"].values()]
            width = max(len(k) for k, _ in rows)
            lines.append(f"  {'median Z':<{width}}  eps_B   " + " ".join(f"{k:>6}" for k in keys))
            for eps in r["eps_b"]:
                for name, s in rows:
                    zs = [s["windows"][k][eps_key(eps)]["Z"]["median"] for k in keys]
                    cells = " ".join(f"{z:6.2f}" for z in zs)
                    lines.append(f"  {name:<{width}}  {eps:<7g} {cells}")
    return "\n".join(lines) if lines else "no bump-hunt results yet"
