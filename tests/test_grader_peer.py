"""The peer suites' kinds (issue 33, item 2, second round): each tuning miss of `bench/grader_sets.py`'s ``peer``
set that a rule fixed, rewritten for limo with the near misses that guard it, and the disagreements of principle
with the label our standards give (``tests/assets/grader_cases_peer_fixes.jsonl``; docs/grader.md, "Issue 33, item
2")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.extract import extract_answer
from eval.grader import grade, verify

_ROWS = [
    json.loads(line)
    for line in (Path(__file__).parent / "assets" / "grader_cases_peer_fixes.jsonl").read_text("utf-8").splitlines()
    if line
]


@pytest.mark.parametrize("row", _ROWS, ids=[f"{i}-{r['category']}" for i, r in enumerate(_ROWS)])
def test_peer_fix_cases(row):
    assert row["part"] == "tune" and "modelled on" in row["source"]
    verdict = grade(row["gold"], row["candidate"], problem=row.get("problem"))
    assert verdict.correct is row["label"], (row["gold"], row["candidate"], verdict)


def test_boxes_of_indexed_names_join_with_their_names_and_one_name_repeated_does_not():
    assert extract_answer("so \\(y_1 = \\boxed{x+1}\\) and \\(y_2 = \\boxed{2x}\\).") == "y_{1} = x+1, y_{2} = 2x"
    assert extract_answer("Thus $a_{1} = \\boxed{3}$, $a_{2} = \\boxed{5}$ and $a_{3} = \\boxed{7}$.") == (
        "a_{1} = 3, a_{2} = 5, a_{3} = 7"
    )
    assert extract_answer("Therefore, $k = \\boxed{5}$ or $k = \\boxed{-3}$.") == "-3"  # a candidate weighed
    assert extract_answer("So $x = \\boxed{2}$, hence $x_2 = \\boxed{4}$.") == "4"  # not siblings
    between = "$x_1 = \\boxed{2}$. Checking again, we find $x_2 = \\boxed{4}$."
    assert extract_answer(between) == "4"  # a sentence between the boxes


def test_separator_runs_join_boxes_and_an_operator_does_not():
    assert extract_answer("$\\boxed{3} ------ \\boxed{4}$") == "3, 4"
    assert extract_answer("$\\\\boxed{3} ++++++ \\\\boxed{4}$") == "3, 4"  # JSON-doubled backslashes
    assert extract_answer("$\\boxed{3} + \\boxed{4}$") == "4"
    assert extract_answer("$\\boxed{3} -- \\boxed{4}$") == "4"


def test_names_bind_values_only_when_both_sides_use_the_same_names():
    assert not verify("x = 1, y = 2", "x = 2, y = 1")
    assert verify("x = 1, y = 2", "y = 2, x = 1")
    assert verify("a = 3, b = 4", "3, 4")  # no names on one side: the values
    assert verify("x = 1, x = 2", "x = 2, x = 1")  # one name repeated: a list of its values


@pytest.mark.parametrize(
    ("gold", "pred", "equal"),
    [
        ("1 1/2", "1.5", True),
        ("1 1/2", "0.5", False),
        ("1 3/2", "2.5", False),  # an improper fraction after a number is no mixed number
        ("1 100/200", "1.5", False),  # three digits may be a thousands group: never read as a mixed number
        ("x^2 1/2", "x^2 + 1/2", False),
        ("20:34", "8:34 \\text{P.M.}", True),
        ("08:34", "8:34 am", True),
        ("20:34", "8:34 \\text{A.M.}", False),
        ("12:05", "12:05 p.m.", True),
        ("00:05", "12:05 a.m.", True),
        ("x = 1, x = 2", "x=1orx=2", True),
        ("x = 1, x = 2", "x=1ory=2", False),  # another name after the glued word: not a disjunction of x
    ],
)
def test_plain_mixed_numbers_clock_times_and_glued_disjunctions(gold, pred, equal):
    assert verify(gold, pred) is equal


# The peer suites' cases limo decides against their label, each on principle (docs/grader.md, "Issue 33, item 2").
PEER_DISAGREEMENTS = {
    "peer/math-verify/test_complex_math_expressions/7": "0.33 for 1/3 at the test's precision=2: roundings refused",
    "peer/math-verify/test_complex_math_expressions/13": "2.6667 for 8/3 at precision=2: roundings refused",
    "peer/math-verify/test_set_rel_assymetry/3": "listed twice with opposite labels; the forms set asks for equal",
    "peer/math-verify/test_strict_variable_comparison/1": "f(x) = f(y) only with strict=False; limo is strict",
    "peer/math-verify/test_string_extraction/9": "1 - 1/e labelled equal to 1 + 1/e",
    "peer/math-verify/test_symbols/0": "a tab-eaten \\text{13}: limo repairs the escape and reads 13",
    "peer/math_evaluation/test_is_equiv_real_or_list/8": "1.732 and 3.1416 for sqrt(3) and pi: beyond 1e-6",
    "peer/math_evaluation/test_is_equiv_real_or_list/9": "125.663 for 40 pi: a truncation, beyond 1e-6",
    "peer/math_evaluation/test_are_equal_under_sympy/1": "1.414 for sqrt(2): beyond 1e-6",
    "peer/math_evaluation/test_is_equiv_interval/1": "2^(1/2^1000) is not 1 (it exceeds 1 by ~1e-301): the numeric "
    "evidence of issue 33 item 1 compares relative to the value's own size, not to a fixed tolerance",
}


def test_peer_suites_misses_are_only_the_documented_disagreements():
    """On a local checkout of the peer suites (`bench/grader_sets.peer_set`; never committed), every case limo
    decides against the suite's label is a documented disagreement of principle."""
    from bench.grader_sets import peer_set

    rows = peer_set()
    if len(rows) < 380:
        pytest.skip("no peer-suite checkout under $LIMO_PEER_SUITES or ~/.cache/limo/peer_suites")
    misses = {r["id"] for r in rows if grade(r["gold"], r["candidate"]).correct != r["label"]}
    assert misses <= set(PEER_DISAGREEMENTS), sorted(misses - set(PEER_DISAGREEMENTS))
