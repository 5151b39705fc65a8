"""The bump hunt's cut and count (issue 12), against hand-computed values and the generator's truth.

* formulas: the significance with and without a background uncertainty, Z = 0 below
  the expectation, the sigma -> 0 limit; thresholds, counts and the per-window numbers
  on small arrays worked out by hand;
* a scan on a scaled-down synthetic set (IAD-HGB, windows 3, 5, 7, three folds): every
  data and template event is scored once per run by a model that did not train on it;
  background only, delta_sys,n is consistent with 0 and no window reaches 3 sigma; with
  signal, the window holding 3.5 TeV is the most significant and the exact likelihood
  ratio's cut and count is at least as significant as the classifier's there;
* ``delta_sys = "mc"`` against the generator's alternative simulation (a known shift of
  the background's feature shapes) measures a positive delta_sys, below what the exact
  nominal / alternative ratio gives, which matches fresh draws from the generator.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from objectives.bumphunt import (
    Counts,
    FoldScores,
    WindowNumbers,
    cut_and_count,
    delta_sys_of_runs,
    exact_fold_scores,
    measure_delta_sys,
    significance,
    threshold,
)

# ----------------------------------------------------------------------------- formulas


@pytest.mark.parametrize(
    ("n", "b", "sigma", "z2"),
    [
        # 2 (150 ln 1.5 - 50)
        (150, 100.0, 0.0, 2 * (150 * math.log(1.5) - 50)),
        # 150 ln(150 * 200 / (1e4 + 150 * 100)) = 150 ln 1.2; (1e4 / 100) ln(1 + 5000 / 20000)
        (150, 100.0, 10.0, 2 * (150 * math.log(1.2) - 100 * math.log(1.25))),
        # 20 ln(20 * 35 / (100 + 20 * 25)) = 20 ln(7/6); (100 / 25) ln(1 + 250 / 350)
        (20, 10.0, 5.0, 2 * (20 * math.log(7 / 6) - 4 * math.log(12 / 7))),
    ],
)
def test_significance_matches_hand_computed_values(n, b, sigma, z2):
    assert significance(n, b, sigma) == pytest.approx(math.sqrt(z2), rel=1e-12)


def test_significance_hand_values_in_digits():
    assert significance(150, 100.0) == pytest.approx(4.651831, abs=1e-6)
    assert significance(150, 100.0, 10.0) == pytest.approx(3.172973, abs=1e-6)
    assert significance(20, 10.0, 5.0) == pytest.approx(1.361637, abs=1e-6)


def test_significance_is_zero_at_or_below_the_expectation():
    assert significance(90, 100.0) == 0.0
    assert significance(90, 100.0, 20.0) == 0.0
    assert significance(100, 100.0, 5.0) == 0.0
    assert significance(0, 3.0) == 0.0
    z = significance(np.array([50, 100, 150]), 100.0, 10.0)
    assert z[0] == z[1] == 0.0 and z[2] == pytest.approx(3.172973, abs=1e-6)


def test_significance_sigma_to_zero_limit_and_large_b():
    exact = significance(150, 100.0, 0.0)
    for sigma in (1e-2, 1e-4, 1e-6):
        assert significance(150, 100.0, sigma) == pytest.approx(exact, abs=10 * sigma)
    assert significance(150, 100.0, 1.0) < exact  # an uncertainty only lowers Z
    # small signal over a large background: Z -> s / sqrt(b + sigma^2)
    assert significance(1e6 + 1000, 1e6, 300.0) == pytest.approx(1000 / math.sqrt(1.09e6), 1e-3)


def test_threshold_and_counts_by_hand():
    template = np.array([0.5, 0.1, 0.9, 0.3, 1.0, 0.7, 0.2, 0.8, 0.4, 0.6])
    # 1.0 is saturated: the quantile runs over 0.1 .. 0.9; (1 - 0.2) of 8 steps = 6.4 -> 0.7
    assert threshold(template, 0.2) == 0.7
    assert threshold(template, 0.2, saturated=None) == 0.8  # 7.2 -> index 7 of 0.1 .. 1.0
    data = np.array([0.05, 0.75, 0.95, 1.0])
    fold = FoldScores(data, template, np.arange(4), np.arange(10))
    c = cut_and_count([fold], 0.2)
    # data >= 0.7: 0.75, 0.95 (1.0 saturated); template: 0.7, 0.8, 0.9
    assert c == Counts(n=4, n_after=2, n_samples=10, n_samples_after=3)
    # a second fold with its own threshold (0.8 of 4 steps = 3.2 -> 0.4); the counts add
    fold2 = FoldScores(np.array([0.2, 0.45]), np.array([0.1, 0.2, 0.3, 0.4, 0.5]), None, None)
    assert cut_and_count([fold, fold2], 0.2) == Counts(6, 2 + 1, 15, 3 + 2)


def test_window_numbers_by_hand():
    c = Counts(n=1000, n_after=30, n_samples=2000, n_samples_after=40)
    w = WindowNumbers.of(c, delta_sys=0.1)
    assert w.eps_eff == pytest.approx(0.02)
    assert w.N_b == pytest.approx(22.0)  # 0.02 * 1000 * 1.1
    assert w.sigma_b == pytest.approx(22.0 * math.sqrt(1 / 40 + 0.01))
    assert w.delta_sys_n == pytest.approx(0.5)  # (30 - 20) / 20
    assert w.sigma_stat == pytest.approx(math.sqrt(1 / 20 + 1 / 40))
    assert w.Z == pytest.approx(significance(30, 22.0, 22.0 * math.sqrt(0.035)))
    assert WindowNumbers.of(c, -0.05).sigma_sys == 0.05  # |delta_sys| unless given
    assert WindowNumbers.of(c).Z == pytest.approx(significance(30, 20.0, 20.0 / math.sqrt(40)))


def test_delta_sys_is_observed_over_expected_summed_over_windows():
    windows = [Counts(1000, 30, 2000, 40), Counts(500, 10, 1000, 40)]  # expected 20 and 20
    assert measure_delta_sys(windows) == pytest.approx(0.0)
    assert measure_delta_sys([Counts(1000, 25, 2000, 40)]) == pytest.approx(0.25)
    median, per_run = delta_sys_of_runs([[Counts(100, 12, 100, 10)], [Counts(100, 9, 100, 10)]])
    assert per_run == pytest.approx([0.2, -0.1]) and median == pytest.approx(0.05)


def test_exact_fold_scores_partition_data_and_template():
    data, template = np.arange(11.0), 100 + np.arange(23.0)
    folds = [exact_fold_scores(data, template, f, 3, run=2) for f in range(3)]
    assert sorted(np.concatenate([f.data for f in folds])) == list(data)
    assert sorted(np.concatenate([f.template for f in folds])) == list(template)
    for f in folds:
        np.testing.assert_array_equal(f.data, data[f.data_index])


# ----------------------------------------------------------------------------- a scan

SCAN = """
[campaign]
name = "{name}"
run_dir = "run"

