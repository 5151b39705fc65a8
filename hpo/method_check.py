"""Check a campaign's methods from other packages before anything runs (``hpo validate``).

Loading a method (``objectives.registry.load_method``, at campaign load) already stops an
import error, a missing attribute, an object that is not a Method, defaults that break
the method's own rules, and a search space that is not Optuna distributions (or one
whose defaults lie outside it). What needs the method's own code to run is checked
here, for every method of ``grid.classifiers`` that is not built-in (the built-ins are
covered by the test suite's behaviour test):

* its functions (``evaluator``, ``ensembler``, ``estimator``) can be imported;
* a classifier's estimator, built with the method's ``quick_hp`` and fitted on a few
  hundred synthetic events, gives ``predict_proba`` (or ``epoch_predictions``) of the
  right shape, with probabilities in [0, 1].

Each problem is a :class:`~objectives.errors.MethodError`: one line naming the method.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SMOKE_EVENTS", "check_campaign_methods", "smoke_check"]

#: Synthetic events of the check fit (half of them held out), four features.
SMOKE_EVENTS = 400


def _events(n: int, seed: int = 0):
    """Two overlapping Gaussian classes (1 = data-like), with weights of 1."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.int64)
    X = rng.normal(size=(n, 4)) + 0.5 * y[:, None]
    return X, y, np.ones(n)


def _resolvable(method, where: str) -> None:
    from objectives.errors import MethodError
    from objectives.methods import resolve

    for field in ("evaluator", "ensembler", "estimator"):
        target = getattr(method, field)
        if target is None:
            continue
        try:
            resolved = resolve(target)
        except Exception as exc:  # noqa: BLE001 - foreign code: one line
            raise MethodError(
                f"method {where}: {field} {target!r} cannot be loaded ({type(exc).__name__}: {exc})"
            ) from None
        if not callable(resolved):
            raise MethodError(f"method {where}: {field} {target!r} is not callable")


def smoke_check(method) -> None:
    """Import the method's functions and, for a classifier, fit its estimator on
    :data:`SMOKE_EVENTS` synthetic events; MethodError naming what is wrong."""
    from objectives.classifiers.outputs import class1_probabilities, epoch_probabilities
    from objectives.errors import HyperparameterError, MethodError

    where = repr(method.name)
    _resolvable(method, where)
    if method.estimator is None:
        return
    X, y, w = _events(SMOKE_EVENTS)
    half = SMOKE_EVENTS // 2
    train, held = slice(0, half), slice(half, None)
    try:
        hp = method.validate(dict(method.quick_hp))
        clf = method.make_estimator(hp, seed=0, n_jobs=1, device="cpu")
        clf.fit(X[train], y[train], sample_weight=w[train], validation=(X[held], y[held], w[held]))
        if method.epoch_choice is None:
            p = class1_probabilities(method.name, clf, X[held])
        else:
            p = epoch_probabilities(method.name, clf, X[held])
    except HyperparameterError:
        raise
    except Exception as exc:  # noqa: BLE001 - foreign code: one line
        text = str(exc).strip().splitlines()
        raise MethodError(
            f"method {where}: the check fit on {SMOKE_EVENTS} synthetic events failed "
            f"({type(exc).__name__}: {text[0] if text else ''})"
        ) from None
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise MethodError(
            f"method {where}: predictions on synthetic events must be probabilities in "
            f"[0, 1], got values in [{np.nanmin(p):.3g}, {np.nanmax(p):.3g}]"
        )


def check_campaign_methods(campaign) -> list[str]:
    """:func:`smoke_check` every method of the campaign from another package; returns the
    names checked (MethodError at the first problem)."""
    from objectives.registry import get_method, origin

    checked = []
    for name in campaign.grid.classifiers:
        if origin(name).kind == "built-in":
            continue
        smoke_check(get_method(name))
        checked.append(name)
    return checked
