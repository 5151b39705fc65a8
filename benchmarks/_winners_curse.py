"""The winner's curse of a search's pick, per holdout (``pruning_quality.py --winners-curse``).

A search picks the trial with the best mean ARGOS over its repetitions: the maximum
over many noisy values. Scored again on the events it won on, the pick looks better
than it is; ``hpo select`` compares such values with those of default-hyperparameter
runs, which were picked on nothing. This measures, for one cell (``--classifier`` in
each of ``--modes`` at each of ``--signals``) and each campaign seed (a new synthetic
data set, data seed = seed, and new random draws):

* scheme ``search`` (the paper's): a random search of ``--trials`` x ``--repetitions``
  on the paper's half splits; its ARGOS pick (mean over repetitions) and the defaults
  are then scored on the search's own splits (``at search``) and on fresh half splits
  (``Split.fresh``, ``--runs`` of them);
* scheme ``reserved``: the same search with ``final.reserve`` of each class never held
  out; the pick and the defaults scored on the reserved events (``Split.reserved``);
* the reference: the same hyperparameters trained and scored on an **independent data
  set** (data seed + 100, the same generator and N) under the same kind of split. Its
  expected value is the hyperparameters' true worth, so ``value - reference`` over
  seeds estimates each number's bias; the defaults (picked on nothing) are the control
  whose bias must be ~0 everywhere.

Also the picks' truth: the median max SIC of full-statistics runs of the mean pick,
of the per-repetition picks (run j: repetition j's best) and of the defaults, so the
two ``final.pick`` settings compare on the same searches.

Records go to ``benchmarks/out/winners_curse.jsonl`` (one per mode, N, seed, scheme),
skipped when present, so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
from _common import OUT

RECORDS = OUT / "winners_curse.jsonl"
CAMPAIGN = """
[campaign]
name = "{name}"
run_dir = "{run_dir}"
storage = "journal:{name}.journal"
seed = {seed}
[data]
source = "synthetic"
scale = {scale}
seed = {data_seed}
[grid]
classifiers = ["{clf}"]
modes = ["{mode}"]
signal = [{signal}]
[search]
n_trials = {trials}
sampler = "random"
seed = {seed}
repetitions = {repetitions}
metrics = ["argos", "max_sic"]
pruner = "none"
argos_min_template = {floor}
enqueue_defaults = false
[search.fixed.HGB]
n_ensemble = {hgb}
[search.fixed.NN]
epochs = 10
n_best_epochs = 5
[final]
holdout = "{holdout}"
reserve = {reserve}
"""
#: the independent data set of campaign seed s has data seed s + INDEPENDENT
INDEPENDENT = 100


def _campaign(args, mode: str, signal: int, seed: int, holdout: str, data_seed: int):
    from hpo.config import load_campaign

    folder = args.folder / "winners_curse"
    folder.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(json.dumps(_config(args), sort_keys=True).encode()).hexdigest()[:8]
    name = f"wc-{args.classifier}-{mode}-N{signal}-s{seed}-d{data_seed}-{holdout}-{tag}"
    path = folder / f"{name}.toml"
    path.write_text(
        CAMPAIGN.format(
            name=name,
            run_dir=folder / f"data{data_seed}",  # one data set per data seed, shared
            seed=seed,
            scale=args.scale,
            data_seed=data_seed,
            clf=args.classifier,
            mode=mode,
            signal=signal,
            trials=args.trials,
            repetitions=args.repetitions,
            floor=args.argos_min_template,
            holdout=holdout,
            reserve=args.reserve,
            hgb=args.hgb_ensemble,
        )
    )
    return load_campaign(path)


def _cell(campaign):
    from hpo import products
    from hpo.cells import campaign_cells
    from hpo.data import ensure_data

    ensure_data(campaign)
    products.resolve(campaign)
    (cc,) = campaign_cells(campaign)
    return cc


def _argos(hp: dict, cell, split) -> float:
    from objectives.evaluate import evaluate

    return float(evaluate(hp, cell, split).metrics["argos"])


def _truth(hp: dict, cell, runs: int) -> float:
    from objectives.evaluate import evaluate

    return float(
        np.median(
            [evaluate(hp, cell, "full", run=j).truth["argos"]["max_sic"] for j in range(runs)]
        )
    )


def _one(args, mode: str, signal: int, seed: int, holdout: str) -> dict:
    """One search and every value of its pick and of the defaults."""
    from optuna.trial import TrialState
    from pruning_quality import _search

    from hpo.holdout import final_split, search_split
    from hpo.spaces import hyperparameters
    from objectives.splits import Split

    campaign = _campaign(args, mode, signal, seed, holdout, data_seed=seed)
    indep = _campaign(args, mode, signal, seed, holdout, data_seed=seed + INDEPENDENT)
    cc, cc_indep = _cell(campaign), _cell(indep)
    cell, cell_indep = cc.cell(), cc_indep.cell()
    t0 = time.process_time()
    trials = [t for t in _search(campaign) if t.state == TrialState.COMPLETE]
    search_cpu = time.process_time() - t0
    best = max(trials, key=lambda t: (t.user_attrs["argos"], -t.number))
    fixed = campaign.search.fixed.get(args.classifier, {})
    defaults = hyperparameters(args.classifier, {}, fixed)
    runs = range(args.runs)
    kind = "fresh" if holdout == "search" else "reserved"
    # the out-of-sample split of this scheme, and the search's kind of split
    final = [final_split(campaign, "half", j) for j in runs]
    if holdout == "search":
        final = [Split.fresh(j) for j in runs]
    searched = [search_split(campaign, j) for j in runs]
    values = {}
    for name, hp, at_search in (
        ("pick", best.user_attrs["hp"], best.user_attrs["argos"]),
        ("defaults", defaults, None),
    ):
        if at_search is None:  # the defaults on the search's splits, as a trial would be
            at_search = float(
                np.mean(
                    [_argos(hp, cell, search_split(campaign, j)) for j in range(args.repetitions)]
                )
            )
        values[name] = {
            "at_search": at_search,
            kind: float(np.mean([_argos(hp, cell, s) for s in final])),
            f"independent_{kind}": float(np.mean([_argos(hp, cell_indep, s) for s in final])),
            "independent_search": float(np.mean([_argos(hp, cell_indep, s) for s in searched])),
        }
    truth = {}
    if holdout == "search":  # the two final.pick settings, on the paper's search
        final_hp = lambda hp: hyperparameters(args.classifier, hp, fixed, final=True)  # noqa: E731
        truth["mean_pick"] = _truth(final_hp(best.params), cell, args.final_runs)
        per_rep = []
        for j in range(min(args.final_runs, args.repetitions)):
            pick_j = max(trials, key=lambda t: (t.user_attrs["argos_per_rep"][j], -t.number))
            per_rep.append(_truth_run(final_hp(pick_j.params), cell, j))
        truth["per_repetition_pick"] = float(np.median(per_rep))
        truth["defaults"] = _truth(final_hp({}), cell, args.final_runs)
    return {
        "picked_trial": best.number,
        "values": values,
        "truth": truth,
        "search_cpu_s": round(search_cpu, 1),
    }


def _truth_run(hp: dict, cell, run: int) -> float:
    from objectives.evaluate import evaluate

    return float(evaluate(hp, cell, "full", run=run).truth["argos"]["max_sic"])


def _config(args) -> dict:
    return {
        "classifier": args.classifier,
        "hgb_ensemble": args.hgb_ensemble,
        "scale": args.scale,
        "trials": args.trials,
        "repetitions": args.repetitions,
        "runs": args.runs,
        "final_runs": args.final_runs,
        "reserve": args.reserve,
        "floor": args.argos_min_template,
    }


def _done() -> dict:
    out = {}
    if RECORDS.exists():
        for line in RECORDS.read_text().splitlines():
            rec = json.loads(line)
            out[tuple(rec["key"])] = rec
    return out


def winners_curse(args) -> None:
    """Every (mode, N, seed, scheme) not recorded yet; then the table."""
    done = _done()
    config = json.dumps(_config(args), sort_keys=True)
    results = []
    for signal in args.signals:
        for mode in args.modes:
            for seed in args.seeds:
                for holdout in ("search", "reserved"):
                    key = (config, mode, signal, seed, holdout)
                    if key not in done:
                        t0 = time.perf_counter()
                        rec = {"key": list(key), "mode": mode, "signal": signal, "seed": seed,
                               "holdout": holdout, **_one(args, mode, signal, seed, holdout),
                               "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
                        RECORDS.parent.mkdir(parents=True, exist_ok=True)
                        with RECORDS.open("a") as fh:
                            fh.write(json.dumps(rec) + "\n")
                        print(json.dumps({k: rec[k] for k in ("mode", "signal", "seed",
                                          "holdout", "values", "truth")}), flush=True)  # fmt: skip
                        done[key] = rec
                    results.append(done[key])
    _table(args, results)


def _mean_sem(values: list[float]) -> str:
    v = np.asarray(values, float)
    sem = v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else float("nan")
    return f"{v.mean():+.4f} ± {sem:.4f}"


def _table(args, results: list[dict]) -> None:
    print(
        f"\n{args.classifier} ({args.hgb_ensemble} fits; NN: 10 epochs, mean of the 5 best), "
        f"synthetic scale {args.scale}, random search {args.trials} trials "
        f"x {args.repetitions} repetitions, ARGOS floor {args.argos_min_template}; values: "
        f"mean ARGOS over {args.runs} splits; bias = value - the same on an independent data "
        "set (mean ± s.e.m. over seeds); pick - defaults: the pick's bias beyond the "
        "defaults' on the same events (data-set noise cancels)"
    )
    print(
        f"{'mode':<6} {'N':>5}  {'number':<30} {'ARGOS pick':>18} {'defaults (control)':>19} "
        f"{'pick - defaults':>17}"
    )
    for signal in args.signals:
        for mode in args.modes:
            rs = {h: [r for r in results if r["mode"] == mode and r["signal"] == signal
                      and r["holdout"] == h] for h in ("search", "reserved")}  # fmt: skip
            rows = (
                ("at search (paper's finals)", "search", "at_search", "independent_search"),
                ("fresh half split", "search", "fresh", "independent_fresh"),
                ("at search (reserve kept out)", "reserved", "at_search", "independent_search"),
                ("reserved events", "reserved", "reserved", "independent_reserved"),
            )
            for label, scheme, value, ref in rows:
                bias = {
                    who: np.array(
                        [r["values"][who][value] - r["values"][who][ref] for r in rs[scheme]]
                    )
                    for who in ("pick", "defaults")
                }
                cells = [_mean_sem(b) for b in (bias["pick"], bias["defaults"])]
                cells.append(_mean_sem(bias["pick"] - bias["defaults"]))
                row = f"{cells[0]:>18} {cells[1]:>19} {cells[2]:>17}"
                print(f"{mode:<6} {signal:>5}  {label:<30} {row}")
            paper = rs["search"]
            if paper and paper[0]["truth"]:
                t = {k: np.median([r["truth"][k] for r in paper]) for k in paper[0]["truth"]}
                print(
                    f"{mode:<6} {signal:>5}  picks' full-statistics max SIC (median over seeds): "
                    + ", ".join(f"{k} {v:.2f}" for k, v in t.items())
                )
