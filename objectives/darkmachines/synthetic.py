"""Synthetic DarkMachines-like events with closed-form densities and an exact likelihood ratio.

Writes files in the challenge's text format (:mod:`objectives.darkmachines.format`)
so the real reader is exercised end to end: one background file (a mix of
Standard-Model-like processes, weighted by cross-section fractions) and one file
per signal. Calibrated to look plausible, not to match the challenge's samples.

Model (GeV). Every process is a mixture of *modes* (e.g. ttbar all-hadronic /
semi-leptonic / di-leptonic). Given the mode:

* objects come in four groups, ``jet`` (type j), ``bjet`` (b), ``lepton`` (e-, e+,
  m-, m+) and ``photon`` (g). A group's multiplicity is ``n_min + K`` with ``K`` a
  Poisson(lambda) truncated to ``n_min + K <= N_MAX[group]``; the maxima (8, 3, 6, 3)
  add up to 20 = the reader's default ``max_objects``, so truncation never happens;
* objects are independent given the mode. An object draws its type (leptons:
  a categorical over e-, e+, m-, m+), then a mixture component, then
  ``u = log(pT / pT_min(type)) ~ Gamma(k, theta)`` (a turn-on and a power-law-like
  tail in pT), ``eta ~ Normal(0, sigma)`` truncated to ``|eta| < eta_max(type)``,
  ``phi ~ Uniform(-pi, pi)``. E is a function of (pT, eta, type) through a known
  mass (jets 0.10 pT, b-jets 0.12 pT, lepton masses, photons 0), so it carries no
  information and is not part of the density;
* ``log(MET/GeV) ~ Normal(mu, sigma)`` and ``METphi ~ Uniform(-pi, pi)``, independent
  of the objects.

Exact density. With respect to Lebesgue measure on (log pT/GeV, eta, phi) per
object and (log MET/GeV, METphi) per event, the file lists every group's
objects sorted by pT (the reader sorts all objects by pT); the density of that
sorted list is

    p(x | mode) = N(log MET) / (2 pi) * prod_g [ P_g(N_g) * N_g! * prod_{i in g} q_g(x_i) ],

where ``q_g`` is the marked (type x kinematics) density of one object of group g
and ``N_g!`` counts the orderings of the iid draws that give the same sorted list
(the order statistics of N iid draws have density N! prod f). ``p(x | process)``
sums the modes with their weights; the background is ``sum_p pi_p p(x | p)``.
Every group has lambda > 0 and every mode full kinematic support, and one
background mode has all ``n_min = 0``, so the background density is positive
everywhere and the likelihood ratio is finite.

Under a selection (a channel's :class:`~objectives.darkmachines.format.Cuts`) each
class density becomes ``p(x) 1[x passes] / P(pass)``, so the likelihood ratio of
the selected events is the unselected one times the constant
``P_bkg(pass) / P_sig(pass)``: rankings, ROC curves and AUCs are unchanged.

Precision. Values are written with 9 significant digits (relative 5e-9); the
density is then evaluated on the float32 arrays of :class:`ObjectEvents`, whose
rounding of log pT (~2e-7 absolute) moves the log density by ~1e-6 per object,
~1e-5 per event at most -- the contract's float32 arrays, not the text, bound it.

Example:
    >>> import numpy as np
    >>> model = DMSyntheticModel()
    >>> recs = model.sample("ttbar", 3, np.random.default_rng(0))
    >>> len(recs), recs[0].process
    (3, 'ttbar')
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import gammaln, logsumexp, ndtr, ndtri

from objectives.darkmachines.format import (
    MEV_PER_GEV,
    OBJECT_TYPES,
    TYPE_CODE,
    EventRecord,
    ObjectEvents,
    write_events,
)
from objectives.files import atomic_write_text

__all__ = [
    "BACKGROUND_PROCESSES",
    "GENERATOR_VERSION",
    "GROUPS",
    "HEAVY_SIGNALS",
    "N_MAX",
    "SIGNALS",
    "DMSyntheticModel",
    "DMSyntheticSpec",
    "synthetic_paths",
    "write_synthetic_darkmachines",
]

log = logging.getLogger(__name__)

#: Bumped whenever the generator's output for a given spec changes.
GENERATOR_VERSION = 1

GROUPS = ("jet", "bjet", "lepton", "photon")
GROUP_TYPES = {"jet": ("j",), "bjet": ("b",), "lepton": ("e-", "e+", "m-", "m+"), "photon": ("g",)}
#: Largest multiplicity of each group; they add up to 20, the default max_objects.
N_MAX = {"jet": 8, "bjet": 3, "lepton": 6, "photon": 3}
PT_MIN = {"j": 20.0, "b": 20.0, "e-": 15.0, "e+": 15.0, "m-": 15.0, "m+": 15.0, "g": 20.0}
ETA_MAX = {"j": 2.8, "b": 2.5, "e-": 2.47, "e+": 2.47, "m-": 2.7, "m+": 2.7, "g": 2.37}
#: Object mass: a fraction of pT (jets) or a constant (GeV).
MASS_FRACTION = {"j": 0.10, "b": 0.12}
MASS = {"e-": 0.000511, "e+": 0.000511, "m-": 0.10566, "m+": 0.10566, "g": 0.0}
# File order of the real challenge files: (b-)jets, electrons, muons, photons.
_FILE_RANK = {"j": 0, "b": 0, "e-": 1, "e+": 1, "m-": 2, "m+": 2, "g": 3}
_LOG_2PI = math.log(2 * math.pi)
_TOL = 1e-5  # support tolerance for values rounded in the file / float32 arrays


@dataclass(frozen=True)
class _Kin:
    """One mixture component of an object's kinematics."""

    weight: float
    k: float  # Gamma shape of u = log(pT / pT_min)
    theta: float  # Gamma scale
    sigma_eta: float


