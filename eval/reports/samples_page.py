"""``eval/<benchmark>/report.html``: every sample of a benchmark run on one page (drawn by `eval.reports.html_page`).

The same page as curation's ``report.html``: the headline metrics (rates as percentages, `percent`) and the tables
of ``report.md``, charts (verdicts, pass@1 by subject or level, response lengths; hover for the numbers), then every
sample as an element with ``data-item-id`` (its ``request_id``): the response, the gold, the extracted answer, the
verdict and its reason, and the judge's and the symbolic grader's verdicts where both ran; searchable, and filtered
by subject and verdict. The provenance of ``summary.json`` (model, protocol, prompt, data checksum, grader,
versions) is the footer.

Every sample is on the page. Responses are kept whole up to `TEXT_BUDGET` characters in all; past it, each
response longer than its share keeps its beginning and its end around a marked cut, and the page says how many
were cut (``samples.jsonl`` holds them whole).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.reports.html_page import bar_chart, histogram, write_page

TEXT_BUDGET = 15_000_000
MIN_SHARE = 200  # characters a cut response keeps at least (its first and last 100)
VIEW = {
    "texts": ["response"],
    "answers": ["gold", "extracted"],
    "labels": {"extracted": "extracted answer"},
    "cues": {},
}


def write_samples_page(out_dir: str | Path, summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``out_dir/report.html`` for one benchmark's sample rows and summary; returns its path."""
    kept, cut = within_budget(rows)
    metrics = summary["metrics"]
    payload = {
        "title": f"{summary.get('benchmark', 'benchmark')}: evaluation report",
        "intro": (
            f"{metrics['samples']:,} samples of {metrics['problems']:,} problems, graded; every one is listed below "
            "with its verdict and reason. Everything on this page is inline (no network, no server)."
        ),
        "headline": [
            ["mean pass@1", metrics["mean_pass@1"]],
            ["problems", metrics["problems"]],
            ["samples", metrics["samples"]],
            ["no-answer rate", percent(metrics["no_answer_rate"])],
            ["truncation rate", percent(metrics["truncation_rate"])],
            *([["server-error rate", percent(metrics["error_rate"])]] if metrics.get("error_rate") else []),
        ],
        "charts": charts(rows, metrics),
        "tables": tables(metrics),
        "items": {
            "title": "Samples (samples.jsonl)",
            "note": items_note(cut),
            "view": VIEW,
            "rows": kept,
            "index": [sample_index(row, n) for n, row in enumerate(rows)],
        },
        "footer": {"facts": footer_facts(summary), "manifest": summary, "manifest_label": "summary.json (all of it)"},
    }
    return write_page(Path(out_dir) / "report.html", payload)


def percent(rate: float) -> str:
    """A rate as the console prints it (``100.00%``): pages and reports never show a bare share like ``1``."""
    return f"{rate:.2%}"


def sample_index(row: Mapping[str, Any], number: int) -> dict[str, Any]:
    return {
        "id": str(row.get("request_id") or f"{row.get('problem_id', 'row')}#{row.get('sample_index', number)}"),
        "domain": row.get("subject") if isinstance(row.get("subject"), str) else None,
        "status": row.get("status"),
        "score": None,
        "flags": [row["finish_reason"]] if row.get("finish_reason") == "length" else [],
    }


def within_budget(rows: Sequence[Mapping[str, Any]], budget: int = TEXT_BUDGET) -> tuple[list[dict[str, Any]], int]:
    """The rows with responses cut in the middle when they pass ``budget`` characters in all; and how many were."""
    total = sum(len(str(row.get("response") or "")) for row in rows)
    if total <= budget:
        return [dict(row) for row in rows], 0
    share = max(MIN_SHARE, budget // max(1, len(rows)))
    kept, cut = [], 0
    for row in rows:
        text = str(row.get("response") or "")
        if len(text) > share:
            cut += 1
            half = share // 2
            marker = (
                f"\n\n[… {len(text) - 2 * half:,} characters cut here; samples.jsonl has the whole response …]\n\n"
            )
            row = {**row, "response": text[:half] + marker + text[-half:]}
        kept.append(dict(row))
    return kept, cut


def items_note(cut: int) -> str:
    note = "Every sample, in file order. Open one to read its response; LaTeX is shown as source."
    if cut:
        note += f" {cut:,} long responses are shown by their beginning and end (the page keeps under its size cap)."
    return note


def charts(rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    statuses = Counter(str(row.get("status")) for row in rows)
    found = [bar_chart("Verdicts", list(statuses), {"samples": list(statuses.values())})]
    for field in ("subject", "level"):
        table = metrics.get(f"by_{field}") or {}
        if table:
            names = list(table)
            found.append(
                bar_chart(f"pass@1 by {field}", names, {"pass@1": [table[n]["pass@1"] for n in names]}, percent=True)
            )
    tokens = [row["num_tokens"] for row in rows if isinstance(row.get("num_tokens"), (int, float))]
    if tokens:
        found.append(histogram("Response length", {"samples": tokens}, "tokens"))
    return found


def tables(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[list[Any]] = [
        ["mean pass@1", metrics["mean_pass@1"]],
        ["pass@1 standard error", metrics["pass@1_stderr"]],
        *[[f"pass@{k}", v] for k, v in metrics["pass@k"].items() if k != "1"],
        *[[f"maj@{k}", v] for k, v in metrics["maj@k"].items()],
        ["mean / max response tokens", f"{metrics['mean_tokens']:.1f} / {metrics['max_tokens']}"],
        ["ungradable (symbolic grader undecided)", metrics.get("ungradable", 0)],
        ["verdicts", ", ".join(f"{k}: {v}" for k, v in metrics["status_counts"].items())],
    ]
    return [{"title": "Results", "columns": ["metric", "value"], "rows": rows}]


def footer_facts(summary: Mapping[str, Any]) -> list[list[Any]]:
    keys = ("benchmark", "model", "recipe", "backend", "protocol", "prompt", "data", "grading", "regrade")
    facts = [[key, summary[key]] for key in keys if key in summary]
    environment = summary.get("environment") or {}
    facts += [[key, environment[key]] for key in ("grader", "git_commit", "packages", "machine") if key in environment]
    return facts
