"""Re-grading saved responses without generating: a run folder (after a grader change) or an external
responses file (e.g. CHAMP's 19,440 recorded model responses), grouped by fields such as model and
prompt setting.

Grading runs through one `grade_many` call per folder or file (one pool of worker processes, one
progress bar). Accounting reconciles: every response row read is either graded or rejected with a reason
(unknown problem id, missing field); a missing response (a conversation cut at the length limit) is
graded as an empty response, which the grader calls ``no_answer``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.grading.grader import grade_many
from eval.grading.judge import JudgeItem, build_judge
from eval.grading.kinds import grade_sample
from eval.grading.policy import GraderOptions, apply_policy, grading_summary, render_agreement, write_agreement
from eval.records import DataError, Reject, read_jsonl, write_json, write_jsonl, write_text_atomic
from eval.reports.report import environment, grader_fingerprint, write_benchmark_results
from eval.run.runner import SAMPLES_FILE

# Fields a previous grading wrote that a new one replaces (a symbolic re-grade drops an earlier judge's).
POLICY_FIELDS = ("decided_by", "symbolic_verdict", "judge_verdict")

log = logging.getLogger(__name__)


def grade_pairs(
    pairs: Sequence[tuple[str, str] | tuple[str, str, str | None]],
    *,
    workers: int | None,
    timeout_s: float,
    desc: str = "grade",
) -> list[Any]:
    """`grade_many` over ``pairs`` in one pool of worker processes, with its progress bar on stderr."""

    log.info("%s: grading %d responses with %s workers", desc, len(pairs), workers)
    return grade_many(pairs, workers=workers, timeout_s=timeout_s, progress=True)


def benchmark_dirs(run_dir: str | Path) -> list[Path]:
    """Benchmark result folders under a run: ``run_dir`` itself, or ``run_dir/eval/*`` (or ``run_dir/*``).

    Raises:
        DataError: No ``samples.jsonl`` found.
    """
    root = Path(run_dir)
    if (root / SAMPLES_FILE).is_file():
        return [root]
    found = sorted(p.parent for p in root.glob(f"eval/*/{SAMPLES_FILE}")) or sorted(
        p.parent for p in root.glob(f"*/{SAMPLES_FILE}")
    )
    if not found:
        raise DataError(f"{root}: no {SAMPLES_FILE} in it, in eval/*/ or in */ (is it a run folder?)")
    return found


