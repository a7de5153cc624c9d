"""The curation state and its accounting, one schema for every method: ``funnel.json`` and ``rejects.jsonl``.

Chains are the unit of account of the pool. A stage returns the chains and problems it drops, each with a
reason; `CurationState.apply` removes them, records one `Drop` per item, and drops every problem left
with no chain (reason ``no_chain_left``), so that a problem is never selected without a chain and never
vanishes without a reason. `CurationState.reconcile` checks that the pool read equals the chains still in
plus every drop.

Every stage of every method adds one `StageCount`, the one row schema of ``funnel.json``: the stage, the
unit it counts (``chain``, ``document``, ``pair``, ``example``, ``episode``, ...), items in and out,
problems in and out where the stage tracks them, dropped items by reason, seconds and free-form notes.
Pool stages count through `begin` / `apply`; a method's own stages (LEMMA's connect, MAmmoTH2's extract)
through `record`, whose rejects are `Drop` rows too (`method_rejects`), so ``rejects.jsonl`` has one row
schema for every method: ``{kind, id, problem_id, stage, reason, detail}``.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from curation.schema import Chain
from eval.problem import Problem
from eval.records import Reject

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

    @classmethod
    def from_reject(cls, reject: Reject) -> Drop:
        """A method stage's `Reject` (an item it could not use) as a rejects row."""
        return cls(reject.field or "item", reject.id or f"row{reject.row}", None, reject.stage, reject.reason, {})


@dataclass
class StageCount:
    """What one stage saw and did: one row of ``funnel.json``, the same for every method.

    Attributes:
        stage: Stage name.
        unit: What ``items_*`` count (``chain``, ``document``, ``pair``, ``example``, ``episode``, ...).
        enabled: False when the stage was switched off (it then passes everything through).
        items_in: Items the stage received.
        items_out: Items it passed on.
        problems_in: Problems it received (None where the stage does not track problems).
        problems_out: Problems it passed on (None likewise).
        dropped: Items it dropped or rejected, by reason.
        problems_dropped: Problems it dropped, by reason.
        seconds: Wall time.
        notes: Stage-specific counts (benchmarks checked, verdicts, ...).
    """

    stage: str
    unit: str = "chain"
    enabled: bool = True
    items_in: int = 0
    items_out: int = 0
    problems_in: int | None = None
    problems_out: int | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    problems_dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reason_counts(reasons: Iterable[str]) -> dict[str, int]:
    """How many items per reason, reasons in first-seen order."""
    return dict(Counter(reasons))


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
        funnel: One `StageCount` per stage run: pool stages and the method's own, in order.
        method_rejects: Items a method stage could not use (never pool chains: those are ``drops``).
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
    method_rejects: list[Drop] = field(default_factory=list)
    read: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    _pool_stages: list[StageCount] = field(default_factory=list, repr=False)
    _clock: float = field(default_factory=time.perf_counter, repr=False)

    def chains_by_problem(self) -> dict[str, list[Chain]]:
        grouped: dict[str, list[Chain]] = defaultdict(list)
        for chain in self.chains.values():
            grouped[chain.problem_id].append(chain)
        return grouped

    def begin(self, stage: str, enabled: bool = True) -> StageCount:
        """Open a pool stage's count (closed by `apply`)."""
        count = StageCount(stage, "chain", enabled, len(self.chains), problems_in=len(self.problems))
        self.funnel.append(count)
        self._pool_stages.append(count)
        return count

    def record(
        self,
        stage: str,
        *,
        unit: str,
        items_in: int,
        items_out: int,
        rejects: Iterable[Reject | Drop] = (),
        enabled: bool = True,
        problems: tuple[int, int] | None = None,
        **notes: Any,
    ) -> StageCount:
        """Count a method's own stage (its items are not pool chains) and keep its rejects.

        ``problems`` is ``(in, out)`` where the stage tracks problems. ``seconds`` is the time since the previous
        stage ended, so a method times its stages by calling this as each one finishes.
        """
        drops = [r if isinstance(r, Drop) else Drop.from_reject(r) for r in rejects]
        self.method_rejects.extend(drops)
        dropped = reason_counts(d.reason.split(":")[0] for d in drops)
        problems_in, problems_out = problems or (None, None)
        count = StageCount(stage, unit, enabled, items_in, items_out, problems_in, problems_out, dropped, notes=notes)
        self.funnel.append(count)
        self.close(count)
        return count

    def close(self, count: StageCount) -> None:
        """Stamp ``count`` with the seconds since the previous stage ended."""
        now = time.perf_counter()
        count.seconds = round(now - self._clock, 3)
        self._clock = now

    def rejects(self) -> list[Drop]:
        """Every rejects row: pool drops, then the method stages' rejects."""
        return [*self.drops, *self.method_rejects]

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
        count.dropped = dict(sorted(chain_reasons.items()))
        count.problems_dropped = dict(sorted(problem_reasons.items()))
        count.items_out = len(self.chains)
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
        for before, after in zip(self._pool_stages, self._pool_stages[1:], strict=False):
            if before.items_out != after.items_in:
                raise AssertionError(
                    f"stage {after.stage} starts with {after.items_in} chains, not {before.items_out}"
                )
        return totals
