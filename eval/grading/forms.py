"""Answer forms decided on the text, before parsing: choice letters, decimal commas and percentages.

- A multiple-choice letter (``\\text{(D)}``, ``(D)``, ``D``) matches a response that leads with the same
  letter and then says what it is (``\\text{(D) a non-horizontal line}``, ``D. x = 42``); only the letters are
  compared, so the text after the letter can neither help nor hurt.
- ``2,74`` against ``2.74``: a comma between two digit groups is a decimal comma when the other side is a
  decimal number (``1,000`` with a three-digit group was already read as a thousands separator).
- ``35\\%`` against ``0.35``: a percentage also equals its value divided by 100; only for a plain number
  followed by ``%``, ``\\%``, "percent" or "pct".
- When the problem asks to factorize, an answer equal to the gold must also have as many factors
  (``(x^4+x^2+1)(x^4-x^2+1)`` is not the full factorization ``(x^2+x+1)(x^2-x+1)(x^4-x^2+1)``, and the
  polynomial itself is no factorization at all). Without the problem text this rule cannot apply.
- A gold that says "or approximately 35.7%" accepts a decimal within half a unit of its last digit
  (``35.71%``); the gold itself states that precision. No other rule rounds.
- An elided product or sum whose leading terms are integers in arithmetic progression (``1 \\cdot 3 \\cdot 5
  \\cdots (2n-1)``, ``1^2 + 2^2 + \\cdots + n^2``; a common exponent allowed) is the ``\\prod``/``\\sum`` it
  abbreviates, its count read from the last term; the big-operator rules then compare it.
"""

from __future__ import annotations

import re

import sympy

from eval.grading.values import Scalar, Value

_OPEN = r"^\s*\$?\s*(?:\\(?:text|textbf|mathrm|mathbf)\s*\{\s*)?(?:\\?\(\s*)?"
_BARE_CHOICE = re.compile(_OPEN + r"([A-E])\s*(?:\\?\))?\s*\}?\s*\$?\s*[.,]?\s*$")
_LEADING_CHOICE = re.compile(_OPEN + r"([A-E])\s*(?:\\?\)|\.|:)(?=[\s}$]|$)")
_COMMA_DECIMAL = re.compile(r"-?\d+,\d+")
_DECIMAL = re.compile(r"-?\d*\.\d+")
_PERCENT = re.compile(r"^\s*\$?\s*(-?\d+(?:\.\d+)?)\s*(?:\\?%|\\text\{\s*\\?%\s*\}|\s(?:percent|pct)\b\.?)\s*\$?\s*$")


_ELLIPSIS = r"(?:\\[lc]?dots|\\ldots|\\cdots|\.\.\.|…)"
_TERM = r"(\d+)(?:\^\{?(\d+)\}?)?"
_ELIDED = re.compile(
    rf"^\s*{_TERM}\s*(\\cdot|\\times|\*|\+)\s*{_TERM}\s*(?:(?:\\cdot|\\times|\*|\+)\s*{_TERM}\s*)?"
    rf"(?:\\cdot|\\times|\*|\+)?\s*{_ELLIPSIS}\s*(?:\\cdot|\\times|\*|\+)?\s*(.+?)\s*$"
)
_LAST_POWER = re.compile(r"^(\(.+\)|\{.+\}|[\w]+)\s*\^\s*\{?(\d+)\}?$")


