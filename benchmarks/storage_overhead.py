"""Storage overhead of the worker loop: no-op objective, N concurrent worker processes.

For each backend (journal file, PostgreSQL) and each worker count, one study is filled
to a target of COMPLETE trials by N processes of ``tests/_noop_worker.py``. Printed:
trials per second (storage timestamps, first start to last completion), the median
ask->tell overhead per trial (ask + lease + attribute writes + tell, objective
excluded), the peak number of PostgreSQL connections of the database during the run,
and the checks that nothing was lost or duplicated.

Usage: python benchmarks/storage_overhead.py [--backends journal postgres]
           [--workers 1 8 32] [--trials-per-worker 10] [--min-trials 100]
PostgreSQL is started with deploy/postgres.sh (role/db wsad_test/wsad_bench).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import optuna
from optuna.trial import TrialState

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage.urls import open_storage  # noqa: E402
from workers.proc import run  # noqa: E402

NOOP = REPO / "tests" / "_noop_worker.py"


def postgres_url() -> str:
    script = REPO / "deploy" / "postgres.sh"
    done = run([str(script), "--role", "wsad_test", "--db", "wsad_bench"], timeout=120)
    return done.stdout.strip().splitlines()[-1]


class ConnectionSampler(threading.Thread):
    """Polls pg_stat_activity for the database's connection count (own one excluded)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        import sqlalchemy

        # AUTOCOMMIT: pg_stat_activity is snapshotted once per transaction otherwise.
        self.engine = sqlalchemy.create_engine(
            url, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT"
        )
        self.db = url.rsplit("/", 1)[-1]
        self.peak = 0
        self.peak_by_application: dict[str, int] = {}
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import sqlalchemy

        query = sqlalchemy.text(
            "SELECT application_name, count(*) FROM pg_stat_activity "
            "WHERE datname = :db AND pid <> pg_backend_pid() GROUP BY application_name"
        )
        while not self.stop.is_set():
            try:  # a fresh short connection per sample: survives server hiccups
                with self.engine.connect() as connection:
                    rows = connection.execute(query, {"db": self.db}).all()
                self.peak = max(self.peak, sum(int(n) for _, n in rows))
                for name, n in rows:
                    old = self.peak_by_application.get(name, 0)
                    self.peak_by_application[name] = max(old, int(n))
            except sqlalchemy.exc.SQLAlchemyError as exc:
                self.errors.append(str(exc).splitlines()[0])
            time.sleep(0.2)


def spawn_noop_workers(
    url: str, name: str, n_workers: int, target: int, tmp: Path
) -> list[subprocess.Popen]:
    """``n_workers`` processes of ``tests/_noop_worker.py`` on study ``name``."""
    procs = []
    for i in range(n_workers):
        argv = [sys.executable, str(NOOP), "--storage", url, "--study", name]
        argv += noop_options(target, f"b{i}", tmp / f"{name}-{i}.json")
        with open(tmp / f"{name}-{i}.log", "wb") as log:
            procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
    return procs


def noop_options(target: int, worker_id: str, summary: Path, poll: float = 0.2) -> list[str]:
    """The no-op worker's options: target, id, ``poll`` (seconds between looks while every
    trial is taken), production lease settings, summary."""
    argv = ["--target", str(target), "--worker-id", worker_id, "--poll", str(poll)]
    argv += ["--lease-interval", "10", "--lease-expiry", "60"]  # the production defaults
    return [*argv, "--summary", str(summary)]


