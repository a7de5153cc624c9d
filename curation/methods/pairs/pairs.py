"""Preference pairs (DPO, DiscoPOP) from a graded pool: a correct chain against a wrong one, same problem.

Chosen chains are correct chains ranked by quality score (best first); rejected chains are chains the
grader marks ``incorrect`` (never ``no_answer`` or ``unparseable``: a reply we cannot read is not
evidence of a wrong answer). DPO-style losses reward whatever separates chosen from rejected, and length
is the cheapest separator (a known length bias of DPO), so pairing controls it:

- ``max_length_gap``: keep a pair only when ``|len(chosen) - len(rejected)| / max(len) <= gap``;
- pairing is greedy by smallest gap, each chain used at most once per problem;
- ``balance_longer``: keep the share of pairs whose chosen is the longer one as close to half as the
  candidates allow, dropping pairs from the majority side (reported).

The report gives mean lengths, the share of chosen-longer pairs and the gap distribution, before and
after the controls, so a reader can see the bias that remains. Lengths are in characters (the pool is
tokenizer-free; the trainer reports token lengths).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import mean
from typing import Any

from curation.options import RolloutOptions
from curation.schema import Chain, PreferencePair
from eval.grading.grader import Verdict
from eval.problem import Problem
from eval.records import Reject

STAGE = "pairs"


@dataclass(frozen=True)
class PairOptions:
    """How pairs are formed.

    Attributes:
        pairs_per_problem: At most this many pairs per problem.
        max_length_gap: Largest relative length difference ``|lc - lr| / max(lc, lr)``; None: no limit.
        balance_longer: Balance pairs whose chosen is longer against pairs whose rejected is longer.
        min_quality: Chosen chains need at least this quality score.
        boxed_answer: Append each chain's own final answer in ``\\boxed{}`` (the training-view convention).
        include_human: Human solutions may be chosen (the caller adds them to the candidates).
        rollouts: Fresh samples of each problem from a generator (a policy's own: ``${model.path}``), graded and
            added to the candidates (`curation.methods.pairs.method.rollout_chains`); None: none.
        pool_chains: The pool's own chains are candidates too (false with ``rollouts``: pairs of the policy's own
            samples only).
    """

    pairs_per_problem: int = 2
    max_length_gap: float | None = 0.3
    balance_longer: bool = True
    min_quality: float = 0.0
    boxed_answer: bool = True
    include_human: bool = True
    rollouts: RolloutOptions | None = None
    pool_chains: bool = True


@dataclass(frozen=True)
class ScoredChain:
    """A graded chain with its quality score."""

    chain: Chain
    verdict: Verdict
    quality: float = 0.0


def relative_gap(a: str, b: str) -> float:
    """``|len(a) - len(b)| / max(len(a), len(b))`` (0 for two empty strings)."""
    longest = max(len(a), len(b))
    return abs(len(a) - len(b)) / longest if longest else 0.0


def response_text(item: ScoredChain, boxed: bool) -> str:
    """The chain's text as a response (``boxed``: with its own final answer boxed at the end)."""
    answer = item.verdict.extracted
    if not boxed or answer is None:
        return item.chain.text
    return f"{item.chain.text.rstrip()}\n\nThe final answer is $\\boxed{{{answer}}}$."


def _pairs_for_problem(
    chosen: Sequence[ScoredChain], rejected: Sequence[ScoredChain], options: PairOptions
) -> tuple[list[tuple[ScoredChain, ScoredChain, float]], int]:
    """Greedy smallest-gap pairing; returns the pairs and how many candidate pairs the gap limit refused."""
    candidates = sorted(
        (
            (relative_gap(c.chain.text, r.chain.text), -c.quality, c.chain.id, r.chain.id, c, r)
            for c in chosen
            for r in rejected
        ),
        key=lambda t: t[:4],
    )
    used: set[str] = set()
    pairs, too_far = [], 0
    for gap, _, cid, rid, c, r in candidates:
        if cid in used or rid in used:
            continue
        if options.max_length_gap is not None and gap > options.max_length_gap:
            too_far += 1
            continue
        pairs.append((c, r, gap))
        used.update((cid, rid))
        if len(pairs) >= options.pairs_per_problem:
            break
    return pairs, too_far


