"""A whitelisting tokenizer and recursive-descent parser for normalised answers.

Grammar (lowest precedence first): list (``,`` ``;``; ``±`` items expand into two) > relation (``= != < <=
> >=``; a chain ``z = 1 + 3 = 4`` keeps its ends) > ratio (``a : b`` is a/b) > union (``∪``) > sum (``+ -
±``) > term (``* /``, ``mod``, implicit multiplication; matrices add and multiply) > unary minus > power
(``^``, right associative) > postfix ``!`` > atom (number, name, call, bracket, ``sum``/``prod``, a
definite ``integral_a^b ... dx`` kept unevaluated). Every token is whitelisted; anything
else raises `ParseError`, so no text ever reaches Python or sympy evaluation. Sympy objects are built
directly (`Integer`, `Rational`, `Symbol`, `Add`, `Mul`, `Pow`, ...).

Size guards run *before* sympy evaluates anything: literal digits, power results (estimated digits of
``b^n``), factorial and binomial arguments, rational sizes and recursion depth, so an exponent tower
or a million-digit literal is refused in microseconds instead of being computed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache, partial

import sympy
import sympy.tensor.tensor  # noqa: F401  sympy's Add imports it lazily (~25 ms, with combinatorics) on some sums

from eval.grading.normalize import GREEK_NAMES, AnswerTooComplex
from eval.grading.numeric import magnitude
from eval.grading.values import BaseNumeral, Matrix, Relation, Scalar, Seq, Text, UnionOf, Value

MAX_LITERAL_DIGITS = 400
MAX_RESULT_DIGITS = 6000
# A rational raised to a fractional power: sympy looks for perfect powers in its numerator and denominator
# (factoring, 13 s for a 6,000-digit base) after raising them to the exponent's numerator; digits(base) times that
# numerator is bounded by this (about 20 ms at the bound).
MAX_ROOT_DIGITS = 500
MAX_FACTORIAL = 2500
MAX_DEPTH = 120
MAX_TERMS = 1000  # terms of a sum or product with integer bounds


class ParseError(ValueError):
    """The text is outside the whitelisted grammar."""


_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][+-]?\d+(?![a-zA-Z]))?|\.\d+)|(?P<name>[A-Za-z]+)"
    r"|(?P<op><=|>=|!=|==|->|\.\.\.|[-+*/^()\[\]{},;!=<>_|±∓∪:]))"
)
_FUNCS: dict[str, Callable[..., sympy.Basic]] = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "cot": sympy.cot,
    "sec": sympy.sec,
    "csc": sympy.csc,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "arctan": sympy.atan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "exp": sympy.exp,
    "ln": sympy.log,
    "log": sympy.log,
    "abs": sympy.Abs,
    "floor": sympy.floor,
    "ceil": sympy.ceiling,
}
_CONSTANTS: dict[str, sympy.Basic] = {
    "pi": sympy.pi,
    "oo": sympy.oo,
    "e": sympy.E,
    "i": sympy.I,
    "inf": sympy.oo,
    "infinity": sympy.oo,
}
# Greek letter names are symbols in plain answers; `emptyset` (a LaTeX name normalize keeps) is not one.
_GREEK = GREEK_NAMES - {"emptyset"}
_BIG_OPERATORS = {"sum", "prod"}
_RELOPS = {"=", "==", "!=", "<", "<=", ">", ">="}
_CLOSERS = {")", "]", "}"}


def _is_letter_factor(name: str) -> bool:
    """A name that multiplies a number written before it inside a function's argument: one Latin letter, a Greek
    letter or π (never a word: ``\\sin 2 and``, ``\\sin 2 \\bmod 3``)."""
    return name in _GREEK or name == "pi" or (len(name) == 1 and name.isascii() and name.isalpha())


def tokenize(s: str) -> list[tuple[str, str]]:
    """Split `s` into (kind, text) tokens; any character outside the whitelist raises ParseError."""
    tokens, pos = [], 0
    s = s.rstrip()
    while pos < len(s):
        m = _TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise ParseError(f"character {s[pos]!r} not allowed")
        kind = m.lastgroup or "op"
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _digits_of_power(base: sympy.Basic, exp: sympy.Basic) -> float:
    """Estimated decimal digits of ``base**exp`` for rational operands (0 when nothing is computed)."""
    if not (base.is_Rational and exp.is_Rational) or base == 0:
        return 0.0
    size = max(abs(int(base.p)), abs(int(base.q)), 2)
    return abs(float(exp)) * math.log10(size)


def guarded_pow(base: sympy.Basic, exp: sympy.Basic) -> sympy.Basic:
    """``base**exp``, refusing powers whose exact result would exceed MAX_RESULT_DIGITS digits."""
    if exp.is_Rational and abs(exp) > 10**6 and base.is_number and base not in (0, 1, -1):
        raise AnswerTooComplex("exponent too large")
    if _digits_of_power(base, exp) > MAX_RESULT_DIGITS:
        raise AnswerTooComplex(f"power result over {MAX_RESULT_DIGITS} digits")
    if base.is_Rational and exp.is_Rational and not exp.is_Integer and base not in (0, 1, -1):
        if _digits_of_power(base, sympy.Integer(abs(exp.p))) > MAX_ROOT_DIGITS:
            raise AnswerTooComplex(f"a fractional power of a number over {MAX_ROOT_DIGITS} digits")
    if base.is_number and exp.is_number and not exp.is_Rational and magnitude(exp) > 10**5:
        raise AnswerTooComplex("exponent too large")
    return _guard(sympy.Pow(base, exp))


def _guard(expr: sympy.Basic) -> sympy.Basic:
    if expr.is_Rational and max(int(expr.p).bit_length(), int(expr.q).bit_length()) > 3.33 * MAX_RESULT_DIGITS:
        raise AnswerTooComplex("number too large")
    return expr


@lru_cache(maxsize=1024)
def _sequence(name: str) -> type:
    """One sympy function class per sequence name (creating a class costs about a millisecond)."""
    return sympy.Function(name)


def _binary(op: str, a: sympy.Basic, b: sympy.Basic) -> sympy.Basic:
    if op == "mod":  # ``23 \\bmod 7``; symbolic operands stay an unevaluated remainder (sympy's own evaluation
        # of one takes gcds and expansions: nested remainders of products, a gold of ``x \\bmod`` runs, took seconds)
        return sympy.Mod(a, b, evaluate=bool(a.is_Number and b.is_Number))
    return a * b if op == "*" else a / b


def _entries(m: Matrix) -> list[list[sympy.Basic]]:
    return [[_as_scalar(v).expr for v in row] for row in m.rows]


def _matrix_of(rows: list[list[sympy.Basic]]) -> Matrix:
    return Matrix(tuple(tuple(Scalar(_guard(e)) for e in row) for row in rows))


def _matrix_sum(a: Value, b: Value, sign: int) -> Matrix:
    """``A + B`` of two matrices of one shape, entry by entry."""
    if not (isinstance(a, Matrix) and isinstance(b, Matrix)):
        raise ParseError("a matrix added to a non-matrix")
    x, y = _entries(a), _entries(b)
    if [len(r) for r in x] != [len(r) for r in y]:
        raise ParseError("matrices of different shapes added")
    return _matrix_of([[p + sign * q for p, q in zip(rx, ry, strict=True)] for rx, ry in zip(x, y, strict=True)])


def _matrix_product(a: Value, b: Value) -> Matrix:
    """``A B`` (rows times columns) or a scalar times a matrix."""
    if not isinstance(a, Matrix):
        return _matrix_of([[_as_scalar(a).expr * e for e in row] for row in _entries(b)])  # type: ignore[arg-type]
    if not isinstance(b, Matrix):
        return _matrix_of([[e * _as_scalar(b).expr for e in row] for row in _entries(a)])
    x, y = _entries(a), _entries(b)
    if any(len(r) != len(y) for r in x) or len({len(r) for r in y}) != 1 or len(x) * len(y[0]) > 400:
        raise ParseError("matrix shapes do not multiply")
    return _matrix_of(
        [[sum((r[k] * y[k][j] for k in range(len(y))), sympy.Integer(0)) for j in range(len(y[0]))] for r in x]
    )


def _is_name(v: Value) -> bool:
    return isinstance(v, Scalar) and isinstance(v.expr, sympy.Symbol)


def _as_scalar(v: Value) -> Scalar:
    if not isinstance(v, Scalar):
        raise ParseError("arithmetic on a non-number")
    return v


class _Parser:
    """Recursive descent over a token list; one instance per parse."""

    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.approx = False
        self.bound: list[sympy.Symbol] = []  # summation indices in scope

    def peek(self, offset: int = 0) -> tuple[str, str]:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.pos += 1
        return tok

    def expect(self, text: str) -> None:
        if self.take()[1] != text:
            raise ParseError(f"expected {text!r}")

    def at_op(self, *ops: str) -> bool:
        kind, text = self.peek()
        return kind == "op" and text in ops

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise AnswerTooComplex(f"expression nests deeper than {MAX_DEPTH}")

    # -- lists and relations ------------------------------------------------------------------------
    def parse_top(self) -> Value:
        items = self.parse_items()
        if self.peek()[0] != "end":
            raise ParseError(f"unexpected {self.peek()[1]!r}")
        return items[0] if len(items) == 1 else Seq("list", tuple(items))

    def parse_items(self) -> list[Value]:
        items = [self.parse_relation()]
        while self.at_op(",", ";"):
            self.take()
            if self.peek()[0] == "end" or self.at_op(*_CLOSERS):
                break
            items.append(self.parse_relation())
        if len(items) > 1:  # ``\\pm 3, \\pm 2`` lists four values; ``x = a(1 ± √2), x = ...`` four relations
            items = [v for item in items for v in _expand_pm(item)]
        return items

    def parse_relation(self) -> Value:
        operands, ops = [self.parse_ratio()], []
        while self.peek()[0] == "op" and self.peek()[1] in _RELOPS:
            ops.append("=" if self.take()[1] == "==" else self.peek(-1)[1])
            operands.append(self.parse_ratio())
        if len(operands) > 2 and set(ops) == {"="} and all(_is_name(o) for o in operands[:-1]):
            # ``x = y = 0`` names several variables with one value: the pair ``(x, y) = (0, 0)``.
            names = tuple(operands[:-1])
            return Relation("=", Seq("tuple", names), Seq("tuple", (operands[-1],) * len(names)))
        if len(operands) > 2 and set(ops) == {"="}:
            # ``z = 1 + 3 = 4`` works its way to a value: the first side and the last one are the answer.
            return Relation("=", operands[0], operands[-1])
        lhs = operands[0]
        for op, rhs in zip(ops, operands[1:], strict=True):
            lhs = Relation(op, lhs, rhs)
        return lhs

    def parse_ratio(self) -> Value:
        """``a : b`` is the number a/b; ``a : b : c`` the tuple (1, b/a, c/a), so proportional ratios agree."""
        parts = [self.parse_union()]
        while self.at_op(":"):
            self.take()
            parts.append(self.parse_union())
        if len(parts) == 1:
            return parts[0]
        exprs = [_as_scalar(p).expr for p in parts]
        if any(e == 0 for e in exprs):
            raise ParseError("a ratio with a zero part")
        if len(exprs) == 2:
            return Scalar(_guard(exprs[0] / exprs[1]), self.approx)
        return Seq("tuple", tuple(Scalar(_guard(e / exprs[0]), self.approx) for e in exprs), "(", ")")

    def parse_union(self) -> Value:
        parts = [self.parse_sum()]
        while self.at_op("∪"):
            self.take()
            parts.append(self.parse_sum())
        return parts[0] if len(parts) == 1 else UnionOf(tuple(parts))

    # -- arithmetic ---------------------------------------------------------------------------------
    def parse_sum(self) -> Value:
        if self.at_op("±", "∓"):
            self.take()
            value = _as_scalar(self.parse_term()).expr
            return Seq("pm", (Scalar(value, self.approx), Scalar(-value, self.approx)))
        left = self.parse_term()
        while self.at_op("+", "-", "±", "∓"):
            op = self.take()[1]
            right = self.parse_term()
            if isinstance(left, Matrix) or isinstance(right, Matrix):
                left = _matrix_sum(left, right, -1 if op == "-" else 1)
                continue
            if _is_pm(left) or _is_pm(right):  # "(1 ± √5) + 2": the sum of each value
                if op in "±∓":
                    raise ParseError("two ± in one operation")
                left = _pm_apply(partial(_signed_sum, 1 if op == "+" else -1), left, right, self.approx)
                continue
            a, b = _as_scalar(left).expr, _as_scalar(right).expr
            if op in "±∓":
                return Seq("pm", (Scalar(_guard(a + b), self.approx), Scalar(_guard(a - b), self.approx)))
            left = Scalar(_guard(a + b if op == "+" else a - b), self.approx)
        return left

    def starts_implicit_factor(self) -> bool:
        kind, text = self.peek()
        after_closer = self.peek(-1) in {("op", ")"), ("op", "}")}  # ``binom(n, k) 2^k``
        # ``2^6 3^5 5^4``, ``n^2 2^{n-1}``: a number after a power's exponent starts the next factor
        after_power = self.pos >= 2 and self.peek(-1)[0] == "num" and self.peek(-2) == ("op", "^")
        # ``n 2^{n-1}``: a power of a number right after a name is a factor of the product
        power_after_name = self.pos >= 1 and self.peek(-1)[0] == "name" and self.peek(1) == ("op", "^")
        return (
            kind == "name"
            or (kind == "op" and text in {"(", "{"})
            or (kind == "num" and (after_closer or after_power or power_after_name))
        )

    def parse_term(self) -> Value:
        left = self.parse_unary()
        while self.at_op("*", "/") or self.peek() == ("name", "mod") or self.starts_implicit_factor():
            op = self.take()[1] if self.at_op("*", "/") or self.peek() == ("name", "mod") else "*"
            right = self.parse_unary()
            if op == "*" and (isinstance(left, Matrix) or isinstance(right, Matrix)):
                left = _matrix_product(left, right)
                continue
            if _is_pm(left) or _is_pm(right):  # "a(1 ± √2)", "(1 ± √5)/2": the product of each value
                left = _pm_apply(partial(_checked_binary, op), left, right, self.approx)
                continue
            a, b = _as_scalar(left).expr, _as_scalar(right).expr
            left = Scalar(_checked_binary(op, a, b), self.approx)
        return left

    def parse_unary(self) -> Value:
        self.enter()
        try:
            if self.at_op("-", "+"):
                op = self.take()[1]
                value = self.parse_unary()
                return Scalar(-_as_scalar(value).expr, self.approx) if op == "-" else value
            return self.parse_power()
        finally:
            self.depth -= 1

    def parse_power(self) -> Value:
        base = self.parse_postfix()
        if not self.at_op("^"):
            return base
        self.take()
        exp = _as_scalar(self.parse_unary()).expr
        return Scalar(guarded_pow(_as_scalar(base).expr, exp), self.approx)

    def parse_postfix(self) -> Value:
        value = self.parse_atom()
        while self.at_op("!"):
            self.take()
            double = self.at_op("!")  # "(2n-1)!!" is the double factorial, not (2n-1)! factorial
            if double:
                self.take()
            n = _as_scalar(value).expr
            if n.is_Integer and not 0 <= int(n) <= MAX_FACTORIAL:
                raise AnswerTooComplex(f"factorial argument over {MAX_FACTORIAL}")
            value = Scalar(_double_factorial(n) if double else sympy.factorial(n), self.approx)
        return value

    # -- atoms ----------------------------------------------------------------------------------------
    def parse_atom(self) -> Value:
        self.enter()
        try:
            kind, text = self.take()
            if kind == "num":
                return self.parse_number(text)
            if kind == "name":
                return self.parse_name(text)
            if kind == "op" and text in {"(", "[", "{"}:
                return self.parse_bracket(text)
            if kind == "op" and text == "|":
                value = _as_scalar(self.parse_sum()).expr
                self.expect("|")
                return Scalar(sympy.Abs(value), self.approx)
            raise ParseError(f"unexpected {text!r}")
        finally:
            self.depth -= 1

    def parse_number(self, text: str) -> Value:
        mantissa, _, exponent = text.lower().partition("e")
        if len(mantissa) > MAX_LITERAL_DIGITS or len(exponent) > 4:
            raise AnswerTooComplex(f"literal over {MAX_LITERAL_DIGITS} digits")
        if self.at_op("_"):
            self.take()
            return BaseNumeral(mantissa.lstrip("0") or "0", self.parse_subscript())
        whole, _, frac = mantissa.partition(".")
        value = sympy.Rational(int(whole or "0") * 10 ** len(frac) + int(frac or "0"), 10 ** len(frac))
        if "." in mantissa or exponent:
            self.approx = True
        if exponent:
            value = guarded_pow(sympy.Integer(10), sympy.Integer(int(exponent))) * value
        return Scalar(value, self.approx)

    def parse_subscript(self) -> str:
        if self.at_op("{", "("):
            closer = "}" if self.take()[1] == "{" else ")"
            parts = []
            while not self.at_op(closer) and self.peek()[0] != "end":
                parts.append(self.take()[1])
            self.expect(closer)
            return "".join(parts)
        kind, text = self.take()
        if kind not in {"num", "name"}:
            raise ParseError("bad subscript")
        return text

    def parse_name(self, name: str) -> Value:
        if self.bound and any(b.name == name for b in self.bound):
            return self.parse_symbol(name)
        if name in _BIG_OPERATORS and self.at_op("_"):
            return self.parse_big_operator(name)
        if name == "integral" and self.at_op("_"):
            return self.parse_integral()
        if name in _FUNCS or name in {"sqrt", "root", "binom", "mat"} or (name == "C" and self.at_op("(")):
            return self.parse_call(name)
        if name in _CONSTANTS:
            return Scalar(_CONSTANTS[name], self.approx)
        if name == "emptyset":
            return Seq("set", ())
        if name in _GREEK or len(name) == 1:
            return self.parse_symbol(name)
        if len(name) > 6:
            raise ParseError(f"unknown word {name!r}")
        # Juxtaposed letters are implicit multiplication (``ab`` = a*b, ``xy`` = x*y).
        self.tokens[self.pos : self.pos] = [("name", ch) for ch in name[1:]]
        return self.parse_symbol(name[0])

    def parse_symbol(self, name: str) -> Value:
        if self.at_op("_"):
            self.take()
            if self.subscript_uses_index():
                # ``F_{n-k-1}`` under ``\\sum_k``: a sequence term, a function of its (integer) index.
                index = _as_scalar(self.parse_atom()).expr
                return Scalar(_sequence(name)(index), self.approx)
            name = f"{name}_{self.parse_subscript()}"
        if self.bound and any(b.name == name for b in self.bound):
            return Scalar(next(b for b in reversed(self.bound) if b.name == name), self.approx)
        if len(name) == 1 and self.at_value_of_number():
            # ``f(0)``, ``I(0)``, ``P(2)``: a letter applied to a lone number is a function's value, not the
            # product ``f * 0`` (which made ``f(0)`` equal to 0 and to ``2f(0)``); ``x(x+1)`` is still a product.
            self.take()
            argument = _as_scalar(self.parse_sum()).expr
            self.expect(")")
            return Scalar(_sequence(name)(argument), self.approx)
        return Scalar(sympy.Symbol(name), self.approx)

    def at_value_of_number(self) -> bool:
        """Whether the tokens from here are ``(`` a number (maybe negative) ``)``."""
        ahead = self.tokens[self.pos : self.pos + 4]
        if len(ahead) >= 3 and ahead[0] == ("op", "(") and ahead[1][0] == "num" and ahead[2] == ("op", ")"):
            return True
        return (
            len(ahead) == 4
            and ahead[0] == ("op", "(")
            and ahead[1] == ("op", "-")
            and ahead[2][0] == "num"
            and (ahead[3] == ("op", ")"))
        )

    def subscript_uses_index(self) -> bool:
        """Whether the subscript that starts here mentions a summation index in scope."""
        if not self.bound:
            return False
        names = {b.name for b in self.bound}
        kind, text = self.peek()
        if kind == "name":
            return text in names
        if text not in {"{", "("}:
            return False
        depth, i = 0, self.pos
        while i < len(self.tokens):
            kind, text = self.tokens[i]
            depth += {"{": 1, "(": 1, "}": -1, ")": -1}.get(text, 0) if kind == "op" else 0
            if kind == "name" and text in names:
                return True
            if depth == 0:
                return False
            i += 1
        return False

    def parse_big_operator(self, name: str) -> Value:
        """``sum_{k=a}^{b} body`` / ``prod_(k=a)^b body``; the body is one term (up to the next + or -)."""
        self.take()  # "_"
        opener = self.take()[1]
        if opener not in {"{", "("}:
            raise ParseError(f"{name} needs a range like _{{k=1}}")
        kind, index_name = self.take()
        if kind != "name":
            raise ParseError(f"{name} needs an index name")
        self.expect("=")
        lower = _as_scalar(self.parse_sum()).expr
        self.expect("}" if opener == "{" else ")")
        self.expect("^")
        upper = _as_scalar(self.parse_atom()).expr
        if lower.is_Integer and upper.is_Integer and int(upper) - int(lower) + 1 > MAX_TERMS:
            raise AnswerTooComplex(f"{name} over more than {MAX_TERMS} terms")
        index = sympy.Dummy(index_name)
        self.bound.append(index)
        try:
            body = _as_scalar(self.parse_term()).expr
        finally:
            self.bound.pop()
        operator = sympy.Sum if name == "sum" else sympy.Product
        return Scalar(operator(body, (index, lower, upper)), self.approx)

    def parse_integral(self) -> Value:
        """``integral_a^b body dx``: a definite integral, kept unevaluated (numeric quadrature decides)."""
        self.take()  # "_"
        lower = _as_scalar(self.parse_atom()).expr
        self.expect("^")
        upper = _as_scalar(self.parse_atom()).expr
        end, variable, width = self.differential()
        if lower.free_symbols or upper.free_symbols:
            raise ParseError("an integral with symbolic bounds")
        index = sympy.Dummy(variable)
        body_parser = _Parser(self.tokens[self.pos : end])
        body_parser.bound, body_parser.depth, body_parser.approx = [*self.bound, index], self.depth, self.approx
        body = _as_scalar(body_parser.parse_sum()).expr
        if body_parser.peek()[0] != "end":
            raise ParseError("unexpected tokens in an integrand")
        self.pos, self.approx = end + width, body_parser.approx
        return Scalar(sympy.Integral(body, (index, lower, upper)), self.approx)

    def differential(self) -> tuple[int, str, int]:
        """Where the integrand's ``dx`` (or ``d x``) is: (token index, variable name, tokens it spans)."""
        depth = 0
        for i in range(self.pos, len(self.tokens)):
            kind, text = self.tokens[i]
            depth += {"(": 1, "{": 1, "[": 1, ")": -1, "}": -1, "]": -1}.get(text, 0) if kind == "op" else 0
            if depth or kind != "name":
                continue
            if re.fullmatch(r"d[a-z]", text):
                return i, text[1], 1
            nxt = self.tokens[i + 1] if i + 1 < len(self.tokens) else ("end", "")
            if text == "d" and nxt[0] == "name" and (len(nxt[1]) == 1 or nxt[1] in _GREEK):
                return i, nxt[1], 2
        raise ParseError("an integral without d<variable>")

    def parse_call(self, name: str) -> Value:
        base = None
        if name == "log" and self.at_op("_"):
            self.take()
            base = _as_scalar(self.parse_atom()).expr
        power = None
        if name in _FUNCS and self.at_op("^"):  # \sin^2 x means (sin x)^2
            self.take()
            power = _as_scalar(self.parse_atom()).expr
        if not self.at_op("("):
            if name not in _FUNCS:
                raise ParseError(f"{name} needs parentheses")
            args: list[Value] = [self.parse_function_argument()]
        else:
            self.take()
            args = self.parse_items()
            self.expect(")")
        value = self.apply(name, args, base)
        return value if power is None else Scalar(guarded_pow(_as_scalar(value).expr, power), self.approx)

    def parse_function_argument(self) -> Value:
        """A function's argument without brackets: one factor (``\\sin x \\cos x`` is sin(x) cos(x), ``\\sin x y`` is
        sin(x) y), or a number with the letters written right after it, as a coefficient is read (``\\sin 2x`` is
        sin(2x), ``\\cos 3\\theta`` cos(3θ), ``\\sin 2\\pi t`` sin(2πt), ``\\sin^{2}2x`` sin(2x)²)."""
        value = self.parse_power()
        if not (isinstance(value, Scalar) and value.expr.is_Number):
            return value
        while self.peek()[0] == "name" and _is_letter_factor(self.peek()[1]):  # a summation index too: sin(2k)
            factor = _as_scalar(self.parse_power()).expr
            value = Scalar(_checked_binary("*", value.expr, factor), self.approx)
        return value

    def apply(self, name: str, args: list[Value], base: sympy.Basic | None) -> Value:
        if name == "mat":
            rows = tuple(a.items if isinstance(a, Seq) else (a,) for a in args)
            return Matrix(rows)
        exprs = [_as_scalar(a).expr for a in args]
        # Symbolic arguments: no automatic simplification (it costs milliseconds; comparison is numeric).
        evaluate = not any(e.free_symbols for e in exprs)
        if name in {"binom", "C"}:
            if len(exprs) != 2:
                raise ParseError("binom takes two arguments")
            if exprs[0].is_Integer and abs(int(exprs[0])) > MAX_FACTORIAL:
                raise AnswerTooComplex("binomial too large")
            return Scalar(sympy.binomial(*exprs, evaluate=evaluate), self.approx)
        if name == "root":
            return Scalar(guarded_pow(exprs[0], 1 / exprs[1]), self.approx)
        if len(exprs) != 1:
            raise ParseError(f"{name} takes one argument")
        if name == "sqrt":
            return Scalar(guarded_pow(exprs[0], sympy.Rational(1, 2)), self.approx)
        if name == "exp":
            return Scalar(guarded_pow(sympy.E, exprs[0]), self.approx)
        value = _FUNCS[name](exprs[0], evaluate=evaluate)
        return Scalar(value / sympy.log(base) if base is not None else value, self.approx)

    def parse_bracket(self, opener: str) -> Value:
        if self.at_op(")", "]", "}"):
            closer = self.take()[1]
            return Seq("set" if opener == "{" else "tuple", (), opener, closer)
        items = self.parse_items()
        kind, closer = self.take()
        if kind != "op" or closer not in _CLOSERS or (opener == "{") != (closer == "}"):
            raise ParseError("unbalanced brackets")
        if opener == "{":
            return items[0] if len(items) == 1 else Seq("set", tuple(items), "{", "}")
        if len(items) == 1 and opener + closer in {"()", "[]"}:
            return items[0]
        if len(items) == 2 and opener + closer != "()":
            return Seq("interval", tuple(items), opener, closer)
        return Seq("tuple" if opener == "(" else "list", tuple(items), opener, closer)


