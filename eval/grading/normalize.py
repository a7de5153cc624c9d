"""Answer text -> one canonical plain-text form that `plain_parse` understands.

LaTeX and plain text (CHAMP golds such as ``2^(n-1)``) meet here: LaTeX commands are rewritten into the
plain grammar (``\\frac{a}{b}`` -> ``((a)/(b))``, ``\\sqrt[3]{x}`` -> ``root(x,3)``, matrices ->
``mat((a,b),(c,d))``), and the MATH gold hazards are removed (``\\$``, ``\\%``, ``^\\circ``, ``\\!``,
``{,}``, ``\\left``/``\\right``, units in ``\\text{}``). The walk over braces is a loop with a depth
counter, not recursion over input size, and the input length and brace depth are capped before it
starts, so hostile input costs at most linear time. Commands we do not know are kept as ``\\name``;
the parser then refuses them and the grader falls back (see docs/grader.md).
"""

from __future__ import annotations

import re

from eval.answers.escapes import repair_escapes
from eval.answers.number_words import UP_TO_TEN

MAX_ANSWER_CHARS = 4000
MAX_BRACE_DEPTH = 40


class AnswerTooComplex(ValueError):
    """Raised when an answer exceeds a size limit; the grader turns it into a verdict, never a crash."""


_FRAC = {"frac", "dfrac", "tfrac", "cfrac"}
_BINOM = {"binom", "dbinom", "tbinom"}
_TEXT = {
    "text",
    "textbf",
    "textit",
    "textrm",
    "textnormal",
    "mathrm",
    "mbox",
    "mathbf",
    "mathit",
    "mathsf",
    "operatorname",
    "textsf",
    "texttt",
    "mathtt",
    "hbox",
    "emph",
}
_DROP = {
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "displaystyle",
    "textstyle",
    "quad",
    "qquad",
    "circ",
    "degree",
    "limits",
    "mathbb",
}
_SYMBOLS = {
    "pi": "pi",
    "infty": "oo",
    "infinity": "oo",
    "cdot": "*",
    "times": "*",
    "ast": "*",
    "div": "/",
    "pm": "±",
    "mp": "∓",
    "le": "<=",
    "leq": "<=",
    "leqslant": "<=",
    "ge": ">=",
    "geq": ">=",
    "geqslant": ">=",
    "lt": "<",
    "gt": ">",
    "ne": "!=",
    "neq": "!=",
    "cup": "∪",
    "in": "=",
    "approx": "=",
    "bmod": " mod ",
    "mod": " mod ",
    "dots": "...",
    "ldots": "...",
    "cdots": "...",
    "colon": ":",
    "to": "->",
    "rightarrow": "->",
    "implies": "->",
    "Rightarrow": "->",
    "and": ",",
    "lvert": "|",
    "rvert": "|",
    "vert": "|",
    "mid": "|",
    "lbrace": "{",
    "rbrace": "}",
    "langle": "(",
    "rangle": ")",
    "varnothing": "emptyset",
    "sum": "sum",
    "int": " integral ",
    "prod": "prod",
    "lfloor": "floor(",
    "rfloor": ")",
    "lceil": "ceil(",
    "rceil": ")",
}
_FUNCS = {
    "sin",
    "cos",
    "tan",
    "cot",
    "sec",
    "csc",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "log",
    "ln",
    "exp",
    "lg",
}
# Number words read as digits in summary sentences ("At most two of ...", "is zero"): zero to ten.
NUMBER_WORDS = UP_TO_TEN
GREEK_NAMES = frozenset(
    (
        "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi rho sigma "
        "tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Sigma Phi Psi Omega emptyset"
    ).split()
)
_MATRIX_ENVS = {"pmatrix", "bmatrix", "matrix", "Bmatrix", "vmatrix", "smallmatrix", "array"}
_SPACES = {",", ";", ":", "!", " ", ">"}

