"""The built-in methods, declared through the public interface (:mod:`objectives.methods`).

Each method is one :class:`~objectives.methods.Method` at a module attribute, loaded by
:func:`objectives.registry.load_method` like any package's method: the registry's
:data:`~objectives.registry.BUILTINS` names these attributes as ``"module:attribute"``
targets, the same form as an entry point of ``wsad_hpo.methods``.

The search spaces live here, beside their methods, as plain data (``hpo.spaces`` turns
them into Optuna distributions); they equal the reference study's. Integer ranges of
the reference are half-open (``int[2, 200)``); here ``high`` is inclusive (199).
``10^U(-4, -0.1)`` is a log-uniform float in ``[1e-4, 10**-0.1]``. What differs between
the search and the final runs (the NN's 20 vs 100 epochs, the flows' 30 vs published
epochs) is the method's own default.

Families:

* ``classifier``: HGB, AdaBoost, NN, trained in a weakly supervised mode (IAD, CWoLa,
  CATHODE); label-free metrics ARGOS (max) and BCE (min);
* ``density``: ANODE, R-ANODE (anomaly scores from densities against the cached CATHODE
  background flow) and BackgroundFlow (that flow itself, no anomaly score); mode
  ``"density"``; label-free metric ``val_loss`` (min), which their studies optimise.
  ANODE and R-ANODE also report ARGOS (max) and BCE (min) of their anomaly score between
  held-out signal-region data and held-out samples of that background flow (the CATHODE
  template of the same flow), so one label-free metric compares them with the
  classifiers (``hpo select``); ``study_metrics`` keeps those out of their studies.
* ``unsupervised``: dSVDD, DROCC, DDD (seed 002), trained on background only on
  DarkMachines-format events; the modes are the backbones (``MLP``, ``ParT``,
  ``ParT+pair``); label-free metrics ``perturb_auc`` (max: how well the detector ranks
  held-out background perturbed in generic ways above the same events, see
  :mod:`objectives.unsupervised.perturb`; the campaigns' objective) and ``val_loss``
  (min: the method's own held-out loss, see :mod:`objectives.unsupervised.detector`;
  recorded, a weak selection metric); truth oracles ``auc`` and ``eps_s_1e-2``
  / ``eps_s_1e-3`` / ``eps_s_1e-4`` (signal efficiency at those background
  efficiencies), each the mean over the data's signals (max). Beside them the
  family's baselines (:mod:`objectives.unsupervised.baselines`): IsolationForest,
  FlowDensity, the one-variable cuts MET, HT and NObjects (no hyperparameters, no
  label-free metric) and, on the synthetic set, BkgDensity (the signal-agnostic
  limit); their one mode is ``"baseline"``.

Importing this module loads neither torch nor scikit-learn.
"""

from __future__ import annotations

import functools
from typing import Any

from objectives.methods import DENSITY_MODE, ORACLES, Method, classifier_method

__all__ = [
    "ANODE",
    "DDD",
    "DROCC",
    "HGB",
    "NN",
    "R_ANODE",
    "AdaBoost",
    "BackgroundFlow",
    "BkgDensity",
    "FlowDensity",
    "HT",
    "IsolationForest",
    "MET",
    "NObjects",
    "dSVDD",
]

_LR = {"type": "float", "low": 1e-4, "high": 10**-0.1, "log": True}
#: The reference's defaults are scikit-learn's; some lie outside its published ranges.
_REFERENCE = "the reference's default (scikit-learn's) lies outside the published range"
_UNLIMITED = "the reference's default is null (no limit), which a range cannot hold"


# ----------------------------------------------------------------------------- classifiers
def _classifier(name: str, space: dict, quick_hp: dict, **kw: Any) -> Method:
    from objectives.classifiers import _params, make_classifier

    return classifier_method(
        name,
        estimator=functools.partial(make_classifier, name),
        hyperparameters=_params.RULES[name],
        search_defaults=_params.SEARCH_OVERRIDES.get(name),
        space=space,
        quick_hp=quick_hp,
        **kw,
    )


