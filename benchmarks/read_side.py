"""Read side at the paper's size: status, export, worker start-up and the dashboard.

Builds (once, kept under ``--out``) the paper's grid -- 252 studies x ``--trials`` fake
trials with the attributes our objective writes (``benchmarks/_paper_storage.py``) -- in
a journal file and in PostgreSQL, then times what a user and a worker wait for, each in
a fresh process, as wall time:

* ``hpo status`` and ``hpo export`` (8,316 files at 100 trials: 252 cells x 3 metrics x
  (best + 10 repetitions));
* ``load 1 study``: open the storage, load one study and read its trials (what any
  process needs before it can look at one cell);
* ``worker start``: ``hpo worker`` on the finished campaign, from launch to exit (it
  checks the data, loads every study, finds nothing left to do), and the same with
  ``--cell`` (one study); on PostgreSQL also through an ``hpo proxy`` (``proxy 1st``: the
  first worker, ``proxy next``: the following ones, whose finished trials the proxy has
  cached -- what each of an array's hundreds of tasks costs);
* the dashboard (``hpo dashboard``): time until ``/api/studies`` first answers (start
  and first read), then the study list and one study page (``/api/studies/<id>``), warm.

The journal gets the replay snapshot a live campaign leaves next to it
(``storage.journal_snapshot``; where the code has them).

Usage: python benchmarks/read_side.py [--backends journal postgres] [--trials 100]
           [--renewals 0] [--out benchmarks/out/read_side] [--rebuild] [--repeat 3]
``--renewals`` lease renewals per trial in the journal (a worker renews every 10 s: a
10-minute HGB trial writes ~56). PostgreSQL: role/db wsad_test/wsad_bench via
deploy/postgres.sh (the studies of each build are deleted before the next build).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO / "tests"))

from _hpo_cli import hpo  # noqa: E402
from _paper_storage import (  # noqa: E402
    build_journal,
    build_postgres,
    snapshot_journal,
    write_campaign,
)

ENV = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}

LOAD_ONE = """
import sys, time, json
t0 = time.perf_counter()
import optuna
from hpo.config import load_campaign
from hpo.studies import open_campaign_storage
c = load_campaign(sys.argv[1])
t1 = time.perf_counter()
storage = open_campaign_storage(c)
t2 = time.perf_counter()
study = optuna.load_study(study_name=sys.argv[2], storage=storage)
n = len(study.get_trials(deepcopy=False))
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "open": t2 - t1, "load": t3 - t2, "trials": n}))
"""


def postgres_url() -> str:
    done = subprocess.run(
        [str(REPO / "deploy" / "postgres.sh"), "--role", "wsad_test", "--db", "wsad_bench"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip().splitlines()[-1]


def _hpo(*args: str) -> float:
    """Wall seconds of ``python -m hpo ARGS`` (tests/_hpo_cli.py runs it)."""
    t0 = time.perf_counter()
    done = hpo(*args, timeout=1800)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"hpo {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=600) as response:
        return response.read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure_dashboard(toml: Path, repeat: int) -> dict[str, float]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "dashboard", str(toml), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
        cwd=REPO,
    )
    try:
        t0 = time.perf_counter()
        while True:
            try:
                studies = json.loads(_get(f"{base}/api/studies"))["study_summaries"]
                break
            except OSError:
                if proc.poll() is not None:
                    raise SystemExit("hpo dashboard exited") from None
                time.sleep(0.1)
        first = time.perf_counter() - t0
        listing, page = [], []
        study_id = studies[len(studies) // 2]["study_id"]
        for _ in range(repeat):
            t = time.perf_counter()
            _get(f"{base}/api/studies")
            listing.append(time.perf_counter() - t)
            t = time.perf_counter()
            _get(f"{base}/api/studies/{study_id}")
            page.append(time.perf_counter() - t)
        return {
            "dash_first": first,
            "dash_list": _median(listing),
            "dash_page": _median(page),
            "dash_studies": len(studies),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def measure(toml: Path, repeat: int) -> dict[str, float]:
    from hpo.cells import campaign_cells
    from hpo.config import load_campaign

    campaign = load_campaign(toml)
    cells = campaign_cells(campaign)
    one = cells[len(cells) // 2]
    out: dict[str, float] = {}
    out["status"] = _median([_hpo("status", str(toml)) for _ in range(repeat)])
    shutil.rmtree(campaign.run_dir / "hp", ignore_errors=True)
    out["export_first"] = _hpo("export", str(toml))
    out["export_files"] = sum(1 for _ in (campaign.run_dir / "hp").rglob("*.json"))
    out["export_again"] = _hpo("export", str(toml))
    loads = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", LOAD_ONE, str(toml), one.study_name],
            capture_output=True,
            text=True,
            env=ENV,
            check=True,
        )
        loads.append(json.loads(done.stdout.strip().splitlines()[-1]))
    out["load_open"] = _median([r["open"] for r in loads])
    out["load_one"] = _median([r["open"] + r["load"] for r in loads])
    out["worker_all"] = _median([_hpo("worker", str(toml)) for _ in range(repeat)])
    out["worker_one"] = _median(
        [_hpo("worker", str(toml), "--cell", one.key) for _ in range(repeat)]
    )
    if campaign.storage.startswith("postgresql"):
        out.update(measure_proxied_workers(toml, repeat))
    out.update(measure_dashboard(toml, repeat))
    return out


def measure_proxied_workers(toml: Path, repeat: int) -> dict[str, float]:
    from storage.proxy import read_address

    address = toml.parent / "proxy.json"
    address.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "proxy", str(toml), "--address-file", str(address)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
        cwd=REPO,
    )
    try:
        while (url := read_address(address)) is None:
            if proc.poll() is not None:
                raise SystemExit("hpo proxy exited")
            time.sleep(0.2)
        first = _hpo("worker", str(toml), "--proxy", url)
        later = [_hpo("worker", str(toml), "--proxy", url) for _ in range(repeat)]
        return {"proxy_first": first, "proxy_next": _median(later)}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def build(backend: str, folder: Path, trials: int, renewals: int, rebuild: bool) -> Path:
    """The campaign file of this backend's storage, built unless it already is."""
    from hpo.config import load_campaign

    marker = folder / "built.json"
    if marker.exists() and not rebuild:
        journal = folder / "run" / "optuna.journal"
        if backend == "journal" and not Path(f"{journal}.snapshot").exists():
            snapshot_journal(journal)
        return folder / "campaign.toml"
    shutil.rmtree(folder, ignore_errors=True)
    name = f"paper{trials}r{renewals}" if backend == "journal" else f"paperpg{trials}"
    storage = "journal:optuna.journal" if backend == "journal" else postgres_url()
    toml = write_campaign(folder, name, storage, trials)
    campaign = load_campaign(toml)
    t0 = time.perf_counter()
    if backend == "journal":
        path = campaign.run_dir / "optuna.journal"
        records = build_journal(campaign, path, renewals=renewals)
        size = path.stat().st_size
        snapshot_journal(path)
    else:
        _delete_campaign_studies(storage, name)
        records = build_postgres(campaign, storage)
        size = 0
    _hpo("create", str(toml))  # synthetic data and templates, as after a real `hpo create`
    info = {"records": records, "bytes": size, "build_s": time.perf_counter() - t0}
    marker.write_text(json.dumps(info))
    return toml


