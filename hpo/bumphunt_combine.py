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
observed / expected - 1 summed over the windows, with its statistical error (a
bootstrap over events and runs that counts the windows' overlap,
:mod:`objectives.delta_sys`), shown as ``δ_sys = x ± y`` ("consistent with 0" where
|x| < 2y). What the significance applies: ``[bumphunt] negative_delta_sys = "zero"``
(default) applies a negative delta_sys as 0 (it would lower N_b and raise Z), its
size still in sigma_sys; ``"apply"`` applies it as measured. The series a delta_sys
is measured on (closure: the signal-0 series) gets none applied: it would only
cancel its own fluctuation.

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
#: delta_sys in the plots' math text.
DELTA_SYS_TEX = r"$\delta_\mathrm{sys}$"
#: What the bootstrap of a measured delta_sys resamples (:mod:`objectives.delta_sys`).
BOOTSTRAP_RESAMPLED = (
    "events (one Poisson weight per event, shared by every window, fold and run that "
    "counts it: the windows' overlap resampled as one) and runs (median over the drawn runs)"
)
#: The same with one run: nothing to draw among, so the trainings' spread is not in it.
BOOTSTRAP_ONE_RUN = (
    "events only (one Poisson weight per event, shared by every window and fold that counts "
    "it): with bumphunt.runs = 1 the spread between trainings is not in the error "
    "(runs >= 2 puts it there)"
)
#: The rule of each ``[bumphunt] negative_delta_sys`` setting, as results.json states it.
NEGATIVE_RULES = {
    "zero": "a negative delta_sys is applied as 0 (it would lower N_b and raise Z); "
    "its size still enters sigma_sys",
    "apply": "delta_sys is applied as measured, a negative one too (it lowers N_b and can raise Z)",
}


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


def _bootstrapped(campaign: Campaign, source: str, ref: Series) -> dict:
    """delta_sys of the background-only series ``ref`` per eps_B, with its bootstrap error.

    The events are told apart by their raw rows, the same in every window's cell
    (:mod:`objectives.delta_sys`): the windows' overlap is resampled as one.
    """
    from hpo.bumphunt import series_cell
    from objectives.cells import training_events
    from objectives.delta_sys import delta_sys_bootstrap, event_ids

    b = campaign.bumphunt
    data_rows, template_rows, folds = [], [], []
    for w in windows(campaign):
        cell = series_cell(campaign, ref, w)
        _, (mjj1, x1), (mjj0, x0) = training_events(cell.mode, cell.signal, cell.data)
        data_rows.append(np.column_stack([mjj1, x1]))
        template_rows.append(np.column_stack([mjj0, x0]))
        folds.append(
            [
                [load_unit(campaign, Unit(source, ref, w, f, r)) for f in range(b.folds)]
                for r in range(b.runs)
            ]
        )
    measured = delta_sys_bootstrap(
        folds, *event_ids(data_rows, template_rows), b.eps_b, seed=campaign.seed
    )
    return {
        "values": [d.value for d in measured],
        "errors": [d.error for d in measured],
        "consistent_with_zero": [d.consistent_with_zero for d in measured],
        "per_run": [list(d.per_run) for d in measured],
        "bootstrap": {
            "replicates": min(d.replicates for d in measured),
            "resampled": BOOTSTRAP_RESAMPLED if b.runs > 1 else BOOTSTRAP_ONE_RUN,
        },
    }


def _applied(entry: dict, rule: str) -> dict:
    """What the significance uses of a delta_sys entry: the shift and sigma_sys per eps_B."""
    values = entry["values"]
    shifts = [max(v, 0.0) if rule == "zero" else v for v in values]
    return {
        "applied": shifts,
        "sigma_sys": [abs(v) for v in values],
        "negative_delta_sys": rule,
        "rule": NEGATIVE_RULES[rule],
    }


def _exact_folds(campaign: Campaign, spec_of, signal: int, score: str) -> dict[Window, list]:
    """folds[window][run] of exact scores on the folds the cells use (synthetic data).

    ``spec_of(window)``: the DataSpec whose SR data and extra background are scored; the
    data folds are those of every cell, the extra background is cut into as many.
    """
    from hpo.products import templates_dir
    from objectives.bumphunt import exact_fold_scores
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
        out[w] = [
            [exact_fold_scores(s_data, s_template, f, b.folds, run) for f in range(b.folds)]
            for run in range(b.runs)
        ]
    return out


