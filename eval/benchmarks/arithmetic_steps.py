"""The step verifier for arithmetic word problems: read the story, recompute every step a chain states, name the
first wrong one.

The arithmetic problems (`eval.benchmarks.arithmetic`'s pool, held-out set and training problems, and
`eval.benchmarks.arithmetic_unseen`'s set) tell one quantity's story: a start (a count, or a number of containers
times the items in each), then one to three operations (+, -, x, / with exact results), then the question. Every step
of a chain that solves one states a computation on numbers of the story, so a first wrong step can be found without a
teacher model:

1. **The reference** (`read_story`): each sentence of the problem is matched against the sentence templates of both
   generators (their own tuples, imported, so a new phrasing there is read here); the start and the operations give
   the value the story has after each sentence. A sentence that matches no template, or templates of two different
   operations, leaves the story unread (`UnreadableStory`): the verifier then cannot decide. The reference solution
   (`ArithmeticReference.solution`) is the careful chain `eval.benchmarks.arithmetic.tutor_chain` writes for the
   story, one line per sentence: the form the small-model recipes train on.
2. **The chain's steps** (`eval.answers.steps.step_spans`: lines here) are read one by one (`read_step`): a quoted
   sentence and its work (``"She gets 9 more seeds": 53 + 9 = 62.``), a start (``start with 80``), a value stated for
   the question, the boxed answer. Numbers and operators are tokenised and evaluated by a small parser over exact
   fractions (`evaluate`); nothing is handed to ``eval``, sympy or any other interpreter.
3. **The walk** (`first_wrong_step`): every ``=`` link of every computation must hold, and each operation step must
   reach the value the story has at that point (its sentence's operation applied to the value reached so far). The
   first step that breaks either is the first wrong step, with an error type of LEMMA's taxonomy read for these
   chains (docs/methods.md, "Locating the first wrong step without a teacher"):

   - ``calculation_error``: the story's operation, an arithmetic result in it wrong (``80 - 20 - 7 = 40 - 7``,
     ``12 x 2 = 14``), or a value carried from the step before that is not the one reached (``20 x 2`` after 28);
   - ``formula_confusion``: the worked form misapplied: a rewrite that evaluates nothing and does not equal what it
     rewrites (``121 + 20 = 121 + 20 + 1``, ``28 x 4 = 10 x 4 + 8 x 4``);
   - ``question_misinterpretation``: an operation other than its sentence's (a gift subtracted, a split multiplied,
     another number of the story, a sentence applied again), or a start other than the story's;
   - ``missing_step``: a sentence of the story skipped (a later sentence applied first, or the question answered
     before the story is done);
   - ``invalid_assumption``: an operation the story does not give (one more after its last sentence).

   When no step breaks, or a step before the first break cannot be read, there is no answer: `StepCheck.step` is
   None and `StepCheck.reason` says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from eval.answers.steps import step_spans
from eval.benchmarks import arithmetic as training_set
from eval.benchmarks import arithmetic_unseen as unseen_set

CALCULATION = "calculation_error"
FORMULA = "formula_confusion"
MISREAD = "question_misinterpretation"
SKIPPED = "missing_step"
INVENTED = "invalid_assumption"
ERROR_TYPES = (CALCULATION, FORMULA, MISREAD, SKIPPED, INVENTED)

# Why the verifier could not decide (`StepCheck.reason_code`).
NO_REFERENCE = "no_reference"  # the story is not told in a phrasing the verifier reads
UNREADABLE_STEP = "unreadable_step"  # a step before any wrong one whose arithmetic cannot be read
NO_WRONG_STEP = "no_wrong_step"  # every step holds (the chain stops early, or grader and reference disagree)

SYMBOLS = {"+": "+", "-": "-", "−": "-", "–": "-", "×": "×", "*": "×", "x": "×", "X": "×", "÷": "÷", "/": "÷"}
_VERBS = {"+": "adds", "-": "takes away", "×": "multiplies by", "÷": "divides by"}


class UnreadableStory(ValueError):
    """The problem is not a story the verifier can read; the message says which sentence and why."""


# --- The reference: reading the story ------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One operation of the story: the sentence that states it, and the value before and after it."""

    symbol: str
    operand: int
    before: int
    after: int
    sentence: str


