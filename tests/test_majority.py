"""Majority-vote golds (`eval.grading.majority`): clusters by the grader's equivalence, agreement over all k rollouts,
deterministic ties, and the threshold below which there is no gold."""

from __future__ import annotations

import pytest

from eval.grading.majority import Majority, cluster_answers, majority_answer, vote


def test_equivalent_forms_vote_together():
    answers = ["\\frac{1}{2}", "0.5", "1/2", "2", "\\dfrac12"]
    assert cluster_answers(answers) == [[0, 1, 2, 4], [3]]
    result = majority_answer(answers)
    assert result == Majority("\\frac{1}{2}", 0.8, (4, 1), 5, 5)


def test_rollouts_without_an_answer_count_against_agreement():
    answers = ["7", None, "7", "", "8", None]
    result = vote(answers)
    assert result is not None and result.answer == "7" and result.agreement == pytest.approx(2 / 6)
    assert result.answered == 3 and result.cluster_sizes == (2, 1)
    assert majority_answer(answers, threshold=0.5) is None  # 2 of 6 is below half
    assert majority_answer(answers, threshold=1 / 3) == result  # the threshold itself is accepted


def test_ties_go_to_the_first_cluster_and_nothing_answered_is_none():
    assert majority_answer(["3", "4", "4", "3"], threshold=0.5).answer == "3"
    assert vote([None, " "]) is None and majority_answer([None]) is None


def test_a_custom_equivalence_and_bad_input():
    same_length = lambda a, b: len(a) == len(b)  # noqa: E731
    assert majority_answer(["ab", "cd", "e"], equivalent=same_length).to_dict() == {
        "answer": "ab",
        "agreement": pytest.approx(2 / 3),
        "cluster_sizes": [2, 1],
        "votes": 3,
        "answered": 3,
    }
    with pytest.raises(ValueError, match="no answers"):
        majority_answer([])
    with pytest.raises(ValueError, match="outside"):
        majority_answer(["1"], threshold=1.5)
