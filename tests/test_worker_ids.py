"""Worker ids unique across processes and hosts (issue 26 §4): no shared seed, no shared log.

Two ``hpo run C -w 1`` at once both named their worker ``local-0``: the same TPE seed,
so 8 COMPLETE trials held 4 distinct parameter sets, and one ``logs/worker-0.log``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import optuna
from _gate import Gate
from _hpo_cli import REPO
from _tiny_campaign import tiny_campaign
from optuna.trial import TrialState

from storage.leases import LEASE_WORKER
from workers.ids import unique_worker_id, worker_label

CAMPAIGN = tiny_campaign("ids", sampler="tpe")


def test_ids_name_the_host_and_process_and_never_repeat(monkeypatch):
    ids = {unique_worker_id("local-0") for _ in range(100)}
    assert len(ids) == 100
    assert all(i.startswith(f"local-0@{socket.gethostname()}-{os.getpid()}-") for i in ids)
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "41")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert worker_label() == "slurm-41_3"


def test_two_runs_at_once_share_no_seed_no_id_and_no_log(tmp_path):
    """Both ``hpo run -w 1`` take a trial while the other holds one (the test gate holds
    each trial until both are in): with one seed both draw the same first parameters."""
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN)
    gate = Gate(tmp_path / "gate")
    argv = [sys.executable, "-m", "hpo", "run", str(path), "-w", "1"]
    env = gate.env({**os.environ, "PYTHONWARNINGS": "ignore"})
    runs = []
    try:
        # the first creates the campaign; the second starts once the first holds a trial
        runs.append(subprocess.Popen(argv, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True))
        gate.wait_held(1, alive=lambda: runs[0].poll() is None, what="the first run")
        runs.append(subprocess.Popen(argv, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True))
        gate.wait_held(2, alive=lambda: runs[1].poll() is None, what="the second run")
        gate.open()
        errs = [p.communicate(timeout=600)[1] for p in runs]
    finally:
        for p in runs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in runs] == [0, 0], errs
    from hpo.config import load_campaign
    from hpo.studies import open_campaign_storage

    storage = open_campaign_storage(load_campaign(path))
    (name,) = optuna.get_all_study_names(storage)
    done = optuna.load_study(study_name=name, storage=storage).get_trials(
        states=(TrialState.COMPLETE,)
    )
    assert len(done) == 4
    params = {tuple(sorted(t.params.items())) for t in done}
    assert len(params) == 4, "two workers drew the same parameters"
    workers = {t.system_attrs[LEASE_WORKER] for t in done}
    assert len(workers) == 2 and all(w.startswith("local-0@") for w in workers), workers
    logs = sorted(p.name for p in (tmp_path / "run" / "logs").glob("worker-*.log"))
    assert logs == sorted(f"worker-{w}.log" for w in workers)
