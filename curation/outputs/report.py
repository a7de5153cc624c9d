"""report.md, one skeleton for every method, and the plots a pool run adds to it.

`render_report` lays out every report the same way: a title, a paragraph saying what the run produced,
the funnel table (one row per `StageCount`, whatever the method), where the golds came from when the run
voted them (`majority_gold_section`, for every method), then the sections the method adds (gold overrides
and decontamination hits for LIMO, error types for LEMMA, turns for RISE, ...).

Plots use matplotlib's Agg backend (no display), imported only here and only when plots are on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.funnel import StageCount, Survivors


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
        if values:
            ax.hist(values, bins=20, alpha=0.6, label=f"{label} (n={len(values)})")
    ax.set_xlabel(xlabel)
    if any(series.values()):
        ax.legend()
    else:  # e.g. no pass rates when difficulty is off: say so instead of an empty legend
        ax.text(0.5, 0.5, "no values in this run", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_domains(before: Counter[str], after: Counter[str], path: Path) -> None:
    plt = _figure()
    domains = sorted(set(before) | set(after))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    total_before, total_after = sum(before.values()) or 1, sum(after.values()) or 1
    xs = range(len(domains))
    ax.bar([x - 0.2 for x in xs], [before[d] / total_before for d in domains], width=0.4, label="pool")
    ax.bar([x + 0.2 for x in xs], [after[d] / total_after for d in domains], width=0.4, label="curated")
    ax.set_xticks(list(xs), domains, rotation=30, ha="right")
    ax.set_ylabel("share of problems")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@dataclass
class PoolPlots:
    """What a pool run's plots show (a sharded run gathers it from compact columns, never from texts).

    Attributes:
        rates: Strong pass rate of every problem that got one.
        all_quality: Quality score of every chain scored.
        selected_quality: Quality score of every selected chain scored.
        lengths: Words of every selected chain.
        pool_domains: Problems per domain in the pool.
        after_domains: Problems per domain in the selection.
    """

    rates: list[float]
    all_quality: list[float]
    selected_quality: list[float]
    lengths: list[int]
    pool_domains: Counter[str]
    after_domains: Counter[str]


def selection_plots(state: Survivors) -> tuple[list[float], list[int]]:
    """Quality scores and word counts of the chains ``state`` holds."""
    scores = [state.chain_notes[c]["quality"].score for c in state.chains if "quality" in state.chain_notes[c]]
    return scores, [len(c.text.split()) for c in state.chains.values()]


def selected_domains(state: Survivors) -> Counter[str]:
    return Counter(p.subject or "unknown" for p in state.problems.values())


def write_plots(out: Path, funnel: Sequence[StageCount], plots: PoolPlots) -> list[str]:
    """Write the PNGs; returns their file names."""
    plot_funnel(funnel, out / "funnel.png")
    plot_histograms({"problems scored": plots.rates}, out / "pass_rate.png", "strong-model pass rate")
    series = {"candidates": plots.all_quality, "curated": plots.selected_quality}
    plot_histograms(series, out / "quality.png", "quality score")
    plot_histograms({"curated": plots.lengths}, out / "length.png", "chain length (words)")
    plot_domains(plots.pool_domains, plots.after_domains, out / "domains.png")
    return ["funnel.png", "pass_rate.png", "quality.png", "length.png", "domains.png"]


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
    table = count_table("Voted problems by agreement (tenths)", notes.get("agreement", {}))
    return "\n\n".join(["## Golds by majority vote", intro, _given_golds(notes), table])


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


def render_report(title: str, intro: str, funnel: Sequence[StageCount], sections: Sequence[str]) -> str:
    """The Markdown report: title, what the run produced, the funnel, the voted golds (when the run voted
    them), then the method's own sections."""
    parts = [f"# {title}", intro, "## Funnel", funnel_table(funnel), majority_gold_section(funnel), *sections]
    return "\n\n".join(part.strip("\n") for part in parts if part) + "\n"