@dataclass(frozen=True)
class _Group:
    """Multiplicity n_min + truncated Poisson(lam); kinematics mixture; type probabilities."""

    n_min: int
    lam: float
    kin: tuple[_Kin, ...]
    type_probs: tuple[float, ...] = (1.0,)


@dataclass(frozen=True)
class _Mode:
    weight: float
    groups: dict[str, _Group]
    met: tuple[float, float]  # mean and sd of log(MET / GeV)


def _k(k: float, pt_mean: float, sigma_eta: float, weight: float = 1.0, pt_min=20.0) -> _Kin:
    """A component whose u = log(pT/pt_min) has mean log(pt_mean/pt_min) (theta from k)."""
    return _Kin(weight, k, math.log(pt_mean / pt_min) / k, sigma_eta)


_SOFT_JET = (_k(2.0, 55.0, 1.5),)
_SOFT_LEP = (_k(2.0, 35.0, 1.3, pt_min=15.0),)
_SOFT_PHO = (_k(2.0, 45.0, 1.3),)
_LEP_UNIFORM = (0.25, 0.25, 0.25, 0.25)
_LEP_W = (0.2, 0.3, 0.2, 0.3)  # W+ produced more often than W- at the LHC


def _mode(weight: float, met: tuple[float, float], **groups: _Group) -> _Mode:
    """A mode; groups not given are rare and soft."""
    defaults = {
        "jet": _Group(0, 0.3, _SOFT_JET),
        "bjet": _Group(0, 0.02, _SOFT_JET),
        "lepton": _Group(0, 0.01, _SOFT_LEP, _LEP_UNIFORM),
        "photon": _Group(0, 0.01, _SOFT_PHO),
    }
    defaults.update(groups)
    return _Mode(weight, defaults, (math.log(met[0]), met[1]))


