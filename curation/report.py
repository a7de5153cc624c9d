"""report.md and its plots: the funnel, pass rates, quality and length, domain mix before and after.

Plots use matplotlib's Agg backend (no display), imported only here and only when plots are on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curation.funnel import CurationState
from eval.records import write_text_atomic


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_funnel(state: CurationState, path: Path) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 4))
    stages = [c.stage for c in state.funnel]
    ax.barh(stages[::-1], [c.chains_out for c in state.funnel][::-1], color="#4c72b0", label="chains")
    ax.barh(stages[::-1], [c.problems_out for c in state.funnel][::-1], color="#dd8452", label="problems", height=0.4)
    ax.set_xscale("log")
    ax.set_xlabel("left after stage (log)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_histograms(series: dict[str, Sequence[float]], path: Path, xlabel: str) -> None:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, values in series.items():
        if values:
            ax.hist(values, bins=20, alpha=0.6, label=f"{label} (n={len(values)})")
    ax.set_xlabel(xlabel)
    ax.legend()
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


def write_plots(state: CurationState, out: Path, pool_domains: Counter[str], all_quality: list[float]) -> list[str]:
    """Write the PNGs; returns their file names."""
    rates = [
        n["difficulty"]["strong_pass_rate"]
        for n in state.problem_notes.values()
        if n.get("difficulty", {}).get("strong_pass_rate") is not None
    ]
    selected_quality = [
        state.chain_notes[c]["quality"].score for c in state.chains if "quality" in state.chain_notes[c]
    ]
    lengths = [len(c.text.split()) for c in state.chains.values()]
    plot_funnel(state, out / "funnel.png")
    plot_histograms({"problems scored": rates}, out / "pass_rate.png", "strong-model pass rate")
    plot_histograms({"candidates": all_quality, "curated": selected_quality}, out / "quality.png", "quality score")
    plot_histograms({"curated": lengths}, out / "length.png", "chain length (words)")
    after = Counter(p.subject or "unknown" for p in state.problems.values())
    plot_domains(pool_domains, after, out / "domains.png")
    return ["funnel.png", "pass_rate.png", "quality.png", "length.png", "domains.png"]


def funnel_table(state: CurationState) -> str:
    lines = [
        "| stage | chains in | chains out | problems in | problems out | dropped (chains) | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in state.funnel:
        dropped = ", ".join(f"{k}: {v}" for k, v in c.chains_dropped.items()) or "-"
        name = c.stage if c.enabled else f"{c.stage} (off)"
        lines.append(
            f"| {name} | {c.chains_in} | {c.chains_out} | {c.problems_in} | {c.problems_out} | {dropped} "
            f"| {c.seconds:.1f} |"
        )
    return "\n".join(lines)


def render_report(
    state: CurationState,
    manifest: dict[str, Any],
    plots: list[str],
    flagged: dict[str, dict[str, Any]],
    hits: list[dict[str, Any]],
) -> str:
    """The Markdown report."""
    parts = [
        f"# Curation report: {manifest.get('name', '')}",
        f"Pool `{manifest['pool']['source']}`: {state.read} items read; {len(state.chains)} chains selected "
        f"({len(state.problems)} problems). Every other item is in `rejects.jsonl` with its stage and reason.",
        "## Funnel",
        funnel_table(state),
        "## Gold overrides applied",
        "\n".join(
            f"- `{o['problem_id']}`: `{o['was']}` -> `{o['answer']}`. {o['justification']}"
            for o in manifest["gold_overrides"]
        )
        or "none",
        "## Suspect golds",
        "\n".join(
            f"- `{pid}`: gold `{d['gold']}`, strong models agree on `{d['agreed_answer']}` "
            f"({d['agreeing']} of {d['attempts']} attempts; {d['correct']} match the gold)"
            for pid, d in sorted(flagged.items())
        )
        or "none",
        "## Decontamination hits",
        "\n".join(
            f"- `{h['problem_id']}` matched `{h['benchmark']}` item `{h['item_id']}` ({h['method']}, similarity "
            f"{h['similarity']}, content {h['content']}; shared: {', '.join(repr(g) for g in h['ngrams'])})"
            for h in hits
        )
        or "none",
        "## Benchmarks checked",
        "\n".join(f"- {name}: {info}" for name, info in manifest.get("benchmarks", {}).items()) or "none",
    ]
    parts += ["## Plots"] + [f"![{p}]({p})" for p in plots]
    return "\n\n".join(parts) + "\n"


def write_report(text: str, out: Path) -> None:
    write_text_atomic(out / "report.md", text)