_UNITS = (
    "square units|sq units|square feet|square inches|square meters|square centimeters|square cm|sq ft|"
    "cubic units|cubic feet|cubic inches|cubic meters|cubic centimeters|units|unit|degrees|degree|deg|"
    "percentage|percent|pct|dollars|dollar|cents|cent|meters|meter|metres|centimeters|cm|mm|km|m|inches|inch|in|feet|"
    "foot|ft|yards|yd|miles|mile|mph|hours|hour|hrs|hr|minutes|minute|min|seconds|second|sec|s|days|day|"
    "weeks|years|year|grams|gram|g|kg|pounds|lbs|lb|ounces|oz|liters|litres|l|ml|gallons|points|ways|"
    "people|students|cookies|marbles|coins|numbers|integers|outfits|pieces|pairs|times|steps|words|"
    "handshakes|triangles|squares|games|boxes|balls|cups|rooms|books|apples|rows|edges|vertices|faces"
)
_UNIT_TAIL = re.compile(rf"(?<=[\d)}}.])\s*(?:(?:{_UNITS})\b\.?\s*(?:\^\s*\(?[23]\)?|[²³])?\s*)+$", re.IGNORECASE)


def _unit_dropped(tail: re.Match[str]) -> str:
    """A unit after a value is dropped, except one or two letters glued to it: ``10m`` and ``10cm`` may be a
    product with a variable (``10 m``, ``10 cm`` with a space are units; ``10weeks`` is one too)."""
    glued = re.match(r"[A-Za-z]+", tail.group(0))
    squared = re.search(r"[²³]|\^\s*\(?[23]\)?\s*$", tail.group(0))  # ``1,000.99m²``: an area, a unit
    return tail.group(0) if glued and len(glued.group(0)) <= 2 and not squared else ""


_TEXT_SEG = re.compile(r"\x01([^\x01\x02]*)\x02(\s*\^\s*\{?\s*[23]\s*\}?)?")
_THOUSANDS = re.compile(r"(?<![\d.,])([1-9]\d{0,2}(?:,\d{3})+)(?![\d,]|\.\d*,)")
# ``(100,200)``, ``[100,200]``, ``binom(200,100)``: two numbers that fill a bracket are a pair, not a thousand; a
# group with a leading zero (``(1,000)``) or more than one comma (``(1,000,000)``) is still a thousands number.
_BRACKET_PAIR = re.compile(r"[(\[{]\s*$")
_BRACKET_CLOSE = re.compile(r"\s*[)\]}]")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}|°")
# ``\sin 15^\circ``: inside a trigonometric function a degree sign is a unit to convert, not to drop.
_TRIG_DEGREES = re.compile(
    r"(\\(?:sin|cos|tan|cot|sec|csc)\s*(?:\\left)?\s*\(?\s*)(\d+(?:\.\d+)?)\s*(?:\^\s*\{?\s*\\circ\s*\}?|°)"
)
_BARE_ROOT = re.compile(r"√\s*(\d+(?:\.\d+)?|[A-Za-z](?![A-Za-z(]))")
_CHOOSE = re.compile(r"\{([^{}]*)\\choose([^{}]*)\}")
_CONGRUENCE = re.compile(
    r"(?:[^=]*?(?:\\equiv|≡)\s*)?([^=≡]+?)\s*(?:\\pmod\s*\{[^{}]*\}|\\pmod\s*\w+|\(\s*(?:\\bmod|\\mod|mod)\s*[^()]*\))\s*"
)
_DOUBLE_BACKSLASH_CMD = re.compile(r"(?<!\\)\\\\(?=[a-zA-Z])")  # ``\\frac`` from JSON; not ``\\\end`` (a row break)
# A backslash escape that a JSON or Python string ate: ``\f``rac became a form feed, ``\t``imes a tab.
# Thousands in MATH's house style: ``10,\!080`` and ``10,\! 080`` (``{,}`` is removed separately).
_BANG_THOUSANDS = re.compile(r"(?<=\d),\\!\s*(?=\d{3}(?!\d))")
# ``\frac{\sqrt3}{3} \approx 0.577``: the exact part decides, the decimal after it is dropped.
_APPROX_TAIL = re.compile(
    r"(?<=\S)(?<![=(]\s[A-Za-z])(?<![=(][A-Za-z])(?<!^[A-Za-z])\s*(?:\\approx|≈)\s*[-+]?\s*\d[\d.,]*\s*(?:\\?%|\\ldots|\.\.\.)?\s*$"
)  # not after a lone name: in ``x \approx 11`` the decimal is the answer
_UNICODE = {
    "−": "-",
    "–": "-",
    "×": "*",
    "·": "*",
    "⋅": "*",
    "÷": "/",
    "√": "sqrt",
    "π": "pi",
    "∞": "oo",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
    "²": "^2",
    "³": "^3",
    "\u00a0": " ",
    "∈": "=",
    "**": "^",
}


