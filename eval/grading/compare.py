"""Equality of two parsed answers, gold first.

Rules, in order (each returns the rule's name as the reason):
- scalars: identical sympy objects; exact rationals compare exactly; polynomials and rational functions
  compare exactly modulo primes (`eval.grading.exact`); otherwise both sides are evaluated with error bounds
  (`eval.grading.numeric`) at fixed rational points (two sets, three with a sum or product, integers for
  floors in n, points near 1 when the first give no evidence), equal only where every point with evidence
  agrees within errors small against the values and at least one point gave evidence, so ``1/2004!`` is not
  ``1/2006!`` and ``x^{9900}`` is not 0. A tolerance of 1e-6 relative applies only when a side contains a
  decimal literal (an approximation).
- relations: a gold ``x = v`` against a bare prediction compares ``v``; a predicted ``lhs = v`` against a
  bare gold compares ``v``; two relations compare side by side, flipped, or as ``lhs - rhs`` up to sign.
- sequences: tuples, intervals and matrices are ordered (bracket types must agree); bare lists and sets
  are unordered multisets; a one-element list equals its element.
The comparison options of the call in progress (`eval.grading.options`; the defaults change nothing) act here:
``precision`` in `scalar_equal`, ``set_relation`` in `equal`, ``strict`` in `renamed_equal` (asked about two whole
answers that `equal` found different).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from functools import lru_cache
from typing import Any

import sympy

from eval.grading.exact import rational_functions_equal
from eval.grading.numeric import (
    MAX_DIGITS,
    MP,
    NO_EVIDENCE,
    UNDECIDED,
    OutOfRange,
    Unsupported,
    close_at,
    judge_values,
    rational_ratio,
    rounded,
)
from eval.grading.options import MAX_RENAMED
from eval.grading.options import current as current_options
from eval.grading.realsets import as_real_set, describes_inequality, sets_equal
from eval.grading.values import BaseNumeral, Matrix, Relation, Scalar, Seq, Text, UnionOf, Value

_POINTS = (
    sympy.Rational(7316, 10007),
    sympy.Rational(13171, 9973),
    sympy.Rational(-5437, 8713),
    sympy.Rational(30011, 7919),
    sympy.Rational(2203, 6427),
)
# Points near 1 on both sides, where x^N stays in range for any N a size limit lets through: tried when the
# points above give no evidence (a value too large to evaluate, both sides vanishing, a side leaving the reals).
_NEAR_ONE = (
    sympy.Rational(10211, 10007),
    sympy.Rational(9803, 9973),
    sympy.Rational(-10133, 10061),
    sympy.Rational(10037, 9851),
    sympy.Rational(-9907, 10093),
)
_INTEGER_POINTS = tuple(sympy.Integer(n) for n in (4, 7, 11, 6, 9))  # sums are compared at n = 4, 7, 11
_STEP_FUNCTIONS = (sympy.floor, sympy.ceiling, sympy.Mod, sympy.sign)
_STEP_SCALE = sympy.Integer(37)
# Floors and ceilings in n, m, k (olympiad answers in an integer parameter) are compared at integers: odd and
# even, squares, powers of two and their neighbours, where ``\lceil n/2 \rceil`` = ``\lfloor (n+1)/2 \rfloor``,
# ``\lfloor \log_2 n \rfloor + 1`` = ``\lceil \log_2 (n+1) \rceil`` hold and near misses break.
_INTEGER_NAMES = {"n", "m", "k", "N", "M", "K"}
_STEP_INTEGERS = tuple(sympy.Integer(v) for v in (2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 25, 31, 64, 100, 101))
_ROUNDING = (sympy.floor, sympy.ceiling)
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "!=": "!="}
_FALLBACK_DIGITS = 60
_INEQUALITIES = {"<", "<=", ">", ">="}

Outcome = tuple[bool, str]


def _point_sets(a: sympy.Basic, b: sympy.Basic) -> list[dict[sympy.Basic, sympy.Rational]]:
    """Fixed points for the free symbols: none when there are none, two sets, three when a sum or product
    is involved; a symbol in the bounds of a sum or product gets a small integer. Free symbols are computed
    once (for a sum sympy computes them by rewriting the expression)."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=lambda s: s.name)
    if not symbols:
        return [{}]
    if _integer_steps(a, b, symbols):
        n = len(_STEP_INTEGERS)
        return [{s: _STEP_INTEGERS[(i + 5 * j) % n] for j, s in enumerate(symbols)} for i in range(n)]
    big = _has_big_operator(a, b)
    counters = _bound_symbols(a) | _bound_symbols(b) if big else set()
    sets = [
        {s: (_INTEGER_POINTS if s in counters else _POINTS)[(i + shift) % len(_POINTS)] for i, s in enumerate(symbols)}
        for shift in ((0, 1, 2) if big else (0, 2))
    ]
    if set(symbols) - counters and (a.has(*_STEP_FUNCTIONS) or b.has(*_STEP_FUNCTIONS)):
        # constant between jumps: small points can coincide (summation counters are integers already)
        sets += [{s: p if s in counters else p * _STEP_SCALE for s, p in point.items()} for point in sets]
        # and at an integer, where floor and ceiling part: ``\lfloor x \rfloor`` is not ``\lceil x \rceil - 1``
        sets.append({s: p if s in counters else sympy.Integer(13 + 6 * i) for i, (s, p) in enumerate(sets[0].items())})
    return sets


