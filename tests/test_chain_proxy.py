"""The SLURM chain with a storage proxy job on the real one-node cluster (issue 14 §3).

One tiny campaign with ``[slurm] proxy = "job"``, launched with ``$PGPASSWORD`` in the
environment: ``hpo launch`` submits the proxy job, then the worker array (``after`` the
proxy), pick-best and one final job. While it runs, one array task is ``scancel``-ed in
the middle of a trial; then the proxy job itself is cancelled while every live worker
holds a running trial, ``hpo status`` must say so, and a replacement proxy is started by
hand (``hpo proxy --address-file``, as a user would) on another port. Checked: exact
COMPLETE counts, the cancelled trial re-run with its parameters, the workers waited the
outage out and finished, the proxy held few database connections, and no worker saw the
password (argv, environment, logs) or loaded a database driver.

Needs deploy/slurm-up.sh and deploy/postgres.sh (the fixtures call them); ~3 minutes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _chain_fixture import Chain, requeue_target, wait_for, write_campaign
from _gate import GUARD_S, Gate
from _hpo_cli import REPO, hpo
from _slurm_fixture import slurm_cluster  # noqa: F401  (pytest fixture)
from optuna.trial import TrialState

from storage.leases import FAIL_REASON
from storage.proxy import APPLICATION_NAME, DEFAULT_THREADS, read_address

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.usefixtures("slurm_cluster"),
]

N_TRIALS = 6
TIMEOUT = 480.0


def _password() -> str:
    """The test role's password from ~/.pgpass (deploy/postgres.sh stored it there)."""
    for line in (Path.home() / ".pgpass").read_text().splitlines():
        fields = line.split(":")
        if len(fields) == 5 and fields[3] == "wsad_test":
            return fields[4]
    pytest.fail("no wsad_test line in ~/.pgpass")