# fmt: off
_TT_JET = (_k(2.5, 75.0, 1.3),)
_TT_B = (_k(3.0, 80.0, 1.1),)
_TT_LEP = (_k(3.0, 55.0, 1.2, pt_min=15.0),)
#: Background processes: (cross-section fraction, modes).
_BACKGROUND: dict[str, tuple[float, tuple[_Mode, ...]]] = {
    "njets": (0.40, (  # QCD multijet
        _mode(1.0, (22.0, 0.6),
              jet=_Group(2, 1.2, (_k(2.0, 60.0, 1.4),)),
              bjet=_Group(0, 0.25, (_k(2.0, 60.0, 1.3),))),
    )),
    "w_jets": (0.20, (
        _mode(1.0, (40.0, 0.5),
              jet=_Group(0, 1.0, (_k(2.0, 55.0, 1.5),)),
              bjet=_Group(0, 0.05, _SOFT_JET),
              lepton=_Group(1, 0.02, (_k(4.0, 45.0, 1.3, pt_min=15.0),), _LEP_W)),
    )),
    "z_jets": (0.10, (
        _mode(0.3, (15.0, 0.6),  # Z -> ll
              jet=_Group(0, 0.8, (_k(2.0, 50.0, 1.5),)),
              lepton=_Group(2, 0.02, (_k(5.0, 45.0, 1.3, pt_min=15.0),), _LEP_UNIFORM)),
        _mode(0.7, (60.0, 0.5),  # Z -> nu nu recoiling against jets
              jet=_Group(0, 1.0, (_k(2.0, 65.0, 1.4),))),
    )),
    "ttbar": (0.15, (
        _mode(0.46, (30.0, 0.6), jet=_Group(4, 1.0, _TT_JET), bjet=_Group(1, 0.6, _TT_B)),
        _mode(0.44, (60.0, 0.5), jet=_Group(2, 1.0, _TT_JET), bjet=_Group(1, 0.6, _TT_B),
              lepton=_Group(1, 0.05, _TT_LEP, _LEP_UNIFORM)),
        _mode(0.10, (70.0, 0.5), jet=_Group(0, 0.8, _TT_JET), bjet=_Group(1, 0.6, _TT_B),
              lepton=_Group(2, 0.05, _TT_LEP, _LEP_UNIFORM)),
    )),
    "gam_jets": (0.12, (
        _mode(1.0, (20.0, 0.6),
              jet=_Group(1, 0.8, (_k(2.0, 60.0, 1.5),)),
              photon=_Group(1, 0.03, (_k(3.0, 60.0, 1.3),))),
    )),
    "diboson": (0.03, (
        _mode(0.3, (50.0, 0.5), jet=_Group(0, 0.5, _SOFT_JET),
              lepton=_Group(2, 0.05, (_k(4.0, 50.0, 1.2, pt_min=15.0),), _LEP_UNIFORM)),
        _mode(0.7, (45.0, 0.5), jet=_Group(2, 0.5, (_k(3.0, 70.0, 1.3),)),
              lepton=_Group(1, 0.05, (_k(4.0, 50.0, 1.2, pt_min=15.0),), _LEP_W)),
    )),
}

_STOP_JET = (_k(6.0, 120.0, 1.1),)
_STOP_B = (_k(6.0, 140.0, 1.0),)
_STOP_LEP = (_k(4.0, 60.0, 1.1, pt_min=15.0),)
#: Signals: modes.
_SIGNALS: dict[str, tuple[_Mode, ...]] = {
    # A ~1 TeV resonance: two hard jets (80 %) or two hard leptons (20 %) near M/2,
    # plus the usual soft jets.
    "zprime": (
        _mode(0.8, (30.0, 0.6),
              jet=_Group(2, 0.8, (_k(8.0, 250.0, 1.0, weight=0.5), _k(2.0, 60.0, 1.5, 0.5)))),
        _mode(0.2, (20.0, 0.6),
              jet=_Group(0, 0.8, (_k(2.0, 60.0, 1.5),)),
              lepton=_Group(2, 0.05, (_k(8.0, 250.0, 1.0, pt_min=15.0),), _LEP_UNIFORM)),
    ),
    # Dark matter recoiling against one hard jet: extra MET.
    "monojet": (
        _mode(1.0, (60.0, 0.6), jet=_Group(1, 0.5, (_k(3.0, 90.0, 1.1),))),
    ),
    # Gluino pairs: many jets and b-jets, some leptons, moderate MET.
    "gluino": (
        _mode(1.0, (50.0, 0.6),
              jet=_Group(2, 1.5, (_k(3.0, 80.0, 1.2),)),
              bjet=_Group(0, 0.6, (_k(3.0, 80.0, 1.1),)),
              lepton=_Group(0, 0.2, _TT_LEP, _LEP_UNIFORM)),
    ),
    # Electroweak chargino-neutralino: one to three leptons and MET.
    "chargino": (
        _mode(1.0, (50.0, 0.5),
              jet=_Group(0, 0.5, _SOFT_JET),
              lepton=_Group(1, 0.8, (_k(3.0, 40.0, 1.1, pt_min=15.0),), _LEP_UNIFORM)),
    ),
    # The four above are soft: they sit near the background's bulk. The two below are
    # modelled on the challenge's heavy benchmarks, far out of it.
    # A 1 TeV stop pair, each stop -> top + 300 GeV neutralino (the challenge's stop
    # signals): one or two b-jets, light jets, a lepton in semi-leptonic decays, MET of
    # several hundred GeV.
    "stop": (
        _mode(0.45, (320.0, 0.45), jet=_Group(2, 1.0, _STOP_JET), bjet=_Group(1, 0.8, _STOP_B),
              lepton=_Group(1, 0.05, _STOP_LEP, _LEP_UNIFORM)),
        _mode(0.45, (280.0, 0.45), jet=_Group(4, 0.8, _STOP_JET), bjet=_Group(1, 0.8, _STOP_B)),
        _mode(0.10, (350.0, 0.45), jet=_Group(0, 0.8, _STOP_JET), bjet=_Group(1, 0.8, _STOP_B),
              lepton=_Group(2, 0.05, _STOP_LEP, _LEP_UNIFORM)),
    ),
    # A 2 TeV gluino pair, each gluino -> q q + light neutralino (the challenge's gluino
    # signals without compression): four to eight hard jets, HT above 1 TeV, MET of
    # several hundred GeV.
    "heavy_gluino": (
        _mode(1.0, (450.0, 0.5),
              jet=_Group(4, 2.0, (_k(10.0, 200.0, 1.0),)),
              bjet=_Group(0, 0.4, (_k(10.0, 200.0, 1.0),)),
              lepton=_Group(0, 0.1, (_k(3.0, 60.0, 1.2, pt_min=15.0),), _LEP_UNIFORM)),
    ),
}
# fmt: on

