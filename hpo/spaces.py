"""Search spaces: each method's own (declared with the method), as Optuna distributions.

A method declares its space (``Method.space``, :mod:`objectives.methods`) as plain data
-- ``{"type": "int" | "float" | "categorical", "low", "high", "step", "log",
"choices"}`` -- or as Optuna distributions, or as a callable building either on first
use; the built-ins' live in :mod:`objectives.builtins`. This module is the one place
that turns them into :class:`optuna.distributions.BaseDistribution` objects and checks
them: an entry that is neither, or a search default outside its range (unless the
method says why in ``defaults_outside_space``), is a MethodError naming the method.

A campaign may override entries (``[search.space.HGB]``, plain data) and fix
hyperparameters that are not searched (``[search.fixed.HGB]``, e.g. the ensemble size).
What differs between the search and the final runs (the NN's 20 vs 100 epochs, the
flows' 30 vs published epochs) is the method's own default.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "SEARCH_SPACES",
    "as_data",
    "check_space",
    "describe",
    "distribution",
    "hyperparameters",
    "inside",
    "method_space",
    "space_for",
    "suggest",
    "validate_fixed",
    "validate_space_overrides",
]


class _DeclaredSpaces(Mapping):
    """Method name -> its declared search space (a read-only view of the registry)."""

    def __getitem__(self, name: str) -> dict[str, Any]:
        from objectives.errors import HyperparameterError
        from objectives.registry import get_method

        try:
            return get_method(name).search_space()
        except HyperparameterError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        from objectives.registry import method_names

        return iter(method_names())

    def __len__(self) -> int:
        from objectives.registry import method_names

        return len(method_names())


#: Every registered method's declared space, by name (kept for callers of the old table).
SEARCH_SPACES: Mapping[str, dict[str, Any]] = _DeclaredSpaces()


_KEYS = {
    "int": {"type", "low", "high", "step", "log"},
    "float": {"type", "low", "high", "step", "log"},
    "categorical": {"type", "choices"},
}


def _check_entry(name: str, entry: Any) -> None:
    if not isinstance(entry, dict) or entry.get("type") not in _KEYS:
        raise ValueError(f"{name}: must be a table with type = 'int', 'float' or 'categorical'")
    kind = entry["type"]
    extra = set(entry) - _KEYS[kind]
    if extra:
        raise ValueError(f"{name}: unknown key {sorted(extra)[0]!r} for type {kind!r}")
    if kind == "categorical":
        choices = entry.get("choices")
        if not isinstance(choices, list | tuple) or not choices:
            raise ValueError(f"{name}: choices must be a non-empty list")
        return
    low, high = entry.get("low"), entry.get("high")
    num = (int,) if kind == "int" else (int, float)
    if not (isinstance(low, num) and isinstance(high, num)) or isinstance(low, bool):
        raise ValueError(f"{name}: low and high must be {kind} numbers")
    if low > high:
        raise ValueError(f"{name}: low must be <= high, got {low} > {high}")
    if entry.get("log") and low <= 0:
        raise ValueError(f"{name}: a log scale needs low > 0, got {low}")


def validate_space_overrides(classifier: str, overrides: dict[str, Any]) -> None:
    """Check ``[search.space.<CLF>]`` entries; raise ValueError naming the entry."""
    from objectives.registry import get_method

    known = set(get_method(classifier).default_hyperparameters())
    for name, entry in overrides.items():
        if name not in known:
            raise ValueError(
                f"{name}: not a {classifier} hyperparameter; valid: " + ", ".join(sorted(known))
            )
        _check_entry(name, entry)


def validate_fixed(classifier: str, fixed: dict[str, Any]) -> None:
    """Check ``[search.fixed.<CLF>]`` against the method's own parameter rules."""
    from objectives.errors import HyperparameterError
    from objectives.registry import get_method

    try:
        get_method(classifier).validate(fixed)
    except HyperparameterError as exc:
        raise ValueError(str(exc)) from None


def distribution(name: str, entry: Any):
    """``entry`` as an Optuna distribution: a plain-data table converted, a distribution
    as given; ValueError naming ``name`` for anything else."""
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(entry, BaseDistribution):
        return entry
    if not isinstance(entry, dict):
        raise ValueError(
            f"{name}: not an Optuna distribution or a table with type = 'int', 'float' or "
            f"'categorical', got {entry!r}"
        )
    _check_entry(name, entry)
    if entry["type"] == "categorical":
        return CategoricalDistribution(list(entry["choices"]))
    log = bool(entry.get("log", False))
    if entry["type"] == "int":
        return IntDistribution(entry["low"], entry["high"], log=log, step=entry.get("step", 1))
    return FloatDistribution(entry["low"], entry["high"], log=log, step=entry.get("step"))


