"""Whole-problem similarity for decontamination: does a pool problem reproduce a benchmark item?

Two measures, both asymmetric (how much of the *benchmark item* the pool problem reproduces), so a
benchmark problem pasted inside a longer text (a "Problem 3." prefix, a "Show your work." suffix) still
scores 1:

- `aligned_similarity`: the item's words that the pool text reproduces in order, over the item's words
  plus the words the pool text inserts *between* its first and last aligned word. Words are weighted
  (inverse document frequency in decontamination), so swapping "Find" for "Determine" costs little while
  swapping "ELLIPSE" for "MADAM" costs a lot; a prefix or suffix costs nothing, words inserted in the
  middle ("5 red shirts, 5 green shirts") do.
- `content_agreement`: the share of the item's *content tokens* — everything that decides which problem
  it is — found in order in the pool text's tokens. Content tokens are the tokens of TeX math
  (``$...$``, ``\\[...\\]``), of plain-text formulas (a whitespace-separated chunk holding a digit or an
  operator, as in CHAMP's ``2^x-1=3^y``), numbers and number words anywhere (``three-digit`` -> 3), words
  in capitals (``ELLIPSE``), negations (``not``, ``neither``) and extremal words, the latter folded into
  ``MIN`` / ``MAX`` so "smallest" and "least" agree. Template siblings — MATH's "5 balls in 2 boxes"
  vs "5 balls in 3 boxes", CHAMP's ``2^x-1=3^y`` vs ``2^x+1=3^y`` — share almost every word but not their
  content, which a light rewording keeps. TeX environments (``\\begin{align*}...\\end{align*}``) count as
  math; in a plain-text formula, letter runs of four or more are words glued to it, not symbols.

The tokeniser keeps operators (``+ - = < >`` and their TeX names) and drops formatting commands
(``\\frac``, ``\\left``, ``\\cdot``...), so ``\\frac{1}{2}`` and ``1/2`` agree; thousands separators are
removed and ordinal suffixes stripped (``$n$th`` and ``nth`` both give ``n``). `lcs_length` is the
bit-parallel longest-common-subsequence count (Allison-Dix), fast enough for asymptote-heavy problems.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import TypeVar

from eval.answers import number_words
from eval.grading.grader import verify

_THOUSANDS = re.compile(r"(?<=\d)(?:,|\{,\}|\\!,|\\,)(?=\d{3}(?!\d))")
_TOKEN = re.compile(r"\\([A-Za-z]+)|([A-Za-z]+)|(\d+)|([+\-−=<>≤≥≠])")
_TEX_MATH = re.compile(
    r"\$\$(.+?)\$\$|\$(.+?)\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|\\begin\{([a-z]+\*?)\}(.+?)\\end\{\5\}", re.S
)
TEX_MATH = _TEX_MATH  # TeX math segments ($...$, \\[...\\], environments), for `curation.meaning`
_FORMULA_CHARS = re.compile(r"[\d=+^_<>≤≥≠*/|\\()]")
_ORDINAL = re.compile(r"^(?:([a-z])th|(\d+)(?:st|nd|rd|th))$")
_NUMBER_WORDS = number_words.VALUES
_OPERATORS = {
    "−": "-", "≤": "<=", "≥": ">=", "≠": "!=", "le": "<=", "leq": "<=", "leqslant": "<=", "ge": ">=",
    "geq": ">=", "geqslant": ">=", "ne": "!=", "neq": "!=", "lt": "<", "gt": ">",
}  # fmt: skip
# Extremal words fold into one token each way, so rewording "smallest" as "least" keeps the content.
_EXTREMAL = dict.fromkeys(
    ("minimum", "min", "smallest", "least", "fewest", "lowest", "minimal"), "MIN"
) | dict.fromkeys(("maximum", "max", "largest", "greatest", "most", "highest", "biggest", "maximal"), "MAX")
_NEGATIONS = frozenset(("not", "no", "neither", "nor", "never", "without", "except", "cannot", "none"))
# Commands that format rather than say anything: \frac{1}{2} and 1/2 must agree.
_FORMATTING = frozenset(
    "frac dfrac tfrac cfrac left right big bigg bigl bigr displaystyle textstyle text textbf textit textrm "
    "mathrm mathbf mathit mathcal mathbb mathsf operatorname quad qquad cdot times ldots cdots dots dotsm dotsb "
    "hspace vspace mbox boxed limits nolimits".split()
)
_SKIP_WORDS = frozenset(("st", "nd", "rd", "th"))
_TENS = number_words.TENS
_UNITS = number_words.UNITS
_COMPOUND = re.compile(rf"\b({'|'.join(_TENS)})[- ]({'|'.join(_UNITS)})\b", re.I)
_SMALL = number_words.BELOW_TWENTY
_SCALES = number_words.SCALES
# A run of number words ("two thousand twenty-five", "one hundred and five", "ninety-nine"): folded whole.
_NUMBER_WORD = rf"(?:{'|'.join([*_SMALL, *_TENS, *_SCALES])})"
_NUMBER_PHRASE = re.compile(
    rf"\b(?:a|{_NUMBER_WORD})(?:(?:[- ]|\s+and\s+){_NUMBER_WORD})+\b"
    r"(?![- ](?:half|halves|third|quarter|fourth|fifth))",
    re.I,
)
# Fractions in words ("three quarters", "a half", "two thirds"), after a count or an article.
_DENOMINATORS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4,
                 "fourths": 4, "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7,
                 "eighth": 8, "eighths": 8, "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10, "twelfth": 12,
                 "twelfths": 12, "twentieth": 20, "twentieths": 20, "hundredth": 100, "hundredths": 100}  # fmt: skip
_COUNTS = "|".join(w for w in _SMALL if w not in ("zero", "one"))
_FRACTION = re.compile(rf"\b(a|one|{_COUNTS})[- ]({'|'.join(_DENOMINATORS)})\b(?!-)", re.I)
# Numbers a problem states (`numbers_of`): digits, number words, and the words that mean a number.
_WORD_VALUE = _NUMBER_WORDS | {"twice": "2", "double": "2", "half": "1/2", "thrice": "3"}
# \frac{1}{2}, \dfrac12, \tfrac 1 2: the fraction 1/2, as "1/2" and "one half" read.
_TEX_FRACTION = re.compile(r"\\[dt]?frac\s*(?:\{\s*(\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))")
_TEX_OVER = re.compile(r"\{\s*(\d+)\s*\\over\s*(\d+)\s*\}")  # plain TeX's {1 \over 2}
# "two point six", "12 point 5", "zero point two five": decimals said in words.
_DIGIT_WORD = r"(?:zero|one|two|three|four|five|six|seven|eight|nine|\d)"
_SPOKEN_DECIMAL = re.compile(
    rf"(?<![\w.])(\d+|{'|'.join(sorted(_NUMBER_WORDS, key=len, reverse=True))})\s+point"
    rf"((?:\s+{_DIGIT_WORD})+)\b(?![.,]\d)",
    re.I,
)
_VALUE_WORD = r"|\b(?:" + "|".join(_WORD_VALUE) + r")\b"
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:/\d+)?" + _VALUE_WORD, re.I)  # semantic decontam: 1/2 is one number
_DIGITS = re.compile(r"\d+(?:\.\d+)?(?:/\d+)?")  # `_NUMBER` in a text without its words: it scans 5x faster
# `_NUMBER` in an ASCII text with its words: every whole word, the value words kept after (`_stated_numbers`); 5x
# faster than trying each value word at every position, the same list (a value word is a whole run of letters)
_NUMBER_OR_WORD = re.compile(r"\d+(?:\.\d+)?(?:/\d+)?|\b[A-Za-z]+\b")
_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d+)?" + _VALUE_WORD, re.I)  # dedup: 1/2 is two (its decisions stay)


def _prepare(text: str) -> str:
    return _THOUSANDS.sub("", text.replace("\\$", " "))


def _token(command: str, word: str, number: str, operator: str) -> tuple[str, bool] | None:
    """One token and whether it is content on its own (outside math); None when it is formatting."""
    if command:
        name = command.lower()
        if name in _FORMATTING:
            return None
        return _OPERATORS.get(name, name), False
    if number:
        return number, True
    if operator:
        return _OPERATORS.get(operator, operator), False
    lowered = word.lower()
    if lowered in _SKIP_WORDS:
        return None
    if lowered in _NUMBER_WORDS:
        return _NUMBER_WORDS[lowered], True
    if lowered in _EXTREMAL:
        return _EXTREMAL[lowered], True
    ordinal = _ORDINAL.match(lowered)
    if ordinal:
        return ordinal.group(1) or ordinal.group(2), False
    return lowered, lowered in _NEGATIONS or (len(word) > 1 and word.isupper())


def _tokens(text: str, *, all_content: bool) -> list[str]:
    out = []
    for match in _TOKEN.findall(text):
        token = _token(*match)
        if token is not None and (all_content or token[1]):
            out.append(token[0])
    return out


def text_tokens(text: str) -> list[str]:
    """Every token of ``text`` (words lower-cased, numbers, operators, TeX command names)."""
    return _tokens(_prepare(text), all_content=True)


def content_tokens(text: str) -> list[str]:
    """The tokens that decide which problem ``text`` is (see the module docstring), in order."""
    prepared = _prepare(text)
    out: list[str] = []
    position = 0
    for segment in _TEX_MATH.finditer(prepared):
        out += _prose_content(prepared[position : segment.start()])
        out += _tokens(segment.group(segment.lastindex or 0), all_content=True)
        position = segment.end()
    return out + _prose_content(prepared[position:])


def _prose_content(prose: str) -> list[str]:
    """Content tokens of text outside TeX math: whole plain-text formulas, and content words elsewhere."""
    out: list[str] = []
    for chunk in prose.split():
        if not _FORMULA_CHARS.search(chunk):
            out += _tokens(chunk, all_content=False)
            continue
        # In a formula, letter runs of four or more are words glued to it ("\]is", "(mod"), not symbols.
        out += [t for t, glued in _formula_tokens(chunk) if not glued]
    return out


def _formula_tokens(chunk: str) -> list[tuple[str, bool]]:
    out = []
    for command, word, number, operator in _TOKEN.findall(chunk):
        token = _token(command, word, number, operator)
        if token is not None:
            out.append((token[0], bool(word) and len(word) > 3 and not token[1]))
    return out


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (bit-parallel, O(len(a) * len(b) / 64))."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for position, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << position)
    full = (1 << len(a)) - 1
    row = full
    for token in b:
        matches = row & masks.get(token, 0)
        row = ((row + matches) | (row - matches)) & full
    return len(a) - row.bit_count()


def content_agreement(item_content: Sequence[str], pool_tokens: Sequence[str]) -> float:
    """Share of the item's content tokens found, in order, among the pool text's tokens (1.0 if it has none)."""
    if not item_content:
        return 1.0
    return lcs_length(item_content, pool_tokens) / len(item_content)


def aligned_similarity(pool_words: Sequence[str], item_words: Sequence[str], weight: Callable[[str], float]) -> float:
    """Weighted share of the item reproduced by the pool text, charging words inserted inside the match.

    ``matched / (item + inserted)``, where ``inserted`` counts the pool words between the first and the last
    aligned word that align to nothing; words outside that span (a prefix, a suffix) are free.
    """
    total = sum(weight(w) for w in item_words)
    if not total:
        return 0.0
    blocks = [
        b
        for b in difflib.SequenceMatcher(None, pool_words, item_words, autojunk=False).get_matching_blocks()
        if b.size
    ]
    if not blocks:
        return 0.0
    matched = sum(weight(w) for b in blocks for w in item_words[b.b : b.b + b.size])
    aligned = {i for b in blocks for i in range(b.a, b.a + b.size)}
    span = range(blocks[0].a, blocks[-1].a + blocks[-1].size)
    inserted = sum(weight(pool_words[i]) for i in span if i not in aligned)
    return matched / (total + inserted)


def _phrase_value(match: re.Match[str]) -> str:
    """The value of a run of number words; split at "and" when the whole run is not one number ("two
    thousand and five" is 2005, "twenty-five and one hundred" 25 and 100); words that read as no number stay."""
    whole = _words_value(match[0])
    if whole is not None:
        return whole
    parts = re.split(r"(\s+and\s+)", match[0])
    return "".join(part if index % 2 else _words_value(part) or part for index, part in enumerate(parts))


def _words_value(phrase: str) -> str | None:
    words = [w for w in re.split(r"[- ]+", phrase.lower()) if w and w != "and"]
    total, current = 0, 0
    for position, word in enumerate(words):
        if word == "a":
            if position or len(words) == 1 or words[1] not in _SCALES:
                return None
            current = 1
        elif word in _SCALES:
            if word == "hundred":
                if current >= 100:  # "one hundred and two hundred": two numbers
                    return None
                current = max(current, 1) * 100
            else:
                total, current = total + max(current, 1) * _SCALES[word], 0
        elif word in _TENS and current % 100 == 0:
            current += _TENS[word]
        elif word in _SMALL and (current % 100 == 0 or (current % 10 == 0 < _SMALL[word] < 10 <= current % 100)):
            current += _SMALL[word]
        else:  # "two three": a list, not one number
            return None
    return str(total + current)


def _fraction_value(match: re.Match[str]) -> str:
    count = 1 if match[1].lower() in ("a", "one") else _SMALL[match[1].lower()]
    return f"{count}/{_DENOMINATORS[match[2].lower()]}"


def _compound(match: re.Match[str]) -> str:
    return str(_TENS[match[1].lower()] + _UNITS[match[2].lower()])


def _fraction(match: re.Match[str]) -> str:
    return f"{match[1] or match[2]}/{match[3] or match[4]}"


@functools.lru_cache(maxsize=1 << 14)  # a problem's text is folded for its embedding and for its numbers
def fold_number_words(text: str) -> str:
    """Number words as digits: "Thirty-five" -> "35", "two thousand twenty-five" -> "2025", "one hundred" ->
    "100", "three quarters" -> "3/4", "two point six" -> "2.6" (`content_tokens` alone gives 30 and 5). A run
    that does not read as one number ("two three", "one hundred and two hundred") is split or left as it is.
    Each pattern runs only on a text with a word it needs (`_letter_runs`)."""
    runs = _letter_runs(text)
    if runs is None or not runs.isdisjoint(_DENOMINATORS):
        text = _FRACTION.sub(_fraction_value, text)
    if runs is None or not runs.isdisjoint(_PHRASE_WORDS):
        text = _NUMBER_PHRASE.sub(_phrase_value, text)
    if runs is None or "point" in runs:
        text = _SPOKEN_DECIMAL.sub(_decimal_value, text)
    return text


_LETTERS = re.compile(r"[a-z]+")
_PHRASE_WORDS = frozenset([*_SMALL, *_TENS, *_SCALES])  # what `_NUMBER_PHRASE` reads after its first word


@functools.lru_cache(maxsize=1 << 14)
def _letter_runs(text: str) -> frozenset[str] | None:
    """The words of an ASCII ``text`` (maximal runs of letters, lower-cased); None for any other text.

    Why: the case-blind number patterns (`_FRACTION`, `_NUMBER_PHRASE`, `_SPOKEN_DECIMAL`, `_QUANTITY`, `_NUMBER`)
    try their long alternations at every position and cost most of reading a text's numbers; each needs a word
    that is a whole run of letters (a denominator, a number word after a separator, "point", a unit, a number
    word), so a text without one keeps its value without the pattern running. Every substitution before them
    leaves the other runs whole (what it replaces starts and ends at a non-letter). Outside ASCII, case-blind
    matching folds letters such as the Kelvin sign to ``k``: the patterns always run."""
    return frozenset(_LETTERS.findall(text.lower())) if text.isascii() else None


def forget_texts() -> None:
    """Empty the caches keyed by whole texts (`fold_number_words`, `_letter_runs`): in a driver that runs shard
    tasks itself they would otherwise keep tens of thousands of pool problems (about 3 kB each) after they are
    read (`curation.meaning.confirm.forget_texts`)."""
    fold_number_words.cache_clear()
    _letter_runs.cache_clear()


def _decimal_value(match: re.Match[str]) -> str:
    def digits(word: str) -> str:
        return _NUMBER_WORDS.get(word.lower(), word)

    return digits(match[1]) + "." + "".join(digits(w) for w in match[2].split())


# Quantities with a unit, in one base unit per kind, so that a unit change keeps the quantity: "6.5 millimeters"
# and "0.65 centimeters" both read 13/2000[length] (metres), "4 hours" and "240 minutes" 14400[time].
_UNITS_BY_KIND: dict[str, dict[str, Fraction]] = {
    "length": {"millimeter": Fraction(1, 1000), "millimetre": Fraction(1, 1000), "mm": Fraction(1, 1000),
               "centimeter": Fraction(1, 100), "centimetre": Fraction(1, 100), "cm": Fraction(1, 100),
               "meter": Fraction(1), "metre": Fraction(1), "kilometer": Fraction(1000), "kilometre": Fraction(1000),
               "km": Fraction(1000), "inch": Fraction(254, 10000), "inche": Fraction(254, 10000),
               "foot": Fraction(3048, 10000), "feet": Fraction(3048, 10000), "ft": Fraction(3048, 10000),
               "yard": Fraction(9144, 10000), "yd": Fraction(9144, 10000), "mile": Fraction(1609344, 1000)},
    "time": {"second": Fraction(1), "sec": Fraction(1), "minute": Fraction(60), "hour": Fraction(3600),
             "hr": Fraction(3600), "day": Fraction(86400), "week": Fraction(604800)},
    "mass": {"milligram": Fraction(1, 1000), "mg": Fraction(1, 1000), "gram": Fraction(1), "kilogram": Fraction(1000),
             "kg": Fraction(1000)},
    "weight": {"ounce": Fraction(1, 16), "oz": Fraction(1, 16), "pound": Fraction(1), "lb": Fraction(1)},
    "money": {"cent": Fraction(1, 100), "dollar": Fraction(1)},
    "angle": {"degrees": Fraction(1), "turn": Fraction(360), "revolution": Fraction(360)},
    "volume": {"milliliter": Fraction(1, 1000), "millilitre": Fraction(1, 1000), "ml": Fraction(1, 1000),
               "liter": Fraction(1), "litre": Fraction(1)},
}  # fmt: skip
_UNIT = {unit: (kind, factor) for kind, units in _UNITS_BY_KIND.items() for unit, factor in units.items()}
_AMOUNT = rf"(?:\d+(?:\.\d+)?(?:/\d+)?|{'|'.join(_NUMBER_WORDS)})(?:\s+and\s+\d+/\d+)?"
_QUANTITY = re.compile(
    rf"(?<![\w.])({_AMOUNT})(?:[\s$-]|\\(?:text|mbox|mathrm)\s*\{{|\\[ ,;])*(?:full\s+)?"
    rf"(square\s+|cubic\s+)?({'|'.join(sorted(_UNIT, key=len, reverse=True))})s?\b",
    re.I,
)
_MONEY = re.compile(r"\\\$\s*(\d+(?:\.\d+)?)")
_DEGREES = re.compile(r"(\d+(?:\.\d+)?)\s*\^\s*\{?\s*\\circ\s*\}?")  # 60^\circ; "degree" alone is a polynomial's


def _amount(text: str) -> Fraction | None:
    """An `_AMOUNT`'s value ("5", "1.5/2", "five", "2 and 1/2"); None over a zero ("3/0")."""
    total = Fraction(0)
    for part in re.split(r"\s+and\s+", text.lower()):  # "2\nand 1/2" too: a text never raises
        numerator, _, denominator = _NUMBER_WORDS.get(part, part).partition("/")
        if denominator and not int(denominator):
            return None
        total += Fraction(numerator) / Fraction(denominator or 1)
    return total


def _quantities(text: str, runs: frozenset[str] | None) -> tuple[str, list[str], frozenset[str] | None]:
    """``text`` less its quantities with a unit, those quantities as ``<value in the base unit>[<kind>]``, and
    letter runs that hold every run of the text returned (``runs``: `_letter_runs` of ``text`` or of a text it was
    cut from)."""
    found: list[str] = []

    def take(match: re.Match[str]) -> str:
        kind, factor = _UNIT[match[3].lower()]
        power = 2 if (match[2] or "").lower().startswith("square") else 3 if match[2] else 1
        amount = _amount(match[1])
        if amount is None:  # no value to read: the text stays, as `_canonical` leaves "3/0"
            return match[0]
        found.append(f"{amount * factor**power}[{kind}{power if power > 1 else ''}]")
        return " "

    def money(match: re.Match[str]) -> str:
        found.append(f"{Fraction(match[1])}[money]")
        return " "

    def degrees(match: re.Match[str]) -> str:
        found.append(f"{Fraction(match[1])}[angle]")
        return " "

    text = _MONEY.sub(money, text)
    angles = len(found)
    text = _DEGREES.sub(degrees, text) if "circ" in text else text  # the pattern's one word, looked for first
    if len(found) > angles:  # "60^\circ" may end inside a run of letters ("\circs"): the rest is a new run
        runs = _letter_runs(text)
    if _may_state_unit(runs):
        text = _QUANTITY.sub(take, text)
    return text, found, runs


_UNIT_WORDS = frozenset([*_UNIT, *(f"{unit}s" for unit in _UNIT)])
# ... and a number word with a unit glued to it ("fivecm"), the one way a unit is not a whole run of letters
_UNIT_WORDS |= {f"{number}{unit}" for number in _NUMBER_WORDS for unit in _UNIT_WORDS}


def _may_state_unit(runs: frozenset[str] | None) -> bool:
    """Whether `_QUANTITY` can match a text of these `_letter_runs`: some word is a unit (``cm``, ``hours``)."""
    return runs is None or not runs.isdisjoint(_UNIT_WORDS)


def numbers_of(text: str, *, words: bool = True, whole: bool = False, units: bool = True) -> Counter[str]:
    """The numbers a problem states (digits, decimals, number words: "fifty-four" -> 54), counted.

    Semantic decontamination's and dedup's evidence that two texts pose the same problem with the same values.
    ``words=False``: digits only (number words included when folded to digits first). ``whole`` (semantic
    decontamination): number phrases and fractions read whole (`fold_number_words`: "two thousand
    twenty-five" -> 2025; "1/2", "$\\frac12$" and "one half" -> 1/2); otherwise (dedup's precision rule, as
    its golden decisions were measured) only compounds like "fifty-four" are folded and a fraction is its
    two numbers. With ``whole``, a quantity with a unit is read in its kind's base unit (`_quantities`:
    "2500 centimeters" and "25 meters" are both 25[length]; "\\$15" and "15 dollars" 15[money]; with
    ``units=False`` the units are ignored: "6.5 centimeters" is 6.5, as a paraphrase that names a unit the item
    leaves out reads it) and a number in one form: "1.50", "3/2", "\\frac{6}{4}" and "three halves" are all
    1.5, "2/6" is 1/3.
    """
    if whole:
        stated, digits = whole_numbers(text, units)
        return stated if words else digits
    found = _PLAIN_NUMBER.findall(_THOUSANDS.sub("", _COMPOUND.sub(_compound, text)))
    return Counter(_WORD_VALUE.get(n.lower(), n) for n in found if words or n[0].isdigit())


def whole_numbers(text: str, units: bool = True) -> tuple[Counter[str], Counter[str]]:
    """`numbers_of` ``(text, whole=True, units=units)`` with number words and without (``words=False``)."""
    return whole_number_readings(text)[0 if units else 1]


def whole_number_readings(text: str) -> tuple[tuple[Counter[str], Counter[str]], tuple[Counter[str], Counter[str]]]:
    """`whole_numbers` with units and without, read in one pass (semantic decontamination asks for all four of
    every text): the two readings differ only where a quantity with a unit is stated."""
    return _whole_readings(text, _stated)


def whole_number_sets(
    text: str,
) -> tuple[tuple[frozenset[str], frozenset[str]], tuple[frozenset[str], frozenset[str]]]:
    """`whole_number_readings`' distinct numbers, without counting them (what semantic decontamination compares)."""
    return _whole_readings(text, _distinct_stated)


_Reading = TypeVar("_Reading")


def _whole_readings(
    text: str, read: Callable[[str, list[str], frozenset[str] | None], _Reading]
) -> tuple[_Reading, _Reading]:
    runs = _letter_runs(text)  # the runs of every text below are among these (`_letter_runs`)
    folded = fold_number_words(text)
    # each pattern only where the text holds what every match of it holds (a scan of the text saved, 7,500
    # MATH-train problems read 0.40 -> 0.37 s: the lookbehind that starts `_THOUSANDS` gets no fast scan)
    folded = _THOUSANDS.sub("", folded) if "," in folded else folded
    folded = _TEX_FRACTION.sub(_fraction, folded) if "frac" in folded else folded
    folded = _TEX_OVER.sub(r"\1/\2", folded) if "\\over" in folded else folded
    rest, quantities, rest_runs = _quantities(folded, runs)  # "60^\\circfive": "five" is a new run of ``rest``
    with_units = read(rest, quantities, rest_runs)
    return with_units, (read(folded, [], runs) if quantities else with_units)


def _stated(text: str, quantities: list[str], runs: frozenset[str] | None) -> tuple[Counter[str], Counter[str]]:
    stated = _stated_numbers(text, runs)
    digits = Counter([_canonical(n) for n in stated if n[0].isdigit()] + quantities)
    words = Counter(_canonical(_WORD_VALUE.get(n.lower(), n)) for n in stated if not n[0].isdigit())
    return digits + words, digits


def _distinct_stated(
    text: str, quantities: list[str], runs: frozenset[str] | None
) -> tuple[frozenset[str], frozenset[str]]:
    """`_stated`'s numbers without their counts (building and adding Counters was a third of reading a text)."""
    stated = _stated_numbers(text, runs)
    digits = frozenset([_canonical(n) for n in stated if n[0].isdigit()] + quantities)
    return digits.union([_canonical(_WORD_VALUE.get(n.lower(), n)) for n in stated if not n[0].isdigit()]), digits


def _stated_numbers(text: str, runs: frozenset[str] | None) -> list[str]:
    """``_NUMBER.findall(text)``, read the cheapest way ``runs`` (`_letter_runs` holding every run of ``text``)
    allows: digits alone when no value word is among them; in an ASCII text, every whole word, then the value words
    kept (a value word is a whole run of letters); outside ASCII, the case-blind pattern itself."""
    if runs is None:  # case-blind matching folds other letters (`_letter_runs`)
        return _NUMBER.findall(text)
    if runs.isdisjoint(_WORD_VALUE):
        return _DIGITS.findall(text)
    return [n for n in _NUMBER_OR_WORD.findall(text) if n[0].isdigit() or n.lower() in _WORD_VALUE]


@functools.lru_cache(maxsize=1 << 16)  # a pool repeats its numbers: Fraction and Decimal are the slow part
def _canonical(number: str) -> str:
    """A number's one written form: an integer, a terminating decimal without trailing zeros, else a fraction in
    lowest terms ("1.50" and "6/4" -> "1.5", "2/6" -> "1/3", "0.5/2" -> "0.25"); a word, or a fraction over 0,
    stays as it is (a problem's text never raises)."""
    if not number[0].isdigit():
        return number
    numerator, _, denominator_text = number.partition("/")
    if denominator_text and not int(denominator_text):
        return number
    value = Fraction(numerator) / Fraction(denominator_text or 1)
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    if value.denominator == 1:
        return str(value.numerator)
    return format(Decimal(value.numerator) / Decimal(value.denominator), "f").rstrip("0").rstrip(".")


def answers_agree(a: str, b: str) -> bool:
    """Golds equal as the grader sees them (`eval.grading.grader.verify`), an empty gold agreeing with nothing."""
    if not a.strip() or not b.strip():
        return False
    return a.strip() == b.strip() or verify(a, b, timeout_s=2.0)


_ANSWER_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")
_ANSWER_NOISE = re.compile(r"\\(?:left|right|displaystyle|[!,;:])|\s|\$|\^\s*\{?\\circ\}?|\\%|%|\\\$|\.$")
_ANSWER_FRACTION = re.compile(r"(-?)(?:\\[dt]?frac\{?(\d+)\}?\{?(\d+)\}?|(\d+)/(\d+))")
_ANSWER_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")


@functools.lru_cache(maxsize=1 << 14)  # a pool's golds repeat ("2", "5"): one reading each
def answer_key(answer: str) -> str:
    """A cheap normal form of a gold answer, for looking up benchmark items that may share it: markup, spaces,
    units in ``\\text{}``, degrees, percent and dollar signs dropped, thousands separators removed, a plain number
    or fraction as its value ("\\dfrac{6}{4}", "3/2" and "1.50" -> "3/2"). Equal keys nominate; `answers_agree`
    (the grader) decides."""
    key = _ANSWER_NOISE.sub("", _THOUSANDS.sub("", _ANSWER_TEXT.sub(r"\1", answer)))
    key = re.sub(r"\\[dt]frac", r"\\frac", key)
    fraction = _ANSWER_FRACTION.fullmatch(key)
    if fraction and int(fraction[3] or fraction[5]):
        value = Fraction(int(fraction[2] or fraction[4]), int(fraction[3] or fraction[5]))
        return str(-value if fraction[1] else value)
    return str(Fraction(key)) if _ANSWER_DECIMAL.fullmatch(key) else key
