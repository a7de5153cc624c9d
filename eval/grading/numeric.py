"""Fast numeric comparison of two parsed scalars: double precision first, mpmath at 50 digits only when
doubles cannot decide.

`sympy.N(expr, 30)` costs 1-8 ms per call (adaptive precision, assumption queries); walking the tree
ourselves costs microseconds in doubles and ~0.1 ms in mpmath. Doubles can only prove a *difference*
for exact answers (the exact rule asks for agreement to 1e-20 relative), so equal answers always take
the 50-digit pass; different ones almost never do. Each evaluation tracks the largest magnitude that
went into a sum or a trigonometric argument, so rounding error from cancellation is bounded: when that
bound reaches the tolerance the answer is `None` (undecided) and the caller falls back to sympy's
adaptive `N`. Only the node types our parser builds are known; anything else raises `Unsupported`.

A definite integral (``\\int_a^b``) is integrated by mpmath's quadrature at 50 digits only, with a bounded
number of integrand points and range; intermediate values and trigonometric arguments too large to
evaluate quickly are refused (`Unsupported`), and the caller never hands an integral or a sum to sympy.

Doubles are real only: a complex intermediate (``\\sqrt{-1}``, ``\\log`` of a negative), an overflow or a
domain error moves the pair to mpmath, which is complex throughout, so both sides of one comparison
always go through the same arithmetic and take the same branches. The mpmath context is private (its
precision is never changed), so concurrent graders in threads do not interfere.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from typing import Any

import mpmath
import sympy
from sympy.core.function import AppliedUndef

MP = mpmath.MPContext()
MP.dps = 50
# Exact answers accepted at 50 digits are confirmed at 120: ``\sqrt{10^{40}+1}`` and ``10^{20}`` agree to 40
# digits, ``e^{\pi\sqrt{163}}`` and ``640320^3+744`` to 30, and neither pair is equal.
MP_CONFIRM = mpmath.MPContext()
MP_CONFIRM.dps = 120
_CONFIRM_RTOL = mpmath.mpf("1e-100")
_CONFIRM_NOISE = mpmath.mpf("1e-114")
_DOUBLE_NOISE = 1e-12  # relative rounding error allowed for a double evaluation (generous: ~1e4 ulps)
_MP_NOISE = mpmath.mpf("1e-44")
APPROX_RELATIVE_CAP = 1e-3
_QUICK_RTOL = 1e-10
MAX_TERMS = 2000  # terms of all sums and products in one evaluation at one point
MAX_QUADRATURE_POINTS = 2000  # integrand evaluations for definite integrals in one evaluation
MAX_INTEGRATION_RANGE = 10**6
MAX_MAGNITUDE_BITS = 100_000  # about 30,000 digits: beyond, mpmath arithmetic itself gets slow
MAX_TRIG_ARGUMENT_BITS = 4_000


class Unsupported(Exception):
    """The expression holds a node type this evaluator does not know."""


class _Escalate(ArithmeticError):
    """Doubles cannot represent this value (complex, overflow, domain error)."""


def _gamma_binomial(n: float, k: float) -> float:
    return math.gamma(n + 1) / (math.gamma(k + 1) * math.gamma(n - k + 1))


def _real_power(base: float, exp: float) -> float:
    if base < 0 and not float(exp).is_integer():
        raise _Escalate("negative base, fractional exponent")
    return float(base**exp)


_DOUBLE_FUNCS: dict[type, Callable[..., float]] = {
    sympy.sin: math.sin,
    sympy.cos: math.cos,
    sympy.tan: math.tan,
    sympy.cot: lambda v: 1 / math.tan(v),
    sympy.sec: lambda v: 1 / math.cos(v),
    sympy.csc: lambda v: 1 / math.sin(v),
    sympy.asin: math.asin,
    sympy.acos: math.acos,
    sympy.atan: math.atan,
    sympy.sinh: math.sinh,
    sympy.cosh: math.cosh,
    sympy.tanh: math.tanh,
    sympy.exp: math.exp,
    sympy.log: math.log,
    sympy.Abs: abs,
    sympy.factorial: lambda v: math.gamma(v + 1),
    sympy.binomial: _gamma_binomial,
    sympy.floor: lambda v: _snapped(v, 1e-12, math.floor),
    sympy.ceiling: lambda v: _snapped(v, 1e-12, math.ceil),
}
_MP_FUNCS: dict[type, str] = {
    sympy.sin: "sin",
    sympy.cos: "cos",
    sympy.tan: "tan",
    sympy.cot: "cot",
    sympy.sec: "sec",
    sympy.csc: "csc",
    sympy.asin: "asin",
    sympy.acos: "acos",
    sympy.atan: "atan",
    sympy.sinh: "sinh",
    sympy.cosh: "cosh",
    sympy.tanh: "tanh",
    sympy.exp: "exp",
    sympy.log: "log",
    sympy.factorial: "factorial",
    sympy.binomial: "binomial",
}
_TRIG = {sympy.sin, sympy.cos, sympy.tan, sympy.cot, sympy.sec, sympy.csc}


def _snapped(value: Any, rtol: Any, rounding: Callable[[Any], Any]) -> Any:
    """Floor or ceiling of a value that rounding error may have put just beside an integer: within `rtol`
    relative of one, the integer (a logarithm at a power of its base can land a hair below it)."""
    if hasattr(value, "imag") and value.imag != 0:
        return rounding(value)
    real = value.real if hasattr(value, "real") else value
    nearest = round(real)
    return type(real)(nearest) if abs(real - nearest) <= rtol * max(1, abs(real)) else rounding(real)


def _as_int(value: Any) -> int:
    """An evaluated bound or index as an int; Unsupported unless it is (within rounding) an integer."""
    if isinstance(value, complex) or (hasattr(value, "imag") and value.imag != 0):
        raise Unsupported("complex index")
    nearest = int(round(float(value.real if hasattr(value, "real") else value)))
    if abs(float(value.real if hasattr(value, "real") else value) - nearest) > 1e-9:
        raise Unsupported("non-integer bound or index")
    return nearest


class _Evaluator:
    """One evaluation in one arithmetic (doubles or mpmath), remembering the largest magnitude summed."""

    def __init__(self, subs: dict[sympy.Symbol, Any], mp: bool, ctx: Any = MP):
        self.subs = subs
        self.mp = mp
        self.ctx = ctx  # MP (50 digits) or MP_CONFIRM (120 digits)
        self.peak = 0.0
        self.terms = 0

    def constant(self, expr: sympy.Basic) -> Any:
        if expr is sympy.pi:
            return self.ctx.pi if self.mp else math.pi
        if expr is sympy.E:
            return self.ctx.e if self.mp else math.e
        if expr is sympy.I:
            if not self.mp:
                raise _Escalate("imaginary unit")
            return self.ctx.mpc(0, 1)
        raise Unsupported(type(expr).__name__)

    def value(self, expr: sympy.Basic) -> Any:
        if isinstance(expr, sympy.Rational):
            return self.ctx.mpf(int(expr.p)) / int(expr.q) if self.mp else int(expr.p) / int(expr.q)
        if isinstance(expr, sympy.Symbol):
            if expr not in self.subs:
                raise Unsupported(f"no point for {expr}")
            return self.subs[expr]
        if isinstance(expr, sympy.Add):
            terms = [self.value(a) for a in expr.args]
            self.peak = max(self.peak, *(float(abs(t)) for t in terms))
            return self.ctx.fsum(terms) if self.mp else math.fsum(terms)
        if isinstance(expr, sympy.Mul):
            product = self.value(expr.args[0])
            for a in expr.args[1:]:
                product = product * self.value(a)
            return product
        if isinstance(expr, sympy.Pow):
            base, exp = self.value(expr.args[0]), self.value(expr.args[1])
            if not self.mp:
                return _real_power(base, exp)
            result = self.ctx.power(base, exp)
            # x^x at x = 10^9 has 9e9 digits
            if self.ctx.isfinite(result) and self.ctx.mag(result) > MAX_MAGNITUDE_BITS:
                raise Unsupported("an intermediate value too large to evaluate")
            return result
        return self.call(expr)

    def big_operator(self, expr: sympy.Sum | sympy.Product) -> Any:
        """A sum or product whose bounds are integers at this point, term by term (at most MAX_TERMS)."""
        index, lower, upper = expr.limits[0]
        lo, hi = _as_int(self.value(lower)), _as_int(self.value(upper))
        self.terms += max(0, hi - lo + 1)
        if self.terms > MAX_TERMS:  # counted over nested sums too
            raise Unsupported(f"more than {MAX_TERMS} terms")
        saved = self.subs.get(index)
        terms = []
        for i in range(lo, hi + 1):
            self.subs[index] = self.ctx.mpf(i) if self.mp else float(i)
            terms.append(self.value(expr.function))
        self.subs.pop(index)
        if saved is not None:
            self.subs[index] = saved
        if isinstance(expr, sympy.Product):
            return self.ctx.fprod(terms) if self.mp else math.prod(terms)
        self.peak = max([self.peak, *(float(abs(t)) for t in terms)])
        return self.ctx.fsum(terms) if self.mp else math.fsum(terms)

    def sequence_term(self, expr: sympy.Basic) -> Any:
        """``F(k)``, a term of an unknown sequence: a fixed pseudo-random value per (name, integer index)."""
        index = _as_int(self.value(expr.args[0]))
        value = 1 + zlib.crc32(f"{expr.func.__name__}:{index}".encode()) / 2**32
        return self.ctx.mpf(value) if self.mp else value

    def integral(self, expr: sympy.Integral) -> Any:
        """A definite integral by mpmath's quadrature (50 digits only: doubles escalate)."""
        if not self.mp:
            raise _Escalate("quadrature runs at 50 digits")
        ((variable, lower, upper),) = expr.limits
        a, b = self.value(lower), self.value(upper)
        if self.ctx.isfinite(a) and self.ctx.isfinite(b) and abs(b - a) > MAX_INTEGRATION_RANGE:
            raise Unsupported("an integration range too wide for quadrature")
        saved = dict(self.subs)

        def integrand(t: Any) -> Any:
            self.subs[variable] = t
            self.terms += 1
            if self.terms > MAX_QUADRATURE_POINTS:
                raise Unsupported(f"more than {MAX_QUADRATURE_POINTS} quadrature points")
            return self.value(expr.function)

        try:
            result = self.ctx.quad(integrand, [a, b])
        finally:
            self.subs = saved
        self.peak = max(self.peak, float(abs(result)))
        return result

    def _mp_function(self, expr: sympy.Basic) -> Callable[..., Any] | None:
        if isinstance(expr, sympy.Abs):
            return abs
        if isinstance(expr, (sympy.floor, sympy.ceiling)):
            rounding = self.ctx.floor if isinstance(expr, sympy.floor) else self.ctx.ceil
            tol = self.ctx.mpf(10) ** (10 - self.ctx.dps)
            return lambda v: _snapped(v, tol, rounding)
        name = _MP_FUNCS.get(type(expr))
        return getattr(self.ctx, name) if name else None

    def call(self, expr: sympy.Basic) -> Any:
        if isinstance(expr, (sympy.Sum, sympy.Product)):
            return self.big_operator(expr)
        if isinstance(expr, sympy.Integral):
            return self.integral(expr)
        if isinstance(expr, AppliedUndef) and len(expr.args) == 1:
            return self.sequence_term(expr)
        if not expr.args:
            return self.constant(expr)
        func = self._mp_function(expr) if self.mp else _DOUBLE_FUNCS.get(type(expr))
        if func is None:
            raise Unsupported(type(expr).__name__)
        args = [self.value(a) for a in expr.args]
        if type(expr) in _TRIG:
            if self.mp and self.ctx.isfinite(args[0]) and self.ctx.mag(args[0]) > MAX_TRIG_ARGUMENT_BITS:
                raise Unsupported("a trigonometric argument too large to reduce")  # reduction costs its digits
            self.peak = max(self.peak, float(abs(args[0])))
        return func(*args)


