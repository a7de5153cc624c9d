"""``discover/report.md`` and ``discover/fitness.png``: what the loop found, rewritten after every candidate.

The report states the proposer, the confinement that applied, the fitness metric and the data splits; it
reconciles counts (proposals read = valid + invalid + rejected_unsafe), shows fitness over generations
(the archive seed's scores as reference lines), the seed's scores from the same run, the best objectives'
code with their selection *and* test scores (the test split was never shown to the proposer), every
candidate with its reason, and the command that trains the best one by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.records import write_text_atomic
from limo.discovery.archive import best_rows, status_counts

BEST_SHOWN = 3


def plot_fitness(rows: Sequence[Mapping[str, Any]], metric: str, path: Path) -> bool:
    """Fitness of each valid proposal by generation, the best so far, and the seed as reference lines."""
    valid = [r for r in rows if r["generation"] > 0 and r["status"] == "valid" and r.get("fitness") is not None]
    seeds = [r for r in rows if r["generation"] == 0 and r.get("fitness") is not None]
    if not valid and not seeds:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    for index, seed in enumerate(seeds):
        axes.axhline(float(seed["fitness"]), linestyle="--", linewidth=0.8, color=f"C{index + 2}", label=seed["name"])
    if valid:
        generations = [r["generation"] for r in valid]
        axes.scatter(generations, [float(r["fitness"]) for r in valid], color="C0", label="proposals", zorder=3)
        best, running = [], float("-inf")
        for row in valid:
            running = max(running, float(row["fitness"]))
            best.append(running)
        axes.step(generations, best, where="post", color="C1", label="best so far")
    rejected = [r["generation"] for r in rows if r["generation"] > 0 and r["status"] != "valid"]
    if rejected:  # where proposals failed, as marks along the bottom edge
        axes.scatter(rejected, [0.03] * len(rejected), marker="x", color="grey", transform=axes.get_xaxis_transform(),
                     label="invalid / rejected")  # fmt: skip
    axes.set_xlim(0.5, max(r["generation"] for r in rows) + 0.5)
    axes.set_xlabel("generation")
    axes.set_ylabel(f"{metric} (selection split)")
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    staging = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(staging, dpi=110)
    plt.close(figure)
    os.replace(staging, path)  # readers see the old plot or the new one
    return True


def _number(value: Any, digits: int = 4) -> str:
    return "—" if value is None else f"{float(value):.{digits}f}"


def _test(row: Mapping[str, Any], metric: str) -> str:
    return _number((row.get("metrics") or {}).get("test", {}).get(metric))


def _cell(text: Any, limit: int = 140) -> str:
    value = " ".join(str(text or "").split()).replace("|", "\\|")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def render_report(rows: Sequence[Mapping[str, Any]], context: Mapping[str, Any]) -> str:
    """The report's markdown; ``context`` holds the run facts (proposer, confinement, metric, splits, ...)."""
    metric = context["metric"]
    proposals = [r for r in rows if r["generation"] > 0]
    seeds = [r for r in rows if r["generation"] == 0]
    counts = status_counts(proposals)
    stopped = f" ({context['stopped']})" if context.get("stopped") else ""
    lines = [
        f"# Objective discovery: {context['name']}",
        "",
        f"- proposer: {context['proposer']}",
        f"- confinement of candidate workers: {context['confinement']}",
        f"- fitness: `{metric}` on {context['scored_on']} is never shown to the proposer",
        f"- inner training: {context['training']}",
        f"- proposals read: {len(proposals)} = {counts['valid']} valid + {counts['invalid']} invalid + "
        f"{counts['rejected_unsafe']} rejected_unsafe{stopped}",
        "",
    ]
    if context.get("plot"):
        lines += ["## Fitness over generations", "", "![fitness over generations](fitness.png)", ""]
    lines += _seed_section(seeds, metric) + _best_section(proposals, metric) + _all_section(rows, metric)
    lines += ["## Train a discovered objective by name", "", "```bash", context["train_command"], "```", ""]
    return "\n".join(lines)


def _seed_section(seeds: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    lines = ["## Archive seed, scored in this run", "", f"| objective | {metric} (selection) | test | status |",
             "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {r['name']} | {_number(r.get('fitness'))} | {_test(r, metric)} | {r['status']} |" for r in seeds]
    return [*lines, ""]


def _best_section(proposals: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    best = best_rows(proposals, BEST_SHOWN)
    lines = ["## Best discovered objectives", ""]
    if not best:
        return [*lines, "No proposal has been scored yet.", ""]
    for rank, row in enumerate(best, start=1):
        title = f"### {rank}. {row['name']} (generation {row['generation']})"
        scores = f"{metric}: selection {_number(row['fitness'])}, test {_test(row, metric)}."
        code = ["```python", row["code"].rstrip(), "```"]
        lines += [title, "", f"{scores} {_cell(row['thought'], 400)}", "", *code, ""]
    return lines


def _all_section(rows: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    lines = [
        "## Every candidate",
        "",
        f"| gen | name | status | {metric} | test | reason |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        name, reason = _cell(row["name"], 40) or "—", _cell(row.get("reason")) or "—"
        fitness = _number(row.get("fitness"))
        lines.append(
            f"| {row['generation']} | {name} | {row['status']} | {fitness} | {_test(row, metric)} | {reason} |"
        )
    return [*lines, ""]


def write_report(root: Path, rows: Sequence[Mapping[str, Any]], context: Mapping[str, Any]) -> Path:
    """Write ``report.md`` (and ``fitness.png``) under ``root``; returns the report path."""
    plotted = plot_fitness(rows, context["metric"], root / "fitness.png")
    path = root / "report.md"
    write_text_atomic(path, render_report(rows, {**context, "plot": plotted}))
    return path
