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
line (or, with ``data.skip_bad_lines``, a counted skip); each channel must leave
enough background to hold out a test share and train on the rest, and at least
one signal event. What is worth knowing but not wrong (skipped lines, a signal
absent from a channel, too little test background for eps_B = 1e-4) comes back
as notes that ``hpo validate`` / ``hpo create`` print.
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
    from hpo.data import data_files, data_spec, missing_file_error, needs_alternative
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