@dataclass(frozen=True)
class ArithmeticReference:
    """What the story asks for, step by step.

    Attributes:
        start_sentence: The first sentence.
        start: The count a plain start gives; None when the start is a product (then ``operations[0]`` is it:
            containers x items in each).
        operations: The story's operations in order.
        question: The question sentence(s).
    """

    start_sentence: str
    start: int | None
    operations: tuple[Operation, ...]
    question: str

    @property
    def answer(self) -> int:
        return self.operations[-1].after if self.operations else int(self.start or 0)

    @property
    def values(self) -> tuple[int, ...]:
        """The value after the start (a plain one) and after each operation."""
        return ((self.start,) if self.start is not None else ()) + tuple(o.after for o in self.operations)

    def solution(self) -> str:
        """The careful chain for this story (`eval.benchmarks.arithmetic.tutor_chain`), one line per sentence."""
        steps = [
            training_set.Step(
                o.sentence if (i or self.start is not None) else "", o.symbol, o.operand, o.before, o.after
            )
            for i, o in enumerate(self.operations)
        ]
        first = self.start if self.start is not None else self.operations[0].before
        problem = training_set.WordProblem("", "", "", "", "", self.start_sentence, first, tuple(steps), self.question)
        return training_set.tutor_chain(problem)

    def solution_line(self, event: int) -> int:
        """The line of `solution` that states event ``event`` (0: the plain start, if any, then each operation;
        ``len(events)``: the question's line)."""
        return 1 + event  # line 0 is "Let's solve this step by step."


_SLOT = re.compile(r"\{(\w+)\}")
_NUMBER_SLOTS = frozenset({"b", "value", "boxes", "each", "v", "n", "e", "k"})
_WORD_SLOT = r"[^\d?.]+?"
_MULTIPLIER_WORDS = {
    **{word: k for k, word in training_set.TIMES_VERB.items()},
    **{word: k for k, word in training_set.TIMES_ADVERB.items()},
    **{word: k for k, word in unseen_set.K_WORD.items()},
}
_MULTIPLIER = "(?P<k_word>" + "|".join(sorted(map(re.escape, _MULTIPLIER_WORDS), key=len, reverse=True)) + ")"


@dataclass(frozen=True)
class _Template:
    kind: str  # "start", "product", "+", "-", "×", "÷"
    pattern: re.Pattern[str]


def _compile(template: str, kind: str, lead: bool) -> _Template:
    parts, position = [], 0
    for match in _SLOT.finditer(template):
        parts.append(re.escape(template[position : match.start()]))
        name = match.group(1)
        if name in _NUMBER_SLOTS:
            parts.append(f"(?P<{name}>\\d+)")
        elif name in ("times_verb", "times_adverb", "k_word"):
            parts.append(_MULTIPLIER)
        else:
            parts.append(_WORD_SLOT)
        position = match.end()
    parts.append(re.escape(template[position:]))
    body = "".join(parts)
    # An operation sentence may open with a connective or a time phrase ("Then ", "On Friday, ").
    prefix = r"(?:[^\d?.]*?[\s,])?" if lead else ""
    return _Template(kind, re.compile(prefix + body, re.IGNORECASE))


