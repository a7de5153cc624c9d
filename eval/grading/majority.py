"""A gold answer by majority vote: the answer most of k rollouts agree on, for pools that have no gold.

`cluster_answers` groups k extracted answers by the grader's equivalence (`eval.grading.grader.verify`, so ``1/2``,
``0.5`` and ``\\frac{1}{2}`` are one answer); `majority_answer` returns the largest cluster's answer with its
agreement (the cluster's share of all k answers: a rollout with no answer counts against agreement, not as a
vote) and every cluster's size, or None when the agreement is below the threshold, so a caller drops the
problem with that reason instead of training on a coin flip.

Clustering is greedy and deterministic: each answer joins the first cluster whose first member (its
representative) it equals, else starts a new one; ties between clusters of equal size go to the one that
appeared first. Equivalence is asked representative-first (``verify(representative, answer)``), as the
grader asks gold-first. At most ``k x clusters`` comparisons, each under the grader's time limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eval.grading.grader import verify


@dataclass(frozen=True)
class Majority:
    """The majority answer of k rollouts.

    Attributes:
        answer: The largest cluster's representative (its first member, as written).
        agreement: Cluster size over k (all rollouts, including those with no answer).
        cluster_sizes: Every cluster's size, largest first.
        votes: k, the number of rollouts asked.
        answered: How many rollouts gave an answer.
    """

    answer: str
    agreement: float
    cluster_sizes: tuple[int, ...]
    votes: int
    answered: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "agreement": self.agreement,
            "cluster_sizes": list(self.cluster_sizes),
            "votes": self.votes,
            "answered": self.answered,
        }


def cluster_answers(
    answers: Sequence[str | None], *, equivalent: Callable[[str, str], bool] | None = None, timeout_s: float = 2.0
) -> list[list[int]]:
    """Indices of ``answers`` grouped by equivalence, clusters in order of first appearance (None and blank
    answers are in no cluster)."""
    same = equivalent or (lambda a, b: verify(a, b, timeout_s=timeout_s))
    clusters: list[list[int]] = []
    for index, answer in enumerate(answers):
        if answer is None or not answer.strip():
            continue
        home = next((c for c in clusters if same(str(answers[c[0]]), answer)), None)
        if home is None:
            clusters.append([index])
        else:
            home.append(index)
    return clusters


def vote(
    answers: Sequence[str | None], *, equivalent: Callable[[str, str], bool] | None = None, timeout_s: float = 2.0
) -> Majority | None:
    """The largest cluster of ``answers`` whatever its agreement (None when no rollout answered), for callers
    that record the agreement of a problem they drop.

    Raises:
        ValueError: No answers.
    """
    if not answers:
        raise ValueError("majority vote: no answers to vote on")
    clusters = cluster_answers(answers, equivalent=equivalent, timeout_s=timeout_s)
    if not clusters:
        return None
    largest = max(clusters, key=len)  # max keeps the first of equal sizes: the earliest cluster wins ties
    sizes = tuple(sorted((len(c) for c in clusters), reverse=True))
    answered = sum(len(c) for c in clusters)
    return Majority(str(answers[largest[0]]), len(largest) / len(answers), sizes, len(answers), answered)


def majority_answer(
    answers: Sequence[str | None],
    *,
    threshold: float = 0.5,
    equivalent: Callable[[str, str], bool] | None = None,
    timeout_s: float = 2.0,
) -> Majority | None:
    """The answer most of ``answers`` agree on, or None when none reaches ``threshold`` agreement.

    Args:
        answers: k extracted answers to one problem (None: that rollout gave none).
        threshold: The least agreement (cluster size / k) accepted; ties with it are accepted.
        equivalent: Answer equivalence (default: `eval.grading.grader.verify` under ``timeout_s``).
        timeout_s: Per-comparison limit of the default equivalence.

    Raises:
        ValueError: No answers, or a threshold outside [0, 1].
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"majority vote: threshold {threshold} is outside [0, 1]")
    result = vote(answers, equivalent=equivalent, timeout_s=timeout_s)
    return result if result is not None and result.agreement >= threshold else None
