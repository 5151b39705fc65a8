"""Compute for quality: the paper's random search against TPE and pruning over repetitions.

For IAD-HGB at each signal amount and campaign seed, one cell is searched with

* ``random``          -- the paper's protocol: random search, every trial all repetitions;
* ``tpe``             -- TPE, no pruning;
* ``tpe+<pruner>``    -- TPE with a pruner over the (paired) repetitions;
* ``random+<pruner>`` -- random search with the pruner. Its trials draw exactly the
  parameters of ``random`` (the draw depends only on seed, study and trial number) and
  each repetition gives exactly the same value (same split and model seed), so it is
  *replayed* from the ``random`` run through the same Optuna pruner instead of being
  trained again; ``--check-replay`` runs it for real once and compares.

Each search runs through the service's own objective and worker (journal storage, one
worker). Reported per protocol: CPU seconds spent in trials (one thread per trial; the
each trial's ``cpu_s``: its worker's process CPU time, so a busy machine does not
inflate it), and the truth max SIC of the ARGOS-picked hyperparameters in
final full-statistics runs (``--final-runs`` runs, median), as a fraction of the exact
likelihood ratio's max SIC on the same test set; median and 16-84 % band over seeds.

Every protocol has the same trial budget: a pruned trial counts toward ``n_trials``
(``count_pruned = true``), so pruning saves repetitions, not trials.

Sized for 2 shared cores (defaults): synthetic scale 0.1, HGB with one ensemble member
(``n_ensemble = 1``; five in the final runs), 30 trials x 10 repetitions, 5 seeds. Each
(protocol, N, seed) result is appended to ``benchmarks/out/pruning_quality.jsonl`` and
skipped when present, so an interrupted benchmark resumes.

``--against-trials 100`` also sets each protocol against the paper's protocol at its
own budget (random search, 100 trials, the same seeds): the median over seeds of the
per-seed CPU ratio and the picked max SIC against the paper's band (the issue's target:
its median at or above the band's 16 % edge for at most 0.25x the CPU).

``--winners-curse`` measures what a search's pick is worth on events it was not
picked on (issue 28 §1, §3; see :func:`winners_curse`).

Usage::

    python benchmarks/pruning_quality.py                      # the figures of docs/benchmarks.md
    python benchmarks/pruning_quality.py --winners-curse      # bias of the picked value
    python benchmarks/pruning_quality.py --protocols tpe+wilcoxon --against-trials 100
    python benchmarks/pruning_quality.py --signals 300 --seeds 0 1 --trials 20
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from _common import OUT

RECORDS = OUT / "pruning_quality.jsonl"
CAMPAIGN = """
[campaign]
name = "{name}"
run_dir = "{run_dir}"
seed = {seed}
[data]
source = "synthetic"
scale = {scale}
seed = 0
[grid]
classifiers = ["HGB"]
modes = ["IAD"]
signal = [{signal}]
[search]
n_trials = {trials}
sampler = "{sampler}"
seed = {seed}
repetitions = {repetitions}
n_startup_trials = 10
metrics = ["argos", "max_sic"]
pruner = "{pruner}"
pruner_p = {p}
pruner_startup = {startup}
count_pruned = true
argos_min_template = {floor}
[search.fixed.HGB]
n_ensemble = 1
"""


def _campaign(folder: Path, args, signal: int, seed: int, sampler: str, pruner: str):
    from hpo.config import load_campaign

    path = folder / f"{sampler}-{pruner}-N{signal}-s{seed}.toml"
    path.write_text(
        CAMPAIGN.format(
            name=f"bench-{sampler}-{pruner}-N{signal}-s{seed}",
            run_dir=folder / path.stem,
            seed=seed,
            scale=args.scale,
            signal=signal,
            trials=args.trials,
            sampler=sampler,
            repetitions=args.repetitions,
            pruner=pruner,
            p=args.p,
            startup=args.startup,
            floor=args.argos_min_template,
        )
    )
    return load_campaign(path)


def _search(campaign) -> list:
    """Run the campaign's one cell through the service's objective and worker."""
    import optuna

    from hpo.cells import campaign_cells
    from hpo.data import ensure_data
    from hpo.objective import make_objective
    from hpo.pruners import make_pruner
    from hpo.samplers import make_sampler
    from hpo.studies import create_studies, open_campaign_storage
    from workers.worker import run_worker

    ensure_data(campaign)
    storage = open_campaign_storage(campaign)
    create_studies(campaign, storage)
    (cc,) = campaign_cells(campaign)
    s = campaign.search
    summary = run_worker(
        storage,
        {cc.study_name: s.n_trials},
        make_objective(campaign),
        sampler_factory=lambda name: make_sampler(
            s.sampler, seed=s.seed, study_name=name, worker_id="bench", n_startup_trials=10
        ),
        worker_id="bench",
        pruner_factory=lambda name: make_pruner(
            s.pruner, p_threshold=s.pruner_p, startup=s.pruner_startup
        ),
        count_pruned=s.count_pruned,
    )
    assert summary.exit_code == 0, summary.message
    return optuna.load_study(study_name=cc.study_name, storage=storage).get_trials()


def _seconds(trial) -> float:
    """CPU seconds the trial's worker spent on it (its ``cpu_s`` attr: load-independent)."""
    return trial.user_attrs["cpu_s"]


