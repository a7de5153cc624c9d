"""Exact equality of rational functions: both sides evaluated modulo large primes at fixed points.

Two polynomials or rational functions with rational coefficients (``x^{9900}(\\frac{1+x^{100}}{2})^2`` and its
expansion) are compared without expanding them and without floating point: each side is evaluated in the
field of integers modulo a prime ``p`` at pseudo-random residues for its symbols. Evaluation modulo ``p`` is a
ring homomorphism wherever no denominator vanishes modulo ``p``, so one point where the residues differ proves
the functions different; if they are different, a point chosen independently of them agrees with probability
at most ``degree / p`` (Schwartz-Zippel), about 1e-12 here for degrees up to 10^6, and three points on two
primes must all agree. Exponents are used by fast modular exponentiation, so ``x^{10^6}`` costs microseconds,
and values never under- or overflow: the scale of a value plays no part. Anything that is not a rational
function (roots, ``\\pi``, functions, symbolic exponents, sums with symbolic bounds) is left to the numeric
comparison. A sum or product between integer bounds of rational terms is the rational function it spells out
(``\\sum_{k=0}^{999} x^{k}``), its index's powers exact integers (`MAX_TERMS` terms at most, as the numeric
evaluator allows).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from functools import lru_cache

import sympy

from eval.grading.numeric import MAX_TERMS  # the terms one evaluation may sum, as numerically

PRIMES = (2**61 - 1, 2**89 - 1)
MAX_DEGREE = 10**9  # beyond, degree / p stops being negligible for the smaller prime
_POINTS = 3


class NotRational(Exception):
    """The expression is not a rational function with rational coefficients (or a point was unlucky)."""


class _UnluckyPrime(NotRational):
    """A constant's denominator is divisible by the prime: the expression is rational, this prime cannot read it."""


@lru_cache(maxsize=4096)
def _residue(symbol: sympy.Symbol, point: int, prime: int) -> int:
    """A fixed pseudo-random residue per (symbol name, point, prime): the same on every run and machine."""
    digest = hashlib.blake2b(f"{symbol.name}:{point}:{prime}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big") % prime


Evaluator = Callable[[list[int]], int]


class _Slots:
    """Where each symbol's value sits in the list an evaluator reads: the free symbols first (in the order given),
    then one slot per summation index, so that a nested sum over the same name shadows the outer one."""

    def __init__(self, symbols: list[sympy.Basic]):
        self.free = {s: i for i, s in enumerate(symbols)}
        self.size = len(symbols)

    def new(self) -> int:
        self.size += 1
        return self.size - 1


def _compile(expr: sympy.Basic, prime: int, slots: _Slots, bound: dict[sympy.Basic, int]) -> Evaluator:
    """``expr`` as a function from the residues of its free symbols (and the integer values of the ``bound``
    indices of the sums and products around it, each in its slot) to its residue modulo ``prime``: the tree is
    walked once, not at every point and every term.

    Raises:
        NotRational: ``expr`` is not a rational function (or a constant's denominator is divisible by ``prime``).
    """
    if isinstance(expr, sympy.Rational):
        q = int(expr.q) % prime
        if q == 0:
            raise _UnluckyPrime("a denominator divisible by the prime")
        constant = int(expr.p) * pow(q, -1, prime) % prime
        return lambda env: constant
    if isinstance(expr, sympy.Symbol):
        if expr in bound:
            slot = bound[expr]
            return lambda env: env[slot] % prime
        slot = slots.free[expr]
        return lambda env: env[slot]
    if isinstance(expr, (sympy.Add, sympy.Mul)):
        parts = [_compile(a, prime, slots, bound) for a in expr.args]
        if isinstance(expr, sympy.Add):
            return lambda env: sum(part(env) for part in parts) % prime

        def product(env: list[int]) -> int:
            value = 1
            for part in parts:
                value = value * part(env) % prime
            return value

        return product
    if isinstance(expr, sympy.Pow):
        return _compile_power(expr, prime, slots, bound)
    if isinstance(expr, (sympy.Sum, sympy.Product)):
        return _compile_big_operator(expr, prime, slots, bound)
    raise NotRational(type(expr).__name__)


