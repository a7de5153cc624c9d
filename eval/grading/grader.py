"""Answer grading: is a predicted answer equal to the gold answer?

`verify(gold, pred)` compares two bare answers; `grade(gold, response, problem=...)` first extracts the
answer from a full response (`eval.answers.extract`, which reads summary sentences against the problem when it
is given); `grade_many` runs pairs or (gold, response, problem) triples over processes. Decisions,
cheapest first:
1. normalised strings equal (handles ``9^{9^{9^9}}`` against itself without evaluating it);
2. text-level forms (`eval.grading.forms`): choice letters, decimal commas;
3. both sides are words (``Sunday``, a choice letter): case-insensitive equality;
4. our whitelisting parser (`eval.grading.plain_parse`) on both, then `eval.grading.compare` (a
   factorization the problem asks for must also have as many factors);
5. where a LaTeX command our rewrite does not know is left, math-verify then latex2sympy2-extended in a
   worker subprocess with a hard limit;
6. a percentage against its fraction; a gold's stated rounding ("or approximately X").
Every public call takes ``options`` (`eval.grading.options.GradeOptions`: rounding precision, strict names, set
against relation), the comparison settings math-verify takes; the defaults are limo's rules.
Last, for `grade`, a summary sentence is judged as a statement (`eval.grading.statements`): it can make a
yes/no, non-existence or worded gold correct, and an opposite yes/no answer overrides an extracted one; and a
correct verdict stands only when the sentence commits to it (`eval.grading.commitment`: no hedge, no
exceptions, no existence asserted against a gold that denies it, no congruence to another modulus).
Size limits (characters, digits, power results, depth, terms, precision) are checked before any evaluation, so
the verdict never depends on machine load. The clock is the backstop: every `grade`, `grade_answer` and `verify`
call returns within its `timeout_s` plus `DEADLINE_SLACK_S` (under the contract's 1 s) of wall-clock time, in any
thread or process (`eval.grading.timeouts.run_bounded`), with status ``timeout`` if the clock ended it; step 5's
worker subprocess has the same deadline and its own CPU-time limit. Nothing raises out of `grade`: an internal
error becomes ``unparseable`` with the reason. Untrusted text never reaches Python or sympy string evaluation.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

from tqdm import tqdm

from eval.answers.extract import MAX_BARE_CHARS, extract_answer, has_box, is_prose
from eval.benchmarks.choices import option_letters
from eval.grading.commitment import asserts_existence_against, case_split, uncommitted, wrong_modulus
from eval.grading.compare import equal, renamed_equal
from eval.grading.families import equiv_as_equation, renamings, strip_qualifier
from eval.grading.forms import (
    asks_to_factor,
    choice_letters,
    decimal_commas,
    elided_series,
    factor_count,
    percent_as_fraction,
    within_stated_rounding,
)
from eval.grading.normalize import AnswerTooComplex, brace_depth, check_size, normalize, repair_escapes
from eval.grading.options import DEFAULT_OPTIONS, GradeOptions, run_with
from eval.grading.options import current as current_options
from eval.grading.plain_parse import ParseError, as_text, parse_plain
from eval.grading.statements import gold_kind, value_in_words
from eval.grading.statements import judge as judge_statement
from eval.grading.timeouts import (
    WALL_CLOCK,
    WORKERS,
    CallTimeout,
    WorkerTimeout,
    paused,
    remaining_s,
    run_bounded,
    wall_backstop,
    wall_factor,
)
from eval.grading.worded import worded_equal

STATUSES = ("correct", "incorrect", "no_answer", "unparseable", "timeout")
_ALTERNATIVES = re.compile(
    r",?\s*\b(?:or (?:an )?equivalent(?:ly| form)?(?: such as)?|equivalently|or approximately|i\.e\.,?)\s+",
    re.IGNORECASE,
)
# CHAMP golds: "100 (i.e., all values)", "0 (no such selection is possible)": the value before the remark.
_GOLD_REMARK = re.compile(r"^(.+?)\s*\((?:i\.e\.|that is|no |none )[^()]*\)\s*$", re.IGNORECASE)
_GOLD_ONLY_VALUE = re.compile(r"^(.+?)\s+is the only possible value$", re.IGNORECASE)
# A value followed only by a noun ("98 values", "2 inequalities", "n times"): the value.
_GOLD_COUNTED = re.compile(r"^(-?[\w/^.+\-()]+?)\s+(?!and\b|or\b)[A-Za-z][A-Za-z\- ]*$")
_LATEX_COMMAND = re.compile(r"\\[a-zA-Z]+")
# math-verify's parse costs about 0.3 ms a character (a 4,000-letter gold: 1.2 s of the worker's limit; 400 letters or
# 100 terms: 0.15-0.3 s of CPU, over its own 1 s wall-clock limit on a machine at load 10); every pair the labelled
# sets send it is under 40 characters a side, so a side over 160 gets no second opinion.
SECOND_OPINION_MAX_CHARS = 160
# Nor a side nested deeper than this (brackets and braces): math-verify's parse and simplification grow with the
# depth (``\left(`` eight deep, or 16 nested ``\frac{``: over the 1 s it gives itself, so the clock would decide);
# the labelled sets send it depth 2 at most.
SECOND_OPINION_MAX_DEPTH = 4
# Nor numbers sympy would compute exactly: a power tower on a number or an exponent of 7+ digits (``10^{10^{10}}``),
# a factorial or binomial beside a 6-digit number or a numeric power (``\binom{10^{9}}{500000000}``, ``999999!``),
# a sum or product beside a 3-digit number or a numeric power (``\sum_{k=1}^{1000} k^{k}``: 0.6 s).
_NUMERIC_TOWER = re.compile(r"\d\s*[})]?\s*\^\s*[{(]?\s*(?:\d{7}|[^{}()^]{0,40}\^)")
_COUNTING = re.compile(r"!|binom|choose")
_LARGE_OPERAND = re.compile(r"\d{6}|\d\s*[})]?\s*\^")
_BIG_OPERATOR = re.compile(r"\\(?:sum|prod)(?![a-zA-Z])")
_MANY_TERMS = re.compile(r"\d{3}|\^\s*\{?\s*\d+\s*\^")  # a bound of 3+ digits or a power (``^{10^{9}}``)
# A call's deadline is its limit plus this; the worker's wall-clock deadline ends `_WORKER_MARGIN_S` earlier so
# that what follows it (commitment rules) still fits. Both stay under the contract's 1 s.
DEADLINE_SLACK_S = 0.7
_WORKER_MARGIN_S = 0.15
# Input sizes read at all: a gold or a problem text longer than this is refused, a response is read from its
# end (extraction searches only the last 50,000 characters anyway), so no regular expression sees more.
MAX_GOLD_CHARS = 50_000
MAX_RESPONSE_CHARS = 50_000
MAX_PROBLEM_CHARS = 50_000
# Whitespace runs longer than this are cut to it (newlines kept as one or two): several rules scan a run of
# blanks once per position in it, and no rule reads meaning into the 17th blank in a row.
MAX_BLANK_RUN = 16
_BLANK_RUN = re.compile(rf"\s{{{MAX_BLANK_RUN + 1},}}")
PRESTART_PAIRS = 256  # `grade_many` in one process starts the slow path's worker at once from this many pairs
# The worker's start (about a second) counts against the first pair that needs it, so a process that grades
# in earnest starts it in the background after this many calls: by the time a pair needs it, it is ready.
PRESTART_AFTER_CALLS = 32
_calls = 0


@dataclass(frozen=True)
class Verdict:
    """The outcome of grading one pair.

    Attributes:
        status: One of ``correct``, ``incorrect``, ``no_answer``, ``unparseable``, ``timeout``.
        correct: ``status == "correct"``.
        extracted: The answer taken from the response (None when there was none).
        reason: The rule that decided, or why no rule could.
    """

    status: str
    correct: bool
    extracted: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _verdict(status: str, extracted: str | None, reason: str) -> Verdict:
    return Verdict(status, status == "correct", extracted, reason)


def _gold_core(gold: str) -> str:
    """The value in a CHAMP-style gold remark ("3 is the only possible value", "100 (i.e., all values)")."""
    for pattern in (_GOLD_REMARK, _GOLD_ONLY_VALUE):
        m = pattern.match(gold.strip())
        if m:
            return m.group(1).strip()
    return value_in_words(gold) or gold


@lru_cache(maxsize=16384)
def _gold_answers(gold: str) -> tuple[str, ...]:
    """The gold's accepted forms: extracted when it is a solution or a sentence, split on "equivalently"."""
    answer = _gold_core(gold) if len(gold) <= MAX_BARE_CHARS else gold  # a long gold is a solution or nothing
    if "\\boxed" in answer or "\\fbox" in answer or is_prose(answer):
        answer = extract_answer(answer, fallback=False) or answer
    if len(answer) > MAX_BARE_CHARS:  # over the answer limit: refused by size later, read by no rule before
        return (answer,)
    forms = [f.strip() for f in _ALTERNATIVES.split(answer) if f.strip()]
    counted = [m.group(1) for f in forms if "\\" not in f and (m := _GOLD_COUNTED.match(f))]
    # "98 values" -> 98, "n times" -> n; but "No possible solutions" is no count of "No".
    counted = [c for c in counted if re.search(r"\d", c) or (len(c) <= 2 and c.lower() not in {"no", "at", "an"})]
    return tuple(forms + counted) or (answer,)