def _integer_steps(a: sympy.Basic, b: sympy.Basic, symbols: list) -> bool:
    """Whether a floor or ceiling in integer-named symbols only (no sum) asks for integer points."""
    return (
        len(symbols) <= 2
        and all(getattr(s, "name", "") in _INTEGER_NAMES for s in symbols)
        and (a.has(*_ROUNDING) or b.has(*_ROUNDING))
        and not _has_big_operator(a, b)
    )


def _bound_symbols(expr: sympy.Basic) -> set[sympy.Basic]:
    found: set[sympy.Basic] = set()
    for big in expr.atoms(sympy.Sum, sympy.Product):
        for _, lower, upper in big.limits:
            found |= lower.free_symbols | upper.free_symbols
    return found


def _has_big_operator(*exprs: sympy.Basic) -> bool:
    return any(e.has(sympy.Sum, sympy.Product) for e in exprs)


def _close_at(x: sympy.Basic, y: sympy.Basic, subs: dict, approx: bool, quick: bool, domain: bool) -> Any:
    """`numeric.close_at`; a value out of range at this point is no evidence; sympy's `evalf` only for a node
    type the evaluator does not know (never for sums or integrals: sympy would sum or integrate symbolically)."""
    try:
        return close_at(x, y, subs, approx, quick, domain)
    except OutOfRange:
        return NO_EVIDENCE
    except Unsupported:
        if _has_big_operator(x, y) or x.has(sympy.Integral) or y.has(sympy.Integral):
            return UNDECIDED
        return _sympy_verdict(x, y, subs, approx)


def _sympy_verdict(x: sympy.Basic, y: sympy.Basic, subs: dict, approx: bool) -> Any:
    """Both sides by sympy's adaptive `evalf` (substituting numbers, never exact values), judged by the same
    rules as the evaluator's values, with errors of 10^-50 relative."""
    values = []
    for side in (x, y):
        value = side.evalf(_FALLBACK_DIGITS, subs=subs) if subs else side.evalf(_FALLBACK_DIGITS)
        real, imag = value.as_real_imag()
        if not (real.is_Number and imag.is_Number) or not (real.is_finite and imag.is_finite):
            return None
        values.append(MP.mpc(sympy.Float(real, _FALLBACK_DIGITS)._mpf_, sympy.Float(imag, _FALLBACK_DIGITS)._mpf_))
    return judge_values(values[0], values[1], approx, _FALLBACK_DIGITS - 10)


def scalar_equal(a: Scalar, b: Scalar) -> Outcome:
    """Exact where both sides are exact, a relative tolerance where one is a decimal approximation; with the
    ``precision`` option, a lone decimal against a constant by rounding both (`eval.grading.options`)."""
    places = current_options().precision
    if places is not None and _lone_decimal_against_constant(a, b):
        return _rounded_outcome(a.expr, b.expr, places)
    return scalar_outcome(a.expr, b.expr, a.approx or b.approx)


def _lone_decimal_against_constant(a: Scalar, b: Scalar) -> bool:
    """Whether one side is a decimal written alone (``0.33``; its value a number) and neither has a variable."""
    lone = (a.approx and a.expr.is_Number) or (b.approx and b.expr.is_Number)
    return bool(lone) and not (a.expr.free_symbols or b.expr.free_symbols)