@lru_cache(maxsize=1)
def _templates() -> tuple[tuple[_Template, ...], tuple[_Template, ...]]:
    """(start templates, operation templates) of both generators."""
    t, u = training_set, unseen_set
    starts = [_compile(s, "product", False) for s in (*t.WIDE_PRODUCT_STARTS, *u.PRODUCT_OPENINGS)]
    starts += [_compile(s, "start", False) for s in (*t.WIDE_PLAIN_STARTS, *t.WIDE_HOLDER_STARTS, *u.OPENINGS)]
    ops = [_compile(s, "+", True) for s in (*t.WIDE_ADD, *_flat(t.WIDE_DOMAIN_ADD.values()), *u.ADD_TEXT)]
    ops += [_compile(s, "-", True) for s in (*t.WIDE_SUBTRACT, *_flat(t.WIDE_DOMAIN_SUBTRACT.values()))]
    ops += [_compile(s, "-", True) for s in u.SUBTRACT_TEXT]
    ops += [_compile(s, "×", True) for s in (*t.WIDE_MULTIPLY, *u.MULTIPLY_TEXT)]
    ops += [_compile(s, "÷", True) for s, _ in (*t.WIDE_DIVIDE, *u.DIVIDE_TEXT)]
    return tuple(starts), tuple(ops)


def _flat(groups: Iterable[Sequence[str]]) -> list[str]:
    return [item for group in groups for item in group]


_SENTENCE = re.compile(r"(?<=[.?!])\s+")


def _readings(sentence: str, templates: Sequence[_Template]) -> set[tuple[str, tuple[int, ...]]]:
    found: set[tuple[str, tuple[int, ...]]] = set()
    for template in templates:
        match = template.pattern.fullmatch(sentence)
        if match is None:
            continue
        groups = match.groupdict()
        if template.kind == "product":
            found.add(("product", (int(groups.get("boxes") or groups["n"]), int(groups.get("each") or groups["e"]))))
        elif template.kind == "start":
            found.add(("start", (int(groups.get("value") or groups["v"]),)))
        elif groups.get("k_word"):
            found.add((template.kind, (_MULTIPLIER_WORDS[groups["k_word"].lower()],)))
        else:
            found.add((template.kind, (int(groups.get("b") or groups["k"]),)))
    return found


def _one_reading(sentence: str, templates: Sequence[_Template], what: str) -> tuple[str, tuple[int, ...]]:
    found = _readings(sentence, templates)
    if not found:
        raise UnreadableStory(f"{what} {sentence!r} is in no known phrasing")
    if len(found) > 1:
        raise UnreadableStory(f"{what} {sentence!r} reads as several operations: {sorted(found)}")
    return next(iter(found))


@lru_cache(maxsize=4096)
def read_story(text: str) -> ArithmeticReference:
    """The story's start, operations and question.

    Raises:
        UnreadableStory: A sentence in no known phrasing (or in phrasings of two operations), an inexact division,
            no question, or no operation.
    """
    sentences = [s for s in _SENTENCE.split(text.strip()) if s]
    told = [s for s in sentences if not s.endswith("?")]
    asked = [s for s in sentences if s.endswith("?")]
    if not told or not asked:
        raise UnreadableStory("no story sentence or no question")
    starts, templates = _templates()
    kind, numbers = _one_reading(told[0], starts, "the opening")
    operations: list[Operation] = []
    if kind == "product":
        boxes, each = numbers
        operations.append(Operation("×", each, boxes, boxes * each, told[0]))
        start, value = None, boxes * each
    else:
        start = value = numbers[0]
    for sentence in told[1:]:
        symbol, (operand,) = _one_reading(sentence, templates, "the sentence")
        after = _apply(symbol, value, operand)
        if after is None:
            raise UnreadableStory(f"the sentence {sentence!r} divides {value} by {operand}: not exact")
        operations.append(Operation(symbol, operand, value, after, sentence))
        value = after
    if not operations:
        raise UnreadableStory("the story has no operation")
    return ArithmeticReference(told[0], start, tuple(operations), " ".join(asked))


def _apply(symbol: str, a: int, b: int) -> int | None:
    if symbol == "+":
        return a + b
    if symbol == "-":
        return a - b
    if symbol == "×":
        return a * b
    return a // b if b and a % b == 0 else None


