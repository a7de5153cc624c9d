"""One table for a run over several benchmarks (LIMO's suite): ours beside a published number.

`write_suite_table` reads each benchmark's summary (as `eval.reports.report.write_benchmark_results` returned it)
and writes ``suite.json`` and ``suite.md`` into the run's ``eval/`` folder, atomically: per benchmark the
mean pass@1 with its standard error, problems x samples, how many verdicts the symbolic grader could not
decide (``ungradable``), the no-answer rate, the protocol that produced it (samples, temperature, top_p,
max_new_tokens, seed, answer kind, choice shuffling), and — where the recipe gives them
(``evaluate.reference_scores``) — the published number and our difference to it, in points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.records import write_json, write_text_atomic


def suite_rows(summaries: Sequence[Mapping[str, Any]], reference: Mapping[str, float] | None) -> list[dict[str, Any]]:
    """One row per benchmark: our score (percent), the reference score and the protocol."""
    rows = []
    for summary in summaries:
        metrics, name = summary["metrics"], str(summary["benchmark"])
        ours = 100.0 * float(metrics["mean_pass@1"])
        ref = (reference or {}).get(name)
        rows.append(
            {
                "benchmark": name,
                "pass@1": round(ours, 2),
                "stderr": round(100.0 * float(metrics["pass@1_stderr"]), 2),
                "problems": metrics["problems"],
                "samples_per_problem": metrics["samples_per_problem"],
                "ungradable": metrics.get("ungradable", 0),
                "no_answer_rate": metrics["no_answer_rate"],
                "reference": ref,
                "delta": None if ref is None else round(ours - float(ref), 2),
                "protocol": summary.get("protocol", {}),
                "answer_kind": summary.get("answer_kind", "math"),
                "choices": summary.get("choices"),
            }
        )
    return rows


def render_suite(rows: Sequence[Mapping[str, Any]], label: str | None, header: Mapping[str, Any]) -> str:
    """Markdown: the table, then each benchmark's protocol."""
    ref = label or "reference"
    lines = ["# Evaluation suite", ""]
    lines += [f"- **{k}**: {v}" for k, v in header.items()]
    lines += ["", f"| benchmark | ours (pass@1 %) | {ref} | Δ | problems x samples | ungradable | no answer |"]
    lines.append("|---|---|---|---|---|---|---|")
    for r in rows:
        reference = "—" if r["reference"] is None else f"{r['reference']:.1f}"
        delta = "—" if r["delta"] is None else f"{r['delta']:+.1f}"
        lines.append(
            f"| {r['benchmark']} | {r['pass@1']:.1f} ± {r['stderr']:.1f} | {reference} | {delta} | "
            f"{r['problems']} x {r['samples_per_problem']} | {r['ungradable']} | {r['no_answer_rate']:.2%} |"
        )
    lines += [
        "",
        "## Protocol per benchmark",
        "",
        "| benchmark | answer kind | samples | temperature | top_p | max new tokens | seed | options shuffled |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["protocol"]
        shuffled = "per sample, " + str(r["choices"]["seed"]) if r.get("choices") else "no"
        lines.append(
            f"| {r['benchmark']} | {r['answer_kind']} | {p.get('samples')} | {p.get('temperature')} | "
            f"{p.get('top_p')} | {p.get('max_new_tokens')} | {p.get('seed')} | {shuffled} |"
        )
    lines += [
        "",
        "pass@1 is the mean over problems of the fraction of correct samples; ungradable counts verdicts "
        "the symbolic grader could not decide (unparseable, timeout, free-text golds).",
    ]
    return "\n".join(lines) + "\n"


def write_suite_table(
    out_dir: str | Path,
    summaries: Sequence[Mapping[str, Any]],
    *,
    reference: Mapping[str, float] | None = None,
    label: str | None = None,
    header: Mapping[str, Any] | None = None,
) -> str:
    """Write ``suite.json`` and ``suite.md`` into ``out_dir``; returns the markdown."""
    rows = suite_rows(summaries, reference)
    text = render_suite(rows, label, header or {})
    out = Path(out_dir)
    write_json(out / "suite.json", {"reference_label": label, **(header or {}), "benchmarks": rows})
    write_text_atomic(out / "suite.md", text)
    return text