def tolerance(ax: Any, ay: Any, rtol: float, floor: float) -> Any:
    """Allowed ``|x - y|``: `rtol` times the larger size (at least `floor`). With a floor (a decimal
    approximation) the difference must also stay under 1e-3 relative, so ``.0000672`` is not ``.0000673``
    while ``0.333333`` still is ``1/3``."""
    size = max(ax, ay)
    allowed = rtol * max(size, floor)
    return min(allowed, APPROX_RELATIVE_CAP * size) if floor > 0 else allowed


def _double_verdict(
    x: sympy.Basic, y: sympy.Basic, subs: dict, rtol: float, floor: float, quick: bool = False
) -> bool | None:
    """True/False when doubles decide with margin to spare; None when the pair needs more digits.

    With `quick`, agreement to 1e-10 relative (beyond rounding) counts as equal: used for the extra
    points once the first point has been checked to 50 digits.
    """
    ev = _Evaluator({k: float(v) for k, v in subs.items()}, mp=False)
    try:
        fx, fy = ev.value(x), ev.value(y)
    except (_Escalate, OverflowError, ValueError, ZeroDivisionError):
        return None
    if not (math.isfinite(fx) and math.isfinite(fy)):
        return None
    diff, scale = abs(fx - fy), max(abs(fx), abs(fy), floor)
    noise = _DOUBLE_NOISE * max(ev.peak, scale)
    tol = tolerance(abs(fx), abs(fy), rtol, floor)
    if diff - noise > tol:
        return False
    if (rtol >= 1e-9 or quick) and diff + noise < max(tol, _QUICK_RTOL * scale if quick else 0.0):
        return True
    return None


