"""The multi-turn tables of an ablation (``ablate.multiturn``): turn 1 and turn T of every arm, with the oracle and
without it, and the turn gains of each pair of arms compared problem by problem.

A run evaluated multi-turn (`limo.setup.eval_modes`: ``mode=[generate,multiturn] oracle=[true,false]``) has, per
benchmark and variant, ``eval/<benchmark>/multiturn_<variant>/episodes.jsonl``: one row per problem with its graded
answers turn by turn. A problem's verdict after turn t:

- ``oracle`` (after a wrong answer the model is told it is incorrect and tries again; it stops when right): right at
  some turn up to t;
- ``no_oracle`` (after every answer it is asked to check its work, so the model decides whether to change it): its
  latest answer by turn t is right (a reply with no extractable answer keeps the answer before it).

Turn 1 is the same in both variants (the first answer, greedy, as the single-turn evaluation gives it). A problem's
*gain* is its verdict at turn T minus its verdict at turn 1 (-1, 0 or 1). The statistics are the single-turn tables'
own (`limo.ablation.results`): per arm, the mean over problems with seeds averaged and its two-level bootstrap
interval, at turn 1, at turn T and of the gain; per pair of arms, A's gain minus B's per problem with the p over runs
(each run's mean gain) and the sign-flip p over problems (the claim RISE makes: a model trained on its own
improvements gains more over turns than the SFT model asked again), Holm-adjusted in one family with the
single-turn comparisons. ``results.json`` keeps every run's per-problem verdicts after each turn (``multiturn.runs``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from limo.ablation.results import (
    RUN_COLUMNS,
    RunResult,
    Section,
    Tables,
    accuracy,
    align,
    arm_accuracy,
    compare,
    count,
    p_text,
    points,
    primary_first_holm,
    problems_cell,
    run_cells,
    runs_cell,
    scope_name,
)
from limo.ablation.store import read_rows

VARIANTS = ("oracle", "no_oracle")
TurnVerdicts = dict[str, dict[str, dict[str, list[bool]]]]  # variant -> benchmark -> problem -> verdict after turn t


def verdicts_after_turns(turns: Sequence[Mapping[str, Any]], count_of_turns: int, variant: str) -> list[bool]:
    """A problem's verdict after each turn 1..``count_of_turns`` from its graded answers (see the module docstring;
    an oracle episode that stopped early was right, and stays right)."""
    out: list[bool] = []
    standing = False
    for t in range(count_of_turns):
        if variant == "oracle":
            standing = any(bool(r["correct"]) for r in turns[: t + 1])
        elif t < len(turns) and turns[t].get("extracted") is not None:
            standing = bool(turns[t]["correct"])
        out.append(standing)
    return out


def load_turns(folder: str | Path, benchmarks: Sequence[str]) -> tuple[TurnVerdicts, dict[str, int]]:
    """A run's verdicts after each turn, per variant and benchmark it was evaluated on multi-turn, and each
    variant's number of turns (from its ``summary.json``)."""
    verdicts: TurnVerdicts = {}
    counts: dict[str, int] = {}
    for variant in VARIANTS:
        for bench in benchmarks:
            where = Path(folder) / "eval" / bench / f"multiturn_{variant}"
            if not (where / "summary.json").exists():
                continue
            turns = int(json.loads((where / "summary.json").read_text(encoding="utf-8"))["turns"])
            rows = read_rows(where / "episodes.jsonl")  # or its kept copy, episodes.jsonl.gz
            found = {str(r["problem_id"]): verdicts_after_turns(r["turns"], turns, variant) for r in rows}
            verdicts.setdefault(variant, {})[bench] = found
            counts[variant] = turns
    return verdicts, counts


