"""report.md, one skeleton for every method, the plots a pool run adds to it, and the console's counts.

`render_report` lays out every report the same way: a title, a paragraph saying what the run produced,
what the user would not expect (a selection smaller than ``select.n``: `shortfall_line`), the funnel table
(one row per `StageCount`, whatever the method), where the golds came from when the run voted them
(`majority_gold_section`, for every method, with how much of the selection rests on golds a single generator
voted: `gold_trust_line`), then the sections the method adds (gold overrides and decontamination hits for
LIMO, error types for LEMMA, turns for RISE, ...). The same lines reach the console (`selection_notices`), and
`pool_counts` gives the console its chain and problem totals, each of which reconciles.

What a report shows is read, not decoded: records (the benchmarks checked) are tables (`records_table`), counts
are ``name: n`` (`counts_inline`), never a Python dict; a long list of decisions is summarised, its first few
quoted with their problem, and written whole beside the report (decontamination hits: `hits_summary`,
`write_hits`, `HITS_FILE`).

Plots use matplotlib's Agg backend (no display), imported only here and only when plots are on: the funnel, then
the charts the stages declared (`curation.funnel.Chart`, `curation.stages.base.Stage.charts`), in their order, drawn
without knowing the stage; a stage that was switched off (or that the method does not run) declares none, and a
chart with nothing to show (no pass rates, every domain ``unknown``) is left out with the one line it declares
(`charts_left_out`), in report.md and report.html alike.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from curation.funnel import BARS, Chart, Section, StageCount
from curation.pool.store import PoolStore, read_problems
from eval.problem import Problem
from eval.records import write_jsonl


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_funnel(funnel: Sequence[StageCount], path: Path) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 4))
    stages = [c.stage for c in funnel]
    ax.barh(stages[::-1], [c.items_out for c in funnel][::-1], color="#4c72b0", label="chains")
    problems = [c.problems_out or 0 for c in funnel]
    ax.barh(stages[::-1], problems[::-1], color="#dd8452", label="problems", height=0.4)
    if any(c.items_out for c in funnel):  # a log axis needs a positive value (an empty pool has none)
        ax.set_xscale("log")
    ax.set_xlabel("left after stage (log)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_histograms(series: Mapping[str, Sequence[float]], path: Path, xlabel: str) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, values in series.items():
        if len(values):
            ax.hist(values, bins=20, alpha=0.6, label=f"{label} (n={len(values)})")
    ax.set_xlabel(xlabel)
    if any(len(values) for values in series.values()):
        ax.legend()
    else:  # e.g. no quality scores: say so instead of an empty legend
        ax.text(0.5, 0.5, "no values in this run", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_shares(series: Mapping[str, Mapping[str, int]], path: Path, ylabel: str) -> None:
    """Each series' share of items per category, the series' bars side by side."""
    plt = _figure()
    categories = sorted(set().union(*series.values())) if series else []
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = range(len(categories))
    width = 0.8 / max(1, len(series))
    for number, (label, counts) in enumerate(series.items()):
        total = sum(counts.values()) or 1
        offset = (number - (len(series) - 1) / 2) * width
        ax.bar([x + offset for x in xs], [counts.get(c, 0) / total for c in categories], width=width, label=label)
    ax.set_xticks(list(xs), categories, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_chart(chart: Chart, path: Path) -> None:
    """A stage's chart (`curation.funnel.Chart`) as a PNG."""
    label = chart.label if chart.image_label is None else chart.image_label
    if chart.kind == BARS:
        plot_shares(chart.series, path, label)
    else:
        plot_histograms(chart.series, path, label)


def write_plots(out: Path, funnel: Sequence[StageCount], charts: Sequence[Chart]) -> list[str]:
    """Write the funnel's PNG and one for each chart the stages declared (`curation.funnel.Chart`: those with a
    PNG), less the ones left out for having nothing to show (`charts_left_out`); returns their file names. A stale
    PNG of an earlier run (a stage now off) is removed, so the folder matches report.md."""
    drawn = ["funnel.png"]
    plot_funnel(funnel, out / "funnel.png")
    for chart in charts:
        if chart.image and not chart.is_left_out:
            plot_chart(chart, out / f"{chart.name}.png")
            drawn.append(f"{chart.name}.png")
    for stale in out.glob("*.png"):
        if stale.name not in drawn:
            stale.unlink(missing_ok=True)
    return drawn


def charts_left_out(charts: Sequence[Chart]) -> list[str]:
    """The line of each chart that has nothing to show and says why (report.md's Plots section and report.html's
    charts), in the stages' order."""
    return [chart.left_out for chart in charts if chart.is_left_out]


