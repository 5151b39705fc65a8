"""``hpo select``: pick the best anomaly detector of every final run, without labels.

A **detector** is a cell's method with one hyperparameter source (``HGB/argos``,
``NN/default``, ``R-ANODE/val_loss``). A **group** holds the cells whose
label-free values compare: the same data (one campaign), the same **template**,
rotation, signal amount, feature set and signal region. The template is what the
signal-region data are compared with: ``IAD`` (simulated SR background), ``CWoLa``
(sideband data), ``CATHODE-<background_model>`` (samples of the user's file, of the
exact synthetic background or of the trained flow); ANODE and R-ANODE compute their
ARGOS against the background flow's samples, so they join the CATHODE cells of
``background_model = "flow"`` (``CATHODE-flow``). Within a group, half-statistics
run ``j`` of every detector holds out the same events (``Split.half(j)`` of the same
training set), so values of run ``j`` compare directly; across templates they do not
(ARGOS measures the data's excess over *that* template), and no group mixes them.

For each selection metric (ARGOS, BCE, and the truth oracle ``max_sic``), run ``j``
picks the detector with the best half-statistics value of its run ``j`` and reports
the truth that detector reached in its full-statistics run ``j`` (max SIC on the
labelled test set of the ensemble the metric selects; half statistics when the
campaign has no full ones). The ``max_sic`` selection picks on each detector's
*half-statistics* truth: a labelled reference, not an upper bound (a detector better
on half statistics need not be better on full ones), named so in every output.

The label-free values compared come from events no choice was made on
(``final.holdout = "reserved"`` or ``"fresh"``, :mod:`hpo.holdout`): a searched
source's picked value, scored again on the events it won on, is optimistic, while a
default run's is not. With ``final.holdout = "search"`` (the paper's protocol) they are
the values the search picked on; the summary then says so. Each searched detector's
``search_bias`` says how much better its picked value looked at search than here.

Label-free selections choose among the detectors whose hyperparameters were picked
without labels (every source but ``max_sic``); the truth selection among all of them.
Label-free picks read only half-statistics label-free values: they are the same with
every truth label removed.

Each metric also picks **one detector for the whole group** (``overall``): the best
median half-statistics value over the runs, and reports that detector's truth in
every run. The runs retrain on the same data, so this is what an analysis that
deploys a single detector would choose; pooling the runs also makes the choice less
noisy than a per-run pick when two detectors are close.

Output: ``<run_dir>/select/<group>/summary.json``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hpo.cells import CampaignCell, campaign_cells, final_sources
from hpo.config import Campaign, GridPoint
from hpo.errors import UsageError
from hpo.final import final_dir
from hpo.pick_rule import runs_kept_defaults
from hpo.provenance import campaign_provenance
from objectives.files import atomic_write_json
from objectives.metrics import band
from objectives.regions import Region

__all__ = [
    "SELECTIONS",
    "Detector",
    "Group",
    "describe",
    "load_selections",
    "pick",
    "picks_text",
    "run_select",
    "select_dir",
    "selection_name",
    "select_group",
    "selection_groups",
    "template_of",
]

log = logging.getLogger(__name__)

#: Selection metrics across detectors: label-free ones computed on the split's held-out
#: events against the group's template (every scoring method reports them), then the
#: truth oracle. A density method's ``val_loss`` is not among them: classifiers lack it.
SELECTIONS = ("argos", "bce", "max_sic")
#: The hyperparameter source picked with truth labels (outside label-free pools).
TRUTH = "max_sic"
#: What each selection is called in tables and plots: the truth one picks on each
#: detector's half-statistics test-set max SIC, so it is no upper bound.
SELECTION_NAMES = {
    "argos": "ARGOS",
    "bce": "BCE",
    "max_sic": "half-statistics truth",
}


def selection_name(metric: str) -> str:
    """``ARGOS``, ``BCE``, ``half-statistics truth``."""
    return SELECTION_NAMES.get(metric, metric)


def template_of(campaign: Campaign, point: GridPoint) -> str:
    """What a cell's label-free metrics compare the signal-region data with."""
    from objectives.registry import get_method

    if get_method(point.classifier).family == "density":
        return "CATHODE-flow"  # the cached background flow's samples in the signal region
    if point.mode == "CATHODE":
        return f"CATHODE-{campaign.data.background_model}"
    return point.mode


