"""Bring your own detector: the example LightGBM method beside HGB and the NN.

The method of ``examples/plugins`` (not installed: ``"wsad_lightgbm:method"`` on the
path) goes through the product's own path with the built-ins: a synthetic campaign
(IAD, N = 1000 injected signal events), default hyperparameters (``hpo final --source
default``) on half and full statistics for ``--runs`` runs, then ``hpo select``. Printed:

* each detector's max SIC (full statistics, median [16 %, 84 %] over the runs, and as a
  fraction of the exact likelihood ratio's on the same test set) and its half-statistics
  ARGOS, the label-free value ``hpo select`` compares;
* which detector ARGOS selects per run (and BCE, and the truth for reference), and the
  max SIC of the selection;
* the cost of one evaluation (one trial repetition: train on half statistics, score the
  held-out half and the test set) as CPU seconds of this process, HGB and LightGBM at
  the same ensemble size (``--ensemble`` fits, one thread each), the NN for reference.

HGB and LightGBM use their defaults (HGB: scikit-learn's, with early stopping on a 50 %
internal split; LightGBM: 100 trees of 31 leaves, bagging 0.8), so the comparison is of
the detectors a user gets without tuning. Finished final runs are skipped, so a second
call only selects and times again; run directories under
``benchmarks/out/plugin_lightgbm/``.

Usage::

    nice -n 10 python benchmarks/plugin_lightgbm.py > plugin.log 2>&1   # scale 0.1, 3 runs
    python benchmarks/plugin_lightgbm.py --scale 0.2 --runs 5
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

from _common import OUT

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugins"
TARGET = "wsad_lightgbm:method"

CAMPAIGN = """\
[campaign]
name = "byod"
run_dir = "run"

[data]
source = "synthetic"
scale = {scale}
seed = 0

[grid]
classifiers = ["HGB", "NN", "{target}"]
modes = ["IAD"]
signal = [1000]

[search]
n_trials = 1
metrics = ["argos", "bce", "max_sic"]

[search.fixed.HGB]
n_ensemble = {ensemble}

[search.fixed.LightGBM]
n_ensemble = {ensemble}

[search.fixed.NN]
epochs = {nn_epochs}

[final]
n_runs = {runs}
statistics = ["half", "full"]
defaults = true
"""
LABELS = {"argos": "ARGOS-selected", "bce": "BCE-selected", "max_sic": "truth-selected"}


def _campaign(args) -> Path:
    fields = dict(scale=args.scale, ensemble=args.ensemble, nn_epochs=args.nn_epochs)
    text = CAMPAIGN.format(target=TARGET, runs=args.runs, **fields)
    folder = OUT / "plugin_lightgbm" / hashlib.sha256(repr(fields).encode()).hexdigest()[:10]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "campaign.toml").write_text(text)
    return folder / "campaign.toml"


def _band(b: dict, limit: float | None = None) -> str:
    text = f"{b['median']:6.2f} [{b['q16']:5.2f}, {b['q84']:5.2f}]"
    return text + (f"  {b['median'] / limit:5.3f}" if limit else "")


def _cost(campaign, runs: int) -> dict[str, list[float]]:
    """CPU seconds of one half-statistics evaluation per detector and run (cell prepared
    before the clock starts, as a worker's first trial does once)."""
    from hpo.cells import campaign_cells
    from hpo.spaces import hyperparameters
    from objectives.evaluate import evaluate

    out = {}
    for cc in campaign_cells(campaign):
        name = cc.point.classifier
        hp = hyperparameters(name, {}, campaign.search.fixed.get(name, {}))
        cell = cc.cell()
        evaluate(hp, cell, "half", run=runs)  # prepares the cell (a run not timed)
        seconds = []
        for j in range(runs):
            t0 = time.process_time()
            evaluate(hp, cell, "half", run=j)
            seconds.append(time.process_time() - t0)
        out[name] = seconds
        print(f"cost {name}: {', '.join(f'{s:.2f}' for s in seconds)} CPU s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=0.1, help="synthetic set scale (1: R&D)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ensemble", type=int, default=10, help="fits of HGB and of LightGBM")
    ap.add_argument("--nn-epochs", type=int, default=20, help="NN epochs (paper: 100)")
    args = ap.parse_args()
    sys.path.insert(0, str(EXAMPLE))

    import torch

    torch.set_num_threads(1)

    from hpo import products
    from hpo.config import load_campaign
    from hpo.data import ensure_data
    from hpo.final import run_final
    from hpo.select import run_select
    from hpo.studies import create_studies

    campaign = load_campaign(_campaign(args))
    print(f"campaign {campaign.path}", flush=True)
    ensure_data(campaign)
    products.resolve(campaign)
    create_studies(campaign)
    t0 = time.monotonic()

    def progress(done: int, total: int, what: str) -> None:
        print(f"[{time.monotonic() - t0:7.0f} s] final {done}/{total} {what}", flush=True)

    run_final(campaign, sources=["default"], progress=progress)  # skips the runs made
    final_s = time.monotonic() - t0
    (summary,) = run_select(campaign)
    cost = _cost(campaign, args.runs)
    limit = summary["exact_limit_max_sic"]
    hgb_cost = statistics.median(cost["HGB"])

    print(
        f"\nsynthetic scale {args.scale}, IAD, N = 1000, {args.runs} runs, default "
        f"hyperparameters; HGB and LightGBM {args.ensemble} fits each, NN {args.nn_epochs} "
        f"epochs; one thread per fit. Exact likelihood ratio max SIC {limit:.2f}."
    )
    print(
        f"{'detector':<16} {'max SIC full [16%, 84%]  / exact':<36} {'ARGOS half':<24}"
        f" {'CPU s / evaluation':<20} vs HGB"
    )
    for name, d in summary["detectors"].items():
        method = name.split("/")[0]
        c = statistics.median(cost[method])
        print(
            f"{method:<16} {_band(d['max_sic'], limit):<36} {_band(d['label_free']['argos']):<24}"
            f" {c:8.2f}{'':<12} {c / hgb_cost:5.2f}x"
        )
    for metric, label in LABELS.items():
        if metric == "max_sic":  # label-picked: a table of its own, never beside the others
            print("\nwith labels (reference): the detector of the best half-statistics max SIC")
        sel = summary["selected"][metric]
        picks = ", ".join(f"{k.split('/')[0]} {v}" for k, v in sorted(sel["picks"].items()))
        print(f"{label:<16} {_band(sel['max_sic'], limit):<36} picks per run: {picks}")
    print(f"final runs (those not made before) took {final_s:.0f} s wall; {campaign.run_dir}")


if __name__ == "__main__":
    main()
