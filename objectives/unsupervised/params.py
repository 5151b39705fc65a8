"""Hyperparameters of the unsupervised detectors as data, and their one validator.

``RULES[method]`` maps every hyperparameter of ``"dSVDD"``, ``"DROCC"`` and
``"DDD"`` to a ``Rule`` (``objectives.hyperparameters.Rule``, extended
here by string choices and lists of numbers; a single number stands for a
one-element list, so a search can draw DDD's grid one point at a time).
``validate`` returns the complete hyperparameters or raises
``HyperparameterError`` with the one message shape of every method, e.g.
``DROCC hyperparameter 'gamma': must be a number in [1, inf), got 0.5``.

``cell_defaults`` / ``validate_cell`` are the same without ``backbone``: in a
campaign the backbone is a grid dimension (``grid.backbones``), given by the
cell, not a hyperparameter (the registry's entries use these).

Shared by every method: ``backbone`` ("MLP", "ParT", "ParT+pair"),
``mlp_layers`` (the poster's [16, 8]; DDD [64, 32], see its rule), ``part_preset``
("cpu" or "poster", see ``objectives.unsupervised.backbones.PART_PRESETS``), ``epochs``,
``batch_size``, ``lr``, ``weight_decay``. The method-specific entries and
their sources are documented next to each rule below.

Importing this module loads neither torch nor scikit-learn.

Example:
    >>> hp = validate("dsvdd", {"rep_dims": [8]})
    >>> hp["backbone"], hp["rep_dims"], hp["center_eps"]
    ('MLP', [8], 0.1)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from objectives.errors import HyperparameterError
from objectives.hyperparameters import Rule
from objectives.hyperparameters import validate as _validate
from objectives.unsupervised.arrays import ORIGINS
from objectives.unsupervised.calibration import CALIBRATIONS

__all__ = [
    "BACKBONES",
    "GRID_KEYS",
    "METHODS",
    "RULES",
    "canonical_method",
    "cell_defaults",
    "defaults",
    "validate",
    "validate_cell",
]

METHODS = ("dSVDD", "DROCC", "DDD")
BACKBONES = ("MLP", "ParT", "ParT+pair")
#: Hyperparameters that a campaign cell sets (grid dimensions), not a search.
GRID_KEYS = ("backbone",)
PART_PRESET_NAMES = ("cpu", "poster")

_INF = math.inf


@dataclass(frozen=True)
class ChoiceRule(Rule):
    """One of ``choices`` (strings, matched case-insensitively, returned canonical)."""

    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def check(self, value: Any) -> tuple[bool, Any]:
        if isinstance(value, str):
            for choice in self.choices:
                if value.lower() == choice.lower():
                    return True, choice
        return False, None


@dataclass(frozen=True)
class FloatListRule(Rule):
    """A list of ``length[0]`` to ``length[1]`` numbers, each in range.

    A single number stands for the one-element list ``[number]`` when one element
    is allowed (a search draws one DDD grid point per trial).
    """

    def describe(self) -> str:
        lo = "(" if self.open_low else "["
        hi = ")" if self.open_high or self.high == _INF else "]"
        high = "inf" if self.high == _INF else _fmt(self.high)
        return (
            f"a list of {self.length[0]} to {self.length[1]} numbers each in "
            f"{lo}{_fmt(self.low)}, {high}{hi}"
        )

    def check(self, value: Any) -> tuple[bool, Any]:
        if self.length[0] == 1 and isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if (
            not isinstance(value, list | tuple)
            or not self.length[0] <= len(value) <= self.length[1]
        ):
            return False, None
        items = [self._number(v, integer=False) for v in value]
        return all(v is not None for v in items), items


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _int(default, low, high, **kw) -> Rule:
    return Rule("int", default, low, high, **kw)


def _float(default, low, high=_INF, **kw) -> Rule:
    return Rule("float", default, low, high, **kw)


def _origin() -> Rule:
    """Where the inputs' origin lies (``_train.Scaler``): the empty event or the mean one."""
    return ChoiceRule("choice", "empty", choices=ORIGINS)