def _exact_counts(campaign: Campaign, spec_of, signal: int, score: str) -> dict[Window, list]:
    """counts[window][run][eps] of :func:`_exact_folds`."""
    from objectives.bumphunt import cut_and_count

    eps_b = campaign.bumphunt.eps_b
    return {
        w: [[cut_and_count(folds, eps, saturated=None) for eps in eps_b] for folds in runs]
        for w, runs in _exact_folds(campaign, spec_of, signal, score).items()
    }


def _exact_closure(campaign: Campaign, spec_of) -> dict:
    """delta_sys ± error of the exact likelihood ratio on background-only data (truth: 0).

    The limit's cut and count with signal 0: its template is exact background, so its
    delta_sys is 0 in expectation and the interval must cover 0 at the stated rate.
    """
    from objectives.delta_sys import delta_sys_bootstrap, event_ids

    folds = _exact_folds(campaign, spec_of, 0, "signal")
    data_rows, template_rows = [], []
    for w in folds:
        rd = spec_of(w).events(0)
        background = rd.test.label == 0
        data_rows.append(np.column_stack([rd.sr.mjj, rd.sr.x]))
        template_rows.append(
            np.column_stack(
                [
                    np.concatenate([rd.iad_template.mjj, rd.test.mjj[background]]),
                    np.concatenate([rd.iad_template.x, rd.test.x[background]]),
                ]
            )
        )
    measured = delta_sys_bootstrap(
        list(folds.values()),
        *event_ids(data_rows, template_rows),
        campaign.bumphunt.eps_b,
        seed=campaign.seed,
        saturated=None,
    )
    return {
        "values": [d.value for d in measured],
        "errors": [d.error for d in measured],
        "consistent_with_zero": [d.consistent_with_zero for d in measured],
        "note": "closure of the exact likelihood ratio against the exact background "
        "(the limit with signal 0): its true delta_sys is 0",
    }


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
    references: dict[str, Series] = {}
    for group in dict.fromkeys(s.group for s in all_series):
        clf, rot, fs = group
        name = "-".join([clf, "rot" if rot else "norot", fs])
        entry: dict = {"method": method if isinstance(method, str) else "given"}
        if isinstance(method, tuple):
            entry["values"] = list(method)
        else:
            variant = "nominal" if method == "closure" else method
            ref = references[name] = Series(clf, mode, rot, fs, 0, variant)
            entry.update(series=ref.key, **_bootstrapped(campaign, source, ref))
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
        delta_sys[name] = entry | _applied(entry, b.negative_delta_sys)

    def numbers(c: list[list], shifts: list[float], sigmas: list[float]) -> list[list]:
        return [
            [WindowNumbers.of(c[r][i], shifts[i], sigmas[i]) for i in range(len(b.eps_b))]
            for r in range(len(c))
        ]

    zeros = [0.0] * len(b.eps_b)
    series_out = {}
    for s in all_series:
        group = "-".join([s.classifier, "rot" if s.rotation else "norot", s.feature_set])
        d, note = delta_sys[group], None
        shifts, sigmas = d["applied"], d["sigma_sys"]
        if s.variant != "nominal":
            shifts, sigmas, note = zeros, zeros, "a delta_sys measurement: none applied"
        elif references.get(group) == s:
            shifts, sigmas, note = zeros, zeros, "delta_sys is measured on this series: not applied"
        series_out[s.key] = {
            **s.to_dict(),
            "delta_sys_group": group,
            "delta_sys_method": delta_sys[group]["method"] if s.variant == "nominal" else None,
            "delta_sys_applied": shifts,
            "delta_sys_note": note,
            "max_sic_per_fold": _max_sic(campaign, source, s, win),
            "windows": {
                w.key: _window_entry(campaign, numbers(counts[s][w], shifts, sigmas)) for w in win
            },
        }

    limit, exact_closure = {}, None
    for signal in campaign.grid.signal:
        ref = next(
            (s for s in all_series if s.signal == signal and _has_exact(campaign, s.feature_set)),
            None,
        )
        if ref is not None and ref.variant == "nominal":

            def spec_of(w: Window, ref: Series = ref) -> object:
                return data_spec(campaign, ref.point(w))

            exact = _exact_counts(campaign, spec_of, signal, "signal")
            if signal == 0:
                exact_closure = _exact_closure(campaign, spec_of)
            limit[f"N{signal}"] = {
                "signal": signal,
                "score": "exact log likelihood ratio against every extra-background event "
                "in the window (exact background, more events than any mode's template), "
                "delta_sys = 0",
                "windows": {
                    w.key: _window_entry(campaign, numbers(exact[w], zeros, zeros)) for w in win
                },
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
        "limit_delta_sys": exact_closure,
    }


