"""Bounded fuzzing: 10,000+ generated answers and responses; none may raise, time out or run long.

Short answers built from pieces of the grammar, responses with noise, arbitrary text; and long inputs (issue 33):
runs of one piece or a few, up to the 50,000 characters a response is read from, where a regular expression that
backtracks or a rule that rescans the rest of the text per match shows up as seconds instead of milliseconds.

The examples are the same on every run (hypothesis's ``derandomize``: the seed comes from each test itself), so
a CI run never fails by chance; the long random search, 20,000 hostile pairs and more from any seed, is
``bench/grader/grader_fuzz.py`` (``make fuzz``, docs/grader.md "Fuzzing"), and what it finds becomes a case in
tests/test_grader_limits.py.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from eval.answers.extract import extract_answer
from eval.grading.grader import STATUSES, grade
from tests.grader_timing import LIMIT_S, timed_grade

PIECES = [
    "0",
    "1",
    "7",
    "12",
    "2.5",
    "9",
    "x",
    "y",
    "n",
    "e",
    "i",
    "\\pi",
    "+",
    "-",
    "*",
    "/",
    "^",
    "!",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\\{",
    "\\}",
    ",",
    ";",
    "=",
    "<",
    "\\le",
    "\\frac",
    "\\dfrac",
    "\\sqrt",
    "\\sqrt[3]",
    "\\binom",
    "\\text{cm}",
    "\\%",
    "\\$",
    "^\\circ",
    "\\left(",
    "\\right)",
    "\\cup",
    "\\infty",
    "\\pm",
    "_",
    "\\boxed{",
    "$",
    " ",
    "sqrt(",
    "C(",
    "**",
    "\\begin{pmatrix}",
    "&",
    "\\\\",
    "\\end{pmatrix}",
    "{,}",
    "\\!",
    "The answer is ",
    "Answer: ",
    ". ",
    "\n",
    "is ",
    "9^{9^{9^9}}",
    "10^{400}",
    "99999999999",
    "2\\frac14",
    "\\sum_{k=1}^{n}",
    "\\sum_{k=0}^{999}",
    "\\prod_{j=1}^{10^{9}}",
    "sum_(i=1)^n",
    "F_{n-k}",
    "a_k",
    "k",
    "\\lfloor",
    "\\rfloor",
    "\\equiv",
    "\\pmod{7}",
    "{n \\choose 2}",
    "There are ",
    "No, ",
    "x = y = ",
    ":",
    "\\approx 0.5",
    "\\int_0^1",
    " dx",
    "\\bmod",
    " pct",
    ",\\!",
    "<|im_end|>",
    "\x0crac",
    "\\le x \\le",
    "|w|",
    "\\cup",
    "There are no ",
    "is not ",
    "Yes, ",
]
answers = st.lists(st.sampled_from(PIECES), max_size=25).map("".join)
noise = st.text(max_size=40)


def _check(gold: str, response: str) -> None:
    # This thread's CPU time: the in-process path is bounded by size limits, whatever the machine's load and
    # however long the slow path's worker takes to start; the worker's own limit is the "timeout" status
    # (tests/test_grader_limits.py checks that limit itself).
    start = time.thread_time()
    verdict = grade(gold, response, timeout_s=LIMIT_S)
    elapsed = time.thread_time() - start
    assert verdict.status in STATUSES and verdict.status != "timeout", verdict
    assert verdict.correct == (verdict.status == "correct")
    assert elapsed < LIMIT_S, (gold, response, elapsed)


# No explain phase: after a failure it re-runs the grader under a line tracer, which on the long inputs below kept a
# CI run busy for tens of minutes instead of reporting the failing example.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink]
FIXED = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None, "derandomize": True}
FUZZ = settings(max_examples=3400, phases=PHASES, **FIXED)


@pytest.mark.slow
@FUZZ
@given(answers, answers)
def test_fuzz_structured_pairs(gold, response):
    _check(gold, response)


@pytest.mark.slow
@FUZZ
@given(answers, st.tuples(noise, answers, noise).map("".join))
def test_fuzz_responses_with_noise(gold, response):
    extract_answer(response)
    _check(gold, response)


@pytest.mark.slow
@FUZZ
@given(noise, noise)
def test_fuzz_arbitrary_text(gold, response):
    _check(gold, response)


# the last three: shapes the long fuzz run found (nested and bare boxes, brackets after every word)
LONG_PIECES = PIECES + ["#", "\\(", "\\[", "x = ", "<|im_end|>", "\\text{ for all } ", "\t", "a a", "\\,", "mod "]
LONG_PIECES += ["\\boxed", "x (", "is not "]


def _run_of(pieces: list[str], length: int) -> str:
    text = "".join(pieces) or " "
    return (text * (length // len(text) + 1))[:length]


long_texts = st.builds(
    _run_of, st.lists(st.sampled_from(LONG_PIECES), min_size=1, max_size=3), st.sampled_from([4_000, 20_000, 50_000])
)


@pytest.mark.slow
@settings(max_examples=60, phases=PHASES, **FIXED)
@given(long_texts, long_texts, st.booleans())
def test_fuzz_long_runs(gold, response, with_problem):
    """Gold up to 4,000 characters (longer ones are refused), response and problem up to 50,000. This thread's CPU
    is measured with the garbage collector paused (a full collection of the test worker's heap, charged to whichever
    call triggers it, read 0.72 s once in CI for a pair that grades in 0.01 s), against half the limit."""
    case = ("long run", gold[:4_000], response, response if with_problem else None)
    status, _, cpu = timed_grade(case, pause_collector=True)
    assert status != "timeout", (gold[:40], response[:40])
    assert cpu < LIMIT_S / 2, (gold[:40], response[:40], cpu)
