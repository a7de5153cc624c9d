"""Numeric comparison of two parsed scalars at a point, with error bounds that cannot be fooled by scale.

`sympy.N(expr, 30)` costs 1-8 ms per call; walking the tree ourselves costs microseconds in doubles and about
0.1 ms in mpmath at 50 digits. Every node returns its value **and a bound on its absolute error** (propagated
to first order: rounding of each operation, the condition of each function, ``(1+r)^n`` for powers), so two
values count as different only when they differ by more than their errors, and as equal only when their errors
are small against their own size. A value of 1e-1354 (``x^{9900}`` at x = 0.73) is as good as a value of 1:
its error is relative. Two values that both vanish exactly, or where one is real and the other is not (outside
the common domain), are **no evidence** either way: the caller tries other points.

Exact answers (no decimal literal) have no tolerance: doubles prove most differences; a pair still equal at 50
digits is confirmed at a precision chosen from the pair itself: at least 120 digits and agreement within errors
of at most 10^-80 of its size (of the terms' size when both sides vanish, as in ``\\sin^2 x + \\cos^2 x - 1``), and
more digits of both when a sum mixes magnitudes (``1 + e^{-2000}``: the small term is lost below the larger
one's precision, so the sum's spread of magnitudes is added) or a literal carries many digits
(``\\sqrt{10^{200}+1}``; twice a fraction's digits, since second-order terms such as ``t^2/2`` are what separate
``e^{10^{-50}}`` from ``1 + 10^{-50}``); precision then rises by the digits an evaluation lost to cancellation, up
to `MAX_DIGITS`, and a pair that `MAX_DIGITS` cannot settle is undecided (not accepted).

Answers with a decimal literal are approximations: a tolerance of 1e-6 relative to max(|x|, |y|, 1), at most
1e-3 relative (`tolerance`), decided beyond the errors.

A definite integral (``\\int_a^b``) is integrated by mpmath's quadrature at 50 digits (its own error estimate is
the error; an equal pair is not confirmed at more digits, where quadrature's error would decide), with a bounded
number of integrand points and range; intermediate values and trigonometric arguments too
large to evaluate quickly are refused (`OutOfRange`: the caller tries points nearer 1), and the caller never
hands an integral or a sum to sympy. Doubles are real only: a complex intermediate, an overflow, an underflow or
a domain error moves the pair to mpmath, which is complex throughout and has no exponent range to leave. The
mpmath contexts are private (their precision is never changed), so graders in threads do not interfere.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache
from typing import Any

import mpmath
import sympy
from sympy.core.function import AppliedUndef

FIRST_DIGITS = 50
CONFIRM_DIGITS = 120
MAX_DIGITS = 1000  # mpmath at 1,000 digits: about 1 ms per elementary function
ACCEPT_MARGIN_DIGITS = 40  # digits evaluated beyond those a pair asks for
FIRST_TARGET = 30  # at 50 digits, errors under 10^-30 of the size make a pair worth confirming
CONFIRM_TARGET = 80  # equal: agreement within errors of at most 10^-80 of the size (or more, see `need`)
SAFETY = 8.0  # first-order error bounds are estimates: a difference must exceed them eightfold
APPROX_RTOL = 1e-6
APPROX_RELATIVE_CAP = 1e-3
QUICK_RTOL = 1e-10
MAX_TERMS = 2000  # terms of all sums and products in one evaluation at one point
MAX_QUADRATURE_POINTS = 2000  # integrand evaluations for definite integrals in one evaluation
MAX_INTEGRATION_RANGE = 10**6
MAX_MAGNITUDE_BITS = 100_000  # about 30,000 digits: beyond, mpmath arithmetic itself gets slow
MAX_TRIG_ARGUMENT_BITS = 4_000
# A power with an exponent up to this (``|x|``) costs mpmath at most 16 squarings: whatever its size, it is
# computed and then checked; above, its size is estimated first (`_Evaluator._refuse_huge_power`).
_SMALL_EXPONENT = 2**16
_SQUARINGS_EXPONENT = 2**64  # a tiny power is computed only up to this exponent (64 squarings)
_DOUBLE_UNIT = 2.0**-52  # two units in the last place
_DOUBLE_TINY = 2.2250738585072014e-308  # below, doubles lose precision (subnormals) or flush to zero
_LOG10_2 = 0.30102999566398120

NO_EVIDENCE = "no evidence"  # both vanish exactly, or one side leaves the reals: this point says nothing
UNDECIDED = "undecided"


class Unsupported(Exception):
    """The expression holds a node type this evaluator does not know."""


class OutOfRange(Unsupported):
    """A value too large to evaluate quickly at this point (``x^x`` at a large x): a point nearer 1 may do."""


class _Escalate(ArithmeticError):
    """Doubles cannot represent this value (complex, overflow, underflow, domain error)."""


@lru_cache(maxsize=64)
def _context(digits: int) -> Any:
    ctx = mpmath.MPContext()
    ctx.dps = digits
    return ctx


MP = _context(FIRST_DIGITS)


def _sig_digits(n: int) -> float:
    return len(str(abs(n))) if abs(n) >= 10**15 else math.log10(abs(n) + 1)


def _literal_need(p: int, q: int) -> float:
    """Digits a literal asks for: an integer its own; a fraction twice its longer part (second-order terms)."""
    if q == 1:
        return _sig_digits(p)
    return 2 * max(_sig_digits(p), _sig_digits(q))


class _Evaluator:
    """One evaluation in one arithmetic (doubles when `ctx` is None, else mpmath at ``ctx.dps``): values with
    absolute error bounds, the largest magnitude summed (`peak`) and the digits the expression asks for (`need`)."""

    def __init__(self, subs: dict[sympy.Basic, sympy.Rational], ctx: Any = None):
        self.ctx = ctx
        self.mp = ctx is not None
        self.u: Any = ctx.mpf(2) ** (1 - ctx.prec) if ctx is not None else _DOUBLE_UNIT
        self.zero: Any = ctx.zero if ctx is not None else 0.0
        self.peak: Any = self.zero
        self.need = 0.0
        self.terms = 0
        self.subs = {s: self.rational(int(v.p), int(v.q), literal=False) for s, v in subs.items()}

    # -- leaves ---------------------------------------------------------------------------------------------
    def rational(self, p: int, q: int, literal: bool = True) -> tuple[Any, Any]:
        if literal:
            self.need = max(self.need, _literal_need(p, q))
        if self.mp:
            value = self.ctx.mpf(p) / q
            exact = q & (q - 1) == 0 and abs(p).bit_length() <= self.ctx.prec
        else:
            try:
                value = p / q
            except OverflowError as exc:
                raise _Escalate("a literal beyond doubles") from exc
            if p and abs(value) < _DOUBLE_TINY:
                raise _Escalate("a literal below doubles")
            exact = q & (q - 1) == 0 and abs(p).bit_length() <= 53
        return value, (self.zero if exact else abs(value) * self.u)

    def constant(self, expr: sympy.Basic) -> tuple[Any, Any]:
        if expr is sympy.I:
            if not self.mp:
                raise _Escalate("imaginary unit")
            return self.ctx.mpc(0, 1), self.zero
        if expr is sympy.pi:
            value = self.ctx.pi if self.mp else math.pi
        elif expr is sympy.E:
            value = self.ctx.e if self.mp else math.e
        else:
            raise Unsupported(type(expr).__name__)
        value = +value if self.mp else value
        return value, abs(value) * self.u

    # -- nodes ----------------------------------------------------------------------------------------------
    def value(self, expr: sympy.Basic) -> tuple[Any, Any]:
        if isinstance(expr, sympy.Rational):
            return self.rational(int(expr.p), int(expr.q))
        if isinstance(expr, sympy.Symbol):
            if expr not in self.subs:
                raise Unsupported(f"no point for {expr}")
            return self.subs[expr]
        if isinstance(expr, sympy.Add):
            return self.add([self.value(a) for a in expr.args])
        if isinstance(expr, sympy.Mul):
            return self.mul([self.value(a) for a in expr.args])
        if isinstance(expr, sympy.Pow):
            return self.power(expr)
        return self.call(expr)

    def add(self, items: list[tuple[Any, Any]]) -> tuple[Any, Any]:
        values = [v for v, _ in items]
        total = self.ctx.fsum(values) if self.mp else math.fsum(values)
        error = sum((e for _, e in items), self.zero) + abs(total) * self.u
        sizes = [abs(v) for v in values if v != 0]
        if sizes:
            largest, smallest = max(sizes), min(sizes)
            self.peak = max(self.peak, largest)
            if len(sizes) > 1:  # a term this much smaller is lost below the larger one's precision
                spread = (
                    (self.ctx.mag(largest) - self.ctx.mag(smallest)) * _LOG10_2
                    if self.mp
                    else (math.log10(largest / smallest))
                )
                self.need = max(self.need, float(spread))
        return total, error

    def _product(self, a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[Any, Any]:
        (x, ex), (y, ey) = a, b
        value = x * y
        if not self.mp:
            if math.isinf(value) or (x and y and abs(value) < _DOUBLE_TINY):
                raise _Escalate("a product beyond doubles")
        return value, abs(x) * ey + abs(y) * ex + ex * ey + abs(value) * self.u

    def mul(self, items: list[tuple[Any, Any]]) -> tuple[Any, Any]:
        result = items[0]
        for item in items[1:]:
            result = self._product(result, item)
        return result

    def _raw_power(self, base: Any, exp: Any) -> Any:
        if self.mp:
            self._refuse_huge_power(base, exp)
            result = self.ctx.power(base, exp)
            if self.ctx.isfinite(result) and result != 0 and self.ctx.mag(result) > MAX_MAGNITUDE_BITS:
                raise OutOfRange("an intermediate value too large to evaluate")  # x^x at x = 10^9
            return result
        if base < 0 and not float(exp).is_integer():
            raise _Escalate("negative base, fractional exponent")
        try:
            result = float(base**exp)
        except OverflowError as exc:
            raise _Escalate("a power beyond doubles") from exc
        except ZeroDivisionError:
            raise
        if math.isinf(result) or (base and abs(result) < _DOUBLE_TINY):
            raise _Escalate("a power beyond doubles")
        return result

    def _refuse_huge_power(self, base: Any, exp: Any) -> None:
        """Refuse, before mpmath computes it, a power over `MAX_MAGNITUDE_BITS` (the check after the power would
        refuse it too, but mpmath squares once per bit of the exponent: an exponent of 300,000 bits, reached
        through an exponent tower, took minutes), and one below ``2^-MAX_MAGNITUDE_BITS`` whose exponent is
        over `_SQUARINGS_EXPONENT`. A smaller exponent costs at most that many squarings: left to the check after."""
        size = abs(exp)
        if size <= _SMALL_EXPONENT or base == 0 or not self.ctx.isfinite(size):
            return
        bits = self.ctx.re(exp) * self.ctx.log(abs(base), 2)
        if bits > MAX_MAGNITUDE_BITS or (bits < -MAX_MAGNITUDE_BITS and size > _SQUARINGS_EXPONENT):
            raise OutOfRange("a power too large to evaluate")

    def power(self, expr: sympy.Pow) -> tuple[Any, Any]:
        (base, eb), (exp, ee) = self.value(expr.base), self.value(expr.exp)
        value = self._raw_power(base, exp)
        if base == 0:
            if eb == 0:
                return value, self.zero
            positive = float(exp.real if self.mp else exp) > 0
            return value, (self._raw_power(eb, exp.real if self.mp else exp) if positive else self._inf())
        relative = abs(exp) * (eb / abs(base))
        if ee:
            relative += ee * (abs(self.ctx.log(base)) if self.mp else abs(math.log(abs(base))) + math.pi)
        return value, abs(value) * (self._growth(relative) + self.u)

    def _inf(self) -> Any:
        return self.ctx.inf if self.mp else math.inf

    def _growth(self, relative: Any) -> Any:
        """``(1 + r)^n - 1 <= e^{n r} - 1`` for a relative error `r` raised to the power n (n r given). Below 1/2,
        ``e^t - 1 <= t / (1 - t)`` in the evaluation's own arithmetic: converted to a double, a relative error below
        1e-308 (any evaluation past 308 digits) became 0 and the power's error bound lost the base's. Above, in
        doubles: an error bound needs no more digits (and mpmath's expm1 cost 90 µs a power)."""
        if relative < 0.5:
            return relative / (1 - relative)
        bound = math.expm1(float(relative)) if relative < 700 else math.inf
        return self.ctx.mpf(bound) if self.mp else bound

    # -- functions ------------------------------------------------------------------------------------------
    def call(self, expr: sympy.Basic) -> tuple[Any, Any]:
        if isinstance(expr, (sympy.Sum, sympy.Product)):
            return self.big_operator(expr)
        if isinstance(expr, sympy.Integral):
            return self.integral(expr)
        if isinstance(expr, AppliedUndef) and len(expr.args) == 1:
            return self.sequence_term(expr)
        if not expr.args:
            if expr in (sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
                raise ZeroDivisionError("not a finite number")
            return self.constant(expr)
        kind = type(expr)
        if kind in (sympy.floor, sympy.ceiling):
            return self.rounding(expr)
        if kind is sympy.Mod:
            return self.remainder(expr)
        if kind in (sympy.factorial, sympy.gamma, sympy.binomial):
            return self.gamma_like(expr)
        entry = _FUNCTIONS.get(kind)
        if entry is None:
            raise Unsupported(kind.__name__)
        double_fn, mp_name, slope = entry
        (arg, error), *_ = [self.value(a) for a in expr.args]
        if kind in _TRIG:
            if self.mp and self.ctx.isfinite(arg) and arg != 0 and self.ctx.mag(arg) > MAX_TRIG_ARGUMENT_BITS:
                raise OutOfRange("a trigonometric argument too large to reduce")  # reduction costs its digits
            self.peak = max(self.peak, abs(arg))
        value = getattr(self.ctx, mp_name)(arg) if self.mp else _real(double_fn, arg)
        if not error:
            return value, abs(value) * self.u
        return value, slope(arg, value, self) * error + abs(value) * self.u

    def rounding(self, expr: sympy.Basic) -> tuple[Any, Any]:
        """Floor or ceiling: a value within rounding of an integer snaps to it (``\\log_2 8`` may land a hair
        below 3); one whose error straddles an integer is off by at most one."""
        arg, error = self.value(expr.args[0])
        up = isinstance(expr, sympy.ceiling)
        if self.mp and getattr(arg, "imag", 0) != 0:
            return (self.ctx.ceil(arg) if up else self.ctx.floor(arg)), self.zero
        real = arg.real if self.mp else arg
        nearest = self.ctx.nint(real) if self.mp else float(round(real))
        if abs(real - nearest) <= max(SAFETY * error, self.u * 2**12 * max(1, abs(real))):
            return nearest, self.zero
        floor = self.ctx.floor if self.mp else math.floor
        value = (
            (self.ctx.ceil(real) if up else self.ctx.floor(real))
            if self.mp
            else float(math.ceil(real) if up else math.floor(real))
        )
        straddles = bool(error) and floor(real - error) != floor(real + error)
        return value, ((self.ctx.one if self.mp else 1.0) if straddles else self.zero)

    def remainder(self, expr: sympy.Basic) -> tuple[Any, Any]:
        """``a mod b`` as ``a - b floor(a / b)``."""
        (a, ea), (b, eb) = self.value(expr.args[0]), self.value(expr.args[1])
        if b == 0 or (self.mp and (getattr(a, "imag", 0) or getattr(b, "imag", 0))):
            raise ZeroDivisionError("remainder by zero or of a complex number")
        quotient = a / b
        q_error = (ea + abs(quotient) * eb) / abs(b)
        whole = self.ctx.floor(quotient) if self.mp else float(math.floor(quotient))
        nearest = self.ctx.nint(quotient) if self.mp else float(round(quotient))
        if abs(quotient - nearest) <= max(SAFETY * q_error, self.u * 2**12 * max(1, abs(quotient))):
            whole = nearest
        value = a - b * whole
        return value, ea + abs(whole) * eb + abs(value) * self.u

    def gamma_like(self, expr: sympy.Basic) -> tuple[Any, Any]:
        args = [self.value(a) for a in expr.args]
        values = [v for v, _ in args]
        if self.mp:
            fn = {sympy.factorial: "factorial", sympy.gamma: "gamma", sympy.binomial: "binomial"}[type(expr)]
            value = getattr(self.ctx, fn)(*values)
        else:
            value = _real(_DOUBLE_GAMMA[type(expr)], *values)
        error = sum((e for _, e in args), self.zero)
        unit = self.u if self.mp else 1e-14  # math.gamma is good to a few units in the last place only
        if not error:
            return value, abs(value) * unit
        size = float(max(abs(v) for v in values))
        slope = abs(value) * (math.log(size + 2) + 1)  # |d/da log Γ(a)| <= log(a) + 1 for a >= 1
        return value, slope * error + abs(value) * unit

    def big_operator(self, expr: sympy.Sum | sympy.Product) -> tuple[Any, Any]:
        """A sum or product whose bounds are integers at this point, term by term (at most MAX_TERMS)."""
        index, lower, upper = expr.limits[0]
        lo, hi = _as_int(self.value(lower)[0]), _as_int(self.value(upper)[0])
        self.terms += max(0, hi - lo + 1)
        if self.terms > MAX_TERMS:  # counted over nested sums too
            raise Unsupported(f"more than {MAX_TERMS} terms")
        saved = self.subs.get(index)
        items = []
        for i in range(lo, hi + 1):
            self.subs[index] = (self.ctx.mpf(i) if self.mp else float(i)), self.zero
            items.append(self.value(expr.function))
        self.subs.pop(index)
        if saved is not None:
            self.subs[index] = saved
        if isinstance(expr, sympy.Product):
            return self.mul(items) if items else ((self.ctx.one if self.mp else 1.0), self.zero)
        return self.add(items) if items else (self.zero, self.zero)

    def sequence_term(self, expr: sympy.Basic) -> tuple[Any, Any]:
        """``F(k)``, a term of an unknown sequence: a fixed pseudo-random value per (name, integer index)."""
        index = _as_int(self.value(expr.args[0])[0])
        return self.rational(2**32 + zlib.crc32(f"{expr.func.__name__}:{index}".encode()), 2**32, literal=False)

    def integral(self, expr: sympy.Integral) -> tuple[Any, Any]:
        """A definite integral by mpmath's quadrature (doubles escalate); its error estimate is the error."""
        if not self.mp:
            raise _Escalate("quadrature runs in mpmath")
        ((variable, lower, upper),) = expr.limits
        a, b = self.value(lower)[0], self.value(upper)[0]
        if self.ctx.isfinite(a) and self.ctx.isfinite(b) and abs(b - a) > MAX_INTEGRATION_RANGE:
            raise Unsupported("an integration range too wide for quadrature")
        saved = dict(self.subs)

        def integrand(t: Any) -> Any:
            self.subs[variable] = t, self.zero
            self.terms += 1
            if self.terms > MAX_QUADRATURE_POINTS:
                raise Unsupported(f"more than {MAX_QUADRATURE_POINTS} quadrature points")
            return self.value(expr.function)[0]

        try:
            result, estimate = self.ctx.quad(integrand, [a, b], error=True)
        finally:
            self.subs = saved
        self.peak = max(self.peak, abs(result))
        return result, SAFETY * estimate + abs(result) * self.u


def _real(fn: Callable[..., float], *args: float) -> float:
    """A double function, escalating what doubles cannot hold (domain errors, overflow)."""
    try:
        value = fn(*args)
    except (ValueError, OverflowError) as exc:
        raise _Escalate(str(exc)) from exc
    if isinstance(value, complex) or math.isinf(value):
        raise _Escalate("beyond doubles")
    return value


def _as_int(value: Any) -> int:
    """An evaluated bound or index as an int; Unsupported unless it is (within rounding) an integer."""
    if isinstance(value, complex) or (hasattr(value, "imag") and value.imag != 0):
        raise Unsupported("complex index")
    real = float(value.real if hasattr(value, "real") else value)
    nearest = int(round(real))
    if abs(real - nearest) > 1e-9:
        raise Unsupported("non-integer bound or index")
    return nearest


def _gamma_binomial(n: float, k: float) -> float:
    return math.gamma(n + 1) / (math.gamma(k + 1) * math.gamma(n - k + 1))


def _complex_growth(arg: Any, ev: _Evaluator) -> Any:
    """``cosh(Im a)``: how much sine and cosine can amplify an error off the real line."""
    if ev.mp and getattr(arg, "imag", 0) != 0:
        return ev.ctx.cosh(arg.imag)
    return 1


def _inverse_root(arg: Any, value: Any, ev: _Evaluator) -> Any:
    """``1 / sqrt(|1 - a^2|)``: the slope of arcsine and arccosine (infinite at ±1)."""
    gap = abs(1 - arg * arg)
    return (1 / (ev.ctx.sqrt(gap) if ev.mp else math.sqrt(gap))) if gap else ev._inf()


# type -> (double function, mpmath name, |f'(a)| bound from (a, f(a), evaluator))
_FUNCTIONS: dict[type, tuple[Callable[..., float], str, Callable[[Any, Any, _Evaluator], Any]]] = {
    sympy.sin: (math.sin, "sin", lambda a, v, ev: _complex_growth(a, ev)),
    sympy.cos: (math.cos, "cos", lambda a, v, ev: _complex_growth(a, ev)),
    sympy.tan: (math.tan, "tan", lambda a, v, ev: 1 + abs(v) ** 2),
    sympy.cot: (lambda v: 1 / math.tan(v), "cot", lambda a, v, ev: 1 + abs(v) ** 2),
    sympy.sec: (lambda v: 1 / math.cos(v), "sec", lambda a, v, ev: abs(v) ** 2 + abs(v)),
    sympy.csc: (lambda v: 1 / math.sin(v), "csc", lambda a, v, ev: abs(v) ** 2 + abs(v)),
    sympy.asin: (math.asin, "asin", _inverse_root),
    sympy.acos: (math.acos, "acos", _inverse_root),
    sympy.atan: (math.atan, "atan", lambda a, v, ev: 1 / abs(1 + a * a) if a * a != -1 else ev._inf()),
    sympy.sinh: (math.sinh, "sinh", lambda a, v, ev: abs(v) + 1),
    sympy.cosh: (math.cosh, "cosh", lambda a, v, ev: abs(v)),
    sympy.tanh: (math.tanh, "tanh", lambda a, v, ev: 1 + abs(v) ** 2),
    sympy.exp: (math.exp, "exp", lambda a, v, ev: abs(v)),
    sympy.log: (math.log, "log", lambda a, v, ev: 1 / abs(a) if a != 0 else ev._inf()),
    sympy.Abs: (abs, "absmax", lambda a, v, ev: 1),
}
_DOUBLE_GAMMA: dict[type, Callable[..., float]] = {
    sympy.factorial: lambda v: math.gamma(v + 1),
    sympy.gamma: math.gamma,
    sympy.binomial: _gamma_binomial,
}
_TRIG = {sympy.sin, sympy.cos, sympy.tan, sympy.cot, sympy.sec, sympy.csc}


def tolerance(ax: Any, ay: Any, rtol: float, floor: float) -> Any:
    """Allowed ``|x - y|``: `rtol` times the larger size (at least `floor`). With a floor (a decimal
    approximation) the difference must also stay under 1e-3 relative, so ``.0000672`` is not ``.0000673``
    while ``0.333333`` still is ``1/3``."""
    size = max(ax, ay)
    allowed = rtol * max(size, floor)
    return min(allowed, APPROX_RELATIVE_CAP * size) if floor > 0 else allowed


def _is_real(value: Any, error: Any) -> bool:
    return abs(getattr(value, "imag", 0)) <= SAFETY * error


def _judge(ev: _Evaluator, x: tuple[Any, Any], y: tuple[Any, Any], approx: bool, accept: Any, domain: bool) -> Any:
    """The verdict of one evaluation: False (different beyond the errors and tolerance), True (equal, with
    errors at most `accept` of the size), `NO_EVIDENCE` or `UNDECIDED`."""
    (fx, ex), (fy, ey) = x, y
    size, error = max(abs(fx), abs(fy)), ex + ey
    if size == 0 and error == 0:
        return NO_EVIDENCE  # both vanish exactly: 0 = 0 says nothing about the functions
    if domain and ev.mp and _is_real(fx, ex) != _is_real(fy, ey):
        return NO_EVIDENCE  # one side real, the other not: outside the common domain
    diff = abs(fx - fy)
    allowed = tolerance(abs(fx), abs(fy), APPROX_RTOL, 1.0) if approx else 0
    if diff > SAFETY * error + allowed:
        return False
    vanishing = size <= SAFETY * error  # both consistent with zero: their size is that of their terms
    scale = max(size, ev.peak) if vanishing else size
    if approx:
        return True if diff + SAFETY * error <= allowed else UNDECIDED
    return True if error <= accept * scale else UNDECIDED


def _evaluate(x: sympy.Basic, y: sympy.Basic, subs: dict, ctx: Any) -> tuple[_Evaluator, Any, Any]:
    ev = _Evaluator(subs, ctx)
    return ev, ev.value(x), ev.value(y)


def _finite(ev: _Evaluator, *values: tuple[Any, Any]) -> bool:
    if ev.mp:
        return all(ev.ctx.isfinite(v) for v, _ in values)
    return all(math.isfinite(v) for v, _ in values)


def _double_verdict(x: sympy.Basic, y: sympy.Basic, subs: dict, approx: bool, quick: bool) -> Any:
    """Doubles: False when they prove a difference, True only for `quick` agreement to 1e-10 (points after
    the first), None when the pair needs mpmath."""
    try:
        ev, fx, fy = _evaluate(x, y, subs, None)
    except (_Escalate, ZeroDivisionError, OverflowError, ValueError):
        return None
    if not _finite(ev, fx, fy):
        return None
    verdict = _judge(ev, fx, fy, approx, QUICK_RTOL if quick else 0, domain=False)
    if verdict is False or (verdict is True and (quick or approx)):
        return verdict  # a tolerance of 1e-6 is far above double rounding: doubles settle approximations
    return None


def _mp_verdict(
    x: sympy.Basic, y: sympy.Basic, subs: dict, approx: bool, digits: int, target: float, domain: bool
) -> Any:
    """One mpmath evaluation at `digits`, equal only with errors below ``10^-target`` of the size: (verdict, the
    digits to try next, the digits the pair asks for)."""
    ctx = _context(digits)
    try:
        ev, fx, fy = _evaluate(x, y, subs, ctx)
    except (ZeroDivisionError, ValueError):  # a pole (``\\cot 0``, ``(-1)!``) is not a finite number
        return None, 0, 0.0
    if not _finite(ev, fx, fy):
        return None, 0, 0.0
    accept = ctx.mpf(10) ** -max(target, ev.need)
    verdict = _judge(ev, fx, fy, approx, accept, domain)
    wanted = int(ev.need) + ACCEPT_MARGIN_DIGITS
    if verdict != UNDECIDED:
        return verdict, wanted, ev.need
    if not ctx.isfinite(fx[1] + fy[1]):
        return UNDECIDED, MAX_DIGITS + 1, ev.need
    size = max(abs(fx[0]), abs(fy[0]), ev.peak, ctx.mpf(10) ** -digits)
    lost = float((ctx.mag(fx[1] + fy[1]) - ctx.mag(size * ev.u)) * _LOG10_2)  # digits the evaluation lost
    return UNDECIDED, max(int(max(target, ev.need) + lost) + 20, wanted, digits + 20), ev.need


def close_at(
    x: sympy.Basic, y: sympy.Basic, subs: dict, approx: bool, quick: bool = False, domain: bool = False
) -> Any:
    """Whether `x` and `y` agree at the point `subs` (rationals), exactly or, with `approx`, within the tolerance.

    `quick` accepts agreement in doubles (1e-10 relative) without mpmath: for the points after the first.
    `domain`: a point where one side is real and the other is not is no evidence (the answers have symbols).

    Returns:
        True or False; None when a side is not a finite number; `NO_EVIDENCE`; `UNDECIDED` when
        `MAX_DIGITS` cannot tell.

    Raises:
        Unsupported: A node type this evaluator does not know (`OutOfRange`: a value too large at this point).
    """
    verdict = _double_verdict(x, y, subs, approx, quick)
    if verdict is not None:
        return verdict
    verdict, wanted, need = _mp_verdict(x, y, subs, approx, FIRST_DIGITS, FIRST_TARGET, domain)
    if _settled(verdict) or (verdict is True and (approx or x.has(sympy.Integral) or y.has(sympy.Integral))):
        return verdict  # integrals are not confirmed: quadrature's own error, not the values, would decide
    # equal (or undecided) at 50 digits: confirm to the accuracy the pair asks for, raising precision by the
    # digits each evaluation lost
    target = max(CONFIRM_TARGET, need)
    digits = max(CONFIRM_DIGITS, wanted)
    while digits <= MAX_DIGITS:
        verdict, wanted, need = _mp_verdict(x, y, subs, approx, digits, target, domain)
        if _settled(verdict) or (verdict is True and need <= target):
            return verdict
        target = max(target, need)
        digits = max(wanted, digits + 20)
    return UNDECIDED


def _settled(verdict: Any) -> bool:
    """A verdict more digits cannot change: a proven difference, a side not finite, no evidence."""
    return verdict is False or verdict is None or verdict == NO_EVIDENCE


def magnitude(expr: sympy.Basic) -> float:
    """``|expr|`` for a constant expression (inf when it is too large for doubles); sympy's `N` only for a node
    type the evaluator does not know."""
    try:
        return abs(float(_Evaluator({}).value(expr)[0]))
    except (_Escalate, ValueError, ZeroDivisionError):
        pass
    except Unsupported:
        return float(abs(sympy.N(expr, 5)))
    try:
        value = abs(_Evaluator({}, MP).value(expr)[0])
    except (Unsupported, ValueError, ZeroDivisionError):
        return math.inf
    return float(value) if MP.isfinite(value) else math.inf


def judge_values(fx: Any, fy: Any, approx: bool, digits: int) -> Any:
    """`close_at`'s verdict for two mpmath values known to `digits` significant digits (sympy's `evalf`)."""
    ev = _Evaluator({}, MP)
    unit = MP.mpf(10) ** -digits
    return _judge(ev, (fx, abs(fx) * unit), (fy, abs(fy) * unit), approx, unit * 10**5, domain=False)


def rational_ratio(x: sympy.Basic, y: sympy.Basic, subs: dict) -> sympy.Rational | None:
    """``x / y`` at the point `subs` when it is a rational number of modest size (``3`` for ``3x - 6y + 9`` against
    ``x - 2y + 3``), computed at 50 digits and recognised within 1e-30; None otherwise (or where `y` vanishes)."""
    try:
        ev = _Evaluator(subs, MP)
        (fx, ex), (fy, ey) = ev.value(x), ev.value(y)
    except (Unsupported, ZeroDivisionError, ValueError):
        return None
    if not (MP.isfinite(fx) and MP.isfinite(fy)) or abs(fy) <= SAFETY * ey or abs(fx) <= SAFETY * ex:
        return None
    ratio = fx / fy
    if abs(getattr(ratio, "imag", 0)) > abs(ratio) * MP.mpf(10) ** -30:
        return None
    real = MP.mpf(ratio.real)
    sign, man, exp, _ = real._mpf_
    exact = Fraction((-1) ** sign * int(man)) * Fraction(2) ** int(exp)
    guess = exact.limit_denominator(10**6)
    if abs(real - MP.mpf(guess.numerator) / guess.denominator) > abs(real) * MP.mpf(10) ** -30:
        return None
    return sympy.Rational(guess.numerator, guess.denominator)


def rounded(expr: sympy.Basic, places: int) -> int | None:
    """``expr`` (a constant: no free symbols) times ``10^places``, rounded half away from zero, as an integer: the
    digits of ``expr`` rounded to `places` decimal places. Exact for a rational; otherwise evaluated with error
    bounds at rising precision (up to `MAX_DIGITS`) until the bounds fall on one side of a rounding boundary.
    None when the value is not a finite real number, is too large, or sits too near a boundary to tell."""
    if expr.free_symbols:
        return None
    if isinstance(expr, sympy.Rational):
        p, q = int(expr.p), int(expr.q)
        if _sig_digits(p) - _sig_digits(q) + places > MAX_DIGITS:
            return None
        scaled = abs(p) * 10**places
        half_up = (2 * scaled + q) // (2 * q)
        return half_up if p >= 0 else -half_up
    digits = FIRST_DIGITS + places
    while digits <= MAX_DIGITS:
        ctx = _context(digits)
        try:
            value, error = _Evaluator({}, ctx).value(expr)
        except (Unsupported, ZeroDivisionError, ValueError, OverflowError):
            return None
        if not ctx.isfinite(value) or not ctx.isfinite(error) or not _is_real(value, error):
            return None
        real, spread = ctx.re(value), SAFETY * error
        if real != 0 and float(ctx.mag(real)) * _LOG10_2 + places + 10 > MAX_DIGITS:
            return None  # more integer digits than any evaluation here carries
        scale = ctx.mpf(10) ** places
        low, high = _half_away(ctx, (real - spread) * scale), _half_away(ctx, (real + spread) * scale)
        if low == high:
            return low
        digits *= 2
    return None


def _half_away(ctx: Any, x: Any) -> int:
    """``x`` rounded to an integer, halves away from zero (a non-decreasing function of ``x``)."""
    return int(ctx.floor(x + ctx.mpf(0.5))) if x >= 0 else -int(ctx.floor(-x + ctx.mpf(0.5)))
