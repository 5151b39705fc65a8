"""Check every data file a campaign names before any study, data or trial exists.

``hpo validate`` and ``hpo create`` (and every worker at start) call
:func:`check_data`: each file is opened through the same data layer the trials
use, for every (feature set, signal amount) of the grid in the campaign's
signal region, so a problem surfaces as one ``DataError`` naming the file and
what is wrong, instead of failed trials:

* schema: an HDF5 pandas table with the LHC Olympics columns of the feature set;
* values: finite, jet masses >= 0, tau1 > 0 (tau ratios defined), labels 0 / 1;
* the signal region holds data events; the extra background covers it;
* the file holds at least the largest requested signal amount of signal events;
* every mode has a non-empty template (IAD, CWoLa) and a CATHODE ``samples_file`` has
  the shape ``[mjj, features...]`` and at least as many rows as SR data events.

A synthetic campaign is checked against the generator before its files exist
(enough signal events for every amount); once written, its files are checked
like any other.

A DarkMachines campaign reads every file through the real reader for every
channel of the grid: a malformed line is one error naming the file and the
line (or, with ``data.skip_bad_lines``, a counted skip); each channel must leave
enough background to hold out a test share and train on the rest, and at least
one signal event. What is worth knowing but not wrong (skipped lines, a signal
absent from a channel, too little test background for eps_B = 1e-4) comes back
as notes that ``hpo validate`` / ``hpo create`` print.
"""

from __future__ import annotations

import logging

from hpo.config import Campaign

__all__ = ["check_data"]

log = logging.getLogger(__name__)


def _check_synthetic_capacity(campaign: Campaign) -> None:
    from hpo.data import synthetic_files
    from objectives.errors import DataError
    from objectives.synthetic import SyntheticSpec

    d = campaign.data
    spec = SyntheticSpec(scale=d.scale, shifted=d.shifted, seed=d.seed, extra_range=d.extra_range)
    available = spec.sizes[1]
    wanted = max(campaign.grid.signal)
    if wanted > available:
        data_file, _ = synthetic_files(campaign)
        raise DataError(
            f"{data_file}: grid.signal asks for {wanted} signal events, but the synthetic set "
            f"at data.scale = {d.scale:g} holds {available}; lower the amount or raise the scale"
        )


def _check_samples(campaign: Campaign, rd, signal: int) -> None:
    from objectives.cells import CATHODE_OVERSAMPLING, read_samples
    from objectives.errors import DataError

    path = campaign.data.samples_file
    _, xs = read_samples(path, rd.sr.x.shape[1])
    n_sr = len(rd.sr)
    if xs.shape[0] < n_sr:
        raise DataError(
            f"{path}: {xs.shape[0]} samples, fewer than the {n_sr} signal-region data events "
            f"at N = {signal} (CATHODE uses {CATHODE_OVERSAMPLING}x as many)"
        )
    if xs.shape[0] < CATHODE_OVERSAMPLING * n_sr:
        log.warning(
            "%s: %d samples, fewer than %dx the %d SR data events at N = %d",
            path,
            xs.shape[0],
            CATHODE_OVERSAMPLING,
            n_sr,
            signal,
        )


def _check_darkmachines(campaign: Campaign, *, files_exist: bool, cached: bool) -> list[str]:
    from hpo.data import data_files, dm_spec, missing_file_error
    from objectives.darkmachines.cells import load_sets
    from objectives.unsupervised.metrics import CHALLENGE_EFFICIENCIES

    if campaign.data.background_file is None and not files_exist:
        return []  # the synthetic set, not generated yet
    for path in data_files(campaign):
        if not path.is_file():
            raise missing_file_error(campaign, path)
    notes: list[str] = []
    files = {}
    need = round(1 / min(CHALLENGE_EFFICIENCIES))
    for channel in campaign.grid.channels:
        spec = dm_spec(campaign, channel, cached=cached)
        files = spec.files
        sets = load_sets(spec)  # every file parsed: malformed lines, empty channels
        info = sets.info
        for name in info["empty_signals"]:
            notes.append(f"{files[name]}: no event in channel {channel}; left out of its tests")
        if info["n_test_background"] < need:
            notes.append(
                f"{spec.background_file}: {info['n_test_background']} test background events "
                f"in channel {channel}; eps_S at eps_B = {min(CHALLENGE_EFFICIENCIES):g} needs "
                f">= {need} (reported as nan)"
            )
        skipped = info["n_skipped_lines"]
    for name, n in skipped.items():
        if n:
            notes.append(
                f"{files[name]}: {n} malformed line(s) skipped (data.skip_bad_lines = true)"
            )
    return notes


def check_data(campaign: Campaign, *, files_exist: bool = True, cached: bool = False) -> list[str]:
    """Raise ``DataError`` (one line naming the file) for any problem a trial would meet.

    ``files_exist=False`` (a synthetic campaign before ``hpo create``) checks what can
    be checked without the files. ``cached`` (a worker): DarkMachines files are read
    through the events cache built by ``hpo create`` (a file changed since is parsed
    again). Returns notes worth printing (DarkMachines: skipped lines, absent signals).
    """
    from hpo.data import data_files, data_spec, missing_file_error
    from objectives.errors import DataError

    if campaign.data.darkmachines:
        return _check_darkmachines(campaign, files_exist=files_exist, cached=cached)
    if campaign.data.source == "synthetic":
        _check_synthetic_capacity(campaign)
        if not files_exist:
            return []
    for path in data_files(campaign):
        if not path.is_file():
            raise missing_file_error(campaign, path)
    modes = {p.mode for p in campaign.grid_points()}
    checked = set()
    for point in campaign.grid_points():
        spec = data_spec(campaign, point)
        key = (spec.features, point.signal, spec.region)
        if key in checked:
            continue
        checked.add(key)
        rd = spec.events(point.signal)  # schema, values, injection, SR, coverage
        if "IAD" in modes and len(rd.iad_template) == 0:
            raise DataError(f"{spec.extrabkg_file}: no background in {spec.region.describe()}")
        if "CWoLa" in modes and len(rd.sidebands) == 0:
            (a, b), (c, d) = spec.region.sidebands
            raise DataError(
                f"{spec.data_file}: no events in the sidebands {a:g}-{b:g} and {c:g}-{d:g} TeV"
            )
        if "CATHODE" in modes and campaign.data.background_model == "file":
            _check_samples(campaign, rd, point.signal)
    return []
