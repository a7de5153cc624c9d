"""What a problem states, read for decontamination and dedup by meaning: numbers, math, figures, answers.

- **Numbers.** Number words folded to digits ("fifty-four" -> 54), TeX and thousands separators removed as in
  `curation.similarity`, read with units and without (`number_readings`); two texts' agreement is the Jaccard of
  their numbers, with a swap of the same numbers noticed (`number_agreement`).
- **Math.** The content tokens two problems share, in order (`content_share`: an LCS over the math, names as
  ``x``), and their content words.
- **Figures.** A figure's drawing code is read by the labels it prints that state a number (`statement`).
- **The model's text** (`embedding_text`): formulas read out in words, so a paraphrase that says in words what the
  item writes in TeX still lands near it.
- **Caches.** Readings are memoised per text; `forget_readings` empties them when a batch of texts is done with.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from curation.similarity import (
    TEX_MATH,
    content_tokens,
    fold_number_words,
    lcs_length,
    numbers_of,
    text_tokens,
    whole_number_sets,
)
from eval.grading.grader import gold_value

_NAME = re.compile(r"(?<![A-Za-z])[A-Z]{2,4}(?![A-Za-z])")
_NEGATED = re.compile(r"\b(?:in|un|non-?)(?=[a-z]+(?:able|ible)\b|negative\b|zero\b|congruent\b)", re.I)
_STOP = frozenset(
    "a an and are as at be by can for from has have if in is it its let of on or that the then there this to "
    "was what when where which who will with find compute determine value".split()
)


# A figure's drawing code ([asy] ... [/asy], a TikZ picture): coordinates and sizes, and the labels it prints.
_FIGURE = re.compile(r"\[asy\].*?(?:\[/asy\]|$)|\\begin\{tikzpicture\}.*?(?:\\end\{tikzpicture\}|$)", re.S | re.I)
# What a figure prints: Asymptote's strings (label("$48^\circ$", ...)), TikZ's node texts (node {$A$}).
_FIGURE_TEXT = re.compile(r'"((?:[^"\\]|\\.)*)"|\bnode\b[^{;]*\{((?:[^{}]|\{[^{}]*\})*)\}')


def statement(text: str) -> str:
    """``text`` with each figure's drawing code replaced by the labels it prints that state a number: a paraphrase
    that drops the figure, or an AIME item whose TikZ picture states 40 coordinates, is compared on what the
    problem says ("$110^\\circ$" on a figure is given data; coordinates and the points' names are not)."""
    if "[asy]" not in text.lower() and "tikzpicture" not in text:
        return text
    return _FIGURE.sub(lambda m: " " + " ".join(_figure_data(m[0])) + " ", text)


def _figure_data(figure: str) -> list[str]:
    """The labels a figure prints that state a number ("$48^\\circ$", "10 cm"); a point's name ("$A$") is not data."""
    labels = [a or b for a, b in _FIGURE_TEXT.findall(figure)]
    return [label for label in labels if any(c.isdigit() for c in label)]


T = TypeVar("T")
_kept_texts: frozenset[str] = frozenset()  # `keep_texts`
_kept_readings: list[dict[str, Any]] = []  # one per `_text_memo`
_MISSING = object()


def _text_memo(maxsize: int) -> Callable[[Callable[[str], T]], functools._lru_cache_wrapper[T]]:
    """A reading of a text, memoised in a bounded LRU that `forget_readings` empties; on a miss a `keep_texts` text
    (a benchmark item, read against every batch of pool problems) is read from the readings kept for it until the
    kept texts change, so it is read once (a hit costs what `functools.lru_cache`'s does)."""

    def memoised(function: Callable[[str], T]) -> functools._lru_cache_wrapper[T]:
        kept: dict[str, T] = {}
        _kept_readings.append(kept)

        @functools.wraps(function)
        def read(text: str) -> T:
            found = kept.get(text, _MISSING)
            if found is _MISSING:
                found = function(text)
                if text in _kept_texts:
                    kept[text] = found
            return found  # type: ignore[return-value]

        return functools.lru_cache(maxsize=maxsize)(read)

    return memoised


def keep_texts(texts: Iterable[str]) -> None:
    """Keep the readings (numbers, content) of ``texts`` (a run's benchmark items: `curation.meaning.confirm.
    number_rarity` keeps its items') through `forget_readings`: the screen and the model forget their pool problems'
    after each batch, and the items', compared with every batch, were read again each time (MATH500 and AIME/AMC
    against 7,500 MATH-train problems: 1,470 number readings of 600 items, now 600; 567 of the named content of 357,
    now 357). The readings of earlier kept texts are dropped when others are kept (``keep_texts(())`` at the end of
    the decontam stage)."""
    global _kept_texts
    texts = frozenset(texts)
    if texts != _kept_texts:
        _kept_texts = texts
        for kept in _kept_readings:
            kept.clear()


def stated_numbers(text: str, words: bool = True, units: bool = True) -> frozenset[str]:
    """`curation.similarity.numbers_of`'s distinct numbers in the `statement` (``whole``), cached: a benchmark item
    is compared with many pool problems."""
    return number_readings(text, units)[0 if words else 1]


def number_readings(text: str, units: bool) -> tuple[frozenset[str], frozenset[str]]:
    """The `statement`'s distinct numbers with number words and without (`curation.similarity.whole_numbers`),
    cached."""
    return _readings(text)[0 if units else 1]


def both_number_readings(
    text: str,
) -> tuple[tuple[frozenset[str], frozenset[str]], tuple[frozenset[str], frozenset[str]]]:
    """`number_readings` with units and without, in one look-up."""
    return _readings(text)


@_text_memo(1 << 15)
def _readings(text: str) -> tuple[tuple[frozenset[str], frozenset[str]], tuple[frozenset[str], frozenset[str]]]:
    return whole_number_sets(statement(text))


def _number_agreement(pool_text: str, other_text: str, units: bool) -> tuple[frozenset[str], float, bool]:
    """``(shared, Jaccard, swapped)`` of the two texts' numbers, read with or without their units."""
    (ours, our_digits), (theirs, their_digits) = number_readings(pool_text, units), number_readings(other_text, units)
    shared = ours & theirs
    counted = our_digits | their_digits | shared
    return shared, len(shared) / len(counted) if counted else 1.0, not ours <= theirs and not theirs <= ours


@_text_memo(1 << 14)
def _named_content(text: str) -> tuple[str, ...]:
    return tuple(named_content(statement(text)))


def named_content(text: str) -> list[str]:
    """`curation.similarity.content_tokens` with every name as ``x`` (as in `embedding_text`) and a negating
    prefix as the word ``not`` ("indistinguishable" -> "not distinguishable", "nonzero" -> "not zero")."""
    return _named_tokens(text, {n.lower() for n in _NAME.findall(text)})


@_text_memo(1 << 14)
def _content_pieces(text: str) -> tuple[tuple[str, ...], Counter[tuple[str, ...]]]:
    """`named_content` in two parts: the prose's tokens in order, and the TeX formulas, each whole, counted."""
    text = statement(text)
    names = {n.lower() for n in _NAME.findall(text)}
    prose: list[str] = []
    formulas: Counter[tuple[str, ...]] = Counter()
    start = 0
    for formula in TEX_MATH.finditer(text):
        prose += _named_tokens(text[start : formula.start()], names)
        formulas[tuple(_named_tokens(formula[0], names))] += 1
        start = formula.end()
    prose += _named_tokens(text[start:], names)
    formulas.pop((), None)
    return tuple(prose), formulas


def _named_tokens(text: str, names: set[str]) -> list[str]:
    folded = _NEGATED.sub("not ", fold_number_words(text))
    return ["x" if (len(t) == 1 and t.isalpha()) or t in names else t for t in content_tokens(folded)]


def content_share(a: str, b: str) -> float:
    """The two texts' content tokens (math, numbers, negations; names as ``x``) in common, in order, over
    the longer list (1.0 when neither has any): formulas that differ by a sign or a term score low. The order
    is the texts' own or, when that agrees more, any order of whole formulas (`_content_pieces`): "In the
    decimal expansion of $\\frac{137}{500}$, what is ..." and "What is ... of $\\frac{137}{500}$?" agree."""
    x, y = _named_content(a), _named_content(b)
    if not x and not y:
        return 1.0
    longer = max(len(x), len(y))
    share = lcs_length(x, y) / longer
    if share < 1.0:  # the formulas in another order: each must agree whole, the prose's tokens in order
        (prose_a, formulas_a), (prose_b, formulas_b) = _content_pieces(a), _content_pieces(b)
        same = sum(len(f) * n for f, n in (formulas_a & formulas_b).items())
        share = max(share, min(1.0, (lcs_length(prose_a, prose_b) + same) / longer))
    return share


def embedding_text(text: str) -> str:
    """What is embedded: the problem in words (`spoken_math`: formulas read out, number words as digits), its
    tokens (`curation.similarity.text_tokens`: no TeX markup) with every name — a single letter, or two to
    four capitals like ``ABC`` — as ``x``, so renaming variables or points does not move the embedding (on
    the tuning paraphrases: the own item in the top 5 for 89% against 71%)."""
    text = statement(text)
    names = {n.lower() for n in _NAME.findall(text)}
    tokens = text_tokens(spoken_math(text))
    return " ".join("x" if (len(t) == 1 and t.isalpha()) or t in names else t for t in tokens)


# Formulas read out, so "$513^2 - 487^2$" and "the square of 513 minus the square of 487" embed alike.
_SPOKEN_MATH = tuple(
    (re.compile(pattern), words)
    for pattern, words in (
        (r"([\w})\]|])\s*-", r"\1 minus "),
        (r"\\[dt]?frac\s*(\{[^{}]*\}|\S)\s*(\{[^{}]*\}|\S)", r" \1 over \2 "),
        (r"\^\s*(?:\{\s*2\s*\}|2(?!\d))", " squared "),
        (r"\^\s*(?:\{\s*3\s*\}|3(?!\d))", " cubed "),
        (r"\^", " to the power "),
        (r"\\sqrt", " square root of "),
        (r"\\(?:cdot|times)|\*", " times "),
        (r"\\(?:le|leq|leqslant)(?![a-z])|≤|<=", " at most "),
        (r"\\(?:ge|geq|geqslant)(?![a-z])|≥|>=", " at least "),
        (r"\\(?:ne|neq)(?![a-z])|≠", " not equal to "),
        (r"\\equiv", " congruent to "),
        (r"\\p?mod", " modulo "),
        (r"<", " less than "),
        (r">", " greater than "),
        (r"=", " equals "),
        (r"\+", " plus "),
        (r"(?<=\d)\s*(?=[A-Za-z](?![A-Za-z]))", " times "),
    )
)
_SPOKEN_WORDS = tuple(
    (re.compile(pattern, re.I), words)
    for pattern, words in (
        (r"\b(?:twice|double)\b", "2 times"),
        (r"\bthrice\b", "3 times"),
        (r"\b(?:the\s+)?square\s+of\s+(\$?(?:\d+(?:\.\d+)?|\w+)\$?)", r"\1 squared"),
        (r"\b(?:the\s+)?cube\s+of\s+(\$?(?:\d+(?:\.\d+)?|\w+)\$?)", r"\1 cubed"),
        (r"\bis\s+equal\s+to\b|\bis\s+equal\b", "equals"),
        # Abbreviations a rewording spells out or back (a name like "GCD" would otherwise be folded to x).
        (r"\b(?:gcd|gcf|hcf)\b|\b(?:greatest|highest)\s+common\s+factor\b", "greatest common divisor"),
        (r"\blcm\b|\blowest\s+common\s+multiple\b", "least common multiple"),
    )
)


def spoken_math(text: str) -> str:
    """``text`` with its TeX math read out in words ("$3m + 4n = 100$" -> "3 times m plus 4 times n equals
    100") and common formula phrases in one form ("twice" -> "2 times", "the square of x" -> "x squared"),
    number words as digits: a formula restated in words and its TeX embed alike."""
    text = fold_number_words(text)
    for pattern, words in _SPOKEN_WORDS:
        text = pattern.sub(words, text)
    return TEX_MATH.sub(lambda m: " " + _read_out(m.group(0)) + " ", text)


def _read_out(math: str) -> str:
    for pattern, words in _SPOKEN_MATH:
        math = pattern.sub(words, math)
    return math


@_text_memo(1 << 14)
def content_words(text: str) -> frozenset[str]:
    """Lower-cased words of three letters or more, less the commonest function words."""
    return frozenset(t for t in text_tokens(statement(text)) if t.isalpha() and len(t) > 2 and t not in _STOP)


def number_agreement(pool_text: str, other_text: str) -> tuple[frozenset[str], float, bool]:
    """``(shared, Jaccard, swapped)`` of the two texts' numbers as `evidence` reads them: with their units, or
    without when that agrees more and at least two numbers are shared."""
    shared, numbers, swapped = _number_agreement(pool_text, other_text, units=True)
    if numbers < 1.0 or swapped:
        bare = _number_agreement(pool_text, other_text, units=False)
        if len(bare[0]) >= 2 and (bare[1], not bare[2]) > (numbers, not swapped):  # one bare "2" says little
            shared, numbers, swapped = bare
    return shared, numbers, swapped


# Answers too common to tell one problem from another: a digit, a parity, yes/no, a choice letter.
_UNTELLING = re.compile(r"-?\d|even|odd|neither|yes|no|true|false|none|\(?[a-e]\)?", re.I)
_ANSWER_MARKUP = re.compile(r"\\(?:text|mathrm|textbf)\s*\{([^{}]*)\}|\\circ|\^|\\[,!;]|\\|\$|\s")


def telling_answer(answer: str, pool_text: str = "") -> bool:
    """Whether ``answer`` is rarer than a digit, a parity, yes/no or a choice letter (what `confirm_by_answer`
    accepts as evidence: ``\\frac{5}{9}``, 255 and ``(-\\infty, 0]`` are; 2 and "even" are not).

    A worded answer counts by the value it states (`eval.grading.grader.gold_value`): CHAMP's "0 is the only possible
    value" is the digit 0, which many different problems share, not a rare sentence. An answer that is one of the
    numbers ``pool_text`` itself states tells nothing the numbers' agreement has not counted: "how many n in {1,
    ..., 100} satisfy ..." problems share the answer 100 with every sibling over the same range.
    """
    core = telling_core(answer)
    return core is not None and not (pool_text and core in plain_numbers(pool_text))


@functools.lru_cache(maxsize=1 << 14)
def telling_core(answer: str) -> str | None:
    """The value ``answer`` states, without markup, when it is rarer than a digit, a parity, yes/no or a choice
    letter (`telling_answer` before it looks at the pool text); else None."""
    core = _ANSWER_MARKUP.sub(lambda m: m.group(1) or "", gold_value(answer)).strip()
    return core if core and _UNTELLING.fullmatch(core) is None else None


@functools.lru_cache(maxsize=1 << 14)
def plain_numbers(text: str) -> frozenset[str]:
    """`curation.similarity.numbers_of` ``(text, words=False)``'s numbers (what `telling_answer` looks up), once per
    text."""
    return frozenset(numbers_of(text, words=False))


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for a batch of readings (`curation.meaning.screen.screen`, the model's
    batches): they allocate many small objects, none in a cycle (strings, tuples, frozensets; the caches' entries),
    and each pass of the collector they trigger walks the whole process's heap and frees nothing of theirs. Another
    thread's cycles wait for the batch's end (a second or so). The collector is left as it was found."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def forget_readings() -> None:
    """Empty the caches of this module keyed by texts (numbers, content): `curation.meaning.confirm.forget_texts`."""
    for cached in (_readings, _named_content, _content_pieces, content_words, plain_numbers):
        cached.cache_clear()
