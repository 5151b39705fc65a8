"""Methods from outside the repository: one loader, `hpo methods`, checks, provenance.

A method written in another package (an entry point of ``wsad_hpo.methods``) or found on
``PYTHONPATH`` (``"module:attribute"``) loads through the same loader as the built-ins,
is listed by ``hpo methods``, stops ``hpo validate`` with one line when it is broken,
runs through ``hpo pipeline`` beside HGB and is selected against it by ``hpo select``.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from _hpo_cli import hpo
from _plugin_fixture import EXAMPLE, campaign, install_example, method_module

from objectives.errors import MethodError
from objectives.registry import BUILTINS, get_method, load_method, method_names, origin


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A folder on PYTHONPATH (of this process and of every ``hpo`` it starts); the
    methods a test loads in this process are forgotten after it."""
    from objectives import registry

    for table in ("_REGISTRY", "_ORIGINS", "_BY_TARGET"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))
    folder = tmp_path / "pkgs"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])
    )
    return folder


# ----------------------------------------------------------------------------- the loader
def test_builtins_load_through_the_public_loader():
    """The built-ins are Method objects at module attributes, loaded as any target is."""
    names = method_names()
    assert len(BUILTINS) == len(names)
    for target, name in zip(BUILTINS, names, strict=True):
        assert load_method(target) is get_method(name)
        assert origin(name).kind == "built-in" and origin(name).target == target


def test_module_form_registers_under_its_own_name(plugin_path):
    target = method_module(plugin_path, "good_linear", name="GoodLinear")
    method = get_method(target)
    assert method.name == "GoodLinear" and get_method("GoodLinear") is method
    assert get_method(target) is method  # loading twice returns the registered one
    where = origin("GoodLinear")
    assert (where.kind, where.target, where.distribution) == ("module", target, None)
    assert where.file == str(plugin_path / "good_linear.py")


def test_a_method_may_not_take_a_builtin_name(plugin_path):
    target = method_module(plugin_path, "shadow_hgb", name="HGB")
    with pytest.raises(MethodError, match=r"its name 'HGB' is taken by the built-in method"):
        get_method(target)