# --- Reading a chain's step ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)|(?P<symbol>[+\-−–×*÷/=()])|(?P<word>[A-Za-z']+)|(?P<other>\S)"
)
_QUOTED = re.compile(r'^\s*"([^"]*)"\s*:?\s*(.*)$', re.DOTALL)
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_QUESTION_WORDS = ("how many", "how much", "what", "which")
_CLAUSE = re.compile(r"(?<=[.;])\s+")  # "a - b = c. c + d = e." states two operations; ", since ..." checks one


class UnreadableExpression(ValueError):
    """An expression that cannot be read (the message says where)."""


@dataclass(frozen=True)
class Expression:
    """One side of an ``=``: its text, its exact value and how many operators it has."""

    text: str
    value: Fraction
    operators: int
    operands: tuple[Fraction, ...]
    symbol: str | None  # the one operator of a binary expression ``a op b``; None otherwise


def _number(text: str) -> Fraction:
    return Fraction(text.replace(",", ""))


def evaluate(tokens: Sequence[tuple[str, str]]) -> Expression:
    """An arithmetic expression over numbers, + - × ÷ and parentheses, read by precedence climbing.

    Args:
        tokens: ``(kind, text)`` pairs: kind ``number`` or ``symbol`` (``×`` and ``÷`` already normalised).

    Raises:
        UnreadableExpression: An empty expression, a dangling operator, unbalanced parentheses or a division by zero.
    """
    if not tokens:
        raise UnreadableExpression("empty expression")
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        token = peek()
        if token is None:
            raise UnreadableExpression("expression ends after an operator")
        position += 1
        return token

    def factor() -> Fraction:
        kind, text = take()
        if kind == "number":
            return _number(text)
        if text == "-":
            return -factor()
        if text == "(":
            value = expression()
            if take()[1] != ")":
                raise UnreadableExpression("unbalanced parentheses")
            return value
        raise UnreadableExpression(f"unexpected {text!r}")

    def term() -> Fraction:
        value = factor()
        while (token := peek()) is not None and token[1] in ("×", "÷"):
            take()
            right = factor()
            if token[1] == "÷" and right == 0:
                raise UnreadableExpression("division by zero")
            value = value * right if token[1] == "×" else value / right
        return value

    def expression() -> Fraction:
        value = term()
        while (token := peek()) is not None and token[1] in ("+", "-"):
            take()
            value = value + term() if token[1] == "+" else value - term()
        return value

    value = expression()
    if position != len(tokens):
        raise UnreadableExpression(f"unexpected {tokens[position][1]!r}")
    # binary operators only: a sign after an operator, "(" or at the start ("-4") is no operation
    operators = [t for i, (k, t) in enumerate(tokens) if t in "+-×÷" and i and tokens[i - 1][1] not in "+-×÷("]
    operands = tuple(_number(t) for k, t in tokens if k == "number")
    binary = len(tokens) == 3 and tokens[0][0] == "number" and tokens[2][0] == "number"
    text = _spaced([t for _, t in tokens])
    return Expression(text, value, len(operators), operands, tokens[1][1] if binary else None)


def _spaced(texts: Sequence[str]) -> str:
    """Tokens as a reader writes them: ``80 - 20 - 7``, ``-4 × 9``, ``(3 + 4) × 2``."""
    out = []
    for i, text in enumerate(texts):
        after_sign = i > 0 and texts[i - 1] == "-" and (i == 1 or texts[i - 2] in ("+", "-", "×", "÷", "("))
        if i and not after_sign and texts[i - 1] != "(" and text != ")":
            out.append(" ")
        out.append(text)
    return "".join(out)


