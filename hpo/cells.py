"""From a campaign's grid to objectives cells and Optuna study names.

The data files of a cell are resolved here: the user's LHCO files, or the
built-in synthetic set generated once into ``<run_dir>/data``. CATHODE
templates come from a samples file: the user's, the exact synthetic
background (``background_model = "truth"``), or a trained flow
(``background_model = "flow"``), built once per signal amount and cached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from hpo.config import Campaign, GridPoint

__all__ = [
    "CampaignCell",
    "campaign_cells",
    "final_sources",
    "cell_key",
    "ensure_data",
    "study_name",
    "synthetic_files",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignCell:
    """A grid point with its study name and (lazily built) objectives cell."""

    point: GridPoint
    study_name: str
    campaign: Campaign

    def cell(self):
        """The objectives ``Cell`` (data files resolved; CATHODE samples built if needed)."""
        from hpo.templates import background_dir
        from objectives.cells import Cell, DataSpec

        c = self.campaign
        data_file, extrabkg_file = data_files(c)
        p = self.point
        samples = None
        if p.mode == "CATHODE":
            samples = samples_file(c, p.signal, p.feature_set)
        spec = DataSpec(
            data_file=data_file,
            extrabkg_file=extrabkg_file,
            samples_file=samples,
            feature_set=p.feature_set,
            include_delta_r=c.data.include_delta_r,
            n_noise=c.data.n_noise,
            shifted=c.data.shifted and c.data.source == "lhco",
            background_dir=background_dir(c),
            background_seed=c.data.seed,
            background_hp=tuple(sorted(c.data.background_hp.items())),
        )
        return Cell(
            classifier=p.classifier, mode=p.mode, signal=p.signal, rotation=p.rotation, data=spec
        )

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics this cell's trials record: the campaign's, or a density method's own.

        A density method has one label-free metric, ``val_loss``; it replaces the
        classifier metrics ARGOS and BCE, and ``max_sic`` stays if the campaign has it.
        """
        from objectives.methods import VAL_LOSS, is_density

        wanted, method = self.campaign.search.metrics, self.point.classifier
        if not is_density(method):
            return wanted
        oracle = "max_sic" in wanted and method != "BackgroundFlow"  # no score, no SIC
        return (VAL_LOSS,) + (("max_sic",) if oracle else ())

    @property
    def objective(self) -> str:
        """The metric this cell's study optimises (``val_loss`` for a density method)."""
        objective = self.campaign.search.objective
        return objective if objective in self.metrics else self.metrics[0]

    @property
    def key(self) -> str:
        """Readable cell key, e.g. ``HGB-IAD-norot-N1000-baseline``."""
        return cell_key(self.point)

    def describe(self) -> str:
        """A markdown note for optuna-dashboard."""
        c, p = self.campaign, self.point
        data = (
            f"synthetic (scale {c.data.scale}, seed {c.data.seed}"
            f"{', shifted' if c.data.shifted else ''})"
            if c.data.source == "synthetic"
            else f"LHCO `{c.data.data_file}`"
        )
        return (
            f"## {self.key}\n\n"
            f"| | |\n|---|---|\n"
            f"| campaign | `{c.name}` |\n| classifier | {p.classifier} |\n| mode | {p.mode} |\n"
            f"| signal amount N | {p.signal} |\n| rotation | {p.rotation} |\n"
            f"| features | {p.feature_set} |\n| data | {data} |\n"
            f"| objective | {self.objective} (sampler {c.search.sampler}) |\n"
            f"| target trials | {c.search.n_trials} x {c.search.repetitions} repetitions "
            f"on half statistics |\n"
        )


def cell_key(point: GridPoint) -> str:
    """Readable cell key: ``<classifier>-<mode>-<rot|norot>-N<signal>-<features>``."""
    rot = "rot" if point.rotation else "norot"
    return f"{point.classifier}-{point.mode}-{rot}-N{point.signal}-{point.feature_set}"


def study_name(campaign: Campaign, point: GridPoint) -> str:
    """Stable, readable study name: ``<campaign>.<cell key>``."""
    return f"{campaign.name}.{cell_key(point)}"


def campaign_cells(campaign: Campaign) -> list[CampaignCell]:
    """Every cell of the campaign, in grid order."""
    return [CampaignCell(p, study_name(campaign, p), campaign) for p in campaign.grid_points()]


def final_sources(campaign: Campaign) -> list[str]:
    """Where final runs take hyperparameters from: every cell metric, then ``default``."""
    sources: list[str] = []
    for cc in campaign_cells(campaign):
        sources.extend(m for m in cc.metrics if m not in sources)
    return sources + (["default"] if campaign.final.defaults else [])


def synthetic_files(campaign: Campaign) -> tuple[Path, Path]:
    """Where the campaign's synthetic data files live (they may not exist yet)."""
    from objectives.synthetic import SyntheticSpec, synthetic_paths

    spec = SyntheticSpec(
        scale=campaign.data.scale, shifted=campaign.data.shifted, seed=campaign.data.seed
    )
    return synthetic_paths(spec, campaign.run_dir / "data")


def data_files(campaign: Campaign) -> tuple[Path, Path]:
    """The data and extra-background files of the campaign (not generated here)."""
    if campaign.data.source == "lhco":
        return campaign.data.data_file, campaign.data.extrabkg_file
    return synthetic_files(campaign)


def ensure_data(campaign: Campaign) -> tuple[Path, Path]:
    """Generate the synthetic files if needed (idempotent); check LHCO files exist."""
    from objectives.errors import DataError

    if campaign.data.source == "synthetic":
        from objectives.synthetic import SyntheticSpec, write_synthetic

        spec = SyntheticSpec(
            scale=campaign.data.scale, shifted=campaign.data.shifted, seed=campaign.data.seed
        )
        return write_synthetic(spec, campaign.run_dir / "data")
    for path in data_files(campaign):
        if not path.exists():
            raise DataError(f"{path}: data file not found (data.data_file / data.extrabkg_file)")
    return data_files(campaign)


def samples_file(campaign: Campaign, signal: int, feature_set: str) -> Path:
    """The CATHODE template for one signal amount, built once if the campaign asks for it."""
    model = campaign.data.background_model
    if model == "file":
        return campaign.data.samples_file
    if model == "truth":
        from hpo.templates import truth_samples

        return truth_samples(campaign, signal)
    from hpo.templates import flow_samples

    return flow_samples(campaign, signal, feature_set)