@dataclass(frozen=True)
class Group:
    """Cells whose label-free values compare: one template, rotation, signal, features, region."""

    template: str
    rotation: bool
    signal: int
    feature_set: str
    region: Region
    cells: tuple[CampaignCell, ...]

    def _tag(self, signal: str) -> str:
        rot = "rot" if self.rotation else "norot"
        tag = f"{self.template}-{rot}{signal}-{self.feature_set}"
        return tag if self.region.is_default else f"{tag}-{self.region.tag}"

    @property
    def name(self) -> str:
        """``<template>-<rot|norot>-N<signal>-<features>`` (+ the region off the default)."""
        return self._tag(f"-N{self.signal}")

    @property
    def panel(self) -> str:
        """The name without the signal amount: groups of one plot panel."""
        return self._tag("")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "panel": self.panel,
            "template": self.template,
            "rotation": self.rotation,
            "signal": self.signal,
            "feature_set": self.feature_set,
            "region": list(self.region.sr),
            "cells": [cc.key for cc in self.cells],
            "studies": [cc.study_name for cc in self.cells],
        }


def selection_groups(campaign: Campaign) -> list[Group]:
    """Every group of the campaign's scoring cells (BackgroundFlow cells have no score)."""
    by_key: dict[tuple, list[CampaignCell]] = {}
    for cc in campaign_cells(campaign):
        if not cc.method.has_score:
            continue
        p = cc.point
        key = (template_of(campaign, p), p.rotation, p.signal, p.feature_set, p.region)
        by_key.setdefault(key, []).append(cc)
    groups = [Group(*key, tuple(cells)) for key, cells in by_key.items()]
    return sorted(groups, key=lambda g: (g.panel, g.signal))


def select_dir(campaign: Campaign, group: str) -> Path:
    """Folder of one group's selection."""
    return campaign.run_dir / "select" / group


@dataclass(frozen=True)
class Detector:
    """One cell's method with one hyperparameter source, and its final-run records by run."""

    cell: CampaignCell
    source: str
    label_free: Mapping[int, dict]  # half statistics: the label-free values
    truth: Mapping[int, dict]  # full (or half) statistics: the truth reached

    @property
    def name(self) -> str:
        return f"{self.cell.point.classifier}/{self.source}"

    def value(self, metric: str, run: int) -> float | None:
        """The half-statistics value of ``metric`` in run ``run`` (None if absent)."""
        record = self.label_free.get(run)
        return None if record is None else record["metrics"].get(metric)

    def max_sic(self, selection: str, run: int) -> float | None:
        """The truth (max SIC) of run ``run``'s ensemble selected by ``selection``."""
        record = self.truth.get(run)
        truth = None if record is None else record.get("truth", {}).get(selection)
        return None if truth is None else truth.get("max_sic")

    @property
    def kept_defaults(self) -> bool:
        """Whether a searched source's runs trained the defaults trial (the export's rule)."""
        return runs_kept_defaults(self.label_free.values())


def pick(values: Mapping[str, float | None], direction: str) -> str | None:
    """The key with the best finite value (the first of equal ones); None if none is finite."""
    finite = [(k, v) for k, v in values.items() if v is not None and math.isfinite(v)]
    if not finite:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    return max(finite, key=lambda kv: sign * kv[1])[0]


def _records(folder: Path) -> dict[int, dict]:
    records = (json.loads(p.read_text()) for p in sorted(folder.glob("run*.json")))
    return {r["run"]: r for r in records if "refused" not in r}


def _detectors(campaign: Campaign, group: Group, truth_statistics: str) -> list[Detector]:
    found = []
    for cc in group.cells:
        for source in final_sources(campaign):
            if source != "default" and source not in cc.metrics:
                continue
            half = _records(final_dir(campaign, cc.key, source, "half"))
            if not half:
                continue
            truth = half
            if truth_statistics != "half":
                truth = _records(final_dir(campaign, cc.key, source, truth_statistics))
            found.append(Detector(cc, source, half, truth))
    return found


def _selection_metrics(detectors: Sequence[Detector]) -> tuple[str, ...]:
    return tuple(m for m in SELECTIONS if all(m in d.cell.method.metrics for d in detectors))


def _headline(detector: Detector) -> str:
    """The selection a detector's own line shows: its source (or its cell's first metric)."""
    return detector.source if detector.source != "default" else detector.cell.metrics[0]