def _rounded_outcome(x: sympy.Basic, y: sympy.Basic, places: int) -> Outcome:
    rx, ry = rounded(x, places), rounded(y, places)
    if rx is None or ry is None:
        return False, f"no rounding to {places} places (not a finite real number, too large, or too near a tie)"
    if rx == ry:
        return True, f"equal rounded to {places} decimal places (precision option)"
    return False, f"different rounded to {places} decimal places (precision option)"


@lru_cache(maxsize=16384)
def scalar_outcome(x: sympy.Basic, y: sympy.Basic, approx: bool) -> Outcome:
    """`scalar_equal` on expressions, cached: relation and list rules compare the same sides repeatedly."""
    if x == y:
        return True, "identical value"
    if x.is_Rational and y.is_Rational and not approx:
        return False, "different exact rationals"
    point_sets = _point_sets(x, y)
    if not point_sets[0] and (x.has(sympy.oo, -sympy.oo, sympy.zoo) or y.has(sympy.oo, -sympy.oo, sympy.zoo)):
        return False, "different infinities"
    if not approx:
        exact = rational_functions_equal(x, y)
        if exact is not None:
            return exact, "equal rational functions (exact)" if exact else "different rational functions (exact)"
    domain = bool(point_sets[0])  # with symbols, a point where one side leaves the reals is outside the domain
    outcome = _numeric_outcome(x, y, point_sets, approx, domain)
    if outcome is None and domain:
        outcome = _numeric_outcome(x, y, _near_one(point_sets), approx, domain)
    if outcome is None:
        return False, "no numeric evidence: both sides vanish, overflow or leave the reals at every point tried"
    return outcome


def _near_one(point_sets: list[dict]) -> list[dict]:
    """The same symbols at points near 1 (integer-valued points are kept: they count terms or steps)."""
    return [
        {s: p if p.is_Integer else _NEAR_ONE[(i + shift) % len(_NEAR_ONE)] for i, (s, p) in enumerate(point.items())}
        for shift, point in enumerate(point_sets)
    ]


def _numeric_outcome(
    x: sympy.Basic, y: sympy.Basic, point_sets: list[dict], approx: bool, domain: bool
) -> Outcome | None:
    """The verdict over the point sets: any difference decides; equal needs at least one point with evidence
    (points after the first with evidence are checked in doubles when doubles suffice); None when no point
    gave evidence."""
    evidence = 0
    for subs in point_sets:
        verdict = _close_at(x, y, subs, approx, evidence > 0, domain)
        if verdict is False:
            return False, "numeric difference"
        if verdict is None:
            return False, "not a finite number"
        if verdict == UNDECIDED:
            return False, f"no difference found, none excluded at {MAX_DIGITS} digits"
        evidence += verdict is True
    if not evidence:
        return None
    return True, "decimal within 1e-6" if approx else "numerically equal within error bounds"


def _variable_like(v: Value) -> bool:
    if isinstance(v, Scalar):
        expr = v.expr
        # ``f(x)`` parses as the product f*x: a product of bare symbols still names a function.
        return isinstance(expr, sympy.Symbol) or (expr.is_Mul and all(isinstance(a, sympy.Symbol) for a in expr.args))
    if isinstance(v, Seq):
        return all(_variable_like(i) for i in v.items)
    return False


def _strip_lhs(v: Value) -> Value:
    """``x = 3`` -> ``3`` when the left side names a variable (``x``, ``x_1``, ``(x, y)``); ``(x=8, y=2)`` ->
    ``(8, 2)``."""
    if isinstance(v, Relation) and v.op == "=" and _variable_like(v.lhs):
        return _strip_lhs(v.rhs)
    if isinstance(v, Seq) and v.kind == "tuple" and v.items and all(_is_assignment(i) for i in v.items):
        return Seq("tuple", tuple(i.rhs for i in v.items), v.left, v.right)  # type: ignore[union-attr]
    return v


def _is_assignment(v: Value) -> bool:
    return (
        isinstance(v, Relation) and v.op == "=" and isinstance(v.lhs, Scalar) and isinstance(v.lhs.expr, sympy.Symbol)
    )


