"""The method registry: every method a campaign cell can run, declared once.

A :class:`Method` declares its family, the modes it accepts, its selection
metrics and their directions (label-free ones first, the truth oracles --
:data:`ORACLES`, ``max_sic`` for the LHCO families -- last where the method
gives an anomaly score), its defaults (search and final), its hyperparameter
validator (one message shape for all, see :mod:`objectives.hyperparameters`),
what it needs built before trials run, its evaluate function and, where the
method can average its scores over several hyperparameter sets, its ensemble
function (both imported on first use, so this module loads neither torch nor
scikit-learn). :func:`objectives.evaluate.evaluate` looks a method up and
dispatches; ``hpo`` reads metrics, directions and defaults from here.

Families:

* ``classifier``: HGB, AdaBoost, NN, trained in a weakly supervised mode (IAD,
  CWoLa, CATHODE); label-free metrics ARGOS (max) and BCE (min);
* ``density``: ANODE, R-ANODE (anomaly scores from densities against the cached
  CATHODE background flow) and BackgroundFlow (that flow itself, no anomaly
  score); mode ``"density"``; label-free metric ``val_loss`` (min), which their
  studies optimise. ANODE and R-ANODE also report ARGOS (max) and BCE (min) of
  their anomaly score between held-out signal-region data and held-out samples of
  that background flow (the CATHODE template of the same flow), so one label-free
  metric compares them with the classifiers (``hpo select``); ``study_metrics``
  keeps those out of their studies.
* ``unsupervised``: dSVDD, DROCC, DDD (seed 002), trained on background only on
  DarkMachines-format events; the modes are the backbones (``MLP``, ``ParT``,
  ``ParT+pair``); label-free metrics ``perturb_auc`` (max: how well the detector
  ranks held-out background perturbed in generic ways above the same events, see
  :mod:`objectives.unsupervised.perturb`; the campaigns' objective) and ``val_loss``
  (min: the method's own held-out loss, see :mod:`objectives.unsupervised.detector`;
  recorded, a weak selection metric); truth oracles ``auc`` and
  ``eps_s_1e-2`` / ``eps_s_1e-3`` / ``eps_s_1e-4`` (signal efficiency at those
  background efficiencies), each the mean over the data's signals (max). Beside
  them the family's baselines (:mod:`objectives.unsupervised.baselines`):
  IsolationForest, FlowDensity, the one-variable cuts MET, HT and NObjects (no
  hyperparameters, no label-free metric) and, on the synthetic set, BkgDensity
  (the signal-agnostic limit); their one mode is ``"baseline"``.

Adding a method is one :func:`register` call; the behaviour test in
``tests/test_registry.py`` runs over every registered method.

Example:
    >>> get_method("HGB").metrics
    ('argos', 'bce', 'max_sic')
    >>> get_method("R-ANODE").directions["val_loss"]
    'minimize'
    >>> get_method("ANODE").metrics, get_method("ANODE").searched
    (('val_loss', 'argos', 'bce', 'max_sic'), ('val_loss',))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from objectives.errors import HyperparameterError

__all__ = [
    "DENSITY_MODE",
    "DIRECTIONS",
    "MODES",
    "ORACLES",
    "Method",
    "get_method",
    "method_names",
    "register",
]

#: The weakly supervised modes of the classifier family.
MODES = ("IAD", "CWoLa", "CATHODE")
#: The mode of every density-method cell.
DENSITY_MODE = "density"
#: Direction of every metric any method reports (a metric has one direction everywhere).
DIRECTIONS: dict[str, str] = {}
#: The truth-oracle metrics (need labelled test events); every other metric is label-free.
ORACLES = ("max_sic", "auc", "eps_s_1e-2", "eps_s_1e-3", "eps_s_1e-4")


@dataclass(frozen=True)
class Method:
    """One registered method.

    Attributes:
        name: as written in ``grid.classifiers``.
        family: ``"classifier"``, ``"density"`` or ``"unsupervised"``.
        modes: the cell modes it accepts (the backbones, for the unsupervised family).
        directions: metric -> ``"maximize"`` | ``"minimize"``, label-free metrics first,
            then the truth oracles (:data:`ORACLES`) if the method gives an anomaly score.
        defaults: ``defaults(final: bool) -> dict``, search (False) or final-run settings.
        validator: ``validator(hp, final: bool) -> dict``: ``hp`` over the defaults,
            checked; raises :class:`~objectives.errors.HyperparameterError`.
        evaluator: ``"module:function"`` with signature ``(hp, cell, split, *, n_jobs,
            device)``; ``device`` ("auto", "cpu", "cuda") matters to torch methods only.
        quick_hp: a setting that fits in seconds on a small cell (smoke runs, the
            registry's behaviour test), not a recommendation.
        needs_background_flow: cells need a trained CATHODE background flow.
        study_metrics: the label-free metrics a study of this method records and may
            optimise (None: all of them); the others are reported by every evaluation,
            for selection across detectors only.
        ensembler: ``"module:function"`` with signature ``(hps, cell, split, *, n_jobs,
            device)``
            that trains every hyperparameter set of ``hps`` and averages their scores
            (the "ensemble over trials" of ``hpo final``), or None.
    """

    name: str
    family: str
    modes: tuple[str, ...]
    directions: Mapping[str, str]
    defaults: Callable[[bool], dict[str, Any]] = field(repr=False)
    validator: Callable[[Mapping[str, Any] | None, bool], dict[str, Any]] = field(repr=False)
    evaluator: str = field(repr=False)
    quick_hp: Mapping[str, Any] = field(default_factory=dict, repr=False)
    needs_background_flow: bool = False
    study_metrics: tuple[str, ...] | None = None
    ensembler: str | None = field(default=None, repr=False)

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric an evaluation reports, label-free first."""
        return tuple(self.directions)

    @property
    def label_free(self) -> tuple[str, ...]:
        """The metrics computed without truth labels."""
        return tuple(m for m in self.directions if m not in ORACLES)

    @property
    def oracles(self) -> tuple[str, ...]:
        """The truth-oracle metrics it reports (labelled test events needed)."""
        return tuple(m for m in self.directions if m in ORACLES)

    @property
    def searched(self) -> tuple[str, ...]:
        """The label-free metrics its studies may record and optimise."""
        return self.label_free if self.study_metrics is None else self.study_metrics

    @property
    def has_score(self) -> bool:
        """Whether the method gives an anomaly score (and so truth-oracle metrics)."""
        return bool(self.oracles)

    @property
    def can_ensemble(self) -> bool:
        """Whether it can average its scores over several hyperparameter sets."""
        return self.ensembler is not None

    def default_hyperparameters(self, *, final: bool = False) -> dict[str, Any]:
        """A fresh dict of defaults: the search setting, or the final runs' with ``final``."""
        return self.defaults(final)

    def validate(self, hp: Mapping[str, Any] | None, *, final: bool = False) -> dict[str, Any]:
        """``hp`` over the defaults, every value checked (HyperparameterError otherwise)."""
        return self.validator(hp, final)

    def evaluate(
        self, hp: Mapping[str, Any] | None, cell, split, *, n_jobs: int = 1, device: str = "cpu"
    ):
        """Validate ``hp`` and run the method's evaluate function (``device``: torch methods)."""
        return _load(self.evaluator)(self.validate(hp), cell, split, n_jobs=n_jobs, device=device)

    def evaluate_ensemble(self, hps, cell, split, *, n_jobs: int = 1, device: str = "cpu"):
        """Validate every set of ``hps`` and run the method's ensemble function.

        Raises ValueError for a method without one (``can_ensemble`` is False) and
        HyperparameterError for an empty ``hps`` or a bad set.
        """
        if self.ensembler is None:
            raise ValueError(f"{self.name} cannot average scores over hyperparameter sets")
        hps = list(hps)
        if not hps:
            raise HyperparameterError(
                f"{self.name} ensemble: needs at least one hyperparameter set"
            )
        checked = [self.validate(hp) for hp in hps]
        return _load(self.ensembler)(checked, cell, split, n_jobs=n_jobs, device=device)

    def cell_metrics(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        """The metrics a cell of this method records, given a campaign's ``search.metrics``.

        The method's study metrics (:attr:`searched`) that the campaign asks for (all of
        them if it asks for none of them: a density method brings its own ``val_loss``),
        then the method's truth oracles that the campaign asks for; a method without
        label-free metrics (a one-variable cut) records its oracles in any case.
        """
        chosen = tuple(m for m in self.searched if m in wanted) or self.searched
        return chosen + tuple(m for m in self.oracles if m in wanted) or self.metrics


def _load(target: str):
    """The function named ``"module:function"`` (imported on first use)."""
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method``; a metric must keep one direction across all methods."""
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is already registered")
    for metric, direction in method.directions.items():
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"{method.name}: metric {metric!r} has direction {direction!r}")
        if DIRECTIONS.get(metric, direction) != direction:
            raise ValueError(
                f"{method.name}: metric {metric!r} is {direction} here but "
                f"{DIRECTIONS[metric]} for other methods"
            )
    DIRECTIONS.update(method.directions)
    _REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method ``name``; unknown names raise HyperparameterError listing them."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise HyperparameterError(
            f"unknown method {name!r}; valid methods are {', '.join(_REGISTRY)}"
        ) from None


def method_names(family: str | None = None) -> tuple[str, ...]:
    """Registered method names (of one family), in registration order."""
    return tuple(n for n, m in _REGISTRY.items() if family is None or m.family == family)


# ----------------------------------------------------------------------------- entries
def _classifier(name: str, quick_hp: dict[str, Any]) -> Method:
    from objectives.classifiers import _params

    return Method(
        name=name,
        family="classifier",
        modes=MODES,
        directions={"argos": "maximize", "bce": "minimize", "max_sic": "maximize"},
        defaults=lambda final: _params.defaults(name, final=final),
        validator=lambda hp, final: _params.validate(name, hp, final=final),
        evaluator="objectives.classifiers.evaluate:evaluate_classifier",
        quick_hp=quick_hp,
    )


def _density(name: str, quick_hp: dict[str, Any], *, has_score: bool) -> Method:
    from objectives.flows import hyperparameters as flow_hp

    directions = {"val_loss": "minimize"}
    if has_score:  # ARGOS and BCE against the flow's samples: selection across detectors
        directions.update(argos="maximize", bce="minimize", max_sic="maximize")
    return Method(
        name=name,
        family="density",
        modes=(DENSITY_MODE,),
        directions=directions,
        defaults=lambda final: flow_hp.flow_defaults(name, final=final),
        validator=lambda hp, final: flow_hp.validate_flow(name, hp, final=final),
        evaluator="objectives.flows.methods:evaluate_density",
        quick_hp=quick_hp,
        needs_background_flow=has_score,
        study_metrics=("val_loss",),
    )


def _unsupervised(name: str, quick_hp: dict[str, Any]) -> Method:
    from objectives.unsupervised import params

    return Method(
        name=name,
        family="unsupervised",
        modes=params.BACKBONES,
        directions={
            "perturb_auc": "maximize",
            "val_loss": "minimize",
            **{m: "maximize" for m in ORACLES[1:]},
        },
        defaults=lambda final: params.cell_defaults(name),
        validator=lambda hp, final: params.validate_cell(name, hp),
        evaluator="objectives.unsupervised.evaluate:evaluate_unsupervised",
        quick_hp=quick_hp,
        ensembler="objectives.unsupervised.evaluate:evaluate_trial_ensemble",
    )


_QUICK_SPLINE = {"epochs": 2, "n_keep": 1, "n_transforms": 1, "n_blocks": 1, "hidden": 16}
register(_classifier("HGB", {"n_ensemble": 1, "max_iter": 20}))
register(_classifier("AdaBoost", {"n_ensemble": 1, "n_estimators": 5}))
register(_classifier("NN", {"epochs": 2, "n_best_epochs": 1, "batch_size": 512, "layers": [16]}))
register(_density("ANODE", _QUICK_SPLINE, has_score=True))
register(_density("R-ANODE", _QUICK_SPLINE, has_score=True))
register(
    _density(
        "BackgroundFlow",
        {"n_blocks": 2, "hidden": 16, "epochs": 2, "n_keep": 1, "batch_size": 512},
        has_score=False,
    )
)
_QUICK_NET = {"epochs": 2, "batch_size": 128}
register(_unsupervised("dSVDD", {**_QUICK_NET, "rep_dims": [4]}))
register(_unsupervised("DROCC", {**_QUICK_NET, "only_ce_epochs": 1, "ascent_steps": 2}))
# one distortion: a trial is one point of DDD's own scan
register(_unsupervised("DDD", {**_QUICK_NET, "sigmas": [0.5], "p_drops": [0.0], "p_adds": [0.3]}))


# ------------------------------------------------- unsupervised baselines (issue 25 §1)
# What every detector of the family must beat, and on synthetic data the signal-agnostic
# limit (objectives.unsupervised.baselines). One mode (no backbone); a method without
# hyperparameters (the cuts, BkgDensity) is evaluated once per cell, not searched.
def _baseline(name: str, quick_hp: dict[str, Any]) -> Method:
    from objectives.unsupervised import baselines

    has_loss = name not in baselines.CUTS  # a cut has no model, so no loss
    label_free = {"perturb_auc": "maximize"}  # any score ranks perturbed background
    if has_loss:
        label_free["val_loss"] = "minimize"
    return Method(
        name=name,
        family="unsupervised",
        modes=(baselines.BASELINE_MODE,),
        directions={**label_free, **{m: "maximize" for m in ORACLES[1:]}},
        defaults=lambda final: baselines.defaults(name, final=final),
        validator=lambda hp, final: baselines.validate(name, hp, final=final),
        evaluator="objectives.unsupervised.evaluate:evaluate_unsupervised",
        quick_hp=quick_hp,
    )


register(_baseline("IsolationForest", {"n_estimators": 20, "max_samples": 128}))
register(_baseline("FlowDensity", {"n_blocks": 2, "hidden": 16, "epochs": 2, "n_keep": 1}))
register(_baseline("MET", {}))
register(_baseline("HT", {}))
register(_baseline("NObjects", {}))
register(_baseline("BkgDensity", {}))