def elided_series(answer: str) -> str | None:
    """``1 \\cdot 3 \\cdot 5 \\cdots (2n-1)`` as ``\\prod_{j=1}^{((2n-1)-1)/2+1} (1+(j-1)2)``; None when the
    answer is not such a series (terms not in arithmetic progression, exponents that differ, mixed
    operators, a last term with ``=`` or another ellipsis)."""
    m = _ELIDED.match(answer) if len(answer) <= 200 else None
    if not m:
        return None
    first, e1, op, second, e2, third, e3, last = m.group(1, 2, 3, 4, 5, 6, 7, 8)
    if re.search(r"=|,|" + _ELLIPSIS, last) or (e1 or "1") != (e2 or "1") or (third and (e3 or "1") != (e1 or "1")):
        return None
    step = int(second) - int(first)
    if step == 0 or (third and int(third) - int(second) != step):
        return None
    if e1:
        power = _LAST_POWER.match(last)
        if not power or power.group(2) != e1:
            return None
        last = power.group(1)
    body = f"({first}+(j-1)\\cdot {step})" + (f"^{{{e1}}}" if e1 else "")
    count = f"\\frac{{({last})-{first}}}{{{step}}}+1"
    operator = "\\sum" if op == "+" else "\\prod"
    return f"{operator}_{{j=1}}^{{{count}}} {body}"


def choice_letters(gold: str, pred: str) -> tuple[str, str] | None:
    """(gold letter, predicted letter) when one side is a bare choice and the other leads with one."""
    g_bare, p_bare = _BARE_CHOICE.match(gold), _BARE_CHOICE.match(pred)
    if not (g_bare or p_bare):
        return None
    g_lead = g_bare or _LEADING_CHOICE.match(gold)
    p_lead = p_bare or _LEADING_CHOICE.match(pred)
    if g_lead is None or p_lead is None:
        return None
    return g_lead.group(1), p_lead.group(1)


def decimal_commas(g_norm: str, p_norm: str) -> tuple[str, str]:
    """Both normalised answers, with a decimal comma read as a point where the other side is a decimal."""
    if _COMMA_DECIMAL.fullmatch(p_norm) and _DECIMAL.fullmatch(g_norm):
        return g_norm, p_norm.replace(",", ".")
    if _COMMA_DECIMAL.fullmatch(g_norm) and _DECIMAL.fullmatch(p_norm):
        return g_norm.replace(",", "."), p_norm
    return g_norm, p_norm


def percent_as_fraction(answer: str) -> str | None:
    """``35\\%`` -> ``(35)/100``; None when `answer` is not a plain percentage."""
    m = _PERCENT.match(answer)
    return f"({m.group(1)})/100" if m else None


_APPROXIMATELY = re.compile(r"\bor approximately\s+\$?(-?\d+(?:\.(\d+))?)\s*(\\?%)?", re.IGNORECASE)
_PLAIN_DECIMAL = re.compile(r"^\s*\$?\s*(-?\d+(?:\.\d+)?)\s*(\\?%)?\s*\$?\.?\s*$")


def within_stated_rounding(gold: str, pred: str) -> bool:
    """Whether `pred` is a decimal within the rounding of the gold's "or approximately X" (same unit)."""
    stated, said = _APPROXIMATELY.search(gold), _PLAIN_DECIMAL.match(pred)
    if stated is None or said is None or bool(stated.group(3)) != bool(said.group(2)):
        return False
    half_unit = 0.5 * 10 ** -len(stated.group(2) or "")
    return abs(float(said.group(1)) - float(stated.group(1))) <= half_unit * (1 + 1e-9)


_FACTOR_REQUEST = re.compile(r"\bfactori[sz]e\b|(?:^|[.?!]\s+|completely\s+)factor\b(?!\s+(?:of|\d))", re.IGNORECASE)


def asks_to_factor(problem: str | None) -> bool:
    """Whether the problem asks for a factorization ("Factorize ...", "Factor $x^2 - 1$.")."""
    return bool(problem and _FACTOR_REQUEST.search(problem))


def factor_count(value: Value) -> int | None:
    """Non-constant factors of a product, counted with their integer powers; None for a non-scalar."""
    if not isinstance(value, Scalar):
        return None
    factors = value.expr.args if value.expr.is_Mul else (value.expr,)
    count = 0
    for factor in factors:
        if factor.is_number:
            continue
        power = factor.exp if isinstance(factor, sympy.Pow) and factor.exp.is_Integer and factor.exp > 0 else 1
        count += int(power)
    return count
