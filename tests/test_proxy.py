"""The gRPC storage proxy (storage/proxy.py, hpo proxy): URLs, exact counts through it, a
proxy that dies, hangs or loses its database, and the connections it holds.

Worker processes are ``tests/_noop_worker.py`` (the real worker loop, a sleeping
objective); the proxy runs in-process (``start_proxy``) or as ``python -m hpo proxy``.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from _hpo_cli import REPO, hpo
from _storage_fixtures import delete_quietly, unique_name
from optuna.exceptions import StorageInternalError
from optuna.storages import InMemoryStorage
from optuna.trial import TrialState

from storage.addresses import check_url, grpc_address
from storage.counts import trial_counts
from storage.errors import StorageError
from storage.leases import FAIL_REASON, REQUEUED_FROM, WITHDRAWN
from storage.proxy import (
    APPLICATION_NAME,
    ProxyStorage,
    probe,
    read_address,
    serve_backend,
    start_proxy,
)

NOOP = REPO / "tests" / "_noop_worker.py"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}


def _until(condition, timeout: float, what: str, show=lambda: ""):
    end = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{show()}")
        time.sleep(0.2)
    return value


def _worker(tmp: Path, study: str, i: int, target: int, *where: str, **opts) -> subprocess.Popen:
    argv = [sys.executable, str(NOOP), *where, "--study", study, "--target", str(target)]
    argv += ["--worker-id", f"w{i}", "--summary", str(tmp / f"w{i}.json")]
    for key, value in opts.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    log = open(tmp / f"w{i}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=ENV)


def _logs(tmp: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(tmp.glob("w*.log")))


def _proxy_connections(url: str, name: str) -> int:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
        return int(connection.execute(sqlalchemy.text(query), {"name": name}).scalar())


def _check_exact(study: optuna.Study, target: int) -> list[optuna.trial.FrozenTrial]:
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == target, {s.name: sum(t.state == s for t in trials) for s in TrialState}
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    params = [t.params["x"] for t in done]
    assert len(set(params)) == len(params), "the same parameters completed twice"
    return trials


# ----------------------------------------------------------------------------- URLs
def test_grpc_urls_follow_the_one_storage_url_rule() -> None:
    assert check_url("grpc://node17.cluster:13000") == "grpc"
    assert grpc_address("grpc://node17.cluster:13000") == ("node17.cluster", 13000)
    for bad, words in [
        ("grpc://node17", "host and port"),
        ("grpc://node17:0", "host and port"),
        ("grpc://node17:70000", "host and port"),
        ("grpc://node17:13000/wsad", "no path"),
        ("grpc://wsad:s3cret@node17:13000", "no user or password"),
        ("grpc:node17:13000", "expected 'grpc://host:port'"),
    ]:
        with pytest.raises(StorageError, match=words) as info:
            check_url(bad)
        assert "s3cret" not in str(info.value)


def test_campaign_proxy_field_is_checked_before_anything_runs(tmp_path) -> None:
    base = '[campaign]\nname = "p"\nstorage = "{storage}"\n[slurm]\nproxy = "{proxy}"\n'
    cases = [
        ("journal:optuna.journal", "job", "slurm.proxy: 'job' proxies a PostgreSQL storage"),
        ("journal:optuna.journal", "grpc://login1", "slurm.proxy: must be 'none', 'job'"),
        ("journal:optuna.journal", "proxy", "slurm.proxy: must be 'none', 'job'"),
    ]
    for storage, proxy, message in cases:
        path = tmp_path / "c.toml"
        path.write_text(base.format(storage=storage, proxy=proxy))
        done = hpo("validate", str(path))
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"hpo: error: {path}: {message}"), done.stderr
        assert "Traceback" not in done.stderr
    path.write_text(base.format(storage="journal:optuna.journal", proxy="grpc://login1:13000"))
    assert hpo("validate", str(path)).returncode == 0


# ----------------------------------------------------------------------------- failures
class _DatabaseDown(InMemoryStorage):
    def get_all_studies(self):
        raise StorageInternalError("connection to server at 10.0.0.5 refused")


def test_a_database_error_behind_the_proxy_reaches_the_worker_as_an_outage() -> None:
    server = serve_backend(_DatabaseDown(), host="127.0.0.1", port=0, threads=1)
    try:
        client = ProxyStorage(server.url, timeout=5)
        with pytest.raises(StorageInternalError, match="UNAVAILABLE: database: connection"):
            client.get_all_studies()
        assert server.storage_errors == (1, "connection to server at 10.0.0.5 refused")
        with pytest.raises(KeyError):  # an ordinary answer is not an outage
            client.get_study_id_from_name("no-such-study")
    finally:
        server.stop()


def test_an_unreachable_proxy_is_one_line(tmp_path) -> None:
    closed = serve_backend(InMemoryStorage(), host="127.0.0.1", port=0, threads=1)
    closed.stop()
    with pytest.raises(StorageError, match=r"not answering after 1 s; is the proxy running"):
        ProxyStorage(closed.url).wait_ready(1.0)
    assert probe(closed.url, timeout=1) is not None
    with pytest.raises(StorageError, match="no proxy has written its address yet"):
        ProxyStorage(address_file=tmp_path / "proxy.json").wait_ready(1.0)


# ----------------------------------------------------------------------------- PostgreSQL
@pytest.mark.postgres
def test_many_workers_fill_a_study_exactly_on_two_connections(postgres_url, tmp_path) -> None:
    name = unique_name("proxy")
    application = f"{APPLICATION_NAME}:{name}"
    server = start_proxy(postgres_url, threads=2, application_name=application)
    storage = ProxyStorage(server.url)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    try:
        target, peak = 60, 0
        procs = [
            _worker(tmp_path, name, i, target, "--storage", server.url, sleep=0.05)
            for i in range(12)
        ]
        while any(p.poll() is None for p in procs):
            peak = max(peak, _proxy_connections(postgres_url, application))
            time.sleep(0.3)
        assert [p.returncode for p in procs] == [0] * 12, _logs(tmp_path)
        _check_exact(study, target)
        summaries = [json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(12)]
        assert sum(s["completed"] for s in summaries) == target
        assert 1 <= peak <= 2, f"the proxy held {peak} connections with 2 threads"
        assert server.requests > 10 * target
        by_method = server.requests_by_method
        assert by_method["CreateNewTrial"] >= target
        assert by_method["Count"] >= 2 * target  # the worker's exactness checks, our method
    finally:
        server.stop()
        delete_quietly(optuna.storages.RDBStorage(postgres_url), name)


def _token(toml: Path) -> Path:
    """The campaign's proxy token file (``hpo proxy`` writes it when missing)."""
    from hpo.config import load_campaign
    from hpo.proxy_access import token_file

    return token_file(load_campaign(toml))