def plots_section(charts: Sequence[Chart] | None, drawn: Sequence[str]) -> str:
    """report.md's plots: each PNG drawn, then a line for each chart left out (`charts_left_out`)."""
    left_out = charts_left_out(charts) if charts is not None and drawn else ()
    return "\n\n".join([*(f"![{p}]({p})" for p in drawn), *left_out]) or "none (curate.stages.report.plots: false)"


def counts_inline(counts: Mapping[str, Any]) -> str:
    """``{"model": 780}`` as ``model: 780`` (a Python dict never reaches a report)."""
    return _counts(counts) or "none"


def records_table(key: str, records: Mapping[str, Mapping[str, Any]]) -> str:
    """Records by name (``{"math500": {"source": ..., "items": 500}}``) as a Markdown table: one row per name, one
    column per field (in first-seen order); a value that is not a plain one is written as JSON."""
    if not records:
        return "none"
    records = {name: r if isinstance(r, Mapping) else {"value": r} for name, r in records.items()}
    fields = list(dict.fromkeys(f for record in records.values() for f in record))
    lines = [f"| {' | '.join([key, *fields])} |", "|---" * (len(fields) + 1) + "|"]
    for name, record in records.items():
        cells = [_cell(record.get(f)) for f in fields]
        lines.append(f"| {' | '.join([name, *cells])} |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, (str, int, float)) else json.dumps(value, ensure_ascii=False)
    return str(text).replace("|", "/").replace("\n", " ")


def funnel_table(stages: Sequence[StageCount]) -> str:
    """The funnel as a Markdown table: one row per stage, the same columns for every method."""
    lines = [
        "| stage | unit | in | out | problems in | problems out | dropped | seconds | notes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in stages:
        name = c.stage if c.enabled else f"{c.stage} (off)"
        lines.append(
            f"| {name} | {c.unit} | {c.items_in} | {c.items_out} | {_or_dash(c.problems_in)} | "
            f"{_or_dash(c.problems_out)} | {_counts(c.dropped)} | {c.seconds:.1f} | {_notes(c.notes)} |"
        )
    return "\n".join(lines)


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _counts(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "-"


def _notes(notes: Mapping[str, Any]) -> str:
    """Scalars and counts inline; a list (e.g. decontamination's near misses) by its length only: the method's
    own report sections and ``funnel.json`` show its items."""
    shown = (f"{k}={_note_value(v)}" for k, v in notes.items())
    return "; ".join(shown).replace("|", "/") or "-"


def _note_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return _counts(value)
    if isinstance(value, (list, tuple)):
        return f"{len(value)} listed in funnel.json"
    return str(value)


def stage_notes(funnel: Sequence[StageCount], stage: str) -> Mapping[str, Any]:
    """The notes of the last funnel row of ``stage`` (empty: the stage did not run)."""
    return next((c.notes for c in reversed(funnel) if c.stage == stage), {})


def shortfall_line(note: Mapping[str, Any]) -> str:
    """The one line that says a selection is smaller than asked: both numbers, and where the problems went
    (`curation.stages.select.shortfall`)."""
    line = f"selected {note['selected']} of the {note['asked']} asked for (curate.stages.select.n)"
    reasons = []
    if note.get("pool_problems") is not None:
        reasons.append(f"the pool has {note['pool_problems']} problems")
    if note.get("rows_rejected"):
        reasons.append(f"ingest rejected {note['rows_rejected']} rows")
    most = note.get("most_removed_by")
    if most:
        why = ", ".join(f"{reason} {n}" for reason, n in most["reasons"].items())
        reasons.append(f"{most['stage']} removed the most: {most['problems']} problems ({why})")
    return line + (": " + "; ".join(reasons) if reasons else "") + "; every reason is in rejects.jsonl"


def gold_trust_line(note: Mapping[str, Any]) -> str | None:
    """How much of a selection rests on voted golds that one generator's chains alone (or unnamed ones) agreed on
    (`curation.stages.majority_gold.selection_trust`); None when none does."""
    single, unnamed, selected = note.get("single_generator", 0), note.get("unnamed_generators", 0), note["selected"]
    if not (single or unnamed) or not selected:
        return None
    parts = []
    if single:
        share = f"{single} of {selected} selected chains ({single / selected:.0%})"
        parts.append(f"{share} have a voted gold that rests on a single generator's chains")
    if unnamed:
        share = f"{unnamed} of {selected} ({unnamed / selected:.0%})"
        parts.append(f"{share} have a voted gold whose voters the pool does not name (map field_map.generator)")
    return (
        "; ".join(parts) + ". One model's attempts can repeat one mistake: require agreement across models "
        "(curate.stages.majority_gold.min_generators: 2), or have a judge check the chains "
        "(curate.stages.answer_check.policy: judge)"
    )


def selection_notices(funnel: Sequence[StageCount]) -> list[str]:
    """What a user would not expect of the selection, one line each: fewer than asked, golds one generator voted."""
    notes = stage_notes(funnel, "select")
    lines = [shortfall_line(notes["shortfall"])] if "shortfall" in notes else []
    trust = gold_trust_line(notes["voted_golds"]) if "voted_golds" in notes else None
    return lines + ([trust] if trust else [])


def pool_counts(funnel: Sequence[StageCount]) -> dict[str, int] | None:
    """The pool's totals for the console: chains and problems read (and rows rejected at ingest), and chains and
    problems the pool stages kept; each total reconciles (read = kept + left out). None: no pool was read."""
    ingest = next((c for c in funnel if c.stage == "ingest" and c.unit == "chain"), None)
    last = next((c for c in reversed(funnel) if c.unit == "chain" and c.problems_out is not None), None)
    if ingest is None or last is None or ingest.problems_out is None:
        return None
    return {
        "rows_rejected": ingest.dropped.get("invalid_row", 0),
        "chains": ingest.items_out,
        "problems": ingest.problems_out,
        "chains_kept": last.items_out,
        "problems_kept": last.problems_out or 0,
    }


def count_table(title: str, counts: Mapping[str, Any]) -> str:
    """A titled two-column table of counts (``value | count``)."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in counts.items()) or "| (none) | 0 |"
    return f"### {title}\n\n| value | count |\n|---|---|\n{rows}"


def majority_gold_section(funnel: Sequence[StageCount]) -> str:
    """The section "Golds by majority vote": how many problems were voted, their agreement, what was dropped
    below the threshold, and how often the vote agreed with the golds the pool had (empty: no vote ran)."""
    count = next((c for c in funnel if c.stage == "majority_gold"), None)
    if count is None:
        return ""
    notes = count.notes
    voters = f"their {', '.join(notes['models'])} chains" if notes.get("models") else "all their chains"
    intro = (
        f"This pool's golds were voted: {notes.get('voted', 0)} problems without a gold were voted on by {voters} "
        f"(at least {notes.get('min_votes')} votes and {notes.get('min_agreement')} agreement needed); "
        f"{notes.get('kept', 0)} kept with a majority gold (mean agreement {notes.get('mean_agreement')}), "
        f"dropped: {_counts(notes['dropped']) if notes.get('dropped') else 'none'}. Rows of `curated.jsonl` carry "
        "`gold_source` and `gold_agreement`."
    )
    families = notes.get("generator_families")
    kind = "model families" if families is not None else "generators"
    if notes.get("min_generators", 1) > 1:
        intro += f" A majority needed chains of at least {notes['min_generators']} {kind}."
    if families is not None:
        listed = "; ".join(f"{family}: {', '.join(names)}" for family, names in families.items())
        intro += (
            " Generators were counted by model family (curate.stages.majority_gold.count_generators: family), "
            f"the leading letters of each name: {listed or 'none named'}."
        )
    table = count_table("Voted problems by agreement (tenths)", notes.get("agreement", {}))
    trust = _trust(notes, stage_notes(funnel, "select").get("voted_golds"))
    return "\n\n".join(["## Golds by majority vote", intro, trust, _given_golds(notes), table])


def _trust(notes: Mapping[str, Any], selected: Mapping[str, Any] | None) -> str:
    """How many kept golds, and how much of the selection, rest on a single generator's chains."""
    kept, single = notes.get("kept", 0), notes.get("kept_single_generator", 0)
    unnamed = notes.get("kept_unnamed_generators", 0)
    line = (
        f"- voted golds kept: {kept}; agreed on by the chains of a single generator: {single}; by chains whose "
        f"generator the pool does not name: {unnamed}"
    )
    shown = gold_trust_line(selected) if selected else None
    return line + (f"\n- **{shown}**" if shown else "")


def _given_golds(notes: Mapping[str, Any]) -> str:
    """How the vote compares with the golds the pool had, and the first problems where it disagrees."""
    given = notes.get("given", {})
    line = (
        f"- problems with a gold of their own (kept): {given.get('problems', 0)}; the vote agrees with it on "
        f"{given.get('vote_agrees', 0)}, disagrees on {given.get('vote_disagrees', 0)} (the first 50 in "
        f"funnel.json), no vote on {given.get('no_vote', 0)}"
    )
    shown = (
        f"  - `{d['problem_id']}`: gold `{d['gold']}`, majority `{d['majority']}` (agreement {d['agreement']})"
        for d in notes.get("given_disagreements", [])[:20]
    )
    return "\n".join([line, *shown])


def section_markdown(section: Section) -> str:
    """A stage's section (`curation.funnel.Section`) as report.md shows it: its heading and its table."""
    lines = [f"## {section.title}", "", f"| {' | '.join(section.columns)} |", "|---" * len(section.columns) + "|"]
    lines += [f"| {' | '.join(_cell(value) for value in row)} |" for row in section.rows]
    return "\n".join(lines)


def with_stage_sections(report: str, sections: Sequence[Section]) -> str:
    """``report`` followed by the sections the pool stages declared (`curation.stages.base.Stage.report_section`);
    unchanged when they declared none."""
    if not sections:
        return report
    return "\n\n".join([report.rstrip("\n"), *map(section_markdown, sections)]) + "\n"


def render_report(title: str, intro: str, funnel: Sequence[StageCount], sections: Sequence[str]) -> str:
    """The Markdown report: title, what the run produced, what the user would not expect of the selection, the
    funnel, the voted golds (when the run voted them), then the method's own sections."""
    notes = stage_notes(funnel, "select")
    line = shortfall_line(notes["shortfall"]) if "shortfall" in notes else ""
    shortfall = f"**{line[:1].upper()}{line[1:]}.**" if line else ""
    parts = [f"# {title}", intro, shortfall, "## Funnel", funnel_table(funnel), majority_gold_section(funnel)]
    return "\n\n".join(part.strip("\n") for part in [*parts, *sections] if part) + "\n"


HITS_FILE = "decontamination_hits.jsonl"
HITS_SHOWN = 5  # report.md lists the first few hits; HITS_FILE has them all
PROBLEM_EXCERPT = 100  # characters of a problem a report.md line quotes


class PoolProblems:
    """A pool store's problems by id, read back for the few a report shows (rejected ones too).

    Args:
        ids: Every problem id, in pool order (`curation.runner.RunState.problem_ids`: the store's index).
        store: The pool store the ids index.
    """

    def __init__(self, ids: Sequence[str], store: PoolStore):
        self.ids, self.store = ids, store

    def __call__(self, wanted: Collection[str]) -> dict[str, Problem]:
        """The problems of ``wanted`` that the pool has (one pass over the ids, then one read per problem)."""
        wanted = set(wanted)
        return {p.id: p for p in read_problems(self.store, [i for i, pid in enumerate(self.ids) if pid in wanted])}


ProblemLookup = Callable[[Collection[str]], Mapping[str, Problem]]


def shared_evidence(hit: Mapping[str, Any]) -> list[str]:
    """What a decontamination hit shares with its item: n-grams, or (semantic) numbers and content words."""
    return list(hit.get("ngrams") or [*hit.get("shared_numbers", ()), *hit.get("shared_words", ())])


def write_hits(out: Path, hits: Sequence[Mapping[str, Any]], problems: Mapping[str, Problem]) -> None:
    """``out/decontamination_hits.jsonl``: every hit with its problem's text (removed when the run has none)."""
    path = out / HITS_FILE
    if not hits:
        path.unlink(missing_ok=True)
        return
    rows = [{**hit, "problem": _text(problems.get(hit["problem_id"]))} for hit in hits]
    write_jsonl(path, rows)


def _text(problem: Problem | None) -> str | None:
    return problem.problem if problem is not None else None


def hits_summary(hits: Sequence[Mapping[str, Any]], problems: Mapping[str, Problem]) -> str:
    """report.md's decontamination hits: counts by benchmark and method, the first `HITS_SHOWN` with their
    problem and evidence, and a link to `HITS_FILE` (`write_hits`), which has them all."""
    if not hits:
        return "none"
    benchmarks = counts_inline(Counter(h["benchmark"] for h in hits))
    methods = counts_inline(Counter(h["method"] for h in hits))
    shown = min(HITS_SHOWN, len(hits))
    lines = [
        f"{len(hits)} problems dropped as contaminated (by benchmark: {benchmarks}; by method: {methods}). "
        f"The first {shown}; every hit, with its problem and evidence, is in [{HITS_FILE}]({HITS_FILE}), and each "
        "dropped problem and chain in `rejects.jsonl`.",
        "",
        *(hit_line(hit, problems.get(hit["problem_id"])) for hit in hits[:shown]),
    ]
    return "\n".join(lines)


def hit_line(hit: Mapping[str, Any], problem: Problem | None) -> str:
    """One hit: the problem (its first words), the benchmark item, the scores and the shared evidence."""
    text = " ".join(problem.problem.split()) if problem is not None else ""
    quoted = f' "{text[:PROBLEM_EXCERPT]}{"…" if len(text) > PROBLEM_EXCERPT else ""}"' if text else ""
    shared = ", ".join(repr(g) for g in shared_evidence(hit))
    return (
        f"- `{hit['problem_id']}`{quoted} matched `{hit['benchmark']}` item `{hit['item_id']}` ({hit['method']}, "
        f"similarity {hit['similarity']}, content {hit['content']}; shared: {shared})"
    )
