"""The one data layer: a file's events read once per process, and the events of a region.

:func:`read_events` loads an LHCO-schema file (real or synthetic) with its derived
features and mjj, cached per process on the file's path, size and modification
time and the feature options, so every classifier cell, density method,
template and limit of a process shares one copy (and a file replaced on disk is
read again).

:func:`region_data` applies :mod:`objectives.injection` (background plus the
first ``N`` signal events; the test set) in a :class:`~objectives.regions.Region`
and keeps mjj, which the conditional flows and the CATHODE sampling need:

* ``sr``: signal-region data (background + injected signal), the label-1 class of
  every weakly supervised mode and the training data of ANODE / R-ANODE;
* ``sidebands``: data in the region's short sidebands (CWoLa's template);
* ``outside``: data outside the SR (where the CATHODE background flow trains);
* ``iad_template``: the first share of the extra background inside the region;
* ``test``: the rest of the extra background in the region plus the signal-region
  signal events not injected (at most ``MAX_TEST_SIGNAL``), labelled 1 = signal.

Both need the extra background across the whole region. Where it does not reach
(the real SR-only extra-background file and a bump-hunt window beside 3.3-3.7 TeV)
they are None and ``info["no_extra_background"]`` says why: CWoLa and CATHODE
still train there (without the truth oracle), IAD cannot
(:func:`objectives.cells.prepare` raises that reason as a DataError).

Arrays are shared between callers: never modify them in place.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from objectives.errors import DataError
from objectives.injection import inject, n_template, shift, test_signal
from objectives.regions import DEFAULT_REGION, Region

__all__ = [
    "BASELINE",
    "Features",
    "RegionData",
    "Sample",
    "coverage_gap",
    "read_events",
    "region_data",
]

log = logging.getLogger(__name__)

#: The extra background must reach within this fraction of the region's width of each edge.
COVERAGE_TOLERANCE = 0.1


@dataclass(frozen=True)
class Features:
    """How the features of a file are derived (see :func:`objectives.lhco.load_events`)."""

    feature_set: str = "baseline"
    include_delta_r: bool = False
    n_noise: int = 0
    #: CATHODE's correlation test applied at load time (real data): mJ1, dmJ += 0.1 mjj
    shifted: bool = False

    def describe(self) -> str:
        """Short tag for names, e.g. ``baseline+dR+noise3``."""
        tag = self.feature_set
        if self.include_delta_r:
            tag += "+dR"
        if self.n_noise:
            tag += f"+noise{self.n_noise}"
        if self.shifted:
            tag += "+shift"
        return tag

    def to_dict(self) -> dict:
        return asdict(self)


#: The four baseline features, no extras: the default of every reader.
BASELINE = Features()


@dataclass(frozen=True)
class Sample:
    """Events of one selection: features ``x`` (n, d), ``mjj`` (n,), truth ``label`` (n,)."""

    x: np.ndarray = field(repr=False)
    mjj: np.ndarray = field(repr=False)
    label: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.mjj)

    def take(self, index: np.ndarray) -> Sample:
        """The events at ``index`` (a copy)."""
        return Sample(self.x[index], self.mjj[index], self.label[index])


@dataclass(frozen=True)
class RegionData:
    """The events of one (data file, extra background file, features, signal, region)."""

    region: Region
    sr: Sample
    sidebands: Sample
    outside: Sample
    iad_template: Sample | None
    test: Sample | None
    feature_names: tuple[str, ...]
    info: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=8)
def _read(path: str, size: int, mtime_ns: int, features: Features):
    from objectives.lhco import load_events

    events = load_events(
        path,
        feature_set=features.feature_set,
        include_delta_r=features.include_delta_r,
        n_noise=features.n_noise,
    )
    x = shift(events.mjj, events.x) if features.shifted else events.x
    x.flags.writeable = False
    return events, x


def read_events(path: str | Path, features: Features = BASELINE):
    """``(Events, x)`` of a file: the loader's events and the features after the shift option.

    Cached per process on (path, size, mtime, features). Raises DataError for a
    missing or malformed file.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise DataError(f"{path}: data file not found ({exc.strerror or exc})") from exc
    if not path.is_file():
        raise DataError(f"{path}: not a file (expected an LHC Olympics R&D HDF5 file)")
    return _read(str(path.resolve()), st.st_size, st.st_mtime_ns, features)


