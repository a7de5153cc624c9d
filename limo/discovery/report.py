"""``discover/report.md`` and ``discover/fitness.png``: what the loop found, rewritten after every candidate.

The report states the proposer, the confinement that applied, the fitness metric and the data splits; it
reconciles counts (proposals read = valid + invalid + rejected_unsafe), shows fitness over generations
(the archive seed's scores as reference lines), the seed's scores from the same run, the best objectives'
code with their selection *and* test scores (the test split was never shown to the proposer), every
candidate with its reason, and the command that trains the best one by name. Every score carries its
standard error, and a section says how far apart two scores must be to mean anything: with a few dozen
held-out pairs most differences between objectives are noise, and the report must not suggest otherwise.
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.records import write_bytes_atomic, write_text_atomic
from limo.training.loss_archive import best_rows, status_counts

BEST_SHOWN = 3
DISTINGUISHABLE = 1.96 * 2**0.5  # a 95% difference between two scores with equal standard errors


def plot_fitness(rows: Sequence[Mapping[str, Any]], metric: str, path: Path) -> bool:
    """Fitness of each valid proposal by generation (with its standard error), the best so far, and the seed
    as reference lines; written atomically (readers see the old plot or the new one)."""
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
    _plot_proposals(axes, valid)
    _plot_rejections(axes, [r["generation"] for r in rows if r["generation"] > 0 and r["status"] != "valid"])
    axes.set_xlim(0.5, max(1, *(r["generation"] for r in rows)) + 0.5)
    axes.set_xlabel("generation")
    axes.set_ylabel(f"{metric} (selection split)")
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    plt.close(figure)
    write_bytes_atomic(path, image.getvalue())
    return True


def _plot_proposals(axes: Any, valid: Sequence[Mapping[str, Any]]) -> None:
    if not valid:
        return
    generations = [r["generation"] for r in valid]
    fitness = [float(r["fitness"]) for r in valid]
    errors = [float(r.get("fitness_se") or 0.0) for r in valid]
    axes.errorbar(generations, fitness, yerr=errors, fmt="o", color="C0", capsize=3, label="proposals (± 1 s.e.)")
    best = [max(fitness[: i + 1]) for i in range(len(fitness))]
    axes.step(generations, best, where="post", color="C1", label="best so far")


def _plot_rejections(axes: Any, generations: Sequence[int]) -> None:
    """Where proposals failed, as marks along the bottom edge."""
    if generations:
        axes.scatter(
            generations,
            [0.03] * len(generations),
            marker="x",
            color="grey",
            transform=axes.get_xaxis_transform(),
            label="invalid / rejected",
        )


def _number(value: Any, digits: int = 4) -> str:
    return "—" if value is None else f"{float(value):.{digits}f}"


def _score(row: Mapping[str, Any], split: str, metric: str) -> str:
    """``value ± standard error`` of one split's score (``—`` when the row has none)."""
    scores = (row.get("metrics") or {}).get(split) or {}
    value, error = scores.get(metric), scores.get(f"{metric}_se")
    if value is None:
        return "—"
    return _number(value) if error is None else f"{_number(value)} ± {_number(error, 3)}"


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
        *_noise_section(rows, metric),
    ]
    if context.get("plot"):
        lines += ["## Fitness over generations", "", "![fitness over generations](fitness.png)", ""]
    lines += _seed_section(seeds, metric) + _best_section(proposals, metric) + _all_section(rows, metric)
    lines += ["## Train a discovered objective by name", "", "```bash", context["train_command"], "```", ""]
    return "\n".join(lines)


def _noise_section(rows: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    """How far apart two scores must be before they say anything (from the standard errors of this run)."""
    errors = sorted(float(r["fitness_se"]) for r in rows if r.get("fitness_se") is not None)
    if not errors:
        return []
    typical = statistics.median(errors)
    counts = sorted(
        {int(r["metrics"]["selection"].get("pairs") or 0) for r in rows if r.get("fitness_se") is not None}
    )
    sizes = " / ".join(str(c) for c in counts) + (" problems" if metric == "benchmark_accuracy" else " pairs")
    return [
        "## How noisy the fitness is",
        "",
        f"Every score is measured on {sizes} held out per split, and is shown with its standard "
        f"error (± 1 s.e.). The median standard error of the fitness here is {typical:.3f}, so two scores must "
        f"differ by about {DISTINGUISHABLE * typical:.2f} (1.96 × √2 s.e.) before the difference is evidence at "
        "95% that one objective is better; smaller differences between the rankings below, and between the "
        "selection and test columns, are noise. More held-out pairs narrow it as 1/√n "
        "(`discover.fitness.max_eval_pairs`, `selection_fraction`, `test_fraction`).",
        "",
    ]


def _seed_section(seeds: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    lines = [
        "## Archive seed, scored in this run",
        "",
        f"| objective | {metric} (selection) | test | status |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['name']} | {_score(r, 'selection', metric)} | {_score(r, 'test', metric)} | {r['status']} |"
        for r in seeds
    ]
    return [*lines, ""]


def _best_section(proposals: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    best = best_rows(proposals, BEST_SHOWN)
    lines = ["## Best discovered objectives", ""]
    if not best:
        return [*lines, "No proposal has been scored yet.", ""]
    for rank, row in enumerate(best, start=1):
        title = f"### {rank}. {row['name']} (generation {row['generation']})"
        scores = f"{metric}: selection {_score(row, 'selection', metric)}, test {_score(row, 'test', metric)}."
        code = ["```python", row["code"].rstrip(), "```"]
        lines += [title, "", f"{scores} {_cell(row['thought'], 400)}", "", *code, ""]
    return lines


def _all_section(rows: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    lines = [
        "## Every candidate",
        "",
        f"| gen | name | status | {metric} (selection) | test | reason |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        name, reason = _cell(row["name"], 40) or "—", _cell(row.get("reason")) or "—"
        scores = f"{_score(row, 'selection', metric)} | {_score(row, 'test', metric)}"
        lines.append(f"| {row['generation']} | {name} | {row['status']} | {scores} | {reason} |")
    return [*lines, ""]


def write_report(root: Path, rows: Sequence[Mapping[str, Any]], context: Mapping[str, Any]) -> Path:
    """Write ``report.md`` (and ``fitness.png``) under ``root``; returns the report path."""
    plotted = plot_fitness(rows, context["metric"], root / "fitness.png")
    path = root / "report.md"
    write_text_atomic(path, render_report(rows, {**context, "plot": plotted}))
    return path
