"""Answers in words that olympiad solutions box: a canonical reading of the few shapes they take.

Strong models end olympiad solutions with a boxed phrase rather than a value: ``\\text{No such } n
\\text{ exists}``, ``\\varnothing``, ``\\text{Impossible}``, ``\\text{all odd primes}``, ``p \\text{ is an odd
prime}``, ``n \\equiv 1 \\pmod 2``, ``n = 2^k \\text{ for some integer } k \\ge 0``. Compared as strings these
miss; read here, each becomes one of three canonical forms:

- ``("yesno", "yes" | "no")``: an answer that opens with Yes or No;
- ``("none",)``: a denial of existence (no such ..., none, no solutions, the empty set, impossible), with
  nothing singled out ("only", "except", "but");
- ``("set", parity, noun, bound, power_of_two)``: a described set of integers ("all odd primes", "every
  prime except 2", "all primes p \\ge 3" are one set: odd primes; "n is even", "n = 2k" are even integers).

A "none" answer answers a yes/no gold "No" only when the problem asks whether something exists or is
possible (or "can"/"must" questions), and a Yes/No answer answers a "none" gold the same way. A phrase
outside these shapes reads as nothing (None) and the other rules decide: this module only says equal
for readings it is sure of.
"""

from __future__ import annotations

import re
from functools import lru_cache

Reading = tuple

_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
_DOMAINS = (
    (
        r"\\mathbb\s*\{?\s*Z\s*\}?\s*(?:_\s*\{\s*>\s*0\s*\}|_\s*\{\s*\\geq?\s*1\s*\}|\^\s*\{?\s*\+\s*\}?|_\s*\+)",
        " positive integers ",
    ),
    (r"\\mathbb\s*\{?\s*N\s*\}?(?:\s*\^\s*\{?\s*\+\s*\}?|\s*_\s*\{?\s*>\s*0\s*\}?)?", " positive integers "),
    (r"\\mathbb\s*\{?\s*Z\s*\}?", " integers "),
)
_EMPTY = re.compile(r"^(?:\\varnothing|\\emptyset|∅|\\\{\s*\\\}|\{\s*\})$")
_SINGLES_OUT = re.compile(r"\b(?:only|except|besides|but|other than|unless)\b")
_NONE = re.compile(
    r"^(?:none|no solutions?|no (?:real |integer |positive |such )*"
    r"(?:solutions?|roots?|pairs?|triples?|values?|numbers?|integers?|functions?|primes?|polynomials?)(?: exists?)?"
    r"|no such \w+(?: \w+)?(?: exists?| can exist)?|there (?:is|are|exists?) no(?: such)? .{1,40}"
    r"|(?:it is )?(?:impossible|not possible)|empty set|the empty set|(?:the )?(?:equation|system) has no .{1,30}"
    r"|no \w+(?: \w+)? exists?|does not exist|cannot exist|no such)$"
)
_YES_NO = re.compile(r"^(yes|no)(?:$|[,.;:!])")
_NOT_NECESSARILY = re.compile(r"^not (?:necessarily|always)$")
_POSSIBLE = re.compile(r"^(?:yes,? )?(?:it is |this is )?(?:possible|it can be done)$")
_EXISTENCE_QUESTION = re.compile(
    r"\b(?:does there exist|do there exist|is there|are there|exists?|is it possible|can|could|possible)\b", re.I
)
_MUST_QUESTION = re.compile(r"\b(?:must|necessarily|always)\b", re.I)
_VAR = r"(?:[a-z](?:_\{?\w+\}?)?)"
_PARITY = r"(odd|even)"
_NOUN = r"(primes?|prime numbers?|positive integers?|natural numbers?|integers?|numbers?)"
_BOUND = r"(?:\s*(>=|>)\s*(\d+))?"
_SET_FORMS = (
    # all odd primes p >= 3 / every odd positive integer n / all n / all primes except 2
    re.compile(rf"^(?:all|every|any|each)(?: the)?(?: {_PARITY})?(?: {_NOUN})?(?: {_VAR})?{_BOUND}( except 2)?$"),
    re.compile(rf"^(?:all|every|any|each) {_VAR}{_BOUND}$"),
    # p is an odd prime / n is odd / n odd / p is any odd prime
    re.compile(rf"^{_VAR}(?: is| must be)?(?: an?| any)? {_PARITY}(?: {_NOUN})?{_BOUND}$"),
    re.compile(rf"^{_PARITY} {_NOUN}(?: {_VAR})?{_BOUND}$"),
)
_CONGRUENT_PARITY = re.compile(rf"^{_VAR} (?:\\equiv|≡) ([01]) (?:\\pmod|\(mod|mod) ?\{{?2\}}?\)?$")
_TWO_K = re.compile(rf"^{_VAR} = 2 ?([a-z])( \+ 1)?(?:,? (?:for\b|where\b|with\b|[a-z]\b).*)?$")
_POWER_OF_TWO = re.compile(
    rf"^(?:{_VAR} (?:is|must be) an? (?:power|powers) of 2|(?:all |the )?powers of 2|{_VAR} = 2 ?\^ ?\{{?[a-z]\}}?"
    r"(?: (?:for (?:some|any)|,|where|with) (?:non-?negative )?(?:integer )?[a-z]?"
    r"(?: ?(?:>=|\\geq?|≥) ?0| ?\\in .*)?)?)$"
)


