"""Multi-fidelity repetitions: do cheap early repetitions rank trials as well per CPU second?

Issue 14 asks whether a trial's first repetitions, the ones a pruner decides on,
should be evaluated on fewer ensemble members (lower fidelity, cheaper) before the
full ensemble. This measures it instead of assuming it. IAD-HGB on the synthetic
set: ``--configs`` hyperparameter sets drawn at random from the service's HGB
search space, each evaluated through ``objectives.evaluate`` (half statistics,
repetition j = the service's split and seeds j) at two fidelities: one ensemble
member and ``--members`` members.

The reference a trial is finally judged by is the mean label-free metric (ARGOS)
of all repetitions at full fidelity; its truth, the mean test-set max SIC. For
every fidelity and number r of early repetitions the script prints, per
configuration, the median CPU seconds those repetitions cost and the Spearman
rank correlation of their mean ARGOS with the reference and with the truth.
Multi-fidelity pays off if, at equal CPU seconds, the one-member estimate ranks
the configurations better than the full-ensemble one; then a pruner deciding after
``pruner_startup`` cheap repetitions would see more for its money.

Every evaluation is appended to ``benchmarks/out/multifidelity.jsonl`` and
skipped when present, so an interrupted run resumes.

Usage::

    nice -n 10 python benchmarks/multifidelity.py              # the figures of docs/benchmarks.md
    python benchmarks/multifidelity.py --configs 4 --repetitions 3   # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
from _common import OUT, synthetic_cell

RECORDS = OUT / "multifidelity.jsonl"


def _configs(n: int, seed: int) -> list[dict]:
    """``n`` random draws from the service's HGB search space (the ensemble size fixed)."""
    import optuna

    from hpo.spaces import space_for, suggest

    space = space_for("HGB", fixed={"n_ensemble": 1})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [suggest(study.ask(), space) for _ in range(n)]


#: what identifies one evaluation: its record's key fields
_KEY = ("scale", "signal", "floor", "params", "rep", "members")


def _base(args, params: dict, rep: int, members: int) -> dict:
    """The key fields of one evaluation's record."""
    values = (args.scale, args.signal, args.argos_min_template, params, rep, members)
    return dict(zip(_KEY, values, strict=True))


def _key(record: dict) -> str:
    return json.dumps([record[k] for k in _KEY])


def _evaluate(cell, params: dict, rep: int, members: int) -> dict:
    """One repetition at one fidelity: its ARGOS, test-set max SIC and CPU seconds."""
    from hpo.spaces import hyperparameters
    from objectives.evaluate import evaluate

    hp = hyperparameters("HGB", params, {"n_ensemble": members})
    start = time.process_time()
    result = evaluate(hp, cell, "half", run=rep)
    return {
        "argos": float(result.metrics["argos"]),
        "max_sic": float(result.truth["argos"]["max_sic"]),
        "cpu_s": time.process_time() - start,
    }


def _measure(args) -> dict:
    """Every (configuration, repetition, fidelity) evaluation, resumed from the records."""
    done = {}
    if RECORDS.exists():
        for line in RECORDS.read_text().splitlines():
            record = json.loads(line)
            done[_key(record)] = record
    cell = dataclasses.replace(
        synthetic_cell("HGB", "IAD", args.signal, scale=args.scale),
        argos_min_template=args.argos_min_template,
    )
    configs = _configs(args.configs, args.seed)
    jobs = [
        (k, rep, members)
        for k in range(len(configs))
        for rep in range(args.repetitions)
        for members in (1, args.members)
    ]
    table = {}
    for count, (k, rep, members) in enumerate(jobs, 1):
        base = _base(args, configs[k], rep, members)
        if _key(base) not in done:
            record = {**base, **_evaluate(cell, configs[k], rep, members)}
            done[_key(record)] = record
            with RECORDS.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(
                f"[{count}/{len(jobs)}] config {k} repetition {rep} members {members}: "
                f"{record['cpu_s']:.1f} CPU s",
                flush=True,
            )
        table[k, rep, members] = done[_key(base)]
    return table


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _report(table: dict, args) -> None:
    k_all = range(args.configs)
    reps = args.repetitions

    def values(members: int, key: str, r: int) -> np.ndarray:
        return np.array([np.mean([table[k, j, members][key] for j in range(r)]) for k in k_all])

    reference = values(args.members, "argos", reps)
    truth = values(args.members, "max_sic", reps)
    print(
        f"\nIAD-HGB, synthetic scale {args.scale}, N = {args.signal}, {args.configs} random "
        f"configurations, ARGOS floor {args.argos_min_template}; reference = mean ARGOS of "
        f"{reps} repetitions x {args.members} members; truth = their mean test max SIC"
    )
    print(f"{'members':>7} {'reps':>4} {'CPU s':>7} {'rho(ref)':>9} {'rho(truth)':>10}")
    for members in (1, args.members):
        for r in sorted({1, 2, 3, 5, reps} & set(range(1, reps + 1))):
            cpu = np.median([sum(table[k, j, members]["cpu_s"] for j in range(r)) for k in k_all])
            est = values(members, "argos", r)
            print(
                f"{members:>7} {r:>4} {cpu:>7.1f} {_spearman(est, reference):>9.2f} "
                f"{_spearman(est, truth):>10.2f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--signal", type=int, default=1000)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--configs", type=int, default=16)
    ap.add_argument("--repetitions", type=int, default=10)
    ap.add_argument("--members", type=int, default=5, help="the full fidelity's ensemble size")
    ap.add_argument("--seed", type=int, default=0, help="seed of the configurations' draw")
    ap.add_argument("--argos-min-template", type=int, default=0)
    args = ap.parse_args()

    import optuna
    import torch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    _report(_measure(args), args)


if __name__ == "__main__":
    main()