def brace_depth(s: str) -> int:
    """Maximum nesting depth of ``{ ( [`` in `s` (unbalanced closers are ignored)."""
    depth = best = 0
    for ch in s:
        if ch in "{([":
            depth += 1
            best = max(best, depth)
        elif ch in "})]" and depth:
            depth -= 1
    return best


_ENVIRONMENT = re.compile(r"\\(begin|end)(?![a-zA-Z])")


def environment_depth(s: str) -> int:
    """Maximum nesting depth of ``\\begin`` ... ``\\end`` in `s` (an ``\\end`` with no ``\\begin`` open is ignored):
    the rewrite converts an environment's cells inside it, so an environment left open holds all that follows."""
    depth = best = 0
    for m in _ENVIRONMENT.finditer(s):
        depth = depth + 1 if m.group(1) == "begin" else max(depth - 1, 0)
        best = max(best, depth)
    return best


def check_size(s: str) -> None:
    """Refuse inputs whose parse could cost more than the size limits allow.

    Raises:
        AnswerTooComplex: When `s` is longer than MAX_ANSWER_CHARS, or its brackets or its environments nest deeper
            than MAX_BRACE_DEPTH (a ``\\begin{pmatrix}`` repeated 300 times ran the rewrite into Python's recursion
            limit).
    """
    if len(s) > MAX_ANSWER_CHARS:
        raise AnswerTooComplex(f"answer has {len(s)} chars > {MAX_ANSWER_CHARS}")
    if brace_depth(s) > MAX_BRACE_DEPTH:
        raise AnswerTooComplex(f"nesting deeper than {MAX_BRACE_DEPTH}")
    if "\\begin" in s and environment_depth(s) > MAX_BRACE_DEPTH:
        raise AnswerTooComplex(f"environments nested deeper than {MAX_BRACE_DEPTH}")


def strip_math_delimiters(s: str) -> str:
    """Remove ``$``, ``\\(``/``\\)``, ``\\[``/``\\]``, a trailing full stop and a stray final backslash."""
    s = _DOUBLE_BACKSLASH_CMD.sub(r"\\", repair_escapes(s).strip())
    s = re.sub(r"(?<!\\)\\$", "", s)
    s = s.replace("\\$", " ").replace("$", " ")
    s = re.sub(r"\\[\[\]()]", " ", s)
    return s.strip().rstrip(".").strip()