def build_pairs(
    problems: Mapping[str, Problem],
    chains: Sequence[ScoredChain],
    options: PairOptions,
    *,
    seed: int,
) -> tuple[list[PreferencePair], list[Reject], dict[str, Any]]:
    """Pairs for every problem that has both a correct and an incorrect chain.

    Args:
        problems: Problems by id.
        chains: Graded, scored chains (human chains may be chosen; only model chains can be rejected).
        options: Pairing controls.
        seed: Seeds the balancing draw.

    Returns:
        ``(pairs, rejects, report)``; a reject names each problem that yields no pair and why.
    """
    by_problem: dict[str, dict[str, list[ScoredChain]]] = defaultdict(lambda: {"chosen": [], "rejected": []})
    for item in chains:
        if item.verdict.correct and item.quality >= options.min_quality:
            by_problem[item.chain.problem_id]["chosen"].append(item)
        elif item.verdict.status == "incorrect":
            by_problem[item.chain.problem_id]["rejected"].append(item)
    raw: list[tuple[ScoredChain, ScoredChain, float]] = []
    rejects: list[Reject] = []
    refused = 0
    for problem_id in sorted(by_problem):
        sides = by_problem[problem_id]
        found, too_far = _pairs_for_problem(sides["chosen"], sides["rejected"], options)
        refused += too_far
        if found:
            raw.extend(found)
        else:
            rejects.append(Reject(STAGE, 0, "problem", _why_no_pair(sides, too_far), STAGE, problem_id))
    balanced, dropped = _balance(raw, seed) if options.balance_longer else (raw, [])
    rejects.extend(_balance_reject(c, r) for c, r, _ in dropped)
    pairs = [_pair(problems[c.chain.problem_id], c, r, gap, options) for c, r, gap in balanced]
    report: dict[str, Any] = {
        "before_controls": length_stats(raw),
        "after_controls": length_stats(balanced),
        "refused_by_length_gap": refused,
        "dropped_by_balance": len(dropped),
        "problems_with_pairs": len({c.chain.problem_id for c, _, _ in balanced}),
    }
    return pairs, rejects, report


def _why_no_pair(sides: Mapping[str, Sequence[ScoredChain]], too_far: int) -> str:
    if not sides["chosen"]:
        return "no correct chain above min_quality"
    if not sides["rejected"]:
        return "no incorrect chain"
    return f"no length-matched pair ({too_far} candidates over max_length_gap)"


def _balance_reject(chosen: ScoredChain, rejected: ScoredChain) -> Reject:
    pair_id = f"{chosen.chain.id}>{rejected.chain.id}"
    return Reject(STAGE, 0, "pair", "dropped to balance chosen-longer against rejected-longer", STAGE, pair_id)


def _balance(
    pairs: list[tuple[ScoredChain, ScoredChain, float]], seed: int
) -> tuple[list[tuple[ScoredChain, ScoredChain, float]], list[tuple[ScoredChain, ScoredChain, float]]]:
    longer = [p for p in pairs if len(p[0].chain.text) > len(p[1].chain.text)]
    shorter = [p for p in pairs if len(p[0].chain.text) <= len(p[1].chain.text)]
    major, minor = (longer, shorter) if len(longer) > len(shorter) else (shorter, longer)
    keep = set(range(len(major)))
    if len(major) > len(minor) + 1:
        keep = set(random.Random(seed).sample(range(len(major)), len(minor) + 1))
    dropped = [p for i, p in enumerate(major) if i not in keep]
    dropped_ids = {id(p) for p in dropped}
    return [p for p in pairs if id(p) not in dropped_ids], dropped


def _pair(
    problem: Problem, chosen: ScoredChain, rejected: ScoredChain, gap: float, options: PairOptions
) -> PreferencePair:
    provenance = {
        "problem_id": problem.id,
        "chosen_chain_id": chosen.chain.id,
        "rejected_chain_id": rejected.chain.id,
        "chosen_generator": chosen.chain.generator,
        "rejected_generator": rejected.chain.generator,
        "chosen_quality": chosen.quality,
        "chosen_verdict": chosen.verdict.to_dict(),
        "rejected_verdict": rejected.verdict.to_dict(),
        "length_gap": round(gap, 4),
        "chosen_source": chosen.chain.provenance,
        "rejected_source": rejected.chain.provenance,
    }
    return PreferencePair(
        id=f"{chosen.chain.id}>{rejected.chain.id}",
        prompt=problem.problem,
        chosen=response_text(chosen, options.boxed_answer),
        rejected=response_text(rejected, options.boxed_answer),
        provenance=provenance,
    )


def length_stats(pairs: Sequence[tuple[ScoredChain, ScoredChain, float]]) -> dict[str, Any]:
    """Mean chosen / rejected lengths (characters), share of chosen-longer pairs, mean and max gap."""
    if not pairs:
        return {"pairs": 0}
    chosen = [len(c.chain.text) for c, _, _ in pairs]
    rejected = [len(r.chain.text) for _, r, _ in pairs]
    gaps = [g for _, _, g in pairs]
    return {
        "pairs": len(pairs),
        "mean_chosen_chars": round(mean(chosen), 1),
        "mean_rejected_chars": round(mean(rejected), 1),
        "chosen_longer_share": round(sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs), 3),
        "mean_gap": round(mean(gaps), 3),
        "max_gap": round(max(gaps), 3),
    }
