"""``selection_quality.py --search``: selection after a search, the paper's protocol or ours.

One campaign: ``--classifiers`` (HGB, NN) x IAD, CWoLa x ``--signals`` on the synthetic
set at ``--scale``, a random search (``--trials`` x ``--repetitions``, no pruning) per
cell through the service's objective and worker, the export, final runs of every source
(the ARGOS pick ``argos``, the truth pick ``max_sic`` and ``default``) on half and full
statistics, ``hpo select`` and ``hpo report``. The protocols differ only in issue 28's
settings:

* ``paper``: ``search.enqueue_defaults = false``, ``final.pick = "per_repetition"``,
  ``final.holdout = "search"``;
* ``product``: the defaults: the defaults trial enqueued, ``final.pick = "mean"`` (with
  ``final.defaults_margin = 1``: the defaults trial unless the best trial beats it by
  more than one standard error), ``final.holdout = "reserved"`` (0.25 of each class).

Printed per group (template x N): every detector's full-statistics max SIC median, the
ARGOS- and truth-selected medians (per run and one detector for all runs), ARGOS-selected
/ truth-selected, ARGOS-selected / the best single label-free detector's median; per
searched ARGOS detector how much better its picked value looked at search than out of
sample (``paper``: against fresh half splits, trained here; ``product``: against the
reserved events, from the summaries), next to the same shift of the defaults (picked on
nothing: the control); and per cell whether the searched source's full-statistics
median reaches the defaults' (issue target: in >= 80 % of cells) and whether the ARGOS
pick is the defaults trial (``best.json``'s ``pick_rule``). ``--select-only``
skips the search, the export and the final runs: it selects and prints over the exports
and final runs already made (a campaign whose trials predate the recorded reserve,
which ``hpo export`` now refuses under ``holdout = "reserved"``, still prints).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
from _common import OUT

CAMPAIGN = """\
[campaign]
name = "selsearch"
run_dir = "run"
seed = {seed}

[data]
source = "synthetic"
scale = {scale}
seed = 0

[grid]
classifiers = {classifiers}
modes = ["IAD", "CWoLa"]
signal = {signals}

[search]
n_trials = {trials}
sampler = "random"
repetitions = {repetitions}
metrics = ["argos", "max_sic"]
pruner = "none"
n_jobs = {n_jobs}
enqueue_defaults = {enqueue}
argos_min_template = {floor}

[search.fixed.HGB]
n_ensemble = {hgb}

[search.fixed.NN]
epochs = {nn}
n_best_epochs = {nn_best}

[final]
n_runs = {runs}
statistics = ["half", "full"]
defaults = true
pick = "{pick}"
holdout = "{holdout}"
"""
PROTOCOLS = {
    "paper": {"enqueue": "false", "pick": "per_repetition", "holdout": "search"},
    "product": {"enqueue": "true", "pick": "mean", "holdout": "reserved"},
}


def _text(args, holdout: str | None = None) -> str:
    classifiers = (
        args.classifiers if args.classifiers != ["HGB", "AdaBoost", "NN"] else ["HGB", "NN"]
    )
    protocol = dict(PROTOCOLS[args.search])
    text = CAMPAIGN.format(
        seed=args.seed,
        scale=args.scale,
        classifiers=json.dumps(classifiers),
        signals=json.dumps(sorted(args.signals)),
        trials=args.trials,
        repetitions=args.repetitions,
        n_jobs=args.n_jobs,
        floor=args.argos_min_template,
        hgb=args.hgb_ensemble,
        nn=args.nn_epochs,
        nn_best=args.nn_best_epochs,
        runs=args.runs,
        **protocol,
    )
    if holdout is not None:
        text = text.replace(f'holdout = "{protocol["holdout"]}"', f'holdout = "{holdout}"')
    return text


def _folder(text: str) -> Path:
    return OUT / "selection_search" / hashlib.sha256(text.encode()).hexdigest()[:10]


def _campaign(args) -> Path:
    """The campaign file; with ``--holdout`` a variant that shares the protocol's search
    (its run directory is copied: studies, exports and full-statistics runs, which no
    holdout changes), so only the half-statistics final runs differ."""
    text = _text(args, args.holdout)
    folder = _folder(text)
    if args.holdout is not None and not (folder / "run").exists():
        import shutil

        base = _folder(_text(args)) / "run"
        if not (base / "final").exists():
            raise SystemExit(f"--holdout {args.holdout}: run --search {args.search} first ({base})")
        shutil.copytree(
            base,
            folder / "run",
            ignore=lambda d, names: [n for n in names if n in ("half", "select", "report")],
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "campaign.toml"
    path.write_text(text)
    return path


def _search(campaign) -> None:
    """Every cell's study to its target, one worker in this process (resumes)."""
    from hpo.objective import make_objective
    from hpo.samplers import make_sampler
    from hpo.studies import create_studies, open_campaign_storage
    from workers.worker import run_worker

    storage = open_campaign_storage(campaign)
    studies = create_studies(campaign, storage)
    s = campaign.search
    summary = run_worker(
        storage,
        {study.study_name: s.n_trials for study in studies},
        make_objective(campaign),
        sampler_factory=lambda name: make_sampler(
            s.sampler, seed=s.seed, study_name=name, worker_id="bench"
        ),
        worker_id="bench",
        count_pruned=s.count_pruned,
    )
    assert summary.exit_code == 0, summary.message


