"""``curate/report.html``: a run's curated set as one page to read and share (drawn by `eval.reports.html_page`).

`write_report_html` builds the page from what every method hands `curation.outputs.writer.write_outputs` and
from the shared files — the run's data rows, ``funnel.json``'s stages, ``rejects.jsonl``, ``manifest.json`` —
so every method, and any new one that ends with `write_outputs`, gets the same page:

- headline cards; the rows of ``rejects.jsonl`` are counted by kind (``2,094 rows: 1,261 chains, 833 problems``), since
  a problem dropped is one row beside the rows of its chains;
- the funnel (items and problems per stage) and the plots of ``report.md`` drawn from their numbers (hover a
  bar to read them): the charts the pool stages declared (`curation.funnel.Chart`) where the method draws them,
  else what the selected rows hold (`row_charts`); a chart with nothing to show (no pass rates, every domain
  ``unknown``) is left out with the one line it declares (`curation.outputs.report.charts_left_out`);
- every selected row, in full and never sampled, as an element with ``data-item-id`` (the row's id in
  ``curated.jsonl``; ``pairs.jsonl`` for a preference method without one, else the run's first data file):
  problem, chain, gold, verdict and its reason, scores (the quality stage's cue words highlighted in the
  chain), pass rates, decisions, provenance. LaTeX is shown as source, as the model wrote it. A score that stands
  in for another is shown under its own name: a chain's ``difficulty`` is its length percentile when no problem
  has a difficulty (`score_labels`);
- rejects grouped by stage and reason with their counts and the evidence each row records (the benchmark item
  and shared n-grams of a contamination, the kept twin of a duplicate, the verdict of a wrong answer), each
  beside its problem and gold (`reject_problems`: a wrong answer is judged on the page). A
  group over `REJECTS_PER_GROUP` rows is shown by a seeded uniform sample (reservoir sampling over
  ``rejects.jsonl``, in file order), and the page says so. The reject rows get at most `REJECTS_BUDGET` bytes,
  and less when the selected rows are large (`rejects_budget`: the page aims at `PAGE_BUDGET`), which keeps a
  1M-chain run's page to a few MB (docs/performance.md); only selected rows past `PAGE_BUDGET` on their own
  make a bigger page, since they are never cut;
- search and filters (text, domain, verdict, score; text and reason for the rejects);
- the manifest's provenance in the footer: recipe, seed, method, package versions, input and output
  checksums, benchmarks, and the command line of the process that wrote the page.

The page has no timestamp, so the same run writes the same bytes.
"""

from __future__ import annotations

import json
import random
import shlex
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from curation.funnel import BARS, HISTOGRAM, Chart, Survivors, domain_chart
from curation.options import QualityOptions
from curation.outputs.report import ProblemLookup, charts_left_out
from eval.reports.html_page import bar_chart, histogram, safe_json, write_page

REJECTS_PER_GROUP = 200
REJECTS_BUDGET = 6_000_000  # bytes of reject rows in the page, whatever the run's size
MIN_REJECTS_BUDGET = 500_000
PAGE_BUDGET = 18_000_000  # what the page aims at: under 20 MB with the script, charts and footer
SAMPLE_SEED = 0
REJECT_PROBLEM_CHARS = 2_000  # of a rejected problem's text on the page: the evidence, not the whole of it
REJECT_PROBLEMS_BUDGET = 2_000_000  # characters of the rejected problems' texts in all (fewer each when many)
MIN_REJECT_PROBLEM_CHARS = 200
ITEM_FILES = ("curated.jsonl", "pairs.jsonl")  # the rows a page lists, in preference; else the first data file
TEXT_FIELDS = (
    "problem",
    "prompt",
    "question",
    "chain",
    "solution",
    "response",
    "chosen",
    "rejected",
    "wrong_chain",
    "reflection",
    "continuation",
)
PLAIN_FIELDS = ("problem", "prompt", "question")  # no cue highlighting: the cues score the chain, not the problem
ANSWER_FIELDS = ("gold_answer", "gold", "answer", "chain_final_answer")
LABELS = {"gold_answer": "gold", "chain_final_answer": "chain's final answer", "wrong_chain": "wrong chain"}
ID_FIELDS = ("id", "request_id", "problem_id")
DOMAIN_PATHS = (("subject",), ("domain",), ("provenance", "domain"))
STATUS_PATHS = (("verdict", "status"), ("status",), ("provenance", "chosen_verdict", "status"))
SCORE_PATHS = (
    ("scores", "combined"),
    ("scores", "quality", "score"),
    ("provenance", "chosen_quality"),
    ("provenance", "recall_score"),
)
# what the list's score is called, by the path it came from: selection's combined score is not the quality chart's
SCORE_NAMES: dict[tuple[str, ...], str] = {
    ("scores", "combined"): "selection score",
    ("scores", "quality", "score"): "quality score",
    ("provenance", "chosen_quality"): "chosen chain's quality score",
    ("provenance", "recall_score"): "recall score",
}
SCORE_HINTS: dict[tuple[str, ...], str] = {
    ("scores", "combined"): (
        "selection's combined score: the quality score, difficulty and the other terms in use, weighted (what select "
        "ranks by); the quality chart shows one of its terms"
    ),
}
LENGTH_FIELDS = ("chain", "solution", "chosen", "continuation", "response")


