"""Derived features of the LHC Olympics R&D schema: mjj, mass-ordered jets, N-subjettiness sets.

Input is one row per event with, for each jet ``j`` in {1, 2}, the columns
``pxj{j}, pyj{j}, pzj{j}, mj{j}, tau1j{j}, tau2j{j}, tau3j{j}`` (GeV) and, in the
extended files, ``tau{N}j{j}_{beta}`` for N = 1..9 and beta suffix ``5`` (0.5),
``1`` and ``2``. Output is in TeV, with the jets ordered by mass (J1 = lighter:
every column of a jet is swapped together).

Feature sets (the extended ones as defined by arXiv:2309.13111, "Back to the
roots: tree-based algorithms for weakly supervised anomaly detection", code
``mariehein/BackToTheRoots`` ``dataprep_utils.py``, input sets ``extended1``,
``extended2`` and ``extended3``; only beta = 1 columns enter the 10 and 12 sets):

* ``baseline`` (4): mJ1, mJ2 - mJ1, tau21_J1, tau21_J2 (from ``tau{1,2}j{j}``);
* ``extended10`` (10): mJ1, dmJ, then tau21, tau32, tau43, tau54 at beta = 1,
  interleaved J1, J2 (``tau21_J1, tau21_J2, tau32_J1, ...``);
* ``extended12`` (12): mJ1, dmJ, then tau1 ... tau5 at beta = 1, interleaved J1, J2;
* ``extended56`` (56): mJ1, dmJ, then for J1 and then J2: tau1 ... tau9 at
  beta = 0.5, then at beta = 1, then at beta = 2 (2 + 2 x 27).

A ratio tau_{N+1}/tau_N with tau_N = 0 (N >= 2) is set to 0, as in the reference
code; tau1 <= 0 is an error, since tau21 is then undefined. Optional: the
rapidity-azimuth distance Delta R between the two jets, appended last.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from objectives.errors import DataError

__all__ = ["FEATURE_SETS", "derive_features", "dijet_mass", "required_columns"]

FEATURE_SETS: dict[str, int] = {"baseline": 4, "extended10": 10, "extended12": 12, "extended56": 56}

_KINEMATICS = ("px", "py", "pz", "m")
#: Column suffixes of the three angular exponents beta = 0.5, 1, 2 in the extended files.
_BETA_SUFFIXES = ("5", "1", "2")
_GEV_PER_TEV = 1000.0


def _tau_columns(feature_set: str, jet: int) -> list[str]:
    """The N-subjettiness columns of one jet (1 or 2) that a feature set reads, in order."""
    if feature_set == "baseline":
        return [f"tau1j{jet}", f"tau2j{jet}"]
    if feature_set in ("extended10", "extended12"):
        return [f"tau{n}j{jet}_1" for n in range(1, 6)]
    if feature_set == "extended56":
        return [f"tau{n}j{jet}_{b}" for b in _BETA_SUFFIXES for n in range(1, 10)]
    raise ValueError(f"feature_set: must be one of {sorted(FEATURE_SETS)}, got {feature_set!r}")


def required_columns(feature_set: str = "baseline") -> list[str]:
    """Every input column a feature set needs (kinematics of both jets, then taus)."""
    cols = [f"{k}j{j}" for j in (1, 2) for k in _KINEMATICS]
    for jet in (1, 2):
        cols += _tau_columns(feature_set, jet)
    return cols


def dijet_mass(p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    """Invariant mass of two jets given as (n, 4) arrays ``[px, py, pz, m]`` (same unit out)."""
    e1 = np.sqrt(np.sum(p1[:, :3] ** 2, axis=1) + p1[:, 3] ** 2)
    e2 = np.sqrt(np.sum(p2[:, :3] ** 2, axis=1) + p2[:, 3] ** 2)
    p = p1[:, :3] + p2[:, :3]
    m2 = (e1 + e2) ** 2 - np.sum(p**2, axis=1)
    return np.sqrt(np.clip(m2, 0.0, None))


def _rapidity_phi(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = np.sqrt(np.sum(p[:, :3] ** 2, axis=1) + p[:, 3] ** 2)
    y = 0.5 * np.log((e + p[:, 2]) / (e - p[:, 2]))
    return y, np.arctan2(p[:, 1], p[:, 0])


def _delta_r(p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    y1, phi1 = _rapidity_phi(p1)
    y2, phi2 = _rapidity_phi(p2)
    dphi = np.mod(phi1 - phi2 + np.pi, 2 * np.pi) - np.pi
    return np.hypot(y1 - y2, dphi)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num)
    ok = den > 0
    np.divide(num, den, out=out, where=ok)
    return out


def _check_frame(df: pd.DataFrame, cols: list[str], source: str, feature_set: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: feature set {feature_set!r} needs column(s) {missing} that the file "
            "lacks (expected the LHC Olympics R&D schema; the extended sets need the "
            "tau{N}j{J}_{beta} columns of the extended files)"
        )
    if len(df) == 0:
        raise DataError(f"{source}: no events (the table is empty)")
    for c in cols:
        try:
            values = df[c].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{source}: column {c!r} is not numeric") from None
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise DataError(
                f"{source}: column {c!r} has {bad} row(s) with NaN or infinite values "
                f"(of {len(values)})"
            )
        physical = c.startswith("m") or c.startswith("tau")  # masses and N-subjettiness >= 0
        negative = int(np.count_nonzero(values < 0)) if physical else 0
        if negative:
            raise DataError(
                f"{source}: column {c!r} is negative in {negative} row(s) (of {len(values)}); "
                "jet masses and N-subjettiness are >= 0 (GeV)"
            )


def derive_features(
    df: pd.DataFrame,
    *,
    feature_set: str = "baseline",
    include_delta_r: bool = False,
    source: str = "<frame>",
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Derive ``(mjj, x, names)`` in TeV from a frame in the LHCO schema (GeV).

    Args:
        df: one row per event, columns as in the module docstring.
        feature_set: a key of :data:`FEATURE_SETS`.
        include_delta_r: append Delta R between the jets (rapidity, azimuth).
        source: name used in error messages (usually the file path).

    Raises:
        DataError: a needed column is missing, holds NaN/inf, tau1 <= 0, or no rows.

    Example:
        >>> import pandas as pd
        >>> row = dict(pxj1=1000.0, pyj1=0.0, pzj1=0.0, mj1=500.0, tau1j1=1.0, tau2j1=0.5,
        ...            pxj2=-1000.0, pyj2=0.0, pzj2=0.0, mj2=100.0, tau1j2=2.0, tau2j2=0.5)
        >>> mjj, x, names = derive_features(pd.DataFrame([row]))
        >>> names
        ('mJ1', 'dmJ', 'tau21_J1', 'tau21_J2')
        >>> x.round(3).tolist()
        [[0.1, 0.4, 0.25, 0.5]]
    """
    taus1 = _tau_columns(feature_set, 1)  # validates feature_set
    taus2 = _tau_columns(feature_set, 2)
    cols = required_columns(feature_set)
    _check_frame(df, cols, source, feature_set)

    jet1 = df[[f"{k}j1" for k in _KINEMATICS]].to_numpy(dtype=np.float64) / _GEV_PER_TEV
    jet2 = df[[f"{k}j2" for k in _KINEMATICS]].to_numpy(dtype=np.float64) / _GEV_PER_TEV
    tau1 = np.array(df[taus1], dtype=np.float64)
    tau2 = np.array(df[taus2], dtype=np.float64)
    swap = jet1[:, 3] > jet2[:, 3]
    jet1[swap], jet2[swap] = jet2[swap].copy(), jet1[swap].copy()
    tau1[swap], tau2[swap] = tau2[swap].copy(), tau1[swap].copy()

    mjj = dijet_mass(jet1, jet2)
    columns: list[np.ndarray] = [jet1[:, 3], jet2[:, 3] - jet1[:, 3]]
    names: list[str] = ["mJ1", "dmJ"]
    if feature_set in ("baseline", "extended10"):
        bad = int(np.count_nonzero((tau1[:, 0] <= 0) | (tau2[:, 0] <= 0)))
        if bad:
            raise DataError(
                f"{source}: tau1 (columns {taus1[0]!r}, {taus2[0]!r}) is <= 0 in {bad} "
                "row(s); tau21 = tau2/tau1 needs tau1 > 0"
            )
    if feature_set == "baseline":
        columns += [tau1[:, 1] / tau1[:, 0], tau2[:, 1] / tau2[:, 0]]
        names += ["tau21_J1", "tau21_J2"]
    elif feature_set == "extended10":
        for n in range(1, 5):
            for jet, t in ((1, tau1), (2, tau2)):
                columns.append(_ratio(t[:, n], t[:, n - 1]))
                names.append(f"tau{n + 1}{n}_J{jet}")
    elif feature_set == "extended12":
        for n in range(5):
            for jet, t in ((1, tau1), (2, tau2)):
                columns.append(t[:, n])
                names.append(f"tau{n + 1}_J{jet}")
    else:  # extended56
        for jet, t in ((1, tau1), (2, tau2)):
            for i, col in enumerate(taus1):
                columns.append(t[:, i])
                names.append(f"{col.split('j')[0]}_beta{_BETA_SUFFIXES[i // 9]}_J{jet}")
    if include_delta_r:
        columns.append(_delta_r(jet1, jet2))
        names.append("DeltaR")
    x = np.column_stack(columns)
    return mjj, x, tuple(names)
