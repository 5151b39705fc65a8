"""Do the unsupervised detectors find anything? Issue 25's targets on the synthetic set.

Per signal, for every method -- the detectors dSVDD, DROCC, DDD with their default
hyperparameters on each backbone of ``--backbones`` (dSVDD: the ensemble over
d = 5, 8, 13, 21; DDD: its default grid, the models in the AUC band that invert no
generic anomaly), the baselines IsolationForest, FlowDensity and the cuts MET, HT,
NObjects (the registry's methods, ``objectives.unsupervised.baselines``) and the
signal-agnostic limit BkgDensity (the background's p-value of an event at least as rare in
object multiplicity and in the generator's exact density) --
AUC and eps_S at eps_B = 1e-2 / 1e-3 / 1e-4: median and 16-84 % band over ``--seeds``
(each seed draws its own training and validation background and seeds the models).

Diagnostics per detector (label-free, on the test background): Spearman rho of its
score with ``-log p_bkg`` over all events and within one object multiplicity (the
part of the density a detector must learn; across multiplicities ``-log p_bkg`` mostly
counts objects), and ``perturb_auc``, the family's label-free objective; for DROCC its
shell AUC (``objectives.unsupervised.drocc.shell_auc``: does it tell held-out background
from random points of its shell at all).

With ``--search-trials K`` (first backbone only), each detector also runs a search as a
campaign does (the defaults, then K - 1 random draws from ``hpo.spaces``, a DDD draw
being one distortion point): the trial with the highest ``perturb_auc`` is the
label-free pick, compared with the defaults per signal (target c), and every trial's
scores are averaged (the ``ensemble`` source: DDD keeps its band's non-inverting
members). ``--repetitions R`` scores every trial on R splits, as a campaign's
``search.repetitions``: repetition 0 is the seed's training / validation draw (the fit
that is tested), repetitions 1.. draw their own from the pool and seed their model the
same in every trial (paired, as ``objectives.splits`` pairs them); the pick is the best
mean ``perturb_auc`` unless the product's rule toward the defaults
(``hpo.pick_rule.decide``, ``--defaults-margin``, the campaign's ``final.defaults_margin``)
keeps the defaults. With R = 1 the rule cannot act and the pick is the plain best.
``--calibration`` sets how every detector trial reads its score (raw, or as its
multiplicity p-value; default: each method's default). Ensembles checked against
target d: dSVDD's over d, DDD's band, dSVDD + DDD (the poster's combination) and the
ensembles over trials.

Targets (issue 25): (a) for every signal BkgDensity finds (AUC >= 0.7) the best
detector reaches 0.9 x its AUC and 0.5 x its eps_S at 1e-3; (b) averaged over the
signals each detector beats IsolationForest in AUC, and ParT beats the MLP; (c) the
pick >= the defaults in >= 80 % of the cells (method x backbone x signal, medians
over the seeds); (d) no ensemble ranks a signal below random (median AUC >= 0.5).

Data: the synthetic set at ``--scale`` (1: 200k background, 20k per signal), half the
background held out as the test set (``--test-background`` / ``--test-signal`` keep
fewer, for the transformers, whose scoring is slow). Results also go to
``benchmarks/out/unsupervised_quality_<backbones>[_<calibration>][_r<R>][_n<n-train>].json``.

Usage::

    python benchmarks/unsupervised_quality.py [--backbones MLP] [--seeds 3]
        [--n-train 20000] [--n-val 10000] [--epochs 10] [--search-trials 6]
        [--methods dSVDD,DROCC,DDD] [--baselines ...] [--test-background 0]
        [--test-signal 0] [--threads 1] [--calibration none|multiplicity]
        [--repetitions 1] [--defaults-margin 1.0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

METHODS = ("dSVDD", "DROCC", "DDD")
BASELINES = ("IsolationForest", "FlowDensity", "MET", "HT", "NObjects", "BkgDensity")
METRICS = ("auc", "eps_s_1e-2", "eps_s_1e-3", "eps_s_1e-4")


def _keep(test_signal: np.ndarray, n_background: int, n_signal: int) -> np.ndarray:
    """Mask of the first ``n_background`` test background and ``n_signal`` events of each
    signal (0: all of them)."""
    keep = np.zeros(len(test_signal), bool)
    for k in np.unique(test_signal):
        idx = np.flatnonzero(test_signal == k)
        n = n_background if k < 0 else n_signal
        keep[idx[: n or len(idx)]] = True
    return keep


def _band(values) -> tuple[float, float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return (np.nan, np.nan, np.nan)
    return tuple(float(q) for q in np.percentile(v, [50, 16, 84]))


def _fmt(values) -> str:
    q50, q16, q84 = _band(values)
    if np.isnan(q50):
        return "nan"
    return f"{q50:.3f}" if q16 == q84 else f"{q50:.3f} [{q16:.3f}, {q84:.3f}]"


def _rho(scores: np.ndarray, nlp: np.ndarray, n_obj: np.ndarray) -> tuple[float, float]:
    """Spearman rho with -log p_bkg over all events, and within one multiplicity (the
    event-weighted mean over multiplicities with at least 100 events)."""
    from scipy.stats import spearmanr

    total, weight = 0.0, 0
    for k in np.unique(n_obj):
        m = n_obj == k
        if m.sum() >= 100:
            total += spearmanr(scores[m], nlp[m])[0] * m.sum()
            weight += int(m.sum())
    return float(spearmanr(scores, nlp)[0]), total / max(weight, 1)


class Bench:
    """One seed's data, and the truth / diagnostics of any fitted detector on it."""

    def __init__(self, spec, args, seed: int) -> None:
        from _dm import train_val_test

        from objectives.unsupervised.baselines import fit_baseline

        self.seed, self.args = seed, args
        train, val, test, test_signal, self.signals = train_val_test(
            spec, args.n_train, args.n_val, seed=seed
        )
        keep = _keep(test_signal, args.test_background, args.test_signal)
        self.train, self.val = train, val
        self.test, self.test_signal = test.take(keep), test_signal[keep]
        self.n_obj = self.test.mask.sum(1)[self.test_signal < 0]
        exact = fit_baseline("BkgDensity", {}, train, val, seed=0, synthetic=True)
        self.nlp = -exact.log_density(self.test)[self.test_signal < 0]
        #: the (train, val) draw of search repetitions 1.. (repetition 0: train, val)
        self.repetitions = [
            train_val_test(spec, args.n_train, args.n_val, seed=_repetition_seed(seed, r))[:2]
            for r in range(1, args.repetitions)
        ]

    def repetition_value(self, method: str, hp: dict, r: int) -> float:
        """``perturb_auc`` of ``method`` with ``hp`` fitted on search repetition ``r`` >= 1
        (nan where DDD keeps no distortion there)."""
        from objectives.errors import HyperparameterError
        from objectives.unsupervised.evaluate import fit_cell_detector
        from objectives.unsupervised.perturb import perturb_auc, perturbation_aucs

        train, val = self.repetitions[r - 1]
        seed = _repetition_seed(self.seed, r)
        try:
            det = fit_cell_detector(method, hp, train, val, seed=seed, n_threads=self.args.threads)
        except HyperparameterError:
            return float("nan")
        return perturb_auc(perturbation_aucs(det.score, val), det.trained_on)

    def evaluate(self, det) -> dict:
        """Per-signal truth, and the label-free diagnostics, of a fitted detector."""
        from objectives.unsupervised.metrics import per_signal_truth
        from objectives.unsupervised.perturb import perturb_auc, perturbation_aucs

        ref = det.score(self.val)  # standardised on held-out background, as in a campaign
        scores = (det.score(self.test) - ref.mean()) / max(float(ref.std()), 1e-12)
        rho, rho_n = _rho(scores[self.test_signal < 0], self.nlp, self.n_obj)
        generic = perturbation_aucs(det.score, self.val)
        return {
            "truth": per_signal_truth(scores, self.test_signal, self.signals),
            "scores": scores,
            "rho": rho,
            "rho_within_n": rho_n,
            "perturb_auc": perturb_auc(generic, det.trained_on),
            "perturbation_aucs": generic,
            "shell_auc": det.info.get("shell_auc"),  # DROCC: did it learn
        }