[data]
source = "synthetic"
scale = 0.03
seed = 3

[grid]
classifiers = ["HGB"]
modes = ["IAD"]
signal = {signal}
windows = {windows}

[search]
n_trials = 1
repetitions = 1

[search.fixed.HGB]
n_ensemble = 1

[bumphunt]
folds = 3
runs = {runs}
eps_b = [0.1, 0.01]
delta_sys = "{delta_sys}"
mismodelling = 3.0
"""


def _run_scan(folder, text):
    """Load the campaign, run every unit in this process, combine; the campaign."""
    from hpo.bumphunt import run_tasks
    from hpo.bumphunt_combine import combine
    from hpo.config import load_campaign

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.toml").write_text(text)
    campaign = load_campaign(folder / "c.toml")
    run_tasks(campaign)
    combine(campaign)
    return campaign


def _results(campaign, mode="IAD", source="default") -> dict:
    path = campaign.run_dir / "bumphunt" / mode / source / "results.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """IAD-HGB over windows 3, 5, 7 with 0 and 300 signal events; every fit's training rows."""
    from objectives.classifiers.hgb import HGBEnsemble

    fits = []
    original = HGBEnsemble.fit

    def recording_fit(self, X, y, sample_weight=None, validation=None):
        fits.append({row.tobytes() for row in np.asarray(X, np.float32)})
        return original(self, X, y, sample_weight=sample_weight, validation=validation)

    text = SCAN.format(
        name="scan", signal="[0, 300]", windows="[3, 5, 7]", runs=3, delta_sys="closure"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(HGBEnsemble, "fit", recording_fit)
        campaign = _run_scan(tmp_path_factory.mktemp("scan"), text)
    return campaign, fits


def test_every_event_is_scored_once_per_run_by_a_model_that_did_not_train_on_it(scan):
    from hpo.bumphunt import load_unit, series_cell, task_units, tasks
    from objectives.cells import prepare

    campaign, fits = scan
    order = [u for t in range(len(tasks(campaign))) for u in task_units(campaign, t)]
    assert len(order) == len(fits) == 3 * 3 * 2 * 3  # windows x folds x series x runs
    held = {}
    for unit, trained in zip(order, fits, strict=True):
        scores = load_unit(campaign, unit)
        p = prepare(series_cell(campaign, unit.series, unit.window))
        n_data = int(np.count_nonzero(p.y == 1))
        rows = np.concatenate([scores.data_index, n_data + scores.template_index])
        # the fit saw every other row, and none of the held-out ones
        assert len(trained) == len(p.y) - rows.size
        assert not {r.tobytes() for r in p.X[rows]} & trained, unit.describe()
        assert np.all(p.y[scores.data_index] == 1) and np.all(
            p.y[n_data + scores.template_index] == 0
        )
        key = (unit.series, unit.window, unit.run)
        d, t = held.setdefault(key, ([], []))
        d.append(scores.data_index)
        t.append(scores.template_index)
    for (series, window, _), (d, t) in held.items():
        p = prepare(series_cell(campaign, series, window))
        n_data = int(np.count_nonzero(p.y == 1))
        # over the folds: every data event and every template event exactly once
        np.testing.assert_array_equal(np.sort(np.concatenate(d)), np.arange(n_data))
        np.testing.assert_array_equal(np.sort(np.concatenate(t)), np.arange(len(p.y) - n_data))


def _z(entry) -> list[float]:
    return [r["Z"] for r in entry["runs"]]


def test_background_only_closes_within_statistics_and_never_reaches_3_sigma(scan):
    campaign, _ = scan
    r = _results(campaign)
    s = r["series"]["HGB-IAD-norot-N0-baseline"]
    assert r["delta_sys"]["HGB-norot-baseline"]["method"] == "closure"
    assert s["delta_sys_method"] == "closure" and s["delta_sys_group"] == "HGB-norot-baseline"
    for window, per_eps in s["windows"].items():
        for eps, entry in per_eps.items():
            dev, stat = entry["delta_sys_n"]["median"], entry["sigma_stat"]["median"]
            assert abs(dev) < 3 * stat, (window, eps, dev, stat)
            assert max(_z(entry)) < 3.0, (window, eps, _z(entry))
            for run in entry["runs"]:  # the counts behind the numbers add up
                assert run["eps_eff"] == pytest.approx(run["N_samples_after"] / run["N_samples"])
                assert 0 < run["N_after"] <= run["N"]
    # the measured delta_sys is that of these background-only counts
    measured = r["delta_sys"]["HGB-norot-baseline"]["values"]
    assert all(abs(d) < 0.3 for d in measured), measured


def test_delta_sys_has_an_error_and_is_never_applied_to_its_own_series(scan):
    """Issue 26 §7: value ± bootstrap error; the signal-0 series it is measured on gets none."""
    from hpo.bumphunt_combine import summary

    campaign, _ = scan
    r = _results(campaign)
    d = r["delta_sys"]["HGB-norot-baseline"]
    assert all(e > 0 for e in d["errors"]) and d["bootstrap"]["replicates"] > 900
    assert d["consistent_with_zero"] == [
        abs(v) < 2 * e for v, e in zip(d["values"], d["errors"], strict=True)
    ]
    assert d["applied"] == [max(v, 0.0) for v in d["values"]]  # negative_delta_sys = "zero"
    assert d["sigma_sys"] == [abs(v) for v in d["values"]]
    own = r["series"]["HGB-IAD-norot-N0-baseline"]
    assert (
        own["delta_sys_applied"] == [0.0, 0.0]
        and "measured on this series" in own["delta_sys_note"]
    )
    other = r["series"]["HGB-IAD-norot-N300-baseline"]
    assert other["delta_sys_applied"] == d["applied"] and other["delta_sys_note"] is None
    for i, eps in enumerate(("0.1", "0.01")):
        for w in ("w3", "w5", "w7"):
            assert {x["delta_sys"] for x in own["windows"][w][eps]["runs"]} == {0.0}
            runs = other["windows"][w][eps]["runs"]
            assert {(x["delta_sys"], x["sigma_sys"]) for x in runs} == {
                (d["applied"][i], d["sigma_sys"][i])
            }
    text = summary(campaign)
    for value, error in zip(d["values"], d["errors"], strict=True):
        assert f"δ_sys = {value:+.3g} ± {error:.2g}" in text
    assert "a negative delta_sys is applied as 0" in text
    assert "HGB-IAD-norot-N0-baseline *" in text and "* no δ_sys applied" in text
    assert "exact LR, background only (true δ_sys = 0): ε_B = 0.1: δ_sys = " in text


def test_the_exact_ratio_closes_on_the_exact_background(scan):
    """Known truth: with an exact template the optimal score's delta_sys is 0."""
    campaign, _ = scan
    d = _results(campaign)["limit_delta_sys"]
    for value, error in zip(d["values"], d["errors"], strict=True):
        assert 0 < error < 0.5 and abs(value) < 3 * error, (value, error)


def test_a_negative_delta_sys_never_raises_z_unless_asked():
    from hpo.bumphunt_combine import _applied

    c = Counts(n=2000, n_after=30, n_samples=4000, n_samples_after=40)  # expected 20
    zero, apply = _applied({"values": [-0.2]}, "zero"), _applied({"values": [-0.2]}, "apply")
    assert (zero["applied"], zero["sigma_sys"]) == ([0.0], [0.2])
    assert (apply["applied"], apply["sigma_sys"]) == ([-0.2], [0.2])
    plain = WindowNumbers.of(c).Z
    assert WindowNumbers.of(c, zero["applied"][0], zero["sigma_sys"][0]).Z <= plain
    assert WindowNumbers.of(c, apply["applied"][0], apply["sigma_sys"][0]).Z > plain  # why


def test_signal_peaks_in_the_window_of_3_5_TeV_and_the_exact_ratio_bounds_it(scan):
    campaign, _ = scan
    r = _results(campaign)
    s = r["series"]["HGB-IAD-norot-N300-baseline"]["windows"]
    limit = r["limit"]["N300"]["windows"]
    for eps in ("0.1", "0.01"):
        median = {w: s[w][eps]["Z"]["median"] for w in s}
        assert max(median, key=median.get) == "w5", (eps, median)
        assert median["w5"] > 3.0, median
        exact = limit["w5"][eps]["Z"]
        # the Neyman-Pearson score with an exact template: at least the classifier's Z,
        # up to the run-to-run spread of the classifier
        spread = s["w5"][eps]["Z"]["q84"] - s["w5"][eps]["Z"]["q16"]
        assert exact["median"] >= median["w5"] - spread, (eps, exact, s["w5"][eps]["Z"])
        assert max(limit, key=lambda w: limit[w][eps]["Z"]["median"]) == "w5"
    # background only, the exact ratio finds nothing either
    for per_eps in r["limit"]["N0"]["windows"].values():
        assert all(max(_z(e)) < 3.0 for e in per_eps.values())


def test_results_files_and_plots(scan):
    campaign, _ = scan
    folder = campaign.run_dir / "bumphunt" / "IAD" / "default"
    for name in ("significance", "delta_sys"):
        for ext in ("png", "pdf"):
            assert (folder / f"{name}.{ext}").stat().st_size > 1000
    r = _results(campaign)
    assert r["provenance"]["campaign_sha256"] == campaign.sha256
    assert r["provenance"]["data_sha256"]
    assert [w["window"] for w in r["windows"]] == [3, 5, 7]
    assert [w["region"] for w in r["windows"]] == [[3.1, 3.5], [3.3, 3.7], [3.5, 3.9]]
    run = r["series"]["HGB-IAD-norot-N300-baseline"]["windows"]["w5"]["0.01"]["runs"][0]
    expected = {"N", "N_after", "N_samples", "N_samples_after", "eps_eff", "N_b", "sigma_b"}
    expected |= {"Z", "delta_sys_n", "sigma_stat", "delta_sys", "sigma_sys"}
    assert set(run) == expected


def test_finished_units_are_skipped_and_stale_ones_retrained(scan):
    from hpo.bumphunt import load_unit, run_tasks, task_units

    campaign, _ = scan
    assert run_tasks(campaign) == 0
    # a unit recorded with other hyperparameters (an older export) is trained again
    unit = task_units(campaign, 4)[3]
    npz, record = unit.paths(campaign)
    before = load_unit(campaign, unit).data
    stale = json.loads(record.read_text())
    stale["hp"]["max_iter"] = 7
    record.write_text(json.dumps(stale))
    assert not unit.done(campaign)
    assert run_tasks(campaign) == 1 and unit.done(campaign)
    np.testing.assert_array_equal(load_unit(campaign, unit).data, before)  # deterministic


# ----------------------------------------------------------------------------- delta_sys = "mc"


@pytest.fixture(scope="module")
def mc(tmp_path_factory):
    text = SCAN.format(name="mc", signal="[0]", windows="[5]", runs=2, delta_sys="mc")
    return _run_scan(tmp_path_factory.mktemp("mc"), text)


def test_mc_delta_sys_has_the_sign_and_size_the_mismodelling_implies(mc):
    r = _results(mc)
    d = r["delta_sys"]["HGB-norot-baseline"]
    assert d["method"] == "mc" and d["series"] == "HGB-IAD-norot-N0-baseline-mc"
    mc_series = r["series"][d["series"]]["windows"]["w5"]
    nominal = r["series"]["HGB-IAD-norot-N0-baseline"]["windows"]["w5"]
    for i, eps in enumerate(("0.1", "0.01")):
        stat = mc_series[eps]["sigma_stat"]["median"]
        measured, exact = d["values"][i], d["exact"][i]
        # data over the alternative simulation: an excess, well beyond statistics ...
        assert measured > 3 * stat, (eps, measured, stat)
        # ... that an optimal score (the exact ratio) makes at least as large
        assert measured < exact + 2 * stat, (eps, measured, exact, stat)
    # at the loosest cut a small classifier finds most of it (0.48 of an exact 0.74 here)
    assert d["values"][0] > 0.5 * d["exact"][0], d
    for eps in ("0.1", "0.01"):  # against the nominal simulation the same classifier sees none
        assert abs(nominal[eps]["delta_sys_n"]["median"]) < 3 * nominal[eps]["sigma_stat"]["median"]
    # the significance of the nominal series carries the measured delta_sys
    assert nominal["0.1"]["runs"][0]["delta_sys"] == pytest.approx(d["values"][0])


def test_exact_mc_delta_sys_matches_fresh_draws_of_the_generator(mc):
    """The alternative file is distributed as the generator's alternative simulation."""
    from objectives.regions import Region
    from objectives.synthetic import SyntheticModel, log_mismodelling_ratio

    r = _results(mc)
    exact = r["delta_sys"]["HGB-norot-baseline"]["exact"][0]  # eps_B = 0.1
    region, rng, n = Region.window(5), np.random.default_rng(11), 20_000
    draws = []
    for strength in (0.0, 3.0):
        model = SyntheticModel(mismodelling=strength)
        mjj = model.sample_mjj_bkg(n, rng, *region.sr)
        draws.append(log_mismodelling_ratio(model.sample_bkg(mjj, rng), 3.0, region))
    nominal, alt = draws
    cut = np.quantile(alt, 0.9, method="nearest")
    fresh = np.mean(nominal >= cut) / np.mean(alt >= cut) - 1
    # binomial errors of the fresh draws and of the file's ~1.5k + ~3k selected events
    assert fresh == pytest.approx(exact, abs=0.15), (fresh, exact)
    assert fresh > 0.5


# ----------------------------------------------------------------------------- "sidebands"


def test_sideband_templates_sample_the_sidebands(tmp_path):
    """CATHODE on the sidebands: templates at the sidebands' mjj, 4x the sideband data.

    The exact one samples the generator's background there; the flow is trained outside
    the window *and* its sidebands, so it interpolates into them as into the SR.
    """
    import dataclasses

    from objectives.cells import CATHODE_OVERSAMPLING, Cell, DataSpec, prepare
    from objectives.lhco import load_events
    from objectives.regions import Region
    from objectives.synthetic import SyntheticSpec, write_synthetic
    from objectives.templates import sideband_flow_template, truth_template

    files = write_synthetic(SyntheticSpec(scale=0.02, seed=6, extra_range=(3.2, 3.8)), tmp_path)
    region = Region.window(6)
    spec = DataSpec(*files, region=region, train_on="sidebands")
    rd = spec.events(0, with_test=False)
    tiny = {"n_blocks": 2, "hidden": 16, "epochs": 2, "n_keep": 2, "lr": 1e-3, "batch_size": 512}
    exact = truth_template(spec, 0, seed=1, shifted=False, cache_dir=tmp_path / "t")
    flow = sideband_flow_template(spec, 0, seed=1, hp=tiny, cache_dir=tmp_path / "f")
    for path in (exact, flow):
        rows = np.load(path)
        assert rows.shape == (CATHODE_OVERSAMPLING * len(rd.sidebands), 5)
        assert np.all(region.in_sidebands(rows[:, 0]))
    # the flow's training data: the background outside [3.2, 4.0] TeV (window and sidebands)
    entries = list((tmp_path / "f").glob("background-*/MANIFEST.json"))
    (manifest,) = [json.loads(p.read_text()) for p in entries]
    assert manifest["fields"]["region"]["sr"] == [3.2, 4.0]
    events = load_events(files[0])
    outside = (events.label == 0) & ((events.mjj <= 3.2) | (events.mjj >= 4.0))
    assert manifest["info"]["n_sideband"] == int(np.count_nonzero(outside))
    # CATHODE trains sideband data (label 1) against them; no truth oracle there
    p = prepare(Cell("HGB", "CATHODE", 0, False, dataclasses.replace(spec, samples_file=exact)))
    assert np.count_nonzero(p.y == 1) == len(rd.sidebands) and p.X_test is None


def test_mc_templates_come_from_the_alternative_simulation(tmp_path):
    """The "mc" variants train against the alternative simulation, measured with its density.

    E_nominal[log p_bkg / p_alt] = KL(nominal || alt) > 0 and E_alt[...] = -KL(alt || nominal) < 0.
    """
    from hpo.config import GridPoint, load_campaign
    from hpo.data import alternative_file, data_spec, ensure_data
    from hpo.products import resolve, variant_spec
    from objectives.regions import Region
    from objectives.synthetic import log_mismodelling_ratio

    (tmp_path / "c.toml").write_text(
        SCAN.format(name="alt", signal="[0]", windows="[6]", runs=1, delta_sys="mc")
        .replace('modes = ["IAD"]', 'modes = ["IAD", "CATHODE"]')
        .replace("seed = 3", 'seed = 3\nbackground_model = "truth"')
    )
    campaign = load_campaign(tmp_path / "c.toml")
    ensure_data(campaign)
    region = Region.window(6)
    iad = variant_spec(campaign, GridPoint("HGB", "IAD", False, 0, "baseline", region), "mc")
    assert iad.extrabkg_file == alternative_file(campaign) and iad.extrabkg_file.is_file()
    point = GridPoint("HGB", "CATHODE", False, 0, "baseline", region)
    cathode = variant_spec(campaign, point, "mc")
    nominal = resolve(campaign)[point].samples_file
    means = {}
    for name, path in (("alt", cathode.samples_file), ("nominal", nominal)):
        rows = np.load(path)[:3000]
        assert np.all(region.in_sr(rows[:, 0]))
        means[name] = float(np.mean(log_mismodelling_ratio(rows[:, 1:], 3.0, region)))
    extra = iad.events(0).iad_template.x[:3000]
    means["alt file"] = float(np.mean(log_mismodelling_ratio(extra, 3.0, region)))
    data = data_spec(campaign, point).events(0).sr.x[:3000]
    means["data"] = float(np.mean(log_mismodelling_ratio(data, 3.0, region)))
    assert means["alt"] < 0 and means["alt file"] < 0, means
    assert means["nominal"] > 0 and means["data"] > 0, means
