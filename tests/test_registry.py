"""One behaviour test over every registered method (adding a method adds only its entry).

Each method is fitted on a tiny synthetic cell with its ``quick_hp``: the metrics it
declares are present (label-free ones finite, the oracle where it has a score), a seed
gives the same result twice, and bad hyperparameters get the one message shape.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from objectives.cells import Cell, DataSpec
from objectives.errors import HyperparameterError
from objectives.evaluate import evaluate
from objectives.registry import DIRECTIONS, get_method, method_names
from objectives.splits import Split
from objectives.synthetic import SyntheticSpec, write_synthetic

SIGNAL = 400


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A 2 % synthetic set and, for methods that need it, a tiny background flow."""
    from objectives.templates import background_flow

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("registry")
    spec = DataSpec(*write_synthetic(SyntheticSpec(scale=0.02, seed=4), folder))
    quick = get_method("BackgroundFlow").quick_hp
    flow = background_flow(spec, SIGNAL, seed=0, hp=quick, cache_dir=folder / "flows")
    return dataclasses.replace(spec, background_model=flow.model_file)


@pytest.mark.parametrize("name", method_names())
def test_every_method_fits_reports_its_metrics_and_is_deterministic(name, data):
    method = get_method(name)
    cell = Cell(name, method.modes[0], SIGNAL, False, data)
    first = evaluate(method.quick_hp, cell, "half", run=1)
    again = evaluate(method.quick_hp, cell, Split.half(1))
    assert tuple(first.metrics) == method.metrics
    assert all(DIRECTIONS[m] == d for m, d in method.directions.items())
    for metric in method.label_free:
        assert math.isfinite(first.metrics[metric]), (name, metric, first.metrics)
    if method.has_score:
        assert first.metrics["max_sic"] > 0 and 0 <= first.truth["max_sic"]["auc"] <= 1
        scores = first.scores["max_sic"]
        assert scores.shape == first.y_test.shape and np.all(np.isfinite(scores))
        assert first.curves["max_sic"].max_sic == pytest.approx(first.truth["max_sic"]["max_sic"])
    else:
        assert first.scores == {} and first.y_test is None
    assert first.metrics == again.metrics
    for sel, scores in first.scores.items():
        np.testing.assert_array_equal(scores, again.scores[sel])
    assert first.info["split"] == Split.half(1).to_dict() and first.info["classifier"] == name


@pytest.mark.parametrize("name", method_names())
def test_every_method_rejects_bad_hyperparameters_with_one_message_shape(name):
    method = get_method(name)
    with pytest.raises(HyperparameterError, match=rf"^{name} hyperparameter 'bogus': unknown; "):
        method.validate({"bogus": 1})
    rules = [k for k, v in method.default_hyperparameters().items() if isinstance(v, int)]
    with pytest.raises(HyperparameterError, match=rf"^{name} hyperparameter '{rules[0]}': must be"):
        method.validate({rules[0]: -(10**9)})
    with pytest.raises(HyperparameterError, match=rf"^{name} hyperparameters: must be a table"):
        method.validate([1, 2])  # type: ignore[arg-type]
    # the search defaults and the final-run defaults both pass the method's own rules
    for final in (False, True):
        defaults = method.default_hyperparameters(final=final)
        assert method.validate(defaults, final=final) == defaults
    assert method.validate(method.quick_hp)


def test_unknown_methods_and_modes_name_the_valid_ones(data):
    with pytest.raises(HyperparameterError, match="unknown method 'XGB'; valid methods are HGB"):
        get_method("XGB")
    with pytest.raises(ValueError, match="ANODE cells have mode 'density'"):
        Cell("ANODE", "IAD", 0, False, data)
    with pytest.raises(ValueError, match="HGB cells have mode 'IAD' or 'CWoLa' or 'CATHODE'"):
        Cell("HGB", "density", 0, False, data)