def measure(
    url: str,
    n_workers: int,
    target: int,
    tmp: Path,
    *,
    database: str | None = None,
    spawn=spawn_noop_workers,
    cpu=None,
    name: str | None = None,
    storage=None,
) -> dict:
    """Fill one fresh study on ``url`` to ``target`` COMPLETE trials with ``n_workers``.

    ``database``: the PostgreSQL URL whose connections are counted (default: ``url``
    itself when it is one); ``spawn(url, name, n, target, tmp)`` starts the workers and
    returns objects with ``wait()``; ``cpu()`` (optional) starts a meter whose
    ``per_trial_ms(trials)``, read once the workers are done, goes into the result.
    ``name`` / ``storage``: the study (default a fresh name) and how this process reaches
    ``url`` (default ``open_storage(url)``; a proxy client with its token).
    """
    storage = storage or open_storage(url)
    name = name or f"bench-{uuid.uuid4().hex[:8]}"
    optuna.create_study(study_name=name, storage=storage, direction="maximize")
    database = database or (url if url.startswith("postgresql") else None)
    sampler = ConnectionSampler(database) if database else None
    if sampler is not None:
        sampler.start()
    meter = cpu() if cpu is not None else None
    t0 = time.perf_counter()
    procs = spawn(url, name, n_workers, target, tmp)
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t0
    cpu_ms = meter.per_trial_ms(target) if meter is not None else {}
    if sampler is not None:
        sampler.stop.set()
        sampler.join()
    for i, code in enumerate(codes):
        if code != 0:
            tail = (tmp / f"{name}-{i}.log").read_text().strip().splitlines()[-3:]
            raise SystemExit(f"worker {i} of {n_workers} exited with {code}: {tail}")
    summaries = [json.loads((tmp / f"{name}-{i}.json").read_text()) for i in range(n_workers)]
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    numbers = [t.number for t in trials]
    params = [t.params["x"] for t in complete]
    span = (
        max(t.datetime_complete for t in complete) - min(t.datetime_start for t in complete)
    ).total_seconds()
    overheads = [s for summary in summaries for s in summary["overhead_s"]]
    return {
        "workers": n_workers,
        "target": target,
        "exit_codes_ok": codes == [0] * n_workers,
        "complete": len(complete),
        "lost": max(0, target - len(complete)),
        "duplicated": max(0, len(complete) - target) + len(params) - len(set(params)),
        "exact": len(complete) == target and sum(s["completed"] for s in summaries) == target,
        "unique_numbers": len(numbers) == len(set(numbers)),
        "same_best": len({tuple(s["best"]) for s in summaries}) == 1,
        "surplus": sum(s["surplus"] for s in summaries),
        "trials_per_s": len(complete) / span if span > 0 else float("nan"),
        "median_overhead_ms": 1000 * statistics.median(overheads),
        "wall_s": wall,
        "peak_connections": sampler.peak if sampler is not None else None,
        "peak_by_application": sampler.peak_by_application if sampler is not None else {},
        "sampler_errors": sorted(set(sampler.errors)) if sampler is not None else [],
        "cpu_ms_per_trial": cpu_ms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["journal", "postgres"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--trials-per-worker", type=int, default=10)
    parser.add_argument("--min-trials", type=int, default=100)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    header = (
        f"{'backend':9} {'workers':>7} {'trials':>6} {'trials/s':>9} {'overhead ms':>11} "
        f"{'peak conns':>10} {'wall s':>7}  checks"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        for backend in args.backends:
            url = f"journal://{tmp}/{uuid.uuid4().hex}.journal"
            if backend == "postgres":
                url = postgres_url()
            for n in args.workers:
                target = max(args.min_trials, args.trials_per_worker * n)
                r = measure(url, n, target, tmp)
                checks = (
                    "ok"
                    if all(r[k] for k in ("exit_codes_ok", "exact", "unique_numbers", "same_best"))
                    else f"FAILED {r}"
                )
                conns = "-" if r["peak_connections"] is None else str(r["peak_connections"])
                print(
                    f"{backend:9} {n:>7} {r['complete']:>6} {r['trials_per_s']:>9.1f} "
                    f"{r['median_overhead_ms']:>11.1f} {conns:>10} {r['wall_s']:>7.1f}  "
                    f"{checks} (surplus {r['surplus']}) {'; '.join(r['sampler_errors'])}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
