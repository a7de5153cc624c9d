"""Functions and families of functions as answers: ``f(x) = kx \\text{ for some constant } k``.

Functional-equation answers carry words our grammar does not read and names the gold did not choose:
- a quantifier tail (``\\text{ for all } x \\in \\mathbb{R}``, ``\\text{ where } c \\text{ is any real
  constant}``, ``\\quad \\forall x``, ``, \\ a \\in \\mathbb{R}``) is cut, but only from a definition
  (``=`` before it) and only when no ``=`` follows (a piecewise answer keeps its conditions);
- ``f \\equiv 0`` and ``f(x) \\equiv 0`` are ``f(x) = 0``;
- the function's variable and its free constants are renamed to the gold's (``f(n) = n`` is ``f(x) = x``,
  ``f(x) = kx`` is ``f(x) = cx``, ``f(x) = f(1)\\,x`` is ``f(x) = cx``), trying at most two constants'
  bijections. Renaming only aligns names: the renamed answer is still compared by the exact rules.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

MAX_CHARS = 1000  # function answers are short; longer text is left to the size limits
_DEFINITION = re.compile(r"^\s*([a-zA-Z])\s*\(\s*([a-z])\s*\)\s*=")
_QUALIFIER = re.compile(
    r"(?:\s|,|\\[,;! ]|\\q?quad)*+(?:\\text\{\s*(?:for|where|with)\b|\\forall\b|\\text\{\s*only\s*\}"
    r"|\(?\s*[a-zA-Z]\s*\\in\s*\\mathbb)"
)
_EQUIV_DEFINITION = re.compile(r"(?<![\\a-zA-Z])([a-zA-Z])\s*(\(\s*[a-z]\s*\))?\s*\\equiv\s*")
_FUNCTION_AT_NUMBER = re.compile(r"(?<![\\a-zA-Z])([a-zA-Z])\s*\(\s*-?\d+\s*\)")
_TOKEN = re.compile(r"\\[a-zA-Z]+|\\(?:text|mathrm|operatorname)\{[^{}]*\}|[a-zA-Z]")  # a command stays whole
_KNOWN = {"e", "i"}


def strip_qualifier(answer: str) -> str:
    """The definition without its quantifier tail; the answer unchanged when it is not a definition."""
    if len(answer) > MAX_CHARS or "=" not in answer:
        return answer
    m = _QUALIFIER.search(answer)
    if not m or "=" not in answer[: m.start()] or "=" in answer[m.end() :]:
        return answer
    head = answer[: m.start()].rstrip(" ,")
    return head if head.count("{") == head.count("}") else answer


def equiv_as_equation(answer: str, variable: str = "x") -> str:
    """``f \\equiv 0`` → ``f(x) = 0``; ``f(x) \\equiv 0`` → ``f(x) = 0``; other congruences unchanged."""
    if len(answer) > MAX_CHARS or "\\equiv" not in answer or "mod" in answer:
        return answer
    return _EQUIV_DEFINITION.sub(lambda m: f"{m.group(1)}{m.group(2) or f'({variable})'} = ", answer)


def _letters(text: str, skip: set[str]) -> set[str]:
    """Single-letter names outside commands (``cx`` is ``c`` times ``x`` in LaTeX)."""
    return {t for t in _TOKEN.findall(text) if len(t) == 1} - skip - _KNOWN


def _rename(text: str, mapping: dict[str, str]) -> str:
    """Every letter in `mapping` replaced at once, commands and ``\\text{}`` untouched."""
    return _TOKEN.sub(lambda m: mapping.get(m.group(0), m.group(0)), text) if mapping else text


def renamings(gold: str, answer: str) -> Iterator[str]:
    """The answer with its function variable and free constants renamed to the gold's, when both define the
    same function name (``f(x) = ...``, also in a list); nothing when there is nothing to rename."""
    if len(gold) > MAX_CHARS or len(answer) > MAX_CHARS:
        return
    g, a = _DEFINITION.match(gold), _DEFINITION.match(answer)
    if not g or not a or g.group(1) != a.group(1):
        return
    name, g_var, a_var = g.group(1), g.group(2), a.group(2)
    fresh = next(c for c in "qrstuvw" if c not in answer and c not in gold)
    renamed = _FUNCTION_AT_NUMBER.sub(lambda m: fresh if m.group(1) == name else m.group(0), answer)
    if g_var != a_var:
        if g_var in _letters(renamed, set()):
            return
        renamed = _rename(renamed, {a_var: g_var})
    g_consts = sorted(_letters(gold, {name, g_var}))
    a_consts = sorted(_letters(renamed, {name, g_var}))
    if len(g_consts) != len(a_consts) or len(a_consts) > 2:
        return
    if renamed != answer:
        yield renamed
    for target in itertools.permutations(g_consts):
        yield _rename(renamed, dict(zip(a_consts, target, strict=True)))  # one pass: swaps are safe
