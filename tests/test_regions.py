"""A region is a value: a campaign with ``region = [3.4, 3.8]`` moves everything consistently.

Checked against the synthetic generator's truth: the files' own labels and mjj, and
the generator's densities (Monte Carlo over its exact mjj spectrum).
"""

from __future__ import annotations

import numpy as np
import pytest

from hpo.cells import campaign_cells
from hpo.config import ConfigError, load_campaign
from hpo.data import ensure_data
from objectives.lhco import load_events
from objectives.regions import DEFAULT_REGION, Region
from objectives.synthetic import SyntheticModel

MOVED = """
[campaign]
name = "moved"
run_dir = "run"

[data]
source = "synthetic"
scale = 0.03
seed = 2
region = [3.4, 3.8]
background_model = "truth"

[grid]
classifiers = ["HGB"]
modes = ["IAD", "CWoLa", "CATHODE"]
signal = [600]

[search]
n_trials = 1
repetitions = 1
"""


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("moved")
    (folder / "c.toml").write_text(MOVED)
    campaign = load_campaign(folder / "c.toml")
    ensure_data(campaign)
    return campaign


def test_region_values():
    r = Region((3.4, 3.8))
    assert r.sidebands == ((3.2, 3.4), (3.8, 4.0)) and r.tag == "SR3.4-3.8"
    assert Region.window(6) == r and Region.window(5) == DEFAULT_REGION
    assert not r.is_default and DEFAULT_REGION.is_default
    with pytest.raises(ValueError, match="0 < lo < hi"):
        Region((3.7, 3.3))
    with pytest.raises(ValueError, match="either side"):
        Region((3.4, 3.8), sidebands=((3.2, 3.5), (3.8, 4.0)))


def test_campaign_region_names_the_cells_and_is_checked(moved, tmp_path):
    keys = [cc.key for cc in campaign_cells(moved)]
    assert keys[0] == "HGB-IAD-norot-N600-baseline-SR3.4-3.8"
    assert moved.data.region == Region((3.4, 3.8))
    bad = tmp_path / "bad.toml"
    bad.write_text(MOVED.replace("region = [3.4, 3.8]", "region = [3.8, 3.4]"))
    with pytest.raises(ConfigError, match=r"data\.region: must be \[lo, hi\]"):
        load_campaign(bad)


def test_sr_sidebands_and_test_set_move_with_the_region(moved):
    cells = {cc.point.mode: cc.cell() for cc in campaign_cells(moved)}
    data = cells["IAD"].data
    rd = data.events(600)
    events, extra = load_events(data.data_file), load_events(data.extrabkg_file)
    # the extra background was generated over the moved region
    assert extra.mjj.min() > 3.4 and extra.mjj.max() < 3.8 and extra.mjj.max() > 3.79
    in_data = events.label == 0
    in_data[np.flatnonzero(events.label == 1)[:600]] = True  # the first 600 signal events
    sr = (events.mjj > 3.4) & (events.mjj < 3.8)
    sb = ((events.mjj > 3.2) & (events.mjj < 3.4)) | ((events.mjj > 3.8) & (events.mjj < 4.0))
    assert len(rd.sr) == np.count_nonzero(in_data & sr)
    assert len(rd.sidebands) == np.count_nonzero(in_data & sb)
    assert np.all((rd.sr.mjj > 3.4) & (rd.sr.mjj < 3.8))
    # test set: the rest of the extra background and the signal in the moved SR not injected
    n_sig_test = np.count_nonzero((events.label == 1) & ~in_data & sr)
    assert rd.info["n_test_signal"] == n_sig_test > 0
    assert len(rd.iad_template) + rd.info["n_test_background"] == len(extra)
    assert np.all((rd.test.mjj > 3.4) & (rd.test.mjj < 3.8))
    # the modes train against what their region defines
    from objectives.cells import prepare

    assert prepare(cells["CWoLa"]).info["n_template"] == len(rd.sidebands)
    cathode = np.load(cells["CATHODE"].data.samples_file)
    assert np.all((cathode[:, 0] > 3.4) & (cathode[:, 0] < 3.8))


def test_exact_likelihood_uses_the_moved_region(moved):
    """p_bkg(x | SR) of the limit is the generator's density averaged over its mjj in 3.4-3.8."""
    from hpo.products import limit

    model, region = SyntheticModel(), Region((3.4, 3.8))
    rng = np.random.default_rng(0)
    mjj = model.sample_mjj_bkg(100_000, rng, 3.4, 3.8)
    x0 = model.sample_bkg(np.array([3.45, 3.79]), np.random.default_rng(1))
    for x in x0:
        density = np.exp(model.log_prob_bkg(np.repeat(x[None], mjj.size, 0), mjj))
        mc, err = density.mean(), density.std() / np.sqrt(mjj.size)
        exact = np.exp(model.log_prob_sr(x[None], False, region))[0]
        default = np.exp(model.log_prob_sr(x[None], False, DEFAULT_REGION))[0]
        assert abs(exact - mc) < 5 * err
        assert abs(default - mc) > 50 * err  # the default region's density is another one
    cc = campaign_cells(moved)[0]
    curve = limit(moved, cc.point)
    test = cc.cell().data.events(600).test
    from objectives.metrics import max_sic

    lr = model.likelihood_ratio(test.x, region=region)
    assert curve["max_sic"] == pytest.approx(max_sic(lr, test.label))
    assert curve["max_sic"] > 5.0