@dataclass(frozen=True)
class TurnRuns:
    """Every run's multi-turn verdicts, by arm (`load_turns`), and each variant's number of turns."""

    verdicts: dict[str, list[tuple[RunResult, TurnVerdicts]]]
    turns: dict[str, int]

    @classmethod
    def load(cls, tables: Tables) -> TurnRuns:
        verdicts: dict[str, list[tuple[RunResult, TurnVerdicts]]] = {}
        turns: dict[str, int] = {}
        for arm, runs in tables.arms.items():
            for run in runs:
                found, counts = load_turns(run.spec.folder, tables.benchmarks)
                if found:
                    verdicts.setdefault(arm, []).append((run, found))
                    turns.update(counts)
        return cls(verdicts, turns)

    def has(self, arm: str, variant: str, bench: str) -> bool:
        """Whether every run of ``arm`` was evaluated on ``bench`` in ``variant`` (else the arm has no row there)."""
        runs = self.verdicts.get(arm, [])
        return bool(runs) and all(bench in v.get(variant, {}) for _, v in runs)

    def at_turn(self, arm: str, variant: str, bench: str, turn: int) -> list[RunResult]:
        """The arm's runs with their verdicts after ``turn`` in place of the single-turn ones (for the statistics)."""
        return [
            replace(run, correct={bench: {p: v[turn - 1] for p, v in found[variant][bench].items()}})
            for run, found in self.verdicts[arm]
        ]

    def gains(self, arm: str, variant: str, bench: str) -> list[RunResult]:
        """The arm's runs with each problem's gain, verdict at the last turn minus at turn 1, as its score."""
        return [
            replace(run, correct={bench: {p: int(v[-1]) - int(v[0]) for p, v in found[variant][bench].items()}})
            for run, found in self.verdicts[arm]
        ]