def _repetition_seed(seed: int, r: int) -> int:
    """The data draw of search repetition ``r`` >= 1 of benchmark seed ``seed``."""
    return 10_000 * (seed + 1) + r


def _label_free_pick(fitted, margin: float) -> tuple[int, dict]:
    """(trial, rule record): the best mean ``perturb_auc`` over the repetitions, kept
    at the defaults (trial 0) unless the product's rule lets it replace them."""
    from hpo.pick_rule import decide

    values = {i: r["perturb_auc_repetitions"] for i, _, r in fitted}
    best = max(values, key=lambda i: (float(np.nan_to_num(np.nanmean(values[i]), nan=-1)), -i))
    if best == 0:
        return 0, {"kept_defaults": False, "reason": "the defaults are the best trial"}
    rule = decide(values[best], values[0], "maximize", margin)
    return (0 if rule.kept_defaults else best), rule.to_dict() | {"best_trial": best}


def _ddd_members(detectors) -> tuple[list, list[str]]:
    """DDD's fitted models of every trial, and how each trial reads its score
    (``calibration``): the members and readings of its band ensemble over trials."""
    from objectives.unsupervised.calibration import CalibratedDetector
    from objectives.unsupervised.ddd import DDDEnsemble, DDDModel

    models, readings = [], []
    for det in detectors:
        reading = "multiplicity" if isinstance(det, CalibratedDetector) else "none"
        inner = det.inner if isinstance(det, CalibratedDetector) else det
        for m in inner.models if isinstance(inner, DDDEnsemble) else [inner]:
            if isinstance(m, DDDModel):
                models.append(m)
                readings.append(reading)
    return models, readings


