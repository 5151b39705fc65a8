"""Cells and the weakly supervised training sets of the classifier modes.

A :class:`Cell` is one point of a campaign grid: method x mode x signal amount x
rotation x data (files, features, region, and the templates built for it).
:func:`prepare` turns the events of :func:`objectives.data.region_data` into the
weakly supervised training set (label 1 = signal-region data, label 0 =
background template) and the truth-labelled test set, standardised and
optionally rotated; it is cached per process on everything but the method, so
every trial of every classifier reuses it.

Modes (what label 1 is separated from):

* ``IAD``: simulated signal-region background (the first part of the extra
  background file inside the region);
* ``CWoLa``: data in the region's short sidebands;
* ``CATHODE``: samples of a background model, read from ``samples_file``
  (rows ``[mjj, features...]``), four times as many as signal-region data.

The test set is the same for every mode, so cells compare directly; a region the
extra background does not cover has none (``X_test`` None: no truth oracle), and
IAD cannot train there. ``DataSpec.train_on = "sidebands"`` (CATHODE only) puts
the short-sideband data in place of the signal-region data against samples of
the background model in the sidebands: the bump hunt's data-driven estimate of
CATHODE's systematic. Cells of the density methods (mode ``"density"``) train on
the events with mjj kept (:mod:`objectives.flows.methods`).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from objectives.data import Features, region_data
from objectives.errors import DataError
from objectives.regions import DEFAULT_REGION, Region

__all__ = [
    "CATHODE_OVERSAMPLING",
    "MODES",
    "Cell",
    "DataSpec",
    "TRAIN_ON",
    "PreparedCell",
    "cathode_template",
    "prepare",
    "random_rotation",
    "read_samples",
    "training_events",
]

log = logging.getLogger(__name__)

MODES = ("IAD", "CWoLa", "CATHODE")
#: Samples of the background model per signal-region data event (CATHODE).
CATHODE_OVERSAMPLING = 4
#: Seed of the fixed random rotation, as in the reference (scipy special_ortho_group).
ROTATION_SEED = 1
#: What label 1 of a classifier cell is: signal-region data, or short-sideband data.
TRAIN_ON = ("sr", "sidebands")


@dataclass(frozen=True)
class DataSpec:
    """Where the events of a cell come from, which features and region, and its templates."""

    data_file: Path
    extrabkg_file: Path
    #: CATHODE template: ``.npy`` rows ``[mjj, features...]`` of background-model samples
    #: (ANODE / R-ANODE: the template of their ARGOS / BCE; default: the samples cached
    #: with ``background_model``)
    samples_file: Path | None = None
    #: density methods: the trained background flow (``model.pt`` of a cached entry)
    background_model: Path | None = None
    feature_set: str = "baseline"
    include_delta_r: bool = False
    n_noise: int = 0
    shifted: bool = False
    region: Region = DEFAULT_REGION
    #: label 1 of the classifier modes: "sr" (signal-region data) or "sidebands" (CATHODE)
    train_on: str = "sr"

    def __post_init__(self) -> None:
        for name in ("data_file", "extrabkg_file", "samples_file", "background_model"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        if self.train_on not in TRAIN_ON:
            raise ValueError(
                f"DataSpec.train_on: must be 'sr' or 'sidebands', got {self.train_on!r}"
            )

    @property
    def features(self) -> Features:
        return Features(self.feature_set, self.include_delta_r, self.n_noise, self.shifted)

    def describe(self) -> str:
        """Feature tag, plus the region off the default: ``baseline+dR``, ``baseline+SR3.4-3.8``."""
        tag = self.features.describe()
        tag = tag if self.region.is_default else f"{tag}+{self.region.tag}"
        return tag if self.train_on == "sr" else f"{tag}+on-sidebands"

    def events(self, signal: int, *, with_test: bool = True):
        """The :class:`~objectives.data.RegionData` of this data with ``signal`` injected."""
        return region_data(
            self.data_file,
            self.extrabkg_file if with_test else None,
            signal,
            features=self.features,
            region=self.region,
        )


@dataclass(frozen=True)
class Cell:
    """One grid point: method (``classifier``) x mode x signal amount x rotation x data."""

    classifier: str
    mode: str
    signal: int
    rotation: bool
    data: DataSpec
    #: ARGOS counts only cuts passing at least this many template events (0: the paper's)
    argos_min_template: int = 0

    def __post_init__(self) -> None:
        from objectives.registry import get_method

        method = get_method(self.classifier)
        if self.mode not in method.modes:
            raise ValueError(
                f"{self.classifier} cells have mode {' or '.join(map(repr, method.modes))}, "
                f"got {self.mode!r}"
            )
        if int(self.signal) != self.signal or self.signal < 0:
            raise ValueError(f"cell signal must be an integer >= 0, got {self.signal!r}")

    def key(self) -> str:
        """Stable, readable name, e.g. ``HGB-IAD-rot-N1000-baseline``."""
        rot = "rot" if self.rotation else "norot"
        return f"{self.classifier}-{self.mode}-{rot}-N{self.signal}-{self.data.describe()}"

    def to_dict(self) -> dict:
        """JSON-friendly description (paths as strings)."""
        d = asdict(self)
        d["data"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in d["data"].items()}
        return d


@dataclass
class PreparedCell:
    """The arrays one cell trains and tests on, standardised and (optionally) rotated."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    #: the labelled test set; None where the region has none (no extra background there)
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    info: dict = field(default_factory=dict)


