"""Olympiad and multiple-choice answers (issue 25's hard-benchmark gap): worded answers, function families,
option letters, equal forms with floors and logarithms, and values that agree to many digits but differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.benchmarks.choices import letter_form, option_letters
from eval.grading.families import renamings, strip_qualifier
from eval.grading.grader import grade, verify
from eval.grading.worded import reading, worded_equal

ROWS = [
    json.loads(line)
    for line in (Path(__file__).parent / "assets" / "grader_cases_olympiad.jsonl").read_text("utf-8").splitlines()
]
TUNE = [r for r in ROWS if r["part"] == "tune"]
HELDOUT = [r for r in ROWS if r["part"] == "heldout"]
# Tuning rows the rules still miss (each a false negative), found by a piece of their response.
KNOWN_MISSES = {
    "So we have exhibited an explicit arrangement; it can be done.",  # "it can be done" in prose, no box
}


def _known_miss(row: dict) -> bool:
    return any(text in row["candidate"] for text in KNOWN_MISSES)


def test_the_set_is_split_and_labelled():
    assert len(ROWS) >= 150 and len(HELDOUT) >= 60
    for row in ROWS:
        assert {"gold", "candidate", "label", "category", "source", "part", "note"} <= set(row)
        assert row["part"] in {"tune", "heldout"} and isinstance(row["label"], bool)


@pytest.mark.parametrize("row", TUNE, ids=[f"{i}-{r['category']}" for i, r in enumerate(TUNE)])
def test_tuning_rows(row):
    verdict = grade(row["gold"], row["candidate"], problem=row.get("problem"))
    assert verdict.status != "timeout"
    if _known_miss(row):
        assert row["label"] and not verdict.correct, "a known miss now passes: drop it from KNOWN_MISSES"
    else:
        assert verdict.correct is row["label"], verdict


def test_held_out_rows_stay_above_their_floor():
    """Held out while the rules were written: a floor, not a target (measured on 2026-11-23: 93/98 for the rows
    split off before tuning, 69/75 for the fresh batch written after it; 162/173 together)."""
    verdicts = [grade(r["gold"], r["candidate"], problem=r.get("problem")) for r in HELDOUT]
    right = sum(v.correct is r["label"] for r, v in zip(HELDOUT, verdicts, strict=True))
    false_positives = sum(v.correct and not r["label"] for r, v in zip(HELDOUT, verdicts, strict=True))
    assert right / len(HELDOUT) >= 0.92 and false_positives <= 2, (right, false_positives)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\text{No such } n \\text{ exists}", ("none",)),
        ("\\varnothing", ("none",)),
        ("\\text{No, it is impossible}", ("yesno", "no")),
        ("\\text{every prime except } 2", ("set", "odd", "prime", None, False)),
        ("\\text{all primes } p \\ge 3", ("set", "odd", "prime", None, False)),
        ("\\text{all primes } p > 3", ("set", None, "prime", 4, False)),
        ("n \\equiv 1 \\pmod 2", ("set", "odd", None, None, False)),
        ("n = 2k + 3", None),
        ("n = 2^k \\text{ for some integer } k \\ge 0", ("set", None, None, None, True)),
        ("\\text{only } n = 3", None),
    ],
)
def test_worded_readings(text, expected):
    assert reading(text) == expected


def test_worded_answers_need_an_existence_question_to_answer_no():
    assert worded_equal("No", "\\text{Impossible}", "Is it possible to tile the board?") is True
    assert worded_equal("No", "\\text{Impossible}", None) is None
    assert worded_equal("Yes", "\\text{No such tiling exists}", "Does a tiling exist?") is False
    assert worded_equal("\\text{all odd primes}", "\\text{all primes}", None) is False
    assert worded_equal("\\text{None}", "\\text{there are no such } n", None) is True


def test_function_answers_lose_quantifiers_and_take_the_gold_names():
    assert strip_qualifier("f(x) = cx \\text{ for all } x \\in \\mathbb{R}") == "f(x) = cx"
    piecewise = "f(x) = x \\text{ for } x \\ge 0, f(x) = -x"
    assert strip_qualifier(piecewise) == piecewise  # conditions of a piecewise answer stay
    assert "f(x) = cx" in list(renamings("f(x) = cx", "f(x) = kx"))
    assert verify("f(x) = ax + b", "f(x) = bx + a")
    assert not verify("f(x) = cx", "f(x) = x + k")
    assert not verify("f(x) = x + 1", "f(x) = x + c")


def test_option_letters_map_through_the_question():
    question = "Question: Find BC.\nChoices:\n(A) 6\n(B) 8\n(C) 10\n(D) 12"
    assert letter_form("\\text{(C)}", "ABCD") == "C" and letter_form("A student", "ABCD") is None
    assert letter_form("option C", "ABCD") == "C" and letter_form("**(C)**", "ABCD") == "C"
    assert letter_form("E", "ABCD") is None  # not one of the question's letters
    assert option_letters("10", "C", question, lambda a, b: a == b) == ("C", "C")
    assert option_letters("C", "8", question, lambda a, b: a == b) == ("C", "B")
    assert option_letters("10", "10", question, lambda a, b: a == b) is None  # no letter: values decide
    assert grade("10", "\\boxed{C}", problem=question).correct
    assert not grade("10", "\\boxed{A}", problem=question).correct
    assert not grade("10", "\\boxed{C}").correct  # without the question a letter is not a value


@pytest.mark.parametrize(
    ("gold", "answer", "equal"),
    [
        ("e^{\\pi\\sqrt{163}}", "640320^3 + 744", False),  # equal to 30 digits
        ("10^{20}", "\\sqrt{10^{40}+1}", False),  # equal to 40 digits
        ("\\tan\\left(\\frac{\\pi}{2} - 10^{-30}\\right)", "10^{30}", False),
        ("\\sqrt{2}+\\sqrt{3}", "\\sqrt{5+2\\sqrt{6}}", True),
        ("-\\frac{1}{8}", "\\cos\\frac{\\pi}{7}\\cos\\frac{2\\pi}{7}\\cos\\frac{4\\pi}{7}", True),
        ("\\left\\lceil \\frac{n}{2} \\right\\rceil", "\\left\\lfloor \\frac{n+1}{2} \\right\\rfloor", True),
        ("\\lfloor \\log_2 n \\rfloor + 1", "\\lceil \\log_2 (n+1) \\rceil", True),
        ("\\lfloor \\log_2 n \\rfloor + 1", "\\lceil \\log_2 n \\rceil", False),  # differs at powers of two
        ("\\lfloor \\sqrt{n-1} \\rfloor", "\\lfloor \\sqrt{n} \\rfloor", False),  # differs at squares
        ("\\frac{\\sqrt{6}-\\sqrt{2}}{4}", "\\sin 15^\\circ", True),
        ("\\frac{1}{2}", "\\sin 60^\\circ", False),
        ("\\lfloor x \\rfloor", "\\lceil x \\rceil - 1", False),  # equal between integers only
        ("\\lfloor 2x \\rfloor", "\\lfloor x \\rfloor + \\lfloor x + \\frac{1}{2} \\rfloor", True),
        ("\\frac{n(n+1)(2n+1)}{6}", "1^2 + 2^2 + \\cdots + n^2", True),
        ("2^n n!", "2 \\cdot 4 \\cdots (2n)", True),
        ("n^2", "1 + 3 + \\cdots + (2n+1)", False),
    ],
)
def test_exact_values(gold, answer, equal):
    verdict = grade(gold, f"\\boxed{{{answer}}}")
    assert verdict.correct is equal, verdict
