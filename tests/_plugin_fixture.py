"""Helpers for the method-interface tests: small method modules and tiny campaigns.

:func:`method_module` writes a module declaring a classifier method (a least-squares
linear model, so it fits in milliseconds) with the parts a test wants broken;
:func:`campaign` writes a tiny synthetic IAD campaign naming the given methods;
:func:`install_example` installs ``examples/plugins`` (the LightGBM package) into a
folder of its own, as an installed distribution whose entry point a process finds once
the folder is on its ``PYTHONPATH`` (nothing is installed into the project's venv).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "plugins"

_MODULE = '''\
import numpy as np

from objectives.hyperparameters import float_rule, int_rule
from objectives.methods import classifier_method


class Linear:
    """A least-squares line through the labels, squashed into (0, 1)."""

    def __init__(self, hp, seed):
        self.hp, self.seed = hp, seed

    def fit(self, X, y, sample_weight=None, validation=None):
        A = np.c_[X, np.ones(len(X))]
        self.w_ = np.linalg.lstsq(A, y - 0.5, rcond=None)[0] * self.hp["scale"]
        return self

    def predict_proba(self, X):
        p = 1.0 / (1.0 + np.exp(-np.c_[X, np.ones(len(X))] @ self.w_))
        return {output}


def make(hp, *, seed, n_jobs=1, device="cpu"):
    return Linear(hp, seed)


method = classifier_method(
    "{name}",
    estimator={estimator},
    hyperparameters={{"scale": float_rule({default}, 0.0, 100.0), "unused": int_rule(1, 0, 9)}},
    space={space_table},
)
'''


def method_module(
    folder: Path,
    module: str,
    *,
    name: str | None = None,
    output: str = "np.c_[1.0 - p, p]",
    default: float = 4.0,
    space: str = '{"type": "float", "low": 0.5, "high": 8.0, "log": True}',
    estimator: str | None = None,
    space_table: str | None = None,
    text: str | None = None,
) -> str:
    """Write ``folder/module.py`` declaring ``method``; return its target ``module:method``.

    ``space`` is the search range of its one searched hyperparameter ``scale``;
    ``space_table`` replaces the whole space expression; ``text`` the whole module.
    """
    folder.mkdir(parents=True, exist_ok=True)
    body = text or _MODULE.format(
        name=name or module,
        output=output,
        default=default,
        space_table=space_table or f'{{"scale": {space}}}',
        estimator=repr(estimator or f"{module}:make"),
    )
    (folder / f"{module}.py").write_text(body)
    return f"{module}:method"


def campaign(folder: Path, methods: list[str], *, extra: str = "", **fields) -> Path:
    """A tiny synthetic IAD campaign naming ``methods``; ``fields`` override the defaults."""
    values = {
        "n_trials": 2,
        "repetitions": 1,
        "n_runs": 1,
        "scale": 0.03,
        "storage": "journal:optuna.journal",
        "statistics": ["half", "full"],
    }
    values.update(fields)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "campaign.toml"
    path.write_text(
        f"""\
[campaign]
name = "{folder.name}"
run_dir = "run"
storage = "{values["storage"]}"
seed = 0

[data]
source = "synthetic"
scale = {values["scale"]}
seed = 0

[grid]
classifiers = {json.dumps(methods)}
modes = ["IAD"]
signal = [1000]

[search]
n_trials = {values["n_trials"]}
repetitions = {values["repetitions"]}
n_startup_trials = 1
metrics = ["argos", "bce", "max_sic"]
objective = "argos"

[final]
n_runs = {values["n_runs"]}
statistics = {json.dumps(values["statistics"])}
defaults = false
{extra}"""
    )
    return path


def install_example(target: Path) -> Path:
    """``pip install --target`` the example package (copied first: the build leaves files
    beside the sources); returns the folder to put on ``PYTHONPATH``."""
    source = target.parent / "wsad-lightgbm-src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "*.toml"))
    shutil.copy(EXAMPLE / "pyproject.toml", source / "pyproject.toml")
    argv = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*argv, "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return target