def _runs(text: str) -> list[list[tuple[str, str]]]:
    """Maximal runs of numbers, operators, parentheses and ``=`` (a word or other mark ends a run); ``x`` between
    two numbers is a times sign."""
    tokens = [(m.lastgroup or "", m.group()) for m in _TOKEN.finditer(text)]
    runs: list[list[tuple[str, str]]] = [[]]
    for index, (kind, value) in enumerate(tokens):
        between_numbers = 0 < index < len(tokens) - 1 and tokens[index - 1][0] == tokens[index + 1][0] == "number"
        if kind == "word" and value in ("x", "X") and between_numbers:
            kind = "symbol"
        if kind == "number" or (kind == "symbol"):
            runs[-1].append(("number", value) if kind == "number" else ("symbol", SYMBOLS.get(value, value)))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


@dataclass(frozen=True)
class Equation:
    """A chain of ``=``: its sides (the last may be missing when the text stops there)."""

    sides: tuple[Expression, ...]
    complete: bool


@dataclass(frozen=True)
class ReadStep:
    """What one step of a chain states.

    Attributes:
        kind: ``narration`` (no arithmetic), ``value`` (a number stated: a start, or the question's answer),
            ``operation`` (an equation), ``answer`` (the boxed answer), ``unreadable``.
        quote: The sentence the step quotes, if any.
        operations: The operations the step states, in order (a sentence each: ``a - b = c. c + d = e.``), each as
            its equations, the main one first (``a op b = ... = c, since c x b = a``).
        value: The stated value (``value``, ``answer``).
        problem: Why the step is unreadable.
    """

    kind: str
    quote: str | None = None
    operations: tuple[tuple[Equation, ...], ...] = ()
    value: Fraction | None = None
    problem: str = ""


def _equation(run: list[tuple[str, str]]) -> Equation:
    sides: list[list[tuple[str, str]]] = [[]]
    for token in run:
        if token[1] == "=":
            sides.append([])
        else:
            sides[-1].append(token)
    complete = bool(sides[-1])
    parsed = tuple(evaluate(s) for s in (sides if complete else sides[:-1]))
    return Equation(parsed, complete)


def read_step(text: str) -> ReadStep:
    """What a step states (`ReadStep`)."""
    boxed = _BOXED.search(text)
    if boxed is not None:
        try:
            return ReadStep("answer", value=_number(boxed.group(1).strip().rstrip(".")))
        except (ValueError, ZeroDivisionError):
            return ReadStep("unreadable", problem=f"the boxed answer {boxed.group(1)!r} is not a number")
    quoted = _QUOTED.match(text)
    quote, work = (quoted.group(1), quoted.group(2)) if quoted else (None, text)
    try:
        operations = tuple(
            equations
            for clause in _CLAUSE.split(work)
            if (equations := tuple(_equation(r) for r in _runs(clause) if any(t[1] == "=" for t in r)))
        )
    except UnreadableExpression as exc:
        return ReadStep("unreadable", quote, problem=f"cannot read {work.strip()!r}: {exc}")
    if operations:
        return ReadStep("operation", quote, operations)
    runs = _runs(work)
    stated = quote is not None or "start with" in work.lower()
    if not runs or not stated:
        return ReadStep("narration", quote)
    if len(runs) != 1 or len(runs[0]) != 1 or runs[0][0][0] != "number":
        return ReadStep("unreadable", quote, problem=f"cannot tell which value {work.strip()!r} states")
    return ReadStep("value", quote, value=_number(runs[0][0][1]))


# --- The walk -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepCheck:
    """The verifier's answer for one chain.

    Attributes:
        step: The first wrong step's number (1-based, `eval.answers.steps.step_spans` order); None: undecided.
        span: That step's character span in the chain.
        error_type: Its error type (`ERROR_TYPES`).
        finding: What is wrong, in a clause a correction sentence can quote ("80 - 20 - 7 is 53, not 33").
        reason_code: Why undecided (`NO_REFERENCE`, `UNREADABLE_STEP`, `NO_WRONG_STEP`); None when located.
        reason: The same in words, or (located) a sentence naming the step and the finding.
        reference: The story's reference, when it was read.
        event: The reference event the wrong step stands for (0: the plain start, if any, then each operation;
            ``len(events)``: the question): where a corrected continuation starts
            (`ArithmeticReference.solution_line`).
    """

    step: int | None
    span: tuple[int, int] | None
    error_type: str | None
    finding: str
    reason_code: str | None
    reason: str
    reference: ArithmeticReference | None
    event: int | None = None

    @property
    def located(self) -> bool:
        return self.step is not None


