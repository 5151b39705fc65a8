"""From a campaign's grid to objectives cells and Optuna study names.

A cell's data files, features and region come from :mod:`hpo.data`, its
templates and background flows from :mod:`hpo.products` (built before any trial
runs); which metrics a cell records and optimises comes from the method registry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from hpo.config import Campaign, GridPoint
from hpo.data import data_spec

__all__ = [
    "ENSEMBLE",
    "CampaignCell",
    "campaign_cells",
    "cell_key",
    "cell_sources",
    "final_sources",
    "study_name",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignCell:
    """A grid point with its study name and its objectives cell."""

    point: GridPoint
    study_name: str
    campaign: Campaign

    @property
    def method(self):
        """The registry entry of the cell's method."""
        from objectives.registry import get_method

        return get_method(self.point.classifier)

    def cell(self):
        """The objectives ``Cell``: data files, features, region and the built products.

        Products are resolved once per process (``hpo.products.resolve``); the
        worker does that before its first trial, so here it is a lookup.
        """
        from hpo.products import resolve
        from objectives.cells import Cell

        p = self.point
        products = resolve(self.campaign)[p]
        if p.channel is not None:  # unsupervised: the channel's events, read from the cache
            from objectives.darkmachines.cells import DMCell

            return DMCell(p.classifier, p.mode, data_spec(self.campaign, p))
        spec = replace(
            data_spec(self.campaign, p),
            samples_file=products.samples_file,
            background_model=products.background_model,
        )
        return Cell(
            classifier=p.classifier,
            mode=p.mode,
            signal=p.signal,
            rotation=p.rotation,
            data=spec,
            argos_min_template=self.campaign.search.argos_min_template,
        )

    @property
    def searched(self) -> bool:
        """Whether the cell has hyperparameters to search (a one-variable cut has none,
        nor has a method whose every hyperparameter the campaign fixes)."""
        from hpo.spaces import space_for

        c, clf = self.campaign, self.point.classifier
        return bool(space_for(clf, c.search.space.get(clf), c.search.fixed.get(clf, {})))

    @property
    def skipped(self) -> str | None:
        """Why the cell runs nothing (a DarkMachines channel without background events, as
        the data check of ``hpo create`` found), or None."""
        from hpo.data import skipped_channels

        channel = self.point.channel
        return None if channel is None else skipped_channels(self.campaign).get(channel)

    @property
    def target_trials(self) -> int:
        """Trials its study runs: ``search.n_trials``, or 0 with nothing to search (such a
        cell is evaluated once, with its one setting, by ``hpo final``: identical trials
        would only repeat that evaluation) or in a skipped channel."""
        return self.campaign.search.n_trials if self.searched and not self.skipped else 0

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics this cell's trials record (the registry's rule over ``search.metrics``)."""
        return self.method.cell_metrics(self.campaign.search.metrics)

    @property
    def objective(self) -> str:
        """The metric this cell's study optimises (a density method's ``val_loss``)."""
        objective = self.campaign.search.objective
        return objective if objective in self.metrics else self.metrics[0]

    @property
    def key(self) -> str:
        """Readable cell key, e.g. ``HGB-IAD-norot-N1000-baseline``."""
        return cell_key(self.point)

    def describe(self) -> str:
        """A markdown note for optuna-dashboard."""
        c, p = self.campaign, self.point
        if p.channel is not None:
            return self._describe_unsupervised()
        data = (
            f"synthetic (scale {c.data.scale}, seed {c.data.seed}"
            f"{', shifted' if c.data.shifted else ''})"
            if c.data.source == "synthetic"
            else f"LHCO `{c.data.data_file}`"
        )
        return (
            f"## {self.key}\n\n"
            f"| | |\n|---|---|\n"
            f"| campaign | `{c.name}` |\n| method | {p.classifier} |\n| mode | {p.mode} |\n"
            f"| signal amount N | {p.signal} |\n| rotation | {p.rotation} |\n"
            f"| features | {p.feature_set} |\n| signal region | {p.region.describe()} |\n"
            f"| data | {data} |\n"
            f"| objective | {self.objective} (sampler {c.search.sampler}) |\n"
            f"| target trials | {c.search.n_trials} x {c.search.repetitions} repetitions "
            f"on half statistics |\n" + self._describe_selection()
        )

    def _describe_selection(self) -> str:
        """Note rows: the defaults trial, the reserved events, how BCE is shown."""
        from hpo.holdout import search_reserve

        c, rows = self.campaign, ""
        if c.search.enqueue_defaults:
            rows += "| first trial | the method's defaults (user attr `enqueued_as`) |\n"
        if reserve := search_reserve(c):
            rows += (
                f"| reserved events | {reserve:g} of each class, never held out by a trial: "
                "the final runs' label-free values |\n"
            )
        if "bce" in self.metrics:
            rows += (
                "| BCE | stays within 1e-3 of ln 2; user attr `ln2-bce[1e-4]` = "
                "(ln 2 - BCE) x 1e4 shows what separates trials (larger is better) |\n"
            )
        return rows

    def _describe_unsupervised(self) -> str:
        c, p = self.campaign, self.point
        data = (
            f"synthetic DarkMachines (scale {c.data.scale}, seed {c.data.seed})"
            if c.data.background_file is None
            else f"DarkMachines `{c.data.background_file}` + {len(c.data.signal_files)} signals"
        )
        return (
            f"## {self.key}\n\n"
            f"| | |\n|---|---|\n"
            f"| campaign | `{c.name}` |\n| method | {p.classifier} (trained on background) |\n"
            f"| backbone | {p.mode} |\n| channel | {p.channel} |\n| data | {data} |\n"
            + self._search_rows()
        )

    def _search_rows(self) -> str:
        c = self.campaign
        if not self.searched:
            return "| search | none: no hyperparameters; evaluated once by `hpo final` |\n"
        return (
            f"| objective | {self.objective} (sampler {c.search.sampler}) |\n"
            f"| target trials | {c.search.n_trials} x {c.search.repetitions} repetitions "
            f"on half of the background training pool |\n"
        )


def cell_key(point: GridPoint) -> str:
    """Readable cell key of a grid point (``GridPoint.key``)."""
    return point.key


def study_name(campaign: Campaign, point: GridPoint) -> str:
    """Stable, readable study name: ``<campaign>.<cell key>``."""
    return f"{campaign.name}.{cell_key(point)}"


def campaign_cells(campaign: Campaign) -> list[CampaignCell]:
    """Every cell of the campaign, in grid order."""
    return [CampaignCell(p, study_name(campaign, p), campaign) for p in campaign.grid_points()]


#: The hp source of ``hpo final`` that averages the scores of every completed trial.
ENSEMBLE = "ensemble"


def final_sources(campaign: Campaign) -> list[str]:
    """Where final runs take hyperparameters from: every cell metric, then ``default``,
    then ``ensemble`` (with ``final.ensemble``: the average over every completed trial,
    for the methods that can average)."""
    sources: list[str] = []
    cells = campaign_cells(campaign)
    for cc in cells:
        if cc.searched:
            sources.extend(m for m in cc.metrics if m not in sources)
    # a cell without a search has one setting: its defaults, whatever final.defaults says
    defaults = campaign.final.defaults or not all(cc.searched for cc in cells)
    sources += ["default"] if defaults else []
    return sources + ([ENSEMBLE] if campaign.final.ensemble else [])


def cell_sources(cc: CampaignCell, sources: list[str]) -> list[str]:
    """The sources of ``sources`` that apply to cell ``cc`` (its metrics, default, ensemble);
    a cell without a search has only ``default``, a cell of a skipped channel none."""
    if cc.skipped:
        return []
    if not cc.searched:
        return [s for s in sources if s == "default"]
    return [
        s
        for s in sources
        if (s == "default" and cc.campaign.final.defaults)
        or s in cc.metrics
        or (s == ENSEMBLE and cc.method.can_ensemble)
    ]