def _fresh_shift(campaign, summaries: dict) -> dict:
    """``paper``: per cell and source (argos, default), the half-statistics ARGOS at search
    (the final half runs: the search's splits) and on fresh half splits, trained here."""
    from hpo.cells import campaign_cells
    from hpo.final import picked_hyperparameters
    from objectives.evaluate import evaluate
    from objectives.splits import Split

    cache = campaign.run_dir / "fresh_shift.json"
    done = json.loads(cache.read_text()) if cache.exists() else {}
    for cc in campaign_cells(campaign):
        for source in ("argos", "default"):
            key = f"{cc.key}/{source}"
            if key in done:
                continue
            half = summaries[(cc.key, source, "half")]
            at_search, fresh = [], []
            for r in half["runs"]:
                hp, _ = picked_hyperparameters(cc, source, r["run"])
                result = evaluate(hp, cc.cell(), Split.fresh(r["run"]))
                at_search.append(r["label_free"]["argos"])
                fresh.append(result.metrics["argos"])
            done[key] = {"at_search": at_search, "fresh": fresh}
            cache.write_text(json.dumps(done))
    return done


def _summaries(campaign) -> dict:
    root = campaign.run_dir / "final"
    out = {}
    for p in root.glob("*/*/*/summary.json"):
        s = json.loads(p.read_text())
        out[(s["cell"]["key"], s["source"], s["statistics"])] = s
    return out


def search_main(args) -> None:
    from hpo import products
    from hpo.config import load_campaign
    from hpo.data import ensure_data
    from hpo.export import export_campaign
    from hpo.final import run_final
    from hpo.holdout import holdout_text
    from hpo.report import make_report
    from hpo.select import run_select

    campaign = load_campaign(_campaign(args))
    print(f"campaign {campaign.path} ({args.search} protocol)", flush=True)
    ensure_data(campaign)
    products.resolve(campaign)
    t0 = time.process_time()
    if not args.select_only:  # --select-only: the exports and final runs made so far
        _search(campaign)
        export_campaign(campaign)
    search_cpu = time.process_time() - t0
    print(holdout_text(campaign), flush=True)
    t1 = time.monotonic()

    def progress(done: int, total: int, what: str) -> None:
        print(f"[{time.monotonic() - t1:7.0f} s] final {done}/{total} {what}", flush=True)

    if not args.select_only:
        run_final(campaign, sources=["argos", "max_sic", "default"], progress=progress)
    selections = run_select(campaign)
    make_report(campaign)
    summaries = _summaries(campaign)
    shifts = _fresh_shift(campaign, summaries) if args.search == "paper" else None
    print(
        f"\nsynthetic scale {args.scale}, {args.search} protocol, random search {args.trials} "
        f"trials x {args.repetitions} repetitions, HGB {args.hgb_ensemble} fits, NN "
        f"{args.nn_epochs} epochs (mean of the {args.nn_best_epochs} best), {args.runs} runs, "
        f"ARGOS floor {args.argos_min_template}; "
        f"search {search_cpu:.0f} CPU s in this process"
    )
    _print(campaign, selections, summaries, shifts, args)


def _fmt(b: dict) -> str:
    return f"{b['median']:6.2f} [{b['q16']:5.2f}, {b['q84']:5.2f}]" if b.get("n") else "n/a"


