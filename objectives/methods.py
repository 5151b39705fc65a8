"""The public method interface: what a detector declares so the service can tune and select it.

Every method -- the built-in ones (:mod:`objectives.builtins`) and those of other
packages -- is one :class:`Method` object at a module attribute, named in a campaign's
``grid.classifiers`` and loaded by :func:`objectives.registry.load_method`. A package
makes its method visible by an entry point of the group ``wsad_hpo.methods``::

    [project.entry-points."wsad_hpo.methods"]
    LightGBM = "wsad_lightgbm:method"

or a campaign names it as ``"module:attribute"`` found on ``PYTHONPATH``.

A method declares its family, the modes it accepts, its metrics and their directions,
its hyperparameters (rules with defaults for the search and the final runs), its search
space (plain data or Optuna distributions; ``hpo`` turns the data into distributions,
this package never imports optuna) and whether it trains on a device. The service does
the rest: splits, metrics, repetitions and pruning, export, finals, selection, report,
the SLURM chain, provenance.

The short way for a weakly supervised classifier is :func:`classifier_method`: give a
factory of an estimator with scikit-learn's shape and the hyperparameter rules::

    >>> from objectives.hyperparameters import float_rule, int_rule
    >>> m = classifier_method(
    ...     "MyTrees",
    ...     estimator="mylab.trees:make",          # (hp, *, seed, n_jobs, device) -> estimator
    ...     hyperparameters={"depth": int_rule(6, 1, 64), "lr": float_rule(0.1, 0.0, 1.0)},
    ...     space={"depth": {"type": "int", "low": 2, "high": 12}},
    ... )
    >>> m.family, m.metrics, m.default_hyperparameters()
    ('classifier', ('argos', 'bce', 'max_sic'), {'depth': 6, 'lr': 0.1})

The estimator implements ``fit(X, y, sample_weight=None, validation=None)`` (returning
itself) and ``predict_proba(X)`` (shape ``(n, 2)`` as scikit-learn's, or ``(n,)``: the
probability of class 1, signal-region data). One that keeps per-epoch states declares
``epoch_choice`` (the hyperparameter holding how many of the best epochs to average) and
implements ``epoch_predictions(X)`` of shape ``(n_epochs, n)``: the service ranks the
epochs by each selection metric on the held-out events, as it does for the built-in NN.

Any family can instead give its own ``evaluator`` (``"module:function"`` with the
signature ``(hp, cell, split, *, n_jobs, device) -> EvaluationResult``), as the density
and unsupervised built-ins do. ``docs/methods.md`` is the full contract.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from objectives.errors import HyperparameterError
from objectives.hyperparameters import Rule, defaults_of
from objectives.hyperparameters import validate as validate_rules

__all__ = [
    "CLASSIFIER_EVALUATOR",
    "DENSITY_MODE",
    "FAMILIES",
    "MODES",
    "ORACLES",
    "Method",
    "classifier_method",
    "resolve",
]

#: The method families: weakly supervised classifiers, density methods, unsupervised detectors.
FAMILIES = ("classifier", "density", "unsupervised")
#: The weakly supervised modes of the classifier family.
MODES = ("IAD", "CWoLa", "CATHODE")
#: The mode of every density-method cell.
DENSITY_MODE = "density"
#: The truth-oracle metrics (need labelled test events); every other metric is label-free.
ORACLES = ("max_sic", "auc", "eps_s_1e-2", "eps_s_1e-3", "eps_s_1e-4")
#: The metrics of every classifier: label-free ARGOS (max) and BCE (min), then max SIC.
CLASSIFIER_DIRECTIONS = {"argos": "maximize", "bce": "minimize", "max_sic": "maximize"}
#: The service's evaluate function of the classifier family (estimator in, every metric out).
CLASSIFIER_EVALUATOR = "objectives.classifiers.evaluate:evaluate_classifier"


def resolve(target: str | Callable) -> Any:
    """The object named ``"module:attribute"`` (imported on first use); a callable as given."""
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    obj = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Method:
    """One method: everything the service needs to know to tune, run and select it.

    Attributes:
        name: as written in ``grid.classifiers`` (letters, digits, ``_ . -``).
        family: ``"classifier"``, ``"density"`` or ``"unsupervised"`` (:data:`FAMILIES`).
        modes: the cell modes it accepts (the backbones, for the unsupervised family).
        directions: metric -> ``"maximize"`` | ``"minimize"``, label-free metrics first,
            then the truth oracles (:data:`ORACLES`) if the method gives an anomaly score.
        defaults: ``defaults(final: bool) -> dict``, search (False) or final-run settings.
        validator: ``validator(hp, final: bool) -> dict``: ``hp`` over the defaults,
            checked; raises :class:`~objectives.errors.HyperparameterError`.
        evaluator: ``"module:function"`` with signature ``(hp, cell, split, *, n_jobs,
            device)``; ``device`` ("auto", "cpu", "cuda") matters to torch methods only.
        quick_hp: a setting that fits in seconds on a small cell (smoke runs, the
            registry's behaviour test, ``hpo validate``'s check), not a recommendation.
        needs_background_flow: cells need a trained CATHODE background flow.
        study_metrics: the label-free metrics a study of this method records and may
            optimise (None: all of them); the others are reported by every evaluation,
            for selection across detectors only.
        ensembler: ``"module:function"`` with signature ``(hps, cell, split, *, n_jobs,
            device)`` that trains every hyperparameter set of ``hps`` and averages their
            scores (the "ensemble over trials" of ``hpo final``), or None.
        space: hyperparameter -> search range: a table ``{"type": "int" | "float" |
            "categorical", "low", "high", "step", "log", "choices"}`` or an Optuna
            distribution; or a callable returning that mapping (built on first use).
        estimator: classifier family: ``"module:function"`` (or the function) building
            the estimator, ``(hp, *, seed, n_jobs, device) -> estimator``; None for a
            method with its own ``evaluator``.
        epoch_choice: the hyperparameter giving how many of the best epochs the
            prediction averages, for an estimator with ``epoch_predictions(X)``; None.
        device: it trains on a device (torch): ``search.device`` applies to it.
        defaults_outside_space: hyperparameter -> why its search default lies outside
            its search range (e.g. the reference's default above the published range);
            any other default outside the space stops ``hpo validate``.
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
    space: Mapping[str, Any] | Callable[[], Mapping[str, Any]] = field(
        default_factory=dict, repr=False
    )
    estimator: str | Callable | None = field(default=None, repr=False)
    epoch_choice: str | None = None
    device: bool = False
    defaults_outside_space: Mapping[str, str] = field(default_factory=dict, repr=False)

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

    def search_space(self) -> dict[str, Any]:
        """Hyperparameter -> search range as declared (plain data or distributions)."""
        space = self.space() if callable(self.space) else self.space
        return dict(space)

    def make_estimator(self, hp: Mapping[str, Any], *, seed: int, n_jobs: int = 1, device="cpu"):
        """The classifier-family estimator for checked ``hp`` (ValueError without one);
        a method that does not train on a device gets ``device="cpu"``."""
        if self.estimator is None:
            raise ValueError(f"{self.name} has no estimator (it evaluates through its own code)")
        where = device if self.device else "cpu"
        return resolve(self.estimator)(dict(hp), seed=int(seed), n_jobs=n_jobs, device=where)

    def evaluate(
        self, hp: Mapping[str, Any] | None, cell, split, *, n_jobs: int = 1, device: str = "cpu"
    ):
        """Validate ``hp`` and run the method's evaluate function (``device``: torch methods)."""
        return resolve(self.evaluator)(self.validate(hp), cell, split, n_jobs=n_jobs, device=device)

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
        return resolve(self.ensembler)(checked, cell, split, n_jobs=n_jobs, device=device)

    def cell_metrics(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        """The metrics a cell of this method records, given a campaign's ``search.metrics``.

        The method's study metrics (:attr:`searched`) that the campaign asks for (all of
        them if it asks for none of them: a density method brings its own ``val_loss``),
        then the method's truth oracles that the campaign asks for; a method without
        label-free metrics (a one-variable cut) records its oracles in any case.
        """
        chosen = tuple(m for m in self.searched if m in wanted) or self.searched
        return chosen + tuple(m for m in self.oracles if m in wanted) or self.metrics


def classifier_method(
    name: str,
    *,
    estimator: str | Callable,
    hyperparameters: Mapping[str, Rule],
    space: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    search_defaults: Mapping[str, Any] | None = None,
    modes: tuple[str, ...] = MODES,
    quick_hp: Mapping[str, Any] | None = None,
    epoch_choice: str | None = None,
    device: bool = False,
    defaults_outside_space: Mapping[str, str] | None = None,
) -> Method:
    """A weakly supervised classifier: an estimator factory and its hyperparameter rules.

    Args:
        name: the name in ``grid.classifiers``.
        estimator: ``"module:function"`` or the function ``(hp, *, seed, n_jobs, device)``
            returning an estimator with ``fit(X, y, sample_weight, validation)`` and
            ``predict_proba(X)``; ``hp`` is complete and checked.
        hyperparameters: name -> :class:`~objectives.hyperparameters.Rule`; each rule's
            default is the final runs' (and the search's unless ``search_defaults``).
        space: name -> search range (plain data or an Optuna distribution), or a callable
            returning that mapping.
        search_defaults: defaults that differ during the search (e.g. fewer epochs).
        modes: the weakly supervised modes it accepts (all three by default).
        quick_hp: a seconds-long setting (smoke runs and ``hpo validate``'s check).
        epoch_choice: the rule holding how many best epochs to average (see module doc).
        device: the estimator trains on ``device`` (torch); False: the CPU only.
        defaults_outside_space: hyperparameter -> why its default lies outside its space.
    """
    rules = dict(hyperparameters)
    search = copy.deepcopy(dict(search_defaults or {}))

    def defaults(final: bool) -> dict[str, Any]:
        hp = defaults_of(rules)
        if not final:
            hp.update(copy.deepcopy(search))
        return hp

    def validator(hp: Mapping[str, Any] | None, final: bool) -> dict[str, Any]:
        return validate_rules(name, rules, hp, defaults(final))

    return Method(
        name=name,
        family="classifier",
        modes=tuple(modes),
        directions=dict(CLASSIFIER_DIRECTIONS),
        defaults=defaults,
        validator=validator,
        evaluator=CLASSIFIER_EVALUATOR,
        quick_hp=dict(quick_hp or {}),
        space=space if callable(space) else dict(space),
        estimator=estimator,
        epoch_choice=epoch_choice,
        device=device,
        defaults_outside_space=dict(defaults_outside_space or {}),
    )
