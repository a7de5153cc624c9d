"""The accounting of a curation run, one schema for every method: ``funnel.json`` and ``rejects.jsonl``.

Chains are the unit of account of the pool. A stage drops chains and problems, each with a reason;
`curation.runner.RunState.apply` removes them, writes one `Drop` row per item, and drops every problem left
with no chain (reason ``no_chain_left``), so that a problem is never selected without a chain and never
vanishes without a reason; the run checks that the pool read equals the chains still in plus every drop.

Every stage of every method adds one `StageCount`, the one row schema of ``funnel.json``: the stage, the
unit it counts (``chain``, ``document``, ``pair``, ``example``, ``episode``, ...), items in and out,
problems in and out where the stage tracks them, dropped items by reason, seconds and free-form notes.
Pool stages count through the runner; a method's own stages (LEMMA's connect, MAmmoTH2's extract)
through `Survivors.record`, whose rejects are `Drop` rows too (`method_rejects`), so ``rejects.jsonl`` has one row
schema for every method: ``{kind, id, problem_id, stage, reason, detail}``.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
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
    """One graded attempt at a problem (a fresh rollout), for pass rates."""

    problem_id: str
    chain_id: str
    generator: str
    correct: bool
    answer: str | None


@dataclass(frozen=True)
class Section:
    """A stage's section of the reports: a title and a table, which report.md and report.html render alike.

    Attributes:
        title: The section's heading.
        columns: The table's column names.
        rows: One list of plain values (text, numbers) per row.
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The section as report.html's ``tables`` entry."""
        return {"title": self.title, "columns": list(self.columns), "rows": [list(r) for r in self.rows]}


@dataclass
class Survivors:
    """What a run's pool stages kept, read back from the pool store, and the run's accounting.

    The pool stages themselves run on `curation.runner.RunState` (no text held); `curation.stages.survivors`
    reads back the chains a method needs — LIMO's selection, or every chain a graded-pool method builds on —
    with the notes the stages left on them. A method's own stages then extend the funnel through `record`.

    Attributes:
        problems: Kept problems by id (pool order).
        chains: Kept chains by id (pool order).
        chain_notes: Per-chain notes (verdict, quality, combined score, ...).
        problem_notes: Per-problem notes (pass rates, rank, ...).
        problem_flags: Per kept problem, the evidence of each stage that flagged it for review (by the stage's
            name, as the suspect-gold stage does): a row's flag, its ``decisions`` entry ``kept_for_review``.
        funnel: One `StageCount` per stage run: pool stages and the method's own, in order.
        method_rejects: Items a method stage could not use (pool drops are already in ``rejects.jsonl``).
        read: Items read by ingest (chains plus rejected rows): the left side of the reconciliation.
        pool_rejected: Rows the pool stages wrote to ``rejects.jsonl``.
        manifest: Facts the stages recorded for the manifest (benchmarks loaded, difficulty signal, ...).
        sections: What the pool stages add to report.md and report.html (`curation.stages.base.Stage.report_section`).
        charts: The charts the pool stages declared (`curation.stages.base.Stage.charts`), in their order.
    """

    problems: dict[str, Problem]
    chains: dict[str, Chain]
    chain_notes: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    problem_notes: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    problem_flags: dict[str, dict[str, Any]] = field(default_factory=lambda: defaultdict(dict))
    funnel: list[StageCount] = field(default_factory=list)
    method_rejects: list[Drop] = field(default_factory=list)
    read: int = 0
    pool_rejected: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    _clock: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def rejected(self) -> int:
        """Rows of ``rejects.jsonl``: the pool stages' and the method's own."""
        return self.pool_rejected + len(self.method_rejects)

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


def check_chained(stages: Sequence[StageCount]) -> None:
    """Each pool stage starts with the chains the previous one ended with.

    Raises:
        AssertionError: A stage lost or gained chains between stages (a bug).
    """
    for before, after in zip(stages, stages[1:], strict=False):
        if before.items_out != after.items_in:
            raise AssertionError(f"stage {after.stage} starts with {after.items_in} chains, not {before.items_out}")


# ------------------------------------------------------------------------------------------------ charts

UNKNOWN_DOMAIN = "unknown"  # a problem without a subject (`domain_chart`, the pool's domain counts)
HISTOGRAM, BARS = "histogram", "bar"


@dataclass(frozen=True)
class Chart:
    """A chart a stage declares (`curation.stages.base.Stage.charts`): report.md draws it as ``<name>.png``,
    report.html from its numbers, each in the stages' order.

    A chart with no value is left out with its ``left_out`` line where it has one (in report.md and report.html
    alike); without one, report.md still draws it (saying it has no values) and report.html leaves it out silently.

    Attributes:
        name: Its PNG's name without ``.png``, and the name a method's own charts match it by.
        title: Its heading on report.html.
        kind: `HISTOGRAM` (values by series label) or `BARS` (each category's share, counts by series label).
        series: Values (histogram) or counts by category (bars), by series label.
        label: The value axis' label on report.html.
        left_out: The one line said in its place when it has nothing to show ("" : none).
        image: Whether report.md draws it as a PNG (report.html draws every chart that has values).
        image_label: The value axis' label of the PNG (None: ``label``).
        span: A histogram's range on report.html (None: its values').
    """

    name: str
    title: str
    kind: str
    series: Mapping[str, Any]
    label: str
    left_out: str = ""
    image: bool = True
    image_label: str | None = None
    span: tuple[float, float] | None = None

    @property
    def has_values(self) -> bool:
        return any(len(values) for values in self.series.values())

    @property
    def is_left_out(self) -> bool:
        """It has nothing to show and a line saying why, which the reports show in its place."""
        return bool(self.left_out) and not self.has_values


def domain_chart(series: Mapping[str, Counter[str]], image: bool = True) -> Chart:
    """Each series' share of problems per domain; nothing to show (and a line saying why) when every problem's domain
    is `UNKNOWN_DOMAIN`."""
    domains = set().union(*series.values()) if series else set()
    if domains and domains <= {UNKNOWN_DOMAIN}:
        line = (
            f"Domains: not drawn, every problem's domain is `{UNKNOWN_DOMAIN}`: no subject was read (map "
            "curate.stages.ingest.field_map.subject to a column that names one)."
        )
        return Chart("domains", DOMAINS_TITLE, BARS, {}, "", line, image, "share of problems")
    return Chart("domains", DOMAINS_TITLE, BARS, series, "", "", image, "share of problems")


DOMAINS_TITLE = "Domains: share of problems"


def problem_domains(problems: Iterable[Problem]) -> Counter[str]:
    """Problems per domain (`UNKNOWN_DOMAIN`: no subject)."""
    return Counter(p.subject or UNKNOWN_DOMAIN for p in problems)