def coverage_gap(mjj: np.ndarray, region: Region, path: Path) -> str | None:
    """Why the extra background ``mjj`` does not cover ``region``'s SR, or None if it does."""
    lo, hi = region.sr
    inside = mjj[region.in_sr(mjj)]
    tol = COVERAGE_TOLERANCE * (hi - lo)
    if inside.size == 0 or inside.min() > lo + tol or inside.max() < hi - tol:
        span = f"{mjj.min():.3f}-{mjj.max():.3f} TeV" if mjj.size else "no events"
        return (
            f"{path}: the extra background covers mjj {span}, not the whole signal region "
            f"{region.describe()}; the test set (and the IAD template) need background "
            "across the region"
        )
    return None


@functools.lru_cache(maxsize=16)
def _region_data(
    data_file: str,
    extrabkg_file: str | None,
    features: Features,
    signal: int,
    region: Region,
    stamps: tuple,
) -> RegionData:
    events, x = read_events(data_file, features)
    in_data, injected = inject(events.label, signal, str(events.path))
    sr = region.in_sr(events.mjj)
    all_events = Sample(x, events.mjj, events.label)
    sr_data = all_events.take(np.flatnonzero(in_data & sr))
    if len(sr_data) == 0:
        raise DataError(f"{events.path}: no events in the signal region {region.describe()}")
    info = {
        "region": region.to_dict(),
        "features": list(events.feature_names),
        "n_sr_data": len(sr_data),
        "n_sr_signal": int(np.count_nonzero(injected & sr)),
        "n_sr_background": int(np.count_nonzero((events.label == 0) & sr)),
        "data_sha256": events.sha256,
    }
    template = test = gap = None
    if extrabkg_file is not None:
        extra, x_extra = read_events(extrabkg_file, features)
        info["extrabkg_sha256"] = extra.sha256
        gap = coverage_gap(extra.mjj, region, extra.path)
        if gap is not None:
            info["no_extra_background"] = gap
    if extrabkg_file is not None and gap is None:
        keep = np.flatnonzero(region.in_sr(extra.mjj))
        if keep.size < extra.mjj.size:
            log.debug("%s: %d events outside %s", extra.path, extra.mjj.size - keep.size, region)
        extra_sr = Sample(x_extra, extra.mjj, extra.label).take(keep)
        n_iad = n_template(len(extra_sr))
        template = extra_sr.take(np.arange(n_iad))
        test_bkg = extra_sr.take(np.arange(n_iad, len(extra_sr)))
        test_sig = all_events.take(test_signal(events.label, injected, sr))
        test = Sample(
            np.concatenate([test_bkg.x, test_sig.x]),
            np.concatenate([test_bkg.mjj, test_sig.mjj]),
            np.concatenate([np.zeros(len(test_bkg), np.int8), np.ones(len(test_sig), np.int8)]),
        )
        info.update(
            n_iad_template=len(template),
            n_test_background=len(test_bkg),
            n_test_signal=len(test_sig),
        )
    return RegionData(
        region=region,
        sr=sr_data,
        sidebands=all_events.take(np.flatnonzero(in_data & region.in_sidebands(events.mjj))),
        outside=all_events.take(np.flatnonzero(in_data & ~sr)),
        iad_template=template,
        test=test,
        feature_names=tuple(events.feature_names),
        info=info,
    )


def _stamp(path: str | Path | None) -> tuple:
    if path is None:
        return ()
    try:
        st = Path(path).stat()
    except OSError:
        return ()
    return (st.st_size, st.st_mtime_ns)


def region_data(
    data_file: str | Path,
    extrabkg_file: str | Path | None,
    signal: int,
    *,
    features: Features = BASELINE,
    region: Region = DEFAULT_REGION,
) -> RegionData:
    """The events of ``data_file`` with ``signal`` events injected, in ``region``.

    Without ``extrabkg_file``, or where it does not cover the region, there is no IAD
    template and no test set (enough for a background model, CWoLa and CATHODE).
    Cached per process; raises DataError.
    """
    if int(signal) != signal or signal < 0:
        raise ValueError(f"signal must be an integer >= 0, got {signal!r}")
    extra = None if extrabkg_file is None else str(Path(extrabkg_file).resolve())
    return _region_data(
        str(Path(data_file).resolve()),
        extra,
        features,
        int(signal),
        region,
        (_stamp(data_file), _stamp(extrabkg_file)),
    )