def _overall(pool: Sequence[Detector], metric: str, runs: Sequence[int], direction: str):
    """One detector for every run: the best median of ``metric`` over ``runs`` (None if none)."""
    medians = {d.name: band([d.value(metric, j) for j in runs])["median"] for d in pool}
    best = pick(medians, direction)
    if best is None:
        return None
    chosen = next(d for d in pool if d.name == best)
    return {
        "detector": best,
        "value": medians[best],
        "max_sic": band([chosen.max_sic(metric, j) for j in runs]),
    }


def select_group(campaign: Campaign, group: Group, *, truth_statistics: str = "full") -> dict:
    """The selection summary of one group (empty ``runs`` without half-statistics runs)."""
    from hpo.products import limit
    from objectives.registry import DIRECTIONS

    detectors = _detectors(campaign, group, truth_statistics)
    names = [d.name for d in detectors]
    if len(set(names)) != len(names):  # one method per group and template, by construction
        raise RuntimeError(f"select {group.name}: detectors named twice: {names}")
    metrics = _selection_metrics(detectors)
    runs = sorted({j for d in detectors for j in d.label_free if j < campaign.final.n_runs})
    # label-free picks never choose among hyperparameters picked with labels
    pools = {m: [d for d in detectors if m == TRUTH or d.source != TRUTH] for m in metrics}
    per_run = []
    for j in runs:
        picked = {}
        for m in metrics:
            best = pick({d.name: d.value(m, j) for d in pools[m]}, DIRECTIONS[m])
            chosen = next((d for d in pools[m] if d.name == best), None)
            picked[m] = None
            if chosen is not None:
                picked[m] = {
                    "detector": chosen.name,
                    "value": chosen.value(m, j),
                    "max_sic": chosen.max_sic(m, j),
                }
        per_run.append({"run": j, "picked": picked})
    selected = {}
    for m in metrics:
        picks = [r["picked"][m] for r in per_run if r["picked"][m] is not None]
        counts: dict[str, int] = {}
        for p in picks:
            counts[p["detector"]] = counts.get(p["detector"], 0) + 1
        selected[m] = {
            "max_sic": band([p["max_sic"] for p in picks]),
            "picks": counts,
            "pool": [d.name for d in pools[m]],
            "overall": _overall(pools[m], m, runs, DIRECTIONS[m]),
        }
    exact = limit(campaign, group.cells[0].point) if runs else None
    summary = {
        "group": group.to_dict(),
        "selections": list(metrics),
        "selection_names": {m: selection_name(m) for m in metrics},
        "label_free_statistics": "half",
        **_holdout_fields(campaign),
        # ARGOS counted only cuts with at least this many template events (0: the paper's)
        "argos_min_template": campaign.search.argos_min_template,
        "truth_statistics": truth_statistics,
        "detectors": {
            d.name: {
                "cell": d.cell.key,
                "study": d.cell.study_name,
                "method": d.cell.point.classifier,
                "mode": d.cell.point.mode,
                "source": d.source,
                "headline_selection": _headline(d),
                "runs": sorted(d.label_free),
                "max_sic": band([d.max_sic(_headline(d), j) for j in sorted(d.truth)]),
                "label_free": {m: band([d.value(m, j) for j in runs]) for m in metrics},
                "search_bias": _search_bias(d),
                "kept_defaults": d.kept_defaults,
            }
            for d in detectors
        },
        "runs": per_run,
        "selected": selected,
        "exact_limit_max_sic": None if exact is None else exact["max_sic"],
        "provenance": campaign_provenance(campaign),
    }
    summary["winners_curse"] = winners_curse(summary["detectors"])
    return summary


def _holdout_fields(campaign: Campaign) -> dict:
    """Where the compared label-free values come from, and whether they are biased."""
    from hpo.holdout import label_free_events

    fields = {
        "label_free_on": label_free_events(campaign, "half"),
        "holdout": campaign.final.holdout,
        "pick": campaign.final.pick,
    }
    if campaign.final.holdout == "search":
        fields["warning"] = (
            "final.holdout = 'search' (the paper's protocol): a searched detector's "
            "label-free values are those it was picked on, optimistic against the "
            "defaults' (see each detector's search_bias on a fresh holdout)"
        )
    return fields


def _search_bias(detector: Detector) -> dict:
    """Per label-free metric: how its values moved from the search to these final runs
    (a searched detector: its picked metric; the defaults: their enqueued trial's)."""
    from hpo.holdout import picked_value_bias

    records = [detector.label_free[j] for j in sorted(detector.label_free)]
    shifts = {m: picked_value_bias(records, m) for m in detector.cell.method.label_free}
    return {m: b for m, b in shifts.items() if b is not None}


