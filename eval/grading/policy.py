"""Who decides a verdict: the symbolic grader, the model judge, or both — and how often they agree.

Policies (``evaluate.grader.policy``, and the same key under curation's answer check):

- ``symbolic``: `eval.grading.grader.grade` alone (the default; no judge is built).
- ``judge``: the judge (`eval.grading.judge`) decides every row; an unreadable reply is ``unparseable``.
- ``symbolic_then_judge``: the symbolic verdict stands unless it is undecided (``no_answer``, ``unparseable``,
  ``timeout``: what the symbolic grader cannot parse or finds no answer in); only those rows go to the judge,
  and a judge reply that cannot be read leaves the symbolic verdict.
- ``both``: both run on every row; the symbolic verdict decides (so metrics stay comparable with symbolic
  runs) and the judge's is recorded beside it, for the agreement table.

Every row records ``decided_by`` (``symbolic`` or ``judge``); where the judge ran, the row also carries
``symbolic_verdict`` and ``judge_verdict``. `agreement` counts, over rows that have both, how often the two
agree on correct/incorrect (a judge reply that could not be read is counted apart), and `disagreements`
lists the rows where they differ; `write_agreement` writes ``agreement.json`` and ``disagreements.jsonl``.
A judge asked in both orders (``judge.order: swap``, `eval.grading.judge.combine_orders`) is compared with itself the
same way: `order_agreement` (the ``orders`` entry of ``agreement.json``) counts how often its ``same`` and
``swap`` asks agree, and `order_disagreements` (``order_disagreements.jsonl``) lists the rows where they differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.grading.judge import Judge, JudgeItem, JudgeOptions, JudgeVerdict
from eval.records import write_json, write_jsonl

if TYPE_CHECKING:  # annotations only: the grader (sympy) loads where a row is graded, not where options are read
    from eval.grading.grader import Verdict

POLICIES = ("symbolic", "judge", "symbolic_then_judge", "both")
UNDECIDED = ("no_answer", "unparseable", "timeout")
AGREEMENT_FILE = "agreement.json"
DISAGREEMENTS_FILE = "disagreements.jsonl"
ORDER_DISAGREEMENTS_FILE = "order_disagreements.jsonl"


@dataclass(frozen=True)
class GraderOptions:
    """``evaluate.grader``: the policy and, for every policy but ``symbolic``, the judge."""

    policy: str = "symbolic"
    judge: JudgeOptions = field(default_factory=JudgeOptions)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown grader policy {self.policy!r} (known: {', '.join(POLICIES)}), grader.policy")

    @property
    def uses_judge(self) -> bool:
        return self.policy != "symbolic"


def needs_judge(policy: str, verdict: Verdict) -> bool:
    """Whether the judge is asked about a row the symbolic grader gave ``verdict``."""
    return policy in ("judge", "both") or (policy == "symbolic_then_judge" and verdict.status in UNDECIDED)


def combine(policy: str, symbolic: Verdict, judged: JudgeVerdict | None) -> dict[str, Any]:
    """The row fields for one response: the deciding verdict, who decided, and both verdicts if both ran."""
    fields: dict[str, Any] = {**_fields(symbolic), "decided_by": "symbolic"}
    if judged is None:
        return fields
    fields.update(symbolic_verdict=_fields(symbolic), judge_verdict=judged.to_dict())
    judge_decides = policy == "judge" or (policy == "symbolic_then_judge" and judged.status != "unparseable")
    if judge_decides:
        fields.update(status=judged.status, correct=judged.correct, reason=judged.reason, decided_by="judge")
    return fields


def _fields(verdict: Verdict) -> dict[str, Any]:
    return {
        "extracted": verdict.extracted,
        "status": verdict.status,
        "correct": verdict.correct,
        "reason": verdict.reason,
    }


def apply_policy(
    policy: str, items: Sequence[JudgeItem], verdicts: Sequence[Verdict], judge: Judge | None
) -> list[dict[str, Any]]:
    """Row fields for each item under ``policy``, asking ``judge`` only about the rows the policy sends it.

    Raises:
        ValueError: A policy that needs the judge and no judge.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown grader policy {policy!r} (known: {', '.join(POLICIES)})")
    asked = [i for i, v in enumerate(verdicts) if needs_judge(policy, v)]
    if asked and judge is None:
        raise ValueError(f"grader policy {policy!r} needs a judge (evaluate.grader.judge)")
    judged: dict[int, JudgeVerdict] = {}
    if asked and judge is not None:
        judged = dict(zip(asked, judge.judge_many([items[i] for i in asked]), strict=True))
    return [combine(policy, v, judged.get(i)) for i, v in enumerate(verdicts)]


Pair = tuple[Mapping[str, Any], Mapping[str, Any]]


def _judge_pair(row: Mapping[str, Any]) -> Pair | None:
    """(symbolic verdict, judge verdict) of a row that has both."""
    if row.get("judge_verdict") and row.get("symbolic_verdict"):
        return row["symbolic_verdict"], row["judge_verdict"]
    return None


def _order_pair(row: Mapping[str, Any]) -> Pair | None:
    """(same-order verdict, swapped verdict) of a row whose judge was asked in both orders."""
    orders = (row.get("judge_verdict") or {}).get("orders")
    return (orders["same"], orders["swap"]) if orders else None


def _readable(pair: Pair, judged: tuple[int, ...]) -> bool:
    """Whether the replies at positions ``judged`` of ``pair`` could be read (an unreadable judge reply is not
    compared; a symbolic ``unparseable`` is a verdict, not-correct)."""
    return all(pair[i]["status"] != "unparseable" for i in judged)


def _differ(pair: Pair, judged: tuple[int, ...]) -> bool:
    return _readable(pair, judged) and bool(pair[0]["correct"]) != bool(pair[1]["correct"])