def _common(
    *, epochs: int, lr: float, weight_decay: float, calibration: str, mlp_layers=(16, 8)
) -> dict[str, Rule]:
    return {
        "backbone": ChoiceRule("choice", "MLP", choices=BACKBONES),
        # the poster's MLP: Dense 16 relu, BatchNorm, Dense 8 relu, BatchNorm
        "mlp_layers": Rule("int_list", list(mlp_layers), 1, 4096, length=(1, 8)),
        "part_preset": ChoiceRule("choice", "cpu", choices=PART_PRESET_NAMES),
        "epochs": _int(epochs, 1, 10000),
        "batch_size": _int(256, 2, 1000000),
        "lr": _float(lr, 0.0, 1.0, open_low=True),
        "weight_decay": _float(weight_decay, 0.0),
        # how the score is read: raw, or as the joint p-value within its object
        # multiplicity and of the multiplicity, on held-out background (calibration.py)
        "calibration": ChoiceRule("choice", calibration, choices=CALIBRATIONS),
    }


RULES: dict[str, dict[str, Rule]] = {
    # Ruff et al., ICML 2018: Adam, weight decay 1e-6, centre eps 0.1, no bias terms.
    "dSVDD": {
        **_common(epochs=20, lr=1e-3, weight_decay=1e-6, calibration="multiplicity"),
        # output dimensions of the ensemble (the DarkMachines challenge's d5, d8, d13, d21)
        "rep_dims": Rule("int_list", [5, 8, 13, 21], 1, 1024, length=(1, 16)),
        "center_eps": _float(0.1, 0.0, open_low=True),
        # events in the initial forward pass that sets c (null = all training events)
        "center_events": _int(None, 1, 10**9, nullable=True),
        # must stay false: a network with bias terms collapses (see validate)
        "bias": Rule("bool", False),
        # the inputs' origin (_train.Scaler): the empty event, or the mean background event
        # (before). On the synthetic DarkMachines set (MLP, 20k events, 10 epochs, seeds
        # 0-2) "empty" raised the label-free perturb_auc in every seed (0.570-0.573 against
        # 0.550-0.556) and the mean AUC over six signals from 0.636-0.660 to 0.703-0.718;
        # docs/benchmarks.md, run G.
        "input_origin": _origin(),
    },
    # Goyal et al., arXiv:2002.12718 (DROCCTrainer defaults: gamma 2, lambda 1);
    # radius in units of the data's scale (the median nearest-neighbour distance of the
    # training background in the searched coordinates), ascent step in standardised units.
    # Radius 8 about the empty event (radius 2 about the mean event before): on the
    # synthetic DarkMachines set (MLP, 20k events, 10 epochs) the label-free perturb_auc
    # was 0.567-0.584 in seeds 0-4 (before: 0.513-0.553 in seeds 0-2; radius 2 about the
    # empty event: 0.469-0.582, below random in two seeds); docs/benchmarks.md, run G.
    "DROCC": {
        **_common(epochs=20, lr=1e-3, weight_decay=0.0, calibration="multiplicity"),
        "radius": _float(8.0, 0.0, open_low=True),
        "input_origin": _origin(),
        "gamma": _float(2.0, 1.0),
        "mu": _float(1.0, 0.0),
        "ascent_steps": _int(10, 0, 1000),
        "ascent_step_size": _float(0.1, 0.0),
        "only_ce_epochs": _int(2, 0, 10000),
    },
    # the poster's discriminant distortion detection; grid and band of the AUC (0.7-0.8).
    # Default grid: two-sided multiplicity edits only (p_drop and p_add > 0: a one-sided
    # edit teaches the classifier a direction and inverts the other). On the synthetic
    # DarkMachines set (MLP, 20k events, 10 epochs) the held-out AUC is 0.61 at
    # (0.3, 0.3, 0.3), 0.63 at (0.3, 0.5, 0.5), 0.71 at (0.5, 0.3, 0.3), 0.72 at
    # (0.5, 0.5, 0.5); the grid spans the band around them (those AUCs with the poster's
    # [16, 8]; with [64, 32] the default grid's move by at most 0.011, seed 0, and its
    # sigma = 0.6 points stay the ones in the band).
    # MLP [64, 32], wider than the poster's [16, 8]: on the synthetic DarkMachines set
    # (20k events, 10 epochs) it raised the label-free perturb_auc in 6 seeds of 6
    # (chosen on seeds 0-2, confirmed on 3-5) and the far tail with it (stop eps_S at
    # eps_B = 1e-3: 0.109-0.152 against 0.018-0.108); docs/benchmarks.md, run E.
    "DDD": {
        **_common(epochs=10, lr=1e-3, weight_decay=0.0, calibration="none", mlp_layers=(64, 32)),
        "sigmas": FloatListRule("float_list", [0.4, 0.6], 0.0, length=(1, 64)),
        # per event: the probability to lose one object / to gain one
        "p_drops": FloatListRule("float_list", [0.3, 0.5], 0.0, 1.0, length=(1, 64)),
        "p_adds": FloatListRule("float_list", [0.3, 0.5], 0.0, 1.0, length=(1, 64)),
        "auc_band": FloatListRule("float_list", [0.7, 0.8], 0.5, 1.0, length=(2, 2)),
    },
}


