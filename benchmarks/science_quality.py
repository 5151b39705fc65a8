"""Science quality: max SIC of default hyperparameters as a fraction of the exact limit.

Median max SIC over ``--runs`` full-statistics runs (default hyperparameters
of the final runs: HGB mean of 50 fits, AdaBoost 10 fits on halves, NN 100
epochs with the 10 best epochs by ARGOS), N = 1000 injected signal events,
full-size synthetic data, for IAD x {HGB, NN, AdaBoost} and CWoLa x HGB;
each as a fraction of the max SIC of the exact likelihood ratio on the same
test set (the Neyman-Pearson limit). Target: IAD-HGB >= 0.8 of the limit.

Every run is appended to ``benchmarks/out/science_quality.jsonl``; the summary
is over every recorded run of the same configuration (cell, N, scale,
statistics, hyperparameters), so runs can be spread over sessions with
``--first-run`` and the median still covers all of them.

Usage::

    python benchmarks/science_quality.py                       # the issue's figure
    python benchmarks/science_quality.py --cells IAD:NN --first-run 2   # resume runs 2-4
    python benchmarks/science_quality.py --runs 2 --scale 0.3 --hgb-ensemble 10 --nn-epochs 30
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _common import OUT, exact_limit_max_sic, synthetic_cell

from objectives.classifiers import default_hyperparameters
from objectives.evaluate import evaluate

CELLS = ("IAD:HGB", "IAD:NN", "IAD:AdaBoost", "CWoLa:HGB")
RECORDS = OUT / "science_quality.jsonl"


def _recorded(config: dict) -> dict[int, dict]:
    """Earlier runs of this exact configuration, by run index (the latest record wins)."""
    runs = {}
    if RECORDS.exists():
        for line in RECORDS.read_text().splitlines():
            rec = json.loads(line)
            if rec["config"] == config:
                runs[rec["run"]] = rec
    return runs


def _record(config: dict, run: int, max_sic: float, seconds: float) -> None:
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    with RECORDS.open("a") as f:
        rec = {"config": config, "run": run, "max_sic": max_sic, "seconds": seconds}
        f.write(json.dumps(rec) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cells", default=",".join(CELLS), help="MODE:CLASSIFIER list")
    ap.add_argument("--runs", type=int, default=5, help="runs 0 .. RUNS-1 make the figure")
    ap.add_argument("--first-run", type=int, default=0, help="resume: start at this run index")
    ap.add_argument("--signal", type=int, default=1000)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--statistics", default="full", choices=["half", "full"])
    ap.add_argument("--hgb-ensemble", type=int, default=None, help="override K (default 50)")
    ap.add_argument("--ada-ensemble", type=int, default=None, help="override (default 10)")
    ap.add_argument("--nn-epochs", type=int, default=None, help="override (default 100)")
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args()
    if not 0 <= args.first_run < args.runs:
        ap.error(f"--first-run {args.first_run} must be in 0 .. --runs - 1 ({args.runs - 1})")

    overrides = {
        "HGB": {"n_ensemble": args.hgb_ensemble},
        "AdaBoost": {"n_ensemble": args.ada_ensemble},
        "NN": {"epochs": args.nn_epochs},
    }
    print(
        f"synthetic scale {args.scale}, N = {args.signal}, {args.statistics} statistics, "
        f"{args.runs} runs, default hyperparameters"
    )
    rows = []
    for spec in args.cells.split(","):
        mode, clf = spec.split(":")
        cell = synthetic_cell(clf, mode, args.signal, scale=args.scale)
        hp = default_hyperparameters(clf, final=True)
        hp.update({k: v for k, v in overrides[clf].items() if v is not None})
        limit = exact_limit_max_sic(cell)
        config = {
            "cell": spec,
            "signal": args.signal,
            "scale": args.scale,
            "statistics": args.statistics,
            "hp": hp,
        }
        config = json.loads(json.dumps(config))  # compared with records read back from JSON
        for run in range(args.first_run, args.runs):
            r = evaluate(hp, cell, args.statistics, run=run, n_jobs=args.n_jobs)
            sic, secs = r.truth["argos"]["max_sic"], r.info["seconds_total"]
            _record(config, run, sic, secs)
            print(f"  {mode:<6} {clf:<9} run {run}: max SIC {sic:.2f} ({secs:.0f} s)", flush=True)
        runs = {j: rec for j, rec in _recorded(config).items() if j < args.runs}
        sics = [rec["max_sic"] for rec in runs.values()]
        secs = float(np.mean([rec["seconds"] for rec in runs.values()]))
        q16, q50, q84 = np.percentile(sics, [16, 50, 84])
        rows.append((mode, clf, sorted(runs), q50, q16, q84, limit, secs))
    print("\nmode    classifier  runs  max SIC median [16%, 84%]   exact-LR limit  fraction  s/run")
    for mode, clf, runs, q50, q16, q84, limit, secs in rows:
        print(
            f"{mode:<7} {clf:<10} {len(runs):>5}  {q50:6.2f} [{q16:5.2f}, {q84:5.2f}]        "
            f"{limit:6.2f}       {q50 / limit:5.3f}   {secs:6.0f}"
        )
    print(f"(all recorded runs of each configuration, from {RECORDS})")


if __name__ == "__main__":
    main()