@lru_cache(maxsize=65536)
def _squash(s: str) -> str:
    s = re.sub(r"\\(?:left|right|!|,|;|:|displaystyle)|\s|\$", "", s)
    return re.sub(r"\\[dt]frac", r"\\frac", s).rstrip(".")


def _latex_fallback(gold: str, pred: str, extracted: str, timeout_s: float) -> Verdict:
    left = remaining_s()
    limit = timeout_s if left is None else min(timeout_s, left - _WORKER_MARGIN_S)
    if limit <= 0:
        return _verdict("timeout", extracted, f"no time left for the symbolic worker {WALL_CLOCK}")
    deadline = None if left is None else time.monotonic() + left - _WORKER_MARGIN_S
    try:
        with paused(), WORKERS.checkout() as worker:  # the worker has its own limit; the pipe must not be cut
            answer = worker.call(
                {"gold": gold, "pred": pred, "timeout_s": limit, **_worker_options()}, limit, deadline
            )
    except WorkerTimeout as exc:
        return _verdict("timeout", extracted, str(exc))
    return _verdict(answer["status"], extracted, answer["reason"])


def _worker_options() -> dict[str, Any]:
    """The comparison options for math-verify in the worker, only where the caller set them: ``precision`` as its
    ``float_rounding``, ``strict``; a default call sends none (the worker keeps math-verify's own defaults)."""
    options, extra = current_options(), {}
    if options.precision is not None:
        extra["float_rounding"] = options.precision
    if not options.strict:
        extra["strict"] = False
    return extra