# ----------------------------------------------------------------------------- plots
def _x(win: list[Window]) -> tuple[np.ndarray, str, list[str]]:
    """Plot positions of the windows (their numbers, else the SR centres), axis label, ticks."""
    if all(w.number is not None for w in win):
        return (
            np.array([w.number for w in win], float),
            r"signal-region window $m_{JJ}$ [TeV]",
            [f"{w.region.sr[0]:.1f}–{w.region.sr[1]:.1f}" for w in win],
        )
    centres = np.array([sum(w.region.sr) / 2 for w in win])
    return centres, r"signal-region centre $m_{JJ}$ [TeV]", [f"{c:g}" for c in centres]


def _window_axis(ax, win: list[Window]) -> np.ndarray:
    """The windows on the x axis, one upright tick label each (they never run together)."""
    x, xlabel, ticks = _x(win)
    step = float(np.min(np.diff(x))) if len(x) > 1 else 1.0
    ax.set_xlim(x.min() - step / 2, x.max() + step / 2)  # no point on the frame
    ax.set_xticks(x, ticks, rotation=90)
    ax.tick_params(axis="x", which="minor", bottom=False, top=False)
    ax.set_xlabel(xlabel)
    return x


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


def significance_figure(results: dict, win: list[Window], plt):
    """Z vs window per group (rows) and eps_B (columns), a line per signal amount."""
    from hpo.plots import subplots

    eps_b, groups = results["eps_b"], _groups(results)
    fig, axes = subplots(plt, len(groups), len(eps_b))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, (group, members) in zip(axes, sorted(groups.items()), strict=True):
        d = results["delta_sys"][group]
        for i, (ax, eps) in enumerate(zip(row, eps_b, strict=True)):
            k = eps_key(eps)
            x = _window_axis(ax, win)
            for j, (_, s) in enumerate(sorted(members, key=lambda m: m[1]["signal"])):
                colour = colours[j % len(colours)]
                entries = [s["windows"][w.key][k] for w in win]
                mark = f" (no {DELTA_SYS_TEX})" if s.get("delta_sys_note") else ""
                _band_line(ax, x, entries, "Z", color=colour, label=f"N = {s['signal']}{mark}")
                limit = results["limit"].get(f"N{s['signal']}")
                if limit:
                    med = [limit["windows"][w.key][k]["Z"]["median"] for w in win]
                    ax.plot(x, med, ls="--", color=colour, label=f"exact LR, N = {s['signal']}")
            ax.set_ylabel("significance $Z$ (median, 16–84 %)")
            ax.axhline(3.0, color="grey", lw=0.8, ls=":")
            ax.legend(
                loc="upper left",
                title=f"{results['mode']} {group}, hp {results['hp_source']}\n"
                f"$\\epsilon_B$ = {eps:g}: {delta_sys_text(d, i, DELTA_SYS_TEX)}\n"
                f"applied {d['applied'][i]:+.3g}",
            )
    return fig