def _start_hpo_proxy(
    toml: Path, address: Path, log: Path, previous: str | None = None
) -> subprocess.Popen:
    argv = [sys.executable, "-m", "hpo", "proxy", str(toml), "--address-file", str(address)]
    proc = subprocess.Popen(
        [*argv, "--threads", "2"],
        stdout=open(log, "ab"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        env=ENV,
        cwd=REPO,
    )
    _until(
        lambda: read_address(address) not in (None, previous),
        60,
        "the proxy's address",
        log.read_text,
    )
    return proc


@pytest.mark.postgres
@pytest.mark.slow
def test_workers_wait_out_a_killed_proxy_and_follow_its_successor(postgres_url, tmp_path) -> None:
    """SIGKILL the proxy mid-trial: workers keep waiting, then continue through a new
    proxy on another port (same address file); counts exact, cut trials re-run."""
    from hpo.cells import campaign_cells
    from hpo.config import load_campaign

    toml = tmp_path / "c.toml"
    campaign = unique_name("proxy-kill")
    toml.write_text(f'[campaign]\nname = "{campaign}"\nstorage = "{postgres_url}"\n')
    address, proxy_log = tmp_path / "proxy.json", tmp_path / "proxy.log"
    first = _start_hpo_proxy(toml, address, proxy_log)
    url = read_address(address)
    storage = optuna.storages.RDBStorage(postgres_url)
    name = campaign_cells(load_campaign(toml))[0].study_name  # the proxy serves its own only
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    procs, second = [], None
    try:
        target = 24
        where = ("--proxy-file", address, "--token-file", _token(toml))
        procs = [_worker(tmp_path, name, i, target, *where, sleep=1.0) for i in range(3)]
        _until(
            lambda: len(study.get_trials(states=(TrialState.COMPLETE,))) >= 3,
            120,
            "three complete trials",
            lambda: _logs(tmp_path),
        )
        first.send_signal(signal.SIGKILL)  # a node lost: no goodbye, the address file stays
        first.wait(timeout=30)
        assert read_address(address) == url
        _until(
            lambda: _logs(tmp_path).count("unreachable") >= 3,
            60,
            "every worker to notice the dead proxy",
            lambda: _logs(tmp_path),
        )
        assert all(p.poll() is None for p in procs), "a worker died with its proxy"
        time.sleep(3)  # workers are waiting it out
        second = _start_hpo_proxy(toml, address, proxy_log, previous=url)
        codes = [p.wait(timeout=240) for p in procs]
        assert codes == [0, 0, 0], _logs(tmp_path)
        assert "storage proxy moved from" in _logs(tmp_path)
        trials = _check_exact(study, target)
        live = [t for t in trials if t.system_attrs.get(FAIL_REASON) != WITHDRAWN]
        cut = [t for t in live if t.state == TrialState.FAIL and FAIL_REASON in t.system_attrs]
        assert cut, "no trial was in flight when the proxy died"
        by_source = {t.user_attrs.get(REQUEUED_FROM): t for t in live}
        for t in cut:  # re-queued with what it had (then run, or found surplus)
            had = {**t.system_attrs.get("fixed_params", {}), **t.params}
            again = by_source[t.number]
            assert again.system_attrs["fixed_params"] == had
            if again.state == TrialState.COMPLETE:
                assert {k: again.params[k] for k in had} == had
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 128 + signal.SIGTERM
        assert not address.exists(), "a stopped proxy leaves no address behind"
        assert "proxy stopping: stopped by SIGTERM" in proxy_log.read_text()
    finally:
        for p in [*procs, first, *([second] if second else [])]:  # no proxy outlives the test
            if p.poll() is None:
                p.kill()
        delete_quietly(storage, name)


@pytest.mark.postgres
def test_a_hung_proxy_is_a_timeout_then_recovers(postgres_url, tmp_path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(f'[campaign]\nname = "px"\nstorage = "{postgres_url}"\n')
    address, log = tmp_path / "proxy.json", tmp_path / "proxy.log"
    proc = _start_hpo_proxy(toml, address, log)
    try:
        client = ProxyStorage(address_file=address, timeout=2.0, token_file=_token(toml))
        client.wait_ready(30)
        proc.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        with pytest.raises(StorageInternalError, match="DEADLINE_EXCEEDED"):
            client.get_all_studies()
        assert time.monotonic() - t0 < 10
        proc.send_signal(signal.SIGCONT)
        client.get_all_studies()
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.postgres
def test_hpo_worker_without_its_proxy_is_one_line(postgres_url, tmp_path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(f'[campaign]\nname = "px"\nstorage = "{postgres_url}"\n')
    missing = tmp_path / "proxy.json"
    done = hpo("worker", str(toml), "--proxy-file", str(missing), "--storage-patience", "2")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"hpo: error: storage proxy in {missing} (no proxy has written its address yet): "
        "not answering after 2 s; is the proxy running (`hpo status` shows its job, "
        "`hpo proxy` starts one)?"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.postgres
def test_launch_puts_the_proxy_first_and_no_password_in_any_script(
    postgres_url, tmp_path, monkeypatch
) -> None:
    from _chain_fixture import write_campaign

    monkeypatch.setenv("PGPASSWORD", "not-in-any-script-7c1e")
    toml = write_campaign(
        tmp_path, "dry", postgres_url, array_size=40, array_parallel=8, slurm_more='proxy = "job"'
    )
    done = hpo("launch", str(toml), "--dry-run")
    assert done.returncode == 0, done.stderr
    out, folder = done.stdout, tmp_path / "run" / "slurm"
    address = folder / "proxy.json"
    assert out.index("proxy.sbatch") < out.index("worker.sbatch")  # submitted first
    assert f"$ sbatch --parsable {folder / 'proxy.sbatch'}" in out
    assert (
        "$ sbatch --parsable '--dependency=after:<proxy>' --kill-on-invalid-dep=yes "
        f"{folder / 'worker.sbatch'}"
    ) in out
    proxy, worker = (folder / "proxy.sbatch").read_text(), (folder / "worker.sbatch").read_text()
    token = folder / "proxy.token"
    assert (
        f"-m hpo proxy --host 0.0.0.0 --expose --address-file {address} --token-file {token} "
        "--until-workers-end"
    ) in proxy
    assert "#SBATCH --time=60" in proxy  # 10 min x 5 waves + 10
    assert "--array" not in proxy
    assert f"-m hpo worker --proxy-file {address} --token-file {token} {toml}" in worker
    assert not token.exists()  # a dry run writes no token
    assert "unset PGPASSWORD" in worker and "unset PGPASSWORD" not in proxy
    assert "not-in-any-script" not in out
    for script in folder.glob("*.sbatch"):
        assert "not-in-any-script" not in script.read_text()


@pytest.mark.postgres
def test_finished_trials_are_read_from_the_database_once(postgres_url, monkeypatch) -> None:
    """A second worker starting on a study gets its finished trials from the proxy's cache;
    what changed since (a new trial, a finished one) is read from the database."""
    import storage.proxy

    monkeypatch.setattr(storage.proxy, "FRESH", 0.0)  # running trials: always re-read
    server = start_proxy(postgres_url, threads=2)
    storage = optuna.storages.RDBStorage(postgres_url)
    name = unique_name("proxy-cache")
    study = optuna.create_study(study_name=name, storage=storage)
    try:
        for i in range(20):
            study.add_trial(
                optuna.trial.create_trial(
                    params={"x": i / 20},
                    distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                    value=float(i),
                    user_attrs={"argos": i},
                )
            )
        running = study.ask()
        first = ProxyStorage(server.url)
        sid = first.get_study_id_from_name(name)
        expected = first.get_all_trials(sid)
        assert len(expected) == 21 and server.trials_loaded == 21
        second = ProxyStorage(server.url)
        assert second.get_all_trials(sid) == expected
        assert server.trials_loaded == 21 + 1  # only the RUNNING one again
        study.tell(running, 0.5)
        study.add_trial(optuna.trial.create_trial(value=1.0))
        assert [t.state for t in second.get_all_trials(sid)[-2:]] == [TrialState.COMPLETE] * 2
        assert server.trials_loaded == 22 + 2
        third = ProxyStorage(server.url)
        assert third.get_all_trials(sid) == second.get_all_trials(sid)
        assert server.trials_loaded == 24
        with pytest.raises(KeyError):
            third.get_all_trials(sid + 10_000)
    finally:
        server.stop()
        delete_quietly(storage, name)


@pytest.mark.postgres
def test_rereading_an_early_running_trial_loads_only_that_trial(postgres_url, monkeypatch):
    """Optuna's loader would also reload every trial above the one asked for: with one
    early trial still running, each read would reload the whole study's newer trials."""
    import storage.proxy

    monkeypatch.setattr(storage.proxy, "FRESH", 0.0)
    server = start_proxy(postgres_url, threads=2)
    storage = optuna.storages.RDBStorage(postgres_url)
    name = unique_name("proxy-early")
    study = optuna.create_study(study_name=name, storage=storage)
    try:
        study.ask()  # the lowest id stays RUNNING
        for i in range(20):
            study.add_trial(optuna.trial.create_trial(value=float(i)))
        worker = ProxyStorage(server.url)
        sid = worker.get_study_id_from_name(name)
        assert len(worker.get_all_trials(sid)) == 21 and server.trials_loaded == 21
        for _ in range(3):
            assert worker.get_all_trials(sid)[0].state == TrialState.RUNNING
        assert server.trials_loaded == 21 + 3
    finally:
        server.stop()
        delete_quietly(storage, name)


@pytest.mark.postgres
def test_recent_reads_reuse_the_last_read_only_inside_and_only_briefly(
    postgres_url, monkeypatch
) -> None:
    import storage.proxy

    server = start_proxy(postgres_url, threads=2)
    rdb = optuna.storages.RDBStorage(postgres_url)
    name = unique_name("proxy-recent")
    study = optuna.create_study(study_name=name, storage=rdb)
    try:
        worker = ProxyStorage(server.url)
        sid = worker.get_study_id_from_name(name)
        with worker.recent_reads():
            assert worker.get_all_trials(sid) == []  # nothing read yet: asks the proxy
        study.add_trial(optuna.trial.create_trial(value=1.0))
        requests = server.requests
        with worker.recent_reads():
            assert worker.get_all_trials(sid) == []  # the read a moment ago, again
        assert server.requests == requests
        assert len(worker.get_all_trials(sid)) == 1  # outside: always the storage's view
        study.add_trial(optuna.trial.create_trial(value=2.0))
        monkeypatch.setattr(storage.proxy, "RECENT", 0.0)
        with worker.recent_reads():
            assert len(worker.get_all_trials(sid, states=(TrialState.COMPLETE,))) == 2
        copy = pickle.loads(pickle.dumps(worker))  # e.g. a study sent to a subprocess
        with copy.recent_reads():
            assert len(copy.get_all_trials(sid)) == 2
        copy.close()
    finally:
        server.stop()
        delete_quietly(rdb, name)


@pytest.mark.postgres
def test_a_running_trial_is_shared_briefly_and_never_hides_a_write(
    postgres_url, monkeypatch
) -> None:
    import storage.proxy

    monkeypatch.setattr(storage.proxy, "FRESH", 3600.0)  # "briefly": as long as the test
    server = start_proxy(postgres_url, threads=2)
    name = unique_name("proxy-fresh")
    rdb = optuna.storages.RDBStorage(postgres_url)
    try:
        workers = [ProxyStorage(server.url) for _ in range(3)]
        study = optuna.create_study(study_name=name, storage=workers[0])
        trial = study.ask()
        sid = study._study_id
        assert workers[1].get_all_trials(sid)[0].state == TrialState.RUNNING
        loaded = server.trials_loaded
        assert workers[2].get_all_trials(sid)[0].state == TrialState.RUNNING
        assert server.trials_loaded == loaded  # the second worker got the copy
        # a write through the proxy: no copy read before it is served any more
        workers[0].set_trial_user_attr(trial._trial_id, "argos", 0.7)
        seen = workers[2].get_all_trials(sid)[0]
        assert seen.user_attrs == {"argos": 0.7} and server.trials_loaded == loaded + 1
        # a write behind the proxy's back is seen once the copy is older than FRESH
        rdb.set_trial_user_attr(trial._trial_id, "bce", 0.69)
        assert "bce" not in workers[1].get_all_trials(sid)[0].user_attrs
        monkeypatch.setattr(storage.proxy, "FRESH", 0.0)
        assert workers[1].get_all_trials(sid)[0].user_attrs["bce"] == 0.69
        study.tell(trial, 1.0)
        assert [t.state for t in workers[2].get_all_trials(sid)] == [TrialState.COMPLETE]
    finally:
        server.stop()
        delete_quietly(rdb, name)


@pytest.mark.postgres
def test_the_database_counts_the_trials_for_the_exactness_checks(postgres_url, monkeypatch):
    """Through the proxy and on PostgreSQL directly, the count by state equals a read of the
    trials; Optuna's look for WAITING trials reads no trial while the count shows none."""
    import storage.proxy

    monkeypatch.setattr(storage.proxy, "FRESH", 0.0)  # a read of a running trial loads it
    server = start_proxy(postgres_url, threads=2)
    rdb = optuna.storages.RDBStorage(postgres_url)
    name = unique_name("proxy-count")
    study = optuna.create_study(study_name=name, storage=rdb)
    memory = serve_backend(InMemoryStorage(), host="127.0.0.1", port=0, threads=1)
    try:
        worker = ProxyStorage(server.url)
        sid = worker.get_study_id_from_name(name)
        study.ask()  # number 0: RUNNING
        for i in range(5):
            study.add_trial(optuna.trial.create_trial(value=float(i)))
        study.enqueue_trial({"x": 0.5})  # number 6: WAITING
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
        direct = optuna.load_study(study_name=name, storage=rdb)._storage  # Optuna's wrapper
        for below in (None, 0, 3, 6, 7, 100):
            seen = [t.state for t in study.get_trials() if below is None or t.number < below]
            expected = {state: seen.count(state) for state in TrialState}
            assert trial_counts(worker, sid, below) == expected, below
            assert trial_counts(direct, sid, below) == expected, below
        copy = pickle.loads(pickle.dumps(worker))  # a study sent to a subprocess counts too
        assert trial_counts(copy, sid) == trial_counts(direct, sid)
        copy.close()
        assert [t.number for t in worker.get_all_trials(sid, states=(TrialState.WAITING,))] == [6]
        waiting = study.get_trials(states=(TrialState.WAITING,))[0]
        assert rdb.set_trial_state_values(waiting._trial_id, TrialState.RUNNING)  # taken
        loaded = server.trials_loaded
        assert worker.get_all_trials(sid, states=(TrialState.WAITING,)) == []
        assert server.trials_loaded == loaded  # one count, no trial read
        assert len(worker.get_all_trials(sid, states=(TrialState.RUNNING,))) == 2
        assert server.trials_loaded == loaded + 2
        # inside recent_reads the pick's count a moment ago answers the WAITING look
        assert trial_counts(worker, sid)[TrialState.WAITING] == 0
        requests = server.requests
        with worker.recent_reads():
            assert worker.get_all_trials(sid, states=(TrialState.WAITING,)) == []
        assert server.requests == requests
        study.enqueue_trial({"x": 0.25})
        assert len(worker.get_all_trials(sid, states=(TrialState.WAITING,))) == 1  # outside
        requests = server.requests  # a read of finished trials (a sampler's): no count first
        assert len(worker.get_all_trials(sid, states=(TrialState.COMPLETE,))) == 5
        assert server.requests == requests + 1
        with pytest.raises(KeyError):
            trial_counts(worker, sid + 10_000)
        # storages that cannot count: the caller reads the trials instead
        assert trial_counts(InMemoryStorage(), 0) is None
        assert trial_counts(ProxyStorage(memory.url), 0) is None
    finally:
        server.stop()
        memory.stop()
        delete_quietly(rdb, name)


_THREADS = """
import os, re, signal
from storage.proxy import ProxyStorage

def threads():
    found = {}
    for tid in os.listdir("/proc/self/task"):
        status = open(f"/proc/self/task/{tid}/status").read()
        found[tid] = int(re.search(r"SigBlk:\\s*([0-9a-f]+)", status).group(1), 16)
    return found

before = threads()
ProxyStorage("grpc://127.0.0.1:1", timeout=1)
stop = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
new = [all(m >> (s - 1) & 1 for s in stop) for t, m in threads().items() if t not in before]
print(len(new), sum(new))
"""


def test_grpc_threads_of_a_worker_take_no_stop_signals() -> None:
    """Threads gRPC starts for the worker's channel block the stop signals, so the kernel
    gives them to the main thread, where the handler interrupts the objective."""
    done = subprocess.run(
        [sys.executable, "-c", _THREADS], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert done.returncode == 0, done.stderr
    started, deaf = map(int, done.stdout.split())
    assert started > 0 and deaf == started, done.stdout
