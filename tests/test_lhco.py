"""Loader of the LHC Olympics R&D schema: derived features against hand computations, errors."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest

from objectives.errors import DataError
from objectives.features import FEATURE_SETS, derive_features, required_columns
from objectives.files import file_sha256
from objectives.lhco import load_events
from objectives.regions import DEFAULT_REGION, Region

# Two events, GeV. Event 0: lighter jet first. Event 1: heavier jet first (must be swapped).
JETS = [
    # px, py, pz, m, tau1, tau2, tau3 for jet 1, then jet 2
    ((1000.0, 0.0, 0.0, 100.0, 0.4, 0.2, 0.1), (-1000.0, 0.0, 0.0, 500.0, 0.5, 0.1, 0.05)),
    ((0.0, 1500.0, 800.0, 400.0, 0.8, 0.2, 0.1), (0.0, -1500.0, -300.0, 150.0, 0.6, 0.3, 0.2)),
]


def frame(rows=JETS) -> pd.DataFrame:
    cols = {}
    for j in (1, 2):
        for i, k in enumerate(("px", "py", "pz", "m", "tau1", "tau2", "tau3")):
            key = f"{k}j{j}"
            cols[key] = [r[j - 1][i] for r in rows]
    cols["label"] = [0, 1][: len(rows)] + [0] * max(0, len(rows) - 2)
    return pd.DataFrame(cols)


def hand_mjj(a, b) -> float:
    ea = math.sqrt(a[0] ** 2 + a[1] ** 2 + a[2] ** 2 + a[3] ** 2)
    eb = math.sqrt(b[0] ** 2 + b[1] ** 2 + b[2] ** 2 + b[3] ** 2)
    p2 = sum((a[i] + b[i]) ** 2 for i in range(3))
    return math.sqrt((ea + eb) ** 2 - p2) / 1000


@pytest.fixture
def h5(tmp_path):
    def write(df, name="events.h5"):
        path = tmp_path / name
        df.to_hdf(path, key="df", mode="w")
        return path

    return write


def test_regions():
    mjj = np.array([3.0, 3.2, 3.31, 3.69, 3.8, 4.0])
    assert DEFAULT_REGION.in_sr(mjj).tolist() == [False, False, True, True, False, False]
    assert DEFAULT_REGION.in_sidebands(mjj).tolist() == [False, True, False, False, True, False]
    moved = Region.window(6)  # the bump hunt's next window: 3.4-3.8 TeV, sidebands 3.2-3.4, 3.8-4.0
    assert moved.sr == (3.4, 3.8) and moved.sidebands == ((3.2, 3.4), (3.8, 4.0))
    assert Region.window(5) == DEFAULT_REGION


def test_baseline_features_against_hand_computation(h5):
    ev = load_events(h5(frame()))
    assert ev.feature_names == ("mJ1", "dmJ", "tau21_J1", "tau21_J2")
    assert ev.mjj[0] == pytest.approx(
        math.sqrt(1000**2 + 100**2) / 1000 + math.sqrt(1000**2 + 500**2) / 1000
    )
    for i, (a, b) in enumerate(JETS):
        assert ev.mjj[i] == pytest.approx(hand_mjj(a, b), rel=1e-12)
    # event 0 already ordered; event 1 swapped: J1 = the 150 GeV jet with its own taus
    np.testing.assert_allclose(ev.x[0], [0.1, 0.4, 0.2 / 0.4, 0.1 / 0.5], rtol=1e-12)
    np.testing.assert_allclose(ev.x[1], [0.15, 0.25, 0.3 / 0.6, 0.2 / 0.8], rtol=1e-12)
    assert ev.label.tolist() == [0, 1] and ev.label.dtype == np.int8
    assert ev.sha256 == file_sha256(ev.path)


def test_delta_r_and_noise(h5):
    path = h5(frame())
    ev = load_events(path, include_delta_r=True, n_noise=3, noise_seed=7)
    assert ev.feature_names[-4:] == ("DeltaR", "noise0", "noise1", "noise2")
    assert ev.x[0, 4] == pytest.approx(math.pi)  # back to back in phi, both at rapidity 0
    # event 1: same azimuth gap pi, rapidities from E and pz
    y = []
    for p in JETS[1]:
        e = math.sqrt(sum(v * v for v in p[:4]))
        y.append(0.5 * math.log((e + p[2]) / (e - p[2])))
    assert ev.x[1, 4] == pytest.approx(math.hypot(y[0] - y[1], math.pi))
    again = load_events(path, include_delta_r=True, n_noise=3, noise_seed=7)
    other = load_events(path, include_delta_r=True, n_noise=3, noise_seed=8)
    np.testing.assert_array_equal(ev.x, again.x)
    assert not np.allclose(ev.x[:, 5:], other.x[:, 5:])


def test_noise_is_standard_normal(h5):
    rng = np.random.default_rng(0)
    rows = [
        (
            tuple(rng.normal(0, 500, 3)) + (100.0, 1.0, 0.5, 0.2),
            tuple(rng.normal(0, 500, 3)) + (50.0, 1.0, 0.5, 0.2),
        )
        for _ in range(4000)
    ]
    ev = load_events(h5(frame(rows)), n_noise=2)
    noise = ev.x[:, 4:]
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 1) < 0.05
    assert abs(np.corrcoef(noise.T)[0, 1]) < 0.06


def extended_frame(n=3, seed=0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = frame([JETS[i % 2] for i in range(n)])
    taus = rng.uniform(0.1, 1.0, size=(n, 2, 3, 9))  # event, jet, beta (0.5, 1, 2), N
    for j in (1, 2):
        for bi, b in enumerate(("5", "1", "2")):
            for nn in range(1, 10):
                df[f"tau{nn}j{j}_{b}"] = taus[:, j - 1, bi, nn - 1]
    return df, taus


def test_extended_sets_follow_the_reference_definitions():
    df, taus = extended_frame()
    swapped = df["mj1"].to_numpy() > df["mj2"].to_numpy()
    lighter = np.where(swapped[:, None, None], taus[:, 1], taus[:, 0])  # (n, beta, N)
    heavier = np.where(swapped[:, None, None], taus[:, 0], taus[:, 1])
    for name, width in FEATURE_SETS.items():
        _, x, names = derive_features(df, feature_set=name)
        assert x.shape == (len(df), width) and len(names) == width
    _, x10, n10 = derive_features(df, feature_set="extended10")
    assert n10[2:4] == ("tau21_J1", "tau21_J2") and n10[-1] == "tau54_J2"
    np.testing.assert_allclose(x10[:, 2], lighter[:, 1, 1] / lighter[:, 1, 0])
    np.testing.assert_allclose(x10[:, 9], heavier[:, 1, 4] / heavier[:, 1, 3])
    _, x12, _ = derive_features(df, feature_set="extended12")
    np.testing.assert_allclose(
        x12[:, 2:], np.stack([lighter[:, 1, :5], heavier[:, 1, :5]], 2).reshape(len(df), 10)
    )
    _, x56, _ = derive_features(df, feature_set="extended56")
    np.testing.assert_allclose(x56[:, 2:29], lighter.reshape(len(df), 27))
    np.testing.assert_allclose(x56[:, 29:], heavier.reshape(len(df), 27))


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda df: df.drop(columns=["mj2"]), "'mj2'"),
        (lambda df: df.assign(tau1j1=[np.nan, np.inf]), "'tau1j1' has 2 row(s) with NaN"),
        (lambda df: df.iloc[:0], "no events"),
        (lambda df: df.assign(tau1j2=[0.5, 0.0]), "tau1"),
        (lambda df: df.assign(label=[0, 2]), "'label'"),
    ],
)
def test_malformed_files_raise_data_error_naming_file(h5, mutate, needle):
    path = h5(mutate(frame()))
    with pytest.raises(DataError) as err:
        load_events(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_events(tmp_path / "nope.h5")
    bad = tmp_path / "text.h5"
    bad.write_text("not an hdf5 file\n")
    with pytest.raises(DataError, match="text.h5"):
        load_events(bad)


def test_extended_set_without_columns_lists_them(h5):
    path = h5(frame())
    with pytest.raises(DataError) as err:
        load_events(path, feature_set="extended10")
    msg = str(err.value)
    assert str(path) in msg and "tau1j1_1" in msg and "tau5j2_1" in msg
    assert set(required_columns("extended56")) >= {"tau9j2_2", "tau1j1_5"}


def test_file_sha256(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"abc" * 1000)
    assert file_sha256(p) == hashlib.sha256(b"abc" * 1000).hexdigest()