def _cross(pairs: Sequence[Pair], judged: tuple[int, ...]) -> dict[str, Any]:
    """Two verdicts per row: how often they agree on correct/incorrect where readable, and the status table."""
    table: dict[str, Counter[str]] = {}
    for first, second in pairs:
        table.setdefault(first["status"], Counter())[second["status"]] += 1
    compared = [p for p in pairs if _readable(p, judged)]
    disagree = sum(_differ(p, judged) for p in compared)
    return {
        "compared": len(compared),
        "agree": len(compared) - disagree,
        "disagree": disagree,
        "agreement": (len(compared) - disagree) / len(compared) if compared else None,
        "unreadable": len(pairs) - len(compared),
        "table": {s: dict(sorted(c.items())) for s, c in sorted(table.items())},
    }


def agreement(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How often the symbolic grader and the judge agree, over rows that carry both verdicts.

    Returns:
        ``{"rows_with_both", "compared", "agree", "disagree", "agreement", "judge_unparseable",
        "table": {symbolic status: {judge status: count}}, "orders": `order_agreement` (None unless the judge
        was asked in both orders)}``; ``compared`` leaves out unreadable judge replies.
    """
    pairs = [p for r in rows if (p := _judge_pair(r))]
    cross = _cross(pairs, (1,))
    unreadable = cross.pop("unreadable")
    return {"rows_with_both": len(pairs), **cross, "judge_unparseable": unreadable, "orders": order_agreement(rows)}


def order_agreement(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """How often a judge asked in both orders agrees with itself; None when no row was asked twice.

    Returns:
        ``{"rows_with_both_orders", "compared", "agree", "disagree", "agreement", "unparseable",
        "table": {same-order status: {swapped-order status: count}}}``; ``compared`` counts rows where both
        replies could be read, ``unparseable`` the rows where at least one could not.
    """
    pairs = [p for r in rows if (p := _order_pair(r))]
    if not pairs:
        return None
    cross = _cross(pairs, (0, 1))
    unreadable = cross.pop("unreadable")
    return {"rows_with_both_orders": len(pairs), **cross, "unparseable": unreadable}


def disagreements(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows with both verdicts where the judge (with a readable reply) and the symbolic grader differ."""
    return [r for r in rows if (p := _judge_pair(r)) and _differ(p, (1,))]


def order_disagreements(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows whose two asks (``same``, ``swap``) both read and differ."""
    return [r for r in rows if (p := _order_pair(r)) and _differ(p, (0, 1))]


def write_agreement(folder: str | Path, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Write ``agreement.json`` and ``disagreements.jsonl`` into ``folder`` when any row has both verdicts, and
    ``order_disagreements.jsonl`` when the judge was asked in both orders."""
    table = agreement(rows)
    if not table["rows_with_both"]:
        return None
    write_json(Path(folder) / AGREEMENT_FILE, table)
    write_jsonl(Path(folder) / DISAGREEMENTS_FILE, [dict(r) for r in disagreements(rows)])
    if table["orders"] is not None:
        write_jsonl(Path(folder) / ORDER_DISAGREEMENTS_FILE, [dict(r) for r in order_disagreements(rows)])
    return table


def decided_by_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many rows each checker decided."""
    return dict(sorted(Counter(str(r.get("decided_by") or "symbolic") for r in rows).items()))


def grading_summary(policy: str, judge: Judge | None, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """For ``summary.json``: the policy, the judge's identity (generator and prompt digest), who decided."""
    return {
        "policy": policy,
        "judge": judge.identity() if judge is not None and policy != "symbolic" else None,
        "decided_by": decided_by_counts(rows),
    }


def render_agreement(table: Mapping[str, Any]) -> list[str]:
    """Markdown lines: the agreement summary and the symbolic-by-judge status table."""
    rate = table.get("agreement")
    lines = [
        "",
        "## Symbolic grader and judge",
        "",
        f"{table['compared']} rows compared (of {table['rows_with_both']} with both verdicts; "
        f"{table['judge_unparseable']} judge replies unreadable): agree {table['agree']}, "
        f"disagree {table['disagree']}" + (f", agreement {rate:.4f}" if rate is not None else "") + ".",
        "",
    ]
    lines += _status_table("symbolic \\ judge", table["table"])
    lines += ["", f"The rows where they disagree are in `{DISAGREEMENTS_FILE}`."]
    if table.get("orders"):
        lines += render_order_agreement(table["orders"])
    return lines


def render_order_agreement(orders: Mapping[str, Any]) -> list[str]:
    """Markdown lines: the judge against itself, asked in both orders (same-by-swap status table)."""
    rate = orders.get("agreement")
    lines = [
        "",
        "### The judge in both orders",
        "",
        f"{orders['compared']} rows with both replies readable (of {orders['rows_with_both_orders']} asked twice; "
        f"{orders['unparseable']} with an unreadable reply): agree {orders['agree']}, disagree "
        f"{orders['disagree']}" + (f", agreement {rate:.4f}" if rate is not None else "") + ". A row is accepted "
        "only when both orders say correct.",
        "",
    ]
    lines += _status_table("same \\ swap", orders["table"])
    lines += ["", f"The rows where the orders disagree are in `{ORDER_DISAGREEMENTS_FILE}`."]
    return lines


def _status_table(corner: str, table: Mapping[str, Mapping[str, int]]) -> list[str]:
    """A markdown table of counts: row status by column status."""
    columns = sorted({c for counts in table.values() for c in counts})
    lines = [f"| {corner} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    return lines + [
        f"| {row} | " + " | ".join(str(counts.get(c, 0)) for c in columns) + " |" for row, counts in table.items()
    ]
