"""Cells and their preparation: signal injection, training sets, rotation, standardisation.

A :class:`Cell` is one point of a campaign grid (classifier x mode x signal
amount x rotation x data). :func:`prepare` turns the data files into the
weakly supervised training set (label 1 = signal-region data, label 0 =
background template) and the truth-labelled test set. It is cached per
process on everything but the classifier, so the 1M-event preparation runs
once and every trial of every classifier reuses it.

Modes (what label 1 is separated from):

* ``IAD``: simulated signal-region background (the first part of the extra
  background file);
* ``CWoLa``: data in the short sidebands (3.1-3.3 and 3.7-3.9 TeV);
* ``CATHODE``: samples of a background model, read from ``samples_file``
  (rows ``[mjj, features...]``), four times as many as signal-region data.

The test set (rest of the extra background + signal not injected, both in
the signal region) is the same for every mode, so cells compare directly.

Cells of the density methods (ANODE, R-ANODE, BackgroundFlow; mode
``"density"``) are not prepared here: ``objectives.flows.methods`` reads
their events with mjj kept.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from objectives.errors import DataError
from objectives.injection import (
    inject,
    n_template,
    shift,
    test_signal,
)

__all__ = [
    "MODES",
    "Cell",
    "DataSpec",
    "PreparedCell",
    "half_split",
    "prepare",
    "random_rotation",
]

log = logging.getLogger(__name__)

MODES = ("IAD", "CWoLa", "CATHODE")
#: Samples of the background model per signal-region data event (CATHODE).
CATHODE_OVERSAMPLING = 4
#: Seed of the fixed random rotation, as in the reference (scipy special_ortho_group).
ROTATION_SEED = 1


@dataclass(frozen=True)
class DataSpec:
    """Where the events of a cell come from and which features are used."""

    data_file: Path
    extrabkg_file: Path
    samples_file: Path | None = None
    feature_set: str = "baseline"
    include_delta_r: bool = False
    n_noise: int = 0
    shifted: bool = False
    #: density methods: where the cached background flows live, and their seed and
    #: hyperparameters (``(name, value)`` pairs over the published defaults)
    background_dir: Path | None = None
    background_seed: int = 0
    background_hp: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_file", Path(self.data_file))
        object.__setattr__(self, "extrabkg_file", Path(self.extrabkg_file))
        for name in ("samples_file", "background_dir"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        if isinstance(self.background_hp, dict):
            object.__setattr__(self, "background_hp", tuple(sorted(self.background_hp.items())))

    def describe(self) -> str:
        """Short feature tag for names, e.g. ``baseline+dR+noise3``."""
        tag = self.feature_set
        if self.include_delta_r:
            tag += "+dR"
        if self.n_noise:
            tag += f"+noise{self.n_noise}"
        if self.shifted:
            tag += "+shift"
        return tag


@dataclass(frozen=True)
class Cell:
    """One grid point: classifier x mode x signal amount x rotation x data."""

    classifier: str
    mode: str
    signal: int
    rotation: bool
    data: DataSpec

    def __post_init__(self) -> None:
        from objectives.methods import DENSITY_MODE, is_density

        if is_density(self.classifier):
            if self.mode != DENSITY_MODE:
                raise ValueError(
                    f"{self.classifier} cells have mode {DENSITY_MODE!r}, got {self.mode!r}"
                )
        elif self.mode not in MODES:
            raise ValueError(f"cell mode must be one of {', '.join(MODES)}, got {self.mode!r}")
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
    X_test: np.ndarray
    y_test: np.ndarray
    info: dict = field(default_factory=dict)
    #: test features before rotation and standardisation (for exact-likelihood checks)
    x_test_raw: np.ndarray | None = None


def random_rotation(n: int, seed: int = ROTATION_SEED) -> np.ndarray:
    """A fixed random SO(n) matrix (Haar-distributed, seeded)."""
    from scipy.stats import special_ortho_group

    if n == 1:
        return np.ones((1, 1))
    return special_ortho_group.rvs(dim=n, random_state=seed)


def half_split(y: np.ndarray, run: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified 50/50 split of a labelled set, seeded by the run index.

    Returns sorted (train, held-out) index arrays; disjoint, covering every
    index, each class split in half (the odd event goes to training).
    """
    rng = np.random.default_rng(np.random.SeedSequence([0x5A11, int(run)]))
    train, held = [], []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        idx = idx[rng.permutation(idx.size)]
        cut = (idx.size + 1) // 2
        train.append(idx[:cut])
        held.append(idx[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


@functools.lru_cache(maxsize=8)
def _load(path: Path, feature_set: str, include_delta_r: bool, n_noise: int):
    from objectives.lhco import load_events

    return load_events(
        path, feature_set=feature_set, include_delta_r=include_delta_r, n_noise=n_noise
    )


def _read_samples(path: Path, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise DataError(f"{path}: CATHODE samples file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from exc
    if arr.ndim != 2 or arr.shape[1] != n_features + 1:
        raise DataError(
            f"{path}: CATHODE samples must be rows [mjj, {n_features} features], "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: {np.count_nonzero(~np.isfinite(arr).all(1))} rows hold NaN/inf")
    return arr[:, 0], arr[:, 1:]


@functools.lru_cache(maxsize=16)
def _prepare(mode: str, signal: int, rotation: bool, data: DataSpec) -> PreparedCell:
    from objectives.metrics import balanced_weights
    from objectives.regions import in_short_sidebands, in_sr

    events = _load(data.data_file, data.feature_set, data.include_delta_r, data.n_noise)
    extra = _load(data.extrabkg_file, data.feature_set, data.include_delta_r, data.n_noise)
    x_all, x_extra = events.x, extra.x
    if data.shifted:
        x_all, x_extra = shift(events.mjj, x_all), shift(extra.mjj, x_extra)

    is_sig = events.label == 1
    in_data, injected = inject(events.label, signal, str(events.path))
    sr = in_sr(events.mjj)

    sr_data = in_data & sr
    X1 = x_all[sr_data]
    n_sr_signal = int(np.count_nonzero(injected & sr))
    n_sr_bkg = int(np.count_nonzero(~is_sig & sr))
    if X1.shape[0] == 0:
        raise DataError(f"{events.path}: no events in the signal region 3.3-3.7 TeV")

    extra_sr = in_sr(extra.mjj)
    if not np.all(extra_sr):
        log.warning("%s: %d events outside the SR ignored", extra.path, int((~extra_sr).sum()))
    x_extra = x_extra[extra_sr]
    n_iad = n_template(x_extra.shape[0])

    if mode == "IAD":
        X0 = x_extra[:n_iad]
    elif mode == "CWoLa":
        X0 = x_all[in_data & in_short_sidebands(events.mjj)]
    else:  # CATHODE
        if data.samples_file is None:
            raise DataError("CATHODE mode needs data.samples_file (background-model samples)")
        _, xs = _read_samples(data.samples_file, x_all.shape[1])
        want = CATHODE_OVERSAMPLING * X1.shape[0]
        if xs.shape[0] < want:
            log.warning(
                "%s: %d samples, fewer than %dx the %d SR data events",
                data.samples_file,
                xs.shape[0],
                CATHODE_OVERSAMPLING,
                X1.shape[0],
            )
        X0 = xs[:want]
    if X0.shape[0] == 0:
        raise DataError(f"{mode} template for {events.path} is empty")

    test_sig = x_all[test_signal(events.label, injected, sr)]
    test_bkg = x_extra[n_iad:]
    X_test = np.concatenate([test_bkg, test_sig])
    y_test = np.concatenate([np.zeros(len(test_bkg), np.int8), np.ones(len(test_sig), np.int8)])

    X = np.concatenate([X1, X0])
    y = np.concatenate([np.ones(len(X1), np.int8), np.zeros(len(X0), np.int8)])
    x_test_raw = X_test
    if rotation:
        R = random_rotation(X.shape[1])
        X, X_test = X @ R.T, X_test @ R.T
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std == 0] = 1.0
    X = ((X - mean) / std).astype(np.float32)
    X_test = ((X_test - mean) / std).astype(np.float32)

    info = {
        "mode": mode,
        "signal": signal,
        "rotation": rotation,
        "features": list(events.feature_names),
        "n_sr_data": int(X1.shape[0]),
        "n_sr_signal": n_sr_signal,
        "n_sr_background": n_sr_bkg,
        "s_over_b": n_sr_signal / max(n_sr_bkg, 1),
        "s_over_sqrt_b": n_sr_signal / np.sqrt(max(n_sr_bkg, 1)),
        "n_template": int(X0.shape[0]),
        "n_test_background": int(len(test_bkg)),
        "n_test_signal": int(len(test_sig)),
        "data_sha256": events.sha256,
        "extrabkg_sha256": extra.sha256,
        "rotation_seed": ROTATION_SEED if rotation else None,
    }
    log.info(
        "prepared %s N=%d: %d SR data (%d signal), %d template, test %d+%d",
        mode,
        signal,
        info["n_sr_data"],
        n_sr_signal,
        info["n_template"],
        info["n_test_background"],
        info["n_test_signal"],
    )
    return PreparedCell(
        X=X,
        y=y,
        w=balanced_weights(y),
        X_test=X_test,
        y_test=y_test,
        info=info,
        x_test_raw=x_test_raw,
    )


def prepare(cell: Cell) -> PreparedCell:
    """The training and test arrays of a cell, computed once per process and reused."""
    if cell.mode not in MODES:
        raise ValueError(f"{cell.key()}: {cell.classifier} cells are not prepared here")
    return _prepare(cell.mode, int(cell.signal), bool(cell.rotation), cell.data)
