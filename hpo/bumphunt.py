"""``hpo bumphunt``: the sliding-window bump hunt of seed 001 as a campaign stage.

For every mode of the grid, hyperparameter source of ``[bumphunt] hp`` and
**series** (classifier x rotation x feature set x signal amount, plus the
systematic measurements ``delta_sys = "mc"`` / ``"sidebands"`` on background-only
data), every window (``grid.windows``), fold and run is one **unit**: a classifier
trained on ``folds - 1`` folds of the window's data against ``folds - 1`` folds of
its template, scoring the held-out data and template folds
(:func:`objectives.bumphunt.score_fold`)::

    <run_dir>/bumphunt/<mode>/<hp source>/units/<series>/<window>/run<j>-fold<f>.npz (+ .json)

A **task** is one (window, fold) with all its units: ``hpo launch`` runs one SLURM
array task per task after pick-best, ``hpo bumphunt`` runs every task here. A unit
whose files exist, trained with the hyperparameters the campaign gives it now on
the campaign's data files (their hashes), is done and skipped, so a task resumes
where it was stopped and a killed task is simply run again; a unit trained with
other hyperparameters (a new export) or on other data is trained again.
:mod:`hpo.bumphunt_combine` then applies the cut and count and writes the results
and plots. This module decides nothing about physics:
the formulas are :mod:`objectives.bumphunt`'s.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hpo.cells import CampaignCell, study_name
from hpo.config import Campaign, GridPoint
from hpo.errors import UsageError
from objectives.regions import Region

__all__ = [
    "Series",
    "Unit",
    "Window",
    "bumphunt_dir",
    "load_unit",
    "missing_units",
    "run_tasks",
    "series_cell",
    "series_of",
    "slurm_task",
    "tasks",
    "windows",
]

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


def bumphunt_dir(campaign: Campaign, mode: str, source: str) -> Path:
    """Folder of one (mode, hyperparameter source): units, results, plots."""
    return campaign.run_dir / "bumphunt" / mode / source


@dataclass(frozen=True)
class Window:
    """A signal region of the scan: its window number (``Region.window``) if it is one."""

    number: int | None
    region: Region

    @property
    def key(self) -> str:
        """``w5`` for a scan window, else the region's tag (``SR3.45-3.85``)."""
        return f"w{self.number}" if self.number is not None else self.region.tag


def windows(campaign: Campaign) -> list[Window]:
    """The campaign's signal regions in scan order."""
    numbers = {Region.window(w): w for w in range(1, 10)}
    return [Window(numbers.get(r), r) for r in campaign.regions]


@dataclass(frozen=True)
class Series:
    """What one line of the scan trains: a grid cell without its window, or a systematic.

    ``variant``: ``"nominal"`` (the grid's cell), ``"mc"`` or ``"sidebands"`` (the
    delta_sys measurements on background-only data, signal 0).
    """

    classifier: str
    mode: str
    rotation: bool
    feature_set: str
    signal: int
    variant: str = "nominal"

    @property
    def key(self) -> str:
        """``HGB-IAD-norot-N1000-baseline`` (+ ``-mc`` / ``-sidebands``)."""
        key = self.point(None).key
        return key if self.variant == "nominal" else f"{key}-{self.variant}"

    @property
    def group(self) -> tuple[str, bool, str]:
        """The series that share one delta_sys: same classifier, rotation and features."""
        return self.classifier, self.rotation, self.feature_set

    def point(self, window: Window | None) -> GridPoint:
        """The grid point of this series in ``window`` (the default region for None)."""
        args = (self.classifier, self.mode, self.rotation, self.signal, self.feature_set)
        return GridPoint(*args) if window is None else GridPoint(*args, window.region)

    def to_dict(self) -> dict:
        return {**self.point(None).to_dict(), "variant": self.variant}


def series_of(campaign: Campaign, mode: str) -> list[Series]:
    """Every series of one mode: the grid's classifier cells, then the delta_sys variants."""
    from hpo.products import VARIANTS
    from objectives.registry import get_method

    g = campaign.grid
    classifiers = [c for c in g.classifiers if get_method(c).family == "classifier"]
    out = [
        Series(c, mode, r, f, s)
        for c in classifiers
        for r in g.rotation
        for f in g.feature_sets
        for s in g.signal
    ]
    variant = campaign.bumphunt.delta_sys[mode]
    if variant in VARIANTS:
        out += [
            Series(c, mode, r, f, 0, variant)
            for c in classifiers
            for r in g.rotation
            for f in g.feature_sets
        ]
    return out


