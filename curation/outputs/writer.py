"""What a curation run writes: the one writer every method ends with (`write_outputs`), and LIMO's rows.

`write_outputs` writes a run's data files (``curated.jsonl``, ``messages.jsonl`` or ``pairs.jsonl``, ...),
``curated.parquet``, and the accounting every method shares: ``funnel.json`` (``method``, ``stages``,
``totals``, ``summary``; one `curation.funnel.StageCount` row per stage), ``rejects.jsonl`` (one
`curation.funnel.Drop` row per item left out), ``manifest.json``, ``report.md`` and, with it, ``report.html``
(`curation.outputs.report_html`). Every file is written atomically. A manifest with an ``outputs_sha256`` key
gets the checksums of the data files.

LIMO's curated set is one row per selected chain (full provenance) and its training view
(`messages.jsonl`). A chain that is not confirmed correct (``answer_check.keep_incorrect``, a gold read from
the chain itself) carries its flags in both, and `warn_flagged` says so once per run. When the run voted golds
(`curation.stages.majority_gold`) each curated row also says where its gold came from (`gold_fields`).

Paths written into rows or the manifest are relative to the run directory when the run wrote the file
(`run_relative`), so two runs that differ only in ``output_dir`` write the same bytes.

The training view has no system turn (training adds the recipe's) and its assistant turn ends with the
final answer in ``\\boxed{}``. CHAMP chains never box their answer (CHAMP asked for a summary sentence
instead), so a chain without ``\\boxed{`` gets one closing line::

    The final answer is $\\boxed{<answer>}$.

where ``<answer>`` is the gold (``select.boxed_answer: gold``, the default: the answer was checked equal
to it) or the answer the grader extracted from the chain (``chain``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.funnel import Chart, Survivors
from curation.options import QualityOptions, SelectOptions
from curation.outputs.report import ProblemLookup, with_stage_sections
from curation.outputs.report_html import write_report_html
from curation.pool.golds import gold_note
from curation.schema import Chain, SFTExample
from curation.stages.answer_check import chain_flags, chain_verdict
from curation.stages.difficulty import pass_rates
from curation.stages.quality import row_quality
from curation.stages.select import chain_place, problem_rank, row_scores
from eval.problem import Problem
from eval.records import append_jsonl, sha256_file, write_json, write_jsonl, write_parquet, write_text_atomic

log = logging.getLogger(__name__)


def run_relative(path: str | Path, run_dir: Path) -> str:
    """``path`` relative to the run directory when it lies inside it (a file the run wrote), else as given (an
    input the user named): provenance then has the same bytes whichever folder the run writes to."""
    target = Path(path)
    try:
        return target.resolve().relative_to(Path(run_dir).resolve()).as_posix()
    except ValueError:
        return str(path)


def assistant_text(chain: Chain, answer: str) -> str:
    """The chain's text, ending with a boxed final answer."""
    if "\\boxed{" in chain.text:
        return chain.text
    return f"{chain.text.rstrip()}\n\nThe final answer is $\\boxed{{{answer}}}$."


def answer_to_box(state: Survivors, chain: Chain, options: SelectOptions) -> str:
    """The answer the training view boxes: the gold, or the answer the grader extracted from the chain."""
    gold = state.problems[chain.problem_id].answer
    if options.boxed_answer == "chain":
        verdict = chain_verdict(state.chain_notes.get(chain.id, {}))
        return (verdict.extracted if verdict is not None else None) or gold
    return gold


def row_id(state: Survivors, chain: Chain) -> str:
    """A selected chain's row id in ``curated.jsonl`` and ``messages.jsonl``: its problem's id, and for a problem's
    further chains (``select.chains_per_problem``) ``<problem id>#<place>`` (training needs each id once)."""
    place = chain_place(state.chain_notes.get(chain.id, {})).get("place", 1)
    return chain.problem_id if place == 1 else f"{chain.problem_id}#{place}"


def selected_chains(state: Survivors) -> list[Chain]:
    """Selected chains by rank (one per problem, or its ``select.chains_per_problem`` best, best first)."""

    def order(chain: Chain) -> tuple[int, str, int]:
        place = chain_place(state.chain_notes.get(chain.id, {})).get("place", 1)
        return problem_rank(state.problem_notes[chain.problem_id]) or 0, chain.problem_id, place

    return sorted(state.chains.values(), key=order)


def gold_fields(problem: Problem) -> dict[str, Any]:
    """Where a row's gold came from when the run voted golds (`curation.stages.majority_gold`): ``gold_source``
    (``majority`` or ``given``), ``gold_agreement`` (the share of the votes equal to that gold) and
    ``gold_generators`` (how many distinct named generators gave it: 1 is one model agreeing with itself, 0 none
    named), and for a given gold whether the majority agreed; nothing for a run that did not vote."""
    note = gold_note(problem.extra)
    if note is None:
        return {}
    fields = {"gold_source": note["source"], "gold_agreement": note["agreement"]}
    if "generators" in note:
        fields["gold_generators"] = note["generators"]
    return fields | ({"gold_vote_agrees": note.get("agrees")} if note["source"] == "given" else {})