class FinishedRun(Protocol):
    """What the page reads of a finished run (`curation.outputs.writer.RunOutputs` has it)."""

    @property
    def method(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Sequence[Any]]: ...
    @property
    def state(self) -> Survivors: ...
    @property
    def totals(self) -> Mapping[str, Any]: ...
    @property
    def summary(self) -> Mapping[str, Any]: ...
    @property
    def plots(self) -> Sequence[Chart] | None: ...
    @property
    def problems(self) -> ProblemLookup | None: ...


def write_report_html(out: Path, run: FinishedRun, manifest: Mapping[str, Any]) -> Path:
    """Write ``out/report.html`` for ``run`` (its rejects read from ``out/rejects.jsonl``); returns its path."""
    name, rows = item_rows(run.data)
    funnel = [count.to_dict() for count in run.state.funnel]
    rejects = sample_rejects(out / "rejects.jsonl", budget=rejects_budget(rows))
    rejects["problems"] = reject_problems(rejects["rows"], run)
    declared = list(run.plots) if run.plots is not None else row_charts(rows, run.state.charts)
    payload = {
        "title": f"Curation report: {manifest.get('name', run.method)} ({run.method})",
        "intro": intro(run, name, len(rows), rejects),
        "headline": headline(run, len(rows), rejects),
        "funnel": funnel,
        "charts": charts(funnel, declared),
        "charts_left_out": charts_left_out(declared),
        "items": items_section(name, rows, cue_words(funnel, manifest), score_labels(funnel)),
        "rejects": rejects,
        "footer": footer(manifest, run.method),
    }
    if run.state.sections:  # what the pool stages declared (`curation.stages.base.Stage.report_section`)
        payload["tables"] = [section.to_dict() for section in run.state.sections]
    return write_page(out / "report.html", payload)