@dataclass(frozen=True)
class Unit:
    """One training: series x window x fold x run, under one hyperparameter source."""

    source: str
    series: Series
    window: Window
    fold: int
    run: int

    def paths(self, campaign: Campaign) -> tuple[Path, Path]:
        """``(scores .npz, record .json)``."""
        folder = bumphunt_dir(campaign, self.series.mode, self.source) / "units"
        stem = folder / self.series.key / self.window.key / f"run{self.run}-fold{self.fold}"
        return stem.with_suffix(".npz"), stem.with_suffix(".json")

    def done(self, campaign: Campaign) -> bool:
        """Both files exist, with this campaign's hyperparameters and data files."""
        npz, record = self.paths(campaign)
        if not (npz.is_file() and record.is_file()):
            return False
        try:
            rec = json.loads(record.read_text())
        except (OSError, ValueError):
            return False
        hp, _ = unit_hyperparameters(campaign, self)
        data = _data_hashes(campaign)
        return rec.get("hp") == hp and all(rec["provenance"].get(k) == v for k, v in data.items())

    def describe(self) -> str:
        return (
            f"{self.series.key} {self.window.key} hp {self.source} run {self.run} fold {self.fold}"
        )


def _config(campaign: Campaign):
    if campaign.bumphunt is None:
        raise UsageError(f"{campaign.path}: no [bumphunt] section; the campaign has no bump hunt")
    return campaign.bumphunt


def tasks(campaign: Campaign) -> list[tuple[Window, int]]:
    """Every (window, fold) of the scan; task ``t`` is window ``t // folds``, fold ``t % folds``."""
    folds = _config(campaign).folds
    return [(w, f) for w in windows(campaign) for f in range(folds)]


def task_units(campaign: Campaign, task: int) -> list[Unit]:
    """The units of one task, grouped by series so each cell is prepared once."""
    b = _config(campaign)
    window, fold = tasks(campaign)[task]
    return [
        Unit(source, series, window, fold, run)
        for mode in campaign.grid.modes
        for series in series_of(campaign, mode)
        for source in b.hp
        for run in range(b.runs)
    ]


def missing_units(campaign: Campaign) -> dict[int, list[Unit]]:
    """task -> its units without both files (empty when the scan is complete)."""
    out = {}
    for t in range(len(tasks(campaign))):
        todo = [u for u in task_units(campaign, t) if not u.done(campaign)]
        if todo:
            out[t] = todo
    return out


def _campaign_cell(campaign: Campaign, series: Series, window: Window) -> CampaignCell:
    point = series.point(window)
    return CampaignCell(point, study_name(campaign, point), campaign)


def series_cell(campaign: Campaign, series: Series, window: Window):
    """The objectives ``Cell`` a unit trains (a grid cell, or a systematic's variant)."""
    from hpo.products import variant_spec

    cell = _campaign_cell(campaign, series, window).cell()
    if series.variant == "nominal":
        return cell
    return replace(cell, data=variant_spec(campaign, series.point(window), series.variant))


def selection(series: Series, source: str) -> str:
    """Which ensemble scores: the source's metric when label-free, else the first label-free."""
    from objectives.registry import get_method

    label_free = get_method(series.classifier).label_free
    return source if source in label_free else label_free[0]


def unit_hyperparameters(campaign: Campaign, unit: Unit) -> tuple[dict, dict]:
    """``(hp, how picked)`` of a unit: its window's cell's (a systematic: the signal-0 cell's)."""
    from hpo.final import picked_hyperparameters

    cc = _campaign_cell(campaign, replace(unit.series, variant="nominal"), unit.window)
    hp, picked = picked_hyperparameters(cc, unit.source, unit.run)
    return json.loads(json.dumps(hp)), picked  # as a record holds it


def _data_hashes(campaign: Campaign) -> dict:
    """The campaign's data files' hashes (cached per process by path, size and mtime)."""
    from hpo.provenance import data_provenance

    return {k: v for k, v in data_provenance(campaign).items() if k.endswith("sha256")}