def run_seed(spec, args, seed: int, log) -> dict[str, dict]:
    """Every method's result on one seed: ``{row label: evaluate(...)}``."""
    from _dm import trial_hps

    from objectives.errors import EnsembleRefused, HyperparameterError
    from objectives.unsupervised.baselines import fit_baseline
    from objectives.unsupervised.ddd import DDDBandError
    from objectives.unsupervised.ensemble import (
        ScoreEnsemble,
        combine_scores,
        ddd_band_ensemble,
        non_inverting,
    )
    from objectives.unsupervised.evaluate import fit_cell_detector
    from objectives.unsupervised.metrics import per_signal_truth

    b = Bench(spec, args, seed)
    out: dict[str, dict] = {}
    for name in args.baselines.split(",") if args.baselines else ():
        t0 = time.process_time()
        det = fit_baseline(
            name, {}, b.train, b.val, seed=seed, n_threads=args.threads, synthetic=True
        )
        out[name] = b.evaluate(det) | {"cpu": time.process_time() - t0}
        log(name, out[name])
    for k, backbone in enumerate(args.backbones.split(",")):
        search = args.search_trials if k == 0 else 0
        for method in args.methods.split(","):
            hps = trial_hps(method, max(search, 1), seed, args.epochs)
            if args.calibration:  # one reading for every trial (the search's draw overridden)
                hps = [{**hp, "calibration": args.calibration} for hp in hps]
            fitted = []
            for i, hp in enumerate(hps):
                t0 = time.process_time()
                try:
                    det = fit_cell_detector(
                        method,
                        {**hp, "backbone": backbone},
                        b.train,
                        b.val,
                        seed=1000 * seed + i,
                        n_threads=args.threads,
                    )
                except HyperparameterError as exc:  # DDD: no distortion kept
                    print(f"  seed {seed} {method} {backbone} trial {i}: {exc}", flush=True)
                    continue
                result = b.evaluate(det) | {"cpu": time.process_time() - t0, "hp": hp}
                result["perturb_auc_repetitions"] = [result["perturb_auc"]] + [
                    b.repetition_value(method, {**hp, "backbone": backbone}, r)
                    for r in range(1, len(b.repetitions) + 1 if search else 1)
                ]
                fitted.append((i, det, result))
                label = f"{method} {backbone}" + ("" if i == 0 else f" trial{i}")
                log(label, result)
            if not fitted or fitted[0][0] != 0:
                continue
            out[f"{method} {backbone}"] = fitted[0][2]
            if search:
                trial, rule = _label_free_pick(fitted, args.defaults_margin)
                pick = next(f for f in fitted if f[0] == trial)
                out[f"{method} {backbone} pick"] = pick[2] | {"trial": trial, "pick_rule": rule}
                try:
                    if method == "DDD":  # DDD's own recipe: its band's non-inverting members
                        models, readings = _ddd_members(d for _, d, _ in fitted)
                        ens = ddd_band_ensemble(models, readings, (0.7, 0.8), b.val)
                    else:  # the product's rule: members that invert a generic anomaly left out
                        members = non_inverting([d for _, d, _ in fitted], b.val, method=method)
                        ens = ScoreEnsemble.of(members, b.val, method=method)
                    out[f"{method} {backbone} trial-ensemble"] = b.evaluate(ens) | {
                        "n_members": len(getattr(ens, "members", getattr(ens, "models", [])))
                    }
                except (DDDBandError, EnsembleRefused) as exc:
                    print(f"  seed {seed} {method} {backbone} trial ensemble: {exc}", flush=True)
                    out[f"{method} {backbone} trial-ensemble"] = {"refused": str(exc)}
        both = [out.get(f"{m} {backbone}") for m in ("dSVDD", "DDD")]
        if all(both):
            combo = combine_scores([r["scores"] for r in both])
            out[f"dSVDD+DDD {backbone}"] = {
                "truth": per_signal_truth(combo, b.test_signal, b.signals)
            }
    return out


