"""A campaign's data: the files (LHCO, DarkMachines, or a built-in synthetic set) and each
cell's data spec.

The user's files are used as they are; a synthetic set (LHCO-like, or
DarkMachines-like for ``data.source = "darkmachines"`` without files) is
generated once into ``<run_dir>/data`` (the LHCO one with its extra background
covering every cell's signal region). DarkMachines cells read their files
through the events cache ``<run_dir>/artifacts/events`` (built before trials,
see :mod:`hpo.products`); a channel that keeps no background event is skipped
(``<run_dir>/data/skipped_channels.json``, written by the data check of ``hpo
create`` and of every worker at start). A bump hunt with ``delta_sys = "mc"`` also needs the
extra background of an alternative simulation: ``[bumphunt] alt_extrabkg_file``
on LHCO files, written by the generator (``[bumphunt] mismodelling``) on
synthetic data.
"""

from __future__ import annotations

from pathlib import Path

from hpo.config import Campaign, GridPoint

__all__ = [
    "alternative_file",
    "data_files",
    "data_spec",
    "dm_files",
    "dm_spec",
    "ensure_data",
    "events_cache_dir",
    "missing_file_error",
    "needs_alternative",
    "record_skipped_channels",
    "skipped_channels",
    "skipped_channels_file",
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


def _dm_synthetic_spec(campaign: Campaign):
    from objectives.darkmachines import DMSyntheticSpec

    return DMSyntheticSpec(scale=campaign.data.scale, seed=campaign.data.seed)


def dm_files(campaign: Campaign) -> dict[str, Path]:
    """``{"background": path, signal: path, ...}`` of a DarkMachines campaign (may not exist)."""
    d = campaign.data
    if d.background_file is not None:
        return {"background": d.background_file, **dict(d.signal_files)}
    from objectives.darkmachines.synthetic import synthetic_paths

    return synthetic_paths(_dm_synthetic_spec(campaign), campaign.run_dir / "data")


def skipped_channels_file(campaign: Campaign) -> Path:
    """Where ``hpo create`` records the channels it skips (no background event in them)."""
    return campaign.run_dir / "data" / "skipped_channels.json"


_SKIPPED: dict[tuple, dict[str, str]] = {}


def record_skipped_channels(campaign: Campaign, skipped: dict[str, str]) -> None:
    """Write the channels ``hpo create`` (or a worker at start) skips, with why."""
    from objectives.files import atomic_write_json

    path = skipped_channels_file(campaign)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"campaign_sha256": campaign.sha256, "skipped": skipped})


def skipped_channels(campaign: Campaign) -> dict[str, str]:
    """Channel -> why its cells run nothing (a DarkMachines channel without background),
    as the last data check of this campaign recorded; {} before ``hpo create``."""
    import json

    path = skipped_channels_file(campaign)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}
    memo = (str(path), stamp, campaign.sha256)
    if memo not in _SKIPPED:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            record = {}
        fits = isinstance(record, dict) and record.get("campaign_sha256") == campaign.sha256
        _SKIPPED[memo] = dict(record.get("skipped", {})) if fits else {}
    return _SKIPPED[memo]


def events_cache_dir(campaign: Campaign) -> Path:
    """Where a DarkMachines campaign's parsed event files are cached."""
    return campaign.run_dir / "artifacts" / "events"


def data_files(campaign: Campaign) -> tuple[Path, ...]:
    """Every data file of the campaign (not generated here).

    LHCO sources: ``(data file, extra background file)``; DarkMachines: the background
    file, then the signal files.
    """
    if campaign.data.darkmachines:
        return tuple(dm_files(campaign).values())
    if campaign.data.source == "lhco":
        return campaign.data.data_file, campaign.data.extrabkg_file
    return synthetic_files(campaign)


def dm_spec(campaign: Campaign, channel: str, *, cached: bool = True):
    """The ``DMDataSpec`` of a DarkMachines channel (``cached``: read through the events cache)."""
    from objectives.darkmachines.cells import DMDataSpec

    d = campaign.data
    files = dm_files(campaign)
    return DMDataSpec(
        background_file=files.pop("background"),
        signal_files=tuple(files.items()),
        channel=channel,
        max_objects=d.max_objects,
        test_fraction=d.test_fraction,
        seed=d.seed,
        skip_bad_lines=d.skip_bad_lines,
        apply_cuts=d.apply_cuts,
        synthetic=d.background_file is None,
        cache_dir=events_cache_dir(campaign) if cached else None,
    )


def data_spec(campaign: Campaign, point: GridPoint):
    """The data spec of a grid point: ``DataSpec`` (files, features, region; no templates
    yet), or a ``DMDataSpec`` for an unsupervised cell."""
    from objectives.cells import DataSpec

    c = campaign
    if point.channel is not None:
        return dm_spec(c, point.channel)
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


def missing_file_error(campaign: Campaign, path: Path):
    """The DataError of a data file that does not exist, naming the fields that give it."""
    from objectives.errors import DataError

    if campaign.data.darkmachines:
        fields = "data.background_file / data.signal_files"
    else:
        fields = "data.data_file / data.extrabkg_file"
        fields += " / bumphunt.alt_extrabkg_file" if needs_alternative(campaign) else ""
    return DataError(f"{path}: data file not found ({fields})")


def ensure_data(campaign: Campaign) -> tuple[Path, ...]:
    """Generate the synthetic files if needed (idempotent); check the user's files exist.

    Also the alternative simulation's extra background when the bump hunt needs it.
    """
    d = campaign.data
    if d.source == "synthetic":
        from objectives.synthetic import write_alternative, write_synthetic

        out = campaign.run_dir / "data"
        files = write_synthetic(synthetic_spec(campaign), out)
        if needs_alternative(campaign):
            write_alternative(synthetic_spec(campaign), campaign.bumphunt.mismodelling, out)
        return files
    if d.darkmachines and d.background_file is None:
        from objectives.darkmachines import write_synthetic_darkmachines

        written = write_synthetic_darkmachines(
            _dm_synthetic_spec(campaign), campaign.run_dir / "data"
        )
        return tuple(written.values())
    paths = list(data_files(campaign))
    if needs_alternative(campaign):
        paths.append(alternative_file(campaign))
    for path in paths:
        if not path.exists():
            raise missing_file_error(campaign, path)
    return data_files(campaign)