@lru_cache(maxsize=65536)
def parse_plain(text: str) -> Value:
    """Parse one normalised answer into a `Value`.

    Raises:
        ParseError: The text is outside the grammar.
        AnswerTooComplex: A size guard refused it.
    """
    if not text:
        raise ParseError("empty answer")
    tokens = tokenize(text)
    if len(tokens) > 600:
        raise AnswerTooComplex("more than 600 tokens")
    return _Parser(tokens).parse_top()


def as_text(text: str) -> Text | None:
    """A `Text` value when the answer is words rather than mathematics (``Sunday``, ``No``, ``CBAD``)."""
    words = re.sub(r"[\x01\x02]", "", text).strip().strip("().").strip()
    if re.fullmatch(r"[A-Za-z][A-Za-z '\-]*", words):
        return Text(" ".join(words.lower().split()))
    return None


def _double_factorial(n: sympy.Expr) -> sympy.Expr:
    """``n!!`` in gamma form, so a symbolic argument evaluates at any point: ``2^((n+1)/2) Γ(n/2+1)/√π`` for
    odd n, ``2^(n/2) Γ(n/2+1)`` for even n. The parity of ``2k - 1`` is read from its constant term when every
    symbol has an even integer coefficient; an argument of unknown parity is outside the grammar."""
    if n.is_Integer:
        return sympy.factorial2(n)
    symbols = sorted(n.free_symbols, key=str)
    if not all((c := sympy.diff(n, x)).is_Integer and int(c) % 2 == 0 for x in symbols):
        raise ParseError("a double factorial of an argument of unknown parity")
    constant = n.subs({x: 0 for x in symbols})
    if not constant.is_Integer:
        raise ParseError("a double factorial of an argument of unknown parity")
    half = n / 2 + 1
    if int(constant) % 2:
        return 2 ** ((n + 1) / 2) * sympy.gamma(half) / sympy.sqrt(sympy.pi)
    return 2 ** (n / 2) * sympy.gamma(half)