def decide(
    verdicts: Sequence[Any],
    pairs: Sequence[tuple[str, str, str | None]],
    keys: Sequence[tuple[str, int]],
    grader: GraderOptions,
    folder: Path,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The grading policy over symbolic ``verdicts`` of (gold, response, problem) ``pairs``, asking a judge cached
    in ``folder`` where it needs one. Returns the row fields and the grading summary."""
    judge = build_judge(grader.judge, folder, "regrade-judge") if grader.uses_judge else None
    items = [JudgeItem(p or "", g, r, k[0], k[1]) for (g, r, p), k in zip(pairs, keys, strict=True)]
    fields = apply_policy(grader.policy, items, verdicts, judge)
    return fields, grading_summary(grader.policy, judge, fields)


def regrade_run_dir(
    run_dir: str | Path,
    *,
    workers: int | None,
    timeout_s: float,
    equivalent: Callable[[str, str], bool],
    grader: GraderOptions | None = None,
) -> dict[str, dict[str, Any]]:
    """Grade every saved response of a run again and rewrite samples, summary and report atomically.

    Args:
        grader: The grading policy and judge (default: symbolic only); a judge's replies are cached in each
            benchmark folder, and under ``both`` the agreement table and disagreement rows are written there.

    Returns:
        ``{benchmark: summary}``; each summary's ``regrade`` says how many verdicts changed.
    """
    grader = grader or GraderOptions()
    results = {}
    for folder in benchmark_dirs(run_dir):
        rows = read_jsonl(folder / SAMPLES_FILE, tolerate_torn_tail=True)
        missing = next((n for n, r in enumerate(rows, start=1) if r.get("gold") is None), None)
        if missing:
            raise DataError(f"{folder / SAMPLES_FILE}: row {missing}: field 'gold' is missing, cannot re-grade")
        kind = _previous_header(folder).get("answer_kind") or "math"
        if kind != "math" or any(r.get("options") for r in rows):
            verdicts = [_grade_kind_row(r, kind, timeout_s) for r in rows]  # options and kinds: in process
        else:
            verdicts = grade_pairs(
                [(str(r["gold"]), str(r.get("response") or "")) for r in rows],
                workers=workers,
                timeout_s=timeout_s,
                desc=f"regrade {folder.name}",
            )
        fields, grading = decide(
            verdicts,
            [(str(r["gold"]), str(r.get("response") or ""), r.get("problem")) for r in rows],
            [(str(r.get("problem_id", n)), int(r.get("sample_index") or 0)) for n, r in enumerate(rows)],
            grader,
            folder,
        )
        changed = sum(r.get("status") != f["status"] for r, f in zip(rows, fields, strict=True))
        new_rows = [
            {**{k: v for k, v in r.items() if k not in POLICY_FIELDS}, **f} for r, f in zip(rows, fields, strict=True)
        ]
        write_jsonl(folder / SAMPLES_FILE, new_rows)
        header = _previous_header(folder)
        header["regrade"] = {"changed": changed, "previous_grader": _previous_grader(folder)}
        header["grading"] = grading
        header["grader_agreement"] = write_agreement(folder, new_rows)
        results[folder.name] = write_benchmark_results(folder, new_rows, header, equivalent)
        log.info("%s: %d of %d verdicts changed", folder.name, changed, len(rows))
    return results


def response_id(row: Mapping[str, Any], number: int) -> str:
    """A response row's id: its ``id`` or ``response_id`` field, else ``row-<n>`` (1-based input position)."""
    given = row.get("id") or row.get("response_id")
    return str(given) if given not in (None, "") else f"row-{number}"


def sample_keys(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """(problem id, index among that problem's rows): the key a replay judge answers by."""
    seen: dict[str, int] = defaultdict(int)
    keys = []
    for row in rows:
        pid = str(row["problem_id"])
        keys.append((pid, seen[pid]))
        seen[pid] += 1
    return keys


def _grade_kind_row(row: Mapping[str, Any], kind: str, timeout_s: float) -> Any:
    """A row of a benchmark with an answer kind (`eval.grading.kinds`), its presented options included."""
    options = tuple(row.get("options") or ())
    return grade_sample(
        str(row["gold"]), str(row.get("response") or ""), kind=kind, options=options, timeout_s=timeout_s
    )


def _previous_header(folder: Path) -> dict[str, Any]:
    path = folder / "summary.json"
    previous = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"benchmark": folder.name}
    dropped = ("metrics", "environment", "regrade", "grading", "grader_agreement")
    return {k: v for k, v in previous.items() if k not in dropped}


def _previous_grader(folder: Path) -> str | None:
    path = folder / "summary.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("environment", {}).get("grader")


def validate_responses(
    rows: Iterable[Mapping[str, Any]], golds: Mapping[str, str], group_by: Sequence[str], source: str
) -> tuple[list[Mapping[str, Any]], list[Reject]]:
    """Keep response rows that name a known problem and every ``group_by`` field; reject the rest."""
    kept, rejects = [], []
    for number, row in enumerate(rows, start=1):
        missing = next((f for f in ("problem_id", *group_by) if row.get(f) in (None, "")), None)
        if missing:
            rejects.append(Reject(source, number, missing, f"field {missing!r} is missing", "regrade"))
        elif str(row["problem_id"]) not in golds:
            reason = f"unknown problem id {row['problem_id']!r}"
            rejects.append(Reject(source, number, "problem_id", reason, "regrade", str(row["problem_id"])))
        else:
            kept.append(row)
    return kept, rejects


def regrade_responses(
    rows: Sequence[Mapping[str, Any]],
    golds: Mapping[str, str],
    group_by: Sequence[str],
    out_dir: str | Path,
    *,
    source: str,
    workers: int | None,
    timeout_s: float,
    grader: GraderOptions | None = None,
) -> dict[str, Any]:
    """Grade external responses against ``golds`` and write verdicts, summary and report per group.

    Each verdict row carries ``response_id``: the row's ``id`` (or ``response_id``), else ``row-<n>`` by its
    position in the input.

    Args:
        rows: Response rows with ``problem_id``, ``response`` (None: no answer) and the ``group_by`` fields.
        golds: ``{problem_id: gold answer}``.
        group_by: Fields to group accuracy by (e.g. ``model``, ``prompt_setting``).
        out_dir: ``<output_dir>/regrade``.
        source: Where the rows came from (for the report and rejects).
        workers: Grader processes.
        timeout_s: Per-answer grading time limit.
        grader: The grading policy and judge (default: symbolic only); the judge's cache is in ``out_dir``.

    Returns:
        The summary written to ``summary.json``.
    """
    grader = grader or GraderOptions()
    ids = {id(r): response_id(r, n) for n, r in enumerate(rows, start=1)}
    kept, rejects = validate_responses(rows, golds, group_by, source)
    # A row's "problem" text, when given, lets the grader read a yes/no or existence statement.
    pairs = [(golds[str(r["problem_id"])], str(r.get("response") or ""), r.get("problem")) for r in kept]
    out = Path(out_dir)
    verdicts = grade_pairs(pairs, workers=workers, timeout_s=timeout_s, desc="regrade responses")
    fields, grading = decide(verdicts, pairs, sample_keys(kept), grader, out)
    graded = [
        {"response_id": ids[id(r)], **{k: r.get(k) for k in ("problem_id", *group_by)}, **f}
        for r, f in zip(kept, fields, strict=True)
    ]
    write_jsonl(out / "verdicts.jsonl", graded)
    agreement_table = write_agreement(out, graded)
    write_jsonl(out / "rejects.jsonl", rejects)
    summary = {
        "source": source,
        "group_by": list(group_by),
        "counts": {"read": len(rows), "graded": len(kept), "rejected": len(rejects)},
        "overall": _group_stats(graded),
        "groups": group_accuracy(graded, group_by),
        "environment": environment(),
        "grader": grader_fingerprint(),
        "grading": grading,
        "grader_agreement": agreement_table,
    }
    write_json(out / "summary.json", summary)
    write_text_atomic(out / "report.md", render_group_table(summary))
    return summary


def group_accuracy(graded: Sequence[Mapping[str, Any]], group_by: Sequence[str]) -> list[dict[str, Any]]:
    """Accuracy, counts and no-answer rate per group, groups in sorted order."""
    buckets: dict[tuple[str, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for row in graded:
        buckets[tuple(str(row[f]) for f in group_by)].append(row)
    return [{**dict(zip(group_by, key, strict=True)), **_group_stats(buckets[key])} for key in sorted(buckets)]


def _group_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    correct = sum(bool(r["correct"]) for r in rows)
    no_answer = sum(r["status"] == "no_answer" for r in rows)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else 0.0, "no_answer": no_answer}


def render_group_table(summary: Mapping[str, Any]) -> str:
    """Markdown table of accuracy per group, with the totals and the accounting."""
    fields = list(summary["group_by"])
    counts = summary["counts"]
    lines = [
        f"# Re-grade of {summary['source']}",
        "",
        f"read {counts['read']} = graded {counts['graded']} + rejected {counts['rejected']}; "
        f"grader `{summary['grader']}`; git `{summary['environment'].get('git_commit')}`",
        "",
        "| " + " | ".join([*fields, "n", "correct", "accuracy", "no answer"]) + " |",
        "|" + "---|" * (len(fields) + 4),
    ]
    for group in summary["groups"]:
        cells = [str(group[f]) for f in fields]
        cells += [str(group["n"]), str(group["correct"]), f"{group['accuracy']:.4f}", str(group["no_answer"])]
        lines.append("| " + " | ".join(cells) + " |")
    total = summary["overall"]
    blanks = ["**all**"] + [""] * (len(fields) - 1)
    lines.append(
        "| "
        + " | ".join(
            [*blanks, str(total["n"]), str(total["correct"]), f"{total['accuracy']:.4f}", str(total["no_answer"])]
        )
        + " |"
    )
    if summary.get("grader_agreement"):
        lines += render_agreement(summary["grader_agreement"])
    return "\n".join(lines) + "\n"