def _run_unit(campaign: Campaign, unit: Unit, cell, provenance: dict) -> dict:
    from hpo.provenance import stamp
    from objectives.bumphunt import score_fold
    from objectives.files import atomic_write_bytes, atomic_write_json

    b = campaign.bumphunt
    cc = _campaign_cell(campaign, replace(unit.series, variant="nominal"), unit.window)
    hp, picked = unit_hyperparameters(campaign, unit)
    sel = selection(unit.series, unit.source)
    t0 = time.perf_counter()
    scores = score_fold(
        hp, cell, unit.fold, b.folds, unit.run, selection=sel, n_jobs=campaign.search.n_jobs
    )
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        data=scores.data.astype(np.float32),
        template=scores.template.astype(np.float32),
        data_index=scores.data_index.astype(np.int32),
        template_index=scores.template_index.astype(np.int32),
    )
    npz, record = unit.paths(campaign)
    atomic_write_bytes(npz, buf.getvalue())
    out = {
        "series": {"key": unit.series.key, **unit.series.to_dict()},
        "window": unit.window.number,
        "region": unit.window.region.to_dict(),
        "fold": unit.fold,
        "folds": b.folds,
        "run": unit.run,
        "hp_source": unit.source,
        "hp": hp,
        "picked": picked,
        "n_data_held_out": len(scores.data),
        "n_template_held_out": len(scores.template),
        "data": {
            "data_file": str(cell.data.data_file),
            "extrabkg_file": str(cell.data.extrabkg_file),
            "samples_file": str(cell.data.samples_file) if cell.data.samples_file else None,
            "train_on": cell.data.train_on,
        },
        "info": scores.info,
        "seconds": round(time.perf_counter() - t0, 3),
        "provenance": {
            "campaign": campaign.name,
            "campaign_file": str(campaign.path),
            "campaign_sha256": campaign.sha256,
            "study": cc.study_name,
            **provenance,
            **stamp(),
        },
    }
    atomic_write_json(record, out)  # last: a unit is done once its record exists
    return out


def run_tasks(
    campaign: Campaign, task_ids: list[int] | None = None, *, progress: Progress | None = None
) -> int:
    """Run every unit of the given tasks (all by default) not done yet; how many ran."""
    from hpo.data import ensure_data
    from hpo.products import resolve
    from hpo.provenance import data_provenance

    n_tasks = len(tasks(campaign))
    task_ids = list(range(n_tasks)) if task_ids is None else task_ids
    for t in task_ids:
        if not 0 <= t < n_tasks:
            raise UsageError(f"--task {t}: the scan has tasks 0 .. {n_tasks - 1}")
    todo = [u for t in task_ids for u in task_units(campaign, t) if not u.done(campaign)]
    if not todo:
        return 0
    ensure_data(campaign)
    resolve(campaign)  # the grid's templates and flows, before the first unit
    provenance = data_provenance(campaign)  # the data files' hashes, once
    cells: dict[tuple, object] = {}
    for i, unit in enumerate(todo, start=1):
        key = (unit.series, unit.window)
        if key not in cells:
            cells.clear()  # one prepared cell at a time
            cells[key] = series_cell(campaign, unit.series, unit.window)
        rec = _run_unit(campaign, unit, cells[key], provenance)
        if progress:
            progress(i, len(todo), f"{unit.describe()}: {rec['seconds']:.1f} s")
    return len(todo)


def slurm_task() -> int:
    """This SLURM array task's index (``SLURM_ARRAY_TASK_ID``); UsageError outside an array."""
    value = os.environ.get("SLURM_ARRAY_TASK_ID")
    if value is None or not value.isdigit():
        raise UsageError("--slurm-task: SLURM_ARRAY_TASK_ID is not set (run inside a SLURM array)")
    return int(value)


def load_unit(campaign: Campaign, unit: Unit):
    """The stored :class:`~objectives.bumphunt.FoldScores` of a finished unit."""
    from objectives.bumphunt import FoldScores

    npz, record = unit.paths(campaign)
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    info = json.loads(record.read_text())["info"]
    return FoldScores(
        arrays["data"], arrays["template"], arrays["data_index"], arrays["template_index"], info
    )