HGB = _classifier(
    "HGB",
    {
        "learning_rate": _LR,
        "max_iter": {"type": "int", "low": 2, "high": 199},
        "max_leaf_nodes": {"type": "int", "low": 2, "high": 99},
        "max_depth": {"type": "int", "low": 2, "high": 14},
        "l2_regularization": {"type": "float", "low": 0.0, "high": 10.0},
        "max_bins": {"type": "int", "low": 31, "high": 254},
    },
    {"n_ensemble": 1, "max_iter": 20},
    defaults_outside_space={
        "max_iter": _REFERENCE + " int[2, 200)",
        "max_depth": _UNLIMITED,
        "max_bins": _REFERENCE + " int[31, 255)",
    },
)
AdaBoost = _classifier(
    "AdaBoost",
    {
        "max_depth": {"type": "int", "low": 2, "high": 14},
        "max_leaf_nodes": {"type": "int", "low": 2, "high": 99},
        "min_samples_leaf": {"type": "int", "low": 1, "high": 99},
        "learning_rate": _LR,
        "n_estimators": {"type": "int", "low": 2, "high": 99},
    },
    {"n_ensemble": 1, "n_estimators": 5},
    defaults_outside_space={
        "max_depth": _UNLIMITED,
        "learning_rate": _REFERENCE + " 10^U(-4, -0.1)",
    },
)
NN = _classifier(
    "NN",
    {
        "lr": {"type": "categorical", "choices": [1e-2, 5e-3, 1e-3, 5e-4, 1e-4]},
        "batch_size": {"type": "categorical", "choices": [64, 128, 256, 512, 1024, 2048, 4096]},
        "dropout": {"type": "categorical", "choices": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]},
        "weight_decay": {"type": "categorical", "choices": [0.0, 1e-5, 1e-4, 1e-3, 1e-2]},
        "beta1": {"type": "categorical", "choices": [0.8, 0.9, 0.95, 0.99]},
    },
    {"epochs": 2, "n_best_epochs": 1, "batch_size": 512, "layers": [16]},
    epoch_choice="n_best_epochs",
    device=True,
)


# ----------------------------------------------------------------------------- density
#: Spline-flow spaces of the density methods (no published space; ranges around the
#: R-ANODE slides' setting of 6 x 2 x 64, 8 bins, dropout 0.2, lr 3e-4).
_SPLINE_FLOW = {
    "lr": {"type": "float", "low": 1e-4, "high": 3e-3, "log": True},
    "n_transforms": {"type": "int", "low": 2, "high": 8},
    "n_blocks": {"type": "int", "low": 1, "high": 3},
    "hidden": {"type": "categorical", "choices": [32, 64, 128]},
    "dropout": {"type": "categorical", "choices": [0.0, 0.1, 0.2, 0.3]},
    "n_bins": {"type": "categorical", "choices": [4, 8, 16]},
    "batch_size": {"type": "categorical", "choices": [128, 256, 512, 1024]},
}
_QUICK_SPLINE = {"epochs": 2, "n_keep": 1, "n_transforms": 1, "n_blocks": 1, "hidden": 16}


def _density(name: str, space: dict, quick_hp: dict[str, Any], *, has_score: bool) -> Method:
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
        space=space,
        device=True,
    )


ANODE = _density("ANODE", _SPLINE_FLOW, _QUICK_SPLINE, has_score=True)
R_ANODE = _density("R-ANODE", _SPLINE_FLOW, _QUICK_SPLINE, has_score=True)
#: The CATHODE background MAF, around the published 15 x 128, lr 1e-4, batch 256.
BackgroundFlow = _density(
    "BackgroundFlow",
    {
        "n_blocks": {"type": "int", "low": 4, "high": 20},
        "hidden": {"type": "categorical", "choices": [32, 64, 128, 256]},
        "lr": {"type": "float", "low": 3e-5, "high": 3e-3, "log": True},
        "batch_size": {"type": "categorical", "choices": [256, 512, 1024, 2048, 4096]},
    },
    {"n_blocks": 2, "hidden": 16, "epochs": 2, "n_keep": 1, "batch_size": 512},
    has_score=False,
)


