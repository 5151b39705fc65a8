"""Scale-out: no-op objective, 64 / 256 / 512 workers, direct PostgreSQL vs the gRPC proxy.

Each run fills one fresh study to ``--trials-per-worker`` x workers COMPLETE trials with
the real worker loop (``tests/_noop_worker.py``: leases with the production 10 s / 60 s
settings, the exactness checks) and prints trials per second (storage timestamps), the
median ask->tell time per trial (ask + lease + tell, objective excluded), the peak number
of connections PostgreSQL saw for the database (``pg_stat_activity``), lost /
duplicated trials, and the CPU time per trial of the workers, the proxy and PostgreSQL
(``/proc`` and the reaped children's rusage). ``direct``: every worker holds its own
connection (one per process, as ``benchmarks/storage_overhead.py`` measures;
PostgreSQL's default ``max_connections = 100`` caps it below 100 workers). ``proxy``:
the workers talk to one ``hpo proxy`` process (``--threads`` database connections) with
the campaign's token; each run fills one cell of the proxy's throwaway campaign (a proxy
serves its campaign's studies only).

The workers are local processes forked from one launcher after the imports
(``benchmarks/_fork_workers.py``): 512 separate interpreters would need ~15 GB and
minutes of CPU to import Optuna on this 2-core, 24 GB machine. Workers run at
``--worker-nice`` above this script (and the proxy); PostgreSQL itself runs at the
system's priority (nice 0), as its 64 backends do in the direct runs. ``--proxy-priority
0`` gives the proxy the database's priority too (both are the server side; on a cluster
the proxy job has cores of its own) -- the 2 cores are shared with other users' work.

Usage: python benchmarks/scale_out.py [--proxy 64 256 512] [--direct 64]
           [--trials-per-worker 10] [--threads 8] [--worker-nice 5] [--sleep S]
           [--stagger S] [--poll 5] [--proxy-priority K]

With ``--sleep 0`` (default) every worker asks back to back: the ask->tell time is then
the queue of N workers at the storage's capacity (N / trials per second), a capacity
figure. ``--sleep S`` gives each trial an objective of S seconds, as real trials have:
the ask->tell time is then the storage's answer at N / S trials per second offered
(``--stagger S`` spreads the workers' start over S seconds, as an array's tasks start).
PostgreSQL: role/db wsad_test/wsad_bench via deploy/postgres.sh.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from storage_overhead import measure, noop_options, postgres_url  # noqa: E402

from storage.proxy import ProxyStorage, read_address  # noqa: E402

FORK = Path(__file__).resolve().parent / "_fork_workers.py"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}


_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int, *, reaped: bool = False) -> float:
    """CPU seconds of process ``pid`` (``reaped``: plus its children it has waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0  # ended meanwhile: its time is in its parent's reaped children
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICK


def _postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process, the ended backends included (they count in
    the postmaster's reaped children)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if "(postgres)" in text:
            total += _process_cpu(int(stat.parent.name), reaped=True)
    return total


class CpuMeter:
    """CPU seconds spent during a run by the workers (this script's reaped children: the
    launcher and its forked workers), the proxy process and PostgreSQL."""

    def __init__(self, proxy_pid: int | None = None) -> None:
        self.proxy_pid = proxy_pid
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        now = {"workers": children.ru_utime + children.ru_stime}
        if self.proxy_pid is not None:
            now["proxy"] = _process_cpu(self.proxy_pid)
        return {**now, "postgres": _postgres_cpu()}

    def per_trial_ms(self, trials: int) -> dict[str, float]:
        """Milliseconds of CPU per trial by part, since the meter started."""
        end = self._now()
        return {k: 1000 * (end[k] - self.start[k]) / max(trials, 1) for k in end}


class _Child:
    """One forked worker: its exit code once the launcher has finished."""

    def __init__(self, launcher: subprocess.Popen, codes: Path, index: int) -> None:
        self.launcher, self.codes, self.index = launcher, codes, index

    def wait(self) -> int:
        if self.launcher.wait() != 0:
            raise SystemExit(f"the worker launcher failed ({self.launcher.returncode})")
        return json.loads(self.codes.read_text())[self.index]


def forked_spawn(
    nice: int,
    sleep: float = 0.0,
    poll: float = 5.0,
    stagger: float = 0.0,
    token_file: Path | None = None,
):
    def spawn(url: str, name: str, n: int, target: int, tmp: Path) -> list[_Child]:
        codes = tmp / f"{name}-codes.json"
        argv = [sys.executable, str(FORK), "--n", str(n), "--nice", str(nice)]
        argv += ["--stagger", str(stagger)]
        argv += ["--log", str(tmp / f"{name}-{{i}}.log"), "--codes", str(codes), "--"]
        argv += ["--storage", url, "--study", name]
        argv += noop_options(target, "b{i}", tmp / f"{name}-{{i}}.json", poll=poll)
        argv += ["--sleep", str(sleep)]
        argv += ["--token-file", str(token_file)] if token_file else []
        launcher = subprocess.Popen(argv, env=ENV)
        return [_Child(launcher, codes, i) for i in range(n)]

    return spawn


def start_proxy(
    url: str, tmp: Path, threads: int, priority: int | None, runs: int
) -> tuple[subprocess.Popen, str, Path, list[str]]:
    """``hpo proxy`` on a throwaway campaign whose storage is ``url`` (at nice ``priority``)
    with one cell per run: (process, proxy URL, token file, the cells' study names)."""
    from hpo.cells import campaign_cells
    from hpo.config import load_campaign
    from hpo.proxy_access import token_file

    toml = tmp / "proxy.toml"
    signals = ", ".join(str(100 * (i + 1)) for i in range(runs))
    toml.write_text(
        f'[campaign]\nname = "scale-{uuid.uuid4().hex[:8]}"\nstorage = "{url}"\n'
        f"[grid]\nsignal = [{signals}]\n"
    )
    campaign = load_campaign(toml)
    address = tmp / "proxy.json"
    argv = [sys.executable, "-m", "hpo", "proxy", str(toml), "--threads", str(threads)]
    argv += ["--address-file", str(address)]
    log = open(tmp / "proxy.log", "wb")  # noqa: SIM115 - lives as long as the proxy
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=ENV, cwd=REPO)
    if priority is not None:
        os.setpriority(os.PRIO_PROCESS, proc.pid, priority)
    end = time.monotonic() + 60
    while (proxy := read_address(address)) is None:
        if proc.poll() is not None or time.monotonic() > end:
            raise SystemExit(f"hpo proxy did not start:\n{(tmp / 'proxy.log').read_text()}")
        time.sleep(0.2)
    names = [cc.study_name for cc in campaign_cells(campaign)]
    return proc, proxy, token_file(campaign), names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxy", nargs="*", type=int, default=[64, 256, 512])
    parser.add_argument("--direct", nargs="*", type=int, default=[64])
    parser.add_argument("--trials-per-worker", type=int, default=10)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-nice", type=int, default=5)
    parser.add_argument(
        "--sleep",
        type=float,
        default=0.0,
        help="seconds each trial's objective sleeps (0: no-op, every worker asks back to "
        "back; S > 0: N workers offer about N / S trials per second)",
    )
    parser.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="seconds over which the workers start, evenly spread (0: all at once; a real "
        "array's tasks start over a while, and with trials of equal length a crowd that "
        "starts at once stays a crowd)",
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=5.0,
        help="seconds a worker waits before looking again while every trial left is taken "
        "(default: the worker's own, 5; at 0.2 s the idle workers of the last round flood "
        "the storage with looks)",
    )
    parser.add_argument(
        "--proxy-priority",
        type=int,
        default=None,
        help="nice value of the proxy (0: PostgreSQL's own; default: this script's)",
    )
    args = parser.parse_args()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = postgres_url()
    spawn = forked_spawn(args.worker_nice, args.sleep, args.poll, args.stagger)
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; objective sleeps "
        f"{args.sleep:g} s; workers start over {args.stagger:g} s; idle workers look every "
        f"{args.poll:g} s; workers at nice +{args.worker_nice}; proxy at nice "
        f"{args.proxy_priority if args.proxy_priority is not None else os.nice(0)}"
    )
    print(
        f"{'mode':6} {'workers':>7} {'trials':>6} {'trials/s':>9} {'ask->tell ms':>12} "
        f"{'peak conns':>10} {'lost':>5} {'dup':>4} {'wall s':>7}  checks",
        flush=True,
    )

    def show(mode: str, n: int, r: dict) -> None:
        ok = all(r[k] for k in ("exit_codes_ok", "exact", "unique_numbers", "same_best"))
        print(
            f"{mode:6} {n:>7} {r['complete']:>6} {r['trials_per_s']:>9.1f} "
            f"{r['median_overhead_ms']:>12.0f} {r['peak_connections']:>10} {r['lost']:>5} "
            f"{r['duplicated']:>4} {r['wall_s']:>7.0f}  {'ok' if ok else 'FAILED'} "
            f"(surplus {r['surplus']}; peak by application {r['peak_by_application']}) "
            f"{'; '.join(r['sampler_errors'])}",
            flush=True,
        )
        cpu = r["cpu_ms_per_trial"]
        parts = ", ".join(f"{part} {ms:.1f}" for part, ms in cpu.items())
        print(f"{'':6} CPU ms per trial: {parts} (total {sum(cpu.values()):.1f})", flush=True)

    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        for n in args.direct:
            target = args.trials_per_worker * n
            show("direct", n, measure(url, n, target, tmp, spawn=spawn, cpu=CpuMeter))
        if args.proxy:
            runs = len(args.proxy)
            proc, proxy, token, names = start_proxy(
                url, tmp, args.threads, args.proxy_priority, runs
            )
            proxied = forked_spawn(args.worker_nice, args.sleep, args.poll, args.stagger, token)
            client = ProxyStorage(proxy, token_file=token)  # the campaign's studies only
            try:
                for n, name in zip(args.proxy, names, strict=False):
                    target = args.trials_per_worker * n
                    meter = functools.partial(CpuMeter, proc.pid)
                    result = measure(
                        proxy,
                        n,
                        target,
                        tmp,
                        database=url,
                        spawn=proxied,
                        cpu=meter,
                        name=name,
                        storage=client,
                    )
                    show("proxy", n, result)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
                print((tmp / "proxy.log").read_text().strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
