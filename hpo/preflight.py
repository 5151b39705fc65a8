"""Check every data file a campaign names before any study, data or trial exists.

``hpo validate`` and ``hpo create`` (and every worker at start) call
:func:`check_data`: each file is opened through the same data layer the trials
use, for every (feature set, signal amount) of the grid in the campaign's
signal region, so a problem surfaces as one ``DataError`` naming the file and
what is wrong, instead of failed trials:

* schema: an HDF5 pandas table with the LHC Olympics columns of the feature set;
* values: finite, jet masses >= 0, tau1 > 0 (tau ratios defined), labels 0 / 1;
* the signal region holds data events; the extra background covers it wherever a
  cell needs it: IAD (its template), ANODE and R-ANODE (they score the test set);
  the error names every window (``grid.windows``) IAD cannot run in. CWoLa and
  CATHODE run in every window (without the truth oracle where the extra
  background is missing: a warning says so);
* the bump hunt's alternative simulation (``delta_sys = "mc"``) covers IAD's windows;
* the file holds at least the largest requested signal amount of signal events;
* every mode has a non-empty template (IAD, CWoLa) and a CATHODE ``samples_file`` has
  the shape ``[mjj, features...]``, at least as many rows as SR data events, and its
  mjj inside the signal region (one file is one region's template, not a window scan's).

A synthetic campaign is checked against the generator before its files exist
(enough signal events for every amount); once written, its files are checked
like any other.

A DarkMachines campaign reads every file through the real reader for every
channel of the grid: a malformed line is one error naming the file and the
line (or, with ``data.skip_bad_lines``, a counted skip); a file in GeV instead of
MeV is an error (:mod:`objectives.darkmachines.checks`); a channel without
background events is skipped (a note; the other channels run; none left is an
error); every other channel must leave a detector ``MIN_TRAIN_EVENTS`` background
events to train on under half statistics, and at least one signal event. What is
worth knowing but not wrong (skipped lines and channels, a signal absent from a
channel, too little test background for eps_B = 1e-4, event weights, files that
``apply_cuts = false`` takes for a channel they plainly are not) comes back as notes
that ``hpo validate`` / ``hpo create`` print.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hpo.config import Campaign

__all__ = ["check_data"]

log = logging.getLogger(__name__)

#: Share of CATHODE samples allowed outside the signal region (a KDE's edge effects).
MAX_OUTSIDE = 0.01


def _check_synthetic_capacity(campaign: Campaign) -> None:
    from hpo.data import synthetic_files, synthetic_spec
    from objectives.errors import DataError

    d = campaign.data
    available = synthetic_spec(campaign).sizes[1]
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
    mjj, xs = read_samples(path, rd.sr.x.shape[1])
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
    outside = int(np.count_nonzero(~rd.region.in_sr(mjj)))
    if outside > MAX_OUTSIDE * len(mjj):
        raise DataError(
            f"{path}: {outside} of {len(mjj)} samples have mjj outside the signal region "
            f"{rd.region.describe()} (they span {mjj.min():.3f}-{mjj.max():.3f} TeV): a samples "
            "file is the template of one region; for other windows use "
            "data.background_model = 'flow' (a flow per window) or 'truth'"
        )


def _check_darkmachines(
    campaign: Campaign, *, files_exist: bool, cached: bool, record: bool
) -> list[str]:
    from hpo.data import data_files, dm_spec, missing_file_error, record_skipped_channels
    from objectives.darkmachines.cells import background_events, load_sets
    from objectives.errors import DataError
    from objectives.unsupervised.metrics import CHALLENGE_EFFICIENCIES

    if campaign.data.background_file is None and not files_exist:
        return []  # the synthetic set, not generated yet
    for path in data_files(campaign):
        if not path.is_file():
            raise missing_file_error(campaign, path)
    notes: list[str] = []
    if not cached:  # the files as written (a worker's cache was built from checked files)
        notes += _check_dm_files(campaign)
    files, skipped_lines = {}, {}
    skipped: dict[str, str] = {}
    need = round(1 / min(CHALLENGE_EFFICIENCIES))
    for channel in campaign.grid.channels:
        spec = dm_spec(campaign, channel, cached=cached)
        files = spec.files
        if len(background_events(spec)) == 0:
            skipped[channel] = f"no background event of {spec.background_file} in channel {channel}"
            notes.append(
                f"{spec.background_file}: no background event passes channel {channel}'s "
                "cuts: its cells are skipped, the other channels run"
            )
            continue
        _check_training_size(spec)
        sets = load_sets(spec)  # every file parsed: malformed lines, empty channels
        info = sets.info
        for name in info["empty_signals"]:
            notes.append(f"{files[name]}: no event in channel {channel}; left out of its tests")
        if info["weights"] != "uniform":
            what = (
                "the truth metrics (AUC, eps_S) weight the test events with them"
                if info["weights"] == "used"
                else f"the truth metrics ignore them ({info['weights'].removeprefix('ignored: ')})"
            )
            notes.append(
                f"{spec.background_file}: event weights differ in channel {channel}: {what}"
            )
        if info["n_test_background"] < need:
            notes.append(
                f"{spec.background_file}: {info['n_test_background']} test background events "
                f"in channel {channel}; eps_S at eps_B = {min(CHALLENGE_EFFICIENCIES):g} needs "
                f">= {need} (reported as nan)"
            )
        skipped_lines = info["n_skipped_lines"]  # per file: the same in every channel
    for name, n in skipped_lines.items():
        if n:
            notes.append(
                f"{files[name]}: {n} malformed line(s) skipped (data.skip_bad_lines = true)"
            )
    if len(skipped) == len(campaign.grid.channels):
        raise DataError(
            f"{files['background']}: no background event passes the cuts of any channel of "
            f"grid.channels ({', '.join(campaign.grid.channels)}): nothing to train on"
        )
    if record:
        record_skipped_channels(campaign, skipped)
    return notes


def _check_training_size(spec) -> None:
    """A detector trains on at least ``MIN_TRAIN_EVENTS`` background events (half statistics)."""
    from objectives.darkmachines.cells import background_events, split_sizes
    from objectives.darkmachines.checks import MIN_TRAIN_EVENTS
    from objectives.errors import DataError
    from objectives.splits import Split

    n = len(background_events(spec))
    pool, _ = split_sizes(n, spec.test_fraction)
    train, _ = Split.half(0).indices(np.zeros(pool, dtype=np.int8))
    if len(train) < MIN_TRAIN_EVENTS:
        raise DataError(
            f"{spec.background_file}: channel {spec.channel} keeps {n} background events, so a "
            f"detector trains on {len(train)} (half of the {pool} left after holding out "
            f"data.test_fraction = {spec.test_fraction:g} for the test); the minimum is "
            f"{MIN_TRAIN_EVENTS}: use more background events or drop channel {spec.channel} "
            "from grid.channels"
        )


def _check_dm_files(campaign: Campaign) -> list[str]:
    """Each file in MeV (DataError otherwise); with ``apply_cuts = false`` the background
    should look like its channel's events (a note otherwise)."""
    from hpo.data import dm_spec
    from objectives.darkmachines.cells import channel_cuts, read_file
    from objectives.darkmachines.checks import describe_cuts, pass_fraction, unit_problem
    from objectives.errors import DataError

    d = campaign.data
    spec = dm_spec(campaign, campaign.grid.channels[0], cached=False)
    notes = []
    for path in spec.files.values():
        ev = read_file(path, None, max_objects=d.max_objects, skip_bad_lines=d.skip_bad_lines)
        problem = unit_problem(ev)
        if problem:
            raise DataError(f"{path}: {problem}")
        cuts = channel_cuts(spec.channel)
        if d.apply_cuts or cuts is None or path != spec.background_file:
            continue
        share = pass_fraction(ev, cuts)
        if share < 0.5:
            notes.append(
                f"{path}: data.apply_cuts = false takes these events as channel "
                f"{spec.channel}'s, but only {share:.0%} of them pass its cuts "
                f"({describe_cuts(cuts)}); results will be labelled channel {spec.channel}: "
                "set data.apply_cuts = true to select its events, or name the file's channel"
            )
    return notes


