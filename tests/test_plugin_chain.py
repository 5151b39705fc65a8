"""A method from outside the repository through the SLURM chain on the one-node cluster.

The example LightGBM package (``examples/plugins``), not installed, named
``"wsad_lightgbm:method"`` and found on ``PYTHONPATH``: ``hpo launch`` checks it before
submitting, then the worker array, pick-best, final, select and report jobs each load it
on the node. Checked afterwards: every job completed, both cells reached their trials,
the selection compared HGB and LightGBM, and the provenance holds the plugin's hash.
"""

from __future__ import annotations

import json
import uuid

import pytest
from _chain_fixture import Chain
from _plugin_fixture import EXAMPLE, campaign
from _slurm_fixture import slurm_cluster  # noqa: F401  (pytest fixture)
from optuna.trial import TrialState

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.usefixtures("slurm_cluster"),
]

CHAIN_TIMEOUT = 600.0  # seconds for the whole chain on a busy 2-core machine
SETTINGS = """
[search.fixed.HGB]
n_ensemble = 2

[search.fixed.LightGBM]
n_ensemble = 2

[slurm]
time = "10"
final_time = "10"
cpus_per_task = 1
mem = "1G"
array_size = 2
array_parallel = 2
"""


def test_module_form_method_runs_through_the_slurm_chain(tmp_path, monkeypatch, postgres_url):
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLE))  # absolute: the jobs cd into the run dir
    folder = tmp_path / f"plugin-chain-{uuid.uuid4().hex[:8]}"
    path = campaign(
        folder, ["HGB", "wsad_lightgbm:method"], storage=postgres_url, extra=SETTINGS, n_trials=3
    )
    chain = Chain.launch(path, postgres_url)
    assert "method LightGBM: loaded, checked on synthetic events" in chain.launch_output
    try:
        states = chain.wait(CHAIN_TIMEOUT)
    finally:
        chain.cancel_all()
    assert set(states.values()) == {"COMPLETED"}, chain.describe()
    trials = chain.trials()
    assert sorted(name.split(".", 1)[1] for name in trials) == [
        "HGB-IAD-norot-N1000-baseline",
        "LightGBM-IAD-norot-N1000-baseline",
    ]
    for name, done in trials.items():
        assert sum(t.state == TrialState.COMPLETE for t in done) >= 3, (name, chain.describe())
    summary = json.loads(next((chain.run_dir / "select").glob("*/summary.json")).read_text())
    assert {d.split("/")[0] for d in summary["detectors"]} == {"HGB", "LightGBM"}
    assert summary["runs"][0]["picked"]["argos"]["detector"].split("/")[0] in {"HGB", "LightGBM"}
    where = summary["provenance"]["methods"]["LightGBM"]
    assert (where["kind"], where["target"]) == ("module", "wsad_lightgbm:method")
    assert where["file"] == str(EXAMPLE / "wsad_lightgbm" / "__init__.py") and where["sha256"]
    assert list((chain.run_dir / "report").glob("*.png")), chain.describe()
