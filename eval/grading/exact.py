"""Exact equality of rational functions: both sides evaluated modulo large primes at fixed points.

Two polynomials or rational functions with rational coefficients (``x^{9900}(\\frac{1+x^{100}}{2})^2`` and its
expansion) are compared without expanding them and without floating point: each side is evaluated in the
field of integers modulo a prime ``p`` at pseudo-random residues for its symbols. Evaluation modulo ``p`` is a
ring homomorphism wherever no denominator vanishes modulo ``p``, so one point where the residues differ proves
the functions different; if they are different, a point chosen independently of them agrees with probability
at most ``degree / p`` (Schwartz-Zippel), about 1e-12 here for degrees up to 10^6, and three points on two
primes must all agree. Exponents are used by fast modular exponentiation, so ``x^{10^6}`` costs microseconds,
and values never under- or overflow: the scale of a value plays no part. Anything that is not a rational
function (roots, ``\\pi``, functions, sums, symbolic exponents) is left to the numeric comparison.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import sympy

PRIMES = (2**61 - 1, 2**89 - 1)
MAX_DEGREE = 10**9  # beyond, degree / p stops being negligible for the smaller prime
_POINTS = 3


class NotRational(Exception):
    """The expression is not a rational function with rational coefficients (or a point was unlucky)."""


@lru_cache(maxsize=4096)
def _residue(symbol: sympy.Symbol, point: int, prime: int) -> int:
    """A fixed pseudo-random residue per (symbol name, point, prime): the same on every run and machine."""
    digest = hashlib.blake2b(f"{symbol.name}:{point}:{prime}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big") % prime


def _value(expr: sympy.Basic, point: dict[sympy.Basic, int], prime: int) -> int:
    if isinstance(expr, sympy.Rational):
        q = int(expr.q) % prime
        if q == 0:
            raise NotRational("a denominator divisible by the prime")
        return int(expr.p) * pow(q, -1, prime) % prime
    if isinstance(expr, sympy.Symbol):
        return point[expr]
    if isinstance(expr, sympy.Add):
        return sum(_value(a, point, prime) for a in expr.args) % prime
    if isinstance(expr, sympy.Mul):
        product = 1
        for a in expr.args:
            product = product * _value(a, point, prime) % prime
        return product
    if isinstance(expr, sympy.Pow) and isinstance(expr.exp, sympy.Integer) and abs(int(expr.exp)) <= MAX_DEGREE:
        base = _value(expr.base, point, prime)
        if base == 0 and expr.exp < 0:
            raise NotRational("a pole at the point")
        return pow(base, int(expr.exp), prime)
    raise NotRational(type(expr).__name__)


def is_rational_function(expr: sympy.Basic) -> bool:
    """Whether `expr` is built from rationals and symbols by +, * and integer powers only (cheap tree walk)."""
    if isinstance(expr, (sympy.Rational, sympy.Symbol)):
        return True
    if isinstance(expr, (sympy.Add, sympy.Mul)):
        return all(is_rational_function(a) for a in expr.args)
    if isinstance(expr, sympy.Pow):
        return (
            isinstance(expr.exp, sympy.Integer)
            and abs(int(expr.exp)) <= MAX_DEGREE
            and is_rational_function(expr.base)
        )
    return False


def rational_functions_equal(x: sympy.Basic, y: sympy.Basic) -> bool | None:
    """True or False when both sides are rational functions of at least one symbol (decided exactly, see the
    module docstring); None when either is not one, when there is no symbol, or when fewer than two points
    avoided every pole modulo the primes."""
    if not (is_rational_function(x) and is_rational_function(y)):
        return None
    symbols = sorted(x.free_symbols | y.free_symbols, key=lambda s: s.name)
    if not symbols:
        return None  # constants are exact rationals already: residues could only add collisions
    tried = 0
    for prime in PRIMES:
        for k in range(_POINTS):
            point = {s: _residue(s, k, prime) for s in symbols}
            try:
                same = _value(x, point, prime) == _value(y, point, prime)
            except NotRational:
                continue  # a denominator vanishing at this point (or this prime): try the next
            if not same:
                return False
            tried += 1
    return True if tried >= 2 else None