# ----------------------------------------------------------------------------- unsupervised
#: No published space: ranges around the method papers' defaults. The backbone is a grid
#: dimension, not searched; the poster tunes nothing per signal, so these spaces feed
#: the ensemble over trials.
_NET_LR = {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}
#: How a score is read (objectives.unsupervised.calibration): raw, or as its joint p-value
#: within its object multiplicity and of the multiplicity. Searched: perturb_auc picks.
_CALIBRATION = {"type": "categorical", "choices": ["none", "multiplicity"]}
_QUICK_NET = {"epochs": 2, "batch_size": 128}


def _unsupervised(name: str, space: dict, quick_hp: dict[str, Any], **kw: Any) -> Method:
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
        space=space,
        device=True,
        **kw,
    )


dSVDD = _unsupervised(
    "dSVDD",
    {
        "lr": _NET_LR,
        "batch_size": {"type": "categorical", "choices": [128, 256, 512]},
        "weight_decay": {"type": "categorical", "choices": [0.0, 1e-6, 1e-5, 1e-4]},
        "calibration": _CALIBRATION,
    },
    {**_QUICK_NET, "rep_dims": [4]},
)
#: DROCC: the shell radius in units of the data's scale (the median nearest-neighbour
#: distance of the training background, default 8), its width and weight.
DROCC = _unsupervised(
    "DROCC",
    {
        "lr": _NET_LR,
        "radius": {"type": "float", "low": 1.0, "high": 16.0, "log": True},
        "gamma": {"type": "categorical", "choices": [1.5, 2.0, 3.0]},
        "mu": {"type": "float", "low": 0.25, "high": 2.0, "log": True},
        "calibration": _CALIBRATION,
    },
    {**_QUICK_NET, "only_ce_epochs": 1, "ascent_steps": 2},
)
#: DDD: one distortion point per trial (its own scan; the band keeps the good ones that
#: invert no generic anomaly); both multiplicity edits on (a one-sided one inverts).
_GRID = "the default is DDD's grid of distortion points; a trial draws one point"
DDD = _unsupervised(
    "DDD",
    {
        "sigmas": {"type": "float", "low": 0.02, "high": 1.0, "log": True},
        "p_drops": {"type": "float", "low": 0.1, "high": 0.6},
        "p_adds": {"type": "float", "low": 0.1, "high": 0.6},
        "lr": _NET_LR,
        "calibration": _CALIBRATION,
    },
    # one distortion: a trial is one point of DDD's own scan
    {**_QUICK_NET, "sigmas": [0.5], "p_drops": [0.0], "p_adds": [0.3]},
    defaults_outside_space={"sigmas": _GRID, "p_drops": _GRID, "p_adds": _GRID},
)


# ----------------------------------------------------------------------------- baselines
# What every detector of the family must beat, and on synthetic data the signal-agnostic
# limit (objectives.unsupervised.baselines). One mode (no backbone); a method without
# hyperparameters (the cuts, BkgDensity) is evaluated once per cell, not searched.
def _baseline(name: str, space: dict, quick_hp: dict[str, Any], **kw: Any) -> Method:
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
        space=space,
        **kw,
    )


#: Isolation Forest: trees and events per tree around scikit-learn's 100 x 256, and the
#: share of features per tree.
IsolationForest = _baseline(
    "IsolationForest",
    {
        "n_estimators": {"type": "categorical", "choices": [100, 200, 400]},
        "max_samples": {"type": "int", "low": 64, "high": 4096, "log": True},
        "max_features": {"type": "float", "low": 0.5, "high": 1.0},
        "calibration": _CALIBRATION,
    },
    {"n_estimators": 20, "max_samples": 128},
)
#: FlowDensity: the MAF's size and learning rate around its defaults (5 x 64, 1e-3).
FlowDensity = _baseline(
    "FlowDensity",
    {
        "n_blocks": {"type": "int", "low": 2, "high": 10},
        "hidden": {"type": "categorical", "choices": [32, 64, 128]},
        "lr": {"type": "float", "low": 3e-4, "high": 3e-3, "log": True},
        "calibration": _CALIBRATION,
    },
    {"n_blocks": 2, "hidden": 16, "epochs": 2, "n_keep": 1},
    device=True,
)
#: Without hyperparameters: nothing to search (a campaign evaluates them once).
MET = _baseline("MET", {}, {})
HT = _baseline("HT", {}, {})
NObjects = _baseline("NObjects", {}, {})
BkgDensity = _baseline("BkgDensity", {}, {})
