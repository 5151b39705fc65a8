"""Synthetic LHCO-like dataset with closed-form densities and an exact likelihood ratio.

The default dataset of the project (the real LHC Olympics files are large and
not always at hand). It mimics the R&D set and is written in the *same HDF5
schema* (jet four-momenta, N-subjettiness, ``label``, GeV), so that the real
loader (:mod:`objectives.lhco`) is exercised end to end.

Model (masses in TeV; x = [mJ1, dmJ, tau21_J1, tau21_J2], J1 the lighter jet):

* background mjj: ``sigmoid((m - 2.537)/0.2) * exp(-1.540 m)`` on [1.5, 8] TeV,
  a trigger-like turn-on times a falling exponential (12.1 % of events in the SR
  3.3-3.7 TeV, local slope -1.5/TeV there); signal mjj: a truncated mixture of a
  3.5 TeV Gaussian core and a low-side tail on [2.5, 4.5] TeV (77 % in the SR);
* features: a Gaussian mixture in a bijective, triangular transform of x,
  ``z = (logit(mJ1/b), logit(dmJ/(B - 2 mJ1)), logit(tau21_J1), logit(tau21_J2))``
  (bounds b, B = 0.35, 0.7 x mjj for background, 0.6, 1.75 TeV for signal), so
  that ``m_J1 + m_J2 < mjj`` and every density is exact with its Jacobian. The
  mixtures were fitted to the real SR background and signal
  (``benchmarks/synthetic_calibration.py --fit-real``); the background means drift
  with log(mjj/3.5 TeV) (jet masses grow like mjj^0.7), the signal features do not
  depend on mjj;
* jets: a two-body decay of mass mjj into (mJ1, mJ2) with isotropic direction,
  boosted along z with a Gaussian rapidity, written in random order; tau1 and
  tau32 are class-independent, tau2 = tau21 tau1, tau3 = tau32 tau2. So the jet
  kinematics carry no information beyond x and mjj, and the likelihood ratio
  on x is the Neyman-Pearson optimum.
* ``shifted=True`` (CATHODE's correlation test): mJ1 and dmJ both move by
  +0.1 mjj for every event; densities and the likelihood ratio follow.
* the **alternative simulation** (the bump hunt's ``delta_sys = "mc"``): the same
  background with the latent means of p_bkg(x | mjj) moved by ``mismodelling``
  times :data:`ALT_LATENT_SHIFT`, a controlled mismodelling of the feature shapes
  whose size is known exactly (:func:`log_mismodelling_ratio`); the signal and the
  mjj spectrum are unchanged. :func:`write_alternative` writes its extra background.

TODO (optional): the extended ``tau{N}j{J}_{beta}`` columns are not written yet, so
the synthetic files support the baseline feature set (plus Delta R and noise) only.

Example:
    >>> import numpy as np
    >>> model = SyntheticModel()
    >>> rng = np.random.default_rng(0)
    >>> x = model.sample_bkg(np.full(3, 3.5), rng)
    >>> x.shape, bool(np.all(np.isfinite(model.log_prob_bkg(x, np.full(3, 3.5)))))
    ((3, 4), True)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, log_expit, logit, logsumexp, ndtr

from objectives.regions import DEFAULT_REGION, Region

__all__ = [
    "ALT_LATENT_SHIFT",
    "GENERATOR_VERSION",
    "SyntheticModel",
    "SyntheticSpec",
    "SyntheticTable",
    "alternative_path",
    "generate",
    "log_mismodelling_ratio",
    "sidecar_path",
    "synthetic_paths",
    "write_alternative",
    "write_synthetic",
]

log = logging.getLogger(__name__)

#: Bumped whenever the generator's output for a given spec changes.
GENERATOR_VERSION = 1
#: Sizes at scale 1: the R&D background and signal, and the SR-only extra background.
N_BKG, N_SIG, N_EXTRABKG = 1_000_000, 100_000, 612_858
#: Shift of CATHODE's correlation test: mJ1 and dmJ move by this times mjj.
SHIFT = 0.1

# Background mjj spectrum: sigmoid turn-on times exponential, truncated.
_MJJ_RANGE = (1.5, 8.0)
_TURN_ON, _TURN_ON_WIDTH, _SLOPE = 2.5373, 0.2, 1.5403
# Signal mjj: mixture of Gaussians (weight, mean, sigma), truncated.
_SIG_MJJ_RANGE = (2.5, 4.5)
_SIG_MJJ = ((0.8, 3.5, 0.128), (0.2, 3.2, 0.4))
# Feature bounds (TeV): J1 mass below b, mJ1 + mJ2 below B.
_BKG_BOUNDS = (0.35, 0.7)  # times mjj
_SIG_BOUNDS = (0.6, 1.75)  # absolute
_REFERENCE_MJJ = 3.5
#: Drift of the background latent means per unit log(mjj / 3.5 TeV).
_BKG_DRIFT = np.array([-0.3, -0.3, 0.2, 0.2])
#: The alternative simulation at ``mismodelling = 1``: shift of the background latent
#: means z = (logit(mJ1/b), logit(dmJ/(B - 2 mJ1)), logit(tau21_J1), logit(tau21_J2)).
#: A logit shift d moves ln u by (1 - u) d: with u ~ 0.1 for the masses that is
#: about +3 % on the lighter jet's mass and on the mass difference, with u ~ 0.5
#: for tau21 about +2.5 % on both tau21. Every density stays exact.
ALT_LATENT_SHIFT = np.array([0.03, 0.03, 0.05, 0.05])
# Class-independent jet nuisances.
_TAU1_LOG_MEAN, _TAU1_LOG_SIGMA = np.log(0.1), 0.5
_TAU32_BETA = (6.0, 3.0)
_RAPIDITY_SIGMA = 0.6
_GEV_PER_TEV = 1000.0

# Gaussian mixtures (8 components, full covariance) in the latent space z, fitted to the
# real SR events (background latent at mjj = 3.5 TeV after removing the drift).
# fmt: off
_BKG_MIXTURE = {
    "weights": [0.14201, 0.12312, 0.17271, 0.1469, 0.07507, 0.10119, 0.08792, 0.15107],
    "means": [
        [-2.26538, -2.04721, 0.13277, -0.20386],
        [-1.79822, -3.38258, 0.26148, -0.21209],
        [-2.62066, -2.72635, 0.80268, 0.21847],
        [-2.59063, -4.09326, 0.75745, 0.57888],
        [-2.32522, -5.51202, 0.30003, 0.34291],
        [-2.70784, -3.20385, -0.26215, 0.46386],
        [-1.20605, -2.18952, -0.35424, -0.81538],
        [-2.32055, -1.70268, 0.61713, -1.12127],
    ],
    "covs": [
        [
            [0.38648, -0.02736, 0.08913, 0.05332],
            [-0.02736, 0.36462, 0.00172, -0.0498],
            [0.08913, 0.00172, 0.45842, 0.0807],
            [0.05332, -0.0498, 0.0807, 0.32899],
        ],
        [
            [0.39254, -0.12565, -0.18558, -0.0599],
            [-0.12565, 0.61061, 0.12541, -0.02177],
            [-0.18558, 0.12541, 0.47296, -0.04704],
            [-0.0599, -0.02177, -0.04704, 0.52758],
        ],
        [
            [0.32372, -0.03687, -0.0196, -0.02693],
            [-0.03687, 0.36779, 0.03822, -0.06735],
            [-0.0196, 0.03822, 0.37903, -0.0293],
            [-0.02693, -0.06735, -0.0293, 0.35625],
        ],
        [
            [0.30304, -0.09187, -0.04306, -0.01193],
            [-0.09187, 0.59379, 0.09048, 0.06326],
            [-0.04306, 0.09048, 0.48275, -0.01763],
            [-0.01193, 0.06326, -0.01763, 0.46582],
        ],
        [
            [0.47396, -0.06975, -0.1095, -0.13569],
            [-0.06975, 1.75523, -0.07407, -0.01864],
            [-0.1095, -0.07407, 0.72728, 0.05763],
            [-0.13569, -0.01864, 0.05763, 0.76181],
        ],
        [
            [0.25113, -0.00796, 0.08585, 0.01304],
            [-0.00796, 0.59413, -0.02272, -0.04209],
            [0.08585, -0.02272, 0.60606, 0.03458],
            [0.01304, -0.04209, 0.03458, 0.40654],
        ],
        [
            [0.288, -0.04647, -0.16778, -0.04506],
            [-0.04647, 0.52239, 0.09616, -0.02416],
            [-0.16778, 0.09616, 0.63598, -0.05532],
            [-0.04506, -0.02416, -0.05532, 0.61876],
        ],
        [
            [0.40034, -0.00838, -0.07193, -0.04124],
            [-0.00838, 0.24089, -0.00668, -0.06185],
            [-0.07193, -0.00668, 0.51997, 0.08905],
            [-0.04124, -0.06185, 0.08905, 0.45398],
        ],
    ],
}
_SIG_MIXTURE = {
    "weights": [0.18483, 0.06347, 0.12914, 0.12566, 0.03536, 0.22904, 0.07089, 0.16159],
    "means": [
        [-1.58068, -1.04601, -1.06723, -1.56196],
        [-1.55625, -3.14913, -0.20725, -0.02799],
        [-0.88891, -1.21838, -0.08969, -1.6076],
        [-1.52321, -1.07986, -0.64999, -1.14514],
        [-0.03429, -1.84538, -0.15469, -1.24749],
        [-1.50048, -1.06165, -0.32361, -1.27979],
        [-1.25408, -1.06168, -0.40314, -0.92371],
        [-1.44322, -1.08249, -0.50004, -2.09804],
    ],
    "covs": [
        [
            [0.00622, -0.00114, 0.0028, -0.00277],
            [-0.00114, 0.00901, -0.00086, 0.00202],
            [0.0028, -0.00086, 0.28882, -0.00291],
            [-0.00277, 0.00202, -0.00291, 0.5628],
        ],
        [
            [0.1602, 0.00769, -0.06327, 0.0587],
            [0.00769, 1.6635, -0.15521, 0.00861],
            [-0.06327, -0.15521, 0.7378, -0.10464],
            [0.0587, 0.00861, -0.10464, 0.541],
        ],
        [
            [0.24234, -0.07767, 0.09129, 0.01357],
            [-0.07767, 0.04046, -0.02729, -0.00418],
            [0.09129, -0.02729, 0.31025, 0.02275],
            [0.01357, -0.00418, 0.02275, 0.53509],
        ],
        [
            [0.01638, -0.00519, 0.00999, -0.00734],
            [-0.00519, 0.15122, -0.003, -0.05232],
            [0.00999, -0.003, 0.4168, -0.01921],
            [-0.00734, -0.05232, -0.01921, 0.64979],
        ],
        [
            [0.7566, -0.45752, -0.25784, -0.03084],
            [-0.45752, 0.83771, 0.13529, -0.07516],
            [-0.25784, 0.13529, 0.67143, -0.01344],
            [-0.03084, -0.07516, -0.01344, 0.69233],
        ],
        [
            [0.02103, -0.00328, -0.01221, 0.00257],
            [-0.00328, 0.00782, 0.00124, -0.00289],
            [-0.01221, 0.00124, 0.35497, -0.05017],
            [0.00257, -0.00289, -0.05017, 0.49409],
        ],
        [
            [0.06455, -0.01293, -0.04382, -0.03585],
            [-0.01293, 0.03576, 0.01239, -0.00894],
            [-0.04382, 0.01239, 0.39735, 0.06422],
            [-0.03585, -0.00894, 0.06422, 0.48133],
        ],
        [
            [0.03914, -0.0059, -0.00804, 0.00528],
            [-0.0059, 0.00851, 0.00121, 0.00052],
            [-0.00804, 0.00121, 0.38445, -0.02233],
            [0.00528, 0.00052, -0.02233, 0.21871],
        ],
    ],
}
# fmt: on


class _GaussianMixture:
    """A full-covariance Gaussian mixture with exact log density and sampling."""

    def __init__(self, weights, means, covs) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.weights = self.weights / self.weights.sum()
        self.means = np.asarray(means, dtype=np.float64)
        self.chol = np.linalg.cholesky(np.asarray(covs, dtype=np.float64))
        d = self.means.shape[1]
        logdet = 2 * np.sum(np.log(np.diagonal(self.chol, axis1=1, axis2=2)), axis=1)
        self._log_norm = np.log(self.weights) - 0.5 * (d * np.log(2 * np.pi) + logdet)

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        terms = np.empty((len(z), len(self.weights)))
        for k in range(len(self.weights)):
            r = np.linalg.solve(self.chol[k], (z - self.means[k]).T)
            terms[:, k] = self._log_norm[k] - 0.5 * np.sum(r**2, axis=0)
        return logsumexp(terms, axis=1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        eps = rng.standard_normal((n, self.means.shape[1]))
        z = np.empty_like(eps)
        for k in range(len(self.weights)):
            sel = comp == k
            z[sel] = self.means[k] + eps[sel] @ self.chol[k].T
        return z


def _bounds(mjj: np.ndarray, signal: bool) -> tuple[np.ndarray, np.ndarray]:
    if signal:
        return np.full_like(mjj, _SIG_BOUNDS[0]), np.full_like(mjj, _SIG_BOUNDS[1])
    return _BKG_BOUNDS[0] * mjj, _BKG_BOUNDS[1] * mjj


def to_latent(x: np.ndarray, mjj: np.ndarray, signal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Unshifted features -> latent z and log|det dz/dx|; -inf Jacobian outside the support."""
    m1, dm, t1, t2 = (x[:, i] for i in range(4))
    b, big_b = _bounds(np.asarray(mjj, dtype=np.float64) * np.ones(len(x)), signal)
    c = big_b - 2 * m1
    ok = (m1 > 0) & (m1 < b) & (dm > 0) & (dm < c) & (t1 > 0) & (t1 < 1) & (t2 > 0) & (t2 < 1)
    z = np.zeros_like(x)
    log_jac = np.full(len(x), -np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, dm, t1, t2, b, c = m1[ok], dm[ok], t1[ok], t2[ok], b[ok], c[ok]
        z[ok] = np.column_stack([logit(m1 / b), logit(dm / c), logit(t1), logit(t2)])
        log_jac[ok] = (
            np.log(b) - np.log(m1) - np.log(b - m1)
            + np.log(c) - np.log(dm) - np.log(c - dm)
            - np.log(t1) - np.log1p(-t1) - np.log(t2) - np.log1p(-t2)
        )  # fmt: skip
    return z, log_jac


def from_latent(z: np.ndarray, mjj: np.ndarray, signal: bool) -> np.ndarray:
    """Latent z -> unshifted features (inverse of :func:`to_latent`)."""
    b, big_b = _bounds(np.asarray(mjj, dtype=np.float64) * np.ones(len(z)), signal)
    m1 = b * expit(z[:, 0])
    dm = (big_b - 2 * m1) * expit(z[:, 1])
    return np.column_stack([m1, dm, expit(z[:, 2]), expit(z[:, 3])])


def _log_bkg_mjj_unnorm(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    inside = (m >= _MJJ_RANGE[0]) & (m <= _MJJ_RANGE[1])
    val = log_expit((m - _TURN_ON) / _TURN_ON_WIDTH) - _SLOPE * m
    return np.where(inside, val, -np.inf)


def _gauss_legendre(lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    t, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (hi - lo) * t + 0.5 * (hi + lo), 0.5 * (hi - lo) * w


def _log_integral(log_f, lo: float, hi: float, n: int = 512) -> float:
    """log of the integral of exp(log_f) over [lo, hi] (piecewise Gauss-Legendre)."""
    edges = np.linspace(lo, hi, 33)
    pieces = [_gauss_legendre(a, b, n // 32) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    nodes = np.concatenate([p[0] for p in pieces])
    weights = np.concatenate([p[1] for p in pieces])
    return float(logsumexp(log_f(nodes) + np.log(weights)))


class SyntheticModel:
    """Closed-form densities of the synthetic dataset (features [mJ1, dmJ, tau21_1, tau21_2]).

    Args:
        shifted: CATHODE's correlation test, mJ1 and dmJ moved by +0.1 mjj.
        n_quadrature: Gauss-Legendre nodes of the SR integrals in :meth:`likelihood_ratio`.
        mismodelling: the alternative simulation's background, its latent means moved
            by ``mismodelling * ALT_LATENT_SHIFT`` (0: the nominal background).
    """

    def __init__(
        self, shifted: bool = False, n_quadrature: int = 64, mismodelling: float = 0.0
    ) -> None:
        self.shifted = bool(shifted)
        self.n_quadrature = int(n_quadrature)
        self.mismodelling = float(mismodelling)
        self._bkg_offset = self.mismodelling * ALT_LATENT_SHIFT
        self._bkg = _GaussianMixture(**_BKG_MIXTURE)
        self._sig = _GaussianMixture(**_SIG_MIXTURE)
        self._log_z_bkg_mjj = _log_integral(_log_bkg_mjj_unnorm, *_MJJ_RANGE, n=2048)

    # --- mjj -------------------------------------------------------------------------
    def log_prob_mjj_bkg(self, mjj: np.ndarray) -> np.ndarray:
        """Normalised log density of the background dijet mass (TeV^-1)."""
        return _log_bkg_mjj_unnorm(mjj) - self._log_z_bkg_mjj

    def log_prob_mjj_sig(self, mjj: np.ndarray) -> np.ndarray:
        """Normalised log density of the signal dijet mass (TeV^-1)."""
        m = np.asarray(mjj, dtype=np.float64)
        lo, hi = _SIG_MJJ_RANGE
        terms, mass = [], 0.0
        for w, mu, s in _SIG_MJJ:
            terms.append(np.log(w) - 0.5 * ((m - mu) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi)))
            mass += w * (ndtr((hi - mu) / s) - ndtr((lo - mu) / s))
        val = logsumexp(np.stack(terms), axis=0) - np.log(mass)
        return np.where((m >= lo) & (m <= hi), val, -np.inf)

    def sample_mjj_bkg(
        self, n: int, rng: np.random.Generator, low: float | None = None, high: float | None = None
    ) -> np.ndarray:
        """Exact draws of the background mjj, optionally restricted to [low, high]."""
        lo = _MJJ_RANGE[0] if low is None else max(low, _MJJ_RANGE[0])
        hi = _MJJ_RANGE[1] if high is None else min(high, _MJJ_RANGE[1])
        out = np.empty(0)
        while len(out) < n:  # truncated exponential proposal, sigmoid acceptance
            k = int(1.3 * (n - len(out))) + 16
            u = rng.random(k)
            m = lo - np.log1p(-u * (1 - np.exp(-_SLOPE * (hi - lo)))) / _SLOPE
            keep = rng.random(k) < expit((m - _TURN_ON) / _TURN_ON_WIDTH)
            out = np.concatenate([out, m[keep]])
        return out[:n]

    def sample_mjj_sig(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Exact draws of the signal mjj (truncated Gaussian mixture)."""
        w = np.array([c[0] for c in _SIG_MJJ])
        out = np.empty(0)
        while len(out) < n:
            k = int(1.1 * (n - len(out))) + 16
            comp = rng.choice(len(w), size=k, p=w / w.sum())
            mu = np.array([c[1] for c in _SIG_MJJ])[comp]
            s = np.array([c[2] for c in _SIG_MJJ])[comp]
            m = mu + s * rng.standard_normal(k)
            out = np.concatenate([out, m[(m >= _SIG_MJJ_RANGE[0]) & (m <= _SIG_MJJ_RANGE[1])]])
        return out[:n]

    # --- features --------------------------------------------------------------------
    def _unshift(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if not self.shifted:
            return x
        out = x.copy()
        out[:, :2] -= SHIFT * np.asarray(mjj, dtype=np.float64).reshape(-1, 1)
        return out

    def _shift(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        if self.shifted:
            x[:, :2] += SHIFT * np.asarray(mjj, dtype=np.float64).reshape(-1, 1)
        return x

    def log_prob_bkg(self, x: np.ndarray, mjj: np.ndarray) -> np.ndarray:
        """Exact log p_bkg(x | mjj); mjj is a scalar or one value per row."""
        mjj = np.broadcast_to(np.asarray(mjj, dtype=np.float64), (len(x),))
        z, log_jac = to_latent(self._unshift(x, mjj), mjj, signal=False)
        drift = np.log(mjj / _REFERENCE_MJJ)[:, None] * _BKG_DRIFT + self._bkg_offset
        out = np.full(len(x), -np.inf)
        ok = np.isfinite(log_jac)
        out[ok] = self._bkg.log_prob(z[ok] - drift[ok]) + log_jac[ok]
        return out

    def log_prob_sig(self, x: np.ndarray, mjj: np.ndarray | None = None) -> np.ndarray:
        """Exact log p_sig(x | mjj); mjj is ignored (and may be None) unless shifted."""
        if self.shifted and mjj is None:
            raise ValueError("mjj: the shifted signal density depends on mjj; pass it")
        mjj_b = np.full(len(x), _REFERENCE_MJJ) if mjj is None else mjj
        mjj_b = np.broadcast_to(np.asarray(mjj_b, dtype=np.float64), (len(x),))
        z, log_jac = to_latent(self._unshift(x, mjj_b), mjj_b, signal=True)
        out = np.full(len(x), -np.inf)
        ok = np.isfinite(log_jac)
        out[ok] = self._sig.log_prob(z[ok]) + log_jac[ok]
        return out

    def sample_bkg(self, mjj: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw background features x ~ p_bkg(x | mjj), one row per mjj value."""
        mjj = np.asarray(mjj, dtype=np.float64).reshape(-1)
        drift = np.log(mjj / _REFERENCE_MJJ)[:, None] * _BKG_DRIFT + self._bkg_offset
        z = self._bkg.sample(len(mjj), rng) + drift
        return self._shift(from_latent(z, mjj, signal=False), mjj)

    def sample_sig(self, mjj: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw signal features x ~ p_sig(x | mjj), one row per mjj value."""
        mjj = np.asarray(mjj, dtype=np.float64).reshape(-1)
        z = self._sig.sample(len(mjj), rng)
        return self._shift(from_latent(z, mjj, signal=True), mjj)

    def _log_prob_sr(self, x: np.ndarray, signal: bool, region: Region) -> np.ndarray:
        nodes, w = _gauss_legendre(*region.sr, self.n_quadrature)
        log_mjj = self.log_prob_mjj_sig if signal else self.log_prob_mjj_bkg
        log_w = np.log(w) + log_mjj(nodes)
        acc = np.full(len(x), -np.inf)
        for m, lw in zip(nodes, log_w, strict=False):
            lp = self.log_prob_sig(x, m) if signal else self.log_prob_bkg(x, m)
            acc = np.logaddexp(acc, lw + lp)
        return acc - logsumexp(log_w)

    def log_prob_sr(
        self, x: np.ndarray, signal: bool, region: Region = DEFAULT_REGION
    ) -> np.ndarray:
        """log p(x | mjj in the SR) of one class: the conditional averaged over SR mjj."""
        x = np.asarray(x, dtype=np.float64)
        if signal and not self.shifted:
            return self.log_prob_sig(x)
        return self._log_prob_sr(x, signal, region)

    def likelihood_ratio(self, x: np.ndarray, region: Region = DEFAULT_REGION) -> np.ndarray:
        """Exact p_sig(x | SR) / p_bkg(x | SR) in ``region``: the Neyman-Pearson optimal score."""
        with np.errstate(over="ignore"):
            return np.exp(self.log_prob_sr(x, True, region) - self.log_prob_sr(x, False, region))


def log_mismodelling_ratio(
    x: np.ndarray, mismodelling: float, region: Region = DEFAULT_REGION, *, shifted: bool = False
) -> np.ndarray:
    """Exact log p_bkg(x | SR) / p_alt(x | SR): nominal over alternative-simulation background.

    The optimal score for telling the two apart: cutting on it gives the largest
    excess of nominal events over what the alternative template predicts, i.e. the
    largest systematic ``delta_sys = "mc"`` can measure at a given efficiency.
    """
    nominal = SyntheticModel(shifted=shifted)
    alt = SyntheticModel(shifted=shifted, mismodelling=mismodelling)
    x = np.asarray(x, dtype=np.float64)
    return nominal.log_prob_sr(x, False, region) - alt.log_prob_sr(x, False, region)


@dataclass(frozen=True)
class SyntheticSpec:
    """Which synthetic dataset: size scale (1.0 = R&D size), shifted variant, seed, and the
    mjj range of the extra (simulated) background.

    ``extra_range`` defaults to the LHCO signal region 3.3-3.7 TeV (the real set's
    SR-only extra background file). A wider range (a signal region moved elsewhere,
    or the bump hunt's windows) holds as many events per TeV of background as the
    default: ``N_EXTRABKG`` times the background's mjj probability in the range over
    that in 3.3-3.7 TeV.
    """

    scale: float = 1.0
    shifted: bool = False
    seed: int = 0
    extra_range: tuple[float, float] = DEFAULT_REGION.sr

    def __post_init__(self) -> None:
        if not (isinstance(self.scale, int | float) and 0 < self.scale <= 10):
            raise ValueError(
                f"SyntheticSpec.scale: must be a number in (0, 10], got {self.scale!r}"
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"SyntheticSpec.seed: must be an integer >= 0, got {self.seed!r}")
        lo, hi = (round(float(v), 6) for v in self.extra_range)
        if not (_MJJ_RANGE[0] <= lo < hi <= _MJJ_RANGE[1]):
            raise ValueError(
                f"SyntheticSpec.extra_range: must be (lo, hi) inside {_MJJ_RANGE} TeV, "
                f"got {self.extra_range!r}"
            )
        object.__setattr__(self, "extra_range", (lo, hi))

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(background, signal, extra background) event counts."""
        n_extra = N_EXTRABKG * _mjj_mass(*self.extra_range) / _mjj_mass(*DEFAULT_REGION.sr)
        return tuple(max(1, round(n * self.scale)) for n in (N_BKG, N_SIG, n_extra))

    @property
    def tag(self) -> str:
        shifted = "_shifted" if self.shifted else ""
        lo, hi = self.extra_range
        extra = "" if self.extra_range == DEFAULT_REGION.sr else f"_extra{lo:g}-{hi:g}"
        return f"synthetic_s{self.scale:g}{shifted}{extra}_seed{self.seed}"

    def record(self) -> dict:
        """The spec as written in the sidecar (the default extra range is left out)."""
        spec = asdict(self)
        if self.extra_range == DEFAULT_REGION.sr:
            del spec["extra_range"]
        else:
            spec["extra_range"] = list(self.extra_range)
        return spec


def _mjj_mass(lo: float, hi: float) -> float:
    """Probability of the background mjj in [lo, hi] (unnormalised ratio suffices)."""
    return float(np.exp(_log_integral(_log_bkg_mjj_unnorm, lo, hi)))


@dataclass(frozen=True)
class SyntheticTable:
    """One generated file: its LHCO-schema frame and the truth the generator drew."""

    frame: pd.DataFrame  # LHCO schema, GeV
    mjj: np.ndarray  # (n,) TeV
    x: np.ndarray  # (n, 4) baseline features, TeV
    label: np.ndarray  # (n,) int8


def _jets(mjj: np.ndarray, x: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Jet columns (GeV) of a two-body decay mjj -> (mJ1, mJ2), jets in random order."""
    n = len(mjj)
    m_a, m_b = x[:, 0], x[:, 0] + x[:, 1]
    p_star = np.sqrt((mjj**2 - (m_a + m_b) ** 2) * (mjj**2 - (m_a - m_b) ** 2)) / (2 * mjj)
    cos_t = rng.uniform(-1, 1, n)
    sin_t = np.sqrt(1 - cos_t**2)
    phi = rng.uniform(-np.pi, np.pi, n)
    y = _RAPIDITY_SIGMA * rng.standard_normal(n)
    direction = np.column_stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t])
    ch, sh = np.cosh(y), np.sinh(y)
    jets = []
    for sign, m in ((1.0, m_a), (-1.0, m_b)):
        p = sign * p_star[:, None] * direction
        e = np.sqrt(p_star**2 + m**2)
        pz = ch * p[:, 2] + sh * e
        jets.append(np.column_stack([p[:, 0], p[:, 1], pz, m]) * _GEV_PER_TEV)
    taus = []
    for t21 in (x[:, 2], x[:, 3]):
        tau1 = np.exp(_TAU1_LOG_MEAN + _TAU1_LOG_SIGMA * rng.standard_normal(n))
        tau2 = t21 * tau1
        taus.append(np.column_stack([tau1, tau2, rng.beta(*_TAU32_BETA, n) * tau2]))
    swap = rng.random(n) < 0.5  # heavier jet first for half the events
    first = np.where(swap[:, None], jets[1], jets[0])
    second = np.where(swap[:, None], jets[0], jets[1])
    tau_first = np.where(swap[:, None], taus[1], taus[0])
    tau_second = np.where(swap[:, None], taus[0], taus[1])
    cols: dict[str, np.ndarray] = {}
    for j, (p, t) in enumerate(((first, tau_first), (second, tau_second)), start=1):
        for i, k in enumerate(("px", "py", "pz", "m")):
            cols[f"{k}j{j}"] = p[:, i]
        for i in range(3):
            cols[f"tau{i + 1}j{j}"] = t[:, i]
    return cols


def _table(mjj: np.ndarray, x: np.ndarray, label: np.ndarray, rng) -> SyntheticTable:
    cols = _jets(mjj, x, rng)
    cols["label"] = label.astype(np.float64)
    return SyntheticTable(pd.DataFrame(cols), mjj, x, label.astype(np.int8))


def generate(spec: SyntheticSpec) -> tuple[SyntheticTable, SyntheticTable]:
    """Draw the data table (background + signal, rows shuffled) and the extra SR background.

    The signal rows appear in random order among the background rows, so
    "the first N rows with label 1" is a well-defined, random injection.
    """
    model = SyntheticModel(shifted=spec.shifted)
    n_bkg, n_sig, n_extra = spec.sizes
    data_rng, extra_rng = (
        np.random.default_rng(s)
        for s in np.random.SeedSequence([spec.seed, GENERATOR_VERSION, int(spec.shifted)]).spawn(2)
    )
    mjj_b = model.sample_mjj_bkg(n_bkg, data_rng)
    mjj_s = model.sample_mjj_sig(n_sig, data_rng)
    x = np.vstack([model.sample_bkg(mjj_b, data_rng), model.sample_sig(mjj_s, data_rng)])
    mjj = np.concatenate([mjj_b, mjj_s])
    label = np.concatenate([np.zeros(n_bkg, np.int8), np.ones(n_sig, np.int8)])
    order = data_rng.permutation(len(mjj))
    data = _table(mjj[order], x[order], label[order], data_rng)
    mjj_e = model.sample_mjj_bkg(n_extra, extra_rng, *spec.extra_range)
    extra = _table(mjj_e, model.sample_bkg(mjj_e, extra_rng), np.zeros(n_extra, np.int8), extra_rng)
    return data, extra


def synthetic_paths(spec: SyntheticSpec, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """(data file, extra background file) of a spec inside out_dir (they may not exist yet)."""
    out = Path(out_dir)
    return out / f"{spec.tag}_data.h5", out / f"{spec.tag}_extrabkg.h5"


def sidecar_path(spec: SyntheticSpec, out_dir: str | os.PathLike) -> Path:
    """The JSON file recording the spec and generator version of written files."""
    return Path(out_dir) / f"{spec.tag}.json"


def _record(spec: SyntheticSpec) -> dict:
    return {"spec": spec.record(), "generator_version": GENERATOR_VERSION, "sizes": spec.sizes}


def _write_once(paths: tuple[Path, ...], meta_path: Path, record: dict, make) -> None:
    """Write ``make()``'s tables to ``paths`` unless a sidecar records ``record`` (locked).

    Idempotent and safe for concurrent callers: each file goes through a temporary
    file and a rename, the sidecar last.
    """
    from filelock import FileLock

    from objectives.files import atomic_path, atomic_write_text

    expected = json.loads(json.dumps(record))

    def up_to_date() -> bool:
        try:
            return json.loads(meta_path.read_text()) == expected and all(p.is_file() for p in paths)
        except (OSError, ValueError):
            return False

    meta_path.parent.mkdir(parents=True, exist_ok=True)
    if up_to_date():
        return
    with FileLock(str(meta_path) + ".lock"):
        if up_to_date():
            return
        meta_path.unlink(missing_ok=True)
        for table, path in zip(make(), paths, strict=True):
            with atomic_path(path) as tmp:
                table.frame.to_hdf(tmp, key="df", mode="w", format="fixed")
        atomic_write_text(meta_path, json.dumps(record, indent=2))


def write_synthetic(spec: SyntheticSpec, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write the synthetic data and extra-background files (LHCO HDF5 schema, key ``df``).

    Idempotent: when both files and a sidecar JSON recording the same spec and
    generator version exist, nothing is done. Files are written atomically
    (temporary file + rename) under a lock, so concurrent callers are safe.
    """
    data_path, extra_path = synthetic_paths(spec, out_dir)

    def make():
        log.info("generating %s (sizes %s)", spec.tag, spec.sizes)
        return generate(spec)

    _write_once((data_path, extra_path), sidecar_path(spec, out_dir), _record(spec), make)
    return data_path, extra_path


def alternative_path(spec: SyntheticSpec, mismodelling: float, out_dir) -> Path:
    """The alternative simulation's extra-background file of ``spec`` (may not exist yet)."""
    return Path(out_dir) / f"{spec.tag}_alt{mismodelling:g}_extrabkg.h5"


def write_alternative(spec: SyntheticSpec, mismodelling: float, out_dir) -> Path:
    """Write the extra background of the alternative simulation (LHCO schema); its path.

    As many events over the same mjj range as the nominal extra background, with
    features from ``SyntheticModel(mismodelling=mismodelling)``; its own seed, so
    no event repeats a nominal one. Idempotent, atomic, locked like
    :func:`write_synthetic`.
    """
    if not (isinstance(mismodelling, int | float) and mismodelling > 0):
        raise ValueError(f"mismodelling: must be a number > 0, got {mismodelling!r}")
    path = alternative_path(spec, mismodelling, out_dir)
    record = {**_record(spec), "alternative": {"mismodelling": float(mismodelling)}}
    record["alternative"]["latent_shift"] = list(mismodelling * ALT_LATENT_SHIFT)

    def make():
        model = SyntheticModel(shifted=spec.shifted, mismodelling=mismodelling)
        n = spec.sizes[2]
        words = [spec.seed, GENERATOR_VERSION, int(spec.shifted), 0xA17, round(mismodelling * 1e6)]
        rng = np.random.default_rng(np.random.SeedSequence(words))
        mjj = model.sample_mjj_bkg(n, rng, *spec.extra_range)
        log.info("generating the alternative simulation (%g) of %s", mismodelling, spec.tag)
        return (_table(mjj, model.sample_bkg(mjj, rng), np.zeros(n, np.int8), rng),)

    _write_once((path,), path.with_suffix(".json"), record, make)
    return path
