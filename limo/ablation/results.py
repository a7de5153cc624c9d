"""The tables of an ablation, from its runs' per-sample evaluation files: ``results.json``, ``results.md``,
``report.html``.

A run's verdict on a problem is its first sample's (``sample_index`` 0: one greedy sample per problem, the
protocol the comparison's benchmarks use). Per run: correct / problems with the 95% Wilson interval
(`eval.reports.metrics.wilson_interval`), and its compute — optimizer steps and the tokens of every batch (TRL's
``num_tokens`` in ``train/log_history.json``). Per arm, runs pooled: the same counts over every seed (and draw), each
benchmark whole and by part (``part_field`` / ``part_ranges``), and broken down by the sample fields ``by`` names.

A paired comparison of arms A and B pairs runs that share a seed (and a draw, when both arms draw; an arm without
draws pairs with every draw of the other at that seed; the base model, trained at no seed, pairs with every run),
counts over all pairs the problems A got right and B wrong and the reverse, and gives the two-sided exact McNemar
p-value of those counts (`eval.reports.metrics.mcnemar_p`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.records import read_jsonl, write_json, write_text_atomic
from eval.reports.html_page import bar_chart, write_page
from eval.reports.metrics import mcnemar_p, wilson_interval
from limo.ablation.plan import RunSpec

Parts = dict[str, dict[str, set[str]]]  # benchmark -> part -> problem ids


@dataclass(frozen=True)
class RunResult:
    """One evaluated model: its arm, seed, draw, compute and per-problem verdicts.

    Attributes:
        spec: Which run (arm, seed, draw, folder).
        steps: Optimizer steps (0: untrained).
        tokens: Training tokens TRL counted (0: untrained).
        correct: Benchmark -> problem id -> whether its first sample was right.
        fields: Benchmark -> problem id -> the sample fields (level, subject) for breakdowns.
    """

    spec: RunSpec
    steps: int
    tokens: int
    correct: dict[str, dict[str, bool]]
    fields: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def load_run(spec: RunSpec, benchmarks: Sequence[str]) -> RunResult:
    steps, tokens = compute_of(Path(spec.folder))
    correct: dict[str, dict[str, bool]] = {}
    fields: dict[str, dict[str, dict[str, Any]]] = {}
    for name in benchmarks:
        rows = [r for r in read_jsonl(Path(spec.folder) / "eval" / name / "samples.jsonl") if r["sample_index"] == 0]
        correct[name] = {str(r["problem_id"]): bool(r["correct"]) for r in rows}
        fields[name] = {str(r["problem_id"]): {k: r.get(k) for k in ("level", "subject")} for r in rows}
    return RunResult(spec, steps, tokens, correct, fields)


def compute_of(folder: Path) -> tuple[int, int]:
    """Optimizer steps and training tokens of a run ((0, 0) for an untrained model)."""
    log = folder / "train" / "log_history.json"
    if not log.exists():
        return 0, 0
    entries = json.loads(log.read_text(encoding="utf-8"))
    steps = max((int(e.get("step", 0)) for e in entries), default=0)
    tokens = max((int(float(e["num_tokens"])) for e in entries if "num_tokens" in e), default=0)
    return steps, tokens


def count(verdicts: Mapping[str, bool], keep: set[str] | None = None) -> tuple[int, int]:
    chosen = [v for k, v in verdicts.items() if keep is None or k in keep]
    return sum(chosen), len(chosen)


def accuracy(correct: int, total: int) -> dict[str, Any]:
    low, high = wilson_interval(share(correct, total), total)
    return {"correct": correct, "total": total, "accuracy": correct / total if total else None, "wilson": [low, high]}


def partners(a: Sequence[RunResult], b: Sequence[RunResult]) -> list[tuple[RunResult, RunResult]]:
    """The run pairs of arms A and B (see the module's docstring)."""
    out = []
    for run_a in a:
        for run_b in b:
            sa, sb = run_a.spec, run_b.spec
            if sa.seed is None or sb.seed is None:
                out.append((run_a, run_b))
            elif sa.seed == sb.seed and (sa.draw is None or sb.draw is None or sa.draw == sb.draw):
                out.append((run_a, run_b))
    return out


def paired(pairs: Sequence[tuple[RunResult, RunResult]], bench: str, keep: set[str] | None) -> dict[str, Any]:
    """Over the run pairs: problems A got right and B wrong, the reverse, pairs compared, exact McNemar p."""
    a_only = b_only = total = 0
    for run_a, run_b in pairs:
        theirs = run_b.correct[bench]
        for problem, right in run_a.correct[bench].items():
            if problem not in theirs or (keep is not None and problem not in keep):
                continue
            total += 1
            a_only += right and not theirs[problem]
            b_only += theirs[problem] and not right
    return {"a_right_b_wrong": a_only, "b_right_a_wrong": b_only, "pairs": total, "p": mcnemar_p(a_only, b_only)}


@dataclass(frozen=True)
class Tables:
    """Everything the outputs show, computed once."""

    arms: dict[str, list[RunResult]]
    parts: Parts
    by: dict[str, tuple[str, ...]]
    pairs: tuple[tuple[str, str], ...]
    facts: dict[str, Any]

    @property
    def benchmarks(self) -> list[str]:
        return list(self.parts)

    def scopes(self) -> list[tuple[str, str | None]]:
        """(benchmark, part) for every benchmark whole, then its parts."""
        return [(b, p) for b in self.parts for p in (None, *self.parts[b])]

    def keep(self, bench: str, part: str | None) -> set[str] | None:
        return None if part is None else self.parts[bench][part]


def share(correct: int, total: int) -> float:
    return correct / total if total else 0.0


def pooled(runs: Sequence[RunResult], bench: str, keep: set[str] | None) -> tuple[int, int]:
    counts = [count(r.correct[bench], keep) for r in runs]
    return sum(c for c, _ in counts), sum(n for _, n in counts)


def to_json(tables: Tables) -> dict[str, Any]:
    """``results.json``: per run accuracy and compute, per arm pooled counts, pairs, breakdowns."""
    runs = []
    for arm_runs in tables.arms.values():
        for run in arm_runs:
            cells = {}
            for bench in tables.benchmarks:
                cell = accuracy(*count(run.correct[bench]))
                cell["parts"] = {
                    p: accuracy(*count(run.correct[bench], ids)) for p, ids in tables.parts[bench].items()
                }
                cells[bench] = cell
            spec = run.spec
            row = {"arm": spec.arm, "seed": spec.seed, "draw": spec.draw, "folder": spec.folder}
            runs.append({**row, "steps": run.steps, "tokens": run.tokens, "accuracy": cells})
    pooled_rows = [
        {"arm": arm, "benchmark": b, "part": p, **accuracy(*pooled(rs, b, tables.keep(b, p)))}
        for arm, rs in tables.arms.items()
        for b, p in tables.scopes()
    ]
    pairs = [
        {
            "a": a,
            "b": b,
            "benchmark": bench,
            "part": part,
            **paired(partners(tables.arms[a], tables.arms[b]), bench, tables.keep(bench, part)),
        }
        for a, b in tables.pairs
        for bench, part in tables.scopes()
    ]
    return {**tables.facts, "runs": runs, "pooled": pooled_rows, "pairs": pairs, "breakdowns": breakdowns(tables)}


def breakdowns(tables: Tables) -> list[dict[str, Any]]:
    rows = []
    for bench, fields in tables.by.items():
        for name in fields:
            for arm, runs in tables.arms.items():
                for value, ids in sorted(values_of(runs, bench, name).items()):
                    rows.append(
                        {
                            "arm": arm,
                            "benchmark": bench,
                            "field": name,
                            "value": value,
                            **accuracy(*pooled(runs, bench, ids)),
                        }
                    )
    return rows


def values_of(runs: Sequence[RunResult], bench: str, name: str) -> dict[str, set[str]]:
    """Problem ids by their value of a sample field (from the arm's first run; every run saw the same problems)."""
    out: dict[str, set[str]] = {}
    for problem, values in runs[0].fields[bench].items():
        out.setdefault(str(values.get(name)), set()).add(problem)
    return out


def cell(counts: Mapping[str, Any]) -> str:
    if not counts["total"]:
        return "-"
    low, high = counts["wilson"]
    return f"{counts['correct']}/{counts['total']} [{low:.1%}, {high:.1%}]"


def markdown(tables: Tables, payload: Mapping[str, Any]) -> str:
    """``results.md``: the header, then compute, accuracy per run, parts pooled, pairs, breakdowns."""
    sections = [
        f"# Ablation: {payload['recipe']}",
        header_line(payload),
        "## Compute\n\n" + md_table(*compute_table(tables, payload)),
        "## Accuracy, every run [95% Wilson]\n\n" + md_table(*accuracy_table(tables, payload)),
        "## Runs pooled, by part\n\n" + md_table(*pooled_table(tables)),
        "## Paired: A right and B wrong / B right and A wrong (pairs), exact McNemar p\n\n"
        + md_table(*pairs_table(tables, payload)),
    ]
    sections += [
        f"## {title}\n\n{md_table(columns, rows)}" for title, columns, rows in breakdown_tables(tables, payload)
    ]
    return "\n\n".join(sections) + "\n"


def header_line(payload: Mapping[str, Any]) -> str:
    return (
        f"Command: `{payload['command']}`. Machine: {payload['machine']}; written {payload['written']}. Seeds "
        f"{payload['seeds']}, draws {payload['draws']}; a run's verdict is its first sample's; pairs share a seed "
        "(and a draw), pooled over seeds and draws."
    )


def md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def arm_kind(payload: Mapping[str, Any], arm: str) -> dict[str, Any]:
    return next(a for a in payload["arms"] if a["name"] == arm)


def compute_table(tables: Tables, payload: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    columns = ["arm", "kind", "rows", "runs", "steps", "tokens per run (mean)"]
    rows = []
    for arm, runs in tables.arms.items():
        info = arm_kind(payload, arm)
        steps = "/".join(str(s) for s in sorted({r.steps for r in runs}))
        tokens = sum(r.tokens for r in runs) // len(runs)
        rows.append(
            [arm, info["kind"], info.get("rows") or "-", len(runs), steps or "-", f"{tokens:,}" if tokens else "-"]
        )
    return columns, rows


def run_name(run: RunResult) -> str:
    spec = run.spec
    if spec.seed is None:
        return spec.arm
    return f"s{spec.seed}" + (f"d{spec.draw}" if spec.draw is not None else "")


def accuracy_table(tables: Tables, payload: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    columns = ["arm", *(f"{b}: mean; each run" for b in tables.benchmarks)]
    rows = []
    for arm, runs in tables.arms.items():
        cells = []
        for bench in tables.benchmarks:
            each = [accuracy(*count(r.correct[bench])) for r in runs]
            mean = sum(e["accuracy"] or 0.0 for e in each) / len(each)
            shown = "; ".join(
                f"{run_name(r)}: {cell(e)}" if r.spec.seed is not None else cell(e)
                for r, e in zip(runs, each, strict=True)
            )
            cells.append(f"{mean:.1%}; {shown}")
        rows.append([arm, *cells])
    return columns, rows


def scope_name(bench: str, part: str | None) -> str:
    return bench if part is None else f"{bench} {part}"


def pooled_table(tables: Tables) -> tuple[list[str], list[list[Any]]]:
    scopes = tables.scopes()
    columns = ["arm (runs pooled)", *(scope_name(b, p) for b, p in scopes)]
    rows = [
        [f"{arm} ({len(runs)})", *(cell(accuracy(*pooled(runs, b, tables.keep(b, p)))) for b, p in scopes)]
        for arm, runs in tables.arms.items()
    ]
    return columns, rows


def pairs_table(tables: Tables, payload: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    scopes = tables.scopes()
    columns = ["A vs B", *(scope_name(b, p) for b, p in scopes)]
    found = {(r["a"], r["b"], r["benchmark"], r["part"]): r for r in payload["pairs"]}
    rows = []
    for a, b in tables.pairs:
        cells = []
        for bench, part in scopes:
            r = found[(a, b, bench, part)]
            cells.append(f"{r['a_right_b_wrong']} / {r['b_right_a_wrong']} ({r['pairs']}), p = {r['p']:.2g}")
        rows.append([f"{a} vs {b}", *cells])
    return columns, rows


def breakdown_tables(tables: Tables, payload: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    out = []
    for bench, fields in tables.by.items():
        for name in fields:
            rows = [r for r in payload["breakdowns"] if r["benchmark"] == bench and r["field"] == name]
            values = list(dict.fromkeys(r["value"] for r in rows))
            by_arm = {(r["arm"], r["value"]): r for r in rows}
            body = [
                [arm, *(cell(by_arm[(arm, v)]) if (arm, v) in by_arm else "-" for v in values)] for arm in tables.arms
            ]
            out.append((f"{bench} by {name}, runs pooled", ["arm", *(f"{name} {v}" for v in values)], body))
    return out


def html_section(tables: Tables, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The ablation as a report section: its tables and a chart of each arm's pooled accuracy (the page payload's
    ``tables`` and ``charts``, `eval.reports.html_page`)."""
    named = [
        ("Compute", *compute_table(tables, payload)),
        ("Accuracy, every run [95% Wilson]", *accuracy_table(tables, payload)),
        ("Runs pooled, by part", *pooled_table(tables)),
        ("Paired: A right and B wrong / B right and A wrong (pairs), exact McNemar p", *pairs_table(tables, payload)),
        *breakdown_tables(tables, payload),
    ]
    scopes = tables.scopes()
    series = {
        arm: [share(*pooled(runs, b, tables.keep(b, p))) for b, p in scopes] for arm, runs in tables.arms.items()
    }
    chart = bar_chart("Accuracy, runs pooled", [scope_name(b, p) for b, p in scopes], series, percent=True)
    return {
        "tables": [{"title": t, "columns": c, "rows": [[str(x) for x in row] for row in r]} for t, c, r in named],
        "charts": [chart],
    }


def write_results(root: Path, tables: Tables) -> dict[str, Any]:
    """``results.json``, ``results.md`` and ``report.html`` under ``root`` (each atomically); returns the JSON."""
    payload = to_json(tables)
    write_json(root / "results.json", payload)
    write_text_atomic(root / "results.md", markdown(tables, payload))
    page = {
        "title": f"Ablation: {payload['recipe']}",
        "intro": header_line(payload),
        "headline": [[f"{a['name']} ({a['kind']})", f"{a.get('steps') or '-'} steps"] for a in payload["arms"]],
        **html_section(tables, payload),
    }
    write_page(root / "report.html", page)
    return payload


def facts(
    recipe: str, command: str, arms: Sequence[dict[str, Any]], benchmarks: Mapping[str, Any], seeds: Any, draws: int
) -> dict[str, Any]:
    """The header of ``results.json``: what ran, where, when."""
    return {
        "recipe": recipe,
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seeds": list(seeds),
        "draws": draws,
        "arms": list(arms),
        "benchmarks": dict(benchmarks),
    }
