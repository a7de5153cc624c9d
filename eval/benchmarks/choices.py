"""Multiple choice done fairly: options parsed from the question, shuffled per problem and per sample.

LIMO's GPQA file has the right option at A in all 198 rows, so a model that always answers "A" would
score 100%. Here every (problem, sample) gets its own permutation of the options, drawn from
``row_seed(seed, "<problem id>#choices", sample index)`` (recorded in the sample row with the order), the
question is rewritten with the options in that order under the same letters and layout, and the gold
becomes the letter where the right option's text now stands. Grading (`grade_choice`) reads a letter
(``\\boxed{C}``, ``(C)``, ``C. text``) or, failing that, an answer equal to one option's text.

Options are found as a run of markers A, B, C, ... in order (``A.``, ``A、``, ``(A)``, ``\\mathrm{A.}``),
inline (Gaokao) or one per line (GPQA, Kaoyan); the last option ends at a blank line or a closing LaTeX
environment, so the instruction after it stays in place. A question whose options cannot be parsed, or
whose gold letter is not among them, is presented unchanged (``choice_order: null`` in its rows).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from eval.backends.base import row_seed
from eval.problem import Problem

LETTERS = "ABCDEFGH"
_MARKER = re.compile(
    r"\\mathrm\{\s*(?P<m>[A-H])\s*[.．]?\s*\}[.．]?"
    r"|[(（]\s*(?P<p>[A-H])\s*[)）]"
    r"|(?P<d>[A-H])\s?[.．、:：](?!\d)"
)
_LAST_END = re.compile(r"\n\s*\n|\\n\\end\{|\n?\\end\{|\\n\\n")
_LETTER_ANSWER = re.compile(r"^\s*\(?([A-H])\)?\s*(?:[.．、:：]|$)")
_LETTER_SET = re.compile(r"^\s*([A-H](?:\s*[,，、]?\s*[A-H])*)\s*$")


@dataclass(frozen=True)
class ParsedChoices:
    """A question cut into its options: ``head`` + (marker, lead, text, sep) per option + ``tail``."""

    head: str
    markers: tuple[str, ...]
    leads: tuple[str, ...]
    texts: tuple[str, ...]
    seps: tuple[str, ...]
    tail: str

    @property
    def letters(self) -> str:
        return LETTERS[: len(self.texts)]

    def render(self, order: tuple[int, ...]) -> str:
        """The question with option ``order[i]``'s text under the i-th letter."""
        parts = [self.head]
        for i, source in enumerate(order):
            parts += [self.markers[i], self.leads[i], self.texts[source], self.seps[i]]
        return "".join(parts) + self.tail


@dataclass(frozen=True)
class Presented:
    """One sample's view of a problem: the question text, its gold, and how its options were ordered."""

    question: str
    gold: str
    order: str | None = None  # original letters in their new places ("CADB"); None: not shuffled
    seed: int | None = None
    options: tuple[str, ...] = ()  # option texts in presented order (for answers given as text)


def _markers(text: str) -> list[tuple[str, int, int]]:
    """Option markers; a bare ``A.`` counts only after a space, a bracket, ``$``, a newline (also the
    two characters ``\\n`` some files hold) or the start, so ``point A.`` inside a word or ``\\mathrm{A.}`` is
    not read twice."""
    found = []
    for m in _MARKER.finditer(text):
        if m.group("d") and m.start() > 0:
            before = text[max(0, m.start() - 2) : m.start()]
            if (before[-1].isalnum() or before[-1] in "\\{_^") and before != "\\n":
                continue
        found.append((m.group("m") or m.group("p") or m.group("d"), m.start(), m.end()))
    return found


