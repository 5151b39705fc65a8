"""Hyperparameter rules as data, and the one validator every method uses.

A method's hyperparameters are a table ``{name: Rule}``; :func:`validate` turns
a user's plain dict (JSON round-trippable: ints, floats, bools, lists, null)
into a complete, normalised dict over the defaults or raises
:class:`~objectives.errors.HyperparameterError` with one message shape::

    HGB hyperparameter 'max_iter': must be an integer in [1, 10000], got 0
    R-ANODE hyperparameter 'foo': unknown; valid names are n_transforms, ...

Importing this module loads neither torch nor scikit-learn.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from objectives.errors import HyperparameterError

__all__ = ["Rule", "defaults_of", "float_rule", "int_rule", "validate"]

_INF = math.inf


@dataclass(frozen=True)
class Rule:
    """What one hyperparameter may be.

    kind: "int", "float", "bool" or "int_list" (a list of ints, each in range).
    low/high: inclusive bounds unless ``open_low``/``open_high``.
    nullable: ``None`` (JSON null) is allowed (e.g. "no limit", "learned").
    length: (min, max) list length for "int_list".
    """

    kind: str
    default: Any
    low: float = -_INF
    high: float = _INF
    open_low: bool = False
    open_high: bool = False
    nullable: bool = False
    length: tuple[int, int] = (1, 1)

    def describe(self) -> str:
        """What the rule asks for, e.g. ``an integer in [1, 10000]``."""
        noun = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(self.kind)
        if self.kind == "int_list":
            noun = f"a list of {self.length[0]} to {self.length[1]} integers"
        if self.kind != "bool" and (self.low > -_INF or self.high < _INF):
            lo = "(" if self.open_low else "["
            hi = ")" if self.open_high or self.high == _INF else "]"
            high = "inf" if self.high == _INF else _fmt(self.high)
            each = " each" if self.kind == "int_list" else ""
            noun += f"{each} in {lo}{_fmt(self.low)}, {high}{hi}"
        return noun + (" or null" if self.nullable else "")

    def check(self, value: Any) -> tuple[bool, Any]:
        """``(True, normalised value)``, or ``(False, None)`` when ``value`` breaks the rule."""
        if value is None:
            return self.nullable, None
        if self.kind == "bool":
            return isinstance(value, bool), value
        if self.kind == "int_list":
            if not isinstance(value, list | tuple):
                return False, None
            if not self.length[0] <= len(value) <= self.length[1]:
                return False, None
            items = [self._number(v, integer=True) for v in value]
            return all(v is not None for v in items), items
        number = self._number(value, integer=self.kind == "int")
        return number is not None, number

    def _number(self, value: Any, *, integer: bool) -> int | float | None:
        """The value as int/float when it is one and in range, else None."""
        if isinstance(value, bool) or not isinstance(value, Real):
            return None
        if integer:
            if not isinstance(value, Integral):
                return None
            value = int(value)
        else:
            value = float(value)
            if math.isnan(value):
                return None
        if value < self.low or (self.open_low and value == self.low):
            return None
        if value > self.high or (self.open_high and value == self.high):
            return None
        return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def int_rule(default: Any, low: float, high: float, **kw: Any) -> Rule:
    """An integer rule with inclusive bounds."""
    return Rule("int", default, low, high, **kw)


def float_rule(default: Any, low: float, high: float = _INF, **kw: Any) -> Rule:
    """A number rule with inclusive bounds (``open_low`` / ``open_high`` to exclude them)."""
    return Rule("float", default, low, high, **kw)


def defaults_of(rules: Mapping[str, Rule]) -> dict[str, Any]:
    """A fresh dict of every rule's default."""
    return {k: copy.deepcopy(r.default) for k, r in rules.items()}


def validate(
    method: str,
    rules: Mapping[str, Rule],
    hp: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``hp`` over ``defaults`` (the rules' own defaults if not given), every value checked.

    Raises:
        HyperparameterError: ``hp`` is not a dict, names an unknown hyperparameter, or
            holds a value that breaks its rule; the message names the method, the
            parameter, the rule and the value.
    """
    if hp is None:
        hp = {}
    if not isinstance(hp, Mapping):
        raise HyperparameterError(
            f"{method} hyperparameters: must be a table of name = value, got {type(hp).__name__}"
        )
    out = copy.deepcopy(dict(defaults)) if defaults is not None else defaults_of(rules)
    for key, value in hp.items():
        if key not in rules:
            raise HyperparameterError(
                f"{method} hyperparameter {key!r}: unknown; valid names are {', '.join(rules)}"
            )
        ok, checked = rules[key].check(value)
        if not ok:
            raise HyperparameterError(
                f"{method} hyperparameter {key!r}: must be {rules[key].describe()}, got {value!r}"
            )
        out[key] = checked
    return out
