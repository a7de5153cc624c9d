"""Comparison options for `eval.grading.grader.grade`, `grade_answer`, `verify` and `grade_many` (issue 33).

`GradeOptions()` is limo's own behaviour, and every default keeps it: with no options no verdict changes. The
options are the comparison settings a caller migrating from math-verify needs, so that both graders can be held
to the same setting (`GradeOptions.from_math_verify` maps math-verify's ``verify`` arguments):

- ``precision`` (math-verify's ``float_rounding``): None (default) compares a decimal with limo's rules — within
  1e-6 relative, so ``0.333333`` is 1/3 and ``16.33`` is not 49/3. An int ``n`` (0 to `MAX_PRECISION`) compares a
  decimal written alone (``0.33``, ``-2.6667``; also inside a tuple, interval or matrix, item by item) against a
  constant value by rounding both to ``n`` decimal places, half away from zero: at ``n = 2`` ``0.33`` is 1/3 and
  ``2.6667`` is 8/3, at ``n = 6`` ``3.14159`` is not π. Decimals inside an expression (``x + 1.414i``) keep the
  1e-6 rule, as in math-verify, which rounds only bare numbers.
- ``strict`` (math-verify's ``strict``): True (default) — variable names matter (``f(x)`` is not ``f(y)``).
  False: where the two answers differ, the letters only the answer uses are renamed one-to-one onto the letters
  only the gold uses (every pairing tried, at most `MAX_RENAMED` letters; letters both use keep their names), so
  ``f(y)`` is ``f(x)`` and ``a + 2b`` is ``2x + y``, while ``x - y`` is still not ``y - x``.
- ``set_relation`` (math-verify's ``allow_set_relation_comp``, with limo's default): True (default) — an
  inequality answers a gold written as a set of reals (``-2 \\le x \\le 7`` for ``x \\in [-2, 7]`` or ``[-2, 7]``),
  as issue 12's forms require. False: a gold written as a set (an interval, a union, ``x \\in S``) is not
  answered by an inequality, math-verify's default asymmetry; a gold inequality is still answered by a set.

The options act only inside the comparison of two parsed answers: they never reach text handling, no option
text is ever parsed, and every step they add runs under the call's time limit (renaming is at most `MAX_RENAMED`!
more comparisons; rounding evaluates constants with `eval.grading.numeric`, never sympy string evaluation).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
MAX_PRECISION = 50  # decimal places; beyond, a rounding says nothing limo's exact comparison does not
MAX_RENAMED = 3  # letters renamed one-to-one under ``strict=False``: 3! = 6 pairings at most
MATH_VERIFY_FLOAT_ROUNDING = 6  # math-verify's own default for ``float_rounding``


@dataclass(frozen=True)
class GradeOptions:
    """How two answers are compared; the defaults are limo's behaviour (see the module docstring).

    Attributes:
        precision: None for limo's decimal rules, or the decimal places (0 to `MAX_PRECISION`) to which a lone
            decimal and the constant it is compared with are both rounded (math-verify's ``float_rounding``).
        strict: Whether variable names matter (math-verify's ``strict``).
        set_relation: Whether an inequality may answer a gold written as a set of reals (math-verify's
            ``allow_set_relation_comp``, which defaults to False there).
    """

    precision: int | None = None
    strict: bool = True
    set_relation: bool = True

    def __post_init__(self) -> None:
        if self.precision is not None:
            if isinstance(self.precision, bool) or not isinstance(self.precision, int):
                raise TypeError(f"precision must be an int or None, got {self.precision!r}")
            if not 0 <= self.precision <= MAX_PRECISION:
                raise ValueError(f"precision must be between 0 and {MAX_PRECISION}, got {self.precision}")
        for name in ("strict", "set_relation"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @classmethod
    def from_math_verify(
        cls,
        *,
        float_rounding: int = MATH_VERIFY_FLOAT_ROUNDING,
        strict: bool = True,
        allow_set_relation_comp: bool = False,
    ) -> GradeOptions:
        """The options matching math-verify's ``verify(..., float_rounding=, strict=, allow_set_relation_comp=)``,
        with math-verify's defaults for those left out."""
        return cls(precision=float_rounding, strict=strict, set_relation=allow_set_relation_comp)


DEFAULT_OPTIONS = GradeOptions()
_CURRENT: contextvars.ContextVar[GradeOptions] = contextvars.ContextVar("grade_options", default=DEFAULT_OPTIONS)


def current() -> GradeOptions:
    """The options of the grading call in progress in this thread (the defaults outside one)."""
    return _CURRENT.get()


def run_with(options: GradeOptions, fn: Callable[[], T]) -> T:
    """``fn()`` with `options` in effect for the comparison rules it reaches; nothing changes outside it."""
    in_effect = _CURRENT.get()
    if options is in_effect:  # the usual case: the defaults, or a nested call passing the options on
        return fn()
    if not isinstance(options, GradeOptions):
        raise TypeError(f"options must be a GradeOptions, got {type(options).__name__}")
    if options == in_effect:
        return fn()
    return contextvars.copy_context().run(_set_then_call, options, fn)


def _set_then_call(options: GradeOptions, fn: Callable[[], T]) -> T:
    _CURRENT.set(options)  # inside a copied context: discarded with it
    return fn()
