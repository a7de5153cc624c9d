"""``curate.method: lemma``: LEMMA error-correction examples (Pan et al., 2025) from a graded pool.

The graded pool (`curation.methods.graded_pool`), then LEMMA's own stages (`curation.methods.lemma.examples`,
`curation.methods.lemma.injection`, `curation.methods.lemma.locators`): harvest wrong chains (the pool's, plus fresh
student rollouts when ``harvest.rollouts`` names a generator), locate first wrong steps (``locator``: a teacher
judge when one is configured, or the arithmetic step verifier), inject errors into correct chains with a teacher
when asked, keep at most ``max_examples`` of the located chains, connect (fix & continue or fresh restart), verify
the final answers and mix in plain correct chains (the pool's best, or every row of another curation's training
file: ``plain_from``). Every teacher and rollout reply goes through the one generation cache
(``curate/teacher/<task>-<hash>.jsonl``), so a killed run resumes without asking again and changed teacher settings
(or taxonomy, or seed) never reuse stale replies.

Outputs: ``messages.jsonl`` (error-correction then plain examples), ``curated.jsonl`` and the shared
accounting and report.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from curation.methods.base import CurationSummary, Method, RunContext
from curation.methods.graded_pool import STAGES as POOL_STAGES
from curation.methods.graded_pool import (
    GradedPool,
    correct_chains,
    human_references,
    load_graded_pool,
    method_manifest,
    pool_totals,
)
from curation.methods.lemma.examples import (
    ConnectionOptions,
    CorrectChain,
    WrongChain,
    connect_wrong_chains,
    connection_counts,
    error_type_counts,
    grade_chains,
    harvest_wrong_chains,
    locate_with_judge,
    plain_examples,
    verify_examples,
)
from curation.methods.lemma.injection import assign_error_types, inject_errors
from curation.methods.lemma.locators import LOCATORS, locate_by_arithmetic
from curation.options import RolloutOptions, StageOptions
from curation.outputs.report import count_table, pool_counts, render_report
from curation.outputs.writer import RunOutputs, write_outputs
from curation.rollouts.run import rollouts_as_chains
from curation.schema import HUMAN, Chain, ErrorCorrectionExample, SFTExample
from eval.backends.base import row_seed
from eval.backends.generation import GenerationOptions, cached_generator
from eval.benchmarks.arithmetic_steps import ERROR_TYPES as ARITHMETIC_ERROR_TYPES
from eval.problem import Problem
from eval.records import DataError, Reject, read_jsonl


@dataclass(frozen=True)
class HarvestOptions:
    """Wrong chains from the pool, and from fresh student rollouts when ``rollouts`` is set."""

    enabled: bool = True
    max_per_problem: int | None = None
    rollouts: RolloutOptions | None = None


@dataclass(frozen=True)
class InjectionOptions:
    """Errors a teacher writes into correct chains (``sources``: ``human`` and / or ``model`` chains)."""

    enabled: bool = False
    teacher: GenerationOptions | None = None
    per_chain: int = 1
    max_sources: int | None = None
    sources: tuple[str, ...] = (HUMAN,)


@dataclass(frozen=True)
class LemmaOptions:
    """``curate.lemma``: LEMMA's own options.

    Attributes:
        error_types: The error taxonomy ``{name: description}`` the judge and the injector see.
        harvest: Wrong chains from the pool (and rollouts).
        locator: What locates the first wrong step of a chain the pool does not annotate: ``judge`` (the teacher
            ``judge``, when one is configured) or ``arithmetic`` (the step verifier for arithmetic stories,
            `curation.methods.lemma.locators`; no teacher).
        judge: A teacher that locates first wrong steps the pool does not annotate (None: none).
        injection: Teacher-injected errors.
        max_examples: At most this many located wrong chains go on to connection, spread over problems (each
            problem's first in a seeded order, then its second, ...); None: all.
        connections: How wrong prefixes connect to a way out (`curation.lemma.ConnectionOptions`).
        plain_ratio: Plain correct chains per error-correction example (the pool's best chain of each problem).
        plain_from: Instead: every row of this training file (another curation's ``messages.jsonl``, say LIMO's
            selection) is a plain example, mixed with the error-correction examples unchanged.
    """

    error_types: dict[str, str] = field(default_factory=dict)
    harvest: HarvestOptions = field(default_factory=HarvestOptions)
    locator: str = "judge"
    judge: GenerationOptions | None = None
    injection: InjectionOptions = field(default_factory=InjectionOptions)
    max_examples: int | None = None
    connections: ConnectionOptions = field(default_factory=ConnectionOptions)
    plain_ratio: float = 0.0
    plain_from: str | None = None

    def __post_init__(self) -> None:
        if not self.connections.reflections:
            raise ValueError("curate.lemma.connections.reflections: list at least one reflection phrase")
        if self.locator not in LOCATORS:
            raise ValueError(f"curate.lemma.locator: {self.locator!r} is not one of {', '.join(LOCATORS)}")
        missing = [t for t in ARITHMETIC_ERROR_TYPES if self.error_types and t not in self.error_types]
        if self.locator == "arithmetic" and missing:
            raise ValueError(f"curate.lemma.error_types: the arithmetic locator names {missing[0]!r}; add it")
        if self.plain_from is not None and self.plain_ratio:
            raise ValueError("curate.lemma.plain_from: give plain_from or plain_ratio, not both")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError("curate.lemma.max_examples: at least 1, or null for all")
        if (self.injection.enabled or self.judge) and not self.error_types:
            raise ValueError("curate.lemma.error_types: a teacher judge or injector needs the error taxonomy")
        if self.injection.enabled and self.injection.teacher is None:
            raise ValueError("curate.lemma.injection: enabled: true needs injection.teacher")
        unknown = [s for s in self.injection.sources if s not in (HUMAN, "model")]
        if unknown:
            raise ValueError(f"curate.lemma.injection.sources: {unknown[0]!r} is not 'human' or 'model'")


def run_lemma(stages: StageOptions, options: LemmaOptions, context: RunContext) -> CurationSummary:
    """Build, verify and write LEMMA examples."""
    started = time.perf_counter()
    pool, facts = load_graded_pool(stages, context)
    state = pool.state
    wrong = harvest(options, pool, context, facts)
    wrong = locate(options, pool, wrong, context) + inject(options, pool, context)
    wrong = cap(options, pool, wrong, context.seed)
    correct, human = correct_chains(pool), human_references(pool)
    connections = options.connections
    examples, rejects = connect_wrong_chains(wrong, pool.problems, correct, human, connections, seed=context.seed)
    state.record("connect", unit="wrong_chain", items_in=len(wrong), items_out=len(examples), rejects=rejects)
    kept, rejects = verify_examples(examples, pool.problems)
    state.record("verify", unit="example", items_in=len(examples), items_out=len(kept), rejects=rejects)
    plain = mix(options, pool, kept, correct, facts)
    summary = write_lemma(kept, plain, pool, facts, context)
    seconds = round(time.perf_counter() - started, 2)
    return CurationSummary(
        "lemma",
        str(context.out),
        state.read,
        summary["examples"],
        "examples",
        state.rejected,
        seconds,
        pool_counts(state.funnel),
    )


def harvest(options: LemmaOptions, pool: GradedPool, context: RunContext, facts: dict[str, Any]) -> list[WrongChain]:
    """Wrong chains from the pool (and fresh student rollouts, when configured)."""
    settings = options.harvest
    if not settings.enabled:
        pool.state.record("harvest", unit="chain", items_in=0, items_out=0, enabled=False)
        return []
    chains = list(pool.chains)
    if settings.rollouts is not None:
        fresh = rollout_chains(settings.rollouts, list(pool.problems.values()), context)
        pool.verdicts.update(grade_chains(pool.problems, fresh, workers=1))
        chains += fresh
        facts["rollouts"] = {"chains": len(fresh), "model": settings.rollouts.generator.model}
    wrong, rejects, skipped = harvest_wrong_chains(chains, pool.verdicts, max_per_problem=settings.max_per_problem)
    annotated = sum(w.located_by == "annotation" for w in wrong)
    pool.state.record(
        "harvest",
        unit="chain",
        items_in=len(chains),
        items_out=len(wrong),
        rejects=rejects,
        not_wrong=dict(skipped),
        annotated=annotated,
    )
    return wrong


def rollout_chains(options: RolloutOptions, problems: Sequence[Problem], context: RunContext) -> list[Chain]:
    """``k`` fresh student samples per problem as chains (generator ``rollout:<model>``)."""
    return rollouts_as_chains(options, problems, context.out / "teacher", context.seed)


def locate(options: LemmaOptions, pool: GradedPool, wrong: list[WrongChain], context: RunContext) -> list[WrongChain]:
    """First wrong steps for unannotated chains from the recipe's locator: the teacher judge (when one is
    configured) or the arithmetic step verifier."""
    if options.locator == "arithmetic":
        located, rejects = locate_by_arithmetic(wrong, pool.problems)
        pool.state.record(
            "locate",
            unit="wrong_chain",
            items_in=len(wrong),
            items_out=len(located),
            rejects=rejects,
            locator="arithmetic",
            located_by_locator=sum(w.located_by == "arithmetic" for w in located),
            error_types=dict(Counter(w.error_type or "unlabelled" for w in located).most_common()),
        )
        return located
    if options.judge is None:
        unlocated = sum(w.first_wrong_step is None for w in wrong)
        pool.state.record(
            "judge", unit="wrong_chain", items_in=len(wrong), items_out=len(wrong), enabled=False, unlocated=unlocated
        )
        return wrong
    judge = cached_generator(options.judge, context.out / "teacher", "judge", [options.error_types, context.seed])
    located, rejects = locate_with_judge(
        judge, wrong, pool.problems, options.error_types, sampling=options.judge.sampling(), seed=context.seed
    )
    pool.state.record(
        "judge",
        unit="wrong_chain",
        items_in=len(wrong),
        items_out=len(located),
        rejects=rejects,
        located_by_judge=sum(w.located_by == "judge" for w in located),
    )
    return located


def cap(options: LemmaOptions, pool: GradedPool, wrong: list[WrongChain], seed: int) -> list[WrongChain]:
    """At most ``max_examples`` located wrong chains, spread over problems: each problem's chains in a seeded
    order, then every problem's first before any problem's second. Unlocated chains pass (connection rejects them
    with their reason). A stage of the funnel when ``max_examples`` is set."""
    if options.max_examples is None:
        return wrong
    located = [w for w in wrong if w.first_wrong_step is not None]
    if len(located) <= options.max_examples:
        pool.state.record(
            "cap", unit="wrong_chain", items_in=len(wrong), items_out=len(wrong), max_examples=options.max_examples
        )
        return wrong
    by_problem: dict[str, list[WrongChain]] = defaultdict(list)
    for item in sorted(located, key=lambda w: (row_seed(seed, w.chain.id, 2), w.chain.id)):
        by_problem[item.chain.problem_id].append(item)
    ranked = sorted(
        (
            (rank, row_seed(seed, w.chain.id, 3), w.chain.id)
            for items in by_problem.values()
            for rank, w in enumerate(items)
        )
    )
    chosen = {chain_id for _, _, chain_id in ranked[: options.max_examples]}
    kept = [w for w in wrong if w.first_wrong_step is None or w.chain.id in chosen]
    rejects = [
        Reject(
            source="lemma",
            row=0,
            field="chain",
            reason=f"over max_examples ({options.max_examples})",
            stage="lemma",
            id=w.chain.id,
        )
        for w in located
        if w.chain.id not in chosen
    ]
    pool.state.record(
        "cap",
        unit="wrong_chain",
        items_in=len(wrong),
        items_out=len(kept),
        rejects=rejects,
        max_examples=options.max_examples,
    )
    return kept


def mix(
    options: LemmaOptions,
    pool: GradedPool,
    kept: Sequence[ErrorCorrectionExample],
    correct: dict[str, list[CorrectChain]],
    facts: dict[str, Any],
) -> list[SFTExample]:
    """The plain examples mixed in: every row of ``plain_from``, or ``plain_ratio`` of the pool's best chains."""
    if options.plain_from is not None:
        plain, facts["plain_from"] = read_plain_rows(options.plain_from)
    else:
        plain = plain_examples(correct, pool.problems, round(options.plain_ratio * len(kept)))
    notes: dict[str, Any] = {"plain": len(plain), "plain_ratio": options.plain_ratio}
    if options.plain_from is not None:
        notes["plain_from"] = options.plain_from
    pool.state.record("mix", unit="example", items_in=len(kept), items_out=len(kept) + len(plain), **notes)
    return plain


def read_plain_rows(path: str) -> tuple[list[SFTExample], dict[str, Any]]:
    """Every row of a training file (``messages.jsonl``) as a plain example, and what the manifest records of it.

    Raises:
        DataError: No such file, a line that is not JSON, or a row that is not a training row (naming file and line).
    """
    rows, source = [], Path(path)
    for number, row in enumerate(read_jsonl(source), start=1):
        try:
            example = SFTExample.from_dict(row)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: line {number}: not a training row ({exc})") from exc
        provenance = {**example.provenance, "kind": "plain_correct", "plain_from": str(source)}
        rows.append(replace(example, provenance=provenance))
    if not rows:
        raise DataError(f"{source}: no rows to mix in (curate.lemma.plain_from)")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    return rows, {"path": str(source), "rows": len(rows), "sha256": digest}


def inject(options: LemmaOptions, pool: GradedPool, context: RunContext) -> list[WrongChain]:
    """Teacher-injected errors into correct chains (human solutions and / or correct model chains)."""
    settings = options.injection
    if not settings.enabled or settings.teacher is None:
        pool.state.record("inject", unit="task", items_in=0, items_out=0, enabled=False)
        return []
    sources = injection_sources(settings, pool)
    tasks = assign_error_types(sources, options.error_types, per_chain=settings.per_chain, seed=context.seed)
    key = [options.error_types, settings.per_chain, context.seed]
    teacher = cached_generator(settings.teacher, context.out / "teacher", "inject", key)
    wrong, rejects = inject_errors(
        teacher, tasks, options.error_types, sampling=settings.teacher.sampling(), seed=context.seed
    )
    requested = dict(Counter(t.error_type for t in tasks))
    pool.state.record(
        "inject", unit="task", items_in=len(tasks), items_out=len(wrong), rejects=rejects, requested_types=requested
    )
    return wrong


def injection_sources(options: InjectionOptions, pool: GradedPool) -> list[tuple[Problem, CorrectChain]]:
    """Correct chains to corrupt, problems in pool order: the human solution and / or the best model chain."""
    human, correct = human_references(pool), correct_chains(pool)
    sources = []
    for problem_id, problem in pool.problems.items():
        for kind in options.sources:
            if kind == HUMAN and problem_id in human:
                sources.append((problem, human[problem_id]))
            elif kind == "model" and correct.get(problem_id):
                sources.append((problem, max(correct[problem_id], key=lambda c: (c.quality, c.chain.id))))
    return sources[: options.max_sources]


def write_lemma(
    examples: Sequence[ErrorCorrectionExample],
    plain: Sequence[SFTExample],
    pool: GradedPool,
    facts: dict[str, Any],
    context: RunContext,
) -> dict[str, Any]:
    """``messages.jsonl`` (error-correction then plain examples), ``curated.jsonl`` and the accounting."""
    messages = [e.to_sft().to_dict() for e in examples] + [p.to_dict() for p in plain]
    curated = [{"kind": "error_correction", **e.to_dict()} for e in examples]
    curated += [{"kind": "plain_correct", **p.to_dict()} for p in plain]
    summary = {
        "examples": len(messages),
        "error_correction": len(examples),
        "plain": len(plain),
        "connections": connection_counts(examples),
        "error_types": error_type_counts(examples),
        "origins": _count(e.provenance.get("origin") for e in examples),
        "located_by": _count(e.provenance.get("located_by") for e in examples),
        "continuation_sources": _count(e.provenance.get("continuation_source") for e in examples),
        "rejected": len(pool.state.method_rejects),
    }
    manifest = method_manifest(context, facts, summary)
    report = render_report(f"LEMMA curation: {context.name}", _intro(summary), pool.state.funnel, _sections(summary))
    data = {"messages.jsonl": messages, "curated.jsonl": curated}
    write_outputs(
        context.out,
        RunOutputs(
            "lemma", data, pool.state, pool_totals(pool), summary, manifest, report, problems=pool.problem_lookup
        ),
    )
    return summary


def _intro(summary: dict[str, Any]) -> str:
    return (
        f"{summary['examples']} examples: {summary['error_correction']} error-correction, {summary['plain']} plain "
        f"correct chains; {summary['rejected']} items rejected (rejects.jsonl)."
    )


def _sections(summary: dict[str, Any]) -> list[str]:
    return [
        "## Final set",
        count_table("Connections", summary["connections"]),
        count_table("Error types", summary["error_types"]),
        count_table("Origin of the wrong chain", summary["origins"]),
        count_table("First wrong step located by", summary["located_by"]),
        count_table("Continuation source", summary["continuation_sources"]),
    ]


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


METHOD = Method(
    name="lemma",
    run=run_lemma,
    options=LemmaOptions,
    stages=POOL_STAGES,
    trainer="sft",
    summary="LEMMA: wrong chains cut at their first wrong step, a reflection, then a fix (messages.jsonl)",
)
