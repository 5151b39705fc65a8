"""The sliding-window bump hunt on synthetic data: significance per window, delta_sys, cost.

Nine windows x 5 folds, HGB with default (final) hyperparameters, background only
and two signal amounts; the cut and count at eps_B = 1e-2, 1e-3, 1e-4 with
delta_sys = "closure" (measured on the N = 0 scan), beside the same cut and count
with the exact likelihood ratio as the score on the same data folds (the limit).
Prints the median significance (16-84 % over runs) per window at ``--eps-b``,
delta_sys per eps_B next to the published IAD values of seed 001 (-0.007 / 0.012 /
0.046), the cost of one (window, fold, run) unit and of the scan. CATHODE uses the
exact background template (``background_model = "truth"``).

Reduced to fit a shared 2-core machine (the reference: full size, ensemble of 50,
10 runs; the issue's reduced setting: full size, ensemble 10, 3 runs, ~3 h of
training on an idle machine, 10x more under the load of four engineers): by default
``--scale 0.1``, ``--ensemble 5``, ``--runs 2``, and the signal amounts scaled by
sqrt(scale), ``N = 158, 316`` at scale 0.1: the S/sqrt(B) of N = 500, 1000 on the
full set (so a perfect cut and count is about as significant), at sqrt(10) times
its S/B but with a tenth of its events to learn from. Resumable: the campaign lives in
``benchmarks/out/bumphunt/<mode>-s<scale>-k<ensemble>-w<windows>/`` and finished
units are skipped, so a scan can be spread over sessions (or ``--runs`` raised).

Usage::

    python benchmarks/bumphunt_scan.py --mode IAD              # scale 0.1, ensemble 5, 2 runs
    python benchmarks/bumphunt_scan.py --mode CWoLa
    python benchmarks/bumphunt_scan.py --mode IAD --scale 1 --ensemble 10 --runs 3   # the issue's
    python benchmarks/bumphunt_scan.py --mode IAD --windows 4,5,6 --runs 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from _common import OUT

#: Published delta_sys of IAD at eps_B = 1e-2, 1e-3, 1e-4 (seed 001's reference).
PUBLISHED_IAD = {1e-2: -0.007, 1e-3: 0.012, 1e-4: 0.046}

CAMPAIGN = """\
[campaign]
name = "bumphunt-{mode}"
run_dir = "run"
seed = 0

[data]
source = "synthetic"
scale = {scale}
seed = 0
background_model = "truth"

[grid]
classifiers = ["HGB"]
modes = ["{mode}"]
signal = {signal}
windows = {windows}

[search]
n_trials = 1
repetitions = 1
n_jobs = {n_jobs}

[search.fixed.HGB]
n_ensemble = {ensemble}

[bumphunt]
folds = 5
eps_b = [1e-2, 1e-3, 1e-4]
runs = {runs}
hp = ["default"]
delta_sys = "closure"
"""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mode", default="IAD", choices=["IAD", "CWoLa", "CATHODE"])
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--ensemble", type=int, default=5)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--signal", default=None, help="default: 0 and 500, 1000 x sqrt(scale)")
    ap.add_argument("--windows", default="1,2,3,4,5,6,7,8,9")
    ap.add_argument("--eps-b", type=float, default=1e-3, help="the table's efficiency")
    ap.add_argument("--n-jobs", type=int, default=1, help="threads per fit (1 on a busy machine)")
    args = ap.parse_args()
    scale = args.scale
    if args.signal is None:
        args.signal = f"0,{round(500 * scale**0.5)},{round(1000 * scale**0.5)}"

    from hpo.bumphunt import run_tasks, tasks
    from hpo.bumphunt_combine import combine, eps_key
    from hpo.config import load_campaign

    # the windows set the extra background's range, so the data: one folder per choice
    windows = args.windows.replace(",", "")
    folder = OUT / "bumphunt" / f"{args.mode}-s{scale:g}-k{args.ensemble}-w{windows}"
    folder.mkdir(parents=True, exist_ok=True)
    toml = folder / "c.toml"
    toml.write_text(
        CAMPAIGN.format(
            mode=args.mode,
            scale=scale,
            signal=f"[{args.signal}]",
            windows=f"[{args.windows}]",
            n_jobs=args.n_jobs,
            ensemble=args.ensemble,
            runs=args.runs,
        )
    )
    campaign = load_campaign(toml)
    n_tasks = len(tasks(campaign))
    print(
        f"{args.mode}-HGB, default hp, ensemble {args.ensemble}, {args.runs} runs, "
        f"scale {scale:g}, windows {args.windows}, N = {args.signal}, 5 folds: {n_tasks} tasks",
        flush=True,
    )

    def show(done: int, total: int, what: str) -> None:
        print(f"[{done}/{total}] {what}", flush=True)

    t0 = time.perf_counter()
    ran = run_tasks(campaign, progress=show)
    t_units = time.perf_counter() - t0
    t1 = time.perf_counter()
    combine(campaign)
    t_combine = time.perf_counter() - t1

    results = json.loads(
        (campaign.run_dir / "bumphunt" / args.mode / "default" / "results.json").read_text()
    )
    eps = eps_key(args.eps_b)
    keys = [w["key"] for w in results["windows"]]
    print(f"\nmedian Z [16 %, 84 %] over {args.runs} runs at eps_B = {args.eps_b:g}")
    print(f"{'series':<34}" + "".join(f"{k:>18}" for k in keys))
    rows = [(k, s) for k, s in results["series"].items() if s["variant"] == "nominal"]
    rows += [(f"exact LR, N = {v['signal']}", v) for v in results["limit"].values()]
    for name, s in rows:
        cells = []
        for k in keys:
            z = s["windows"][k][eps]["Z"]
            cells.append(f"{z['median']:6.2f} [{z['q16']:.1f},{z['q84']:.1f}]")
        print(f"{name:<34}" + "".join(f"{c:>18}" for c in cells))
    (group, d), *_ = results["delta_sys"].items()
    print(f"\ndelta_sys ({d['method']}, {group}), median over runs [per run]:")
    for i, e in enumerate(results["eps_b"]):
        per_run = ", ".join(f"{v:+.3f}" for v in d["per_run"][i])
        published = PUBLISHED_IAD.get(e)
        print(
            f"  eps_B = {e:g}: {d['values'][i]:+.3f} [{per_run}]"
            + (f"   published IAD: {published:+.3f}" if published is not None else "")
        )
    units = [
        json.loads(p.read_text())
        for p in (campaign.run_dir / "bumphunt" / args.mode / "default" / "units").rglob("*.json")
    ]
    by_window: dict[int, list[float]] = {}
    for u in units:
        by_window.setdefault(u["window"], []).append(u["seconds"])
    print(
        f"\ncost: {len(units)} units, {ran} run now in {t_units / 60:.1f} min; "
        f"combine {t_combine:.0f} s"
    )
    print(
        "  seconds per unit (median): "
        + ", ".join(f"w{w} {statistics.median(v):.0f}" for w, v in sorted(by_window.items()))
    )
    total = sum(u["seconds"] for u in units)
    print(f"  sum over units {total / 3600:.2f} h ({total / len(units):.0f} s per unit on average)")
    print(f"plots: {campaign.run_dir / 'bumphunt' / args.mode / 'default'}/significance.png")
    print(f"command: {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}")


if __name__ == "__main__":
    main()