def _compare_one(gold: str, pred: str, timeout_s: float, factoring: bool = False) -> Verdict:
    if _squash(gold) == _squash(pred):
        return _verdict("correct", pred, "normalised strings equal")
    check_size(gold)
    check_size(pred)
    letters = choice_letters(gold, pred)
    if letters:
        return _verdict("correct" if letters[0] == letters[1] else "incorrect", pred, "choice letters compared")
    g_norm, p_norm = decimal_commas(normalize(gold), normalize(pred))
    if g_norm.replace(" ", "") == p_norm.replace(" ", ""):
        return _verdict("correct", pred, "normalised forms equal")
    g_text, p_text = as_text(g_norm), as_text(p_norm)
    if g_text and p_text and (g_text == p_text or len(g_text.text) > 1 or len(p_text.text) > 1):
        status = "correct" if g_text == p_text else "incorrect"
        return _verdict(status, pred, "text answers compared case-insensitively")
    try:
        g_value, p_value = parse_plain(g_norm), parse_plain(p_norm)
    except ParseError as exc:
        if _worth_a_second_opinion(g_norm, p_norm, gold, pred):
            refused = _beyond_math_verify(gold, pred)
            if refused:
                return _verdict("unparseable", pred, f"outside the grammar ({exc}); {refused} for math-verify")
            return _latex_fallback(gold, pred, pred, timeout_s)
        return _verdict("unparseable", pred, f"outside the grammar: {exc}")
    same, rule = equal(g_value, p_value)
    if not same:
        same, rule = renamed_equal(g_value, p_value) or (same, rule)  # only under the option strict=False
    if same and factoring and factor_count(g_value) != factor_count(p_value):
        same, rule = False, "a factorization was asked: a different number of factors"
    return _verdict("correct" if same else "incorrect", pred, rule)


