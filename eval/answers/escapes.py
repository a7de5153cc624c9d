"""Backslashes that string escaping ate: ``"\\frac"`` written into JSON or a Python string without doubling its
backslash arrives as a form feed followed by ``rac``.

Both the answer reader (`eval.answers.extract`) and the grader's normaliser (`eval.grading.normalize`) repair text with
it first; it sits below both so that extraction imports nothing from `eval.grading`.
"""

from __future__ import annotations

import re

_EATEN_ESCAPES = {"\x0c": "\\f", "\x08": "\\b", "\x07": "\\a", "\x0b": "\\v"}
_EATEN_TAB = re.compile(r"\t(?=(?:extbf|extit|extrm|ext|imes|frac|heta|an|au|o|riangle|ilde)(?![a-z]))")
_EATEN_RETURN = re.compile(r"\r(?=(?:ight|ho|angle|floor|ceil)(?![a-z]))")


def repair_escapes(s: str) -> str:
    """Put back backslashes that string escaping turned into control characters (``\\x0c``rac -> ``\\frac``)."""
    if not any(ch in s for ch in "\x0c\x08\x07\x0b\t\r"):
        return s
    for old, new in _EATEN_ESCAPES.items():
        s = s.replace(old, new)
    return _EATEN_RETURN.sub(r"\\r", _EATEN_TAB.sub(r"\\t", s))
