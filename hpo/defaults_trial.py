"""The method's defaults as the first trial of every study (``search.enqueue_defaults``).

A random search of tens of trials rarely lands on settings as good as a method's
defaults (HGB's 200 iterations of 31-leaf trees of unlimited depth), and the
reference's spaces do not even hold them (HGB ``max_iter`` in [2, 199], ``max_depth``
in [2, 14] against its default None). Enqueued as the first trial, the defaults make a
search never end worse than its starting point by its own objective.

Optuna fixes an enqueued value through the trial's ``fixed_params``: a value outside a
parameter's distribution is used with a warning and stored against that distribution,
and ``None`` cannot be stored at all. So the defaults trial fixes only the defaults
that lie *in* the space; the objective suggests only those (:func:`trial_space`) and
leaves the others out of ``trial.params``, where :func:`hpo.spaces.hyperparameters`
fills in the method's defaults. Export, final runs and TPE (which skips a trial
missing a parameter when it models that parameter) read such a trial as it is.

Exactly one defaults trial per study: :func:`storage.leases.enqueue_once` enqueues it
only into a study without one, and racing enqueuers (workers creating a missing study
at once) keep the lowest trial id; a re-queued copy keeps the label, and a worker
never runs a second live one (``workers.worker``).
"""

from __future__ import annotations

from typing import Any

import optuna

from hpo.spaces import distribution, hyperparameters, inside

__all__ = ["DEFAULTS_LABEL", "defaults_in_space", "enqueue_defaults", "in_space", "trial_space"]

#: ``enqueued_as`` label of a study's defaults trial
DEFAULTS_LABEL = "defaults"
#: study user attr: the defaults trial was enqueued (a later ``hpo create`` reads no trials)
ENQUEUED_ATTR = "defaults_enqueued"


def in_space(entry: Any, value: Any) -> bool:
    """Whether ``value`` is one the space entry (a dict or a distribution) can suggest."""
    return inside(distribution("defaults", entry), value)


def defaults_in_space(classifier: str, space: dict, fixed: dict | None) -> dict[str, Any]:
    """The method's search defaults (with the campaign's fixed values) that ``space`` holds."""
    defaults = hyperparameters(classifier, {}, fixed)
    return {
        name: defaults[name]
        for name, entry in space.items()
        if name in defaults and in_space(entry, defaults[name])
    }


def is_defaults_trial(trial: optuna.Trial | optuna.trial.FrozenTrial) -> bool:
    from storage.leases import ENQUEUED_AS

    return trial.user_attrs.get(ENQUEUED_AS) == DEFAULTS_LABEL


def trial_space(trial: optuna.Trial, classifier: str, space: dict, fixed: dict | None) -> dict:
    """What the objective suggests: ``space``, or for the defaults trial the part of it
    that holds the defaults (the rest keep the method's defaults)."""
    if not is_defaults_trial(trial):
        return space
    keep = defaults_in_space(classifier, space, fixed)
    return {name: entry for name, entry in space.items() if name in keep}


def enqueue_defaults(study: optuna.Study, classifier: str, space: dict, fixed: dict | None) -> bool:
    """Enqueue the defaults trial unless the study has one; returns whether it enqueued.

    Idempotent: a study with a defaults trial in any state (or marked as having had one
    enqueued) is left alone.
    """
    from storage.leases import enqueue_once

    if study.user_attrs.get(ENQUEUED_ATTR):
        return False
    params = defaults_in_space(classifier, space, fixed)
    enqueued = enqueue_once(study, DEFAULTS_LABEL, params)
    study.set_user_attr(ENQUEUED_ATTR, True)
    return enqueued
