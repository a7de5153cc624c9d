"""Reasoning steps inside a chain (handed on from `eval.answers.steps`), and JSON from teachers.

A step is a paragraph when the chain has several (model chains separate steps by blank lines), otherwise
a line (CHAMP's human solutions write one step per line), otherwise a sentence. Spans are character
offsets into the chain, so a step number from a teacher maps back to the position LEMMA cuts at. The
splitting lives in `eval.answers.steps` because the evaluation's correction report numbers steps the same way.

Teacher output is untrusted text: `parse_json_object` only ever calls `json.loads` on it, and every
failure raises `TeacherOutputError` with a reason that goes to the rejects file.
"""

from __future__ import annotations

import json
import re
from typing import Any

from eval.answers.steps import numbered_steps, step_spans

__all__ = ["TeacherOutputError", "numbered_steps", "parse_json_object", "require_field", "step_spans"]

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class TeacherOutputError(ValueError):
    """A teacher's reply cannot be used; the message is the reason recorded with the reject."""


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
