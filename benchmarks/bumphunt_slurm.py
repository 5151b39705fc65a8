"""Wall time of a bump-hunt scan on the one-node SLURM cluster against ``hpo bumphunt`` here.

A reduced scan (synthetic scale ``--scale``, IAD-HGB, default hyperparameters with an
ensemble of ``--ensemble``, windows 1-9, 5 folds, ``--runs`` runs, N = 0 and 1000):

* SLURM: ``hpo launch`` submits the whole chain (a one-trial search, so that
  pick-best has something to pick, then the bump-hunt array of 45 window x fold tasks,
  at most ``--parallel`` at a time, and the combine job); the figure is the time from
  pick-best's end to the combine job's end, polled every 2 s;
* here: the same campaign in another run directory (data generated before the clock
  starts), ``python -m hpo bumphunt``: every unit in one process, then the combine.

Both write the same numbers (tests/test_bumphunt_chain.py checks that). Needs the
test cluster (deploy/slurm-up.sh; ``SLURM_CONF`` set). The cluster is told it has 8
CPUs; on a 2-core machine the array tasks share the two cores. Both sides run at
``nice 10`` (the array tasks renice themselves in ``[slurm] setup``).

Usage::

    SLURM_CONF=.deploy/slurm/slurm.conf python benchmarks/bumphunt_slurm.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from _common import OUT

CAMPAIGN = """\
[campaign]
name = "bh-wall"
run_dir = "{run_dir}"

[data]
source = "synthetic"
scale = {scale}
seed = 0

[grid]
classifiers = ["HGB"]
modes = ["IAD"]
signal = [0, 1000]
windows = [1, 2, 3, 4, 5, 6, 7, 8, 9]

[search]
n_trials = 1
sampler = "random"
repetitions = 1
metrics = ["argos"]

[search.fixed.HGB]
n_ensemble = {ensemble}

[final]
n_runs = 1
statistics = ["half"]
defaults = false

[bumphunt]
folds = 5
runs = {runs}
hp = ["default"]

[slurm]
time = "60"
final_time = "60"
cpus_per_task = 1
mem = "2G"
array_size = 2
array_parallel = {parallel}
setup = ["renice -n 10 -p $$ > /dev/null"]   # a shared machine: as nice as the local run

[search.space.HGB]
max_iter = {{ type = "int", low = 10, high = 12 }}
"""


def _states(jobs: dict[str, str]) -> dict[str, str]:
    from workers.slurm import job_states

    return job_states(jobs.values())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--ensemble", type=int, default=3)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--parallel", type=int, default=8)
    args = ap.parse_args()
    if "SLURM_CONF" not in os.environ:
        ap.error("set SLURM_CONF (deploy/slurm-up.sh prints it)")

    from hpo.config import load_campaign
    from hpo.data import ensure_data
    from workers.slurm import TERMINAL_STATES

    folder = OUT / "bumphunt_slurm" / f"s{args.scale:g}-k{args.ensemble}-r{args.runs}"
    folder.mkdir(parents=True, exist_ok=True)
    slurm_toml, local_toml = folder / "slurm.toml", folder / "local.toml"
    for path, run_dir in ((slurm_toml, "run-slurm"), (local_toml, "run-local")):
        path.write_text(
            CAMPAIGN.format(
                run_dir=run_dir,
                scale=args.scale,
                ensemble=args.ensemble,
                runs=args.runs,
                parallel=args.parallel,
            )
        )
    for path in (slurm_toml, local_toml):  # a fresh scan each time
        shutil.rmtree(load_campaign(path).run_dir, ignore_errors=True)

    hpo = [sys.executable, "-m", "hpo"]
    done = subprocess.run([*hpo, "launch", str(slurm_toml)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr)
    run_dir = load_campaign(slurm_toml).run_dir
    jobs_path = run_dir / "slurm" / "jobs.json"
    t_pick = t_end = None
    while t_end is None:
        jobs = json.loads(jobs_path.read_text())["jobs"]
        states = _states(jobs)
        if t_pick is None and states.get(jobs["pick-best"]) == "COMPLETED":
            t_pick = time.monotonic()
        combines = [j for n, j in jobs.items() if n.startswith("bumphunt-combine")]
        last = states.get(combines[-1])
        if last in TERMINAL_STATES:
            if last != "COMPLETED":
                sys.exit(f"combine job {combines[-1]}: {last}; logs in {run_dir / 'slurm/logs'}")
            t_end = time.monotonic()
        time.sleep(2)
    slurm_wall = t_end - t_pick
    n_tasks = 45

    local = load_campaign(local_toml)
    ensure_data(local)  # generated outside the clock, as SLURM's launch did
    t0 = time.monotonic()
    nice = ["nice", "-n", "10"]
    done = subprocess.run(
        [*nice, *hpo, "bumphunt", str(local_toml)], capture_output=True, text=True
    )
    local_wall = time.monotonic() - t0
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    same = json.loads((run_dir / "bumphunt/IAD/default/results.json").read_text())
    here = json.loads((local.run_dir / "bumphunt/IAD/default/results.json").read_text())
    equal = {k: v for k, v in same.items() if k != "provenance"} == {
        k: v for k, v in here.items() if k != "provenance"
    }
    units = list((local.run_dir / "bumphunt/IAD/default/units").rglob("*.json"))
    unit_s = sum(json.loads(p.read_text())["seconds"] for p in units)
    print(
        f"scan: scale {args.scale:g}, ensemble {args.ensemble}, {args.runs} run(s), "
        f"{n_tasks} tasks, {len(units)} units ({unit_s:.0f} s of training here)"
    )
    print(
        f"SLURM (array of {n_tasks}, {args.parallel} at a time) pick-best -> combine: "
        f"{slurm_wall / 60:.1f} min"
    )
    print(f"hpo bumphunt here (one process):                 {local_wall / 60:.1f} min")
    print(f"same numbers: {equal}")


if __name__ == "__main__":
    main()
