"""The bump hunt on the real one-node SLURM cluster (issue 12).

One tiny campaign (IAD-HGB, windows 4-6, two folds, hyperparameters from the search's
ARGOS export and the defaults) is launched with ``hpo launch``: worker array ->
pick-best -> bump-hunt array (one task per window x fold) -> combine. One bump-hunt
task is ``scancel``-ed as soon as it runs; the combine job finds its units missing,
submits that task again with a new combine job after it, and that one writes the
results. Checked: the killed task was re-run and completed its units, and the
combined numbers equal those of a local ``hpo bumphunt`` on the same hyperparameters
and seeds in another run directory.

Needs deploy/slurm-up.sh (the ``slurm_cluster`` fixture); journal storage, no database.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import optuna
import pytest
from _chain_fixture import wait_for
from _hpo_cli import hpo
from _slurm_fixture import slurm_cluster  # noqa: F401  (pytest fixture)

from workers.slurm import TERMINAL_STATES, job_states

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]

TIMEOUT = 900.0  # the whole chain with one retry, on a busy 2-core machine

CAMPAIGN = """
[campaign]
name = "bhchain"
run_dir = "{run_dir}"

[data]
source = "synthetic"
scale = 0.03
seed = 4

[grid]
classifiers = ["HGB"]
modes = ["IAD"]
signal = [0, 300]
windows = [4, 5, 6]

[search]
n_trials = 1
sampler = "random"
metrics = ["argos"]
repetitions = 1

[search.fixed.HGB]
n_ensemble = 1

[search.space.HGB]
max_iter = {{ type = "int", low = 20, high = 30 }}

[final]
n_runs = 1
statistics = ["half"]
defaults = false

[bumphunt]
folds = 2
runs = 2
eps_b = [0.1, 0.01]
hp = ["default", "argos"]

[slurm]
time = "10"
final_time = "10"
cpus_per_task = 1
mem = "1G"
array_size = 2
array_parallel = 2
"""


def _jobs(run_dir) -> dict[str, str]:
    path = run_dir / "slurm" / "jobs.json"
    return json.loads(path.read_text())["jobs"] if path.exists() else {}


def _all_finished(run_dir) -> dict[str, str] | None:
    """Every job recorded so far (retries included) in a terminal state, else None."""
    jobs = _jobs(run_dir)
    states = job_states(jobs.values())
    if any("[" in k for k in states):  # array tasks not started yet
        return None
    mine = {
        name: {k: v for k, v in states.items() if k.split("_")[0] == job}
        for name, job in jobs.items()
    }
    if all(m and all(s in TERMINAL_STATES for s in m.values()) for m in mine.values()):
        return {k: v for m in mine.values() for k, v in m.items()}
    return None


def _logs(run_dir) -> str:
    out = []
    for path in sorted((run_dir / "slurm" / "logs").glob("*.out")):
        out += [f"--- {path.name}", *path.read_text().splitlines()[-10:]]
    return "\n".join(out)


def _numbers(results: dict) -> dict:
    """results.json without provenance (written at different times by different hosts)."""
    return {k: v for k, v in results.items() if k != "provenance"}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bhchain")
    toml = folder / "c.toml"
    toml.write_text(CAMPAIGN.format(run_dir="run"))
    run_dir = folder / "run"
    done = hpo("launch", str(toml))
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = _jobs(run_dir)
    t0 = time.monotonic()
    try:
        array = jobs["bumphunt"]

        def running_task():
            states = job_states([array])
            return next((k for k, s in states.items() if "_" in k and s == "RUNNING"), None)

        killed = wait_for(
            running_task,
            timeout=600,
            what="a running bump-hunt task",
            interval=0.2,
            show=lambda: _logs(run_dir),
        )
        subprocess.run(["scancel", killed], check=True)
        states = wait_for(
            lambda: _all_finished(run_dir),
            timeout=TIMEOUT,
            what="the chain",
            interval=2.0,
            show=lambda: _logs(run_dir),
        )
    finally:
        subprocess.run(["scancel", *_jobs(run_dir).values()], capture_output=True, check=False)
    return {
        "toml": toml,
        "run_dir": run_dir,
        "killed": killed,
        "states": states,
        "seconds": time.monotonic() - t0,
    }


def test_killed_task_is_resubmitted_and_the_scan_completes(chain):
    from hpo.bumphunt import missing_units, tasks
    from hpo.config import load_campaign

    run_dir, states = chain["run_dir"], chain["states"]
    jobs = _jobs(run_dir)
    assert states[chain["killed"]] == "CANCELLED", states
    # the first combine job found the killed task's units missing and resubmitted it
    assert {"bumphunt-retry1", "bumphunt-combine-retry1"} <= set(jobs), jobs
    task = int(chain["killed"].split("_")[1])
    first = run_dir / "slurm" / "logs" / f"bhchain-bumphunt-combine-{jobs['bumphunt-combine']}.out"
    assert f"resubmitted them as job {jobs['bumphunt-retry1']}" in first.read_text(), _logs(run_dir)
    assert states[f"{jobs['bumphunt-retry1']}_{task}"] == "COMPLETED", states
    assert states[jobs["bumphunt-combine-retry1"]] == "COMPLETED", _logs(run_dir)
    campaign = load_campaign(chain["toml"])
    assert len(tasks(campaign)) == 6 and not missing_units(campaign)
    # the significance plot is attached to the study of every window's cell (dashboard)
    from hpo.cells import campaign_cells
    from hpo.studies import open_campaign_storage

    storage = open_campaign_storage(campaign)
    for cc in campaign_cells(campaign):
        study = optuna.load_study(study_name=cc.study_name, storage=storage)
        for source in ("default", "argos"):
            assert f"bumphunt_plot_sha_{source}" in study.user_attrs, cc.study_name
    for source in ("default", "argos"):
        assert (run_dir / "bumphunt" / "IAD" / source / "results.json").is_file()
        assert (run_dir / "bumphunt" / "IAD" / source / "significance.png").is_file()
    print(f"chain with one retry finished in {chain['seconds']:.0f} s")


def test_combined_numbers_equal_a_local_run(chain, tmp_path):
    """Same campaign in another run directory, hyperparameters copied from pick-best."""
    local = tmp_path / "c.toml"
    local.write_text(CAMPAIGN.format(run_dir="local"))
    shutil.copytree(chain["run_dir"] / "hp", tmp_path / "local" / "hp")
    proc = hpo("bumphunt", str(local), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for source in ("default", "argos"):
        slurm = json.loads(
            (chain["run_dir"] / "bumphunt" / "IAD" / source / "results.json").read_text()
        )
        here = json.loads(
            (tmp_path / "local" / "bumphunt" / "IAD" / source / "results.json").read_text()
        )
        assert _numbers(here) == _numbers(slurm), source
        # and the argos source did use the per-window exported hyperparameters
        if source == "argos":
            unit = next(
                (tmp_path / "local" / "bumphunt" / "IAD" / "argos" / "units").rglob("*.json")
            )
            assert json.loads(unit.read_text())["picked"]["source"] == "argos"