def delta_sys_figure(results: dict, win: list[Window], plt):
    """delta_sys,n vs window of every measured delta_sys's series, with the value ± error."""
    from hpo.plots import subplots

    refs = {g: d for g, d in results["delta_sys"].items() if d.get("series") in results["series"]}
    if not refs:
        return None
    eps_b = results["eps_b"]
    fig, axes = subplots(plt, len(refs), len(eps_b))
    for row, (group, d) in zip(axes, sorted(refs.items()), strict=True):
        s = results["series"][d["series"]]
        for i, (ax, eps) in enumerate(zip(row, eps_b, strict=True)):
            k = eps_key(eps)
            x = _window_axis(ax, win)
            med = np.array([s["windows"][w.key][k]["delta_sys_n"]["median"] for w in win])
            stat = np.array([s["windows"][w.key][k]["sigma_stat"]["median"] for w in win])
            (line,) = ax.plot(
                x, med, marker="o", label=r"$\delta_{\mathrm{sys},n}$ (median of runs)"
            )
            ax.fill_between(
                x,
                med - stat,
                med + stat,
                alpha=0.2,
                color=line.get_color(),
                label=r"$\pm\sigma_\mathrm{stat}$",
            )
            value, error = d["values"][i], d["errors"][i]
            ax.axhline(value, color="black", lw=1.5, label=delta_sys_text(d, i, DELTA_SYS_TEX))
            ax.axhspan(value - error, value + error, color="black", alpha=0.1)
            exact_closure = results.get("limit_delta_sys")
            if exact_closure and d["method"] == "closure":
                ax.axhline(
                    exact_closure["values"][i],
                    color="grey",
                    ls="--",
                    label="exact LR: " + delta_sys_text(exact_closure, i, DELTA_SYS_TEX),
                )
            if "exact" in d:
                ax.axhline(
                    d["exact"][i],
                    color="black",
                    ls="--",
                    label=f"exact ratio: {d['exact'][i]:+.3g}",
                )
            ax.axhline(0.0, color="grey", lw=0.8, ls=":")
            ax.set_ylabel(
                r"$\delta_{\mathrm{sys},n} = N_\mathrm{after} / \epsilon_\mathrm{eff} N - 1$"
            )
            ax.legend(
                loc="upper left",
                title=f"{results['mode']} {group} ({d['method']})\n{d['series']}\n"
                f"$\\epsilon_B$ = {eps:g}",
            )
    return fig


def _save(fig, folder: Path, name: str, plt) -> list[Path]:
    if fig is None:
        return []
    paths = save_figure(fig, folder, name)
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
    from hpo.plots import pyplot
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
            with pyplot(campaign.report) as plt:
                plot = _save(significance_figure(results, win, plt), folder, "significance", plt)
                written += plot
                written += _save(delta_sys_figure(results, win, plt), folder, "delta_sys", plt)
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


def delta_sys_text(d: dict, i: int, name: str = "δ_sys") -> str:
    """``δ_sys = +0.038 ± 0.071 (consistent with 0)`` of a results.json entry at eps_B ``i``."""
    value = d["values"][i]
    error = (d.get("errors") or [None] * len(d["values"]))[i]
    if error is None:  # given numbers
        return f"{name} = {value:+.3g} (given)"
    zero = " (consistent with 0)" if d["consistent_with_zero"][i] else ""
    return f"{name} = {value:+.3g} ± {error:.2g}{zero}"


def _delta_sys_lines(group: str, d: dict, eps_b: list[float]) -> list[str]:
    """The summary's lines of one delta_sys: value ± error, what is applied and why."""
    where = f", measured on {d['series']}" if "series" in d else ""
    lines = [f"  {group} ({d['method']}{where}): {d['rule']}"]
    for i, eps in enumerate(eps_b):
        applied = d["applied"][i]
        note = ""
        if applied != d["values"][i]:
            note = f" (negative_delta_sys = {d['negative_delta_sys']!r})"
        exact = f"; exact ratio {d['exact'][i]:+.3g}" if "exact" in d else ""
        lines.append(
            f"    ε_B = {eps:<7g} {delta_sys_text(d, i)}, applied {applied:+.3g}{note}{exact}"
        )
    return lines


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
                lines += _delta_sys_lines(group, d, r["eps_b"])
            if r.get("limit_delta_sys"):
                d = r["limit_delta_sys"]
                values = "; ".join(
                    f"ε_B = {eps:g}: {delta_sys_text(d, i)}" for i, eps in enumerate(r["eps_b"])
                )
                lines.append(f"  exact LR, background only (true δ_sys = 0): {values}")
            nominal = [(k, s) for k, s in r["series"].items() if s["variant"] == "nominal"]
            rows = [(k + (" *" if s.get("delta_sys_note") else ""), s) for k, s in nominal]
            rows += [(f"exact LR N={v['signal']}", v) for v in r["limit"].values()]
            width = max(len(k) for k, _ in rows)
            lines.append(f"  {'median Z':<{width}}  eps_B   " + " ".join(f"{k:>6}" for k in keys))
            for eps in r["eps_b"]:
                for name, s in rows:
                    zs = [s["windows"][k][eps_key(eps)]["Z"]["median"] for k in keys]
                    cells = " ".join(f"{z:6.2f}" for z in zs)
                    lines.append(f"  {name:<{width}}  {eps:<7g} {cells}")
            if any(s.get("delta_sys_note") for _, s in nominal):
                lines.append("  * no δ_sys applied: it is measured on this series")
    return "\n".join(lines) if lines else "no bump-hunt results yet"
