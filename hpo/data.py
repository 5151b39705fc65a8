"""A campaign's data: the files (LHCO, or the built-in synthetic set) and each cell's DataSpec.

The user's LHCO files are used as they are; the synthetic set is generated once
into ``<run_dir>/data`` (its extra background covering every cell's signal region).
A bump hunt with ``delta_sys = "mc"`` also needs the extra background of an
alternative simulation: ``[bumphunt] alt_extrabkg_file`` on LHCO files, written by
the generator (``[bumphunt] mismodelling``) on synthetic data.
"""

from __future__ import annotations

from pathlib import Path

from hpo.config import Campaign, GridPoint

__all__ = [
    "alternative_file",
    "data_files",
    "data_spec",
    "ensure_data",
    "needs_alternative",
    "synthetic_files",
    "synthetic_spec",
]


def synthetic_spec(campaign: Campaign):
    """The campaign's ``SyntheticSpec`` (scale, shifted, seed, the extra background's range)."""
    from objectives.synthetic import SyntheticSpec

    d = campaign.data
    return SyntheticSpec(scale=d.scale, shifted=d.shifted, seed=d.seed, extra_range=d.extra_range)


def synthetic_files(campaign: Campaign) -> tuple[Path, Path]:
    """Where the campaign's synthetic data files live (they may not exist yet)."""
    from objectives.synthetic import synthetic_paths

    return synthetic_paths(synthetic_spec(campaign), campaign.run_dir / "data")


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


def needs_alternative(campaign: Campaign) -> bool:
    """Whether the campaign's bump hunt measures delta_sys with an alternative simulation."""
    b = campaign.bumphunt
    return b is not None and "mc" in b.delta_sys.values()


def alternative_file(campaign: Campaign) -> Path:
    """The alternative simulation's extra background (``delta_sys = "mc"``; may not exist yet)."""
    if campaign.data.source == "lhco":
        return campaign.bumphunt.alt_extrabkg_file
    from objectives.synthetic import alternative_path

    spec = synthetic_spec(campaign)
    return alternative_path(spec, campaign.bumphunt.mismodelling, campaign.run_dir / "data")


def ensure_data(campaign: Campaign) -> tuple[Path, Path]:
    """Generate the synthetic files if needed (idempotent); check LHCO files exist.

    Also the alternative simulation's extra background when the bump hunt needs it.
    """
    from objectives.errors import DataError

    if campaign.data.source == "synthetic":
        from objectives.synthetic import write_alternative, write_synthetic

        out = campaign.run_dir / "data"
        files = write_synthetic(synthetic_spec(campaign), out)
        if needs_alternative(campaign):
            write_alternative(synthetic_spec(campaign), campaign.bumphunt.mismodelling, out)
        return files
    paths = list(data_files(campaign))
    if needs_alternative(campaign):
        paths.append(alternative_file(campaign))
    for path in paths:
        if not path.exists():
            raise DataError(
                f"{path}: data file not found "
                "(data.data_file / data.extrabkg_file / bumphunt.alt_extrabkg_file)"
            )
    return data_files(campaign)