def _delete_campaign_studies(url: str, name: str) -> None:
    import optuna

    from storage.urls import open_storage

    storage = open_storage(url)
    for study in storage.get_all_studies():
        if study.study_name.startswith(f"{name}."):
            optuna.delete_study(study_name=study.study_name, storage=storage)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["journal", "postgres"])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--renewals", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "read_side")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    cols = [
        ("status", "status"),
        ("export_first", "export"),
        ("export_again", "re-export"),
        ("load_one", "load 1 study"),
        ("worker_all", "worker start"),
        ("worker_one", "worker --cell"),
        ("proxy_first", "proxy 1st"),
        ("proxy_next", "proxy next"),
        ("dash_first", "dash 1st"),
        ("dash_list", "dash list"),
        ("dash_page", "dash page"),
    ]
    print(f"{'backend':9} {'size':>8} " + " ".join(f"{c[1]:>13}" for c in cols), flush=True)
    for backend in args.backends:
        sub = f"journal-{args.trials}-r{args.renewals}" if backend == "journal" else "postgres"
        folder = args.out / f"{sub}-{args.trials}" if backend != "journal" else args.out / sub
        toml = build(backend, folder, args.trials, args.renewals, args.rebuild)
        info = json.loads((folder / "built.json").read_text())
        r = measure(toml, args.repeat)
        size = f"{info['bytes'] / 1e6:.0f} MB" if info["bytes"] else "-"
        print(
            f"{backend:9} {size:>8} "
            + " ".join(f"{r[key]:>12.2f}s" if key in r else f"{'-':>13}" for key, _ in cols)
            + f"   ({int(r['export_files'])} files, {int(r['dash_studies'])} studies, "
            f"{info['records']} records built in {info['build_s']:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
