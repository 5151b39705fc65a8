"""LightGBM as a weakly supervised classifier of wsad-hpo: the method declaration.

``method`` is what the entry point ``wsad_hpo.methods: LightGBM`` (and the target
``"wsad_lightgbm:method"``) names. The estimator lives in :mod:`wsad_lightgbm.model`,
imported only when a trial builds one, so ``hpo validate`` and ``hpo methods`` load
neither LightGBM nor its OpenMP runtime until they fit.
"""

from objectives.hyperparameters import float_rule, int_rule
from objectives.methods import classifier_method

__all__ = ["method"]

__version__ = "0.1.0"

#: Every hyperparameter: its rule (what a value may be) and its default, which is the
#: search's and the final runs'. LightGBM's own defaults, except bagging (0.8 of the
#: events per tree) so that the members of the ensemble differ, as HGB's do.
HYPERPARAMETERS = {
    "learning_rate": float_rule(0.1, 0.0, 10.0, open_low=True),
    "n_estimators": int_rule(100, 1, 100_000),
    "num_leaves": int_rule(31, 2, 131_072),
    "min_child_samples": int_rule(20, 1, 1_000_000),
    "reg_lambda": float_rule(0.0, 0.0),
    "subsample": float_rule(0.8, 0.0, 1.0, open_low=True),
    "colsample_bytree": float_rule(1.0, 0.0, 1.0, open_low=True),
    "n_ensemble": int_rule(10, 1, 1000),
}

#: The search space, as plain data that wsad-hpo turns into Optuna distributions
#: (optuna.distributions.FloatDistribution(...) objects are accepted as well).
SPACE = {
    "learning_rate": {"type": "float", "low": 1e-3, "high": 0.5, "log": True},
    "n_estimators": {"type": "int", "low": 10, "high": 400},
    "num_leaves": {"type": "int", "low": 4, "high": 128},
    "min_child_samples": {"type": "int", "low": 5, "high": 100},
    "reg_lambda": {"type": "float", "low": 0.0, "high": 10.0},
    "subsample": {"type": "float", "low": 0.5, "high": 1.0},
}

method = classifier_method(
    "LightGBM",
    estimator="wsad_lightgbm.model:make",
    hyperparameters=HYPERPARAMETERS,
    space=SPACE,
    quick_hp={"n_estimators": 10, "n_ensemble": 1},
)
