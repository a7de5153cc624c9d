"""prompts.jsonl -> TRL's conversational prompt rows for GRPO, and the prompt-length guard.

Rows of ``prompts.jsonl`` (``curate.method: rl_prompts``, or any file with the same fields) are
``{"id", "problem", "gold", "provenance"?, ...}``; any bad row stops the run with file, row and field named.
Each becomes ``{"prompt": [system?, user], "problem", "gold", "id"}``: TRL applies the chat template and passes
the other columns to the reward functions, so the grader sees the gold and the problem text (option letters,
yes/no questions) of the very prompt it grades. ``train.rl.repeat`` repeats every prompt (1-shot RLVR fills its
batch of 128 with one example). Prompt lengths are measured with the chat template TRL generates from
(generation prompt included); TRL does not cut prompts, so a prompt over ``train.rl.max_prompt_length`` stops
the run instead of being silently sent whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.records import DataError, RowError, load_records

FIELDS = ("id", "problem", "gold")


@dataclass(frozen=True)
class PromptRow:
    """One validated row of prompts.jsonl."""

    id: str
    problem: str
    gold: str


@dataclass(frozen=True)
class PromptData:
    path: str
    checksum: str | None
    prompts: tuple[PromptRow, ...]


def _prompt_from_row(row: dict[str, Any]) -> PromptRow:
    for name in ("problem", "gold"):
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            raise RowError("must be a non-empty string", field=name)
    return PromptRow(str(row["id"]), row["problem"], row["gold"])


def load_prompts(path: str | Path) -> PromptData:
    """Read and validate prompts.jsonl.

    Raises:
        DataError: Missing or empty file (the message says what writes it), an invalid row or a repeated id (row and
            field named); nothing is dropped.
    """
    if not Path(path).is_file():
        raise DataError(
            f"{path}: no such prompts file; `python -m limo.curate recipe=<recipe>` writes it (curate.method: "
            "rl_prompts), or give train.data=<prompts.jsonl> (rows: id, problem, gold)"
        )
    result = load_records(path, _prompt_from_row, required=FIELDS, fmt="jsonl")
    if result.rejects:
        shown = "; ".join(f"row {r.row} field {r.field or '-'}: {r.reason}" for r in result.rejects[:5])
        raise DataError(f"{path}: {len(result.rejects)} of {result.read} rows are invalid: {shown}")
    if not result.kept:
        raise DataError(f"{path}: no prompts to train on")
    seen: set[str] = set()
    for number, prompt in enumerate(result.kept, start=1):
        if prompt.id in seen:
            raise DataError(f"{path}: row {number} field 'id': duplicate id {prompt.id!r}")
        seen.add(prompt.id)
    return PromptData(str(path), result.checksum, tuple(result.kept))


def prompt_rows(
    prompts: Sequence[PromptRow], system_prompt: str | None, user_template: str, repeat: int = 1
) -> list[dict[str, Any]]:
    """TRL's conversational prompt rows (system turn first when given), each prompt ``repeat`` times in a row."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    rows = [
        {
            "prompt": [*system, {"role": "user", "content": user_template.replace("{problem}", p.problem)}],
            "problem": p.problem,
            "gold": p.gold,
            "id": p.id,
        }
        for p in prompts
    ]
    return [row for row in rows for _ in range(repeat)]


def prompt_lengths(tokenizer: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Tokens of each chat-templated prompt as TRL generates from it (generation prompt included)."""
    encoded = (
        tokenizer.apply_chat_template(row["prompt"], tokenize=True, add_generation_prompt=True, return_dict=True)
        for row in rows
    )
    return [len(e["input_ids"]) for e in encoded]


def check_prompt_lengths(ids: Sequence[str], lengths: Sequence[int], limit: int, source: str) -> None:
    """Stop the run when a prompt is longer than ``train.rl.max_prompt_length``.

    Raises:
        DataError: Some prompts are longer (the longest ids are named).
    """
    over = sorted(((n, i) for i, n in zip(ids, lengths, strict=True) if n > limit), reverse=True)
    if over:
        shown = ", ".join(f"{i} ({n})" for n, i in over[:5])
        raise DataError(
            f"{source}: {len(over)} of {len(ids)} prompts are longer than train.rl.max_prompt_length={limit} tokens "
            f"(chat template included): {shown}. TRL would send them whole; raise the limit or drop them in curation."
        )