def random_rotation(n: int, seed: int = ROTATION_SEED) -> np.ndarray:
    """A fixed random SO(n) matrix (Haar-distributed, seeded)."""
    from scipy.stats import special_ortho_group

    if n == 1:
        return np.ones((1, 1))
    return special_ortho_group.rvs(dim=n, random_state=seed)


def read_samples(path: Path, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mjj, x)`` of a CATHODE samples file (``.npy`` rows ``[mjj, features...]``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: CATHODE samples file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from exc
    if arr.ndim != 2 or arr.shape[1] != n_features + 1:
        raise DataError(
            f"{path}: CATHODE samples must be rows [mjj, {n_features} features], "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: {np.count_nonzero(~np.isfinite(arr).all(1))} rows hold NaN/inf")
    return arr[:, 0], arr[:, 1:]


def cathode_template(
    samples_file: Path, n_data: int, n_features: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(mjj, x)`` of a CATHODE template: the first ``CATHODE_OVERSAMPLING`` x ``n_data`` rows.

    Every method that compares signal-region data with background-model samples uses
    these rows (CATHODE classifiers, the label-free metrics of ANODE / R-ANODE); a file
    with fewer rows is used whole, with a warning.
    """
    mjj, xs = read_samples(samples_file, n_features)
    want = CATHODE_OVERSAMPLING * n_data
    if xs.shape[0] < want:
        log.warning(
            "%s: %d samples, fewer than %dx the %d SR data events",
            samples_file,
            xs.shape[0],
            CATHODE_OVERSAMPLING,
            n_data,
        )
    return mjj[:want], xs[:want]


def _template(mode: str, rd, data: DataSpec, n_data: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mjj, x)`` of the template of ``mode``."""
    if mode == "IAD":
        if rd.iad_template is None:
            raise DataError(rd.info.get("no_extra_background", "IAD needs data.extrabkg_file"))
        return rd.iad_template.mjj, rd.iad_template.x
    if mode == "CWoLa":
        return rd.sidebands.mjj, rd.sidebands.x
    if data.samples_file is None:
        raise DataError("CATHODE mode needs data.samples_file (background-model samples)")
    return cathode_template(data.samples_file, n_data, rd.sr.x.shape[1])


def training_events(mode: str, signal: int, data: DataSpec):
    """``(rd, (mjj1, X1), (mjj0, X0))``: the raw label-1 events and template of a cell.

    Before standardisation and rotation, in the row order of the prepared cell (a
    held-out fold's ``data_index`` / ``template_index`` count these rows). The same
    event has the same raw row in every cell it is part of (the bump hunt's windows
    overlap: :mod:`objectives.delta_sys` tells events apart by these rows).
    """
    if data.train_on == "sidebands" and mode != "CATHODE":
        raise ValueError(f"{mode} cells train on signal-region data; only CATHODE on sidebands")
    rd = data.events(signal)
    one = rd.sr if data.train_on == "sr" else rd.sidebands
    return rd, (one.mjj, one.x), _template(mode, rd, data, len(one))


@functools.lru_cache(maxsize=16)
def _prepare(mode: str, signal: int, rotation: bool, data: DataSpec) -> PreparedCell:
    from objectives.metrics import balanced_weights

    rd, (_, X1), (_, X0) = training_events(mode, signal, data)
    if X0.shape[0] == 0:
        raise DataError(f"{mode} template for {data.data_file} in {rd.region.describe()} is empty")
    X = np.concatenate([X1, X0])
    y = np.concatenate([np.ones(len(X1), np.int8), np.zeros(len(X0), np.int8)])
    has_test = rd.test is not None and data.train_on == "sr"
    X_test = rd.test.x if has_test else None
    if rotation:
        R = random_rotation(X.shape[1])
        X = X @ R.T
        X_test = X_test @ R.T if has_test else None
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std == 0] = 1.0
    X = ((X - mean) / std).astype(np.float32)
    X_test = ((X_test - mean) / std).astype(np.float32) if has_test else None

    n_sig, n_bkg = rd.info["n_sr_signal"], rd.info["n_sr_background"]
    info = {
        **rd.info,
        "mode": mode,
        "signal": signal,
        "rotation": rotation,
        "train_on": data.train_on,
        "n_data": len(X1),
        "s_over_b": n_sig / max(n_bkg, 1),
        "s_over_sqrt_b": n_sig / np.sqrt(max(n_bkg, 1)),
        "n_template": int(X0.shape[0]),
        "rotation_seed": ROTATION_SEED if rotation else None,
    }
    log.info(
        "prepared %s N=%d in %s: %d %s data (%d signal in the SR), %d template, test %s",
        mode,
        signal,
        rd.region.describe(),
        len(X1),
        "SR" if data.train_on == "sr" else "sideband",
        n_sig,
        info["n_template"],
        f"{info['n_test_background']}+{info['n_test_signal']}" if has_test else "none",
    )
    return PreparedCell(
        X=X,
        y=y,
        w=balanced_weights(y),
        X_test=X_test,
        y_test=rd.test.label.copy() if has_test else None,
        info=info,
    )


def prepare(cell: Cell) -> PreparedCell:
    """The training and test arrays of a classifier cell, computed once per process."""
    if cell.mode not in MODES:
        raise ValueError(f"{cell.key()}: {cell.classifier} cells are not prepared here")
    return _prepare(cell.mode, int(cell.signal), bool(cell.rotation), cell.data)
