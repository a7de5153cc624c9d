"""Reasoning steps inside a chain: character spans, numbering for teacher prompts, and JSON from teachers.

A step is a paragraph when the chain has several (model chains separate steps by blank lines), otherwise
a line (CHAMP's human solutions write one step per line), otherwise a sentence. Spans are character
offsets into the chain, so a step number from a teacher maps back to the position LEMMA cuts at.

Teacher output is untrusted text: `parse_json_object` only ever calls `json.loads` on it, and every
failure raises `TeacherOutputError` with a reason that goes to the rejects file.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\\$])")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class TeacherOutputError(ValueError):
    """A teacher's reply cannot be used; the message is the reason recorded with the reject."""


def _spans(text: str, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in separator.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [_trim(text, s, e) for s, e in spans if text[s:e].strip()]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def step_spans(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the chain's steps, in order, whitespace trimmed.

    Args:
        text: The chain text.

    Returns:
        Paragraph spans when there are at least two paragraphs, else line spans when there are at least
        two lines, else sentence spans; empty for blank text.
    """
    for separator in (_PARAGRAPH, re.compile(r"\n"), _SENTENCE_END):
        spans = _spans(text, separator)
        if len(spans) >= 2:
            return spans
    return _spans(text, _PARAGRAPH)


def numbered_steps(text: str) -> str:
    """The chain as ``Step 1: ...`` lines, the form teacher prompts show."""
    return "\n".join(f"Step {i}: {text[s:e]}" for i, (s, e) in enumerate(step_spans(text), start=1))


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a teacher reply (bare, or inside a fenced block, or the outermost ``{...}``).

    Raises:
        TeacherOutputError: No JSON object could be read.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    first, last = text.find("{"), text.rfind("}")
    if first != -1 and last > first:
        candidates.append(text[first : last + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    raise TeacherOutputError("teacher reply holds no JSON object")


def require_field(record: dict[str, Any], name: str, kind: type) -> Any:
    """``record[name]`` checked to be of ``kind`` (bool is not an int here).

    Raises:
        TeacherOutputError: The field is missing or has the wrong type.
    """
    if name not in record:
        raise TeacherOutputError(f"teacher JSON lacks field {name!r}")
    value = record[name]
    if kind is int and isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TeacherOutputError(f"teacher JSON field {name!r} is {type(value).__name__}, expected {kind.__name__}")
    return value