def check_data(
    campaign: Campaign, *, files_exist: bool = True, cached: bool = False, record: bool = False
) -> list[str]:
    """Raise ``DataError`` (one line naming the file) for any problem a trial would meet.

    ``files_exist=False`` (a synthetic campaign before ``hpo create``) checks what can
    be checked without the files. ``cached`` (a worker): DarkMachines files are read
    through the events cache built by ``hpo create`` (a file changed since is parsed
    again). ``record`` (``hpo create``, ``hpo launch``, a worker at start): write the
    DarkMachines channels it skips into the run directory. Returns notes worth printing
    (DarkMachines: skipped lines and channels, absent signals, weights).
    """
    from hpo.data import data_files, data_spec, missing_file_error, needs_alternative
    from objectives.errors import DataError

    if campaign.data.darkmachines:
        return _check_darkmachines(campaign, files_exist=files_exist, cached=cached, record=record)
    if campaign.data.source == "synthetic":
        _check_synthetic_capacity(campaign)
        if not files_exist:
            return []
    for path in data_files(campaign):
        if not path.is_file():
            raise missing_file_error(campaign, path)
    modes = {p.mode for p in campaign.grid_points()}
    checked = set()
    uncovered: dict = {}  # region -> why the extra background misses it
    for point in campaign.grid_points():
        spec = data_spec(campaign, point)
        key = (spec.features, point.signal, spec.region)
        if key in checked:
            continue
        checked.add(key)
        rd = spec.events(point.signal)  # schema, values, injection, SR, coverage
        if rd.iad_template is None:
            uncovered[spec.region] = rd.info["no_extra_background"]
        elif "IAD" in modes and len(rd.iad_template) == 0:
            raise DataError(f"{spec.extrabkg_file}: no background in {spec.region.describe()}")
        if "CWoLa" in modes and len(rd.sidebands) == 0:
            (a, b), (c, d) = spec.region.sidebands
            raise DataError(
                f"{spec.data_file}: no events in the sidebands {a:g}-{b:g} and {c:g}-{d:g} TeV"
            )
        if "CATHODE" in modes and campaign.data.background_model == "file":
            _check_samples(campaign, rd, point.signal)
    _check_coverage(campaign, uncovered, data_files(campaign)[1])
    if needs_alternative(campaign):
        _check_alternative(campaign)
    return []