def _plain(text: str) -> str:
    """Lower-case words: ``\\text{}`` unwrapped, number sets named, ``\\ge``/``\\geq``/``≥`` as ``>=``."""
    s = text.strip().strip("$").strip()
    for _ in range(3):
        s = _WRAPPERS.sub(r" \1 ", s)
    for pattern, words in _DOMAINS:
        s = re.sub(pattern, words, s)
    s = re.sub(r"\\geq?\b|≥", " >= ", s)
    s = re.sub(r"\\(?:quad|qquad|,|;|!|\s)", " ", s)
    s = re.sub(r"\\in\b", " in ", s)
    s = re.sub(r"\s*>\s*=\s*", " >= ", s)
    s = re.sub(r"(?<![<>=])\s*>\s*(?!=)", " > ", s)
    s = re.sub(r"\s*(?<![<>!])([=+])\s*", r" \1 ", s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip().lower()
    return s.replace("positive integer ", "positive integers ").replace(" in positive integers", "")


def _set_reading(parity: str | None, noun: str | None, op: str | None, bound: str | None, odd_only: bool) -> Reading:
    noun_kind = None
    if noun:
        positive = noun.startswith(("positive", "natural"))
        noun_kind = "prime" if noun.startswith("prime") else "posint" if positive else "int"
    lower = None
    if op and bound:
        lower = int(bound) + (1 if op == ">" else 0)
    if noun_kind == "prime" and (odd_only or lower == 3):
        parity, lower = "odd", None  # the primes from 3 on are the odd primes
    elif odd_only:
        return ("unread",)
    return ("set", parity, noun_kind, lower, False)


@lru_cache(maxsize=4096)
def reading(text: str) -> Reading | None:
    """The canonical reading of a worded answer, or None when it takes none of the shapes above."""
    raw = text.strip().strip("$").strip()
    if len(raw) > 400:  # worded answers are short phrases
        return None
    if _EMPTY.match(raw):
        return ("none",)
    s = _plain(raw)
    if not s or len(s) > 120:
        return None
    yes_no = _YES_NO.match(s)
    if yes_no:
        return ("yesno", yes_no.group(1))
    if _POSSIBLE.match(s):
        return ("yesno", "yes")
    if _NOT_NECESSARILY.match(s):
        return ("yesno", "no")
    if _NONE.match(s) and not _SINGLES_OUT.search(s):
        return ("none",)
    if _POWER_OF_TWO.match(s):
        return ("set", None, None, None, True)
    m = _CONGRUENT_PARITY.match(s)
    if m:
        return ("set", "odd" if m.group(1) == "1" else "even", None, None, False)
    m = _TWO_K.match(s)
    if m:
        return ("set", "odd" if m.group(2) else "even", None, None, False)
    for form in _SET_FORMS:
        m = form.match(s)
        if m:
            groups = dict(enumerate(m.groups()))
            if form is _SET_FORMS[1]:
                return _set_reading(None, None, groups[0], groups[1], False)
            if form is _SET_FORMS[0]:
                return _set_reading(groups[0], groups[1], groups[2], groups[3], bool(groups[4]))
            if form is _SET_FORMS[2]:
                return _set_reading(groups[0], groups[1], groups[2], groups[3], False)
            return _set_reading(groups[0], groups[1], groups[2], groups[3], False)
    return None


def _sets_equal(g: Reading, p: Reading) -> bool:
    _, g_parity, g_noun, g_lower, g_pow = g
    _, p_parity, p_noun, p_lower, p_pow = p
    if g_pow or p_pow:
        return g_pow == p_pow
    nouns_agree = g_noun == p_noun or ({g_noun, p_noun} <= {None, "int", "posint"} and None in {g_noun, p_noun})
    return g_parity == p_parity and nouns_agree and g_lower == p_lower


def worded_equal(gold: str, answer: str, problem: str | None) -> bool | None:
    """Whether a worded answer says what a worded gold says; None when either is not read (other rules
    decide). A denial of existence answers "No" (and "Yes" is wrong) only for a question that asks
    whether something exists, is possible, can or must hold."""
    g, p = reading(gold), reading(answer)
    if g is None or p is None or g == ("unread",) or p == ("unread",):
        return None
    if g[0] == p[0] == "set":
        return _sets_equal(g, p)
    if g == p:
        return True
    kinds = {g[0], p[0]}
    if kinds == {"yesno", "none"} and problem and _asks_existence(problem):
        yes_no = g if g[0] == "yesno" else p
        return yes_no[1] == "no"
    if kinds <= {"yesno", "none"}:
        return False if g[0] == p[0] else None
    return False if "set" in kinds and kinds <= {"set", "none"} else None


def _asks_existence(problem: str) -> bool:
    question = problem.rsplit("?", 1)[0][-300:] if "?" in problem else problem[-300:]
    return bool(_EXISTENCE_QUESTION.search(question) or _MUST_QUESTION.search(question))
