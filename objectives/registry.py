"""The method registry: every method a campaign cell can run, found through one loader.

A method is a :class:`~objectives.methods.Method` object at a module attribute (the
public interface, :mod:`objectives.methods`). :func:`load_method` imports one from a
``"module:attribute"`` target, checks it against the interface and registers it. Three
places name targets, and all three go through that one loader:

* the built-in methods: :data:`BUILTINS`, attributes of :mod:`objectives.builtins`,
  registered when this module is imported;
* entry points of the group ``wsad_hpo.methods`` (:data:`ENTRY_POINT_GROUP`) that
  installed packages declare (``[project.entry-points."wsad_hpo.methods"] MyNet =
  "mylab.nets:method"``), loaded when a campaign names them;
* a campaign's ``grid.classifiers`` entry written ``"module:attribute"`` (found on
  ``PYTHONPATH``): the method is registered under its own ``name``.

This is pytest's shape (its own plugins are imported by name through the same
``import_plugin`` as the ``pytest11`` entry points). A method that cannot be loaded, or
breaks the interface, raises :class:`~objectives.errors.MethodError`: one line naming
the method, where it came from and what is wrong. :func:`origin` says where a method
came from (provenance: distribution and version, or the source file of a module that is
not installed).

``evaluate`` looks a method up here and dispatches; ``hpo`` reads metrics, directions,
defaults and spaces from here. Importing this module loads neither torch nor
scikit-learn (nor optuna: a search space is data until ``hpo.spaces`` reads it).

Example:
    >>> get_method("HGB").metrics
    ('argos', 'bce', 'max_sic')
    >>> get_method("R-ANODE").directions["val_loss"]
    'minimize'
    >>> get_method("ANODE").metrics, get_method("ANODE").searched
    (('val_loss', 'argos', 'bce', 'max_sic'), ('val_loss',))
    >>> origin("HGB").kind
    'built-in'
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from objectives.errors import HyperparameterError, MethodError
from objectives.methods import (
    CLASSIFIER_DIRECTIONS,
    CLASSIFIER_EVALUATOR,
    DENSITY_MODE,
    FAMILIES,
    MODES,
    ORACLES,
    Method,
)

__all__ = [
    "BUILTINS",
    "DENSITY_MODE",
    "DIRECTIONS",
    "ENTRY_POINT_GROUP",
    "MODES",
    "ORACLES",
    "Method",
    "Origin",
    "discover",
    "get_method",
    "load_method",
    "method_names",
    "origin",
    "register",
]

#: The entry-point group through which installed packages offer methods.
ENTRY_POINT_GROUP = "wsad_hpo.methods"
#: The built-in methods, as ``"module:attribute"`` targets of the one loader.
BUILTINS = tuple(
    f"objectives.builtins:{attribute}"
    for attribute in (
        "HGB",
        "AdaBoost",
        "NN",
        "ANODE",
        "R_ANODE",
        "BackgroundFlow",
        "dSVDD",
        "DROCC",
        "DDD",
        "IsolationForest",
        "FlowDensity",
        "MET",
        "HT",
        "NObjects",
        "BkgDensity",
    )
)
#: Direction of every metric any method reports (a metric has one direction everywhere).
DIRECTIONS: dict[str, str] = {}
#: What a method name may hold (it becomes part of study names and file paths).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class Origin:
    """Where a registered method came from.

    kind: ``"built-in"``, ``"entry point"`` (an installed package's), ``"module"`` (a
    ``"module:attribute"`` target) or ``"registered"`` (a direct :func:`register` call).
    distribution / version: the installed distribution that holds the method's module.
    file: the module's source file (its hash is the provenance where nothing is installed).
    """

    kind: str
    target: str | None = None
    distribution: str | None = None
    version: str | None = None
    file: str | None = None

    def describe(self) -> str:
        """``entry point wsad_lightgbm:method (wsad-lightgbm 0.1.0)``, ``built-in``, ..."""
        if self.kind == "built-in":
            return "built-in"
        text = f"{self.kind} {self.target}" if self.target else self.kind
        if self.distribution:
            return f"{text} ({self.distribution} {self.version})"
        return f"{text} ({self.file})" if self.file else text

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields, the unset ones left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}


_REGISTRY: dict[str, Method] = {}
_ORIGINS: dict[str, Origin] = {}
_BY_TARGET: dict[str, str] = {}  # "module:attribute" -> registered name


def register(method: Method, origin: Origin | None = None) -> Method:
    """Add ``method``; a metric must keep one direction across all methods.

    Raises ValueError for a name already taken or a metric whose direction differs.
    """
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
    _ORIGINS[method.name] = origin or Origin("registered")
    return method


# ----------------------------------------------------------------------------- the loader
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _module_origin(kind: str, target: str, module: str, dist: Any = None) -> Origin:
    """``dist`` (an entry point's distribution), else the distribution installing
    ``module``'s top package, else only its source file."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    file = getattr(sys.modules.get(module), "__file__", None)
    if dist is not None:
        return Origin(kind, target, dist.name, dist.version, file)
    top = module.split(".")[0]
    for dist in packages_distributions().get(top, ()):
        try:
            return Origin(kind, target, dist, version(dist), file)
        except PackageNotFoundError:
            continue
    return Origin(kind, target, file=file)


def load_method(
    target: str, *, kind: str = "module", label: str | None = None, dist: Any = None
) -> Method:
    """Import the method at ``target`` (``"module:attribute"``), check it, register it.

    ``kind`` and ``label`` say where the target came from in messages and provenance,
    ``dist`` the distribution that declared it (an entry point's).
    Loading the same target twice returns the registered method. Raises MethodError.
    """
    if target in _BY_TARGET:
        return _REGISTRY[_BY_TARGET[target]]
    where = label or repr(target)
    if not isinstance(target, str) or not _TARGET_RE.match(target):
        raise MethodError(f"method {where}: not a 'module:attribute' target")
    module, _, attribute = target.partition(":")
    try:
        obj = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure of foreign code is one line
        raise MethodError(f"method {where}: cannot import {module} ({_first_line(exc)})") from exc
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise MethodError(f"method {where}: {module} has no attribute {attribute!r}")
        obj = getattr(obj, part)
    if not isinstance(obj, Method):
        raise MethodError(
            f"method {where}: {target} is a {type(obj).__name__}, not an "
            "objectives.methods.Method (see docs/methods.md)"
        )
    check_method(obj, where=where)
    if kind == "built-in":
        source = Origin(kind, target)
    else:
        source = _module_origin(kind, target, module, dist)
    name = obj.name
    if name in _REGISTRY:
        if _REGISTRY[name] is obj:  # the same object under another target (a re-export)
            _BY_TARGET[target] = name
            return obj
        raise MethodError(
            f"method {where}: its name {name!r} is taken by the {_ORIGINS[name].describe()} "
            "method; rename it"
        )
    try:
        register(obj, source)
    except ValueError as exc:
        raise MethodError(f"method {where}: {exc}") from None
    _BY_TARGET[target] = name
    return obj


def check_method(method: Method, *, where: str | None = None) -> None:
    """The interface's rules that need neither optuna nor a fit; MethodError names the first
    one broken. ``hpo.spaces`` checks the search space, ``hpo validate`` a smoke fit."""
    where = where or repr(method.name)

    def fail(what: str) -> MethodError:
        return MethodError(f"method {where}: {what}")

    if not isinstance(method.name, str) or not NAME_RE.match(method.name):
        raise fail(f"name {method.name!r} must be letters, digits, '_', '.', '-'")
    if method.family not in FAMILIES:
        raise fail(f"family must be one of {', '.join(FAMILIES)}, got {method.family!r}")
    allowed = {"classifier": MODES, "density": (DENSITY_MODE,)}.get(method.family)
    if allowed is None:  # unsupervised: a backbone, or no backbone (the baselines)
        from objectives.unsupervised.baselines import BASELINE_MODE
        from objectives.unsupervised.params import BACKBONES

        allowed = (*BACKBONES, BASELINE_MODE)
    modes = method.modes
    if not isinstance(modes, tuple) or not modes or not set(modes) <= set(allowed):
        raise fail(f"modes must be a non-empty tuple from {', '.join(allowed)}, got {modes!r}")
    if not isinstance(method.directions, Mapping) or not method.directions:
        raise fail("directions must map each metric to 'maximize' or 'minimize'")
    if method.family == "classifier" and method.evaluator == CLASSIFIER_EVALUATOR:
        if dict(method.directions) != CLASSIFIER_DIRECTIONS:
            raise fail(f"directions of a classifier are {CLASSIFIER_DIRECTIONS}")
        if method.estimator is None:
            raise fail("a classifier evaluated by the service needs an estimator factory")
    try:
        defaults = method.default_hyperparameters()
        final = method.default_hyperparameters(final=True)
        if not isinstance(defaults, dict) or not isinstance(final, dict):
            raise TypeError("defaults(final) must return a dict")
        method.validate(defaults)
        method.validate(final, final=True)
        method.validate(dict(method.quick_hp))
    except HyperparameterError as exc:
        raise fail(f"its defaults break its own rules: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - foreign code
        raise fail(f"defaults / validator failed ({_first_line(exc)})") from None
    if method.epoch_choice is not None and method.epoch_choice not in defaults:
        raise fail(f"epoch_choice {method.epoch_choice!r} is not one of its hyperparameters")
    try:
        space = method.search_space()
    except Exception as exc:  # noqa: BLE001 - a lazily built space runs foreign code
        raise fail(f"its search space could not be built ({_first_line(exc)})") from None
    for name in space:
        if name not in defaults:
            raise fail(
                f"space entry {name!r} is not one of its hyperparameters ({', '.join(defaults)})"
            )
    for name in method.defaults_outside_space:
        if name not in space:
            raise fail(f"defaults_outside_space names {name!r}, which is not searched")


@functools.cache
def _entry_points() -> dict[str, Any]:
    """Name -> entry point of every installed package's ``wsad_hpo.methods``."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load_entry_point(name: str) -> Method:
    ep = _entry_points()[name]
    dist = getattr(ep, "dist", None)
    owner = f" of {dist.name} {dist.version}" if dist is not None else ""
    label = f"{name!r} (entry point{owner})"
    method = load_method(ep.value, kind="entry point", label=label, dist=dist)
    if method.name != name:
        raise MethodError(
            f"method {name!r} (entry point{owner}): {ep.value} is named {method.name!r}; "
            "the entry point's name must be the method's name"
        )
    return method


def get_method(name: str) -> Method:
    """The method ``name``: registered, an installed entry point, or ``"module:attribute"``.

    Unknown names raise HyperparameterError listing the valid ones; a method that cannot
    be loaded raises MethodError.
    """
    if isinstance(name, str):
        if name in _REGISTRY:
            return _REGISTRY[name]
        if name in _BY_TARGET:
            return _REGISTRY[_BY_TARGET[name]]
        if name in _entry_points():
            return _load_entry_point(name)
        if ":" in name:
            return load_method(name)
    known = list(dict.fromkeys([*_REGISTRY, *_entry_points()]))
    raise HyperparameterError(
        f"unknown method {name!r}; valid methods are {', '.join(known)}, or a method of "
        "another package as 'module:attribute' (see hpo methods)"
    )


def method_names(family: str | None = None) -> tuple[str, ...]:
    """Registered method names (of one family), in registration order (built-ins first)."""
    return tuple(n for n, m in _REGISTRY.items() if family is None or m.family == family)


def discover() -> dict[str, Method | MethodError]:
    """Every method this environment offers: the built-ins, then each entry point (loaded;
    the error in its place where it cannot be), then methods registered otherwise."""
    found: dict[str, Method | MethodError] = {n: _REGISTRY[n] for n in method_names()}
    for name in _entry_points():
        try:
            found[name] = _load_entry_point(name)
        except MethodError as exc:
            found[name] = exc
    found.update({n: _REGISTRY[n] for n in method_names() if n not in found})
    return found


def origin(name: str) -> Origin:
    """Where the method ``name`` came from (loading it first if needed)."""
    return _ORIGINS[get_method(name).name]


for _target in BUILTINS:
    load_method(_target, kind="built-in")
del _target
