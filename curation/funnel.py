"""The curation state and its accounting: what is still in, what was dropped, by which stage and why.

Chains are the unit of account. A stage returns the chains and problems it drops, each with a reason;
`CurationState.apply` removes them, records one `Drop` per item, and drops every problem left with no
chain (reason ``no_chain_left``), so that a problem is never selected without a chain and never vanishes
without a reason. Each stage adds one `StageCount` (chains and problems in / out, dropped by reason);
`CurationState.reconcile` checks that the pool read equals the curated chains plus every drop.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from curation.schema import Chain
from eval.problem import Problem

NO_CHAIN_LEFT = "no_chain_left"


@dataclass(frozen=True, slots=True)
class Drop:
    """One item that left the funnel: a chain or a whole problem."""

    kind: str  # "chain" or "problem"
    id: str
    problem_id: str | None
    stage: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StageCount:
    """What one stage saw and did."""

    stage: str
    enabled: bool
    chains_in: int
    problems_in: int
    chains_out: int = 0
    problems_out: int = 0
    chains_dropped: dict[str, int] = field(default_factory=dict)
    problems_dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One graded attempt at a problem (a pool chain or a fresh rollout), for pass rates."""

    problem_id: str
    chain_id: str
    generator: str
    correct: bool
    answer: str | None


Reasons = Mapping[str, tuple[str, dict[str, Any]]]


@dataclass
class CurationState:
    """Problems and chains still in the funnel, their annotations, and everything dropped so far.

    Attributes:
        problems: Alive problems by id (pool order).
        chains: Alive chains by id (pool order).
        chain_notes: Per-chain annotations (verdict, quality, ...) kept for provenance, dropped or not.
        problem_notes: Per-problem annotations (pass rates, decontamination, suspect gold, ...).
        attempts: Graded `Attempt`s used for pass rates and the suspect-gold check.
        drops: Every dropped item, in order.
        funnel: One `StageCount` per stage run.
        read: Items read by ingest (chains plus rejected rows): the left side of the reconciliation.
        manifest: Facts for the manifest (overrides applied, benchmark checksums, warnings).
    """

    problems: dict[str, Problem]
    chains: dict[str, Chain]
    chain_notes: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    problem_notes: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    attempts: list[Attempt] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    funnel: list[StageCount] = field(default_factory=list)
    read: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)

    def chains_by_problem(self) -> dict[str, list[Chain]]:
        grouped: dict[str, list[Chain]] = defaultdict(list)
        for chain in self.chains.values():
            grouped[chain.problem_id].append(chain)
        return grouped

    def begin(self, stage: str, enabled: bool = True) -> StageCount:
        count = StageCount(stage, enabled, len(self.chains), len(self.problems))
        self.funnel.append(count)
        return count

    def apply(self, count: StageCount, chains: Reasons | None = None, problems: Reasons | None = None) -> None:
        """Drop ``problems`` (with all their chains) and ``chains``, then problems left without a chain."""
        chain_reasons: Counter[str] = Counter()
        problem_reasons: Counter[str] = Counter()
        grouped = self.chains_by_problem()
        for problem_id, (reason, detail) in (problems or {}).items():
            if problem_id not in self.problems:
                continue
            shared = {"problem_dropped": True, **detail}  # one dict for all of the problem's chains
            for chain in grouped.get(problem_id, []):
                self._drop_chain(chain, count.stage, reason, shared)
                chain_reasons[reason] += 1
            self._drop_problem(problem_id, count.stage, reason, detail)
            problem_reasons[reason] += 1
        for chain_id, (reason, detail) in (chains or {}).items():
            target = self.chains.get(chain_id)
            if target is not None:
                self._drop_chain(target, count.stage, reason, detail)
                chain_reasons[reason] += 1
        alive = {c.problem_id for c in self.chains.values()}
        for problem_id in [p for p in self.problems if p not in alive]:
            self._drop_problem(problem_id, count.stage, NO_CHAIN_LEFT, {})
            problem_reasons[NO_CHAIN_LEFT] += 1
        count.chains_dropped = dict(sorted(chain_reasons.items()))
        count.problems_dropped = dict(sorted(problem_reasons.items()))
        count.chains_out = len(self.chains)
        count.problems_out = len(self.problems)

    def _drop_chain(self, chain: Chain, stage: str, reason: str, detail: dict[str, Any]) -> None:
        del self.chains[chain.id]
        self.drops.append(Drop("chain", chain.id, chain.problem_id, stage, reason, detail))

    def _drop_problem(self, problem_id: str, stage: str, reason: str, detail: dict[str, Any]) -> None:
        del self.problems[problem_id]
        self.drops.append(Drop("problem", problem_id, problem_id, stage, reason, detail))

    def reconcile(self) -> dict[str, int]:
        """Check ``read == selected chains + dropped chains + rejected rows``.

        Raises:
            AssertionError: The accounting does not add up (a bug, never bad input).
        """
        dropped = sum(1 for d in self.drops if d.kind in ("chain", "row"))
        totals = {"read": self.read, "selected": len(self.chains), "dropped": dropped}
        if self.read != len(self.chains) + dropped:
            raise AssertionError(f"curation funnel does not reconcile: {totals}")
        for before, after in zip(self.funnel, self.funnel[1:], strict=False):
            if before.chains_out != after.chains_in:
                raise AssertionError(
                    f"stage {after.stage} starts with {after.chains_in} chains, not {before.chains_out}"
                )
        return totals
