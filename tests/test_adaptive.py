"""Adaptive rollouts decide exactly as fixed k does, on every sample sequence, and never draw a sample in vain.

The yardstick is `curation.stages.difficulty.difficulty_decision`, the filter the pipeline applies to fixed-k
counts: for any sample outcomes (hypothesis draws them, with k, the weak threshold and the window), the
adaptive decision on the drawn prefix equals that filter's decision on all k samples.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.options import DifficultyOptions
from curation.rollouts.adaptive import (
    decision,
    expected_draws,
    keep_probability,
    pass_rate_window,
    run_adaptive,
    run_fixed,
    samples_before_decidable,
    weak_filter,
)
from curation.stages.difficulty import difficulty_decision

LIMO_WEAK = weak_filter(4, 1)
LIMO_STRONG = pass_rate_window(32, 0.03125, 0.09375)


def pipeline_keeps(options: DifficultyOptions, model: str, solved: int, k: int) -> bool:
    return difficulty_decision({model: [solved, k]}, options) is None


@st.composite
def weak_case(draw):
    k = draw(st.integers(1, 40))
    max_solved = draw(st.integers(1, k + 2))
    return weak_filter(k, max_solved), DifficultyOptions(weak_models=("m",), weak_max_solved=max_solved)


@st.composite
def window_case(draw):
    k = draw(st.integers(1, 40))
    # windows on the counts' own grid (as recipes write them: 1/32, 3/32) and arbitrary floats
    grid = st.integers(0, k).map(lambda n: n / k)
    lo = draw(st.one_of(grid, st.floats(0.0, 1.0)))
    hi = draw(st.one_of(grid, st.floats(0.0, 1.0)))
    options = DifficultyOptions(strong_models=("m",), strong_pass_rate=(lo, hi))
    return pass_rate_window(k, lo, hi), options


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(case=st.one_of(weak_case(), window_case()), data=st.data())
def test_adaptive_decision_equals_fixed_k_pipeline_decision(case, data):
    rule, options = case
    model = options.weak_models[0] if options.weak_models else options.strong_models[0]
    samples = data.draw(st.lists(st.booleans(), min_size=rule.k, max_size=rule.k))
    adaptive = run_adaptive(rule, samples)
    fixed = run_fixed(rule, samples)
    assert adaptive.keep == fixed.keep == pipeline_keeps(options, model, sum(samples), rule.k)
    assert adaptive.drawn <= rule.k and adaptive.solved == sum(samples[: adaptive.drawn])
    # decided at the first prefix where every completion agrees, not later
    assert all(decision(rule, n, sum(samples[:n])) is None for n in range(adaptive.drawn))


@settings(max_examples=300, deadline=None)
@given(case=st.one_of(weak_case(), window_case()), data=st.data())
def test_batched_rounds_draw_exactly_the_adaptive_samples(case, data):
    """Asking for `samples_before_decidable` per round never overshoots the one-at-a-time stopping point."""
    rule, _ = case
    samples = data.draw(st.lists(st.booleans(), min_size=rule.k, max_size=rule.k))
    drawn = 0
    while more := samples_before_decidable(rule, drawn, sum(samples[:drawn])):
        drawn += more
    assert drawn == run_adaptive(rule, samples).drawn


def test_limo_filters_stop_where_the_issue_says():
    assert (LIMO_WEAK.keep_min, LIMO_WEAK.keep_max) == (0, 0)
    assert (LIMO_STRONG.keep_min, LIMO_STRONG.keep_max) == (1, 3)
    # weak: the first success drops the problem; four failures keep it
    assert run_adaptive(LIMO_WEAK, [False, True, False, False]) == run_adaptive(LIMO_WEAK, [False, True])
    assert run_adaptive(LIMO_WEAK, [False, True]).drawn == 2
    assert run_adaptive(LIMO_WEAK, [False] * 4).keep
    # strong: a 4th success drops it at once
    assert run_adaptive(LIMO_STRONG, [True] * 4 + [False] * 28).drawn == 4
    # one success in hand and at most 3 reachable: kept before the 32nd sample
    late = [False] * 28 + [True, False, False, False]
    outcome = run_adaptive(LIMO_STRONG, late)
    assert outcome.keep and outcome.drawn == 30
    # no success ever: all 32 are needed to know the pass rate is below the window
    assert run_adaptive(LIMO_STRONG, [False] * 32).drawn == 32
    assert samples_before_decidable(LIMO_STRONG, 0, 0) == 4 and samples_before_decidable(LIMO_WEAK, 0, 0) == 1


def test_empty_window_drops_without_sampling():
    rule = pass_rate_window(8, 0.5, 0.55)  # only 4 of 8 gives a rate in [0.5, 0.55]
    assert (rule.keep_min, rule.keep_max) == (4, 4)
    nothing = pass_rate_window(8, 0.51, 0.55)
    assert run_adaptive(nothing, []).drawn == 0 and not run_adaptive(nothing, []).keep


def test_bad_input_is_refused_with_the_rule_named():
    with pytest.raises(ValueError, match="k >= 1"):
        weak_filter(0, 1)
    with pytest.raises(ValueError, match="max_solved must be >= 1"):
        weak_filter(4, 0)
    with pytest.raises(ValueError, match="fixed k needs 32 samples, got 3"):
        run_fixed(LIMO_STRONG, [True] * 3)
    with pytest.raises(ValueError, match="undecided after 3 samples"):
        run_adaptive(LIMO_STRONG, [False] * 3)
    with pytest.raises(ValueError, match="impossible counts"):
        decision(LIMO_STRONG, 3, 4)
    with pytest.raises(ValueError, match="pass_rate must be in"):
        expected_draws(LIMO_STRONG, 1.5)


@pytest.mark.parametrize("rule", [LIMO_WEAK, LIMO_STRONG, weak_filter(8, 3), pass_rate_window(16, 0.25, 0.75)])
@pytest.mark.parametrize("pass_rate", [0.0, 0.07, 0.3, 0.8, 1.0])
def test_expected_draws_matches_simulation(rule, pass_rate):
    rng = random.Random(f"{rule.name}-{pass_rate}")
    trials = 4000
    drawn = sum(run_adaptive(rule, [rng.random() < pass_rate for _ in range(rule.k)]).drawn for _ in range(trials))
    # mean of `trials` draws bounded by k: 5 standard errors at the worst-case variance (k/2)^2
    assert abs(drawn / trials - expected_draws(rule, pass_rate)) <= 5 * (rule.k / 2) / trials**0.5
    assert expected_draws(LIMO_STRONG, 0.0) == 32 and expected_draws(LIMO_STRONG, 1.0) == 4


@pytest.mark.parametrize("rule", [weak_filter(4, 1), weak_filter(6, 3), pass_rate_window(8, 0.125, 0.375)])
def test_expected_draws_and_keep_probability_are_exact(rule):
    """Against brute force over all 2^k outcome sequences."""
    import itertools

    for pass_rate in (0.0, 0.2, 0.5, 0.9):
        draws = keeps = 0.0
        for outcome in itertools.product([False, True], repeat=rule.k):
            weight = 1.0
            for solved in outcome:
                weight *= pass_rate if solved else 1 - pass_rate
            result = run_adaptive(rule, outcome)
            draws += weight * result.drawn
            keeps += weight * result.keep
        assert expected_draws(rule, pass_rate) == pytest.approx(draws, abs=1e-12)
        assert keep_probability(rule, pass_rate) == pytest.approx(keeps, abs=1e-12)