def _worth_a_second_opinion(g_norm: str, p_norm: str, gold: str, pred: str) -> bool:
    """Whether math-verify in the worker may judge a pair our grammar declined: only when a LaTeX command our
    rewrite does not know is left (``\\lim``, ``\\overline``), never for sentences (read as products of
    letters) nor for text our grammar refused for other reasons (stray characters, runaway sums)."""
    return bool(_LATEX_COMMAND.search(g_norm + p_norm)) and not (is_prose(gold) or is_prose(pred))


def _beyond_math_verify(gold: str, pred: str) -> str | None:
    """Why math-verify may not judge this pair within its limit, decided from its shape before any clock (see
    `SECOND_OPINION_MAX_CHARS`, `SECOND_OPINION_MAX_DEPTH`); None when it may."""
    if max(len(gold), len(pred)) > SECOND_OPINION_MAX_CHARS:
        return f"over {SECOND_OPINION_MAX_CHARS} characters"
    if max(brace_depth(gold), brace_depth(pred)) > SECOND_OPINION_MAX_DEPTH:
        return f"nested deeper than {SECOND_OPINION_MAX_DEPTH}"
    for side in (gold, pred):
        if _NUMERIC_TOWER.search(side) or (_COUNTING.search(side) and _LARGE_OPERAND.search(side)):
            return "a number too large to compute exactly"
        if _BIG_OPERATOR.search(side) and _MANY_TERMS.search(side):
            return "a sum or product of too many terms"
    return None


def _last_side(pred: str) -> str:
    """``1 + 2 + ... + n = n(n+1)/2``: a chain whose left side elides terms answers with its last side."""
    if "..." not in pred and "\\ldots" not in pred and "\\cdots" not in pred:
        return pred
    sides = pred.split("=")
    last = sides[-1].strip()
    return last if len(sides) > 1 and last and not re.search(r"\.\.\.|\\[lc]dots", last) else pred


def _decide(gold: str, pred: str, timeout_s: float, factoring: bool = False) -> Verdict:
    """Compare `pred` with every accepted form of `gold`; the first correct one wins."""
    gold, pred = repair_escapes(gold), _last_side(repair_escapes(pred))
    if _squash(gold) == _squash(pred):  # the whole gold word for word, before a worded gold is cut to its value
        return _verdict("correct", pred, "normalised strings equal")
    verdict = _decide_forms(
        tuple(_rewritten(form) for form in _gold_answers(gold)), gold, _rewritten(pred), timeout_s, factoring
    )
    return replace(verdict, extracted=pred) if verdict.extracted is not None else verdict


def _decide_forms(forms: tuple[str, ...], gold: str, pred: str, timeout_s: float, factoring: bool) -> Verdict:
    """`pred` (rewritten) against the gold's rewritten forms, then with names aligned, as a percentage, and
    within a rounding the gold states."""
    verdicts = []
    for form in forms:
        try:
            verdict = _compare_one(form, pred, timeout_s, factoring)
        except AnswerTooComplex as exc:
            verdict = _verdict("unparseable", pred, f"size limit: {exc}")
        if verdict.correct:
            return verdict
        verdicts.append(verdict)
    renamed = _renamed_verdict(forms, pred, timeout_s, factoring)
    if renamed is not None:
        return renamed
    percent = _percent_verdict(gold, pred, timeout_s)
    if percent is not None and percent.correct:
        return percent
    if within_stated_rounding(gold, pred):
        return _verdict("correct", pred, "within the rounding of the gold's stated approximation")
    return next((v for v in verdicts if v.status == "incorrect"), verdicts[0])