def _grouped_assignments(items: tuple[Value, ...]) -> tuple[Value, ...]:
    """``a=3, b=1; a=5, b=1`` -> ``(3, 1), (5, 1)``: the same names repeated in the same order."""
    if len(items) < 4 or not all(_is_assignment(i) for i in items):
        return items
    names = [i.lhs.expr for i in items]  # type: ignore[union-attr]
    width = names.index(names[0], 1) if names[0] in names[1:] else 0
    if width < 2 or len(names) % width or names != names[:width] * (len(names) // width):
        return items  # one name repeated ("x = 1, x = -1, x = 2") is a list of its values, not of 1-tuples
    rows = [items[i : i + width] for i in range(0, len(items), width)]
    return tuple(Seq("tuple", tuple(r.rhs for r in row), "(", ")") for row in rows)  # type: ignore[union-attr]


def _names_quantity(v: Value) -> bool:
    """``|PQ|``, ``AM/MB``, ``V_1/V_2`` (a ratio ``A:B``): a product of symbols to integer powers, maybe in
    absolute value bars, with no numeric factor."""
    if not isinstance(v, Scalar):
        return False
    expr = v.expr.args[0] if isinstance(v.expr, sympy.Abs) else v.expr
    factors = expr.args if expr.is_Mul else (expr,)
    return all(
        isinstance(f, sympy.Symbol) or (f.is_Pow and isinstance(f.base, sympy.Symbol) and f.exp.is_Integer)
        for f in factors
    )


def _chain(v: Relation) -> tuple[list[Value], list[str]]:
    """A chain ``a < b < c`` (parsed left-nested: ``(a < b) < c``) as its items and operators, left to right."""
    items, ops = [v.rhs], [v.op]
    lhs = v.lhs
    while isinstance(lhs, Relation):
        items.append(lhs.rhs)
        ops.append(lhs.op)
        lhs = lhs.lhs
    items.append(lhs)
    return items[::-1], ops[::-1]


def _chains_equal(g: Relation, p: Relation) -> Outcome:
    """Two chains (``b > a > c``): the same items under the same operators, or the chain read the other way round
    with every operator flipped (``c < a < b``); each pair of items compared as values."""
    (g_items, g_ops), (p_items, p_ops) = _chain(g), _chain(p)
    if len(g_items) != len(p_items):
        return False, "different relations"
    if g_ops == p_ops and all(equal(a, b)[0] for a, b in zip(g_items, p_items, strict=True)):
        return True, "the same chain of relations"
    flipped = [_FLIP[op] for op in reversed(p_ops)]
    if g_ops == flipped and all(equal(a, b)[0] for a, b in zip(g_items, reversed(p_items), strict=True)):
        return True, "the chain of relations written the other way"
    return False, "different relations"


def _relations_equal(g: Relation, p: Relation) -> Outcome:
    if isinstance(g.lhs, Relation) or isinstance(p.lhs, Relation):
        return _chains_equal(g, p)
    if g.op == p.op and equal(g.lhs, p.lhs)[0] and equal(g.rhs, p.rhs)[0]:
        return True, "relation sides equal"
    if _FLIP[g.op] == p.op and equal(g.lhs, p.rhs)[0] and equal(g.rhs, p.lhs)[0]:
        return True, "relation flipped"
    sides = (g.lhs, g.rhs, p.lhs, p.rhs)
    if not all(isinstance(s, Scalar) for s in sides) or g.op not in _FLIP or p.op not in _FLIP:
        return False, "different relations"
    gd = Scalar(g.lhs.expr - g.rhs.expr, g.lhs.approx or g.rhs.approx)  # type: ignore[union-attr]
    pd = Scalar(p.lhs.expr - p.rhs.expr, p.lhs.approx or p.rhs.approx)  # type: ignore[union-attr]
    # A closed identity (``360 = 2^3 * 3^2 * 5``) has lhs - rhs = 0 like every other true one: its sides decide.
    closed = not (gd.expr.free_symbols or pd.expr.free_symbols)
    if g.op in {"=", "!="} and g.op == p.op and not closed:
        if scalar_equal(gd, pd)[0] or scalar_equal(gd, Scalar(-pd.expr, pd.approx))[0]:
            return True, "relation lhs-rhs equal"
    return _proportional(g.op, gd, p.op, pd)


def _proportional(g_op: str, gd: Scalar, p_op: str, pd: Scalar) -> Outcome:
    """``3x - 6y + 9 = 0`` is ``x - 2y + 3 = 0``: lhs - rhs equal up to a non-zero constant factor, which must be
    positive for an inequality in the same direction and negative for a flipped one."""
    symbols = gd.expr.free_symbols | pd.expr.free_symbols
    if not symbols or g_op == "!=" or (g_op == "=") != (p_op == "=") or _has_big_operator(gd.expr, pd.expr):
        return False, "different relations"
    point = {s: _POINTS[i % len(_POINTS)] for i, s in enumerate(sorted(symbols, key=lambda s: s.name))}
    # The factor at one point, numerically: substituting rationals into sympy objects evaluates exactly, and
    # ``(x^2 + c)^n`` at rational points made sympy factor huge integers for minutes.
    factor = rational_ratio(gd.expr, pd.expr, point)
    if factor is None or factor == 0:
        return False, "different relations"
    # A negative factor turns an inequality round: it must then be written the other way (``x > y`` is ``-x < -y``).
    if g_op != "=" and (_FLIP[g_op] != p_op if (factor < 0) is sympy.true else g_op != p_op):
        return False, "different relations"
    if scalar_equal(gd, Scalar(factor * pd.expr, pd.approx))[0]:
        return True, "relations equal up to a constant factor"
    return False, "different relations"


def _unordered_equal(gold: tuple[Value, ...], pred: tuple[Value, ...]) -> Outcome:
    if len(gold) != len(pred):
        return False, f"{len(gold)} gold items vs {len(pred)} predicted"
    left = list(pred)
    for g in gold:
        match = next((i for i, p in enumerate(left) if equal(g, p)[0]), None)
        if match is None:
            return False, "an item has no match"
        left.pop(match)
    return True, "same items, any order"


def _ordered_equal(gold: tuple[Value, ...], pred: tuple[Value, ...]) -> Outcome:
    if len(gold) != len(pred):
        return False, f"{len(gold)} gold items vs {len(pred)} predicted"
    for g, p in zip(gold, pred, strict=True):
        if not equal(g, p)[0]:
            return False, "an item differs (order matters)"
    return True, "same items in order"


def _by_name(g: Seq, p: Seq) -> Outcome | None:
    """``x = 1, y = 2`` against ``x = 2, y = 1``: when both sides assign the same distinct names, each value is
    compared with the one of its name (None when the names do not bind: other names, or one name repeated)."""
    if not all(_is_assignment(i) for i in g.items + p.items):
        return None
    g_named = {i.lhs.expr: i.rhs for i in g.items}  # type: ignore[union-attr]
    p_named = {i.lhs.expr: i.rhs for i in p.items}  # type: ignore[union-attr]
    same_names = len(g_named) == len(g.items) and len(p_named) == len(p.items) and g_named.keys() == p_named.keys()
    if len(g_named) < 2 or not same_names:
        return None
    if all(equal(value, p_named[name])[0] for name, value in g_named.items()):
        return True, "same value for each name"
    return False, "a name has another value"


def _seq_equal(g: Seq, p: Seq) -> Outcome:
    named = _by_name(g, p)
    if named is not None and named[0]:
        return named
    outcome = _items_equal(g, p)
    return named if named is not None and outcome[0] else outcome  # the names decide; a miss keeps its reason


def _items_equal(g: Seq, p: Seq) -> Outcome:
    g_items = tuple(_strip_lhs(i) for i in _grouped_assignments(g.items))
    p_items = tuple(_strip_lhs(i) for i in _grouped_assignments(p.items))
    if g.kind == "interval" or p.kind == "interval":
        if (g.left, g.right) != (p.left, p.right):
            return False, "interval brackets differ"
        return _ordered_equal(g_items, p_items)
    if g.kind == "tuple" or p.kind == "tuple":
        return _ordered_equal(g_items, p_items)
    if len(g_items) != len(p_items) and all(isinstance(i, Seq) and i.kind == "tuple" for i in g_items + p_items):
        g_items, p_items = _distinct(g_items), _distinct(p_items)  # a solution listed twice is one solution
    return _unordered_equal(g_items, p_items)


def _distinct(items: tuple[Value, ...]) -> tuple[Value, ...]:
    kept: list[Value] = []
    for item in items:
        if not any(equal(k, item)[0] for k in kept):
            kept.append(item)
    return tuple(kept)


def _flat(m: Matrix) -> tuple[Value, ...] | None:
    if len(m.rows) == 1 or all(len(r) == 1 for r in m.rows):
        return tuple(v for r in m.rows for v in r)
    return None


def _matrix_equal(g: Value, p: Value) -> Outcome:
    if isinstance(g, Matrix) and isinstance(p, Matrix):
        if [len(r) for r in g.rows] != [len(r) for r in p.rows]:
            return False, "matrix shapes differ"
        return _ordered_equal(tuple(v for r in g.rows for v in r), tuple(v for r in p.rows for v in r))
    m, other = (g, p) if isinstance(g, Matrix) else (p, g)
    flat = _flat(m)  # type: ignore[arg-type]
    # ``[0.5, 1]`` for a gold vector: two items in square brackets read as an interval, but against a vector they
    # are its entries, as ``[2, -1, 3]`` (a list) and ``(2, -1, 3)`` are; a gold interval stays an interval.
    bracketed = m is g and isinstance(other, Seq) and (other.left, other.right) == ("[", "]")
    vector = isinstance(other, Seq) and (other.kind in {"tuple", "list"} or bracketed)
    if flat is not None and vector:
        return _ordered_equal(flat, other.items)  # type: ignore[union-attr]
    return False, "matrix against a non-matrix"


def equal(gold: Value, pred: Value) -> Outcome:
    """Whether `pred` is mathematically equal to `gold`; returns (verdict, rule name)."""
    if not current_options().set_relation and _inequality(pred) and _written_as_set(gold):
        return False, "an inequality against a gold written as a set (set_relation option off)"
    if describes_inequality(gold) or describes_inequality(pred):
        outcome = _set_outcome(gold, pred)
        if outcome is not None:
            return outcome
    if isinstance(gold, Relation) or isinstance(pred, Relation):
        return _relation_cases(gold, pred)
    if isinstance(gold, Scalar) and isinstance(pred, Scalar):
        return scalar_equal(gold, pred)
    if isinstance(gold, Matrix) or isinstance(pred, Matrix):
        return _matrix_equal(gold, pred)
    if isinstance(gold, Seq) and isinstance(pred, Seq):
        return _seq_equal(gold, pred)
    if isinstance(gold, Seq) != isinstance(pred, Seq):
        return _one_element(gold, pred)
    return _other_equal(gold, pred)


def renamed_equal(gold: Value, pred: Value) -> Outcome | None:
    """Under the option ``strict=False``, for answers `equal` found different: whether they are equal once the
    letters only `pred` uses are renamed one-to-one onto the letters only `gold` uses (every pairing, at most
    `MAX_RENAMED` letters; letters both use keep their names). None when strict, or when nothing is renamed."""
    if current_options().strict:
        return None
    g_only = sorted(_symbols(gold) - _symbols(pred), key=str)
    p_only = sorted(_symbols(pred) - _symbols(gold), key=str)
    if not p_only or len(g_only) != len(p_only) or len(p_only) > MAX_RENAMED:
        return None
    for target in itertools.permutations(g_only):
        mapping = dict(zip(p_only, target, strict=True))
        renamed = equal(gold, _renamed(pred, mapping))
        if renamed[0]:
            names = ", ".join(f"{a} -> {b}" for a, b in mapping.items())
            return True, f"equal with the answer's letters renamed ({names}; strict option off): {renamed[1]}"
    return None


def _symbols(value: Value) -> set[sympy.Symbol]:
    """The free symbols of every scalar in `value`."""
    if isinstance(value, Scalar):
        return {s for s in value.expr.free_symbols if isinstance(s, sympy.Symbol)}
    parts: tuple[Value, ...] = ()
    if isinstance(value, Seq):
        parts = value.items
    elif isinstance(value, Relation):
        parts = (value.lhs, value.rhs)
    elif isinstance(value, Matrix):
        parts = tuple(v for row in value.rows for v in row)
    elif isinstance(value, UnionOf):
        parts = value.parts
    return set().union(*(_symbols(p) for p in parts)) if parts else set()


def _renamed(value: Value, mapping: dict[sympy.Symbol, sympy.Symbol]) -> Value:
    """`value` with its symbols replaced at once by `mapping` (``xreplace`` of symbols by symbols)."""
    if isinstance(value, Scalar):
        return replace(value, expr=value.expr.xreplace(mapping))
    if isinstance(value, Seq):
        return replace(value, items=tuple(_renamed(i, mapping) for i in value.items))
    if isinstance(value, Relation):
        return replace(value, lhs=_renamed(value.lhs, mapping), rhs=_renamed(value.rhs, mapping))
    if isinstance(value, Matrix):
        return Matrix(tuple(tuple(_renamed(v, mapping) for v in row) for row in value.rows))
    if isinstance(value, UnionOf):
        return UnionOf(tuple(_renamed(p, mapping) for p in value.parts))
    return value


def _inequality(value: Value) -> bool:
    """An inequality (``x > 2``), a chain (``-2 \\le x \\le 7``) or a list of them (``x < -2`` or ``x > 4``)."""
    if isinstance(value, Seq):
        return value.kind == "list" and bool(value.items) and all(_inequality(i) for i in value.items)
    return isinstance(value, Relation) and value.op in _INEQUALITIES


def _written_as_set(gold: Value) -> bool:
    """Whether `gold` is written as a set of reals: an interval, a union, an open pair, ``x \\in S``."""
    membership = isinstance(gold, Relation) and gold.op == "=" and isinstance(gold.rhs, (Seq, UnionOf))
    return (membership or isinstance(gold, (Seq, UnionOf))) and as_real_set(gold, pairs_are_open=True) is not None


def _set_outcome(gold: Value, pred: Value) -> Outcome | None:
    """Both sides as sets of reals (``-3 \\le t \\le 5`` against ``[-3, 5]``), or None when one is not one."""
    g_set = as_real_set(gold, pairs_are_open=describes_inequality(pred))
    p_set = as_real_set(pred, pairs_are_open=describes_inequality(gold)) if g_set else None
    if g_set is None or p_set is None:
        return None
    return sets_equal(g_set, p_set, lambda a, b: scalar_outcome(a, b, False)[0])


def _relation_cases(gold: Value, pred: Value) -> Outcome:
    if isinstance(gold, Relation) and isinstance(pred, Relation):
        outcome = _relations_equal(gold, pred)
        g_stripped, p_stripped = _strip_lhs(gold), _strip_lhs(pred)
        if outcome[0] or (g_stripped is gold and p_stripped is pred):
            return outcome
        return equal(g_stripped, p_stripped)
    if isinstance(gold, Relation):
        stripped = _strip_lhs(gold)
        if stripped is not gold:
            return equal(stripped, pred)
        if (
            gold.op == "="
            and _names_quantity(gold.lhs)
            and isinstance(gold.rhs, Scalar)
            and not gold.rhs.expr.free_symbols
        ):
            return equal(gold.rhs, pred)  # ``|PQ| = 4`` answered with ``4``
        return False, "gold is a relation"
    assert isinstance(pred, Relation)
    if pred.op != "=":
        return False, "prediction is an inequality"
    return equal(gold, pred.rhs)


def _one_element(gold: Value, pred: Value) -> Outcome:
    seq, other = (gold, pred) if isinstance(gold, Seq) else (pred, gold)
    assert isinstance(seq, Seq)
    items = tuple(_strip_lhs(i) for i in seq.items)
    if seq.kind in {"list", "set"} and len(items) > 1 and all(equal(items[0], i)[0] for i in items[1:]):
        items = items[:1]  # the same value boxed twice ("$\\boxed{-b+2}$, or $\\boxed{2-b}$")
    if len(items) == 1 and seq.kind in {"list", "set"}:
        return equal(items[0], other) if seq is gold else equal(other, items[0])
    return False, "a list against a single value"


def _other_equal(gold: Value, pred: Value) -> Outcome:
    if isinstance(gold, BaseNumeral) or isinstance(pred, BaseNumeral):
        return _base_equal(gold, pred)
    if isinstance(gold, UnionOf) and isinstance(pred, UnionOf):
        return _unordered_equal(gold.parts, pred.parts)
    if isinstance(gold, Text) and isinstance(pred, Text):
        return gold.text == pred.text, "text"
    return False, f"{type(gold).__name__} against {type(pred).__name__}"


def _base_equal(gold: Value, pred: Value) -> Outcome:
    if isinstance(gold, BaseNumeral) and isinstance(pred, BaseNumeral):
        return (gold.digits, gold.base) == (pred.digits, pred.base), "base numeral digits and base"
    numeral, other = (gold, pred) if isinstance(gold, BaseNumeral) else (pred, gold)
    assert isinstance(numeral, BaseNumeral)
    if isinstance(other, Scalar) and other.expr.is_Integer and not other.approx:
        return str(other.expr) == numeral.digits, "base numeral digits (base omitted)"
    return False, "base numeral against another form"
