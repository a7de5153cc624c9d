"""messages.jsonl -> chat rows for TRL, plus the token-length report that guards against truncation.

Rows are read with `eval.records.load_records`; any bad row stops the run with file, row and field named
(training on a silently shrunken set is worse than not training). The recipe's system prompt is added
here, so curation stays prompt-agnostic. Lengths are measured with the same chat template TRL trains
with, system turn included, so the report and TRL's own truncation agree token for token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.records import DataError, RowError, load_records

ROLES = ("user", "assistant")
LOSS_TURNS = ("all", "last")


@dataclass(frozen=True)
class TrainExample:
    """One validated row of messages.jsonl."""

    id: str
    messages: tuple[dict[str, str], ...]
    weight: float = 1.0
    loss_turns: str = "all"  # "last": only the final assistant turn carries loss (RISE; weighted trainer)


@dataclass(frozen=True)
class TrainData:
    """The examples to train on and where they came from."""

    path: str
    checksum: str | None
    examples: tuple[TrainExample, ...]


def _example_from_row(row: dict[str, Any]) -> TrainExample:
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RowError("expected a non-empty list of {role, content} messages", field="messages")
    for index, message in enumerate(messages):
        _check_message(message, index)
    if messages[-1]["role"] != "assistant":
        raise RowError("the last message must be an assistant turn", field=f"messages[{len(messages) - 1}].role")
    weight = row.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        raise RowError(f"weight must be a finite number >= 0, got {weight!r}", field="weight")
    loss_turns = row.get("loss_turns", "all")
    if loss_turns not in LOSS_TURNS:
        raise RowError(f"loss_turns must be one of {', '.join(LOSS_TURNS)}, got {loss_turns!r}", field="loss_turns")
    clean = tuple({"role": m["role"], "content": m["content"]} for m in messages)
    return TrainExample(id=str(row["id"]), messages=clean, weight=float(weight), loss_turns=loss_turns)


def _check_message(message: Any, index: int) -> None:
    if not isinstance(message, dict):
        raise RowError(f"expected an object, got {type(message).__name__}", field=f"messages[{index}]")
    role = message.get("role")
    if role == "system":
        raise RowError("no system turn allowed: training adds the recipe's", field=f"messages[{index}].role")
    if role not in ROLES:
        raise RowError(f"role must be one of {', '.join(ROLES)}, got {role!r}", field=f"messages[{index}].role")
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        raise RowError("content must be a non-empty string", field=f"messages[{index}].content")


def load_train_data(path: str | Path) -> TrainData:
    """Read and validate messages.jsonl.

    Raises:
        DataError: The file is missing or empty, or any row is invalid (the first few are listed with row and
            field); nothing is dropped silently.
    """
    result = load_records(path, _example_from_row, required=("id", "messages"), fmt="jsonl")
    if result.rejects:
        shown = "; ".join(f"row {r.row} field {r.field or '-'}: {r.reason}" for r in result.rejects[:5])
        more = f" (and {len(result.rejects) - 5} more)" if len(result.rejects) > 5 else ""
        raise DataError(f"{path}: {len(result.rejects)} of {result.read} rows are invalid: {shown}{more}")
    if not result.kept:
        raise DataError(f"{path}: no examples to train on")
    _check_unique_ids(str(path), result.kept)
    return TrainData(path=str(path), checksum=result.checksum, examples=tuple(result.kept))


def _check_unique_ids(path: str, examples: Sequence[TrainExample]) -> None:
    seen: set[str] = set()
    for number, example in enumerate(examples, start=1):
        if example.id in seen:
            raise DataError(f"{path}: example {number} field 'id': duplicate id {example.id!r}")
        seen.add(example.id)


def chat_rows(examples: Sequence[TrainExample], system_prompt: str | None) -> list[dict[str, Any]]:
    """TRL's conversational rows: ``{"messages": [...]}`` with the recipe's system turn first."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [{"messages": system + list(example.messages)} for example in examples]


@dataclass(frozen=True)
class LengthReport:
    """Token lengths of the chat-templated examples against ``max_length``."""

    count: int
    max_length: int | None
    longest: int
    mean: float
    p50: int
    p90: int
    p99: int
    total_tokens: int
    truncated_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "max_length": self.max_length,
            "longest": self.longest,
            "mean": round(self.mean, 1),
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "total_tokens": self.total_tokens,
            "truncated": len(self.truncated_ids),
            "truncated_ids": list(self.truncated_ids),
        }

    def summary(self) -> str:
        limit = self.max_length if self.max_length is not None else "none"
        return (
            f"{self.count} examples, tokens: max {self.longest}, p50 {self.p50}, p90 {self.p90}, p99 {self.p99}, "
            f"mean {self.mean:.0f}; max_length {limit}: {len(self.truncated_ids)} would be truncated"
        )


def token_lengths(tokenizer: Any, rows: Sequence[dict[str, Any]], chat_template: str | None = None) -> list[int]:
    """Token count of each chat row as TRL tokenizes it (full conversation, no generation prompt); a prompt ->
    completion row (`limo.training.template`) counts its prompt and completion together."""
    lengths = []
    for row in rows:
        messages = row["messages"] if "messages" in row else [*row["prompt"], *row["completion"]]
        encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, chat_template=chat_template)
        lengths.append(len(encoded["input_ids"]))
    return lengths


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def length_report(ids: Sequence[str], lengths: Sequence[int], max_length: int | None) -> LengthReport:
    """Summarise ``lengths`` and list the examples longer than ``max_length``."""
    ordered = sorted(lengths)
    over = tuple(i for i, n in zip(ids, lengths, strict=True) if max_length is not None and n > max_length)
    return LengthReport(
        count=len(lengths),
        max_length=max_length,
        longest=ordered[-1],
        mean=sum(lengths) / len(lengths),
        p50=percentile(ordered, 0.5),
        p90=percentile(ordered, 0.9),
        p99=percentile(ordered, 0.99),
        total_tokens=sum(lengths),
        truncated_ids=over,
    )


class TruncationError(ValueError):
    """Some examples are longer than ``max_length`` and the recipe did not allow truncation."""


def check_truncation(report: LengthReport, source: str, allow: bool) -> None:
    """Stop the run when examples would be cut, unless the recipe allows it."""
    if not report.truncated_ids or allow:
        return
    shown = ", ".join(report.truncated_ids[:5]) + (" ..." if len(report.truncated_ids) > 5 else "")
    raise TruncationError(
        f"{source}: {len(report.truncated_ids)} of {report.count} examples are longer than "
        f"max_length={report.max_length} tokens (longest {report.longest}): {shown}. A cut example loses its "
        "final answer and EOS, so the model learns not to stop. Raise train.args.max_length, drop these rows in "
        "curation, or set train.allow_truncation=true."
    )
