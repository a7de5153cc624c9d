"""Answers that describe a set of real numbers, compared as sets: intervals, unions and inequalities.

``-3 \\le t \\le 5``, ``t \\in [-3, 5]`` and ``[-3, 5]`` are one answer; so are ``x > 2``, ``-x < -2``,
``3x - 6 > 0`` and ``(2, \\infty)``, and ``2 \\le |w| \\le 5/2`` and ``[-5/2, -2] \\cup [2, 5/2]``. A value
becomes a tuple of `Span` (endpoints, closedness) plus the variable it constrains, when it is:

- an interval ``[a, b)`` (or an open pair ``(a, b)``, only when the other side is an inequality), or a
  union of them;
- an inequality chain ``a < m <= b`` (either direction) whose middle names a quantity (``t``, ``g(x)``,
  ``|w|``) and whose ends are numbers;
- one inequality that is linear in a single symbol (``3x - 6 > 0``), or ``|x| < c`` / ``|x| > c``;
- ``x \\in S`` (parsed as ``x = S``), or a list of inequalities in one variable (``x < -2 or x > 4``).

Two inequalities only match when they constrain the same variable; an interval carries none. Endpoints
compare with the scalar rules of `compare`, so exactness and tolerances are the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy

from eval.grading.exact import rational_functions_equal
from eval.grading.values import Relation, Scalar, Seq, UnionOf, Value

MAX_EXPANDED_TERMS = 256
_LESS = {"<", "<="}
_GREATER = {">", ">="}
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}


@dataclass(frozen=True)
class Span:
    """One interval; an infinite end is never closed."""

    lo: sympy.Basic
    hi: sympy.Basic
    lo_closed: bool
    hi_closed: bool


RealSet = tuple[str | None, tuple[Span, ...]]


def _span(lo: sympy.Basic, hi: sympy.Basic, lo_closed: bool, hi_closed: bool) -> Span:
    return Span(lo, hi, lo_closed and lo.is_finite is not False, hi_closed and hi.is_finite is not False)


def _number(v: Value) -> sympy.Basic | None:
    return v.expr if isinstance(v, Scalar) and not v.expr.free_symbols else None


def _quantity(v: Value) -> tuple[str, sympy.Basic] | None:
    """The constrained quantity: a symbol, a product of symbols (``g(x)`` parses as g*x), or ``|symbol|``."""
    if not isinstance(v, Scalar):
        return None
    expr = v.expr
    inner = expr.args[0] if isinstance(expr, sympy.Abs) else expr
    if isinstance(inner, sympy.Symbol) or (inner.is_Mul and all(isinstance(a, sympy.Symbol) for a in inner.args)):
        return str(inner), expr
    return None


def _abs_spans(lo: sympy.Basic, hi: sympy.Basic, lo_closed: bool, hi_closed: bool) -> tuple[Span, ...]:
    """``lo (<|<=) |x| (<|<=) hi`` as spans of x."""
    if (lo < 0) is sympy.true or (lo == 0 and lo_closed):
        return (_span(-hi, hi, hi_closed, hi_closed),)
    return (_span(-hi, -lo, hi_closed, lo_closed), _span(lo, hi, lo_closed, hi_closed))


def _chain(rel: Relation) -> RealSet | None:
    """``a op m op b`` with both ops pointing the same way."""
    inner = rel.lhs
    if not isinstance(inner, Relation) or isinstance(inner.lhs, Relation):
        return None
    ops = {inner.op, rel.op}
    if not (ops <= _LESS or ops <= _GREATER):
        return None
    a, quantity, b = _number(inner.lhs), _quantity(inner.rhs), _number(rel.rhs)
    if a is None or b is None or quantity is None:
        return None
    lo_closed, hi_closed = inner.op.endswith("="), rel.op.endswith("=")
    if ops <= _GREATER:
        a, b, lo_closed, hi_closed = b, a, hi_closed, lo_closed
    name, expr = quantity
    if isinstance(expr, sympy.Abs):
        return name, _abs_spans(a, b, lo_closed, hi_closed)
    return name, (_span(a, b, lo_closed, hi_closed),)


def _half_line(name: str, op: str, bound: sympy.Basic) -> RealSet:
    closed = op.endswith("=")
    if op in _LESS:
        return name, (_span(-sympy.oo, bound, False, closed),)
    return name, (_span(bound, sympy.oo, closed, False),)


def _single(rel: Relation) -> RealSet | None:
    """One inequality: a quantity against a number, ``|x|`` against a number, or linear in one symbol."""
    for side, other, op in ((rel.lhs, rel.rhs, rel.op), (rel.rhs, rel.lhs, _FLIP[rel.op])):
        quantity, bound = _quantity(side), _number(other)
        if quantity is None or bound is None:
            continue
        name, expr = quantity
        if not isinstance(expr, sympy.Abs):
            return _half_line(name, op, bound)
        if op in _LESS:
            return name, (_span(-bound, bound, op == "<=", op == "<="),)
        return name, (_span(-sympy.oo, -bound, False, op == ">="), _span(bound, sympy.oo, op == ">=", False))
    return _linear(rel)


def _expanded_terms(expr: sympy.Basic) -> int:
    """An upper bound on the number of terms `expr` expands into (capped at `MAX_EXPANDED_TERMS` + 1)."""
    if isinstance(expr, sympy.Add):
        return min(sum(_expanded_terms(a) for a in expr.args), MAX_EXPANDED_TERMS + 1)
    if isinstance(expr, sympy.Mul):
        product = 1
        for a in expr.args:
            product = min(product * _expanded_terms(a), MAX_EXPANDED_TERMS + 1)
        return product
    if isinstance(expr, sympy.Pow) and expr.exp.is_Integer and expr.exp > 1:
        base = _expanded_terms(expr.base)
        return 1 if base == 1 else min(base ** min(int(expr.exp), 64), MAX_EXPANDED_TERMS + 1)
    return 1


def _is_line(diff: sympy.Basic, symbol: sympy.Basic, slope: sympy.Basic, rest: sympy.Basic) -> bool:
    """Whether ``diff = slope * symbol + rest``: exactly for rational functions (`eval.grading.exact`, no
    expansion), by sympy's `expand` only when the expansion stays small (``(x+1)^{100000}`` would not end)."""
    exact = rational_functions_equal(diff, slope * symbol + rest)
    if exact is not None:
        return exact
    return _expanded_terms(diff) <= MAX_EXPANDED_TERMS and sympy.expand(diff - slope * symbol - rest) == 0