def _rewritten(answer: str) -> str:
    """An answer in the form the grammar reads: an elided series as its big operator, a function definition
    without its quantifier tail, ``f \\equiv 0`` as ``f(x) = 0``."""
    return elided_series(answer) or strip_qualifier(equiv_as_equation(answer))


def _renamed_verdict(forms: tuple[str, ...], pred: str, timeout_s: float, factoring: bool) -> Verdict | None:
    """A function answer equal to a gold form once its variable and constants carry the gold's names."""
    for form in forms:
        for renamed in renamings(form, pred):
            try:
                verdict = _compare_one(form, renamed, timeout_s, factoring)
            except AnswerTooComplex:
                continue
            if verdict.correct:
                return _verdict("correct", pred, "names aligned with the gold's: " + verdict.reason)
    return None


def _percent_verdict(gold: str, pred: str, timeout_s: float) -> Verdict | None:
    """``10\\%`` against ``0.1``: when exactly one side is a percentage, its value over 100."""
    g_frac, p_frac = percent_as_fraction(gold), percent_as_fraction(pred)
    if (g_frac is None) == (p_frac is None):
        return None
    verdict = _compare_one(g_frac or gold, p_frac or pred, timeout_s)
    return _verdict(verdict.status, pred, "percentage as a fraction: " + verdict.reason)


def verify(gold: str, pred: str, *, timeout_s: float = 2.0, options: GradeOptions = DEFAULT_OPTIONS) -> bool:
    """Whether the bare answer `pred` equals the bare answer `gold` (gold first), within `grade_answer`'s limit,
    compared under `options` (`eval.grading.options.GradeOptions`; the defaults are limo's rules)."""
    return grade_answer(gold, pred, timeout_s=timeout_s, options=options).correct


def grade_answer(
    gold: str,
    pred: str,
    *,
    timeout_s: float = 2.0,
    problem: str | None = None,
    options: GradeOptions = DEFAULT_OPTIONS,
) -> Verdict:
    """Grade a bare predicted answer (no extraction), never raising, within `timeout_s` plus `DEADLINE_SLACK_S`,
    compared under `options` (see `grade`)."""
    return _bounded(lambda: run_with(options, lambda: _grade_answer(gold, pred, timeout_s, problem)), timeout_s, pred)


def _grade_answer(gold: str, pred: str, timeout_s: float, problem: str | None) -> Verdict:
    if len(gold) > MAX_GOLD_CHARS or len(pred) > MAX_RESPONSE_CHARS:
        return _verdict("unparseable", None, f"size limit: a gold or answer over {MAX_GOLD_CHARS:,} characters")
    try:
        return _decide(_short_blanks(gold), _short_blanks(pred), timeout_s, asks_to_factor(_capped_problem(problem)))
    except Exception as exc:  # the contract: nothing escapes; the reason names what broke
        return _verdict("unparseable", pred, f"internal error: {type(exc).__name__}: {str(exc)[:200]}")


def _bounded(run: Callable[[], Verdict], timeout_s: float, extracted: str | None) -> Verdict:
    """`run()` under the call's deadline; a ``timeout`` verdict when the clock ended it."""
    try:
        return run_bounded(run, max(timeout_s, 0.0) * wall_factor() + DEADLINE_SLACK_S)
    except CallTimeout as exc:
        return _verdict("timeout", extracted, str(exc))


def _capped_problem(problem: str | None) -> str | None:
    return None if problem is None or len(problem) > MAX_PROBLEM_CHARS else _short_blanks(problem)


def _short_blanks(text: str) -> str:
    """`text` with whitespace runs cut to `MAX_BLANK_RUN` characters (a paragraph break stays one)."""
    return _BLANK_RUN.sub(_blank, text) if len(text) > MAX_BLANK_RUN else text


def _blank(run: re.Match[str]) -> str:
    newlines = run.group(0).count("\n")
    return " " * MAX_BLANK_RUN if not newlines else "\n" * min(newlines, 2)