def _chain(markers: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """The longest run A, B, C, ... of markers in text order (the last such run on a tie)."""
    best: list[tuple[str, int, int]] = []
    for i, (letter, _, _) in enumerate(markers):
        if letter != "A":
            continue
        run = [markers[i]]
        for marker in markers[i + 1 :]:
            if marker[0] == LETTERS[len(run)] and len(run) < len(LETTERS) - 1:
                run.append(marker)
        if len(run) >= len(best):
            best = run
    return best if len(best) >= 2 else []


def _trim(raw: str) -> str:
    """An option's text without surrounding space, LaTeX line breaks or literal ``\\n`` separators."""
    content = raw.strip()
    while content.endswith(("\\n", "\\")):
        content = content[:-2].rstrip() if content.endswith("\\n") else content.rstrip("\\").rstrip()
    return content


def parse_choices(question: str) -> ParsedChoices | None:
    """Cut ``question`` into head, options and tail; None when it holds no run of at least two options."""
    run = _chain(_markers(question))
    if not run:
        return None
    markers, leads, texts, seps = [], [], [], []
    end = len(question)
    for i, (_, start, stop) in enumerate(run):
        if i + 1 < len(run):
            raw = question[stop : run[i + 1][1]]
        else:
            cut = _LAST_END.search(question, stop)
            end = cut.start() if cut else len(question)
            raw = question[stop:end]
        content = _trim(raw)
        if not content:
            return None
        lead = raw[: len(raw) - len(raw.lstrip())]
        markers.append(question[start:stop])
        leads.append(lead)
        texts.append(content)
        seps.append(raw[len(lead) + len(content) :])
    return ParsedChoices(
        question[: run[0][1]], tuple(markers), tuple(leads), tuple(texts), tuple(seps), question[end:]
    )


def gold_letters(problem: Problem) -> str | None:
    """The gold option letter(s) of a problem: a ``choice_answer`` field, or an answer that is a letter
    (``C``, ``C. text``, ``AB``); None for a free-form answer."""
    choice = problem.extra.get("choice_answer")
    for text in (choice, problem.answer):
        if not isinstance(text, str) or not text.strip():
            continue
        one = _LETTER_ANSWER.match(text)
        if one and (len(text.strip()) <= 3 or text.strip()[1:2] in ".．、:："):
            return one.group(1)
        many = _LETTER_SET.match(text)
        if many:
            return "".join(sorted(set(re.sub(r"[^A-H]", "", many.group(1)))))
    return None


def present(problem: Problem, seed: int, sample_index: int, *, shuffle: bool = True) -> Presented:
    """The question and gold for one sample: options shuffled with their own recorded seed when the problem
    is multiple choice, else the problem as it is."""
    gold = gold_letters(problem)
    parsed = parse_choices(problem.problem) if gold else None
    if not gold:
        return Presented(problem.problem, problem.answer)
    if parsed is None or any(letter not in parsed.letters for letter in gold):
        return Presented(problem.problem, gold)  # options not found: the letter, unshuffled (choice_order null)
    choice_seed = row_seed(seed, f"{problem.id}#choices", sample_index)
    order = list(range(len(parsed.texts)))
    if shuffle:
        random.Random(choice_seed).shuffle(order)
    new_gold = "".join(sorted(parsed.letters[order.index(LETTERS.index(g))] for g in gold))
    options = tuple(parsed.texts[i] for i in order)
    return Presented(parsed.render(tuple(order)), new_gold, "".join(LETTERS[i] for i in order), choice_seed, options)


def _normal(text: str) -> str:
    text = re.sub(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\[,;!]|\\left|\\right|\$|\s", "", text)
    return text.rstrip(".。．").lower()


def answered_letters(extracted: str | None, options: tuple[str, ...]) -> str | None:
    """The letter(s) an extracted answer names: a letter (``C``, ``(C)``, ``C. text``, ``A, C``), or the
    text of exactly one option; None when it names none."""
    if not extracted:
        return None
    text = re.sub(r"^\\(?:text|mathrm|textbf)\{(.*)\}$", r"\1", extracted.strip())
    one = _LETTER_ANSWER.match(text)
    if one and (len(text) <= 3 or text[1:2] in ".．、:：" or text.startswith("(")):
        return one.group(1)
    many = _LETTER_SET.match(text)
    if many and len(options) > 1:
        letters = "".join(sorted(set(re.sub(r"[^A-H]", "", many.group(1)))))
        if all(LETTERS.index(c) < len(options) for c in letters):
            return letters
    said = _normal(text)
    matches = [LETTERS[i] for i, option in enumerate(options) if said and _normal(option) == said]
    return matches[0] if len(matches) == 1 else None


_OPTION_WORD = re.compile(r"^\s*(?:the\s+)?(?:option|choice)\s+", re.IGNORECASE)
_LETTER_FORM = re.compile(
    r"^\s*(?:\\(?:text|mathrm|textbf)\{\s*)?(?:\(\s*(?P<p>[A-H])\s*\)|(?P<b>[A-H])(?=\s*(?:[.．、:：]|\}|$)))"
    r"\s*\}?\s*(?P<rest>.*?)\s*\}?\s*$",
    re.DOTALL,
)


def letter_form(answer: str, letters: str) -> str | None:
    """The option letter an answer states outright: ``C``, ``(C)``, ``\\text{(C)}``, ``C. text``, ``(B) 195.8``,
    ``option C``, ``**(C)**``; None for anything else (a value, a word that starts with a capital)."""
    m = _LETTER_FORM.match(_OPTION_WORD.sub("", answer.replace("**", "")))
    if not m:
        return None
    letter = m.group("p") or m.group("b")  # a bare letter is followed by a separator or nothing
    return letter if letter in letters else None


def option_letters(gold: str, answer: str, question: str, same: Callable[[str, str], bool]) -> tuple[str, str] | None:
    """Both sides as option letters of `question`, when at least one side states a letter: a letter as it is,
    a value as the one option whose text `same` calls equal to it. None when the question has no options,
    neither side is a letter, or a side matches no option or several (MathVista golds are option texts,
    answers are letters; Gaokao golds are letters, answers may be values)."""
    parsed = parse_choices(question)
    if parsed is None:
        return None
    letters = parsed.letters
    found = [letter_form(side, letters) for side in (gold, answer)]
    if found == [None, None]:
        return None
    for i, side in enumerate((gold, answer)):
        if found[i] is None:
            matches = [letters[k] for k, text in enumerate(parsed.texts) if _normal(text) == _normal(side)]
            matches = matches or [letters[k] for k, text in enumerate(parsed.texts) if same(text, side)]
            if len(set(matches)) != 1:
                return None
            found[i] = matches[0]
    return found[0], found[1]  # type: ignore[return-value]