def _signed_sum(sign: int, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    return _guard(a + sign * b)


def _checked_binary(op: str, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr:
    if op in {"/", "mod"} and b == 0:
        raise ParseError("division by zero")
    return _guard(_binary(op, a, b))


def _is_pm(value: Value) -> bool:
    return isinstance(value, Seq) and value.kind == "pm"


def _pm_apply(fn: Callable[[sympy.Expr, sympy.Expr], sympy.Expr], left: Value, right: Value, approx: bool) -> Seq:
    """Arithmetic with one ``±`` pair: applied to each of its two values (``a(1 ± √2)`` is two values). Two
    pairs in one operation are refused rather than guessed (their signs may or may not be tied)."""
    if _is_pm(left) and _is_pm(right):
        raise ParseError("two ± in one operation")
    lefts = left.items if isinstance(left, Seq) and _is_pm(left) else (left,)
    rights = right.items if isinstance(right, Seq) and _is_pm(right) else (right,)
    values = tuple(Scalar(fn(_as_scalar(x).expr, _as_scalar(y).expr), approx) for x in lefts for y in rights)
    return Seq("pm", values)


def _expand_pm(item: Value) -> tuple[Value, ...]:
    """A list item's values: a ``±`` pair is two, and so is ``x = <a ± pair>``."""
    if isinstance(item, Seq) and item.kind == "pm":
        return item.items
    if isinstance(item, Relation) and item.op == "=" and _is_pm(item.rhs) and isinstance(item.rhs, Seq):
        return tuple(Relation("=", item.lhs, v) for v in item.rhs.items)
    return (item,)