def _read_group(s: str, i: int) -> tuple[str, int]:
    """Read one macro argument at `i`: a balanced ``{...}``, a ``\\command`` or one character."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return "", i
    if s[i] == "{":
        depth, j = 0, i
        while j < len(s):
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            if depth == 0:
                return s[i + 1 : j], j + 1
            j += 1
        return s[i + 1 :], len(s)
    if s[i] == "\\":
        m = re.match(r"\\(?:[a-zA-Z]+|.)?", s[i:], re.DOTALL)  # a backslash that ends the text or a line: itself
        assert m is not None
        return m.group(0), i + m.end()
    return s[i], i + 1


def _read_command(s: str, i: int) -> tuple[str, int]:
    m = re.match(r"q?quad(?=[a-zA-Z])|[a-zA-Z]+|.", s[i:])
    return (m.group(0), i + m.end()) if m else ("", i)


def _convert_matrix(env: str, body: str) -> str:
    if env == "array":
        body = re.sub(r"^\s*\{[^{}]*\}", "", body)
    rows = [r for r in re.split(r"\\\\", body) if r.strip() and not r.strip().startswith("\\hline")]
    cells = ["(" + ",".join(latex_to_plain(c) for c in row.split("&")) + ")" for row in rows]
    return "mat(" + ",".join(cells) + ")"


def _mixed_number_head(out: list[str]) -> str | None:
    """The integer just emitted, if it can start a mixed number like ``2\\frac14``."""
    m = re.search(r"(?:^|[\s(=,+\-])(\d+)\s*$", "".join(out[-8:]))
    return m.group(1) if m else None


def _emit_frac(out: list[str], num: str, den: str) -> None:
    head = _mixed_number_head(out)
    if head is not None and num.strip().isdigit() and den.strip().isdigit():
        joined = "".join(out)
        cut = joined.rstrip()[: -len(head)]
        out[:] = [cut, f"({head}+{num.strip()}/{den.strip()})"]
        return
    out.append(f"(({latex_to_plain(num)})/({latex_to_plain(den)}))")


def _convert_command(name: str, s: str, i: int, out: list[str]) -> int:
    """Rewrite one command starting after its backslash; returns the index after its arguments."""
    if name in _FRAC:
        num, i = _read_group(s, i)
        den, i = _read_group(s, i)
        _emit_frac(out, num, den)
    elif name == "sqrt":
        index = None
        m = re.match(r"\s*\[([^\]]*)\]", s[i:])
        if m:
            index, i = m.group(1), i + m.end()
        arg, i = _read_group(s, i)
        out.append(
            f"sqrt({latex_to_plain(arg)})" if index is None else f"root({latex_to_plain(arg)},{latex_to_plain(index)})"
        )
    elif name in _BINOM:
        top, i = _read_group(s, i)
        bottom, i = _read_group(s, i)
        out.append(f"binom({latex_to_plain(top)},{latex_to_plain(bottom)})")
    elif name in {"phantom", "hphantom", "vphantom"}:
        _, i = _read_group(s, i)  # invisible: ``\\phantom -1`` is 1
    elif name in _TEXT or name in {"boxed", "fbox", "mathrm"}:
        arg, i = _read_group(s, i)
        out.append(latex_to_plain(arg) if name in {"boxed", "fbox"} else "\x01" + arg + "\x02")
    elif name == "begin":
        env, i = _read_group(s, i)
        end = s.find("\\end{" + env + "}", i)
        body = s[i:] if end < 0 else s[i:end]
        i = len(s) if end < 0 else end + len(env) + 6
        out.append(_convert_matrix(env, body) if env in _MATRIX_ENVS else " \\unsupported ")
    else:
        out.append(_simple_command(name))
    return i


def _simple_command(name: str) -> str:
    if name in _DROP or name in _SPACES:
        return " "
    if name in _SYMBOLS:
        return f" {_SYMBOLS[name]} "
    if name in _FUNCS or name in GREEK_NAMES:
        return f" {name} "
    if name in {"{", "}", "%", "$", "&", "#", "_"}:
        return {"%": " ", "$": " "}.get(name, name)
    if name == "\\":
        return " , "
    return f"\\{name}"


def latex_to_plain(s: str) -> str:
    """Rewrite LaTeX into the plain grammar; plain text passes through unchanged."""
    out: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            name, i = _read_command(s, i + 1)
            i = _convert_command(name, s, i, out)
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _resolve_text(s: str) -> str:
    """Decide what each ``\\text{}`` segment is: connector, unit (dropped) or content."""
    outside = _TEXT_SEG.sub("", s)
    has_math = bool(re.search(r"[\d]", outside))

    def one(m: re.Match[str]) -> str:
        body = m.group(1).strip()
        if body.lower() in {"and", "or", ",", "or equivalently"}:
            return ","
        if has_math and re.fullmatch(r"[A-Za-z .]*", body) and len(body.replace(".", "")) > 1:
            return " "
        return (latex_to_plain(body) if body else " ") + (m.group(2) or "")

    return _TEXT_SEG.sub(one, s)


# ``0.\overline{3}``, ``0.1\overline{6}``: a repeating decimal is the fraction it stands for.
_REPEATING = re.compile(r"(?<![\d.])(\d*)\.(\d{0,20})\\overline\s*\{\s*(\d{1,20})\s*\}")


def _repeating_fraction(m: re.Match[str]) -> str:
    whole, fixed, period = m.group(1) or "0", m.group(2), m.group(3)
    numerator = int(fixed + period) - int(fixed or "0")
    denominator = 10 ** len(fixed) * (10 ** len(period) - 1)
    return f"({int(whole)}+{numerator}/{denominator})"


# ``20:34:00``: a clock time with zero seconds is the time to the minute (never a ratio: a zero part is refused).
_WHOLE_MINUTE = re.compile(r"(?<![\d:.])([01]?\d|2[0-3]):([0-5]\d):00(?![\d:.])")
# ``08:34 \text{P.M.}``, ``8:34 pm``: a clock time with its half of the day is the 24-hour time (``20:34``).
_CLOCK_TIME = re.compile(
    r"(?<![\d:.])(1[0-2]|0?[1-9]):([0-5]\d)\s*(?:\\(?:text|mathrm|textrm)\s*\{\s*)?([AaPp])\.?\s*[Mm]\.?(?:\s*\})?"
    r"(?![A-Za-z\d])"
)
# ``1 1/2``: a whole number, a space and a proper fraction is a mixed number (as ``1\frac12`` is); the numerator
# has at most two digits so that ``1 100/200`` (a thousands group) is never read as one.
_PLAIN_MIXED = re.compile(r"(?<![\w.^/*])(\d+) ([1-9]\d?)/([1-9]\d{0,2})(?![\w.^(/])")
# ``W(x)=1orW(x)=-1``: an answer whose spaces were stripped still says "or" between two equations whose left
# side is the same name; only a value's end (a digit or a closing bracket) may come before the glued word.
_FIRST_LHS = re.compile(r"\s*([A-Za-z]\w*(?:\([^()]*\))?)\s*=")


def _clock_24(m: re.Match[str]) -> str:
    hour = int(m.group(1)) % 12 + (12 if m.group(3) in "Pp" else 0)
    return f"{hour:02d}:{m.group(2)}"


def _plain_mixed(m: re.Match[str]) -> str:
    whole, num, den = m.group(1), int(m.group(2)), int(m.group(3))
    return f"({whole}+{num}/{den})" if num < den else m.group(0)


def _glued_disjunction(s: str) -> str:
    m = _FIRST_LHS.match(s)
    if not m:
        return s
    return re.sub(rf"(?<=[\d)\]}}])(?:or|and)(?={re.escape(m.group(1))}\s*=)", ",", s)


def _congruence_residue(s: str) -> str:
    """``3^{105} \\equiv 2 \\pmod{11}`` answers with its residue ``2``."""
    m = _CONGRUENCE.fullmatch(s)
    return m.group(1) if m else s


def _thousands_joined(m: re.Match[str]) -> str:
    """A thousands group without its commas, unless it is the two numbers of a bracket (see `_BRACKET_PAIR`)."""
    group = m.group(1)
    tail = group.partition(",")[2]
    pair = "," not in tail and not tail.startswith("0")
    if pair and _BRACKET_PAIR.search(m.string, 0, m.start()) and _BRACKET_CLOSE.match(m.string, m.end()):
        return group
    return group.replace(",", "")


def normalize(answer: str) -> str:
    """Canonical plain form of one bare answer (LaTeX or plain).

    Raises:
        AnswerTooComplex: When a size limit is exceeded.
    """
    check_size(answer)
    s = _BANG_THOUSANDS.sub("", strip_math_delimiters(answer))
    s = _CLOCK_TIME.sub(_clock_24, _WHOLE_MINUTE.sub(r"\1:\2", s))
    s = _APPROX_TAIL.sub("", s)
    s = _TRIG_DEGREES.sub(r"\1(\2\\pi/180)", s)
    s = _DEGREES.sub(" ", s).replace("{,}", "").replace("\\%", " ").replace("%", " ")
    s = _congruence_residue(s)
    s = _CHOOSE.sub(r"\\binom{\1}{\2}", s)
    s = _REPEATING.sub(_repeating_fraction, s)
    s = latex_to_plain(s)
    s = _resolve_text(s)
    s = _BARE_ROOT.sub(r"sqrt(\1)", s)  # "√3 / 3": the root of the number or letter right after it
    for old, new in _UNICODE.items():
        s = s.replace(old, new)
    s = re.sub(r"\s*\^\s*\)?\s*$", "", s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    s = _UNIT_TAIL.sub(_unit_dropped, s).strip()
    s = _THOUSANDS.sub(_thousands_joined, s)
    s = _glued_disjunction(_PLAIN_MIXED.sub(_plain_mixed, s))
    s = re.sub(r"(?<=[)\]])\s*U\s*(?=[(\[])", " ∪ ", s)
    s = re.sub(r"\s*,?\s*\b(?:and|or)\b\s*", ",", s) if re.search(r"[\d=]", s) else s
    return re.sub(r",(?:\s*,)+", ",", s).strip()