def canonical_method(name: str) -> str:
    """``"dsvdd"`` -> ``"dSVDD"``; unknown names raise ``HyperparameterError``."""
    for canon in METHODS:
        if isinstance(name, str) and name.lower() == canon.lower():
            return canon
    raise HyperparameterError(
        f"unknown unsupervised method {name!r}; valid methods are {', '.join(METHODS)}"
    )


def defaults(method: str) -> dict[str, Any]:
    """A fresh dict of the default hyperparameters of ``method``."""
    return {k: copy.deepcopy(r.default) for k, r in RULES[canonical_method(method)].items()}


def validate(method: str, hp: dict[str, Any] | None) -> dict[str, Any]:
    """The complete, normalised hyperparameters: ``hp`` over the defaults.

    Raises ``HyperparameterError`` naming the parameter, the rule and the
    value for an unknown name, a value out of range, or a combination that
    cannot work (dSVDD ``bias``, DROCC ``only_ce_epochs >= epochs``, DDD a
    band with low >= high).
    """
    canon = canonical_method(method)
    out = _validate(canon, RULES[canon], hp)
    _check_combinations(canon, out)
    return out


def cell_defaults(method: str) -> dict[str, Any]:
    """The defaults of ``method`` without the grid dimensions (``backbone``)."""
    return {k: v for k, v in defaults(method).items() if k not in GRID_KEYS}


def validate_cell(method: str, hp: dict[str, Any] | None) -> dict[str, Any]:
    """``validate`` for a campaign cell: ``backbone`` is the cell's, not a hyperparameter.

    Returns the hyperparameters without ``backbone``; naming it is an error that
    points at ``grid.backbones``.
    """
    canon = canonical_method(method)
    rules = {k: r for k, r in RULES[canon].items() if k not in GRID_KEYS}
    if isinstance(hp, dict):
        for key in GRID_KEYS:
            if key in hp:
                raise HyperparameterError(
                    f"{canon} hyperparameter {key!r}: unknown; valid names are "
                    f"{', '.join(rules)} (the {key} of a campaign cell is a grid dimension: "
                    f"grid.{key}s)"
                )
    out = _validate(canon, rules, hp, cell_defaults(canon))
    _check_combinations(canon, out)
    return out


def _check_combinations(canon: str, hp: dict[str, Any]) -> None:
    def fail(key: str, rule: str) -> None:
        raise HyperparameterError(
            f"{canon} hyperparameter {key!r}: must be {rule}, got {hp[key]!r}"
        )

    if canon == "dSVDD" and hp["bias"]:
        fail(
            "bias",
            "false (with bias terms the network can map every event to the centre c: "
            "a constant output has zero loss and scores carry no information; "
            "Ruff et al. 2018, Prop. 2)",
        )
    if canon == "DROCC" and hp["only_ce_epochs"] >= hp["epochs"]:
        fail("only_ce_epochs", f"smaller than epochs ({hp['epochs']}) so that negatives are used")
    if canon == "DDD":
        low, high = hp["auc_band"]
        if not low < high:
            fail("auc_band", "[low, high] with low < high")
