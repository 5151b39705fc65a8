"""One behaviour test over every registered method (adding a method adds only its entry).

Each method is fitted on a tiny synthetic cell of its family (``CELLS``: one factory per
family, never per method) with its ``quick_hp``: the metrics it declares are present
(label-free ones finite, the oracles where it has a score), a seed gives the same result
twice, and bad hyperparameters get the one message shape.
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
from objectives.registry import DIRECTIONS, ORACLES, get_method, method_names
from objectives.splits import Split
from objectives.synthetic import SyntheticSpec, write_synthetic

SIGNAL = 400


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A 2 % synthetic LHCO set and, for methods that need it, a tiny background flow."""
    from objectives.templates import background_flow

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("registry")
    spec = DataSpec(*write_synthetic(SyntheticSpec(scale=0.02, seed=4), folder))
    quick = get_method("BackgroundFlow").quick_hp
    flow = background_flow(spec, SIGNAL, seed=0, hp=quick, cache_dir=folder / "flows")
    return dataclasses.replace(spec, background_model=flow.model_file)


@pytest.fixture(scope="module")
def dm_data(tmp_path_factory):
    """A tiny synthetic DarkMachines set (3000 background, 300 events per signal)."""
    from objectives.darkmachines import DMSyntheticSpec, write_synthetic_darkmachines
    from objectives.darkmachines.cells import DMDataSpec

    paths = write_synthetic_darkmachines(
        DMSyntheticSpec(n_background=3000, n_signal=300, seed=4), tmp_path_factory.mktemp("dm")
    )
    signals = tuple((name, path) for name, path in paths.items() if name != "background")
    return DMDataSpec(paths["background"], signals, synthetic=True)


def _lhco_cell(name, request):
    return Cell(name, get_method(name).modes[0], SIGNAL, False, request.getfixturevalue("data"))


def _dm_cell(name, request):
    from objectives.darkmachines.cells import DMCell

    return DMCell(name, get_method(name).modes[0], request.getfixturevalue("dm_data"))


#: family -> (method name, pytest request) -> a tiny cell of that family
CELLS = {"classifier": _lhco_cell, "density": _lhco_cell, "unsupervised": _dm_cell}


def test_every_family_has_a_test_cell():
    assert {get_method(n).family for n in method_names()} <= set(CELLS)


@pytest.mark.parametrize("name", method_names())
def test_every_method_fits_reports_its_metrics_and_is_deterministic(name, request):
    method = get_method(name)
    cell = CELLS[method.family](name, request)
    first = evaluate(method.quick_hp, cell, "half", run=1)
    again = evaluate(method.quick_hp, cell, Split.half(1))
    assert tuple(first.metrics) == method.metrics
    assert all(DIRECTIONS[m] == d for m, d in method.directions.items())
    assert method.label_free + method.oracles == method.metrics
    assert set(method.oracles) <= set(ORACLES)
    for metric in method.label_free:
        assert math.isfinite(first.metrics[metric]), (name, metric, first.metrics)
    if method.has_score:
        # an oracle is the truth of the ensemble it selects; the first one is always defined
        for oracle in method.oracles:
            assert first.metrics[oracle] == pytest.approx(first.truth[oracle][oracle], nan_ok=True)
        assert first.metrics[method.oracles[0]] > 0
        for selection, scores in first.scores.items():
            assert 0 <= first.truth[selection]["auc"] <= 1
            assert scores.shape == first.y_test.shape and np.all(np.isfinite(scores))
        for selection, curve in first.curves.items():
            assert curve.max_sic == pytest.approx(first.truth[selection]["max_sic"])
    else:
        assert first.scores == {} and first.y_test is None
    np.testing.assert_equal(first.metrics, again.metrics)  # exact; nan equals nan
    for sel, scores in first.scores.items():
        np.testing.assert_array_equal(scores, again.scores[sel])
    assert first.info["split"] == Split.half(1).to_dict() and first.info["classifier"] == name


@pytest.mark.parametrize("name", method_names())
def test_every_method_rejects_bad_hyperparameters_with_one_message_shape(name):
    method = get_method(name)
    with pytest.raises(HyperparameterError, match=rf"^{name} hyperparameter 'bogus': unknown; "):
        method.validate({"bogus": 1})
    rules = [k for k, v in method.default_hyperparameters().items() if isinstance(v, int)]
    if rules:
        with pytest.raises(
            HyperparameterError, match=rf"^{name} hyperparameter '{rules[0]}': must be"
        ):
            method.validate({rules[0]: -(10**9)})
    elif not method.default_hyperparameters():  # a method without hyperparameters says so
        with pytest.raises(HyperparameterError, match=f"{name} has no hyperparameters"):
            method.validate({"bogus": 1})
    with pytest.raises(HyperparameterError, match=rf"^{name} hyperparameters: must be a table"):
        method.validate([1, 2])  # type: ignore[arg-type]
    # the search defaults and the final-run defaults both pass the method's own rules
    for final in (False, True):
        defaults = method.default_hyperparameters(final=final)
        assert method.validate(defaults, final=final) == defaults
    quick = method.validate(method.quick_hp)  # passes the method's own rules
    assert set(quick) == set(method.default_hyperparameters())


def test_unknown_methods_and_modes_name_the_valid_ones(data):
    with pytest.raises(HyperparameterError, match="unknown method 'XGB'; valid methods are HGB"):
        get_method("XGB")
    with pytest.raises(ValueError, match="ANODE cells have mode 'density'"):
        Cell("ANODE", "IAD", 0, False, data)
    with pytest.raises(ValueError, match="HGB cells have mode 'IAD' or 'CWoLa' or 'CATHODE'"):
        Cell("HGB", "density", 0, False, data)