BACKGROUND_PROCESSES = tuple(_BACKGROUND)
SIGNALS = tuple(_SIGNALS)
#: The signals modelled on the challenge's heavy benchmarks (MET of hundreds of GeV), far
#: out of the background's bulk; the others are soft, near it.
HEAVY_SIGNALS = ("stop", "heavy_gluino")


def _mass(kind: str, pt: np.ndarray) -> np.ndarray:
    if kind in MASS_FRACTION:
        return MASS_FRACTION[kind] * pt
    return np.full_like(pt, MASS[kind])


def _log_pmf(group: _Group, n_max: int) -> np.ndarray:
    """log P(N = n) for n = 0 .. 64 (-inf outside n_min .. n_max)."""
    k = np.arange(n_max - group.n_min + 1)
    log_w = k * math.log(group.lam) - gammaln(k + 1)
    out = np.full(65, -np.inf)
    out[group.n_min : n_max + 1] = log_w - logsumexp(log_w)
    return out


class _CompiledMode:
    """A mode's constants in array form, for fast density evaluation and sampling."""

    def __init__(self, mode: _Mode) -> None:
        self.log_weight = math.log(mode.weight)
        self.met_mu, self.met_sigma = mode.met
        self.log_pmf = {g: _log_pmf(mode.groups[g], N_MAX[g]) for g in GROUPS}
        self.groups = mode.groups
        # per type: (log type prob, log comp weights, k, theta, sigma_eta, log eta norm)
        self.per_type: dict[str, tuple] = {}
        for g in GROUPS:
            grp = mode.groups[g]
            probs = np.asarray(grp.type_probs, dtype=np.float64)
            probs = probs / probs.sum()
            for kind, p in zip(GROUP_TYPES[g], probs, strict=True):
                w = np.array([c.weight for c in grp.kin], dtype=np.float64)
                k = np.array([c.k for c in grp.kin])
                theta = np.array([c.theta for c in grp.kin])
                sig = np.array([c.sigma_eta for c in grp.kin])
                a = ETA_MAX[kind] / sig
                log_eta_norm = np.log(sig) + 0.5 * _LOG_2PI + np.log(ndtr(a) - ndtr(-a))
                self.per_type[kind] = (
                    math.log(p),
                    np.log(w / w.sum()),
                    k,
                    theta,
                    sig,
                    log_eta_norm,
                )

    def log_q(self, kind: str, log_pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
        """log of one object's marked density (type prob x kinematics), phi excluded."""
        log_p, log_w, k, theta, sig, log_eta_norm = self.per_type[kind]
        u = log_pt[:, None] - math.log(PT_MIN[kind])
        inside = (u > -_TOL) & (np.abs(eta) <= ETA_MAX[kind] + _TOL)[:, None]
        u = np.maximum(u, 1e-12)
        terms = (
            log_w
            + (k - 1) * np.log(u)
            - u / theta
            - gammaln(k)
            - k * np.log(theta)
            - 0.5 * (eta[:, None] / sig) ** 2
            - log_eta_norm
        )
        terms = np.where(inside, terms, -np.inf)
        return log_p + logsumexp(terms, axis=1)

    def sample(
        self, n: int, rng: np.random.Generator, counts: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Flat arrays of n events: owner, type index, pT, eta, phi (objects); met, met_phi.

        ``counts``: (n, len(GROUPS)) multiplicities of each group to sample the events
        with (None: drawn from the mode's multiplicity distributions).
        """
        owners, kinds, pts, etas = [], [], [], []
        for gi, g in enumerate(GROUPS):
            grp = self.groups[g]
            if counts is None:
                pmf = np.exp(self.log_pmf[g][: N_MAX[g] + 1])
                n_g = np.searchsorted(np.cumsum(pmf), rng.random(n) * pmf.sum(), side="right")
                n_g = np.minimum(n_g, N_MAX[g])
            else:
                n_g = np.asarray(counts[:, gi], dtype=np.int64)
            owner = np.repeat(np.arange(n), n_g)
            m = len(owner)
            probs = np.asarray(grp.type_probs, dtype=np.float64)
            type_idx = rng.choice(len(probs), size=m, p=probs / probs.sum())
            w = np.array([c.weight for c in grp.kin], dtype=np.float64)
            comp = rng.choice(len(w), size=m, p=w / w.sum())
            k = np.array([c.k for c in grp.kin])[comp]
            theta = np.array([c.theta for c in grp.kin])[comp]
            sig = np.array([c.sigma_eta for c in grp.kin])[comp]
            kind_names = np.array(GROUP_TYPES[g])[type_idx]
            pt_min = np.array([PT_MIN[t] for t in GROUP_TYPES[g]])[type_idx]
            eta_max = np.array([ETA_MAX[t] for t in GROUP_TYPES[g]])[type_idx]
            u = rng.gamma(k, theta)
            lo = ndtr(-eta_max / sig)
            eta = sig * ndtri(lo + rng.random(m) * (1 - 2 * lo))
            owners.append(owner)
            kinds.append(np.array([TYPE_CODE[t] for t in kind_names], dtype=np.int8))
            pts.append(pt_min * np.exp(u))
            etas.append(eta)
        met = np.exp(self.met_mu + self.met_sigma * rng.standard_normal(n))
        return {
            "owner": np.concatenate(owners),
            "code": np.concatenate(kinds),
            "pt": np.concatenate(pts),
            "eta": np.concatenate(etas),
            "met": met,
        }


class DMSyntheticModel:
    """Closed-form densities and samplers of the synthetic DarkMachines processes.

    Densities are evaluated on :class:`ObjectEvents` arrays (as read back by
    :func:`~objectives.darkmachines.format.read_events`), never on generator internals.
    """

    SIGNALS = SIGNALS
    BACKGROUND_PROCESSES = BACKGROUND_PROCESSES

    def __init__(self) -> None:
        self._modes = {
            name: [_CompiledMode(m) for m in modes] for name, (_, modes) in _BACKGROUND.items()
        }
        self._modes.update(
            {name: [_CompiledMode(m) for m in modes] for name, modes in _SIGNALS.items()}
        )
        fractions = np.array([f for f, _ in _BACKGROUND.values()], dtype=np.float64)
        self.cross_section_fractions = dict(
            zip(BACKGROUND_PROCESSES, fractions / fractions.sum(), strict=True)
        )

    def _check_process(self, process: str) -> list[_CompiledMode]:
        if process not in self._modes:
            valid = ", ".join(BACKGROUND_PROCESSES + SIGNALS)
            raise ValueError(f"process: must be one of {valid}, got {process!r}")
        return self._modes[process]

    # --- densities ------------------------------------------------------------------
    def multiplicity_pmf(self, process: str, group: str) -> np.ndarray:
        """P(N_group = n), n = 0 .. N_MAX[group], of one process (its modes mixed)."""
        if group not in GROUPS:
            raise ValueError(f"group: must be one of {', '.join(GROUPS)}, got {group!r}")
        modes = self._check_process(process)
        log_p = logsumexp([m.log_weight + m.log_pmf[group] for m in modes], axis=0)
        return np.exp(log_p[: N_MAX[group] + 1])

    def log_prob(self, ev: ObjectEvents, process: str) -> np.ndarray:
        """(n,) exact log density of each event under one process (signal or background).

        Raises ValueError for events read with truncation (their density is not defined).
        """
        modes = self._check_process(process)
        if ev.n_truncated:
            raise ValueError(
                f"ev: {ev.n_truncated} event(s) were truncated to max_objects="
                f"{ev.max_objects}; read with max_objects >= {sum(N_MAX.values())}"
            )
        n = len(ev)
        rows, slots = np.nonzero(ev.mask)
        codes = ev.types[rows, slots]
        log_pt = ev.kinematics[rows, slots, 1].astype(np.float64)
        eta = ev.kinematics[rows, slots, 2].astype(np.float64)
        phi = ev.kinematics[rows, slots, 3].astype(np.float64)
        log_met = ev.event[:, 0].astype(np.float64)
        met_phi = ev.event[:, 1].astype(np.float64)
        # shared by all modes: phi densities and the N_g! factors
        base = np.where(np.abs(met_phi) <= math.pi + _TOL, -_LOG_2PI, -np.inf)
        bad_phi = np.abs(phi) > math.pi + _TOL
        base += np.bincount(rows, weights=np.where(bad_phi, -np.inf, -_LOG_2PI), minlength=n)
        counts = {}
        for g in GROUPS:
            group_codes = [TYPE_CODE[t] for t in GROUP_TYPES[g]]
            counts[g] = np.sum(np.isin(ev.types, group_codes) & ev.mask, axis=1)
            base += gammaln(counts[g] + 1)
        by_type = {kind: np.nonzero(codes == TYPE_CODE[kind])[0] for kind in OBJECT_TYPES}

        per_mode = []
        for mode in modes:
            total = base + mode.log_weight
            total = total - 0.5 * ((log_met - mode.met_mu) / mode.met_sigma) ** 2
            total -= math.log(mode.met_sigma) + 0.5 * _LOG_2PI
            for g in GROUPS:
                total += mode.log_pmf[g][np.minimum(counts[g], 64)]
            obj = np.zeros(len(rows))
            for kind, idx in by_type.items():
                if len(idx):
                    obj[idx] = mode.log_q(kind, log_pt[idx], eta[idx])
            total += np.bincount(rows, weights=obj, minlength=n)
            per_mode.append(total)
        return logsumexp(np.stack(per_mode), axis=0)

    def log_prob_background(self, ev: ObjectEvents) -> np.ndarray:
        """(n,) exact log density of the background mixture (cross-section fractions)."""
        terms = [
            math.log(frac) + self.log_prob(ev, name)
            for name, frac in self.cross_section_fractions.items()
        ]
        return logsumexp(np.stack(terms), axis=0)

    def likelihood_ratio(self, ev: ObjectEvents, signal: str) -> np.ndarray:
        """(n,) exact p_signal / p_background, the Neyman-Pearson optimal score."""
        if signal not in SIGNALS:
            raise ValueError(f"signal: must be one of {', '.join(SIGNALS)}, got {signal!r}")
        with np.errstate(over="ignore"):
            return np.exp(self.log_prob(ev, signal) - self.log_prob_background(ev))

    # --- sampling -------------------------------------------------------------------
    def _sample_flat(self, process: str, n: int, rng: np.random.Generator) -> dict:
        modes = self._check_process(process)
        w = np.exp([m.log_weight for m in modes])
        which = rng.choice(len(modes), size=n, p=w / w.sum())
        return _flat(modes, which, rng)

    @functools.cached_property
    def _background_counts(self) -> tuple[list, np.ndarray, np.ndarray]:
        """(pairs, rows, log_p): the background's (process, mode) pairs; one row per pair
        and group multiplicities, ``[pair index, n_jet, n_bjet, n_lepton, n_photon]``; the
        row's log probability (cross-section fraction x mode weight x multiplicities)."""
        pairs = [(name, mode) for name in BACKGROUND_PROCESSES for mode in self._modes[name]]
        grids = np.meshgrid(*(np.arange(N_MAX[g] + 1) for g in GROUPS), indexing="ij")
        counts = np.stack([g.ravel() for g in grids], axis=1)
        rows, log_p = [], []
        for k, (name, mode) in enumerate(pairs):
            log_w = math.log(self.cross_section_fractions[name]) + mode.log_weight
            terms = sum(mode.log_pmf[g][counts[:, gi]] for gi, g in enumerate(GROUPS))
            rows.append(np.column_stack([np.full(len(counts), k), counts]))
            log_p.append(log_w + terms)
        return pairs, np.concatenate(rows), np.concatenate(log_p)

    def background_count_pmf(self) -> np.ndarray:
        """P_bkg(N = n), n = 0 .. sum(N_MAX): the background's total number of objects."""
        _, rows, log_p = self._background_counts
        total = rows[:, 1:].sum(axis=1)
        return np.bincount(total, weights=np.exp(log_p), minlength=sum(N_MAX.values()) + 1)

    def sample_background_given_count(
        self, n_objects: int, size: int, rng: np.random.Generator, *, first_id: int = 1
    ) -> list[EventRecord]:
        """``size`` background events drawn from the background given that an event has
        ``n_objects`` objects (exactly: the process, mode and group multiplicities are drawn
        from their joint distribution given the total, the kinematics as usual)."""
        pairs, rows, log_p = self._background_counts
        chosen = np.flatnonzero(rows[:, 1:].sum(axis=1) == n_objects)
        if len(chosen) == 0:
            raise ValueError(f"n_objects: must be in 0 .. {sum(N_MAX.values())}, got {n_objects!r}")
        p = np.exp(log_p[chosen] - logsumexp(log_p[chosen]))
        picked = rows[chosen[rng.choice(len(chosen), size=size, p=p)]]
        s = _flat([mode for _, mode in pairs], picked[:, 0], rng, picked[:, 1:])
        names = [pairs[k][0] for k in picked[:, 0].tolist()]
        return _records(s, names, first_id, rng)

    def sample(
        self, process: str, n: int, rng: np.random.Generator, *, first_id: int = 1
    ) -> list[EventRecord]:
        """n events of one process as file records (MeV), objects in the real files' order."""
        return _records(self._sample_flat(process, n, rng), [process] * n, first_id, rng)

    def sample_background(
        self, n: int, rng: np.random.Generator, *, first_id: int = 1
    ) -> list[EventRecord]:
        """n background events: processes drawn by cross-section fraction, in random order."""
        names = list(self.cross_section_fractions)
        fracs = np.array([self.cross_section_fractions[p] for p in names])
        label = rng.choice(len(names), size=n, p=fracs)
        records: list[EventRecord | None] = [None] * n
        for i, name in enumerate(names):
            idx = np.nonzero(label == i)[0]
            if len(idx) == 0:
                continue
            recs = _records(self._sample_flat(name, len(idx), rng), [name] * len(idx), 0, rng)
            for j, r in zip(idx.tolist(), recs, strict=True):
                records[j] = r._replace(event_id=str(first_id + j))
        return records  # type: ignore[return-value]


def _flat(
    modes: list[_CompiledMode],
    which: np.ndarray,
    rng: np.random.Generator,
    counts: np.ndarray | None = None,
) -> dict:
    """Flat samples of ``len(which)`` events, event i from ``modes[which[i]]`` (with group
    multiplicities ``counts[i]`` where given)."""
    n = len(which)
    parts, offset = [], 0
    order = np.argsort(which, kind="stable")
    for i, mode in enumerate(modes):
        n_i = int(np.sum(which == i))
        events = order[offset : offset + n_i]
        s = mode.sample(n_i, rng, None if counts is None else counts[events])
        s["owner"] = order[offset + s["owner"]] if n_i else s["owner"]
        s["event"] = events
        offset += n_i
        parts.append(s)
    met = np.empty(n)
    for s in parts:
        met[s["event"]] = s["met"]
    return {
        "owner": np.concatenate([s["owner"] for s in parts]),
        "code": np.concatenate([s["code"] for s in parts]),
        "pt": np.concatenate([s["pt"] for s in parts]),
        "eta": np.concatenate([s["eta"] for s in parts]),
        "met": met,
        "met_phi": rng.uniform(-math.pi, math.pi, n),
        "n": n,
    }


def _records(
    s: dict, processes: list[str], first_id: int, rng: np.random.Generator
) -> list[EventRecord]:
    """File records (MeV) of flat samples; phi drawn here; objects in file order."""
    n = s["n"]
    code, pt, eta, owner = s["code"], s["pt"], s["eta"], s["owner"]
    phi = rng.uniform(-math.pi, math.pi, len(code))
    energy = np.empty_like(pt)
    for kind in OBJECT_TYPES:
        sel = code == TYPE_CODE[kind]
        energy[sel] = np.hypot(_mass(kind, pt[sel]), pt[sel] * np.cosh(eta[sel]))
    file_rank = np.array([0] + [_FILE_RANK[t] for t in OBJECT_TYPES])[code]
    order = np.lexsort((-pt, file_rank, owner))
    counts = np.bincount(owner, minlength=n)
    ends = np.cumsum(counts).tolist()
    names = np.array(("",) + OBJECT_TYPES)[code[order]].tolist()
    values = list(
        zip(
            names,
            (energy[order] * MEV_PER_GEV).tolist(),
            (pt[order] * MEV_PER_GEV).tolist(),
            eta[order].tolist(),
            phi[order].tolist(),
            strict=True,
        )
    )
    met = (s["met"] * MEV_PER_GEV).tolist()
    met_phi = s["met_phi"].tolist()
    out, start = [], 0
    for i in range(n):
        out.append(
            EventRecord(
                str(first_id + i),
                processes[i],
                1.0,
                met[i],
                met_phi[i],
                tuple(values[start : ends[i]]),
            )
        )
        start = ends[i]
    return out


# --- files -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DMSyntheticSpec:
    """Which synthetic DarkMachines dataset: sizes (times ``scale``) and seed."""

    n_background: int = 200_000
    n_signal: int = 20_000
    seed: int = 0
    scale: float = 1.0
    _chunk: int = field(default=50_000, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("n_background", "n_signal"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DMSyntheticSpec.{name}: must be an integer >= 1, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"DMSyntheticSpec.seed: must be an integer >= 0, got {self.seed!r}")
        if not (isinstance(self.scale, int | float) and 0 < self.scale <= 100):
            raise ValueError(
                f"DMSyntheticSpec.scale: must be a number in (0, 100], got {self.scale!r}"
            )

    @property
    def sizes(self) -> tuple[int, int]:
        """(background, per-signal) event counts."""
        return tuple(max(1, round(n * self.scale)) for n in (self.n_background, self.n_signal))

    @property
    def tag(self) -> str:
        n_b, n_s = self.sizes
        return f"dmsynthetic_b{n_b}_s{n_s}_seed{self.seed}"


def synthetic_paths(spec: DMSyntheticSpec, out_dir: str | os.PathLike) -> dict[str, Path]:
    """{"background": path, signal: path, ...} of a spec inside out_dir (may not exist yet)."""
    out = Path(out_dir)
    names = ("background",) + SIGNALS
    return {name: out / f"{spec.tag}_{name}.csv" for name in names}


def _record(spec: DMSyntheticSpec) -> dict:
    spec_dict = {k: v for k, v in asdict(spec).items() if not k.startswith("_")}
    return {
        "spec": spec_dict,
        "generator_version": GENERATOR_VERSION,
        "sizes": list(spec.sizes),
        "signals": list(SIGNALS),
        "background_processes": list(BACKGROUND_PROCESSES),
    }


def _stream(
    model: DMSyntheticModel, name: str, n: int, rng: np.random.Generator, chunk: int
) -> Iterator[EventRecord]:
    done = 0
    while done < n:
        k = min(chunk, n - done)
        if name == "background":
            yield from model.sample_background(k, rng, first_id=done + 1)
        else:
            yield from model.sample(name, k, rng, first_id=done + 1)
        done += k


def write_synthetic_darkmachines(
    spec: DMSyntheticSpec, out_dir: str | os.PathLike
) -> dict[str, Path]:
    """Write the background file and one file per signal; returns {name: path}.

    Idempotent: when every file and a sidecar JSON recording the same spec and
    generator version exist, nothing is done. Files are written atomically under
    a lock, so concurrent callers are safe. Each file has its own random stream
    (the signals do not depend on the background size).
    """
    from filelock import FileLock

    paths = synthetic_paths(spec, out_dir)
    meta_path = Path(out_dir) / f"{spec.tag}.json"
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    expected = json.loads(json.dumps(_record(spec)))

    def up_to_date() -> bool:
        try:
            return json.loads(meta_path.read_text()) == expected and all(
                p.is_file() for p in paths.values()
            )
        except (OSError, ValueError):
            return False

    if up_to_date():
        return paths
    with FileLock(str(meta_path) + ".lock"):
        if up_to_date():
            return paths
        meta_path.unlink(missing_ok=True)
        log.info("generating %s (sizes %s)", spec.tag, spec.sizes)
        model = DMSyntheticModel()
        seeds = np.random.SeedSequence([spec.seed, GENERATOR_VERSION]).spawn(len(paths))
        n_bkg, n_sig = spec.sizes
        for (name, path), seed in zip(paths.items(), seeds, strict=True):
            n = n_bkg if name == "background" else n_sig
            rng = np.random.default_rng(seed)
            write_events(path, _stream(model, name, n, rng, spec._chunk))
        atomic_write_text(meta_path, json.dumps(_record(spec), indent=2))
    return paths