def grade(
    gold: str,
    response: str,
    *,
    timeout_s: float = 2.0,
    problem: str | None = None,
    options: GradeOptions = DEFAULT_OPTIONS,
) -> Verdict:
    """Grade a full model response or a bare answer against `gold`.

    Args:
        gold: The gold answer (bare, a sentence, or a solution with a boxed answer).
        response: A model output or a bare answer (read from its last `MAX_RESPONSE_CHARS` characters).
        timeout_s: The call's time limit: the verdict arrives within `timeout_s` plus `DEADLINE_SLACK_S` seconds
            of wall-clock time (status ``timeout`` if the clock ended it; size limits decide long before).
        problem: The problem text, where the caller has it: a summary sentence that answers a yes/no or
            existence question without saying "yes" or "no" is judged against it (`eval.grading.statements`).
            A text over `MAX_PROBLEM_CHARS` characters is not used.
        options: How two answers are compared (`eval.grading.options.GradeOptions`): ``precision`` (round a lone
            decimal and the value it is compared with to that many places; math-verify's ``float_rounding``),
            ``strict`` (variable names matter), ``set_relation`` (an inequality may answer a gold written as a
            set). The defaults are limo's rules; `GradeOptions.from_math_verify` maps math-verify's arguments.

    Returns:
        A `Verdict`; never raises on any input text (only `options` of another type than `GradeOptions`, a caller's
        error, raises `TypeError`).
    """
    global _calls
    _calls += 1
    if _calls == PRESTART_AFTER_CALLS:
        WORKERS.prestart()
    return _bounded(lambda: run_with(options, lambda: _grade(gold, response, timeout_s, problem)), timeout_s, None)


def _grade(gold: str, response: str, timeout_s: float, problem: str | None) -> Verdict:
    if len(gold) > MAX_GOLD_CHARS:
        return _verdict("unparseable", None, f"size limit: gold over {MAX_GOLD_CHARS:,} characters")
    gold, response = _short_blanks(gold), _short_blanks(response[-MAX_RESPONSE_CHARS:])
    problem = _capped_problem(problem)
    try:
        gold, response = repair_escapes(gold), repair_escapes(response)
        extracted = extract_answer(response, problem=problem)
        statement = judge_statement(gold, response, problem)
    except Exception as exc:
        return _verdict("unparseable", None, f"extraction error: {type(exc).__name__}")
    verdict = (
        _verdict("no_answer", None, "no answer found in the response")
        if extracted is None
        else grade_answer(gold, extracted, timeout_s=timeout_s, problem=problem, options=current_options())
    )
    yes_no = gold_kind(gold) == "yesno"  # a boxed value cannot answer yes or no: the sentence does
    if statement is not None and statement[0] and not verdict.correct and _explicit_opposite(gold, extracted, problem):
        statement = None  # a boxed "No" is the answer, whatever the sentence before it seemed to say
    if statement and statement[0] and not verdict.correct and _boxed_value(response, extracted) and not yes_no:
        statement = None  # a boxed value is the answer: the gold's words in the working before it are not
    if statement is not None and statement[0] != verdict.correct and (statement[0] or gold_kind(gold) == "yesno"):
        verdict = _verdict("correct" if statement[0] else "incorrect", extracted, statement[1])
    verdict = _read_words(gold, response, problem, verdict)
    if verdict.status == "unparseable" and verdict.extracted and gold_kind(gold) == "none" and statement is None:
        # "No integer solutions" is words our grammar cannot parse; a response that names values contradicts it.
        verdict = _verdict("incorrect", verdict.extracted, "the gold denies existence; the response names a value")
    verdict = _committed(gold, response, problem, verdict)
    if verdict.correct and _restates(gold, problem, verdict.extracted):
        # only where equivalence itself accepted the copy (a sentence read by the statement rules is not one)
        again = grade_answer(
            gold, verdict.extracted or "", timeout_s=timeout_s, problem=problem, options=current_options()
        )
        if again.correct:
            return _verdict("incorrect", verdict.extracted, RESTATED)
    return verdict