REVIEW = "kept_for_review"  # the decision of a stage that flagged a kept problem (`Survivors.problem_flags`)


def curated_row(state: Survivors, chain: Chain, quality: QualityOptions) -> dict[str, Any]:
    """One curated row: problem, chain, gold (and where it came from) and every score and decision behind it."""
    problem = state.problems[chain.problem_id]
    pnotes = state.problem_notes.get(problem.id, {})
    cnotes = state.chain_notes.get(chain.id, {})
    flags = state.problem_flags.get(problem.id, {})
    decisions = {count.stage: "kept" for count in state.funnel if count.enabled}
    decisions |= {stage: REVIEW for stage in flags}
    verdict = chain_verdict(cnotes)
    # the answer the grader read from the chain where the pool gave no separate final answer
    final_answer = chain.final_answer or (verdict.extracted if verdict is not None else None)
    return {
        "id": row_id(state, chain),
        "rank": problem_rank(pnotes),
        "problem": problem.problem,
        "chain": chain.text,
        "gold_answer": problem.answer,
        **gold_fields(problem),
        "chain_final_answer": final_answer,
        "chain_id": chain.id,
        "source": problem.source,
        "subject": problem.subject,
        "generator": chain.generator,
        "prompt_setting": chain.prompt_setting,
        "scores": {**row_scores(cnotes), "quality": row_quality(chain, cnotes, quality)},
        "pass_rates": pass_rates(pnotes),
        "verdict": verdict.to_dict() if verdict is not None else None,
        "flags": {**flags, **chain_flags(chain, cnotes)},
        "decisions": decisions,
        "chain_provenance": chain.provenance,
    }


def training_example(state: Survivors, chain: Chain, options: SelectOptions) -> SFTExample:
    """The training view of a selected chain; its flags (`chain_flags`) travel in ``provenance`` when it has any."""
    problem = state.problems[chain.problem_id]
    flags = chain_flags(chain, state.chain_notes.get(chain.id, {}))
    return SFTExample.single_turn(
        row_id(state, chain),
        problem.problem,
        assistant_text(chain, answer_to_box(state, chain, options)),
        provenance={"chain_id": chain.id, "flags": flags} if flags else {},
    )


def warn_flagged(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Warn once when selected chains carry flags a trainer must know of; returns the counts by flag (a problem's
    flag, kept for review, apart)."""
    counts = dict(Counter(flag for row in rows for flag in row["flags"] if row["decisions"].get(flag) != REVIEW))
    unconfirmed = counts.get("unconfirmed", 0) + counts.get("gold_circular", 0)
    if unconfirmed:
        log.warning(
            "%d of %d selected chains are not confirmed correct (%s); each is flagged in curated.jsonl and in "
            "messages.jsonl's provenance",
            unconfirmed,
            len(rows),
            ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()) if k != "grader_disagrees"),
        )
    return counts


@dataclass
class RunOutputs:
    """Everything one curation run writes under ``<output_dir>/curate/``.

    Attributes:
        method: The method that ran (``funnel.json``'s ``method``).
        data: Data files by name, in write order (rows of each).
        state: The run's funnel and rejects.
        totals: The run's reconciliations (``funnel.json``'s ``totals``).
        summary: The method's headline counts (``funnel.json``'s ``summary``).
        manifest: ``manifest.json``.
        report: ``report.md``'s text, or None to write none.
        parquet: Rows for ``curated.parquet`` (none written when empty).
        plots: The charts a pool run draws (its stages', `curation.funnel.Survivors.charts`), in ``report.html``
            too (None: it plots what the rows hold).
        problems: The pool's problems by id (`curation.outputs.report.PoolProblems`), for the rejected ones
            ``report.html`` shows beside their evidence; None: only the kept problems (``state``) are shown.
    """

    method: str
    data: Mapping[str, Sequence[Any]]
    state: Survivors
    totals: dict[str, Any]
    summary: dict[str, Any]
    manifest: dict[str, Any]
    report: str | None
    parquet: Sequence[dict[str, Any]] = field(default_factory=list)
    plots: Sequence[Chart] | None = None
    problems: ProblemLookup | None = None


def write_outputs(out: Path, run: RunOutputs) -> None:
    """Write every file of ``run`` under ``out`` (atomically, data files first)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in run.data.items():
        write_jsonl(out / name, rows)
    if run.parquet:
        write_parquet(out / "curated.parquet", run.parquet)
    stages = [c.to_dict() for c in run.state.funnel]
    write_json(
        out / "funnel.json", {"method": run.method, "stages": stages, "totals": run.totals, "summary": run.summary}
    )
    if run.state.method_rejects:  # after the pool stages' drops, which the runner streamed while it ran
        append_jsonl(out / "rejects.jsonl", run.state.method_rejects)
    manifest = dict(run.manifest)
    if "outputs_sha256" in manifest:
        manifest["outputs_sha256"] = {name: sha256_file(out / name) for name in sorted(run.data)}
    write_json(out / "manifest.json", manifest)
    if run.report is not None:
        write_text_atomic(out / "report.md", with_stage_sections(run.report, run.state.sections))
        write_report_html(out, run, manifest)  # last: it reads rejects.jsonl complete