def inside(dist, value: Any) -> bool:
    """Whether ``value`` is a point of ``dist`` (bounds, integer steps, choices)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return any(type(value) is type(c) and value == c for c in dist.choices)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(dist, IntDistribution) and float(value) != int(value):
        return False
    if not dist.low <= value <= dist.high:
        return False
    step = getattr(dist, "step", None)
    if step is None:
        return True
    k = (value - dist.low) / step
    return math.isclose(k, round(k), abs_tol=1e-8)


def method_space(method) -> dict[str, Any]:
    """``method``'s declared space as Optuna distributions (MethodError for a bad entry)."""
    from objectives.errors import MethodError

    out = {}
    for name, entry in method.search_space().items():
        try:
            out[name] = distribution(name, entry)
        except ValueError as exc:
            raise MethodError(f"method {method.name!r}: space entry {exc}") from None
    return out


def check_space(method) -> dict[str, Any]:
    """The method's space as distributions, each search default inside its range unless
    ``defaults_outside_space`` says why; MethodError naming the method otherwise."""
    from objectives.errors import MethodError

    space = method_space(method)
    defaults = method.default_hyperparameters()
    for name, dist in space.items():
        if name in method.defaults_outside_space or inside(dist, defaults[name]):
            continue
        raise MethodError(
            f"method {method.name!r}: the default {name} = {defaults[name]!r} lies outside "
            f"its search space {describe(dist)} (widen the space, change the default, or "
            "say why in defaults_outside_space)"
        )
    return space


def describe(dist) -> str:
    """``float [0.0001, 0.794] log``, ``int [2, 199]``, ``one of 64, 128`` ..."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return "one of " + ", ".join(map(repr, dist.choices))
    kind = "int" if isinstance(dist, IntDistribution) else "float"
    text = f"{kind} [{dist.low:g}, {dist.high:g}]"
    if dist.log:
        text += " log"
    step = getattr(dist, "step", None)
    if step is not None and not (kind == "int" and step == 1):
        text += f" step {step:g}"
    return text


def as_data(dist) -> dict[str, Any]:
    """A distribution as the plain-data table it would be declared with (JSON-friendly)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return {"type": "categorical", "choices": list(dist.choices)}
    kind = "int" if isinstance(dist, IntDistribution) else "float"
    out = {"type": kind, "low": dist.low, "high": dist.high, "log": dist.log}
    if dist.step is not None and not (kind == "int" and dist.step == 1):
        out["step"] = dist.step
    return out


def space_for(
    classifier: str,
    overrides: dict[str, Any] | None = None,
    fixed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The search space of a method as Optuna distributions, the campaign's overrides
    applied. A hyperparameter the campaign fixes (``[search.fixed.<CLF>]``) is not searched.
    """
    from objectives.registry import get_method

    space = method_space(get_method(classifier))
    space.update({k: distribution(k, v) for k, v in (overrides or {}).items()})
    for name in fixed or {}:
        space.pop(name, None)
    return space


def suggest(trial: Any, space: Mapping[str, Any]) -> dict[str, Any]:
    """Draw one hyperparameter set from ``space`` (distributions or plain-data tables)
    through an Optuna trial's public ``suggest_*`` calls."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    params: dict[str, Any] = {}
    for name, entry in space.items():
        d = distribution(name, entry)
        if isinstance(d, CategoricalDistribution):
            params[name] = trial.suggest_categorical(name, list(d.choices))
        elif isinstance(d, IntDistribution):
            params[name] = trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
        else:
            params[name] = trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
    return params


def hyperparameters(
    classifier: str,
    params: dict[str, Any],
    fixed: dict[str, Any] | None = None,
    *,
    final: bool = False,
) -> dict[str, Any]:
    """The full, checked hyperparameter dict a method trains with.

    The method's defaults for the search (or the final runs, with ``final``), then
    the campaign's fixed values, then the searched ``params``, through the method's
    validator (HyperparameterError for a value outside its rules).
    """
    from objectives.registry import get_method

    return get_method(classifier).validate({**(fixed or {}), **params}, final=final)