@dataclass(frozen=True)
class _Event:
    """What the story asks next: a plain start (``operation`` None) or an operation."""

    value: int
    operation: Operation | None


def _events(reference: ArithmeticReference) -> list[_Event]:
    events = [_Event(reference.start, None)] if reference.start is not None else []
    return events + [_Event(o.after, o) for o in reference.operations]


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


class _Wrong(Exception):
    def __init__(self, error_type: str, finding: str) -> None:
        super().__init__(finding)
        self.error_type, self.finding = error_type, finding


def first_wrong_step(problem: str, chain: str) -> StepCheck:
    """The first wrong step of ``chain``, a solution to the arithmetic story ``problem`` (module docstring).

    Returns:
        A `StepCheck`; its ``step`` is None when the verifier cannot decide (``reason_code`` says why).
    """
    try:
        reference = read_story(problem)
    except UnreadableStory as exc:
        return StepCheck(None, None, None, "", NO_REFERENCE, f"no reference: {exc}", None)
    walk = _Walk(reference)
    for number, (start, end) in enumerate(step_spans(chain), start=1):
        for line in chain[start:end].splitlines():  # a paragraph step may hold several lines: each is read
            step = read_step(line)
            if step.kind == "unreadable":
                reason = f"step {number}: {step.problem}"
                return StepCheck(None, None, None, "", UNREADABLE_STEP, reason, reference)
            event = walk.position
            try:
                walk.take(step)
            except _Wrong as wrong:
                reason = f"step {number} ({wrong.error_type}): {wrong.finding}"
                span = (start, end)
                return StepCheck(number, span, wrong.error_type, wrong.finding, None, reason, reference, event)
    reason = "every step holds" + (" (the chain stops before the story is done)" if walk.remaining else "")
    return StepCheck(None, None, None, "", NO_WRONG_STEP, reason, reference)