def _compile_power(expr: sympy.Pow, prime: int, slots: _Slots, bound: dict[sympy.Basic, int]) -> Evaluator:
    """An integer power: a literal exponent, or one that is a polynomial with integer coefficients in the indices
    of enclosing sums (``x^{k}``, ``x^{2k+1}``), whose size is checked at every term."""
    base = _compile(expr.base, prime, slots, bound)
    if isinstance(expr.exp, sympy.Integer):
        exponent = int(expr.exp)
        if abs(exponent) > MAX_DEGREE:
            raise NotRational("an exponent beyond the degree bound")

        def literal_power(env: list[int]) -> int:
            value = base(env)
            if value == 0 and exponent < 0:
                raise NotRational("a pole at the point")
            return pow(value, exponent, prime)

        return literal_power
    exponent_of = _integer_of(expr.exp, bound)
    last = [-1, 0, 0]  # base, exponent, power at the previous term: x^{k+1} is one product away from x^{k}

    def power(env: list[int]) -> int:
        exponent, value = exponent_of(env), base(env)
        if abs(exponent) > MAX_DEGREE:
            raise NotRational("an exponent beyond the degree bound")
        if value == 0 and exponent < 0:
            raise NotRational("a pole at the point")
        if value == last[0] and exponent == last[1] + 1 and exponent > 0:
            result = last[2] * value % prime
        else:
            result = pow(value, exponent, prime)
        last[:] = value, exponent, result
        return result

    return power


def _integer_of(expr: sympy.Basic, bound: dict[sympy.Basic, int]) -> Evaluator:
    """An exponent built from integers and bound indices by +, * and small non-negative integer powers, as an
    exact integer function of the indices' values."""
    if isinstance(expr, sympy.Integer):
        value = int(expr)
        return lambda env: value
    if isinstance(expr, sympy.Symbol) and expr in bound:
        slot = bound[expr]
        return lambda env: env[slot]
    if isinstance(expr, (sympy.Add, sympy.Mul)):
        parts = [_integer_of(a, bound) for a in expr.args]
        if isinstance(expr, sympy.Add):
            return lambda env: sum(part(env) for part in parts)
        return lambda env: math.prod(part(env) for part in parts)
    if isinstance(expr, sympy.Pow) and isinstance(expr.exp, sympy.Integer) and 0 <= int(expr.exp) <= 3:
        base, exponent = _integer_of(expr.base, bound), int(expr.exp)
        return lambda env: base(env) ** exponent
    raise NotRational("an exponent that is not an integer polynomial in the summation indices")


def _compile_big_operator(
    expr: sympy.Sum | sympy.Product, prime: int, slots: _Slots, bound: dict[sympy.Basic, int]
) -> Evaluator:
    """A sum or product over one index between literal integer bounds (at most `MAX_TERMS` terms, nested ones
    counted together), term by term: ``\\sum_{k=0}^{999} x^{k}`` is the polynomial it spells out."""
    if len(expr.limits) != 1:
        raise NotRational("a sum over several indices")
    (index, lower, upper) = expr.limits[0]
    if not (isinstance(lower, sympy.Integer) and isinstance(upper, sympy.Integer)) or upper < lower - 1:
        raise NotRational("bounds that are not integers in order")
    lo, hi = int(lower), int(upper)
    if (hi - lo + 1) * _terms(expr.function) > MAX_TERMS:
        raise NotRational(f"more than {MAX_TERMS} terms")
    slot = slots.new()
    term = _compile(expr.function, prime, slots, {**bound, index: slot})

    if isinstance(expr, sympy.Sum):

        def big_sum(env: list[int]) -> int:
            total = 0
            for i in range(lo, hi + 1):
                env[slot] = i
                total += term(env)
            return total % prime

        return big_sum

    def big_product(env: list[int]) -> int:
        total = 1
        for i in range(lo, hi + 1):
            env[slot] = i
            total = total * term(env) % prime
        return total

    return big_product


def _terms(expr: sympy.Basic) -> int:
    """Terms evaluated for one value of the enclosing indices: the product of the nested ranges' lengths."""
    count = 1
    for big in expr.atoms(sympy.Sum, sympy.Product):
        for _, lower, upper in big.limits:
            if isinstance(lower, sympy.Integer) and isinstance(upper, sympy.Integer):
                count *= max(int(upper) - int(lower) + 1, 1)
    return count


def rational_functions_equal(x: sympy.Basic, y: sympy.Basic) -> bool | None:
    """True or False when both sides are rational functions of at least one symbol (decided exactly, see the
    module docstring); None when either is not one, when there is no symbol, or when fewer than two points
    avoided every pole modulo the primes."""
    symbols = sorted(x.free_symbols | y.free_symbols, key=lambda s: s.name)
    if not symbols:
        return None  # constants are exact rationals already: residues could only add collisions
    tried = 0
    for prime in PRIMES:
        slots = _Slots(symbols)
        try:
            sides = _compile(x, prime, slots, {}), _compile(y, prime, slots, {})
        except _UnluckyPrime:
            continue  # a constant's denominator divisible by this prime: the other prime decides
        except NotRational:
            return None  # not a rational function: the numeric comparison decides
        for k in range(_POINTS):
            point = [_residue(s, k, prime) for s in symbols] + [0] * (slots.size - len(symbols))
            try:
                same = sides[0](point) == sides[1](point)
            except NotRational:
                continue  # a denominator vanishing at this point (or this prime): try the next
            if not same:
                return False
            tried += 1
    return True if tried >= 2 else None
