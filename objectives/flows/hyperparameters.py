"""Hyperparameters of the flow models as rules (:mod:`objectives.hyperparameters`).

The background flow (CATHODE's conditional MAF, published setup), the spline flow
of ANODE and R-ANODE (R-ANODE slides), and R-ANODE's signal fraction ``w``
(``None``: learned). Every check goes through the one validator, so the messages
have the shape ``R-ANODE hyperparameter 'lr': must be a number in [1e-07, 1], got 0``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from objectives.errors import HyperparameterError
from objectives.hyperparameters import Rule, defaults_of, float_rule, int_rule, validate

__all__ = [
    "ANODE_RULES",
    "BACKGROUND_DEFAULTS",
    "BACKGROUND_RULES",
    "RANODE_RULES",
    "SEARCH_EPOCHS",
    "flow_defaults",
    "validate_flow",
]

#: Epochs of the flows during a search (final runs use the published numbers).
SEARCH_EPOCHS = 30

_COMMON: dict[str, Rule] = {
    "hidden": int_rule(128, 2, 4096),
    "lr": float_rule(1e-4, 1e-7, 1.0),
    "batch_size": int_rule(256, 2, 1_000_000),
    "epochs": int_rule(100, 1, 10_000),
    "weight_decay": float_rule(1e-6, 0.0, 1.0),
    "n_keep": int_rule(10, 1, 1000),
    "val_fraction": float_rule(0.2, 0.01, 0.9),
}

#: CATHODE background model (published: 15 MADE blocks of 128, Adam 1e-4, batch 256,
#: 100 epochs, the 10 best epochs kept); ``val_fraction`` of the sidebands validates.
BACKGROUND_RULES: dict[str, Rule] = {"n_blocks": int_rule(15, 1, 64), **_COMMON}

#: ANODE's SR data flow: the R-ANODE slides' spline flow (RQS, 6 transforms,
#: 2 blocks x 64, dropout 0.2, 8 bins, AdamW 3e-4, 300 epochs).
ANODE_RULES: dict[str, Rule] = {
    "n_transforms": int_rule(6, 1, 64),
    "n_blocks": int_rule(2, 1, 64),
    **_COMMON,
    "hidden": int_rule(64, 2, 4096),
    "dropout": float_rule(0.2, 0.0, 0.9),
    "n_bins": int_rule(8, 2, 64),
    "tail_bound": float_rule(8.0, 0.5, 100.0),
    "lr": float_rule(3e-4, 1e-7, 1.0),
    "epochs": int_rule(300, 1, 10_000),
    "weight_decay": float_rule(1e-2, 0.0, 1.0),
}

#: R-ANODE: the same spline flow plus the signal fraction ``w`` (null: learned).
RANODE_RULES: dict[str, Rule] = {
    **ANODE_RULES,
    "w": float_rule(None, 0.0, 1.0, open_low=True, open_high=True, nullable=True),
}

BACKGROUND_DEFAULTS: dict[str, Any] = defaults_of(BACKGROUND_RULES)

_RULES = {"BackgroundFlow": BACKGROUND_RULES, "ANODE": ANODE_RULES, "R-ANODE": RANODE_RULES}


def flow_defaults(method: str, *, final: bool = False) -> dict[str, Any]:
    """A fresh dict of defaults; during a search at most ``SEARCH_EPOCHS`` epochs."""
    hp = defaults_of(_RULES[method])
    if not final:
        hp["epochs"] = min(hp["epochs"], SEARCH_EPOCHS)
        hp["n_keep"] = min(hp["n_keep"], hp["epochs"])
    return hp


def validate_flow(
    method: str, hp: Mapping[str, Any] | None, *, final: bool = False, what: str | None = None
) -> dict[str, Any]:
    """``hp`` over the defaults of ``method`` ("BackgroundFlow", "ANODE", "R-ANODE"), checked.

    ``n_keep`` follows ``epochs`` down when only ``epochs`` is given; ``n_keep`` above
    ``epochs`` is an error. ``what`` names the model in messages (default: ``method``).
    """
    label = what or method
    if hp is not None and not isinstance(hp, Mapping):
        return validate(label, _RULES[method], hp)  # raises the common "must be a table"
    hp = dict(hp or {})
    defaults = flow_defaults(method, final=final)
    if "n_keep" not in hp and isinstance(hp.get("epochs"), int):
        hp["n_keep"] = min(defaults["n_keep"], hp["epochs"])  # fewer epochs than kept
    out = validate(label, _RULES[method], hp, defaults)
    if out["n_keep"] > out["epochs"]:
        raise HyperparameterError(
            f"{label} hyperparameter 'n_keep': must be <= epochs ({out['epochs']}), "
            f"got {out['n_keep']}"
        )
    return out
