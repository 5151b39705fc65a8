"""Hyperparameters of the flow models, as data, with one validator and one message shape."""

from __future__ import annotations

from collections.abc import Mapping

from objectives.errors import HyperparameterError

__all__ = ["ANODE_DEFAULTS", "BACKGROUND_DEFAULTS", "RANODE_DEFAULTS", "validate"]

#: CATHODE background model (published setup); ``val_fraction`` of the sidebands validates.
BACKGROUND_DEFAULTS: dict = {
    "n_blocks": 15,
    "hidden": 128,
    "lr": 1e-4,
    "batch_size": 256,
    "epochs": 100,
    "weight_decay": 1e-6,
    "n_keep": 10,
    "val_fraction": 0.2,
}

#: R-ANODE signal flow (slides: RQS, 6 transforms, 2 blocks x 64, AdamW 3e-4, 300 epochs).
RANODE_DEFAULTS: dict = {
    "n_transforms": 6,
    "n_blocks": 2,
    "hidden": 64,
    "dropout": 0.2,
    "n_bins": 8,
    "tail_bound": 8.0,
    "lr": 3e-4,
    "batch_size": 256,
    "epochs": 300,
    "weight_decay": 1e-2,
    "n_keep": 10,
    "val_fraction": 0.2,
}

#: ANODE's SR data flow: the same spline model as R-ANODE (the slides' upgraded ANODE).
ANODE_DEFAULTS: dict = dict(RANODE_DEFAULTS)

# name -> (type, low, high), bounds inclusive
_RULES: dict[str, tuple[type, float, float]] = {
    "n_blocks": (int, 1, 64),
    "n_transforms": (int, 1, 64),
    "hidden": (int, 2, 4096),
    "dropout": (float, 0.0, 0.9),
    "n_bins": (int, 2, 64),
    "tail_bound": (float, 0.5, 100.0),
    "lr": (float, 1e-7, 1.0),
    "batch_size": (int, 2, 1_000_000),
    "epochs": (int, 1, 10_000),
    "weight_decay": (float, 0.0, 1.0),
    "n_keep": (int, 1, 1000),
    "val_fraction": (float, 0.01, 0.9),
}


def validate(hp: Mapping | None, defaults: Mapping, what: str) -> dict:
    """Defaults updated by ``hp``; unknown or out-of-range values raise HyperparameterError."""
    out = dict(defaults)
    for name, value in (hp or {}).items():
        if name not in defaults:
            raise HyperparameterError(
                f"{what} hyperparameter {name!r}: unknown, expected one of {', '.join(defaults)}"
            )
        kind, lo, hi = _RULES[name]
        ok_type = (
            isinstance(value, int) and not isinstance(value, bool)
            if kind is int
            else isinstance(value, int | float) and not isinstance(value, bool)
        )
        if not ok_type or not lo <= value <= hi:
            noun = "an integer" if kind is int else "a number"
            raise HyperparameterError(
                f"{what} hyperparameter {name!r}: must be {noun} in [{lo:g}, {hi:g}], got {value!r}"
            )
        out[name] = kind(value)
    if out["n_keep"] > out["epochs"]:
        raise HyperparameterError(
            f"{what} hyperparameter 'n_keep': must be <= epochs ({out['epochs']}), "
            f"got {out['n_keep']}"
        )
    return out