def _linear(rel: Relation) -> RealSet | None:
    if not (isinstance(rel.lhs, Scalar) and isinstance(rel.rhs, Scalar)):
        return None
    diff = rel.lhs.expr - rel.rhs.expr
    if len(diff.free_symbols) != 1:
        return None
    (symbol,) = diff.free_symbols
    slope, rest = diff.coeff(symbol, 1), diff.coeff(symbol, 0)
    if slope.free_symbols or rest.free_symbols or slope == 0 or not _is_line(diff, symbol, slope, rest):
        return None
    op = rel.op if (slope > 0) is sympy.true else _FLIP[rel.op]
    return _half_line(str(symbol), op, -rest / slope)


def as_real_set(value: Value, *, pairs_are_open: bool = False) -> RealSet | None:
    """The set of reals `value` describes, or None when it describes none (see the module docstring)."""
    if isinstance(value, Relation):
        return _relation_set(value, pairs_are_open)
    if isinstance(value, UnionOf):
        parts = [as_real_set(p, pairs_are_open=True) for p in value.parts]
        if any(p is None for p in parts):
            return None
        return None, tuple(s for p in parts for s in p[1])  # type: ignore[index]
    if isinstance(value, Seq):
        return _seq_set(value, pairs_are_open)
    return None


def _relation_set(rel: Relation, pairs_are_open: bool) -> RealSet | None:
    if rel.op == "=":  # ``x \\in S`` is parsed as ``x = S``
        quantity = _quantity(rel.lhs)
        inner = as_real_set(rel.rhs, pairs_are_open=True) if quantity else None
        return (quantity[0], inner[1]) if quantity and inner and inner[0] is None else None
    if rel.op == "!=":
        return None
    return _chain(rel) if isinstance(rel.lhs, Relation) else _single(rel)


def _seq_set(seq: Seq, pairs_are_open: bool) -> RealSet | None:
    if seq.kind == "interval" or (pairs_are_open and seq.kind == "tuple" and seq.left + seq.right == "()"):
        ends = [_number(i) for i in seq.items]
        if len(ends) != 2 or ends[0] is None or ends[1] is None:
            return None
        return None, (_span(ends[0], ends[1], seq.left == "[", seq.right == "]"),)
    if seq.kind == "list" and all(isinstance(i, Relation) and i.op not in {"=", "!="} for i in seq.items):
        parts = [as_real_set(i) for i in seq.items]
        names = {p[0] for p in parts if p is not None}
        if any(p is None for p in parts) or len(names) != 1:
            return None
        return names.pop(), tuple(s for p in parts for s in p[1])  # type: ignore[index]
    return None


def describes_inequality(value: Value) -> bool:
    """Whether `value` is an inequality, a chain of them, ``x \\in S``, or a list of inequalities."""
    if isinstance(value, Relation):
        return value.op not in {"=", "!="} or isinstance(value.rhs, (UnionOf, Seq))
    return isinstance(value, Seq) and value.kind == "list" and all(isinstance(i, Relation) for i in value.items)


def _sort_key(span: Span) -> float:
    try:
        return float(span.lo)
    except (TypeError, ValueError):
        return 0.0


def sets_equal(gold: RealSet, pred: RealSet, same: Callable[[sympy.Basic, sympy.Basic], bool]) -> tuple[bool, str]:
    """Equal variables (when both name one), the same spans in order, endpoints equal under `same`."""
    if gold[0] and pred[0] and gold[0] != pred[0]:
        return False, "inequalities in different variables"
    g_spans, p_spans = sorted(gold[1], key=_sort_key), sorted(pred[1], key=_sort_key)
    if len(g_spans) != len(p_spans):
        return False, "sets of reals with different numbers of intervals"
    for g, p in zip(g_spans, p_spans, strict=True):
        if (g.lo_closed, g.hi_closed) != (p.lo_closed, p.hi_closed):
            return False, "sets of reals differ at an endpoint's closedness"
        if not (same(g.lo, p.lo) and same(g.hi, p.hi)):
            return False, "sets of reals with different endpoints"
    return True, "same set of reals"
