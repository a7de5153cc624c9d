"""The reasoning steps of a response: character spans, and the numbered form a reader (or a teacher) sees.

A step is a paragraph when the text has several (model chains separate steps by blank lines), otherwise a line
(CHAMP's human solutions and the arithmetic chains write one step per line), otherwise a sentence. Spans are
character offsets into the text, so a step number maps back to the position a method cuts at.

Curation's LEMMA (its judge and its locators) and the evaluation's correction report number steps with this one
function, so a first wrong step means the same step everywhere.
"""

from __future__ import annotations

import re

_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_LINE = re.compile(r"\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\\$])")


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
    """Character spans ``(start, end)`` of the text's steps, in order, whitespace trimmed.

    Args:
        text: The chain text.

    Returns:
        Paragraph spans when there are at least two paragraphs, else line spans when there are at least
        two lines, else sentence spans; empty for blank text.
    """
    for separator in (_PARAGRAPH, _LINE, _SENTENCE_END):
        spans = _spans(text, separator)
        if len(spans) >= 2:
            return spans
    return _spans(text, _PARAGRAPH)


def numbered_steps(text: str) -> str:
    """The text as ``Step 1: ...`` lines (step numbers start at 1), the form teacher prompts and labels use."""
    return "\n".join(f"Step {i}: {text[s:e]}" for i, (s, e) in enumerate(step_spans(text), start=1))
