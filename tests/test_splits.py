"""Splits as values: half, full and k-fold, against their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from objectives.splits import Split


def test_half_split_disjoint_stratified_reproducible():
    y = np.array([1] * 101 + [0] * 300, dtype=np.int8)
    a, b = Split.half(4).indices(y)
    assert np.intersect1d(a, b).size == 0
    assert np.union1d(a, b).size == y.size
    assert abs(y[a].sum() - y[b].sum()) <= 1
    assert abs((y[a] == 0).sum() - (y[b] == 0).sum()) <= 1
    a2, b2 = Split.half(4).indices(y)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    a3, _ = Split.half(5).indices(y)
    assert not np.array_equal(a, a3)


def test_full_split_trains_and_scores_on_everything():
    y = np.array([0, 1, 0, 1, 1])
    train, held = Split.full(3).indices(y)
    assert train.tolist() == held.tolist() == [0, 1, 2, 3, 4]
    assert not Split.full().holds_out and Split.half().holds_out


@pytest.mark.parametrize("k", [2, 3, 5])
def test_kfold_folds_are_disjoint_covering_stratified_and_reproducible(k):
    rng = np.random.default_rng(0)
    y = (rng.random(1003) < 0.2).astype(np.int8)
    held = [Split.kfold(f, k, run=7).indices(y) for f in range(k)]
    folds = [h for _, h in held]
    # the held-out folds partition the events
    assert np.array_equal(np.sort(np.concatenate(folds)), np.arange(y.size))
    for (train, fold), again in zip(
        held, (Split.kfold(f, k, run=7) for f in range(k)), strict=True
    ):
        assert np.intersect1d(train, fold).size == 0
        assert np.union1d(train, fold).size == y.size
        np.testing.assert_array_equal(fold, again.indices(y)[1])
        # stratified: each class spread evenly over the folds (sizes differ by at most one)
        for label in (0, 1):
            n = np.count_nonzero(y == label)
            assert abs(np.count_nonzero(y[fold] == label) - n / k) < 1
    # another run is another partition
    assert not np.array_equal(folds[0], Split.kfold(0, k, run=8).indices(y)[1])


def test_model_seeds_are_stable_and_paired_per_split():
    # the half / full seeds are those of every earlier campaign (paired repetitions)
    expected = int(np.random.SeedSequence([0xC0FFEE, 3, 0]).generate_state(1)[0])
    assert Split.half(3).model_seed() == expected
    assert Split.full(3).model_seed() == int(
        np.random.SeedSequence([0xC0FFEE, 3, 1]).generate_state(1)[0]
    )
    seeds = {Split.kfold(f, 5, 0).model_seed() for f in range(5)}
    assert len(seeds) == 5 and Split.half(0).model_seed() not in seeds


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Split("quarter"), "split must be one of"),
        (lambda: Split.kfold(5, 5), "0 <= fold < k"),
        (lambda: Split.kfold(0, 1), "k >= 2"),
        (lambda: Split.half(-1), "run must be an integer >= 0"),
        (lambda: Split.of("fold"), "'half' or 'full'"),
    ],
)
def test_bad_splits_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_strings_are_the_common_case():
    assert Split.of("half", 2) == Split.half(2) and Split.of("full") == Split.full(0)
    split = Split.kfold(1, 4, 2)
    assert Split.of(split, run=9) is split


def _paper_half(y: np.ndarray, run: int) -> tuple[np.ndarray, np.ndarray]:
    """The paper's half split, written out independently of ``Split``."""
    rng = np.random.default_rng(np.random.SeedSequence([0x5A11, run]))
    train, held = [], []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        idx = idx[rng.permutation(idx.size)]
        train.append(idx[: (idx.size + 1) // 2])
        held.append(idx[(idx.size + 1) // 2 :])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def test_half_split_without_a_reserve_is_the_papers():
    y = (np.random.default_rng(2).random(999) < 0.3).astype(np.int8)
    for run in range(3):
        for got, want in zip(Split.half(run).indices(y), _paper_half(y, run), strict=True):
            np.testing.assert_array_equal(got, want)
        assert Split.half(run).choice_indices(y).tolist() == Split.half(run).indices(y)[1].tolist()


@pytest.mark.parametrize("reserve", [0.1, 0.25, 0.45])
def test_reserved_events_are_never_held_out_by_a_repetition(reserve):
    """Final runs score on events no repetition of the search was scored on, and the NN's
    epoch choices are made on events that are neither trained on nor scored."""
    y = np.array([1] * 301 + [0] * 1200, dtype=np.int8)
    scored = set()
    for run in range(4):
        train, held, choice = (
            *Split.reserved(run, reserve).indices(y),
            Split.reserved(run, reserve).choice_indices(y),
        )
        parts = [set(train), set(held), set(choice)]
        assert sum(map(len, parts)) == y.size and set().union(*parts) == set(range(y.size))
        assert len(train) == (301 + 1) // 2 + 1200 // 2  # half statistics: half trains
        for label in (0, 1):  # stratified: the reserve is a share of each class
            n = np.count_nonzero(y == label)
            assert abs(np.count_nonzero(y[held] == label) - reserve * n) <= 1
        scored.add(tuple(held))
    assert len(scored) == 1, "the reserved events are the same in every run"
    reserved = set(scored.pop())
    for j in range(10):  # the search's repetitions: half statistics, the reserve kept out
        rep_train, rep_held = Split.half(j, reserve=reserve).indices(y)
        assert not reserved & set(rep_held)
        assert len(rep_held) == 300 // 2 + 1200 // 2 and len(rep_train) + len(rep_held) == y.size
        assert Split.half(j, reserve).model_seed() == Split.half(j).model_seed()  # paired


def test_a_fresh_split_is_no_repetition_of_the_search():
    y = (np.random.default_rng(5).random(2000) < 0.2).astype(np.int8)
    fresh = [Split.fresh(j).indices(y)[1] for j in range(3)]
    for j in range(10):
        held = Split.half(j).indices(y)[1]
        assert all(not np.array_equal(held, f) for f in fresh)
    train, held = Split.fresh(0).indices(y)
    assert abs(train.size - held.size) <= 2 and np.intersect1d(train, held).size == 0
    assert Split.fresh(0).model_seed() not in {Split.half(j).model_seed() for j in range(10)}
    assert Split.fresh(0).statistics == Split.reserved(0, 0.25).statistics == "half"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Split.reserved(0, 0.0), "0 < reserve < 0.5"),
        (lambda: Split.reserved(0, 0.5), "0 < reserve < 0.5"),
        (lambda: Split.half(0, reserve=0.6), "0 <= reserve < 0.5"),
        (lambda: Split("full", reserve=0.2), "reserves no events"),
    ],
)
def test_bad_reserves_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()