def item_rows(data: Mapping[str, Sequence[Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The data file a page lists (``curated.jsonl``, else ``pairs.jsonl``, else the first) and its rows."""
    name = next((n for n in ITEM_FILES if n in data), next(iter(data), ""))
    rows = [row.to_dict() if hasattr(row, "to_dict") else row for row in data.get(name, ())]
    return name, rows


def _path(row: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = row
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _first(row: Mapping[str, Any], paths: Sequence[Sequence[str]], kind: type | tuple[type, ...]) -> Any:
    for path in paths:
        value = _path(row, path)
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
    return None


def item_index(row: Mapping[str, Any], number: int) -> dict[str, Any]:
    """What the filters need of a row: its id (``data-item-id``), domain, verdict status, score and flags."""
    item_id = _first(row, [(k,) for k in ID_FIELDS], str)
    flags = row.get("flags")
    return {
        "id": item_id if item_id is not None else f"row{number}",
        "domain": _first(row, DOMAIN_PATHS, str),
        "status": _first(row, STATUS_PATHS, str),
        "score": _first(row, SCORE_PATHS, (int, float)),
        "flags": sorted(flags) if isinstance(flags, Mapping) else [],
    }


def cue_words(funnel: Sequence[Mapping[str, Any]], manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """The quality stage's keyword families as the run configured them (none when no quality stage ran)."""
    if not any(s["stage"] == "quality" and s["enabled"] for s in funnel):
        return {}
    configured = _path(manifest, ("config", "stages", "quality", "keywords"))
    return dict(configured) if isinstance(configured, Mapping) else QualityOptions().keywords


def score_labels(funnel: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Names for the scores that stand in for another: a chain's ``difficulty`` is its length percentile when no
    problem has a difficulty (selection's ``difficulty_term``, `curation.stages.select.difficulty_terms`)."""
    notes: Mapping[str, Any] = next((s["notes"] for s in reversed(funnel) if s["stage"] == "select"), {})
    term = notes.get("difficulty_term")
    if term == "chain_length":
        return {"difficulty": "chain-length percentile (stands in for difficulty: no problem has one)"}
    if term == "none":
        return {"difficulty": "difficulty (none: no problem has one, 0 for every chain)"}
    return {}


def items_section(
    name: str, rows: Sequence[Mapping[str, Any]], cues: Mapping[str, Any], scores: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        "title": f"Selected ({name})",
        "note": (
            f"Every row of {name}, in full, in its order. Open a row to read it; LaTeX is shown as source, exactly "
            "as written. Search matches all of a row's text (every word typed must appear)."
        ),
        "view": {
            "texts": TEXT_FIELDS,
            "plain": PLAIN_FIELDS,
            "answers": ANSWER_FIELDS,
            "labels": LABELS,
            "cues": cues,
            "score_labels": {"combined": "selection score (combined)", **(scores or {})},
            **score_name(rows),
        },
        "rows": rows,
        "index": [item_index(row, number) for number, row in enumerate(rows)],
    }


def score_name(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``score_name`` (and ``score_hint``) for the list's score: named by the path the first scored row has it at."""
    for row in rows:
        path = next((p for p in SCORE_PATHS if isinstance(_path(row, p), (int, float))), None)
        if path is not None:
            hint = SCORE_HINTS.get(path)
            return {"score_name": SCORE_NAMES[path], **({"score_hint": hint} if hint else {})}
    return {}


def rejects_budget(rows: Sequence[Mapping[str, Any]]) -> int:
    """Bytes the reject rows may take: `REJECTS_BUDGET`, or what the selected rows leave of `PAGE_BUDGET` (at
    least `MIN_REJECTS_BUDGET`, so every group keeps some evidence)."""
    left = PAGE_BUDGET - len(safe_json(rows))
    return max(MIN_REJECTS_BUDGET, min(REJECTS_BUDGET, left))


def sample_rejects(
    path: Path, per_group: int = REJECTS_PER_GROUP, budget: int = REJECTS_BUDGET, seed: int = SAMPLE_SEED
) -> dict[str, Any]:
    """``rejects.jsonl`` grouped by (stage, reason): every group's count, and up to ``per_group`` of its rows (a
    seeded reservoir sample, in file order), fewer when the rows would pass ``budget`` bytes in all.

    A run of millions has millions of reject lines, so a line is parsed only when it is kept: its group is read
    from the ``"stage": ..., "reason": ...`` pair every writer here puts on it (`eval.records.json_line` of a
    `curation.funnel.Drop`: `_group`).
    """
    counts: Counter[tuple[str, str]] = Counter()
    kinds: dict[str, int] = {}
    slots: dict[tuple[str, str], list[tuple[int, str]]] = {}
    rng = random.Random(seed)
    if path.exists():
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle):
                if line.strip():
                    kind = line[len(_KIND) : line.find('"', len(_KIND))] if line.startswith(_KIND) else _kind(line)
                    kinds[kind] = kinds.get(kind, 0) + 1  # inline: a call and a Counter cost 0.6 s more per 1M lines
                    _reservoir(_group(line), (number, line), counts, slots, rng, per_group)
    per_group = _within_budget(slots, per_group, budget)
    groups: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for key, count in counts.items():
        kept = sorted(slots[key][:per_group])
        groups.append({"stage": key[0], "reason": key[1], "count": count, "shown": len(kept)})
        rows.extend(json.loads(line) for _, line in kept)
    total = sum(counts.values())
    return {
        "title": "Rejects",
        "note": rejects_note(per_group),
        "total": total,
        "kinds": dict(sorted(kinds.items(), key=lambda item: -item[1])),
        "groups": groups,
        "rows": rows,
    }


_STAGE, _REASON, _KIND = '"stage": "', '", "reason": "', '{"kind": "'


def _kind(line: str) -> str:
    """The kind of a reject line that does not open with it (every writer here puts it first), parsed whole."""
    return str(json.loads(line).get("kind"))


def reject_problems(rows: Sequence[Mapping[str, Any]], run: FinishedRun) -> dict[str, dict[str, str]]:
    """The problem and gold of every reject row shown, by problem id, so that a decision (a wrong answer, a
    contamination) can be judged beside its evidence: from the run's kept problems, then the pool
    (``run.problems``) for the rest. A problem's text is cut at `REJECT_PROBLEM_CHARS`, and shorter when many
    problems would pass `REJECT_PROBLEMS_BUDGET` in all (the whole text is in the pool)."""
    wanted = {pid for row in rows if isinstance(pid := row.get("problem_id"), str)}
    found = {pid: run.state.problems[pid] for pid in wanted if pid in run.state.problems}
    if run.problems is not None and wanted - set(found):
        found.update(run.problems(wanted - set(found)))
    chars = max(MIN_REJECT_PROBLEM_CHARS, min(REJECT_PROBLEM_CHARS, REJECT_PROBLEMS_BUDGET // max(1, len(found))))
    return {pid: {"problem": _cut(p.problem, chars), "gold": p.answer} for pid, p in sorted(found.items())}


def _cut(text: str, chars: int) -> str:
    if len(text) <= chars:
        return text
    return f"{text[:chars]} … ({len(text) - chars:,} characters more in the pool)"


def _group(line: str) -> tuple[str, str]:
    """A reject line's (stage, reason), found with two string searches (a regex or a parse costs ten times more
    per line); a line where they are not plain strings in that order is parsed whole."""
    start = line.find(_STAGE)
    middle = line.find(_REASON, start) if start >= 0 else -1
    end = line.find('"', middle + len(_REASON)) if middle >= 0 else -1
    if end >= 0:
        stage, reason = line[start + len(_STAGE) : middle], line[middle + len(_REASON) : end]
        if "\\" not in stage and "\\" not in reason and '"' not in stage:
            return stage, reason
    row = json.loads(line)
    return str(row.get("stage")), str(row.get("reason"))


def _reservoir(
    key: tuple[str, str],
    slot_value: tuple[int, str],
    counts: Counter[tuple[str, str]],
    slots: dict[tuple[str, str], list[tuple[int, str]]],
    rng: random.Random,
    per_group: int,
) -> None:
    """Algorithm R per group: after n rows each is in the group's ``per_group`` slots with the same chance; any
    leading part of the slots is a uniform sample too, which is what `_within_budget` cuts to."""
    counts[key] += 1
    bucket = slots.setdefault(key, [])
    if len(bucket) < per_group:
        bucket.append(slot_value)
    else:
        slot = rng.randrange(counts[key])
        if slot < per_group:
            bucket[slot] = slot_value


def _within_budget(slots: Mapping[Any, list[tuple[int, str]]], per_group: int, budget: int) -> int:
    """The largest rows-per-group (halving from ``per_group``) whose sample fits ``budget`` bytes."""
    while per_group > 1 and sum(len(line) for bucket in slots.values() for _, line in bucket[:per_group]) > budget:
        per_group //= 2
    return per_group


def rejects_note(per_group: int) -> str:
    return (
        "Every item left out, grouped by stage and reason, with the evidence its row records. A group of more than "
        f"{per_group} rows is shown by a seeded uniform sample of {per_group} (in file order); the counts are "
        "exact and every row is in rejects.jsonl."
    )


def intro(run: FinishedRun, name: str, selected: int, rejects: Mapping[str, Any]) -> str:
    counted = _counted_as(run, rejects)
    totals = ", ".join(
        f"{_total_label(k, counted)} {v:,}"
        for k, v in run.totals.items()
        if isinstance(v, int) and not isinstance(v, bool)
    )
    return (
        f"Method {run.method}: {selected:,} rows in {name} ({totals}); {rejects_label(rejects)}, each with its stage "
        "and reason. Written beside report.md; everything it shows is inline (no network, no server)."
    )


def rejects_label(rejects: Mapping[str, Any]) -> str:
    """``2,094 rows in rejects.jsonl: 1,261 chains, 833 problems``: the rows are chains, problems and rows the pool
    could not read, counted apart, since a problem dropped is one row beside the rows of its chains."""
    kinds = rejects_kinds(rejects)
    return f"{rejects['total']:,} rows in rejects.jsonl" + (f": {kinds}" if kinds else "")


def rejects_kinds(rejects: Mapping[str, Any]) -> str:
    """``1,261 chains, 833 problems``: the reject rows counted by kind."""
    return ", ".join(f"{count:,} {_plural(kind, count)}" for kind, count in rejects.get("kinds", {}).items())


def _plural(kind: str, count: int) -> str:
    if kind == "row":
        return "unreadable pool row" + ("s" if count != 1 else "")
    return kind + ("s" if count != 1 and not kind.endswith("s") else "")


def _counted_as(run: FinishedRun, rejects: Mapping[str, Any]) -> str | None:
    """What a pool run's ``read`` and ``dropped`` count (`curation.runner.RunState.reconcile`: chains, and rows the
    pool could not read); None for another method, whose totals count its own items."""
    if not run.state.funnel or run.state.funnel[-1].unit != "chain":
        return None
    return "chains + unreadable rows" if rejects.get("kinds", {}).get("row") else "chains"


def _total_label(key: str, counted: str | None) -> str:
    return f"{key} ({counted})" if counted and key in ("read", "dropped") else key


def headline(run: FinishedRun, selected: int, rejects: Mapping[str, Any]) -> list[list[Any]]:
    numbers = {**run.totals, **run.summary}
    counted = _counted_as(run, rejects)
    shown = [
        [_total_label(key, counted), value]
        for key, value in numbers.items()
        if isinstance(value, (int, float)) and key != "selected"
    ]
    kinds = rejects_kinds(rejects)
    return [
        ["selected", selected],
        *shown,
        ["rows in rejects.jsonl" + (f": {kinds}" if kinds else ""), rejects["total"]],
    ]


def charts(funnel: Sequence[Mapping[str, Any]], declared: Sequence[Chart]) -> list:
    """The plots of ``report.md``: the funnel, then the charts the stages declared (`curation.funnel.Chart`) that
    have values, in their order (one left out says why: `curation.outputs.report.charts_left_out`)."""
    stages = [s["stage"] for s in funnel]
    found = [
        bar_chart(
            "Funnel: left after each stage (log scale)",
            stages,
            {"items": [s["items_out"] for s in funnel], "problems": [s["problems_out"] for s in funnel]},
            xlabel="left after stage",
            horizontal=True,
            log=True,
        )
    ]
    return found + [page_chart(chart) for chart in declared if chart.has_values]


def page_chart(chart: Chart) -> dict[str, Any]:
    """A declared chart as the page draws it: a histogram, or each series' share per category (bars)."""
    if chart.kind == BARS:
        return share_chart(chart.title, chart.series, chart.label)
    return histogram(chart.title, chart.series, chart.label, span=chart.span)


def row_charts(rows: Sequence[Mapping[str, Any]], declared: Sequence[Chart]) -> list[Chart]:
    """For a method whose pool stages declare no charts of their own: pass rates, quality scores, lengths and domains
    from what the selected rows hold; a chart without values says why with the line of the declared chart of its
    name (a pool stage that ran, e.g. one switched off), where there is one."""
    rates = [v for r in rows if isinstance(v := _path(r, ("pass_rates", "strong_pass_rate")), (int, float))]
    selected_quality = [v for r in rows if isinstance(v := _path(r, ("scores", "quality", "score")), (int, float))]
    lengths = [len(text.split()) for r in rows if (text := _first(r, [(k,) for k in LENGTH_FIELDS], str))]
    domains = Counter(d for r in rows if (d := _first(r, DOMAIN_PATHS, str)))
    rate_series = {"selected problems": rates} if rates else {}
    quality_series = {"curated": selected_quality} if selected_quality else {}
    found = [
        Chart("pass_rate", "Pass rate", HISTOGRAM, rate_series, "strong-model pass rate", span=(0.0, 1.0)),
        Chart("quality", "Quality score", HISTOGRAM, quality_series, "quality score"),
        Chart("length", "Length of the selected", HISTOGRAM, {"curated": lengths} if lengths else {}, "words"),
        domain_chart({"curated": domains} if domains else {}),
    ]
    lines = {chart.name: chart.left_out for chart in declared}
    return [replace(chart, left_out=chart.left_out or lines.get(chart.name, "")) for chart in found]


def share_chart(title: str, series: Mapping[str, Mapping[str, int]], xlabel: str = "") -> dict[str, Any]:
    """Each series' share of items per category."""
    names = sorted({d for counts in series.values() for d in counts})
    shares = {}
    for label, counts in series.items():
        total = sum(counts.values()) or 1
        shares[f"{label} (n={sum(counts.values())})"] = [round(counts.get(d, 0) / total, 4) for d in names]
    return bar_chart(title, names, shares, xlabel=xlabel, percent=True)


def footer(manifest: Mapping[str, Any], method: str) -> dict[str, Any]:
    """Provenance first (what a reader needs to reproduce the run), then the whole manifest, folded."""
    keys = ("name", "seed", "method", "pool", "corpus", "packages", "input_checksums", "outputs_sha256", "benchmarks")
    facts = [["recipe" if key == "name" else key, manifest[key]] for key in keys if key in manifest]
    if "method" not in manifest:
        facts.insert(2, ["method", method])
    execution = manifest.get("execution")
    if isinstance(execution, Mapping):
        facts.append(["executor", {k: v for k, v in execution.items() if k != "work_dir"}])
    facts.append(["command line (the process that wrote this page)", command_line()])
    return {"facts": facts, "manifest": manifest, "manifest_label": "manifest.json (all of it)"}


def command_line() -> str:
    """This process's command line as a person would type it (``python -m limo.curate recipe=...``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = ["python", "-m", spec.name.removesuffix(".__main__")] if spec and spec.name else ["python", sys.argv[0]]
    return shlex.join([*program, *sys.argv[1:]])