def _replay(trials: list, args) -> tuple[list[dict], float]:
    """``random+pruner`` from the ``random`` run: the same pruner on the same values.

    Returns the surviving (complete) trials' records and the CPU seconds the pruned
    search would have spent (a trial's time split evenly over its repetitions).
    """
    import optuna
    from optuna.trial import TrialState

    from hpo.pruners import make_pruner, reported_value

    study = optuna.create_study(
        direction="maximize",
        pruner=make_pruner(args.pruner_kind, p_threshold=args.p, startup=args.startup),
    )
    complete, cpu = [], 0.0
    for t in sorted(trials, key=lambda t: t.number):
        if t.state != TrialState.COMPLETE:
            continue
        values = t.user_attrs["argos_per_rep"]
        per_rep = _seconds(t) / len(values)
        trial = study.ask()
        done = []
        for j, v in enumerate(values):
            done.append(v)
            cpu += per_rep
            if j + 1 < len(values):
                trial.report(reported_value(args.pruner_kind, done), step=j)
                if trial.should_prune():
                    study.tell(trial, state=TrialState.PRUNED)
                    break
        else:
            study.tell(trial, float(np.mean(values)))
            complete.append(
                {"number": t.number, "argos": float(np.mean(values)), "hp": t.user_attrs["hp"]}
            )
    return complete, cpu


def _final_truth(campaign, hp: dict, runs: int) -> float:
    """Median truth max SIC of ``hp`` in full-statistics runs (five ensemble members)."""
    from hpo.cells import campaign_cells
    from objectives.evaluate import evaluate

    (cc,) = campaign_cells(campaign)
    final_hp = {**hp, "n_ensemble": 5}
    return float(
        np.median(
            [
                evaluate(final_hp, cc.cell(), "full", run=j).truth["argos"]["max_sic"]
                for j in range(runs)
            ]
        )
    )


def _limit(campaign) -> float:
    from hpo.cells import campaign_cells
    from hpo.products import limit

    (cc,) = campaign_cells(campaign)
    return float(limit(campaign, cc.point)["max_sic"])


def _done() -> dict[tuple, dict]:
    out = {}
    if RECORDS.exists():
        for line in RECORDS.read_text().splitlines():
            rec = json.loads(line)
            out[tuple(rec["key"])] = rec
    return out


def _config(args) -> dict:
    return {
        "scale": args.scale,
        "trials": args.trials,
        "repetitions": args.repetitions,
        "p": args.p,
        "startup": args.startup,
        "final_runs": args.final_runs,
        "cost": "process_cpu",
        # only when set: records of the paper's ARGOS keep their keys
        **({"argos_min_template": args.argos_min_template} if args.argos_min_template else {}),
    }


def run_one(folder: Path, args, signal: int, seed: int, protocol: str, done: dict) -> dict:
    key = (json.dumps(_config(args), sort_keys=True), protocol, signal, seed)
    if key in done:
        return done[key]
    sampler, _, pruner = protocol.partition("+")
    t0 = time.perf_counter()
    if sampler == "random" and pruner:  # replayed from the random search of the same seed
        base = _campaign(folder, args, signal, seed, "random", "none")
        trials = _search(base)
        args.pruner_kind = pruner
        complete, cpu = _replay(trials, args)
        campaign = base
        picked = max(complete, key=lambda r: (r["argos"], -r["number"]))
        n_complete, n_pruned = len(complete), args.trials - len(complete)
    else:
        campaign = _campaign(folder, args, signal, seed, sampler, pruner or "none")
        trials = _search(campaign)
        from optuna.trial import TrialState

        done_trials = [t for t in trials if t.state == TrialState.COMPLETE]
        cpu = sum(
            _seconds(t) for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        )
        best = max(done_trials, key=lambda t: (t.user_attrs["argos"], -t.number))
        picked = {
            "number": best.number,
            "argos": best.user_attrs["argos"],
            "hp": best.user_attrs["hp"],
        }
        n_complete = len(done_trials)
        n_pruned = sum(t.state == TrialState.PRUNED for t in trials)
    truth = _final_truth(campaign, picked["hp"], args.final_runs)
    record = {
        "key": list(key),
        "protocol": protocol,
        "signal": signal,
        "seed": seed,
        "cpu_s": round(cpu, 1),
        "picked_trial": picked["number"],
        "picked_max_sic": round(truth, 3),
        "limit": round(_limit(campaign), 3),
        "complete": n_complete,
        "pruned": n_pruned,
        "wall_s": round(time.perf_counter() - t0, 1),
        "config": _config(args),
    }
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    with RECORDS.open("a") as fh:
        fh.write(json.dumps(record) + "\n")
    print(
        json.dumps(
            {k: record[k] for k in ("protocol", "signal", "seed", "cpu_s", "picked_max_sic")}
        ),
        flush=True,
    )
    return record