def _results(runs: list[dict[str, dict]], label: str) -> list[dict]:
    """The seeds' results of row ``label`` (an ensemble the product refused has none)."""
    return [r[label] for r in runs if "truth" in r.get(label, {})]


def _targets(runs: list[dict[str, dict]], signals, backbones: list[str], search: bool) -> dict:
    """Issue 25's targets (a)-(d) from the results of every seed; prints and returns them."""
    from objectives.unsupervised.baselines import FINDABLE_AUC

    def med(label, signal, metric):
        return _band([r["truth"][signal][metric] for r in _results(runs, label)])[0]

    labels = list(dict.fromkeys(k for r in runs for k in r))
    detectors = [
        lab
        for lab in labels
        if lab.split()[0] in METHODS and len(lab.split()) == 2 and "+" not in lab
    ]
    out: dict = {}
    if not detectors or "BkgDensity" not in labels:
        print("\nno detector or no BkgDensity row: targets not evaluated")
        return out
    print("\n(a) signals BkgDensity finds (AUC >= 0.7): best label-free detector")
    out["a"] = {}
    for s in signals:
        lim_auc, lim_eps = med("BkgDensity", s, "auc"), med("BkgDensity", s, "eps_s_1e-3")
        best = max(detectors, key=lambda lab, s=s: med(lab, s, "auc"))
        auc, eps = med(best, s, "auc"), med(best, s, "eps_s_1e-3")
        found = lim_auc >= FINDABLE_AUC
        ok = auc >= 0.9 * lim_auc and eps >= 0.5 * lim_eps
        out["a"][s] = {"findable": found, "limit_auc": lim_auc, "best": best, "auc": auc,
                       "limit_eps_1e-3": lim_eps, "eps_1e-3": eps, "met": ok}  # fmt: skip
        print(
            f"  {s}: BkgDensity AUC {lim_auc:.3f} eps(1e-3) {lim_eps:.4f} "
            f"({'findable' if found else 'inside the bulk: target does not apply'}); "
            f"best detector {best}: AUC {auc:.3f} ({auc / lim_auc:.2f} x), eps(1e-3) {eps:.4f}"
            + (f" -> {'met' if ok else 'MISSED'}" if found else "")
        )
    print("\n(b) mean AUC over the signals (medians over seeds)")
    mean = {lab: float(np.mean([med(lab, s, "auc") for s in signals])) for lab in labels}
    out["b"] = {"mean_auc": mean}
    iso = mean.get("IsolationForest", np.nan)
    for lab in detectors:
        print(f"  {lab}: {mean[lab]:.3f} vs IsolationForest {iso:.3f} -> "
              f"{'beats' if mean[lab] > iso else 'DOES NOT beat'} it")  # fmt: skip
    for m in METHODS:
        for bb in backbones:
            if bb != "MLP" and f"{m} {bb}" in mean and f"{m} MLP" in mean:
                print(f"  {m}: {bb} {mean[f'{m} {bb}']:.3f} vs MLP {mean[f'{m} MLP']:.3f}")
    if search:
        print("\n(c) label-free pick (highest perturb_auc) vs defaults, median over seeds")
        cells, wins = 0, 0
        for m in METHODS:
            for metric in ("auc", "eps_s_1e-3"):
                parts = []
                for s in signals:
                    d, p = (
                        med(f"{m} {backbones[0]}", s, metric),
                        med(f"{m} {backbones[0]} pick", s, metric),
                    )
                    if np.isnan(d) or np.isnan(p):
                        continue
                    cells += metric == "auc"
                    wins += metric == "auc" and p >= d
                    parts.append(f"{s} {p:.3f} vs {d:.3f}")
                print(f"  {m} {metric}: " + "; ".join(parts))
        out["c"] = {"cells": cells, "pick_ge_defaults": wins}
        print(f"  AUC cells with pick >= defaults: {wins} of {cells} ({wins / max(cells, 1):.0%})")
    print("\n(d) ensembles: lowest median AUC over the signals")
    out["d"] = {}
    ensembles = [lab for lab in labels if ("ensemble" in lab or "+" in lab)
                 or lab.split()[0] in ("dSVDD", "DDD") and len(lab.split()) == 2]  # fmt: skip
    for lab in ensembles:
        refused = [r[lab]["refused"] for r in runs if "refused" in r.get(lab, {})]
        if refused:
            out["d"].setdefault("refused", {})[lab] = refused
            print(f"  {lab}: refused in {len(refused)} of {len(runs)} seeds ({refused[0]})")
        if not _results(runs, lab):
            continue
        low = min(signals, key=lambda s, lab=lab: med(lab, s, "auc"))
        value = med(lab, low, "auc")
        out["d"][lab] = {"signal": low, "auc": value}
        print(f"  {lab}: {low} {value:.3f} -> {'ok' if value >= 0.5 else 'BELOW RANDOM'}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--backbones", default="MLP")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--baselines", default=",".join(BASELINES))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--n-val", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--search-trials", type=int, default=6, help="0: no search")
    ap.add_argument("--test-background", type=int, default=0, help="0: all")
    ap.add_argument("--test-signal", type=int, default=0, help="per signal; 0: all")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--repetitions", type=int, default=1,
        help="splits every search trial is scored on (search.repetitions; the rule toward "
        "the defaults needs 2 or more)",
    )  # fmt: skip
    ap.add_argument(
        "--defaults-margin", type=float, default=1.0,
        help="final.defaults_margin of the pick's rule (0: the plain best trial)",
    )  # fmt: skip
    ap.add_argument(
        "--calibration",
        choices=("none", "multiplicity"),
        help="how every detector trial reads its score (default: each method's default, "
        "a search trial's draw)",
    )
    args = ap.parse_args()

    import torch
    from _dm import OUT, dm_spec

    torch.set_num_threads(args.threads)
    spec = dm_spec(args.scale)

    def log(label: str, r: dict) -> None:
        aucs = ", ".join(f"{s} {v['auc']:.3f}" for s, v in r["truth"].items())
        extra = ""
        if "rho" in r:
            extra = (f"; rho(-log p) {r['rho']:+.2f}, within N {r['rho_within_n']:+.2f}, "
                     f"perturb_auc {r['perturb_auc']:.3f}")  # fmt: skip
        if r.get("shell_auc") is not None:
            extra += f", shell AUC {r['shell_auc']:.3f}"
        print(f"  {label} ({r.get('cpu', 0):.0f} CPU s): AUC {aucs}{extra}", flush=True)

    runs = []
    for seed in range(args.seeds):
        print(f"seed {seed}", flush=True)
        runs.append(run_seed(spec, args, seed, log))
    signals = list(next(iter(runs[0].values()))["truth"])
    n_bkg = int(np.sum(_keep_count(spec, args)))
    print(
        f"\nsynthetic DarkMachines, scale {args.scale:g}: {args.n_train} training / "
        f"{args.n_val} validation background events, {args.epochs} epochs, test "
        f"{n_bkg} background events; {args.seeds} seeds; median [16 %, 84 %]"
    )
    labels = list(dict.fromkeys(k for r in runs for k in r))
    for s in signals:
        print(f"\n{s}: AUC | eps_S 1e-2 | 1e-3 | 1e-4")
        for lab in filter(lambda lab: _results(runs, lab), labels):
            cells = [_fmt([r["truth"][s][m] for r in _results(runs, lab)]) for m in METRICS]
            print(f"  {lab:<28}" + " | ".join(cells))
    print("\nlabel-free diagnostics (medians): rho(-log p_bkg) all / within N, perturb_auc")
    for lab in labels:
        rs = [r[lab] for r in runs if lab in r and "rho" in r[lab]]
        if rs:
            print(
                f"  {lab:<28}{_band([r['rho'] for r in rs])[0]:+.2f} / "
                f"{_band([r['rho_within_n'] for r in rs])[0]:+.2f}, "
                f"{_band([r['perturb_auc'] for r in rs])[0]:.3f}"
            )
    targets = _targets(runs, signals, args.backbones.split(","), args.search_trials > 0)
    tag = args.backbones.replace(",", "_") + (f"_{args.calibration}" if args.calibration else "")
    tag += f"_r{args.repetitions}" if args.repetitions > 1 else ""
    tag += f"_n{args.n_train}" if args.n_train != 20_000 else ""
    out = OUT / f"unsupervised_quality_{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    slim = [{k: {f: v for f, v in r.items() if f != "scores"} for k, r in run.items()}
            for run in runs]  # fmt: skip
    out.write_text(json.dumps({"args": vars(args), "runs": slim, "targets": targets},
                              indent=1, default=float))  # fmt: skip
    print(f"\nwritten {out}")


def _keep_count(spec, args) -> np.ndarray:
    from objectives.darkmachines.cells import load_sets

    sets = load_sets(spec)
    return _keep(sets.test_signal, args.test_background, args.test_signal) & (sets.test_signal < 0)


if __name__ == "__main__":
    main()