def _boxed_value(response: str, extracted: str | None) -> bool:
    """Whether the response boxes a value (``\\boxed{\\frac{13}{15}}``: no word outside LaTeX commands), not
    words (``\\boxed{\\text{Such a triangle cannot exist}}``, ``\\boxed{not a}``, which the statement rules may
    read)."""
    if not extracted or not has_box(response):
        return False
    return not re.search(r"[A-Za-z]{3,}", re.sub(r"\\[A-Za-z]+", " ", extracted))  # "not a" is words


def _explicit_opposite(gold: str, extracted: str | None, problem: str | None) -> bool:
    """Whether the extracted answer is itself a worded answer that the gold's reading contradicts."""
    return bool(extracted) and worded_equal(gold, extracted, problem) is False  # type: ignore[arg-type]


def _read_words(gold: str, response: str, problem: str | None, verdict: Verdict) -> Verdict:
    """Option letters mapped through the problem's choices, then worded answers (`eval.grading.worded`):
    each decides a verdict the value rules left incorrect or unread. A worded answer counts only when the
    response boxed it: a phrase cut from a summary sentence is left to `eval.grading.statements`, which reads
    the whole sentence against the question."""
    pred = verdict.extracted
    if verdict.correct or not pred:
        return verdict
    if problem:
        options = current_options()
        letters = option_letters(
            gold, pred, problem, lambda option, side: grade_answer(option, side, options=options).correct
        )
        if letters is not None:
            status = "correct" if letters[0] == letters[1] else "incorrect"
            return _verdict(status, pred, f"option letters compared through the problem's choices: {letters}")
    if ("\\boxed" in response or "\\fbox" in response) and worded_equal(gold, pred, problem):
        return _verdict("correct", pred, "worded answers read alike (eval.grading.worded)")
    return verdict


def _committed(gold: str, response: str, problem: str | None, verdict: Verdict) -> Verdict:
    """A correct verdict stands only if the sentence commits to it (`eval.grading.commitment`)."""
    if not verdict.correct:
        return verdict
    hedge = uncommitted(gold, response, problem)
    if hedge:
        return _verdict("no_answer", verdict.extracted, hedge)
    if asserts_existence_against(gold, response):
        return _verdict("incorrect", verdict.extracted, "the sentence asserts existence; the gold denies it")
    cases = case_split(gold, response)
    if cases:
        return _verdict("incorrect", verdict.extracted, cases)
    modulus = wrong_modulus(problem, verdict.extracted)
    return _verdict("incorrect", verdict.extracted, modulus) if modulus else verdict


# A relation (``3x - 6 > 0``, ``x^2 = 4``): what a response could copy from the problem instead of solving it.
_RELATION = re.compile(r"[<>=≤≥≠]|\\(?:le|ge|leq|geq|neq|lt|gt)(?![A-Za-z])")
RESTATED = "the answer restates a relation the problem states (solving it is the task)"
MAX_RESTATED_CHARS = 300  # a longer answer is no copied condition; the search stays linear in the problem


def _restates(gold: str, problem: str | None, extracted: str | None) -> bool:
    """Whether ``extracted`` is a relation copied from ``problem`` ("Solve $3x - 6 > 0$." answered ``3x-6>0``), which
    holds exactly when the solution set holds, so equivalence would accept it: the reward hack math-verify's
    asymmetric set comparison guards against. Never when the gold is that same relation."""
    if not problem or not extracted or not _RELATION.search(extracted):
        return False
    answer = _squash(extracted)
    if len(answer) < 3 or answer in {_squash(form) for form in _gold_answers(gold)}:
        return False
    if len(answer) > MAX_RESTATED_CHARS:
        return False
    spaced = r"\s*".join(map(re.escape, answer))  # the problem's own spacing between the answer's characters
    text = re.sub(r"\\(?:left|right|displaystyle)|\$", "", problem)
    # whole: not inside a longer term ("x=2" in "x=25", "2.5"), but a sentence's full stop may follow
    return re.search(rf"(?<![\w^_])(?<!\d\.){spaced}(?![\w^_]|\.\d)", text) is not None


def _grade_pair(args: tuple[str, str, str | None, float, GradeOptions]) -> Verdict:
    return grade(args[0], args[1], problem=args[2], timeout_s=args[3], options=args[4])