BROKEN = {
    "import": (
        {"text": "import not_a_module_anywhere\n"},
        "cannot import {module} (ModuleNotFoundError: No module named 'not_a_module_anywhere')",
    ),
    "attribute": ({"text": "x = 1\n"}, "{module} has no attribute 'method'"),
    "not a method": (
        {"text": "method = {'name': 'X'}\n"},
        "{module}:method is a dict, not an objectives.methods.Method",
    ),
    "space not a distribution": ({"space": "0.5"}, "space entry scale: not an Optuna distribution"),
    "space not a hyperparameter": (
        {"space": '{"type": "float", "low": 1.0, "high": 2.0}, "lr": 0.1'},
        "space entry 'lr' is not one of its hyperparameters",
    ),
    "default outside its space": (
        {"default": 20.0},
        "the default scale = 20.0 lies outside its search space float [0.5, 8] log",
    ),
    "estimator missing": (
        {"estimator": "os:no_such_factory"},
        "estimator 'os:no_such_factory' cannot be loaded (AttributeError",
    ),
    "predict_proba of three columns": (
        {"output": "np.c_[1.0 - p, p, p]"},
        "predict_proba of 200 events returned shape (200, 3); expected (200, 2)",
    ),
    "predict_proba transposed": (
        {"output": "np.vstack([1.0 - p, p])"},
        "predict_proba of 200 events returned shape (2, 200)",
    ),
    "not probabilities": ({"output": "4.0 * p"}, "must be probabilities in [0, 1]"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_method_stops_validate_with_one_line(case, plugin_path, tmp_path):
    module = "broken_" + case.replace(" ", "_")
    parts, expected = BROKEN[case]
    target = method_module(plugin_path, module, **parts)
    path = campaign(tmp_path / "c", ["HGB", target])
    done = hpo("validate", str(path))
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("hpo: error: "), lines[0]
    assert "method " in lines[0] and (module in lines[0] or target in lines[0]), lines[0]
    assert expected.format(module=module) in lines[0], lines[0]
    assert not (tmp_path / "c" / "run").exists()  # nothing created


@pytest.mark.parametrize(
    "module, parts",
    [
        (
            "dist_space",
            {"space": '__import__("optuna").distributions.FloatDistribution(0.5, 8.0, log=True)'},
        ),
        (
            "lazy_space",
            {"space_table": 'lambda: {"scale": {"type": "float", "low": 1, "high": 8}}'},
        ),
    ],
    ids=["an Optuna distribution", "a space built on first use"],
)
def test_validate_accepts_distributions_and_lazy_spaces(module, parts, plugin_path, tmp_path):
    target = method_module(plugin_path, module, **parts)
    done = hpo("validate", str(campaign(tmp_path / "c", [target])))
    assert done.returncode == 0, done.stderr
    assert f"method {module}: loaded, checked on synthetic events" in done.stdout


def test_unknown_method_names_the_valid_ones_and_the_module_form(tmp_path):
    done = hpo("validate", str(campaign(tmp_path / "c", ["XGB"])))
    assert done.returncode == 2
    assert "grid.classifiers: unknown method 'XGB'; valid methods are HGB, AdaBoost" in done.stderr
    assert "'module:attribute'" in done.stderr


# ----------------------------------------------------------------------------- epochs
_EPOCHS = '''\
import numpy as np

from objectives.hyperparameters import int_rule
from objectives.methods import classifier_method


class Steps:
    """Logistic regression by gradient steps; every epoch's weights are kept."""

    def __init__(self, hp, seed):
        self.hp = hp

    def fit(self, X, y, sample_weight=None, validation=None):
        A, w, self.states_ = np.c_[X, np.ones(len(X))], np.zeros(X.shape[1] + 1), []
        for _ in range(self.hp["epochs"]):
            p = 1.0 / (1.0 + np.exp(-A @ w))
            w = w - 0.3 * A.T @ (p - y) / len(y) + 0.05 * np.sin(len(self.states_)) * A[0]
            self.states_.append(w.copy())
        return self

    def epoch_predictions(self, X):
        A = np.c_[X, np.ones(len(X))]
        return np.array([1.0 / (1.0 + np.exp(-A @ w)) for w in self.states_])

    def predict_proba(self, X):
        return self.epoch_predictions(X)[-1]


method = classifier_method(
    "Steps",
    estimator=lambda hp, *, seed, n_jobs=1, device="cpu": Steps(hp, seed),
    hyperparameters={"epochs": int_rule(6, 1, 100), "n_best": int_rule(1, 1, 100)},
    space={"epochs": {"type": "int", "low": 2, "high": 9}},
    epoch_choice="n_best",
)
'''


def test_a_method_with_epoch_states_gets_the_nn_treatment(plugin_path, tmp_path):
    """Each selection metric picks its own best epoch: ARGOS / BCE on the held-out events,
    the oracle on the test set (known here: the per-epoch truth computed directly)."""
    from objectives.cells import Cell, DataSpec, prepare
    from objectives.evaluate import evaluate
    from objectives.metrics import argos, max_sic, weighted_bce
    from objectives.splits import Split
    from objectives.synthetic import SyntheticSpec, write_synthetic

    (plugin_path / "epoch_steps.py").write_text(_EPOCHS)
    method = get_method("epoch_steps:method")
    spec = DataSpec(*write_synthetic(SyntheticSpec(scale=0.02, seed=4), tmp_path / "data"))
    cell = Cell(method.name, "IAD", 400, False, spec)
    result = evaluate({"epochs": 6, "n_best": 1}, cell, "half", run=0)

    p = prepare(cell)
    train, held = Split.half(0).indices(p.y)
    clf = method.make_estimator(method.validate({"epochs": 6}), seed=0)
    clf.fit(p.X[train], p.y[train], sample_weight=p.w[train])
    va, test = clf.epoch_predictions(p.X[held]), clf.epoch_predictions(p.X_test)
    y, w = p.y[held], p.w[held]
    by_argos = int(np.nanargmax([argos(e, y, w) for e in va]))
    by_bce = int(np.nanargmin([weighted_bce(e, y, w) for e in va]))
    sics = [max_sic(e, p.y_test) for e in test]
    assert len({by_argos, by_bce, int(np.argmax(sics))}) > 1  # the selections differ here
    np.testing.assert_allclose(result.scores["argos"], test[by_argos])
    np.testing.assert_allclose(result.scores["bce"], test[by_bce])
    assert result.metrics["max_sic"] == pytest.approx(max(sics))
    assert result.metrics["argos"] == pytest.approx(argos(va[by_argos], y))
    np.testing.assert_allclose(result.held_out.scores["bce"], va[by_bce])


def test_the_nn_through_the_service_equals_its_own_epoch_choice(tmp_path, one_torch_thread):
    """The built-in NN goes through the same per-epoch path as any method that declares
    one; its ensembles are the ones its own predict_proba(selection) averages."""
    from objectives.cells import Cell, DataSpec, prepare
    from objectives.evaluate import evaluate
    from objectives.splits import Split
    from objectives.synthetic import SyntheticSpec, write_synthetic

    spec = DataSpec(*write_synthetic(SyntheticSpec(scale=0.02, seed=4), tmp_path / "data"))
    cell = Cell("NN", "IAD", 400, False, spec)
    hp = {"epochs": 4, "n_best_epochs": 2, "batch_size": 512, "layers": [16]}
    result = evaluate(hp, cell, "half", run=1)
    p, split = prepare(cell), Split.half(1)
    train, held = split.indices(p.y)
    method = get_method("NN")
    clf = method.make_estimator(method.validate(hp), seed=split.model_seed())
    clf.fit(p.X[train], p.y[train], p.w[train], validation=(p.X[held], p.y[held], p.w[held]))
    for selection in ("argos", "bce"):
        np.testing.assert_array_equal(
            result.scores[selection], clf.predict_proba(p.X_test, selection)
        )


# ----------------------------------------------------------------------------- listing
def test_hpo_methods_lists_every_builtin_with_its_space():
    done = hpo("methods", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert set(method_names()) <= set(rows)
    hgb = rows["HGB"]
    assert hgb["family"] == "classifier" and hgb["modes"] == ["IAD", "CWoLa", "CATHODE"]
    assert hgb["metrics"] == {"argos": "maximize", "bce": "minimize", "max_sic": "maximize"}
    assert hgb["hyperparameters"]["max_iter"]["search"] == {
        "type": "int",
        "low": 2,
        "high": 199,
        "log": False,
    }
    assert hgb["hyperparameters"]["n_ensemble"] == {"default": 50, "final": 50, "search": None}
    assert rows["NN"]["hyperparameters"]["epochs"]["default"] == 20
    assert rows["NN"]["hyperparameters"]["epochs"]["final"] == 100
    assert rows["NN"]["device"] and rows["NN"]["epoch_choice"] == "n_best_epochs"
    assert rows["DDD"]["family"] == "unsupervised" and rows["ANODE"]["modes"] == ["density"]
    text = hpo("methods").stdout
    assert "HGB  [classifier]  built-in" in text and "int [2, 199]" in text


def test_hpo_methods_lists_a_broken_entry_point_and_goes_on(tmp_path, monkeypatch):
    """An installed package whose method cannot load is one line in the listing."""
    site = tmp_path / "site"
    dist = site / "wsad_broken-0.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wsad-broken\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[wsad_hpo.methods]\nBroken = wsad_broken:method\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    done = hpo("methods")
    assert done.returncode == 0, done.stderr
    assert (
        "Broken: cannot be used: method 'Broken' (entry point of wsad-broken 0.3): cannot "
        "import wsad_broken (ModuleNotFoundError" in done.stdout
    )
    assert "HGB  [classifier]  built-in" in done.stdout


# ----------------------------------------------------------------------------- provenance
def test_provenance_hashes_the_source_of_a_module_not_installed(plugin_path, tmp_path):
    from hpo.config import load_campaign
    from hpo.provenance import methods_provenance

    package = plugin_path / "prov_pkg"
    package.mkdir()
    method_module(package, "model", name="ProvLinear", estimator="prov_pkg.model:make")
    (package / "__init__.py").write_text("from prov_pkg.model import method\n")
    record = methods_provenance(load_campaign(campaign(tmp_path / "c", ["HGB", "prov_pkg:method"])))
    assert record["HGB"] == {"kind": "built-in"}
    entry = record["ProvLinear"]
    assert (entry["kind"], entry["target"]) == ("module", "prov_pkg:method")
    assert "distribution" not in entry and entry["file"] == str(package / "__init__.py")
    lines = "".join(
        f"{name} {hashlib.sha256((package / name).read_bytes()).hexdigest()}\n"
        for name in ("__init__.py", "model.py")
    )
    assert entry["sha256"] == hashlib.sha256(lines.encode()).hexdigest()


# ----------------------------------------------------------------------------- the example
@pytest.mark.slow
def test_installed_example_runs_the_pipeline_and_is_selected_against_hgb(tmp_path, monkeypatch):
    """examples/plugins installed (entry point LightGBM): listed, validated, tuned, run in
    half and full finals and selected by ARGOS against HGB, with its provenance."""
    site = install_example(tmp_path / "site")
    monkeypatch.setenv("PYTHONPATH", str(site))
    listed = json.loads(hpo("methods", "--json", "LightGBM").stdout)
    assert listed[0]["origin"] == {
        "kind": "entry point",
        "target": "wsad_lightgbm:method",
        "distribution": "wsad-lightgbm",
        "version": "0.1.0",
        "file": str(site / "wsad_lightgbm" / "__init__.py"),
    }
    shipped = hpo("validate", str(EXAMPLE / "lightgbm.toml"))  # the example's own campaign
    assert shipped.returncode == 0, shipped.stderr
    fixed = "\n[search.fixed.HGB]\nn_ensemble = 2\n[search.fixed.LightGBM]\nn_ensemble = 2\n"
    path = campaign(tmp_path / "c", ["HGB", "LightGBM"], extra=fixed, n_runs=2)
    done = hpo("pipeline", str(path), "--workers", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "method LightGBM: loaded, checked on synthetic events" in done.stdout
    run = tmp_path / "c" / "run"
    summary = json.loads(next((run / "select").glob("*/summary.json")).read_text())
    detectors = {d.split("/")[0] for d in summary["detectors"]}
    assert detectors == {"HGB", "LightGBM"}, summary["detectors"]
    picked = {row["picked"]["argos"]["detector"].split("/")[0] for row in summary["runs"]}
    assert picked <= {"HGB", "LightGBM"} and len(summary["runs"]) == 2
    assert summary["selected"]["argos"]["overall"]["detector"].split("/")[0] in picked
    provenance = summary["provenance"]["methods"]["LightGBM"]
    assert (provenance["distribution"], provenance["version"]) == ("wsad-lightgbm", "0.1.0")
    finals = list((run / "final" / "LightGBM-IAD-norot-N1000-baseline").rglob("run*.json"))
    assert {f.parent.name for f in finals} == {"half", "full"}


def test_a_method_that_trains_on_the_cpu_never_gets_a_device():
    from objectives.hyperparameters import int_rule
    from objectives.methods import classifier_method

    seen = []

    def factory(hp, *, seed, n_jobs=1, device="cpu"):
        seen.append(device)

    for trains_on_device in (False, True):
        method = classifier_method(
            "Probe",
            estimator=factory,
            hyperparameters={"k": int_rule(1, 0, 9)},
            space={},
            device=trains_on_device,
        )
        method.make_estimator(method.validate({}), seed=0, device="cuda")
    assert seen == ["cpu", "cuda"]


def test_an_entry_point_records_its_distribution_where_the_module_lies_elsewhere(
    plugin_path, tmp_path, monkeypatch
):
    """As with an editable install: the entry point's distribution declares the method,
    its module is found elsewhere on the path; provenance names the distribution."""
    method_module(plugin_path, "probe_elsewhere", name="Probe")
    site = tmp_path / "site"
    dist = site / "wsad_probe-0.2.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wsad-probe\nVersion: 0.2\n")
    (dist / "entry_points.txt").write_text("[wsad_hpo.methods]\nProbe = probe_elsewhere:method\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(plugin_path)]))
    done = hpo("methods", "--json", "Probe")
    assert done.returncode == 0, done.stderr
    where = json.loads(done.stdout)[0]["origin"]
    assert (where["kind"], where["distribution"], where["version"]) == (
        "entry point",
        "wsad-probe",
        "0.2",
    )
