"""Find the final answer in a model response (or in a gold that is a whole solution or a sentence).

Policy, first rule that yields wins (each is documented in docs/grader.md). Escapes eaten by string
escaping are repaired first, and text after a chat template's turn marker that follows some content is
another turn: it is dropped.
1. ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces, or ``\\boxed 5``): the last one, joined with the boxes
   just before it when only a short connector separates them (``\\boxed{-2} and \\boxed{1}``), unless a
   "final answer" marker after it states something mathematical (then that marker wins).
2. An answer marker: "final answer is", "Final Answer:", "the answer is", "Answer:", "**Answer:**",
   "# Answer", or "Answer" directly followed by math; the text after the last marker up to the end of
   its sentence or paragraph. A short label and a colon before only mathematics ("The matrix: $...$").
3. A bare answer (at most 4,000 characters, not prose) is returned whole.
4. The summary sentence (CHAMP responses end with one): "Yes, ..."/"No, ..." -> Yes/No; the sentence is
   cut after its main verb (first, then last) and explanatory clauses are cut; counts ("There are N",
   "At most two of", "for all 900 values"; "There are no ..." -> 0 only when the problem, if given, asks
   a count); else math segments after a verb, else the last math segment unless a verb after it is
   followed by a number, else the value after a verb cut at the first ordinary word; last, for responses,
   the one number of the sentence the problem does not mention. An ellipsis does not end a sentence.
5. Fallback: the last ``$...$`` segment, else a number that ends the text (not a bound such as ``> 0`` or
   "greater than 0"); None when there is neither.
Only the last 50,000 characters are searched, so a 100k-character response costs linear time.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from typing import NamedTuple

from eval.answers.escapes import repair_escapes
from eval.answers.number_words import UP_TO_TEN as NUMBER_WORDS

MAX_SEARCH_CHARS = 50_000
MAX_BARE_CHARS = 4_000  # a longer text is never a bare answer (the grader's answer limit)
_MAX_JOIN_GAP = 60
# A "last sentence" longer than this is no summary sentence (the rules that read one scan it once per verb):
# only the fallback reads it.
MAX_SENTENCE_CHARS = 2_000
_BOX = re.compile(r"\\\\?(?:boxed|fbox)\b")  # ``\\boxed`` (a JSON double escape) starts at its first backslash
_SPECIAL_TOKENS = re.compile(r"<\|[^|>]{0,40}\|>|</?think>")
# A chat template's turn markers: what follows the first one after some content is another turn.
_TURN_TOKEN = re.compile(r"<\|(?:im_end|im_start|eot_id|end|endoftext|start_header_id|user|assistant)\|>|</s>")
_MARKER = re.compile(
    r"final\s+answer\s*\**\s*(?:is|:)|the\s+(?:final\s+)?answer\s+is|answer\s*:|(?<!#)#++\s*answer\b"
    r"|\banswer\b\**(?=\s*(?:\$|\\\[|\\\())",
    re.IGNORECASE,
)
_LABEL_PREFIX = re.compile(r"^\s*[A-Za-z][A-Za-z ]{0,40}:\s*(?=\$|\\\(|\\\[)")
_HOPE = re.compile(r"(?<!\s)\s*+I hope (?:it|this) is correct\.?.*$", re.IGNORECASE | re.DOTALL)
_MATH_SEGMENT = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)  # fullmatch only
_SEGMENT_OPENER = re.compile(r"\$|\\[(\[]")
# (opener, closer, group index) in `_MATH_SEGMENT`'s order of alternatives
_SEGMENT_KINDS = (("$$", "$$", 0), ("$", "$", 1), ("\\(", "\\)", 2), ("\\[", "\\]", 3))
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?")
_VERB = re.compile(
    r"\b(?:(?:is|are) (?:equal|equivalent|congruent) to|(?:is|are) given by|equals|is|are|was|were|be|gives|get"
    r"|has|have|results? in|yields?|(?:factored|factori[sz]ed|written|expressed|rewritten|simplified) as)\b\s+|=\s*",
    re.IGNORECASE,
)
# A trailing clause that explains rather than answers: "is 8, achieved when $a = b = c$".
_TRAILING_CLAUSE = re.compile(
    r",?\s+\b(?:which (?:is|occurs|happens)|where|achieved|attained|obtained|occurring|since|because|when"
    r"|with equality|for all|for any|for every|if and only if|and (?:it|this|that|these|so|hence|thus|is|are)"
    r"|so that|which means|meaning|as an expression of|as a function of|in terms of|modulo)\b.*$",
    re.IGNORECASE | re.DOTALL,
)
_MAIN_VERB = re.compile(r"(?<!which )(?<!that )(?<!who )\b(?:is|are|equals|was|were)\b", re.IGNORECASE)
# Filler between a verb and its value: "is always 0", "is the interval [-1, 1]", "is the ordered pair (1, 2)".
_ADVERB = re.compile(
    r"^\s*(?:(?:always|only|exactly|just|precisely|simply|approximately|about|roughly|all equal to|either|the|interval"
    r"|set|value|number|ordered|pair|point|expression|formula|result|quantity|total|sum|product|answer)\s+)+",
    re.IGNORECASE,
)
_THERE_ARE = re.compile(
    r"^\s*there (?:are|is|exist|exists) (?:exactly |only |a total of |at most |at least )?", re.IGNORECASE
)
_YES_NO = re.compile(r"^\s*\**(yes|no)\b\s*[,.;:!]", re.IGNORECASE)
_COUNT_QUESTION = re.compile(r"\bhow (?:many|often)\b|\bnumber of\b|\bcount\b", re.IGNORECASE)
_QUANTIFIED = re.compile(
    r"^\s*(?:at (?:least|most)|exactly|precisely|an? (?:minimum|maximum) of),?\s+(?:only\s+)?([\w.]+)\b"
    r"(?!\s*[-+*/^=<>])",
    re.IGNORECASE,
)
# "You need at least 50 questions", "at least seventeen questions are needed": a count of what is needed.
_NEEDED = re.compile(
    r"\b(?:need|needs|require|requires|take|takes)\s+(?:at (?:least|most)\s+|an? (?:minimum|maximum) of\s+"
    r"|exactly\s+|only\s+)?(\w+)\s+[a-z]{3,}"
    r"|\b(?:at (?:least|most)|an? (?:minimum|maximum) of)\s+(\w+)\s+[a-z]{3,}\s+(?:are|is)\s+(?:needed|required)\b",
    re.IGNORECASE,
)
# "is the one who was originally numbered 601": the label of the one named.
_NUMBERED = re.compile(r"^(?:the )?(?:one|person|number|term|element)\b.*\b(?:numbered|label+ed|number)\s+(-?\d+)$")
# "the number is not 10 which is 1,000.99€": a number restated (converted) after another ends the sentence.
_RESTATED_NUMBER = re.compile(
    r"\b(?:is|are)\s+(?:not\s+)?[$€£]?-?\d[\d,.]*\s*[A-Za-z€$£%²³]{0,3}\s+which is\s+"
    r"[$€£]?(-?\d{1,3}(?:,\d{3})*(?:\.\d+)?(?:\s*[A-Za-z%]{1,3}[²³]?)?)[€$£]?\s*\.?\s*$"
)
# "Total : 2,74 $": a short label, a colon and one amount of money (the currency sign makes it a value).
_LABEL_NUMBER = re.compile(
    r"^\s*[A-Za-z][A-Za-z ]{0,40}:\s*(?:[$€£]\s*(-?\d[\d.,]*)|(-?\d[\d.,]*)\s*[$€£])(?:\s+\S{0,4})?\s*$"
)
# Inline math padded by line breaks (``$ \n 9 \n $``) is not inline math: a display needs ``$$`` or ``\[``.
# An environment (``$\n\begin{pmatrix}...\n$``) spans lines by nature and stays (`_drop_broken_inline`).
_BROKEN_DOLLARS = re.compile(r"(?<![$\\])\$(?!\$)[ \t]*\n(?:(?!\\begin)[^$])*\n[ \t]*\$(?!\$)")
_BROKEN_OPENING = re.compile(r"\\\([ \t]*\n")  # ``\(`` ending its line ...
_BROKEN_CLOSING = re.compile(r"\n(?=[ \t]*\\\))")  # ... and the next line starting ``\)``
_BROKEN_CLOSING_END = re.compile(r"\n[ \t]*\\\)")
_BROKEN_CANDIDATE = re.compile(r"\$|\\\(")
# "For what value(s) of k ...?" answered "... if and only if $k = -3$": the condition is the asked value.
_ASKED_VARIABLE = re.compile(
    r"\b(?:what|which) (?:real |integer |positive )?values?(?:\s*\(s\))? (?:of|for) ([A-Za-z])\b"
    r"|\bfind (?:all |the )?(?:possible )?(?:real |integer )?values? of ([A-Za-z])\b",
    re.IGNORECASE,
)
_CONDITION_WORD = r"(?:if and only if|iff|only if|only when|exactly when|precisely when|when|if)"
# "x_1^2+x_2^2+x_3^2 = 23, since ...": a leading math segment explained by what follows.
_EXPLAINED_SEGMENT = re.compile(
    r"^\s*(?:\$([^$]+)\$|\\\((.+?)\\\))\s*,?\s+(?:since|because|as|where|which|given|for)\b", re.DOTALL
)
# "... can be selected in (n^2 (n+1)^2)/4 ways": the count of ways.
_IN_WAYS = re.compile(r"\bin\s+(\S+?)\s+(?:different\s+|distinct\s+|possible\s+)?ways\b", re.IGNORECASE)
_ALL_OF_N = re.compile(r"\ball (?:of )?(?:the )?(?:first )?(\d+)\b(?!\s*[-+*/^=<>])", re.IGNORECASE)
_DENIED_COUNT = re.compile(
    r"\bthere (?:are|is|exist|exists) no\b|\b(?:has|have) no\b|\b(?:does|do) not have any\b", re.IGNORECASE
)
_DISCOURSE = re.compile(r"^\s*(?:therefore|thus|hence|so|consequently|finally|in conclusion|in summary),?\s+", re.I)
_HAS_NUMBER = re.compile(r"\d|\b(?:" + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)
# "... a total of $S$ times as an expression of $n$." (not "The value in terms of $n$ is ...").
_ASIDE = re.compile(
    r",?\s+\b(?:as an expression of|as a function of|in terms of)\b(?!.*\b(?:is|are|equals)\b).*$",
    re.IGNORECASE | re.DOTALL,
)
_NUMBER_WORDS = NUMBER_WORDS
_WORDED_OPERATORS = (
    (re.compile(r"(?<=[\w)])\s+factorial\b", re.I), "!"),
    (re.compile(r"(?<=[\w)])\s+squared\b", re.I), "^2"),
    (re.compile(r"(?<=[\w)])\s+cubed\b", re.I), "^3"),
)
# A number as written in prose: currency, thousands separators, a decimal comma, a unit after it.
_PROSE_NUMBER = re.compile(
    r"(?<![\w^_.,/\\])(?<![A-Za-z]-)[$€£]?(-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:[.,]\d+)?)(?![\d^_]|[.,]\d)"
)
_ENGLISH_2 = {
    "is",
    "of",
    "to",
    "in",
    "it",
    "be",
    "so",
    "we",
    "an",
    "as",
    "at",
    "by",
    "if",
    "on",
    "do",
    "go",
    "he",
    "me",
    "my",
    "up",
    "us",
    "am",
    "its",
}
_ENV_NAME = re.compile(r"\\(?:begin|end)\{[a-zA-Z*]*\}")
_BARE_TEXT = re.compile(r"^\s*\$?\s*\\(?:text|textbf|mathrm|mbox)\{[^{}$]*\}\s*\$?\s*\.?\s*$")
# A bound or a modulus, not an answer: "greater than 0", "x ≡ ±1 mod 3".
_BOUND_BEFORE = re.compile(
    r"(?:[<>=≤≥≠]|\b(?:than|least|most|exceeds|below|above|under|over|mod|modulo|pmod))$", re.IGNORECASE
)
_FINAL_NUMBER = re.compile(
    r"(?<![_^A-Za-z<>=≤≥≠\d.,/])\s*(" + _NUMBER.pattern + r")\s*(?:[A-Za-z]{1,3}[²³]?)?\s*[.!]?\s*$"
)  # a short unit may follow: "1,000.99m²"
_MATH_WORDS = {
    "sqrt",
    "pi",
    "and",
    "or",
    "mod",
    "ln",
    "log",
    "sin",
    "cos",
    "tan",
    "exp",
    "infinity",
    "inf",
    "binom",
    "frac",
    "text",
    "equivalently",
    "no",
    "yes",
}
_WORD = re.compile(r"(?<![\\a-zA-Z])[A-Za-z']{2,}")


def has_box(text: str) -> bool:
    """Whether ``text`` boxes an answer (``\\boxed`` or ``\\fbox``)."""
    return _BOX.search(text) is not None


_BRACE = re.compile(r"[{}]")  # what `_matching_braces` visits


def _matching_braces(text: str) -> dict[int, int]:
    """Index of each ``{`` -> index of its ``}``, in one linear pass (unclosed braces are absent). An escaped
    brace (``\\{``, ``\\}``: a literal brace, as in ``\\left\\{ ... \\right.``) does not group: one after an odd
    run of backslashes (``\\\\{`` is a backslash, then a brace that groups). The pass visits the braces alone (a
    regex finds them), each run of backslashes at most once: about 3x faster on MATH's solutions than a loop over
    every character (tests/test_extract.py holds it to that loop, bench/grader/extract_speed.py)."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for m in _BRACE.finditer(text):
        j = m.start()
        if j and text[j - 1] == "\\":
            k = j - 1
            while k and text[k - 1] == "\\":
                k -= 1
            if (j - k) % 2:  # an odd run of backslashes: this brace is escaped
                continue
        if text[j] == "{":
            stack.append(j)
        elif stack:
            pairs[stack.pop()] = j
    return pairs


class _Box(NamedTuple):
    """A boxed value: where ``\\boxed`` starts, where its argument ends, and the argument (without braces)."""

    start: int
    end: int
    value: slice


_BARE_VALUE = re.compile(r"[^\s$]+")  # ``\boxed 5``: the value runs to a blank or a dollar


def _boxes(text: str) -> list[_Box]:
    """Every box in order of its start, in linear time: the values are spans, not copies (6,000 nested boxes
    held copies of 144 million characters), and a run of bare boxes (``\\boxed\\boxed...5``) shares one value's
    end, found once."""
    found = []
    closing = _matching_braces(text) if "\\boxed" in text or "\\fbox" in text else {}
    run_end = 0
    for m in _BOX.finditer(text):
        i = m.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            if i in closing:
                found.append(_Box(m.start(), closing[i] + 1, slice(i + 1, closing[i])))
            continue
        if i >= run_end:  # inside the last run, the value ends where that run ends
            bare = _BARE_VALUE.match(text, i)
            run_end = bare.end() if bare else i
        if run_end > i:
            found.append(_Box(m.start(), run_end, slice(i, run_end)))
    return found


def _is_connector(gap: str) -> bool:
    """A short gap between two boxes that only joins them: words such as "and", punctuation, spacing commands,
    math delimiters, or a separator run (``++++++``, ``---``: three or more of one symbol, never an operator)."""
    if len(gap) > _MAX_JOIN_GAP or "\n\n" in gap or re.search(r"\.\s+[A-Z]", gap):
        return False
    return bool(
        re.fullmatch(
            r"[\s,;$.:]*(?:[a-z]{2,12}\s+(?=and|or))?(?:\\quad|\\qquad|\\text\{[^{}]*\}|and|or|&|\\\\|\\[()\[\]]"
            r"|([-+*=_~])\1{2,}+|[\s,;$:])*[\s,;$.]*",
            gap,
        )
    )


# ``y_1 = \boxed{…}``: the indexed name a box is stated for (a letter with a subscript, then ``=``).
_BOX_NAME = re.compile(r"(?<![A-Za-z\\])([A-Za-z])_(?:\{\s*([A-Za-z0-9]{1,3})\s*\}|([A-Za-z0-9]))\s*=\s*$")


def _box_name(text: str, start: int) -> tuple[str, str, int] | None:
    """(letter, index, where the name starts) of the name written right before the box at `start`."""
    m = _BOX_NAME.search(text, max(0, start - 40), start)
    return (m.group(1), m.group(2) or m.group(3), m.start()) if m else None


def _sibling_join(text: str, prev: _Box, names: list[tuple[str, str, int] | None]) -> bool:
    """Whether `prev` is stated for another index of the same letter as the boxes picked after it (``y_1 =
    \\boxed{…} and y_2 = \\boxed{…}``: the parts of one answer), with only a connector between. One name
    repeated (``k = \\boxed{5}`` or ``k = \\boxed{-3}``) is a solution weighing candidates, never joined: MATH
    solutions that write so keep only the last box as their answer."""
    earlier, later = _box_name(text, prev.start), names[0]
    if earlier is None or later is None or any(n is None or n[0] != earlier[0] for n in names):
        return False
    if earlier[1] in {n[1] for n in names if n is not None}:
        return False
    return later[2] >= prev.end and _is_connector(text[prev.end : later[2]])


class _Segment:
    """A math segment found by `math_segments`, with the part of `re.Match`'s interface the rules use."""

    __slots__ = ("_text", "_start", "_end", "_groups")

    def __init__(self, text: str, start: int, end: int, kind: int, content: str):
        self._text, self._start, self._end = text, start, end
        self._groups: tuple[str | None, ...] = tuple(content if k == kind else None for k in range(4))

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end

    def group(self, index: int = 0) -> str:
        return self._text[self._start : self._end] if index == 0 else self._groups[index - 1]  # type: ignore[return-value]

    def groups(self) -> tuple[str | None, ...]:
        return self._groups


def math_segments(text: str) -> list[_Segment]:
    """What ``_MATH_SEGMENT.finditer(text)`` finds (``$$…$$``, ``$…$``, ``\\(…\\)``, ``\\[…\\]``, the first
    alternative that matches at each position), in linear time: the regular expression rescans the rest of the
    text from every opener that has no closer (``\\(`` repeated 25,000 times took minutes). A closer not found
    from one position is not found from any later one, so each kind is searched for in vain at most once."""
    found: list[_Segment] = []
    missing_from = {"$$": len(text) + 1, "$": len(text) + 1, "\\)": len(text) + 1, "\\]": len(text) + 1}
    position = 0
    while (opener := _SEGMENT_OPENER.search(text, position)) is not None:
        start = opener.start()
        match = None
        for open_, close, kind in _SEGMENT_KINDS:
            if not text.startswith(open_, start):
                continue
            begin = start + len(open_)
            if begin + 1 >= missing_from[close]:
                continue
            stop = text.find(close, begin + 1)  # the content has at least one character
            if stop < 0:
                missing_from[close] = min(missing_from[close], begin + 1)
                continue
            match = _Segment(text, start, stop + len(close), kind, text[begin:stop])
            break
        if match is None:
            position = start + 1
            continue
        found.append(match)
        position = match.end()
    return found


def _sub_segments(text: str, replace: Callable[[_Segment], str]) -> str:
    """``_MATH_SEGMENT.sub(replace, text)`` over `math_segments`."""
    pieces, last = [], 0
    for segment in math_segments(text):
        pieces += [text[last : segment.start()], replace(segment)]
        last = segment.end()
    return "".join(pieces) + text[last:]


def _from_boxes(text: str) -> tuple[str, int] | None:
    """The last box (joined with the boxes just before it) and where it ends; boxes joined through their
    indexed names keep the names (``y_1 = A, y_2 = B``). A box around the picked ones (``\\boxed{\\boxed{5}}``)
    holds the same answer: it is no sibling, and the join stops there."""
    boxes = _boxes(text)
    if not boxes:
        return None
    picked = [boxes[-1]]
    names = [_box_name(text, boxes[-1].start)]
    named = False
    for prev in reversed(boxes[:-1]):
        if prev.end > picked[0].start:
            break
        if not named and _is_connector(text[prev.end : picked[0].start]):
            picked.insert(0, prev)
            continue
        if not (named or len(picked) == 1) or not _sibling_join(text, prev, names):
            break
        named = True
        picked.insert(0, prev)
        names.insert(0, _box_name(text, prev.start))
    if named:
        joined = (f"{n[0]}_{{{n[1]}}} = {text[b.value].strip()}" for n, b in zip(names, picked, strict=True) if n)
        return ", ".join(joined), boxes[-1].end
    return ", ".join(text[b.value].strip() for b in picked), boxes[-1].end


# ``The final answer is "7".``, ``\"$12$ and $13$\"`` (quotes a JSON string kept escaped): the quoted answer.
_QUOTED = re.compile(r'(?:\\?"|“)([^"“”]+?)(?:\\?"|”)\s*\.?')


def _cut_sentence(tail: str) -> str:
    tail = _HOPE.sub("", tail.lstrip(" \t*:#\n")).strip()
    tail = _sub_segments(tail, lambda m: m.group(0).replace("\n", " "))
    para = re.split(r"\n\s*\n", tail, maxsplit=1)[0]
    first = re.split(r"(?<=[^\d\s.])\.\s+(?=[A-Z\\$])|(?<=\$)\.\s+|\n", para, maxsplit=1)[0]
    first = first.strip().strip("*").strip()
    quoted = _QUOTED.fullmatch(first)
    return quoted.group(1).strip() if quoted else first


def _from_marker(text: str) -> tuple[str, int, bool] | None:
    """The answer after the last marker, where the marker starts, and whether it says "final answer". Every marker
    has the word "answer" in it: a text without it (casefolded, as the regex's case-blind matching sees ``ſ`` as an
    ``s``) has none, found without the regex's scan (9 in 10 of MATH's solutions; the scan cost ~90 ns a character)."""
    if "answer" not in text.casefold():
        return None
    last = None
    for m in _MARKER.finditer(text):
        last = m
    if last is None:
        return None
    tail = _cut_sentence(text[last.end() :])
    # a sentence over `MAX_SENTENCE_CHARS` is no summary sentence here either (5,000 verbs in 20,000 characters
    # after "Answer:" were read once per verb: 3 s)
    if tail and is_prose(tail):
        answer = _from_sentence(tail) if len(tail) <= MAX_SENTENCE_CHARS else None
    else:
        answer = tail or None
    if not answer:
        return None
    return answer, last.start(), "final" in last.group(0).lower()


def is_prose(text: str) -> bool:
    """Whether `text` reads as sentences rather than a bare answer (three or more ordinary words)."""
    if _BARE_TEXT.match(text):
        return False
    outside_math = _sub_segments(_ENV_NAME.sub(" ", text), lambda m: " ")
    words = [
        w
        for w in _WORD.findall(outside_math)
        if w.lower() not in _MATH_WORDS and (len(w) > 2 or w.lower() in _ENGLISH_2)
    ]
    return len(words) >= 3 or (len(words) >= 2 and text.rstrip().endswith("."))


def _last_sentence(text: str) -> str:
    text = _HOPE.sub("", text).strip().rstrip(".").strip()
    parts = re.split(r"(?<=[^\d\s.])\.\s+|(?<=\$)\.\s+|(?<=\$\$|\\\])\s+(?=[A-Z])|\n+", text)
    parts = [p for p in parts if p.strip()]
    return parts[-1] if parts else text


def _is_math_word(tail: str, word: re.Match[str]) -> bool:
    """A short word between operators is a product of variables (``xy`` in ``- xy - yz``), not prose."""
    if word.group(0).lower() in _MATH_WORDS:
        return True
    # a window, not the whole prefix: slicing the prefix once per word was quadratic in the tail
    before = tail[max(0, word.start() - 64) : word.start()].rstrip()[-1:]
    after = tail[word.end() : word.end() + 64].lstrip()[:1]
    return len(word.group(0)) <= 3 and word.group(0).islower() and (before in "+-*/^(=" or after in "+-*/^)=")


# Named values: "the harmonic sum of the first n terms, H_n" is sum_(k=1)^n 1/k.
_HARMONIC = re.compile(
    r"^(?:the\s+)?(?:sum of the first (\w+) terms of the harmonic series|(?:\w+-th |nth )?harmonic (?:sum|number)"
    r"(?: of the first (\w+) terms)?(?:,?\s*H_\{?\w\}?)?|H_\{?([a-z])\}?"
    r"|harmonic series\b[^.;]*?\b(?:from k\s*=\s*1 to|up to|first) ([a-z]))\b",
    re.IGNORECASE,
)
# "The polynomial f(x) = 0 is the solution to the equation ...": the subject is the answer.
_SUBJECT_ANSWER = re.compile(
    r"^\s*(?:the\s+)?(?:(?:polynomial|function|value|number|sequence|pair|triple)\s+)?(.+?)"
    r"\s+is the (?:only |unique )?(?:solution|answer)\b",
    re.IGNORECASE,
)


def _named_value(tail: str) -> str | None:
    named = _HARMONIC.match(tail.strip())
    if named is None:
        return None
    count = next((g for g in named.groups() if g), "n")
    return f"\\sum_{{k=1}}^{{{count}}} \\frac{{1}}{{k}}"


def _cut_at_word(tail: str) -> str:
    """The value at the start of `tail`, up to its first ordinary word. Only the first `MAX_BARE_CHARS`
    characters are read (a longer value is over the answer limit anyway and is returned whole, untouched)."""
    head = tail[:MAX_BARE_CHARS]
    for pattern, symbol in _WORDED_OPERATORS:
        head = pattern.sub(symbol, head)
    for w in _WORD.finditer(head):
        if not _is_math_word(head, w):
            return head[: w.start()].strip().rstrip(",;:").strip()
    return head.strip() if len(tail) <= MAX_BARE_CHARS else tail.strip()


def _all_math(tail: str) -> bool:
    return bool(tail.strip()) and _cut_at_word(tail) == tail.strip()


def _number_words(text: str) -> str:
    """Number words at the start of a value read as digits: "is zero" -> "is 0"."""
    return re.sub(
        r"^\s*(" + "|".join(_NUMBER_WORDS) + r")\b", lambda m: _NUMBER_WORDS[m.group(1).lower()], text, flags=re.I
    )


def _digits(word: str) -> str:
    return _NUMBER_WORDS.get(word.lower(), word)


def _counted(sentence: str, problem: str | None) -> str | None:
    """Counts stated in words: "There are no ..." (0), "At most two of ...", "for all 900 values"."""
    counting = problem is None or bool(_COUNT_QUESTION.search(problem))
    there = _THERE_ARE.match(sentence)
    if there and re.match(r"no\b", sentence[there.end() :], re.IGNORECASE):
        return "0" if counting else None  # "There are no such pairs": a count of zero, if a count was asked
    quantified = _QUANTIFIED.match(sentence)
    if quantified and re.fullmatch(r"\d+", _digits(quantified.group(1))):
        return _digits(quantified.group(1))
    if there:
        value = _cut_at_word(_number_words(sentence[there.end() :]))
        return value if value and re.search(r"\d", value) else None
    every = _ALL_OF_N.search(sentence)
    return every.group(1) if every and counting else None


def _denies_count(sentence: str) -> bool:
    """Whether "X has no Y" is the main statement (not inside "... that have no two successive numbers")."""
    denied = _DENIED_COUNT.search(sentence)
    if denied is None or re.search(r"\b(?:but|however|except|only|other than)\b", sentence[denied.end() :], re.I):
        return False  # "has no real roots, but two complex double roots": the denial is not the whole answer
    return not re.search(r"\b(?:that|which|who|whose|where)\b", sentence[: denied.start()], re.IGNORECASE)


def _novel_number(sentence: str, problem: str | None) -> str | None:
    """The one number of the sentence (one the problem does not mention, when the problem is known)."""
    if re.search(r"['\"`]|__|/\w+/", sentence):  # quoted text, code or a path: not a statement of a value
        return None
    plain = _sub_segments(sentence, lambda m: m.group(0).strip("$"))
    numbers = [  # not a bound: "for x, y > 0", "greater than 0"
        m.group(1)
        for m in _PROSE_NUMBER.finditer(plain)
        if not _BOUND_BEFORE.search(plain[max(0, m.start() - 40) : m.start()].rstrip())
    ]
    if problem is not None:
        given = {m.group(1).replace(",", "") for m in _PROSE_NUMBER.finditer(problem)}
        numbers = [n for n in numbers if n.replace(",", "") not in given]
    distinct = list(dict.fromkeys(numbers))
    return distinct[0] if len(distinct) == 1 else None


def _clauses(sentence: str) -> list[str]:
    """The sentence cut after its main verb: at the first "is"/"are", then at the last one (the first may sit
    in a relative clause: "The probability that no two trees are adjacent ... is approximately 35.71%")."""
    sentence = _ASIDE.sub("", sentence)
    verbs = list(_MAIN_VERB.finditer(sentence))
    clauses = []
    for verb in verbs[:1] + verbs[-1:]:
        head, tail = sentence[: verb.end()], sentence[verb.end() :]
        clauses.append(head + " " + (_TRAILING_CLAUSE.sub("", tail).strip().rstrip(".,;").strip() or tail))
    return list(dict.fromkeys(clauses)) or [sentence]


def _from_sentence(sentence: str, problem: str | None = None, guess: bool = True) -> str | None:
    sentence = _DISCOURSE.sub("", sentence)
    yes_no = _YES_NO.match(sentence)
    if yes_no:
        return yes_no.group(1).capitalize()
    conditioned = conditioned_value(sentence, problem)
    if conditioned:
        return conditioned
    subject = _SUBJECT_ANSWER.match(sentence)
    if subject and _all_math(subject.group(1)) and "=" in subject.group(1):
        return subject.group(1).strip("$ ")
    restated = _RESTATED_NUMBER.search(sentence)
    if restated:
        return restated.group(1)
    needed = _NEEDED.search(sentence) if problem is None or _COUNT_QUESTION.search(problem) else None
    if needed and re.fullmatch(r"\d+", _digits(needed.group(1) or needed.group(2))):
        return _digits(needed.group(1) or needed.group(2))
    for clause in _clauses(sentence):
        if _THERE_ARE.match(clause) or _QUANTIFIED.match(clause) or _ALL_OF_N.search(clause):
            counted = _counted(clause, problem)
            if counted or _THERE_ARE.match(clause):
                return counted
        elif problem is not None and _COUNT_QUESTION.search(problem) and _denies_count(clause):
            return "0"  # "The polynomial has no roots with multiplicity greater than 1"
        value = _stated_value(clause)
        if value:
            return value
    ways = _IN_WAYS.search(sentence)
    if ways and (re.search(r"[\d^*/()+!]", ways.group(1)) or len(ways.group(1)) == 1):
        return ways.group(1)
    return _novel_number(sentence, problem) if guess else None


def conditioned_value(sentence: str, problem: str | None) -> str | None:
    """``k = -3`` from "... is divisible by x+y+z if and only if k = -3" when the problem asks for the values of
    k: a condition on the asked variable, with one value, is the answer (None otherwise)."""
    asked = _ASKED_VARIABLE.search(problem or "")
    if asked is None:
        return None
    name = re.escape(asked.group(1) or asked.group(2))
    plain = _sub_segments(sentence, lambda m: " " + next(g for g in m.groups() if g is not None) + " ")
    # the condition ends the sentence and names one value: "if and only if k = -3" (not "k = -3 or k = 3")
    found = re.search(rf"\b{_CONDITION_WORD}\s+{name}\s*=\s*(-?[\w./^{{}}\\]+)\s*\.?\s*$", plain.strip())
    return f"{asked.group(1) or asked.group(2)} = {found.group(1)}" if found else None


def _segment_run(sentence: str, segments: list[_Segment]) -> str | None:
    """``are \\(a = 3\\), \\(b = -7\\), and \\(c = 4\\)``: math segments right after a verb, joined."""
    run = [segments[-1]]
    for prev in reversed(segments[:-1]):
        if not re.fullmatch(r"[\s,]*(?:and|or)?[\s,]*", sentence[prev.end() : run[0].start()]):
            break
        run.insert(0, prev)
    if len(run) < 2 or not re.search(r"\b(?:is|are|be|was|were|equals?)\s*$", sentence[: run[0].start()]):
        return None
    return ", ".join(next(g for g in m.groups() if g is not None).strip() for m in run)


def _stated_value(sentence: str) -> str | None:
    segments = math_segments(sentence)
    verbs = [v for v in _VERB.finditer(sentence) if not segments or v.start() > segments[-1].end()]
    # A verb after the last math segment followed by a number states the value in prose ("$(x+y+z)^{1999}$ will
    # have 2,001,000 terms after like terms are collected"); else the last segment (or run of them) is the answer.
    if segments and not (verbs and _HAS_NUMBER.search(sentence, verbs[0].end())):  # a number after any verb
        return _segment_run(sentence, segments) or next(g for g in segments[-1].groups() if g is not None).strip()
    named = next((n for v in verbs if (n := _named_value(sentence[v.end() :]))), None)
    if named:  # "is the harmonic sum of the first n terms": a value named in words
        return named
    # The first verb after which only mathematics follows ("are a = 3 and b = -4"), else the last verb.
    first_math = next((v for v in verbs if _all_math(sentence[v.end() :])), None)
    for verb in ([first_math] if first_math is not None else []) + list(reversed(verbs)):
        numbered = _NUMBERED.match(_ADVERB.sub("", sentence[verb.end() :]).strip().rstrip("."))
        if numbered:
            return numbered.group(1)
        value = _cut_at_word(_number_words(_ADVERB.sub("", sentence[verb.end() :])))
        if value and re.search(r"[\dA-Za-z(]", value):
            return _digits(value)
    return None


def _fallback(text: str) -> str | None:
    segments = [next(g for g in m.groups() if g is not None) for m in math_segments(text)]
    if segments:
        return segments[-1].strip()
    # Only a number that ends the text (a short unit may follow): "holds for 99 values of n in {1, ..., 100}"
    # does not answer 100, nor does "for x, y, z > 0" answer 0.
    tail = text[-200:]
    last = _FINAL_NUMBER.search(tail)
    if last is None or _BOUND_BEFORE.search(tail[: last.start(1)].rstrip()):
        return None
    return last.group(1)


# A value said twice is short: the two rules below that drop the copy read only answers up to this long (their
# regular expressions try every split of the answer: 15,000 ``x (`` took 26 s in one call).
MAX_RESTATED_CHARS = 1_000


def _clean(answer: str) -> str:
    answer = answer.strip().rstrip(".").strip()
    answer = _DISCOURSE.sub("", answer, count=1)  # "the answer is therefore $5$": the word is not the answer
    short = len(answer) <= MAX_RESTATED_CHARS
    # "n! (n!)": a value restated in brackets (2(2) is 4)
    repeated = re.fullmatch(r"(.+?)\s+\(\s*(.+?)\s*\)", answer) if short else None
    if repeated and repeated.group(1).replace(" ", "") == repeated.group(2).replace(" ", ""):
        answer = repeated.group(1)
    if len(answer) > 1 and answer[0] == answer[-1] == "$" and "$" not in answer.strip("$"):
        answer = answer.strip("$").strip()
    # "n!, or n!" (from "n factorial")
    restated = re.fullmatch(r"(.+?),?\s+or\s+(?:equivalently\s+)?(.+)", answer) if short else None
    if restated and restated.group(1).replace(" ", "") == restated.group(2).replace(" ", ""):
        answer = restated.group(1)
    return answer


def _squashed(text: str) -> str:
    return re.sub(r"[\s${}]|\\[()]|\\left|\\right", "", text).replace("*", "").lower()


def _asked_value(answer: str, problem: str | None) -> str:
    """``x_1^2+x_2^2+x_3^2 = 23`` for "Find x_1^2+x_2^2+x_3^2": an equation whose left side is the expression the
    problem asks for (written out, not a lone name) answers with its right side."""
    if not problem or answer.count("=") != 1 or re.search(r"[<>≤≥]|\\[lg]e", answer):
        return answer
    lhs, rhs = (side.strip() for side in answer.split("="))
    squashed = _squashed(lhs)
    if len(squashed) < 4 or not re.search(r"[-+^*/(]", lhs) or not rhs:
        return answer
    return rhs if squashed in _squashed(problem) else answer


def _cut_turns(text: str) -> str:
    """Drop everything from the first turn marker that follows some content (a chat template's next turn)."""
    blanked = _SPECIAL_TOKENS.sub(lambda t: " " * len(t.group(0)), text)  # once, not once per marker
    content = len(blanked) - len(blanked.lstrip())  # where the first character outside special tokens is
    for m in _TURN_TOKEN.finditer(text):
        if content < m.start():
            return text[: m.start()]
    return text


def _from_label(text: str) -> str | None:
    """``The matrix: $...$``: a short label, a colon, then only mathematics."""
    m = _LABEL_PREFIX.match(text)
    if m is None or len(text) > MAX_BARE_CHARS:
        return None
    rest = text[m.end() :].strip().rstrip(".").strip()
    whole = _MATH_SEGMENT.fullmatch(rest)
    return next(g for g in whole.groups() if g is not None).strip() if whole else None


def _looks_mathematical(answer: str) -> bool:
    answer = _clean(answer)
    return len(answer) <= 2 or bool(re.search(r"[\d\\^_=+\-*/]", answer)) and not is_prose(answer)


def _drop_broken_inline(text: str) -> str:
    """``text`` with each inline formula padded by line breaks replaced by a blank: ``$`` or ``\\(`` ending its
    line, to a line starting with the closing ``$`` or ``\\)``, with no ``\\begin`` between (what the one regular
    expression ``$...$|\\(...\\)`` with a lazy middle did, leftmost first). The ``\\(`` kind is found through the
    closing lines' positions: the lazy middle scanned to the text's end from every ``\\(`` left open, 10 s for a
    50,000-character response of ``\\(`` lines, beyond any deadline (one C call)."""
    if "\n" not in text:
        return text
    closings = [m.start() for m in _BROKEN_CLOSING.finditer(text)]
    begins = [m.start() for m in re.finditer(r"\\begin", text)]
    kept, last, position = [], 0, 0
    while candidate := _BROKEN_CANDIDATE.search(text, position):
        start, end = candidate.start(), None
        if text[start] == "$":
            dollars = _BROKEN_DOLLARS.match(text, start)
            end = dollars.end() if dollars else None
        elif (opening := _BROKEN_OPENING.match(text, start)) and (
            after := bisect.bisect_left(closings, opening.end())
        ) < len(closings):
            closing = closings[after]
            blocked = bisect.bisect_left(begins, opening.end())
            if blocked == len(begins) or begins[blocked] > closing:
                end = _BROKEN_CLOSING_END.match(text, closing).end()  # type: ignore[union-attr]
        if end is None:
            position = start + 1
            continue
        kept += [text[last:start], " "]
        last = position = end
    return "".join(kept) + text[last:]


def _from_box_or_marker(text: str) -> str | None:
    """The boxed answer, unless a "final answer" marker after the last box states a mathematical answer."""
    boxed, marked = _from_boxes(text), _from_marker(text)
    if boxed and marked and marked[2] and marked[1] > boxed[1] and _looks_mathematical(marked[0]):
        return marked[0]
    return boxed[0] if boxed else (marked[0] if marked else None)


def extract_answer(text: str, *, fallback: bool = True, problem: str | None = None) -> str | None:
    """The final answer in `text`, or None when it has none (see the module docstring for the policy).

    Args:
        text: A full model response, a solution, a sentence or a bare answer.
        fallback: Apply rule 5 (last math segment or number); the grader turns it off for golds.
        problem: The problem text, when known: "There are no ..." is a count of zero only when the
            problem asks a count, and a summary sentence's answer is a number the problem does not mention.

    Returns:
        The answer as written (LaTeX or plain), without surrounding ``$`` or box.
    """
    if not text or not text.strip():
        return None
    text = _SPECIAL_TOKENS.sub(" ", _cut_turns(repair_escapes(text[-MAX_SEARCH_CHARS:])))
    text = _drop_broken_inline(text)
    found = _from_box_or_marker(text) or _from_label(text)
    if found:
        return _clean(found)
    explained = _EXPLAINED_SEGMENT.match(text)
    if explained:
        return _asked_value(_clean(explained.group(1) or explained.group(2)), problem)
    labelled = _LABEL_NUMBER.match(text)
    if labelled:
        return labelled.group(1) or labelled.group(2)
    if len(text) <= MAX_BARE_CHARS and not is_prose(text):
        bare = text.strip()  # "Therefore $5$." alone: the value after the word
        return _asked_value(_clean(bare) if _DISCOURSE.match(bare) else bare, problem) or None
    sentence = _last_sentence(text)
    found = (_from_sentence(sentence, problem, fallback) if len(sentence) <= MAX_SENTENCE_CHARS else None) or (
        _fallback(text) if fallback else None
    )
    return _asked_value(_clean(found), problem) if found else None