def _print(campaign, selections, summaries, shifts, args) -> None:
    from selection_quality import selection_verdicts

    verdicts = {"per run": [], "one detector": []}
    searched_vs_default = []
    optimism = []  # per cell: (the ARGOS pick's optimism, the defaults')
    for s in selections:
        g = s["group"]
        print(f"\n{g['name']}: exact likelihood ratio {s['exact_limit_max_sic']:.2f}")
        pool = s["selected"]["argos"]["pool"]
        singles = {}
        for name, d in s["detectors"].items():
            singles[name] = d["max_sic"]["median"]
            print(f"  {name:<14} full max SIC {_fmt(d['max_sic'])}")
        best = max(singles[n] for n in pool)
        for m, label in (("argos", "ARGOS"), ("max_sic", "half-stat truth")):
            sel = s["selected"][m]
            picks = ", ".join(f"{k} {v}" for k, v in sorted(sel["picks"].items()))
            print(f"  selected by {label:<16} {_fmt(sel['max_sic'])}  picks: {picks}")
            print(f"  one detector by {label:<12} {_fmt(sel['overall']['max_sic'])}  "
                  f"{sel['overall']['detector']}")  # fmt: skip
        for rule, ok in selection_verdicts(s, best, 0.97):  # best: of the label-free pool
            if g["signal"] >= 600:
                verdicts[rule].append(ok)
        for cell in g["cells"]:
            clf = cell.split("-")[0]
            searched, default = singles.get(f"{clf}/argos"), singles.get(f"{clf}/default")
            if searched is not None and default is not None:
                rule = _pick_rule(campaign, cell)
                searched_vs_default.append((searched >= default, rule.get("kept_defaults")))
                print(
                    f"  {clf}/argos {searched:.2f} vs {clf}/default {default:.2f} (full): "
                    f"{'searched >= default' if searched >= default else 'searched < default'}"
                    f"; pick: {_rule_text(rule)}"
                )
            if (shift := _print_shift(cell, clf, s, summaries, shifts)) is not None:
                optimism.append(shift)
    print()
    for rule, oks in verdicts.items():
        print(f"target at N >= 600, {rule}: {sum(oks)} of {len(oks)} groups met")
    n, met = len(searched_vs_default), sum(ok for ok, _ in searched_vs_default)
    kept = sum(bool(k) for _, k in searched_vs_default)
    print(
        f"searched ARGOS source >= default at full statistics: {met} of {n} "
        f"cells ({100 * met / max(n, 1):.0f} %; target >= 80 %); in {kept} of the {n} cells "
        f"the ARGOS pick is the defaults trial (the same runs as the default source)"
    )
    if optimism:
        pick, default = (np.array(v) for v in zip(*optimism, strict=True))
        excess = pick - default
        print(
            f"picked ARGOS value at search - out of sample, median over {len(excess)} cells: "
            f"pick {np.median(pick):+.3f}, defaults {np.median(default):+.3f}, pick - defaults "
            f"{np.median(excess):+.3f} (mean {excess.mean():+.3f}; > 0 in "
            f"{int((excess > 0).sum())} of {len(excess)} cells)"
        )


def _pick_rule(campaign, cell: str) -> dict:
    """The export's decision for the cell's ARGOS pick (``best.json``'s ``pick_rule``; {}
    for an export without one: the per-repetition pick or an export before the rule)."""
    best = json.loads((campaign.run_dir / "hp" / cell / "argos" / "best.json").read_text())
    return best.get("pick_rule") or {}


def _rule_text(rule: dict) -> str:
    if not rule:
        return "no rule (per repetition)"
    if not rule["kept_defaults"]:
        return f"trial {rule['best_trial']} ({rule['reason']})"
    if rule["standard_error"] is None:
        return "the defaults trial, the best by itself"
    return (
        f"the defaults trial, kept against trial {rule['best_trial']} "
        f"(ahead by {rule['difference']:.4f}, s.e. {rule['standard_error']:.4f})"
    )


def _print_shift(cell: str, clf: str, s: dict, summaries: dict, shifts) -> tuple | None:
    """How much better the picked ARGOS looked at search than out of sample, and the
    same for the defaults (the control); returns the two medians (None if absent)."""
    parts, medians = [], []
    for source in ("argos", "default"):
        if shifts is not None:  # the paper's protocol: fresh half splits, trained here
            rec = shifts[f"{cell}/{source}"]
            diff = np.array(rec["at_search"]) - np.array(rec["fresh"])
            at, out = np.median(rec["at_search"]), np.median(rec["fresh"])
            parts.append(
                f"{source} at search {at:.3f} / fresh {out:.3f} (optimism {np.median(diff):+.3f})"
            )
            medians.append(float(np.median(diff)))
            continue
        half = summaries[(cell, source, "half")]
        shift = half.get("search_bias", {}).get("argos")
        if shift:
            parts.append(
                f"{source} at search {shift['at_search']['median']:.3f} / {half['holdout']} "
                f"{shift['final']['median']:.3f} (optimism {shift['optimism']['median']:+.3f})"
            )
            medians.append(shift["optimism"]["median"])
    if parts:
        print(f"  {clf} ARGOS: " + "; ".join(parts))
    return tuple(medians) if len(medians) == 2 else None
