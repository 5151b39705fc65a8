"""A campaign's data: the files (LHCO, or the built-in synthetic set) and each cell's DataSpec.

The user's LHCO files are used as they are; the synthetic set is generated once
into ``<run_dir>/data`` (its extra background covering every cell's signal region).
"""

from __future__ import annotations

from pathlib import Path

from hpo.config import Campaign, GridPoint

__all__ = ["data_files", "data_spec", "ensure_data", "synthetic_files"]


def _synthetic_spec(campaign: Campaign):
    from objectives.synthetic import SyntheticSpec

    d = campaign.data
    return SyntheticSpec(scale=d.scale, shifted=d.shifted, seed=d.seed, extra_range=d.extra_range)


def synthetic_files(campaign: Campaign) -> tuple[Path, Path]:
    """Where the campaign's synthetic data files live (they may not exist yet)."""
    from objectives.synthetic import synthetic_paths

    return synthetic_paths(_synthetic_spec(campaign), campaign.run_dir / "data")


def data_files(campaign: Campaign) -> tuple[Path, Path]:
    """The data and extra-background files of the campaign (not generated here)."""
    if campaign.data.source == "lhco":
        return campaign.data.data_file, campaign.data.extrabkg_file
    return synthetic_files(campaign)


def data_spec(campaign: Campaign, point: GridPoint):
    """The ``DataSpec`` of a grid point: files, features and region (no templates yet)."""
    from objectives.cells import DataSpec

    c = campaign
    data_file, extrabkg_file = data_files(c)
    return DataSpec(
        data_file=data_file,
        extrabkg_file=extrabkg_file,
        feature_set=point.feature_set,
        include_delta_r=c.data.include_delta_r,
        n_noise=c.data.n_noise,
        shifted=c.data.shifted and c.data.source == "lhco",
        region=point.region,
    )


def ensure_data(campaign: Campaign) -> tuple[Path, Path]:
    """Generate the synthetic files if needed (idempotent); check LHCO files exist."""
    from objectives.errors import DataError

    if campaign.data.source == "synthetic":
        from objectives.synthetic import write_synthetic

        return write_synthetic(_synthetic_spec(campaign), campaign.run_dir / "data")
    for path in data_files(campaign):
        if not path.exists():
            raise DataError(f"{path}: data file not found (data.data_file / data.extrabkg_file)")
    return data_files(campaign)