def winners_curse(detectors: Mapping[str, Mapping]) -> dict[str, dict[str, float]]:
    """Per searched detector and metric: its picked value's optimism at search beyond that
    of the same cell's defaults trial (median over runs), the part a pick alone explains.

    Without a defaults trial (``search.enqueue_defaults = false``) the optimism itself.
    """
    out: dict[str, dict[str, float]] = {}
    for name, d in detectors.items():
        if d["source"] == "default":
            continue
        default = next(
            (e for e in detectors.values() if e["cell"] == d["cell"] and e["source"] == "default"),
            None,
        )
        for m, shift in (d.get("search_bias") or {}).items():
            reference = ((default or {}).get("search_bias") or {}).get(m)
            base = reference["optimism"]["median"] if reference else 0.0
            out.setdefault(name, {})[m] = shift["optimism"]["median"] - base
    return out


def run_select(campaign: Campaign) -> list[dict]:
    """Select in every group with final runs; write and return the summaries."""
    stats = campaign.final.statistics
    if "half" not in stats:
        raise UsageError(
            f"{campaign.path}: final.statistics: selecting detectors needs 'half' "
            f"(label-free values on held-out events), got {list(stats)}"
        )
    truth_statistics = "full" if "full" in stats else "half"
    summaries = []
    for group in selection_groups(campaign):
        summary = select_group(campaign, group, truth_statistics=truth_statistics)
        if not summary["runs"]:
            continue
        atomic_write_json(select_dir(campaign, group.name) / "summary.json", summary)
        summaries.append(summary)
    if not summaries:
        raise UsageError(
            f"{campaign.run_dir / 'final'}: no half-statistics final runs to select from "
            f"(run hpo final {campaign.path} first)"
        )
    return summaries


def load_selections(campaign: Campaign) -> list[dict]:
    """Every written selection summary of the campaign, by group name."""
    root = campaign.run_dir / "select"
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/summary.json"))]


def _fmt(b: Mapping) -> str:
    if not b.get("n"):
        return "n/a"
    return f"{b['median']:.2f} [{b['q16']:.2f}, {b['q84']:.2f}]"


def picks_text(summary: Mapping, metric: str) -> str:
    """``HGB/default 4, NN/argos 1``: how often each detector was picked by ``metric``."""
    counts = summary["selected"][metric]["picks"]
    return ", ".join(f"{d} {n}" for d, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def describe(summary: Mapping) -> str:
    """A few plain lines: per selection metric the picks and the truth they reached."""
    from hpo.metric_text import band_text, difference_text, label, value_text

    g = summary["group"]
    n = len(summary["runs"])
    lines = [f"{g['name']}: {len(summary['detectors'])} detectors, {n} runs"]
    if on := summary.get("label_free_on"):
        lines.append(f"  label-free values on the {on}")
    if warning := summary.get("warning"):
        lines.append(f"  warning: {warning}")
    for m in summary["selections"]:
        sel, name = summary["selected"][m], selection_name(m)
        lines.append(
            f"  selected by {name:<21} max SIC {_fmt(sel['max_sic'])}  "
            f"picks: {picks_text(summary, m)}"
        )
        if overall := sel.get("overall"):
            lines.append(
                f"  one detector by {name:<17} max SIC {_fmt(overall['max_sic'])}  "
                f"{overall['detector']} (median {value_text(m, overall['value'], digits=4)})"
            )
    curse = summary.get("winners_curse", {})
    for name, d in summary["detectors"].items():
        line = f"  {name:<24} max SIC {_fmt(d['max_sic'])} ({d['headline_selection']})"
        if d.get("kept_defaults"):
            line += "; the pick is the defaults trial"
        shift = (d.get("search_bias") or {}).get(d["source"])
        if shift:
            m = d["source"]
            at, here = (band_text(m, shift[k], digits=3) for k in ("at_search", "final"))
            line += f"; {label(m)} at search {at}, here {here}"
            if m in curse.get(name, {}):
                line += f" (pick's optimism {difference_text(m, curse[name][m])})"
        lines.append(line)
    if summary.get("exact_limit_max_sic") is not None:
        lines.append(f"  exact likelihood ratio   max SIC {summary['exact_limit_max_sic']:.2f}")
    return "\n".join(lines)