def _where(campaign: Campaign, regions) -> str:
    """``window(s) 4, 6 (signal regions 3.2-3.6, 3.4-3.8 TeV)`` or the regions alone."""
    from objectives.regions import Region

    regions = sorted(regions, key=lambda r: r.sr)
    srs = ", ".join(f"{r.sr[0]:g}-{r.sr[1]:g}" for r in regions)
    windows = campaign.grid.windows or ()
    numbers = [w for w in windows if Region.window(w) in regions]
    if len(numbers) == len(regions):
        plural = "s" if len(numbers) > 1 else ""
        return f"window{plural} {', '.join(map(str, numbers))} (signal region{plural} {srs} TeV)"
    return f"the signal region{'s' if len(regions) > 1 else ''} {srs} TeV"


def _check_coverage(campaign: Campaign, uncovered: dict, extrabkg: Path) -> None:
    """IAD, ANODE and R-ANODE need the extra background across their regions; others warn."""
    from objectives.errors import DataError
    from objectives.registry import get_method

    if not uncovered:
        return
    needs = sorted(
        {
            p.mode if p.mode == "IAD" else p.classifier
            for p in campaign.grid_points()
            if p.region in uncovered
            and (p.mode == "IAD" or get_method(p.classifier).needs_background_flow)
        }
    )
    reason = next(iter(uncovered.values())).split(";")[0].removeprefix(f"{extrabkg}: ")
    if needs:
        raise DataError(
            f"{extrabkg}: {reason}: {' and '.join(needs)} cannot run in "
            f"{_where(campaign, uncovered)}: IAD trains against simulated background across "
            "the window, ANODE and R-ANODE score its test set; CWoLa and CATHODE run in every "
            "window. Drop those windows or those methods"
        )
    log.warning(
        "%s: %s: no test set in %s, so no max SIC (the truth oracle) there",
        extrabkg,
        reason,
        _where(campaign, uncovered),
    )


def _check_alternative(campaign: Campaign) -> None:
    """The alternative simulation (``delta_sys = "mc"``) covers every IAD window."""
    from hpo.data import alternative_file, data_spec
    from objectives.data import region_data
    from objectives.errors import DataError

    alt = alternative_file(campaign)
    if not alt.is_file():
        raise DataError(f"{alt}: data file not found (bumphunt.alt_extrabkg_file)")
    if campaign.bumphunt.delta_sys.get("IAD") != "mc":
        return
    missing = set()
    for point in campaign.grid_points():
        if point.mode != "IAD" or point.signal != 0:
            continue
        spec = data_spec(campaign, point)
        rd = region_data(spec.data_file, alt, 0, features=spec.features, region=spec.region)
        if rd.iad_template is None:
            missing.add(spec.region)
    if missing:
        raise DataError(
            f"{alt}: the alternative simulation does not cover {_where(campaign, missing)}; "
            "delta_sys = 'mc' for IAD needs it across every window"
        )
