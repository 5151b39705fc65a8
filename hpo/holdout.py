"""Which events each stage scores on: the search's repetitions and the final runs.

A search picks, for every label-free metric, the trial with the best value over its
repetitions: the maximum over many noisy draws. Scored again on the same events, a
picked trial keeps that luck (the *winner's curse*), while a default-hyperparameter
run does not; ``hpo select`` must compare values that no choice was made on.
``final.holdout`` says where a final half-statistics run computes its label-free values:

* ``"reserved"`` (the default): a fraction ``final.reserve`` of each class is set aside
  once; the search's repetitions never hold it out (``Split.half(j, reserve=...)``) and
  the final runs score only on it (``Split.reserved``), after training on half of the
  events and (the NN) ranking epochs on the other unreserved ones;
* ``"fresh"``: a new half split per run (``Split.fresh``), seeded apart from every
  repetition; its held-out half still overlaps each repetition's by about half, and the
  NN ranks its epochs on the events it is scored on;
* ``"search"``: the paper's protocol: final run ``j`` uses repetition ``j``'s split, so
  a searched source's half-statistics value is the very value it was picked on.

Every source of a cell (and every cell of a selection group) uses the same split per
run, so the comparison stays paired. Full-statistics runs train on every event; their
label-free values are computed on that training set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hpo.config import Campaign
from objectives.metrics import band
from objectives.registry import DIRECTIONS
from objectives.splits import Split

__all__ = [
    "RESERVE_ATTR",
    "final_split",
    "holdout_text",
    "label_free_events",
    "pick_fallback_warning",
    "picked_value_bias",
    "reserve_mismatch",
    "search_reserve",
    "search_split",
]


#: trial user attr: the share of each class the trial's repetitions never held out
RESERVE_ATTR = "reserve"


def reserve_mismatch(campaign: Campaign, trials) -> str | None:
    """Why ``trials`` do not fit the campaign's reserve (set after the search), or None.

    The final runs of ``final.holdout = "reserved"`` score the reserved events, so every
    trial must have kept exactly those out. Trials from before the reserve existed kept
    nothing out (0).
    """
    want = search_reserve(campaign)
    seen = {float(t.user_attrs.get(RESERVE_ATTR, 0.0)) for t in trials}
    if not want or seen <= {want}:  # fresh / search holdouts score on any events alike
        return None
    fix = (
        "set final.holdout = 'fresh' (or 'search'), or search again in a new campaign"
        if seen == {0.0}
        else "restore the reserve the search used, or search again in a new campaign"
    )
    return (
        f"its trials kept {', '.join(f'{r:g}' for r in sorted(seen))} of each class out of "
        f"their held-out halves, but final.holdout = {campaign.final.holdout!r} / final.reserve "
        f"now reserve {want:g}: the final runs would score events the search chose on ({fix})"
    )


def search_reserve(campaign: Campaign) -> float:
    """The fraction of each class no repetition holds out (0 but with ``holdout = "reserved"``)."""
    return campaign.final.reserve if campaign.final.holdout == "reserved" else 0.0


def search_split(campaign: Campaign, repetition: int) -> Split:
    """The split of a trial's repetition ``repetition`` (the same in every trial)."""
    return Split.half(repetition, reserve=search_reserve(campaign))


def final_split(campaign: Campaign, statistics: str, run: int) -> Split:
    """The split of final run ``run`` under ``statistics`` ("half" or "full")."""
    if statistics == "full":
        return Split.full(run)
    if statistics != "half":
        raise ValueError(f"statistics must be 'half' or 'full', got {statistics!r}")
    holdout = campaign.final.holdout
    if holdout == "search":
        return search_split(campaign, run)
    if holdout == "fresh":
        return Split.fresh(run)
    return Split.reserved(run, campaign.final.reserve)


def label_free_events(campaign: Campaign, statistics: str) -> str:
    """What the label-free values of a final run are computed on, in words."""
    if statistics == "full":
        return "training set"
    return {
        "reserved": f"reserved events ({campaign.final.reserve:g} of each class, "
        "never held out by the search)",
        "fresh": "held-out half of a fresh split",
        "search": "held-out half of the search's repetition (the paper's: biased for "
        "searched sources)",
    }[campaign.final.holdout]


def holdout_text(campaign: Campaign) -> str:
    """One line for ``hpo final`` / ``hpo select``: how picks and values were made."""
    f = campaign.final
    pick = (
        "by the mean over repetitions (hp/<cell>/<metric>/best.json)"
        if f.pick == "mean"
        else "per repetition (run j: hp/<cell>/<metric>/run<j>.json, the paper's)"
    )
    return (
        f"final runs: hyperparameters picked {pick}; half-statistics label-free values "
        f"on the {label_free_events(campaign, 'half')} (final.holdout = {f.holdout!r})"
    )


def pick_fallback_warning(campaign: Campaign) -> str | None:
    """The warning for runs without a repetition of their own under the per-repetition pick."""
    f, reps = campaign.final, campaign.search.repetitions
    if f.pick != "per_repetition" or reps >= f.n_runs:
        return None
    runs = f"run {reps} uses" if reps == f.n_runs - 1 else f"runs {reps}-{f.n_runs - 1} use"
    return (
        f"warning: final.pick = 'per_repetition' but search.repetitions = {reps} < "
        f"final.n_runs = {f.n_runs}: {runs} the pick by the mean over repetitions (best.json)"
    )


def picked_value_bias(runs: Sequence[Mapping], metric: str) -> dict | None:
    """How much better ``metric`` looked at search than in these final runs.

    ``runs`` are final-run records; ``picked.values_at_search`` holds the values of the
    search trial each run trained (a searched source: the value its trial won on; the
    default source: the enqueued defaults trial's, picked by nothing, so its shift is the
    reference). ``optimism`` is the value at search minus the final run's, signed so
    that a positive number means the search value flattered (for a minimised metric, the
    final value minus the search value). None without values to compare.
    """
    sign = 1.0 if DIRECTIONS[metric] == "maximize" else -1.0
    pairs = [
        (at_search, r["metrics"][metric])
        for r in runs
        if (at_search := r.get("picked", {}).get("values_at_search", {}).get(metric)) is not None
        and r["metrics"].get(metric) is not None
    ]
    if not pairs:
        return None
    return {
        "at_search": band([a for a, _ in pairs]),
        "final": band([b for _, b in pairs]),
        "optimism": band([sign * (a - b) for a, b in pairs]),
    }