def _band(values: list[float]) -> str:
    q16, q50, q84 = np.percentile(values, [16, 50, 84])
    return f"{q50:.2f} [{q16:.2f}, {q84:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--signals", type=int, nargs="+", default=[1000, 300])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument(
        "--protocols",
        nargs="+",
        default=[
            "random",
            "tpe",
            "tpe+wilcoxon",
            "tpe+halving",
            "random+wilcoxon",
            "random+halving",
        ],
    )
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--repetitions", type=int, default=10)
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--startup", type=int, default=3)
    ap.add_argument("--final-runs", type=int, default=3)
    ap.add_argument(
        "--argos-min-template",
        type=int,
        default=0,
        help="ARGOS floor in template events (0: the paper's); use its own --folder",
    )
    ap.add_argument("--folder", type=Path, default=OUT / "pruning_quality")
    ap.add_argument(
        "--against-trials",
        type=int,
        help="also compare with the paper's random search at this many trials (runs it "
        "where not recorded, in --folder)",
    )
    ap.add_argument(
        "--winners-curse",
        action="store_true",
        help="measure the picked value's bias per holdout (--modes, --signals, --seeds)",
    )
    ap.add_argument("--modes", nargs="+", default=["IAD", "CWoLa"], help="--winners-curse")
    ap.add_argument("--classifier", default="HGB", help="--winners-curse: HGB or NN")
    ap.add_argument("--hgb-ensemble", type=int, default=1, help="--winners-curse: HGB fits")
    ap.add_argument("--reserve", type=float, default=0.25, help="--winners-curse")
    ap.add_argument("--runs", type=int, default=5, help="--winners-curse: splits per value")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import optuna
    import torch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    args.folder = args.folder.resolve()  # a relative run_dir would be read from the toml folder
    args.folder.mkdir(parents=True, exist_ok=True)
    if args.winners_curse:
        from _winners_curse import winners_curse

        winners_curse(args)
        return
    done = _done()
    results = [
        run_one(args.folder, args, signal, seed, protocol, done)
        for signal in args.signals
        for seed in args.seeds
        for protocol in args.protocols
    ]
    print(
        f"\nIAD-HGB, synthetic scale {args.scale}, {args.trials} trials x {args.repetitions} "
        f"repetitions, seeds {args.seeds}; picked = ARGOS-best, truth in {args.final_runs} "
        "full-statistics runs (5 members); fractions of the exact-LR limit"
    )
    print(
        f"{'N':>5}  {'protocol':<16} {'CPU s (median)':>15} {'x random':>9}  "
        f"{'picked max SIC':<22} {'/ limit':>8}  pruned"
    )
    for signal in args.signals:
        mine = [r for r in results if r["signal"] == signal]
        random_cpu = [r["cpu_s"] for r in mine if r["protocol"] == "random"]
        base = np.median(random_cpu) if random_cpu else float("nan")  # nan: random not run
        for protocol in args.protocols:
            rs = [r for r in mine if r["protocol"] == protocol]
            cpu = np.median([r["cpu_s"] for r in rs])
            frac = [r["picked_max_sic"] / r["limit"] for r in rs]
            print(
                f"{signal:>5}  {protocol:<16} {cpu:>15.0f} {cpu / base:>9.2f}  "
                f"{_band([r['picked_max_sic'] for r in rs]):<22} {np.median(frac):>8.2f}  "
                f"{np.median([r['pruned'] for r in rs]):.0f}"
            )
    if args.against_trials:
        _against_paper(args, results, done)


def _against_paper(args, results: list[dict], done: dict) -> None:
    """Each protocol against the paper's random search at ``--against-trials`` trials."""
    paper_args = argparse.Namespace(**{**vars(args), "trials": args.against_trials})
    print(
        f"\nagainst the paper's protocol (random, {args.against_trials} trials, same seeds): "
        "CPU = median of per-seed ratios; target <= 0.25x at picked >= the paper's 16 % edge"
    )
    print(f"{'N':>5}  {'protocol':<16} {'x paper CPU':>11}  {'picked':<22} {'paper':<22} target")
    for signal in args.signals:
        paper = {
            seed: run_one(args.folder, paper_args, signal, seed, "random", done)
            for seed in args.seeds
        }
        paper_sic = [r["picked_max_sic"] for r in paper.values()]
        for protocol in args.protocols:
            rs = [r for r in results if r["signal"] == signal and r["protocol"] == protocol]
            ratio = float(np.median([r["cpu_s"] / paper[r["seed"]]["cpu_s"] for r in rs]))
            picked = [r["picked_max_sic"] for r in rs]
            met = ratio <= 0.25 and np.median(picked) >= np.percentile(paper_sic, 16)
            print(
                f"{signal:>5}  {protocol:<16} {ratio:>11.2f}  {_band(picked):<22} "
                f"{_band(paper_sic):<22} {'met' if met else 'not met'}"
            )


if __name__ == "__main__":
    main()