def _mp_verdict(x: sympy.Basic, y: sympy.Basic, subs: dict, rtol: float, floor: float) -> bool | None | str:
    """The 50-digit verdict; ``"undecided"`` when cancellation leaves too few good digits."""
    ev = _Evaluator({k: MP.mpf(int(v.p)) / int(v.q) for k, v in subs.items()}, mp=True)
    try:
        fx, fy = ev.value(x), ev.value(y)
    except (ZeroDivisionError, ValueError):  # a pole (``\\cot 0``, ``(-1)!``) is not a finite number
        return None
    if not all(MP.isfinite(v) for v in (fx, fy)):
        return None
    diff, scale = abs(fx - fy), max(abs(fx), abs(fy), floor)
    noise = _MP_NOISE * max(ev.peak, scale)
    if noise > rtol * scale / 1000:
        return "undecided"
    if not diff <= tolerance(abs(fx), abs(fy), rtol, floor):
        return False
    return floor > 0 or _confirmed(x, y, subs)


def _confirmed(x: sympy.Basic, y: sympy.Basic, subs: dict) -> bool:
    """An exact pair equal at 50 digits, evaluated again at 120: False only when the difference is then
    certain (beyond the cancellation bound) — values that agree to 40 digits are still different values.
    Integrals are not confirmed: quadrature error, not the values, would decide at 120 digits."""
    if x.has(sympy.Integral) or y.has(sympy.Integral):
        return True
    ev = _Evaluator({k: MP_CONFIRM.mpf(int(v.p)) / int(v.q) for k, v in subs.items()}, mp=True, ctx=MP_CONFIRM)
    try:
        fx, fy = ev.value(x), ev.value(y)
    except (ZeroDivisionError, ValueError, Unsupported):
        return True
    if not all(MP_CONFIRM.isfinite(v) for v in (fx, fy)):
        return True
    diff, scale = abs(fx - fy), max(abs(fx), abs(fy))
    if _CONFIRM_NOISE * max(ev.peak, scale) > _CONFIRM_RTOL * scale / 1000:
        return True  # too much cancellation to tell more than the 50-digit pass did
    return bool(diff <= _CONFIRM_RTOL * scale)


def close_at(
    x: sympy.Basic, y: sympy.Basic, subs: dict, rtol: float, floor: float, quick: bool = False
) -> bool | None | str:
    """Whether `x` and `y` agree within `rtol` relative at the point `subs` (rationals).

    `quick` accepts agreement in doubles (1e-10 relative) without the 50-digit pass.

    Returns:
        True or False; None when a side is not a finite number; ``"undecided"`` when neither
        arithmetic can tell (the caller then uses sympy's adaptive evaluation).

    Raises:
        Unsupported: A node type this evaluator does not know.
    """
    verdict = _double_verdict(x, y, subs, rtol, floor, quick)
    if verdict is not None:
        return verdict
    return _mp_verdict(x, y, subs, rtol, floor)


def magnitude(expr: sympy.Basic) -> float:
    """``|expr|`` in doubles for a constant expression (inf on overflow); sympy's `N` for what doubles miss."""
    try:
        return abs(float(_Evaluator({}, mp=False).value(expr)))
    except OverflowError:
        return math.inf
    except (Unsupported, _Escalate, ValueError, ZeroDivisionError):
        return float(abs(sympy.N(expr, 5)))