def grade_many(
    pairs: Iterable[tuple[str, str] | tuple[str, str, str | None]],
    *,
    workers: int | None = None,
    timeout_s: float = 2.0,
    progress: bool = True,
    options: GradeOptions = DEFAULT_OPTIONS,
) -> list[Verdict]:
    """Grade (gold, response) pairs over worker processes, order preserved, same verdicts as `grade`.

    Args:
        pairs: (gold, response) tuples, or (gold, response, problem) where the problem text is known.
        workers: Processes to use (default: CPU count); 1 grades in this process.
        timeout_s: Per-pair limit: each pair's verdict arrives within it plus `DEADLINE_SLACK_S` (see `grade`).
        progress: Show a tqdm bar on stderr.
        options: How answers are compared, for every pair (see `grade`).
    """
    jobs = [(p[0], p[1], p[2] if len(p) > 2 else None, timeout_s, options) for p in pairs]  # type: ignore[misc]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    bar = tqdm(total=len(jobs), disable=not progress, file=sys.stderr, desc="grading", unit="pair")
    if workers == 1:
        if len(jobs) >= PRESTART_PAIRS:
            WORKERS.prestart()  # a batch this size usually has a pair for the slow path: start it meanwhile
        results = []
        for job in jobs:
            results.append(_grade_pair(job))
            bar.update()
    else:
        # not a fork of this process: it may hold threads (tqdm's monitor, a caller's pool) that fork would copy
        with worker_context().Pool(workers) as pool:
            results = []
            for verdict in pool.imap(_grade_pair, jobs, chunksize=max(1, len(jobs) // (workers * 8))):
                results.append(verdict)
                bar.update()
    bar.close()
    return regrade_late(results, lambda i: _grade_pair(jobs[i]))


def worker_context() -> Any:
    """Where grading processes come from (`grade_many`'s pool, `eval.grading.pool.GraderPool`): forks of
    multiprocessing's fork server with this module (the grader, sympy) imported once, so a worker, and one that
    replaces a killed worker, starts in milliseconds instead of importing the grader again (about 0.65 s of CPU each);
    spawned where there is no fork server (not POSIX). Either way a worker never copies the caller's threads: the fork
    server is a fresh single-threaded interpreter. The preload takes effect when the fork server starts: where another
    part of the process started it first, workers import the grader themselves, as spawned ones do."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # this module: the grader, sympy, the parser
    return context


def regrade_late(results: list[Verdict], again: Callable[[int], Verdict]) -> list[Verdict]:
    """`results` with each verdict whose *wall clock* ran out (a loaded machine, a worker still starting) replaced by
    ``again(index)``, called one at a time once the symbolic worker has started: a verdict should not depend on what
    else ran. Verdicts that spent their CPU budget are not retried (they would again). A retry keeps the call's limit
    of the worker's CPU time, and its wall-clock deadline is `WALL_BACKSTOP_FACTOR` times that limit
    (`eval.grading.timeouts.wall_backstop`): retried at once under the same load, the same 2 s of wall clock ended
    pairs again (a champ curation on Ray, whose workers run at nice 15, beside two-process training); said on
    stderr."""
    late = [i for i, verdict in enumerate(results) if is_wall_clock_timeout(verdict)]
    if not late:
        return results
    WORKERS.warm()
    with wall_backstop():
        for i in late:
            results[i] = again(i)
    still = sum(is_wall_clock_timeout(results[i]) for i in late)
    print(
        f"grading: {len(late)} pair(s) ran out of wall-clock time (a loaded machine?); graded again one at a time: "
        f"{len(late) - still} decided, {still} timed out again",
        file=sys.stderr,
    )
    return results


def is_wall_clock_timeout(verdict: Verdict) -> bool:
    """A ``timeout`` verdict a wall-clock deadline caused (it depends on load), not an exhausted CPU budget."""
    return verdict.status == "timeout" and WALL_CLOCK in verdict.reason


def gold_value(gold: str) -> str:
    """The value a worded gold states ("0 is the only possible value" -> ``0``, "100 (i.e., all values)" ->
    ``100``); any other gold unchanged. What a caller weighing how telling an answer is should look at."""
    return _gold_core(gold)
