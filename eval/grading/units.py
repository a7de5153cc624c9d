"""Numbers with units and in scientific notation (Minerva's answers), read without evaluating text.

A Minerva gold is a number stated to its precision (``1.6``, ``4.5e33``, ``3.83e35``); a response says
``1.62 \\mathrm{~cm}`` or ``4.5 \\times 10^{33} \\mathrm{erg/s}``. `split_quantity` cuts a leading number
(decimal, ``a e b``, ``a \\times 10^{b}``, ``a \\cdot 10^b``, ``10^{b}``) from a trailing unit made of letters,
``\\mathrm{}`` / ``\\text{}`` groups, ``/``, ``^`` and ``~`` only; `same_quantity` says whether the prediction
rounds to the gold at the gold's last stated digit (less than half a unit there either way), so ``1.62`` is ``1.6``
but ``1.66`` is not, and an integer gold (``300``) needs 299.5 to 300.5. Units are not converted: a gold
has none in these files, and a prediction's unit is taken as the one the question asked for. Parsing is
a regular expression and `decimal.Decimal` on matched digits only; lengths are capped before parsing.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

MAX_CHARS = 200
_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?"
_QUANTITY = re.compile(
    rf"^\s*\$?\s*(?P<mant>{_NUMBER})\s*"
    r"(?:(?:[eE](?P<e1>[-+]?\d{1,4}))"
    r"|(?:(?:\\times|\\cdot|\*|x|×)\s*10\s*\^\s*\{?\s*(?P<e2>[-+−]?\d{1,4})\s*\}?))?"
    r"\s*(?P<unit>.*?)\s*\$?\s*\.?\s*$",
    re.DOTALL,
)
_POWER_ONLY = re.compile(r"^\s*\$?\s*10\s*\^\s*\{?\s*(?P<e>[-+−]?\d{1,4})\s*\}?\s*(?P<unit>.*?)\s*\$?\s*$", re.DOTALL)
_UNIT = re.compile(
    r"^(?:[A-Za-zµμΩÅ°%~/\s\-^{}()\d.,]|\\(?:mathrm|text|mbox|rm|mu|Omega|circ|AA|operatorname|cdot|[,;!]))*$"
)

_VARIABLES = set("abcijknpqrtxyz")


def _unit_ok(unit: str) -> bool:
    """Whether the text after a number is a unit (``\\mathrm{~cm}``, ``erg/s``, ``m^{-2}``), not more maths."""
    if not unit:
        return True
    if unit.strip() in _VARIABLES:  # ``2x`` is an expression, not 2 of a unit x
        return False
    if not re.search(r"[A-Za-zµμΩÅ°%]", unit) or not _UNIT.match(unit):
        return False
    bare = re.sub(r"\\(?:mathrm|text|mbox|rm|operatorname)", "", unit)
    return not re.search(r"(?<![\^{\-])\b\d", bare)  # digits only as exponents (m^2, s^{-1})


def split_quantity(text: str) -> tuple[Decimal, int, str] | None:
    """``(value, exponent of the last stated digit, unit)`` of a number with an optional unit, else None.

    ``4.5e33`` -> (4.5E+33, 32, ""); ``1.6 \\mathrm{~cm}`` -> (1.6, -1, "\\mathrm{~cm}").
    """
    if len(text) > MAX_CHARS:
        return None
    text = text.replace("−", "-")
    m = _QUANTITY.match(text)
    if m and re.search(r"\d", m.group("mant") or ""):
        mantissa, unit = m.group("mant").replace(",", ""), m.group("unit")
        exponent = int((m.group("e1") or m.group("e2") or "0").replace("−", "-"))
    else:
        m = _POWER_ONLY.match(text)
        if not m:
            return None
        mantissa, unit, exponent = "1", m.group("unit"), int(m.group("e").replace("−", "-"))
    if not _unit_ok(unit):
        return None
    try:
        value = Decimal(mantissa).scaleb(exponent)
    except InvalidOperation:
        return None
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return value, exponent - decimals, unit


def same_quantity(gold: str, pred: str) -> tuple[bool, str] | None:
    """Whether ``pred`` rounds to ``gold`` at the gold's stated precision (units set aside); None when
    either side is not a number with an optional unit."""
    g, p = split_quantity(gold), split_quantity(pred)
    if g is None or p is None:
        return None
    half = Decimal(5).scaleb(g[1] - 1)
    same = abs(p[0] - g[0]) < half  # half-open: 927.5 is not 928 (nor 927)
    return same, f"numbers with units compared at the gold's precision (±{half.normalize():E})"
