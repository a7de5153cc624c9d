"""``curate.method: baseline``: what a curation must beat — chains drawn at random from the same pool, or all of them.

The baseline reads the pool exactly as LIMO's funnel does and runs its cleaning stages as the recipe sets them
(ingest, ``problem_limit``, validate, answer check, dedup, decontam, suspect gold), with the ranking stages off
(difficulty, quality, diversity: their funnel rows say ``enabled: false``) and selection replaced by a draw over
the chains left (``draw``: a funnel row whose rejects are the chains not drawn):

- ``random``: ``n`` chains at random, whatever their verdict (the answer check keeps unconfirmed chains, flagged);
- ``random_correct``: ``n`` chains at random among those the answer check confirms (rejection-sampling
  fine-tuning's data): a problem with many confirmed chains (an easy one) is drawn more often, and may be drawn
  several times;
- ``random_problems``: ``n`` distinct problems at random among those with a confirmed chain, and one of each
  problem's confirmed chains at random: a curation's coverage (one chain a problem) with the choice of problems left
  to chance;
- ``all``: every chain, whatever its verdict;
- ``all_correct``: every confirmed chain.

Duplicates are what the recipe's dedup leaves (exact copies of a chain for the same problem never survive it;
``curate.stages.dedup.near=false`` keeps near-copies). The draw is a pure function of the surviving chains and
``seed``: a different run seed is a different draw, the same seed the same chains, so ``limo.ablate`` gives each of
its draws its own seed. A random kind that finds fewer chains (``random_problems``: fewer problems) than ``n`` draws
them all and says so in one console line with both numbers. It accepts LIMO's whole ``curate.stages`` section (a
LIMO recipe runs it unchanged); ``select.boxed_answer`` still decides the training view's boxed answer. Outputs as
LIMO's: ``curated.jsonl``, ``messages.jsonl`` (pool order; a row's id is its chain's, since a problem may be drawn
more than once) and the shared accounting and report.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from curation import stages as pool_stages
from curation.funnel import Drop, Survivors
from curation.methods.base import CurationSummary, Method, RunContext
from curation.methods.limo.method import PACKAGES
from curation.methods.limo.method import STAGES as LIMO_STAGES
from curation.options import StageOptions
from curation.outputs.report import PoolProblems, pool_counts, render_report
from curation.outputs.writer import RunOutputs, curated_row, training_example, warn_flagged, write_outputs
from curation.pool.store import open_or_ingest
from curation.schema import Chain
from eval.reports.report import package_versions

KINDS = ("random", "random_correct", "random_problems", "all", "all_correct")
VERIFIED = ("random_correct", "random_problems", "all_correct")  # the kinds that draw confirmed chains only
RANKING = ("difficulty", "quality", "diversity")  # off in a baseline: they are what a curation adds


@dataclass(frozen=True)
class BaselineOptions:
    """``curate.baseline``: which chance baseline to draw.

    Attributes:
        kind: ``random`` (``n`` chains, any verdict), ``random_correct`` (``n`` confirmed chains),
            ``random_problems`` (``n`` problems with a confirmed chain, one of their confirmed chains each), ``all``
            (every chain) or ``all_correct`` (every confirmed chain).
        n: How many chains (``random_problems``: problems) a random kind draws (fewer when fewer are left: the
            console and the report say so); unused by the ``all`` kinds.
    """

    kind: Literal["random", "random_correct", "random_problems", "all", "all_correct"] = "random_correct"
    n: int | None = None


def baseline_stages(stages: StageOptions, options: BaselineOptions) -> StageOptions:
    """The stage options a baseline runs with: the ranking stages off, the answer check keeping unconfirmed chains
    for the kinds that take any verdict (and dropping them for the `VERIFIED` kinds, whatever the recipe says)."""
    off = {name: replace(getattr(stages, name), enabled=False) for name in RANKING}
    check = replace(stages.answer_check, keep_incorrect=options.kind not in VERIFIED)
    return replace(stages, answer_check=check, **off)


def check_options(options: BaselineOptions) -> None:
    """Raises: ValueError: a random kind without a positive ``n``."""
    if options.kind.startswith("random") and (options.n is None or options.n < 1):
        unit = "problems" if options.kind == "random_problems" else "chains"
        raise ValueError(f"curate.baseline.n: the {options.kind} baseline draws n {unit}; set n >= 1, got {options.n}")


def draw(chains: list[Chain], options: BaselineOptions, seed: int) -> list[Chain]:
    """The chains the baseline keeps, in pool order: all of them, ``n`` drawn with ``random.Random(seed)``, or
    (``random_problems``) one chain of each of ``n`` problems drawn so."""
    if options.kind == "random_problems":
        return draw_problems(chains, options.n, seed)
    if options.kind.startswith("all") or options.n is None or options.n >= len(chains):
        return list(chains)
    picked = set(random.Random(seed).sample(range(len(chains)), options.n))
    return [c for i, c in enumerate(chains) if i in picked]


def draw_problems(chains: list[Chain], n: int | None, seed: int) -> list[Chain]:
    """``n`` distinct problems drawn with ``random.Random(seed)`` among those with a chain (every one when fewer),
    then one chain of each drawn problem, drawn by the same ``random.Random``; returned in pool order.

    Problems are drawn first and uniformly, so a problem with many chains left is no likelier to be drawn than one
    with a single chain (``random_correct`` draws chains, so it favours them).
    """
    by_problem: dict[str, list[int]] = {}
    for index, chain in enumerate(chains):
        by_problem.setdefault(chain.problem_id, []).append(index)
    draws = random.Random(seed)
    problems = list(by_problem)  # pool order of each problem's first chain: the draw depends on the pool alone
    picked = problems if n is None or n >= len(problems) else draws.sample(problems, n)
    kept = {draws.choice(by_problem[problem]) for problem in picked}
    return [c for i, c in enumerate(chains) if i in kept]


def shortfall_notice(options: BaselineOptions, drawn: Sequence[Chain]) -> str | None:
    """One line when a random kind drew fewer than its ``n`` (both numbers, and what there was to draw from)."""
    if not options.kind.startswith("random") or options.n is None:
        return None
    if options.kind == "random_problems":
        found = len({c.problem_id for c in drawn})
        what, pool = "problems", "problems have a confirmed chain"
    else:
        found = len(drawn)
        what = "chains"
        pool = "confirmed chains are" if options.kind in VERIFIED else "chains are"
        pool += " left"
    if found >= options.n:
        return None
    return (
        f"drew {found} {what} of the {options.n} asked for (curate.baseline.n, {options.kind}): only {found} {pool} "
        "after the cleaning stages; every reason is in rejects.jsonl"
    )


def run_baseline(stages: StageOptions, options: BaselineOptions, context: RunContext) -> CurationSummary:
    """Run the cleaning stages, draw, and write ``<output_dir>/curate/``."""
    started = time.perf_counter()
    check_options(options)
    stages = baseline_stages(stages, options)
    runner = context.stage_context()
    store = open_or_ingest(stages, runner.work_dir, runner.executor.shard_rows)
    names = pool_stages.stage_names([s for s in LIMO_STAGES if s != "select"], stages)
    state = pool_stages.run_pool(store, stages, names, runner, context.out / "rejects.jsonl")
    kept = pool_stages.survivors(state, stages)
    chosen = record_draw(kept, options, context.seed)
    not_drawn = state.totals["selected"] - len(chosen)
    totals = {**state.totals, "selected": len(chosen), "dropped": state.totals["dropped"] + not_drawn}
    facts = {
        "pool": {"source": store.facts["source"], "read": state.read},
        "input_checksums": store.facts["checksums"],
    }
    rows = [curated_row(kept, c, stages.quality) for c in chosen]
    manifest: dict[str, Any] = {
        "name": context.name,
        "seed": context.seed,
        "config": dict(context.config),
        **facts,
        "baseline": {"kind": options.kind, "n": options.n, "drawn": len(chosen), "seed": context.seed},
        "packages": package_versions(PACKAGES),
        "totals": totals,
        "execution": pool_stages.execution_facts(state, runner, context.output_dir),
        "flagged": warn_flagged(rows) if options.kind in VERIFIED else {},
    }
    messages = [replace(training_example(kept, c, stages.select), id=c.id) for c in chosen]  # a problem may recur
    data: dict[str, Sequence[Any]] = {"curated.jsonl": rows, "messages.jsonl": messages}
    summary = {"selected": len(chosen), "kind": options.kind}
    notice = shortfall_notice(options, chosen)
    report = baseline_report(kept, options, chosen, notice, context) if stages.report.enabled else None
    problems = PoolProblems(state.problem_ids, store)
    outputs = RunOutputs("baseline", data, kept, totals, summary, manifest, report, [], [], problems)
    write_outputs(context.out, outputs)
    seconds = round(time.perf_counter() - started, 2)
    return CurationSummary(
        "baseline",
        str(context.out),
        state.read,
        len(chosen),
        "chains",
        kept.rejected,
        seconds,
        pool_counts(kept.funnel),
        (notice,) if notice else (),
    )


def record_draw(kept: Survivors, options: BaselineOptions, seed: int) -> list[Chain]:
    """The draw as the funnel's last row: every chain not drawn is a reject (``not_drawn``)."""
    chains = list(kept.chains.values())
    chosen = draw(chains, options, seed)
    drawn = {c.id for c in chosen}
    rejects = [Drop("chain", c.id, c.problem_id, "draw", "not_drawn") for c in chains if c.id not in drawn]
    problems_out = len({c.problem_id for c in chosen})
    kept.record(
        "draw",
        unit="chain",
        items_in=len(chains),
        items_out=len(chosen),
        rejects=rejects,
        problems=(len(kept.problems), problems_out),
        kind=options.kind,
        n=options.n,
        seed=seed,
    )
    kept.chains = {c.id: c for c in chosen}
    return chosen


def baseline_report(
    kept: Survivors, options: BaselineOptions, drawn: Sequence[Chain], notice: str | None, context: RunContext
) -> str:
    problems = len({c.problem_id for c in drawn})
    unit = "problems" if options.kind == "random_problems" else "chains"
    asked = f" ({options.n} {unit} asked)" if options.n is not None and options.kind.startswith("random") else ""
    short = f" {notice[:1].upper()}{notice[1:]}." if notice else ""
    intro = (
        f"Baseline `{options.kind}`: {len(drawn)} chains of {problems} problems{asked}, drawn with seed "
        f"{context.seed} from the chains the cleaning stages kept; the ranking stages were off.{short} Every chain "
        "left out is in `rejects.jsonl`."
    )
    return render_report(f"Curation baseline: {context.name}", intro, kept.funnel, [])


METHOD = Method(
    name="baseline",
    run=run_baseline,
    options=BaselineOptions,
    stages=LIMO_STAGES,
    trainer="sft",
    summary="a chance baseline: chains drawn at random from the cleaned pool, or all of them (messages.jsonl)",
)