def turn_json(tables: Tables, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``results.json``'s ``multiturn``: per run its per-problem verdicts after each turn and its counts; per arm turn
    1, turn T and the gain; the pairs' gains compared (and, when ``ablate.primary`` is a turn gain, ``primary`` with
    ``in_table`` found here). Empty when no run was evaluated multi-turn."""
    found = TurnRuns.load(tables)
    if not found.verdicts:
        return {}
    pairs = gain_pairs(tables, found)
    declared = payload.get("primary")
    primary = (
        {"primary": {**declared, "in_table": any(r["primary"] for r in pairs)}}
        if declared and declared.get("turns")
        else {}
    )
    return {
        **primary,
        "multiturn": {
            "turns": found.turns,
            "verdict": {
                "oracle": "right at some turn up to t (told 'incorrect' after a wrong answer, stops when right)",
                "no_oracle": "its latest answer by turn t (asked to check its work after every answer)",
            },
            "runs": run_rows(tables, found),
            "arms": arm_rows(tables, found),
            "pairs": pairs,
        },
    }


def run_rows(tables: Tables, found: TurnRuns) -> list[dict[str, Any]]:
    rows = []
    for arm, runs in found.verdicts.items():
        for run, verdicts in runs:
            for variant, benches in verdicts.items():
                for bench, problems in benches.items():
                    turns = found.turns[variant]
                    after = [{p: v[t] for p, v in problems.items()} for t in range(turns)]
                    parts = {
                        part: [accuracy(*count(a, ids)) for a in after] for part, ids in tables.parts[bench].items()
                    }
                    spec = run.spec
                    rows.append(
                        {
                            "arm": arm,
                            "seed": spec.seed,
                            "draw": spec.draw,
                            "variant": variant,
                            "benchmark": bench,
                            "after_turn": [accuracy(*count(a)) for a in after],
                            "parts": parts,
                            "problems": problems,
                        }
                    )
    return rows


def arm_rows(tables: Tables, found: TurnRuns) -> list[dict[str, Any]]:
    """Per arm, variant and scope: mean accuracy at turn 1 and at the last turn, and the mean gain, each with its
    bootstrap interval (`limo.ablation.results.arm_accuracy`)."""
    rows = []
    for arm in found.verdicts:
        for variant, turns in found.turns.items():
            for bench, part in tables.scopes():
                if not found.has(arm, variant, bench):
                    continue
                keep = tables.keep(bench, part)
                first = arm_accuracy(found.at_turn(arm, variant, bench, 1), bench, keep)
                last = arm_accuracy(found.at_turn(arm, variant, bench, turns), bench, keep)
                gain = arm_accuracy(found.gains(arm, variant, bench), bench, keep)
                where = {"arm": arm, "variant": variant, "benchmark": bench, "part": part, "turns": turns}
                rows.append({**where, "turn_1": first, "turn_last": last, "gain": gain})
    return rows


def gain_pairs(tables: Tables, found: TurnRuns) -> list[dict[str, Any]]:
    """For each pair of arms with multi-turn runs, variant and scope: A's gain minus B's per problem
    (`limo.ablation.results.compare`); the primary comparison (``ablate.primary`` with ``turns``) first, every other
    p also Holm-adjusted over the rest."""
    rows = []
    for a, b in tables.pairs:
        for variant in found.turns:
            for bench, part in tables.scopes():
                if not (found.has(a, variant, bench) and found.has(b, variant, bench)):
                    continue
                aligned = align(
                    found.gains(a, variant, bench), found.gains(b, variant, bench), bench, tables.keep(bench, part)
                )
                chosen = tables.is_primary(a, b, bench, part, variant)
                rows.append(
                    {
                        "a": a,
                        "b": b,
                        "variant": variant,
                        "benchmark": bench,
                        "part": part,
                        "primary": chosen,
                        **compare(aligned),
                    }
                )
    return primary_first_holm(rows)


# ------------------------------------------------------------------------------------------- rendering


def turn_sections(tables: Tables, payload: Mapping[str, Any]) -> list[Section]:
    """The multi-turn tables for results.md and report.html (none without multi-turn runs)."""
    data = payload.get("multiturn")
    if not data:
        return []
    return [arm_section(data), run_section(tables, data), gain_section(data)]


def interval_cell(row: Mapping[str, Any], signed: bool = False) -> str:
    if row["accuracy"] is None:
        return "-"
    low, high = row["interval"]
    if signed:
        return f"{points(row['accuracy'])} [{points(low)}, {points(high)}]"
    return f"{row['accuracy']:.1%} [{low:.1%}, {high:.1%}]"


def variant_name(variant: str) -> str:
    return "oracle" if variant == "oracle" else "no oracle"


def arm_section(data: Mapping[str, Any]) -> Section:
    """Rows arm x scope; per variant, turn 1, turn T and the gain in points."""
    variants = list(data["turns"])
    columns = ["scope", "arm"]
    for v in variants:
        last = data["turns"][v]
        columns += [
            f"{variant_name(v)}: turn 1",
            f"{variant_name(v)}: turn {last}",
            f"{variant_name(v)}: gain, points",
        ]
    cells: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for r in data["arms"]:
        cells.setdefault((scope_name(r["benchmark"], r["part"]), r["arm"]), {})[r["variant"]] = r
    scopes = list(dict.fromkeys(scope for scope, _ in cells))
    arms = list(dict.fromkeys(arm for _, arm in cells))
    rows = []
    for scope, arm in ((s, a) for s in scopes for a in arms if (s, a) in cells):
        row = [scope, arm]
        for v in variants:
            r = cells[(scope, arm)].get(v)
            row += (
                [interval_cell(r["turn_1"]), interval_cell(r["turn_last"]), interval_cell(r["gain"], True)]
                if r
                else ["-"] * 3
            )
        rows.append(row)
    title = (
        "Multi-turn, per arm: accuracy at turn 1 and at the last turn, and the gain (mean over problems, seeds "
        "averaged) [95% bootstrap]; oracle: right at some turn up to t; no oracle: its latest answer"
    )
    return title, columns, rows


def run_section(tables: Tables, data: Mapping[str, Any]) -> Section:
    """Rows run x variant; per benchmark, turn 1 -> last turn (correct / problems)."""
    columns = ["arm", "run", "variant", *tables.benchmarks]
    cells: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in data["runs"]:
        name = f"s{r['seed']}" + (f"d{r['draw']}" if r["draw"] is not None else "") if r["seed"] is not None else "-"
        first, last = r["after_turn"][0], r["after_turn"][-1]
        text = f"{first['correct']}/{first['total']} → {last['correct']}/{last['total']}"
        cells.setdefault((r["arm"], name, variant_name(r["variant"])), {})[r["benchmark"]] = text
    rows = [
        [arm, run, variant, *(c.get(b, "-") for b in tables.benchmarks)] for (arm, run, variant), c in cells.items()
    ]
    return "Multi-turn, every run: correct at turn 1 → at the last turn", columns, rows


def primary_section(data: Mapping[str, Any]) -> list[Section]:
    """The primary comparison when it is a turn gain: its row alone, as the gains table shows it."""
    chosen = [r for r in data["pairs"] if r["primary"]]
    if not chosen:
        return []
    columns = ["A vs B", "variant", "scope", "problems", "seeds", "gain A", "gain B", "A − B, points [95% CI]"]
    columns += ["problems A > B / A < B", *RUN_COLUMNS, "p over problems (these runs, these problems)"]
    rows = []
    for r in chosen:
        first = [f"{r['a']} vs {r['b']}", variant_name(r["variant"]), scope_name(r["benchmark"], r["part"])]
        first += [problems_cell(r), ", ".join(str(s) for s in r["seeds"]) or "none shared"]
        if r["p"] is None:
            rows.append([*first, *["-"] * 8])
            continue
        low, high = r["interval"]
        rows.append(
            [
                *first,
                points(r["accuracy_a"]),
                points(r["accuracy_b"]),
                f"{points(r['difference'])} [{points(low)}, {points(high)}]",
                f"{r['problems_a_higher']} / {r['problems_b_higher']}",
                *run_cells(r),
                p_text(r["p"], r["p_at_floor"]),
            ]
        )
    return [("Primary comparison: turn gain", columns, rows)]


def gain_section(data: Mapping[str, Any]) -> Section:
    """Rows pair x variant (the primary first); per scope, A's gain minus B's in points [95% CI], and its p (raw, then
    Holm-adjusted over the other comparisons)."""
    scopes = list(dict.fromkeys(scope_name(r["benchmark"], r["part"]) for r in (*data["arms"], *data["pairs"])))
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for r in data["pairs"]:
        label = f"{r['a']} vs {r['b']}" + (" (primary)" if r["primary"] else "")
        cells.setdefault((label, variant_name(r["variant"])), {})[scope_name(r["benchmark"], r["part"])] = gain_cell(r)
    rows = [[label, variant, *(c.get(scope, "-") for scope in scopes)] for (label, variant), c in cells.items()]
    title = (
        "Multi-turn gains compared: A's gain (last turn minus turn 1) minus B's, per problem, seeds averaged, in "
        "points [95% bootstrap]; p over runs and over problems (raw; Holm-adjusted with the table's other "
        "comparisons, single-turn ones included)"
    )
    return title, ["A vs B", "variant", *scopes], rows


def gain_cell(r: Mapping[str, Any]) -> str:
    if r["p"] is None:
        return "-"
    low, high = r["interval"]
    difference = f"{points(r['difference'])} [{points(low)}, {points(high)}]"
    over_runs = f"p over runs {runs_cell(r, holm_shown=not r['primary'])}"
    adjusted = "" if r["primary"] else f" / {p_text(r['p_holm'], r['p_at_floor'])}"
    over_problems = f"p over problems {p_text(r['p'], r['p_at_floor'])}{adjusted}"
    return f"{difference}, {over_runs}, {over_problems} ({problems_cell(r)} problems)"


@dataclass(frozen=True)
class TurnTables:
    """The multi-turn tables as an extension of the ablation's (`limo.ablation.results.write_results`)."""

    def to_json(self, tables: Tables, payload: Mapping[str, Any]) -> dict[str, Any]:
        return turn_json(tables, payload)

    def sections(self, tables: Tables, payload: Mapping[str, Any]) -> list[Section]:
        return turn_sections(tables, payload)

    def primary(self, tables: Tables, payload: Mapping[str, Any]) -> list[Section]:
        return primary_section(payload["multiturn"]) if payload.get("multiturn") else []

    def comparisons(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        return payload["multiturn"]["pairs"] if payload.get("multiturn") else []
