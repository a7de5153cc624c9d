"""The values an answer parses into: a scalar, a sequence (tuple, list, set, interval), a relation,
a matrix, a base-``b`` numeral or a piece of text.

They are frozen dataclasses so parses can be cached and shared. A scalar keeps `approx`: whether a
decimal literal went into it, which is the only case where comparison uses a tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import sympy


@dataclass(frozen=True)
class Scalar:
    """One number or expression, as a sympy object built directly from whitelisted tokens."""

    expr: sympy.Basic
    approx: bool = False


@dataclass(frozen=True)
class Seq:
    """Several values. `kind` is ``tuple`` (ordered), ``list``/``set``/``pm`` (unordered; ``pm`` is the pair
    ``±`` makes, expanded inside a list) or ``interval``."""

    kind: str
    items: tuple[Value, ...]
    left: str = ""
    right: str = ""


@dataclass(frozen=True)
class Relation:
    """``lhs op rhs`` with op one of ``= != < <= > >=``."""

    op: str
    lhs: Value
    rhs: Value


@dataclass(frozen=True)
class Matrix:
    """A matrix or vector, rows of values."""

    rows: tuple[tuple[Value, ...], ...]


@dataclass(frozen=True)
class BaseNumeral:
    """A numeral with a base subscript such as ``4210_5``; compared by digits and base, never converted."""

    digits: str
    base: str


@dataclass(frozen=True)
class Text:
    """Words (``Sunday``, ``No``, a choice letter), compared case-insensitively."""

    text: str


@dataclass(frozen=True)
class UnionOf:
    """A union of intervals or sets (``[0,1) ∪ (2,3]``); order does not matter."""

    parts: tuple[Value, ...]


Value = Union[Scalar, Seq, Relation, Matrix, BaseNumeral, Text, UnionOf]
