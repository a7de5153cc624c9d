"""Metrics: unbiased pass@k, mean pass@1 with standard error, maj@k over grader-equivalent answers, rates."""

from __future__ import annotations

import itertools
import math

import pytest

from eval.grading.grader import verify
from eval.reports.metrics import (
    breakdown,
    group_by_problem,
    maj_at_ks,
    majority_vote,
    mean_and_stderr,
    pass_at_k,
    pass_at_ks,
    rates,
    summarize,
)


def _rows(pattern: dict[str, list[bool]], **extra):
    return [
        {"problem_id": pid, "sample_index": i, "correct": c, "status": "correct" if c else "incorrect", **extra}
        for pid, outcomes in pattern.items()
        for i, c in enumerate(outcomes)
    ]


@pytest.mark.parametrize("n", range(1, 7))
def test_pass_at_k_equals_brute_force_over_subsets(n):
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(outcomes, k))
            expected = sum(any(s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 2, 5)


def test_accuracy_with_several_samples_is_mean_pass1_not_pass_at_n():
    grouped = group_by_problem(_rows({"a": [True, False, False, False], "b": [False] * 4}))
    ks = pass_at_ks(grouped)
    assert ks[1] == pytest.approx(0.125)  # mean pass@1
    assert ks[4] == pytest.approx(0.5)  # pass@4: a is solved by some sample
    assert set(ks) == {1, 2, 3, 4}


def test_mean_and_stderr():
    mean, stderr = mean_and_stderr([1.0, 0.0, 1.0, 0.0])
    assert mean == 0.5
    assert stderr == pytest.approx(math.sqrt((4 * 0.25 / 3) / 4))
    assert mean_and_stderr([0.7]) == (0.7, 0.0)


def test_majority_groups_equivalent_answers_with_the_grader():
    answers = ["3", "\\frac{1}{2}", "0.5", None, "1/2", "3"]
    winner = majority_vote(answers, lambda a, b: verify(a, b))
    assert winner == 1  # 1/2 in three forms beats "3" twice; the cluster's first sample represents it
    assert majority_vote([None, ""], lambda a, b: a == b) is None


def test_majority_tie_goes_to_the_answer_seen_first():
    assert majority_vote(["7", "8", "8", "7"], lambda a, b: a == b) == 0


def test_maj_at_k_uses_first_k_samples():
    rows = [
        {"problem_id": "p", "sample_index": i, "extracted": a, "correct": a == "5"}
        for i, a in enumerate(["4", "5", "5", "5"])
    ]
    result = maj_at_ks(group_by_problem(rows), lambda a, b: a == b)
    assert result == {1: 0.0, 2: 0.0, 4: 1.0}


def test_breakdown_by_level_sorts_numerically():
    rows = _rows({"a": [True], "b": [False]}, level=10) + _rows({"c": [True]}, level=2)
    table = breakdown(group_by_problem(rows), "level")
    assert list(table) == ["2", "10"]
    assert table["10"]["pass@1"] == 0.5 and table["10"]["problems"] == 2


def test_rates_count_truncation_and_missing_answers():
    rows = [
        {"num_tokens": 10, "finish_reason": "length", "status": "no_answer"},
        {"num_tokens": 30, "finish_reason": "stop", "status": "correct"},
    ]
    assert rates(rows) == {
        "mean_tokens": 20.0,
        "max_tokens": 30,
        "truncation_rate": 0.5,
        "no_answer_rate": 0.5,
        "error_rate": 0.0,
    }


def test_summarize_reports_every_metric():
    rows = _rows({"a": [True, True], "b": [False, True]}, subject="algebra", num_tokens=5, finish_reason="stop")
    for row in rows:
        row["extracted"] = "1" if row["correct"] else "2"
    summary = summarize(rows, lambda a, b: a == b)
    assert summary["mean_pass@1"] == 0.75
    assert summary["pass@k"] == {"1": 0.75, "2": 1.0}
    assert summary["maj@k"]["1"] == 0.5
    assert summary["by_subject"]["algebra"]["problems"] == 2
    assert summary["samples_per_problem"] == 2
    assert summary["status_counts"] == {"correct": 3, "incorrect": 1}


def test_wilson_interval_matches_the_published_values():
    from eval.reports.metrics import wilson_interval

    low, high = wilson_interval(0.5, 10)
    assert round(low, 4) == 0.2366 and round(high, 4) == 0.7634
    low, high = wilson_interval(0.0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775  # a zero score still has an upper bound
    assert wilson_interval(0.3, 0) == (0.0, 1.0)


def test_exact_mcnemar_counts_only_the_problems_that_flipped():
    from eval.reports.metrics import mcnemar_p

    assert mcnemar_p(10, 0) == 2 / 1024
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(3, 3) == 1.0
    assert abs(mcnemar_p(8, 2) - 0.109375) < 1e-12