class _Walk:
    """The story's events taken in order by a chain's steps; `take` raises `_Wrong` at the first wrong one."""

    def __init__(self, reference: ArithmeticReference) -> None:
        self.reference = reference
        self.events = _events(reference)
        self.position = 0
        self.value: Fraction | None = None  # the value reached so far (None before the start)

    @property
    def remaining(self) -> int:
        return len(self.events) - self.position

    def take(self, step: ReadStep) -> None:
        if step.kind == "narration":
            return
        if step.kind == "operation":
            for equations in step.operations:
                self._operation(equations)
        elif step.kind == "value" and self.value is None:
            self._start(step)
        elif step.kind == "answer" and self.value is None:
            raise _Wrong(SKIPPED, "the answer comes before the story's first sentence is applied")
        elif step.kind in ("value", "answer"):
            self._stated(step)

    def _start(self, step: ReadStep) -> None:
        assert step.value is not None
        expected = self.events[0] if self.events else None
        if expected is None or expected.operation is not None:
            first = self.reference.operations[0]
            raise _Wrong(
                MISREAD,
                f"the story starts with {first.before} {first.symbol} {first.operand}, not {_show(step.value)}",
            )
        if step.value != expected.value:
            raise _Wrong(MISREAD, f"the story starts with {expected.value}, not {_show(step.value)}")
        self.value, self.position = step.value, 1

    def _stated(self, step: ReadStep) -> None:
        assert step.value is not None and self.value is not None
        asked = step.kind == "answer" or _asks(step.quote, self.reference.question)
        if asked and self.remaining:
            skipped = self.events[self.position].operation
            what = f'"{skipped.sentence.rstrip(".")}"' if skipped else "the start"
            raise _Wrong(SKIPPED, f"the answer comes before {what} is applied")
        if step.value != self.value:
            raise _Wrong(CALCULATION, f"the value reached is {_show(self.value)}, not {_show(step.value)}")

    def _operation(self, equations: tuple[Equation, ...]) -> None:
        main = equations[0]
        if not main.sides:
            return
        first = main.sides[0]
        if first.operators == 0:  # "53 = 53": a value stated through "="
            self._links(equations)
            return
        if self.value is None and self.events and self.events[0].operation is None:
            self._implicit_start(first)
        if not self.remaining:
            raise _Wrong(INVENTED, f"the story has no further operation, yet this step computes {first.text}")
        expected = self.events[self.position]
        operation = expected.operation
        assert operation is not None
        if first.value != expected.value:
            self._misread(first, operation)
        self._links(equations)
        if not main.complete:
            return  # the text stops inside this step: its result is not stated
        result = main.sides[-1].value
        if result != expected.value:  # every link held, so the sides agree: only a dropped side could differ
            raise _Wrong(CALCULATION, f"{first.text} is {expected.value}, not {_show(result)}")
        self.value, self.position = Fraction(expected.value), self.position + 1

    def _implicit_start(self, first: Expression) -> None:
        start = self.events[0].value
        if first.operands and first.operands[0] == start:
            self.value, self.position = Fraction(start), 1
            return
        raise _Wrong(MISREAD, f"the story starts with {start}, but this step computes {first.text}")

    def _misread(self, first: Expression, operation: Operation) -> None:
        """The step's operation is not the one its place in the story asks for: say how."""
        said = f'"{operation.sentence.rstrip(".")}"'
        wanted = f"{operation.before} {operation.symbol} {operation.operand}"
        if first.symbol is None or len(first.operands) != 2:
            raise _Wrong(MISREAD, f"{said} asks for {wanted}, not {first.text}")
        a, b = first.operands
        later = [e.operation for e in self.events[self.position + 1 :] if e.operation]
        earlier = [e.operation for e in self.events[: self.position] if e.operation]
        if any(o.symbol == first.symbol and b == o.operand for o in later) and a == operation.before:
            skipped = f"this step skips {said}: {first.text} belongs to a later sentence"
            raise _Wrong(SKIPPED, skipped)
        if any(o.symbol == first.symbol and b == o.operand for o in earlier) and a == operation.before:
            raise _Wrong(MISREAD, f"{said} asks for {wanted}; {first.text} applies an earlier sentence again")
        same = (
            {a, b} == {operation.before, operation.operand}
            if first.symbol in "+×"
            else (a, b)
            == (
                operation.before,
                operation.operand,
            )
        )
        if first.symbol != operation.symbol:
            verb = _VERBS[operation.symbol]
            raise _Wrong(MISREAD, f"{said} {verb} {operation.operand}: {wanted}, not {first.text}")
        if b != operation.operand and not (first.symbol in "+×" and a == operation.operand):
            raise _Wrong(MISREAD, f"{said} {_VERBS[operation.symbol]} {operation.operand}, not {_show(b)}")
        if not same:
            raise _Wrong(
                CALCULATION, f"the value reached is {operation.before}, so the step is {wanted}, not {first.text}"
            )

    def _links(self, equations: Sequence[Equation]) -> None:
        for equation in equations:
            for left, right in zip(equation.sides, equation.sides[1:], strict=False):
                if left.value == right.value:
                    continue
                if right.operators >= left.operators and right.operators > 0:
                    raise _Wrong(
                        FORMULA, f"{left.text} is not {right.text} ({_show(left.value)} against {_show(right.value)})"
                    )
                raise _Wrong(CALCULATION, f"{left.text} is {_show(left.value)}, not {right.text}")


def _asks(quote: str | None, question: str) -> bool:
    if quote is None:
        return False
    said = quote.strip().lower().rstrip("?").strip()
    return said.startswith(_QUESTION_WORDS) or said == question.lower().rstrip("?").strip()