def _processes(marker: str) -> dict[int, tuple[str, bytes, str]]:
    """pid -> (argv, environment, memory maps) of this machine's processes whose argv
    contains ``marker`` (read from /proc; the one-node cluster runs its jobs here)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if marker not in argv:
                continue
            found[int(entry.name)] = (
                argv,
                (entry / "environ").read_bytes(),
                (entry / "maps").read_text(),
            )
        except OSError:
            continue
    return found


class _ConnectionPeak(threading.Thread):
    """Largest number of connections a campaign's proxies held at once (pg_stat_activity)."""

    def __init__(self, url: str, campaign: str) -> None:
        super().__init__(daemon=True)
        self.name_ = f"{APPLICATION_NAME}:{campaign}"
        import sqlalchemy

        self.engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import sqlalchemy

        query = sqlalchemy.text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
        )
        while not self.stop.wait(0.5):
            try:
                with self.engine.connect() as connection:
                    count = connection.execute(query, {"name": self.name_}).scalar()
                self.peak = max(self.peak, int(count))
            except Exception:  # the server may be restarted by another test module
                continue


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, postgres_url) -> dict:
    """Launch, cancel a task mid-trial, cancel the proxy, replace it; wait for the chain."""
    root = tmp_path_factory.mktemp("chain-proxy")
    toml = write_campaign(
        root,
        "proxied",
        postgres_url,
        signal=[300, 1000],
        n_trials=N_TRIALS,
        n_ensemble=5,
        metrics=["argos"],
        statistics=["half"],
        defaults=False,
        array_size=3,
        array_parallel=3,
        slurm_more='proxy = "job"',
    )
    password = _password()
    campaign = toml.read_text().split('name = "', 1)[1].split('"', 1)[0]
    peak = _ConnectionPeak(postgres_url, campaign)
    peak.start()
    replacement = None
    record: dict = {"password": password}
    gate = Gate(root / "gate")  # every trial waits there once sampled, until opened
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PGPASSWORD", password)  # what a user's login shell may well export
        chain = Chain.launch(toml, postgres_url, gate)
    try:
        address = chain.run_dir / "slurm" / "proxy.json"
        first = wait_for(lambda: read_address(address), timeout=120, what="the proxy's address")
        record["first_url"] = first

        def held_by(count: int, but: int | None = None):
            held = {t: trial for t, trial in chain.held_trials(gate).items() if t != but}
            return held if len(held) >= count else None

        held = wait_for(
            lambda: held_by(3),
            timeout=GUARD_S,
            what="three tasks holding a trial",
            show=chain.describe,
        )
        record["workers"] = _processes(str(toml))  # while they run: argv, env, maps
        task, (study, number) = min(held.items())
        trial = next(t for t in chain.trials()[study] if t.number == number)
        subprocess.run(["scancel", f"{chain.jobs['worker']}_{task}"], check=True)
        record.update(cancel_study=study, cancel_trial=trial, cancel_task=task)
        del held[task]
        record["outage_running"] = set(held.values())  # held: certainly in flight
        subprocess.run(["scancel", chain.jobs["proxy"]], check=True)
        wait_for(
            lambda: read_address(address) is None,
            timeout=60,
            what="the cancelled proxy to remove its address",
        )
        gate.open()  # the held trials end during the outage: their results wait for a proxy

        def noticed() -> bool:
            logs = [chain.log("worker", t) for t in range(3) if t != task]
            return all("unreachable" in log for log in logs)

        wait_for(noticed, timeout=GUARD_S, what="the workers to notice", show=chain.describe)
        status = hpo("status", str(toml))
        record["outage_status"] = status.stdout + status.stderr
        record["outage_tasks"] = chain.state_of("worker")
        time.sleep(5)  # the workers wait it out
        log = open(root / "replacement.log", "wb")  # noqa: SIM115 - closed below
        replacement = subprocess.Popen(
            [sys.executable, "-m", "hpo", "proxy", str(toml), "--address-file", str(address)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        record["second_url"] = wait_for(
            lambda: read_address(address), timeout=60, what="the replacement's address"
        )
        record["states"] = chain.wait(TIMEOUT)
        record["status"] = hpo("status", str(toml)).stdout
        yield {**record, "chain": chain, "peak": peak}
    finally:
        peak.stop.set()
        if replacement is not None:
            replacement.send_signal(signal.SIGTERM)
            replacement.wait(timeout=60)
            log.close()
        gate.open()
        chain.cancel_all()


def test_counts_exact_and_the_cancelled_trial_rerun(proxied) -> None:
    chain: Chain = proxied["chain"]
    states = proxied["states"]
    assert chain.state_of("pick-best", states) == {chain.jobs["pick-best"]: "COMPLETED"}
    assert chain.state_of("final-argos-half", states) == {
        chain.jobs["final-argos-half"]: "COMPLETED"
    }
    cancelled = f"{chain.jobs['worker']}_{proxied['cancel_task']}"
    tasks = chain.state_of("worker", states)
    assert tasks.pop(cancelled) == "CANCELLED"
    assert set(tasks.values()) == {"COMPLETED"}, f"a worker died in the outage\n{chain.describe()}"
    trials = chain.trials()
    assert len(trials) == 2
    for name, ts in trials.items():
        done = [t for t in ts if t.state == TrialState.COMPLETE]
        assert len(done) == N_TRIALS, f"{name}: {len(done)} COMPLETE"
        assert not [t for t in ts if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        keys = [tuple(sorted(t.params.items())) for t in done]
        assert len(set(keys)) == len(keys), f"{name}: the same parameters completed twice"
    lost = next(
        t for t in trials[proxied["cancel_study"]] if t.number == proxied["cancel_trial"].number
    )
    assert lost.state == TrialState.FAIL
    assert chain.worker_id(proxied["cancel_task"]) in lost.system_attrs[FAIL_REASON]
    rerun = requeue_target(trials[proxied["cancel_study"]], lost.number)
    assert rerun is not None and rerun.state == TrialState.COMPLETE
    assert {k: rerun.params[k] for k in lost.params} == lost.params
    for name, number in proxied["outage_running"]:  # in flight when the proxy went: kept
        t = next(t for t in trials[name] if t.number == number)
        if t.state != TrialState.COMPLETE:
            after = requeue_target(trials[name], number)
            assert after is not None and after.state == TrialState.COMPLETE, (name, number)


def test_the_outage_was_reported_and_waited_out(proxied) -> None:
    chain: Chain = proxied["chain"]
    out = proxied["outage_status"]
    assert f"storage proxy: none running (no address in {chain.run_dir / 'slurm'}" in out, out
    proxy_line = next(ln for ln in out.splitlines() if ln.strip().startswith("proxy "))
    assert f"{chain.jobs['proxy']}=CANCELLED" in proxy_line, proxy_line
    assert set(proxied["outage_tasks"].values()) >= {"RUNNING"}, proxied["outage_tasks"]
    assert proxied["second_url"] != proxied["first_url"]
    for task in range(3):
        if task == proxied["cancel_task"]:
            continue
        log = chain.log("worker", task)
        assert re.search(r"storage (unavailable|unreachable) .*storage proxy grpc://", log), log
        assert "all studies reached their targets" in log
        assert "Traceback" not in log
    assert f"storage proxy: {proxied['second_url']} answers" in proxied["status"]


def test_few_connections_and_no_password_on_the_workers(proxied) -> None:
    chain: Chain = proxied["chain"]
    password = proxied["password"].encode()
    assert 1 <= proxied["peak"].peak <= DEFAULT_THREADS, proxied["peak"].peak
    workers = {
        pid: seen for pid, seen in proxied["workers"].items() if " worker --proxy-file " in seen[0]
    }
    assert len(workers) >= 2, proxied["workers"]
    for argv, environ, maps in workers.values():
        assert proxied["password"] not in argv
        assert b"PGPASSWORD=" not in environ, "the worker script must drop $PGPASSWORD"
        assert "psycopg2" not in maps, "a proxied worker loaded the database driver"
    proxies = [seen for seen in proxied["workers"].values() if " proxy --host " in seen[0]]
    assert proxies and b"PGPASSWORD=" in proxies[0][1]  # it reached the proxy, and only it
    for path in (chain.run_dir / "slurm").rglob("*"):
        if path.is_file():
            assert password not in path.read_bytes(), path
    assert json.loads((chain.run_dir / "slurm" / "jobs.json").read_text())["jobs"]["proxy"]
