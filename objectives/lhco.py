"""Loading an LHC Olympics R&D features file (pandas HDF5) into derived features.

One :class:`Events` per file: mjj, the chosen feature set (J1 = lighter jet),
the truth label and the file's SHA-256 for provenance. Every problem a user can
cause (missing file, not HDF5, missing column, NaN, no events) raises one
:class:`~objectives.errors.DataError` that names the file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from objectives.errors import DataError
from objectives.features import derive_features
from objectives.files import file_sha256

__all__ = ["Events", "load_events", "read_frame"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Events:
    """The derived events of one file.

    Attributes:
        mjj: (n,) dijet mass in TeV.
        x: (n, d) features in TeV (masses), J1 = lighter jet; noise columns last.
        label: (n,) int8, 1 = signal.
        feature_names: the d column names of ``x``.
        path: the file read.
        sha256: hex SHA-256 of the file's bytes.
    """

    mjj: np.ndarray
    x: np.ndarray
    label: np.ndarray
    feature_names: tuple[str, ...]
    path: Path
    sha256: str

    def __len__(self) -> int:
        return len(self.mjj)


def _last_line(exc: BaseException) -> str:
    """The informative last line of a library's message (HDF5 appends a back trace)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def read_frame(path: str | os.PathLike, *, key: str | None = None) -> pd.DataFrame:
    """Read the pandas table of an HDF5 file, turning every failure into a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected an LHC Olympics R&D HDF5 file)")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (expected an LHC Olympics R&D HDF5 file)")
    try:
        frame = pd.read_hdf(path, key=key)
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(
            f"{path}: cannot read a pandas table{'' if key is None else f' under key {key!r}'}"
            f" ({_last_line(exc)}); pass the key of the table if the file holds several"
        ) from exc
    except Exception as exc:  # tables / h5py raise their own types for non-HDF5 input
        raise DataError(
            f"{path}: not a readable pandas HDF5 file, truncated or of another format "
            f"({type(exc).__name__}: {_last_line(exc)})"
        ) from exc
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{path}: expected a pandas DataFrame, found {type(frame).__name__}")
    return frame


def _labels(frame: pd.DataFrame, path: Path) -> np.ndarray:
    if "label" not in frame.columns:
        log.warning("%s: no 'label' column; every event is taken as background", path)
        return np.zeros(len(frame), dtype=np.int8)
    values = frame["label"].to_numpy()
    bad = ~np.isin(values, (0, 1))
    if np.any(bad):
        raise DataError(
            f"{path}: column 'label' must hold 0 (background) or 1 (signal); "
            f"{int(np.count_nonzero(bad))} row(s) hold other values, e.g. {values[bad][0]!r}"
        )
    return values.astype(np.int8)


def load_events(
    path: str | os.PathLike,
    *,
    feature_set: str = "baseline",
    include_delta_r: bool = False,
    n_noise: int = 0,
    noise_seed: int = 0,
    key: str | None = None,
) -> Events:
    """Load one LHCO features file and derive mjj and the features (TeV).

    Args:
        path: pandas HDF5 file in the LHC Olympics R&D schema (GeV).
        feature_set: ``baseline``, ``extended10``, ``extended12`` or ``extended56``.
        include_delta_r: append Delta R between the jets.
        n_noise: append this many standard-Gaussian noise features (uninformative inputs).
        noise_seed: seed of the noise; the stream also depends on the file's hash, so
            two files never share noise rows.
        key: the HDF5 key of the table, if the file holds several.

    Raises:
        DataError: the file is missing or unreadable, or its content is malformed.
    """
    path = Path(path)
    if int(n_noise) != n_noise or n_noise < 0:
        raise ValueError(f"n_noise: must be an integer >= 0, got {n_noise!r}")
    frame = read_frame(path, key=key)
    mjj, x, names = derive_features(
        frame, feature_set=feature_set, include_delta_r=include_delta_r, source=str(path)
    )
    label = _labels(frame, path)
    sha = file_sha256(path)
    if n_noise:
        rng = np.random.default_rng([int(noise_seed), int(sha[:8], 16)])
        x = np.hstack([x, rng.standard_normal((len(x), int(n_noise)))])
        names = names + tuple(f"noise{i}" for i in range(int(n_noise)))
    return Events(mjj=mjj, x=x, label=label, feature_names=names, path=path, sha256=sha)
