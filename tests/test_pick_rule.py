"""The mean pick's one-standard-error rule toward the defaults, on hand-made values."""

from __future__ import annotations

import math

import pytest

from hpo.pick_rule import decide, inactive_warning

# the defaults trial's ARGOS on 5 repetition splits
DEFAULTS = [0.50, 0.60, 0.40, 0.55, 0.45]


def _se(diffs: list[float]) -> float:
    n = len(diffs)
    mean = sum(diffs) / n
    return math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n)


def test_a_candidate_ahead_by_noise_keeps_the_defaults():
    diffs = [0.10, -0.10, 0.10, -0.05, 0.05]  # mean +0.02, s.e. 0.041
    candidate = [d + x for d, x in zip(DEFAULTS, diffs, strict=True)]
    decision = decide(candidate, DEFAULTS, "maximize", 1.0)
    assert decision.kept_defaults
    assert decision.difference == pytest.approx(0.02)
    assert decision.standard_error == pytest.approx(_se(diffs))
    assert decision.repetitions == 5 and decision.margin == 1.0
    assert "the defaults kept" in decision.reason


def test_a_candidate_ahead_by_far_replaces_the_defaults():
    diffs = [0.10, 0.12, 0.09, 0.11, 0.10]
    candidate = [d + x for d, x in zip(DEFAULTS, diffs, strict=True)]
    decision = decide(candidate, DEFAULTS, "maximize", 1.0)
    assert not decision.kept_defaults
    assert decision.difference == pytest.approx(0.104)
    assert decision.standard_error == pytest.approx(_se(diffs))
    # the same lead does not clear a margin of 100 standard errors
    assert decide(candidate, DEFAULTS, "maximize", 100.0).kept_defaults


def test_bce_is_minimised():
    defaults = [0.6930, 0.6931, 0.6929, 0.6930]
    lower = [v - 2e-4 for v in defaults]  # better BCE in every repetition
    lower[0] += 1e-5
    decision = decide(lower, defaults, "minimize", 1.0)
    assert not decision.kept_defaults and decision.difference == pytest.approx(1.975e-4)
    # read as if larger were better, the same values are a clear loss: the defaults stay
    assert decide(lower, defaults, "maximize", 1.0).kept_defaults
    higher = [v + 2e-4 for v in defaults]
    assert decide(higher, defaults, "minimize", 1.0).kept_defaults


def test_margin_zero_is_the_plain_best():
    candidate = [d + x for d, x in zip(DEFAULTS, [0.10, -0.10, 0.10, -0.05, 0.05], strict=True)]
    decision = decide(candidate, DEFAULTS, "maximize", 0.0)
    assert not decision.kept_defaults and "plain best" in decision.reason


def test_one_repetition_falls_back_to_the_plain_best():
    decision = decide([0.51], [0.50], "maximize", 1.0)
    assert not decision.kept_defaults
    assert decision.standard_error is None and decision.repetitions == 1
    assert "no standard error" in decision.reason


def test_repetitions_without_a_value_are_left_out_of_the_pairs():
    candidate = [0.7, None, 0.8, float("nan")]
    defaults = [0.5, 0.5, float("nan"), 0.5]
    decision = decide(candidate, defaults, "maximize", 1.0)  # one pair left
    assert decision.repetitions == 1 and not decision.kept_defaults
    decision = decide([0.7, 0.72, None], [0.5, 0.5, 0.5], "maximize", 1.0)
    assert decision.repetitions == 2 and not decision.kept_defaults
    assert decision.difference == pytest.approx(0.21)


def test_a_rule_that_cannot_act_is_announced():
    assert "plain best" in inactive_warning(1, 1.0, "mean")
    assert inactive_warning(2, 1.0, "mean") is None
    assert inactive_warning(1, 0.0, "mean") is None  # the plain best asked for
    assert inactive_warning(1, 1.0, "per_repetition") is None  # best.json not used
