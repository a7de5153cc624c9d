"""Grader behaviour users rely on: the case table, the Verdict contract, safety, limits, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.grader.grader_sets import build, case_group, part_of
from eval.grading.grader import STATUSES, Verdict, grade, grade_many, verify
from tests.grader_timing import timed_grade
from tests.shared_data import shared_data_dir

ASSETS = Path(__file__).parent / "assets"


def _table(name: str) -> list[dict]:
    return [json.loads(line) for line in (ASSETS / name).read_text(encoding="utf-8").splitlines() if line.strip()]


CASES = _table("grader_cases.jsonl")  # round 1, a regression table: every row must hold
FORMS = _table("grader_cases_forms.jsonl")  # the answer forms of issue 12, split into tuning and held-out rows
COMMITMENT = _table("grader_cases_commitment.jsonl")  # issue 25: hedges, supersets, polarity, modulus (all hold)
FORMS_TUNE = [r for r in FORMS if part_of(case_group(r)) == "tune"]
FORMS_HELDOUT = [r for r in FORMS if part_of(case_group(r)) == "heldout"]


@pytest.mark.parametrize("table", [CASES, FORMS], ids=["cases", "forms"])
def test_case_tables_are_large_and_well_formed(table):
    assert len(table) >= 150
    for row in table:
        assert (
            {"gold", "candidate", "label", "category", "source"}
            <= set(row)
            <= {"gold", "candidate", "label", "category", "source", "problem"}
        )
        assert isinstance(row["label"], bool) and row["source"]
    assert len(CASES) >= 400


@pytest.mark.parametrize(
    "row", CASES + FORMS_TUNE, ids=[f"{i}-{r['category']}" for i, r in enumerate(CASES + FORMS_TUNE)]
)
def test_grader_case(row):
    verdict = grade(row["gold"], row["candidate"], problem=row.get("problem"))
    assert verdict.correct is row["label"], verdict
    assert verdict.status != "timeout"


def test_held_out_forms_no_false_positive_and_few_misses():
    """Held-out rows were never used to tune the grader: they measure, so misses are allowed, within a floor."""
    verdicts = [grade(r["gold"], r["candidate"], problem=r.get("problem")) for r in FORMS_HELDOUT]
    false_positives = [r for r, v in zip(FORMS_HELDOUT, verdicts, strict=True) if v.correct and not r["label"]]
    right = sum(v.correct is r["label"] for r, v in zip(FORMS_HELDOUT, verdicts, strict=True))
    assert len(FORMS_HELDOUT) >= 40 and false_positives == []
    assert right / len(FORMS_HELDOUT) >= 0.93, f"{right}/{len(FORMS_HELDOUT)}"


def test_verdict_contract():
    verdict = grade("\\frac{1}{2}", "The answer is $\\boxed{0.5}$.")
    assert verdict == Verdict("correct", True, "0.5", verdict.reason)
    assert verdict.reason
    assert verdict.to_dict() == {"status": "correct", "correct": True, "extracted": "0.5", "reason": verdict.reason}
    with pytest.raises(AttributeError):
        verdict.status = "incorrect"  # type: ignore[misc]


def test_statuses():
    assert grade("3", "I cannot tell.").status == "no_answer"
    assert grade("3", "4").status == "incorrect"
    assert grade("3", "@@@").status == "unparseable"
    assert {grade("3", x).status for x in ("3", "4", "", "@@@")} <= set(STATUSES)


def test_verify_is_gold_first_and_bare():
    assert verify("x=5", "5")
    assert not verify("2\\frac14", "2/4")
    assert verify("\\frac{1}{2004!}", "\\frac{1}{2004!}") and not verify("\\frac{1}{2004!}", "\\frac{1}{2006!}")


INJECTIONS = [
    "__import__('os').system('touch {marker}')",
    "().__class__.__bases__[0].__subclasses__()",
    "(lambda: __import__('os').system('touch {marker}'))()",
    "exec(\"open('{marker}','w').write('x')\")",
    "eval(\"__import__('os').system('touch {marker}')\")",
    "$\\boxed{{__import__('os').system('touch {marker}')}}$",
    "open('{marker}', 'w')",
]


@pytest.mark.parametrize("index", range(len(INJECTIONS)))
def test_injection_never_runs(index, tmp_path):
    marker = tmp_path / "pwned"
    text = INJECTIONS[index].format(marker=marker)
    other = INJECTIONS[(index + 1) % len(INJECTIONS)].format(marker=marker)
    for gold, response in ((text, other), ("1", text), (text, "1"), ("1", f"The answer is {text}."), (other, text)):
        verdict = grade(gold, response)
        assert not verdict.correct
        assert verify(gold, response) is False
    assert not marker.exists()


HOSTILE = [
    "9^{9^{9^9}}",
    "9^9^9^9",
    "2^{2^{2^{2^{2^{2}}}}}",
    "1" * 1_000_000,
    "9" * 5000 + "!",
    "(" * 5000 + "1" + ")" * 5000,
    "{" * 3000 + "1" + "}" * 3000,
    "\\frac{" * 2000 + "1",
    "x" * 100_000,
    "-" * 50_000 + "1",
    "10^{10^{10}}!",
    "\\sqrt{" * 500 + "2" + "}" * 500,
    "\\boxed{" * 10_000,
    "(1,2)" * 20_000,
    "e^{e^{e^{e^{10}}}}",
    "1e99999999",
    "\\binom{10^{8}}{5}",
    "10^{5000} \\cdot 10^{5000} \\cdot 10^{5000}",
    "\\sum_{i=1}^{1000} \\sum_{j=1}^{1000} \\sum_{k=1}^{1000} ijk",
    "\\prod_{k=1}^{n^{9}} k",
    "\\sum_{k=1}^{10^{12}} k",
    "\\int_0^{10^{9}} \\sin(x^{x}) \\, dx",
    "\\int_0^1 " * 30 + "x" + " dx" * 30,
    "\\begin{pmatrix}"
    + " & ".join(["9^{99}"] * 20)
    + "\\end{pmatrix} \\begin{pmatrix}"
    + "1 \\\\ " * 20
    + "\\end{pmatrix} \\cdot 9",
    "1:0:" * 500,
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_size_limits_decide_fast(hostile):
    """Decided by size limits, never by the clock, in little CPU time: this thread's CPU seconds with the collector
    paused (tests/grader_timing.py), which neither a loaded machine nor a collection of the test worker's heap moves,
    as they did the wall time this test read before."""
    for gold, response in ((hostile, "7"), ("7", hostile), (hostile, hostile + "1")):
        status, _, cpu = timed_grade(("", gold, response, None), pause_collector=True)
        assert status in {"incorrect", "unparseable", "no_answer"} and cpu < 1.0, (hostile[:40], status, cpu)


def test_identical_tower_is_correct_without_evaluating():
    assert grade("9^{9^{9^9}}", "9^{9^{9^9}}").correct


def test_grade_many_matches_one_by_one_with_two_workers():
    pairs = [(r["gold"], r["candidate"]) for r in CASES]
    parallel = grade_many(pairs, workers=2, progress=False)
    serial = [grade(g, c) for g, c in pairs]
    assert parallel == serial
    assert sum(v.status == "timeout" for v in parallel) == 0


def test_grade_many_in_process_and_empty():
    assert grade_many([], workers=1, progress=False) == []
    assert [v.correct for v in grade_many([("1", "1"), ("1", "2")], workers=1, progress=False)] == [True, False]


@pytest.mark.shared_data
def test_dev_set_accuracy_and_no_false_positive():
    rows = [json.loads(line) for line in (shared_data_dir() / "grading_pairs_dev.jsonl").read_text().splitlines()]
    verdicts = [grade(r["gold"], r["candidate"]) for r in rows]
    right = sum(v.correct is r["label"] for v, r in zip(verdicts, rows, strict=True))
    false_positives = [r["id"] for v, r in zip(verdicts, rows, strict=True) if v.correct and not r["label"]]
    assert right >= 189, f"{right}/{len(rows)} right; math-verify 0.9.0 gets 189"
    assert false_positives == []
    assert all(v.status != "timeout" for v in verdicts)


# MATH train solutions that box several values; the gold keeps only the last box (data/README.md hazard).
LAST_BOX_ONLY = {"math_train/acc3f47e4350", "math_train/299c1dc95359", "math_train/f327fa826069"}


@pytest.mark.shared_data
def test_math_train_golds_equal_themselves_and_their_own_solutions():
    rows = [json.loads(line) for line in (shared_data_dir() / "math_train.jsonl").read_text().splitlines()]
    golds = [r for r in rows if r["answer"].strip()]
    assert [r["id"] for r in golds if not verify(r["answer"], r["answer"])] == []
    solved = [r for r in golds if r["solution"]]
    mismatched = {r["id"] for r in solved if not grade(r["answer"], r["solution"]).correct}
    assert len(solved) > 3600 and mismatched <= LAST_BOX_ONLY, sorted(mismatched - LAST_BOX_ONLY)


def _scores(rows: list[dict]) -> tuple[float, list[str]]:
    verdicts = [grade(r["gold"], r["candidate"], problem=r.get("problem")) for r in rows]
    right = sum(v.correct is r["label"] for r, v in zip(rows, verdicts, strict=True))
    false_positives = [r["id"] for r, v in zip(rows, verdicts, strict=True) if v.correct and not r["label"]]
    assert all(v.status != "timeout" for v in verdicts)
    return right / len(rows), false_positives


@pytest.mark.parametrize(
    ("name", "min_tune", "min_held", "tune_floor", "held_floor", "held_fp_cap"),
    [
        ("champ", 450, 250, 0.99, 0.95, 2),
        ("champ_r3", 450, 250, 1.0, 0.98, 0),
        ("champ_r4", 350, 150, 1.0, 0.98, 0),  # issue 33: held-out labelled blind, 155/158 when measured
    ],
)
def test_champ_hand_labels_tuning_and_held_out(name, min_tune, min_held, tune_floor, held_floor, held_fp_cap):
    """CHAMP summaries labelled by hand (text from the installed champ-dataset; ``champ_r3`` is round 3): the
    tuning part holds, the held-out part stays at or above what was measured when it was set (round 3: 271/276,
    no false positive) with at most that many false positives."""
    rows = build([name])[name]
    tune = [r for r in rows if r["part"] == "tune"]
    held = [r for r in rows if r["part"] == "heldout"]
    assert len(tune) >= min_tune and len(held) >= min_held
    tune_acc, tune_fp = _scores(tune)
    held_acc, held_fp = _scores(held)
    assert tune_acc >= tune_floor and tune_fp == [], (tune_acc, tune_fp)
    assert held_acc >= held_floor and len(held_fp) <= held_fp_cap, (held_acc, held_fp)


@pytest.mark.parametrize("row", COMMITMENT, ids=[f"{r['category']}-{i}" for i, r in enumerate(COMMITMENT)])
def test_commitment_cases(row):
    """A sentence that hedges, names more values, says the opposite word or another modulus is not correct."""
    verdict = grade(row["gold"], row["candidate"], problem=row.get("problem"))
    assert verdict.correct is row["label"], (row, verdict)


@pytest.mark.shared_data
def test_math_house_styles_held_out():
    """MATH golds against their house-style rewrites and near misses (generated from ../shared/data)."""
    rows = [r for r in build(["math_styles"])["math_styles"] if r["part"] == "heldout"]
    accuracy, false_positives = _scores(rows)
    assert len(rows) > 5000 and false_positives == [] and accuracy >= 0.999, (accuracy, false_positives[:5])


def test_grade_many_passes_the_problem():
    problem = "Is the number 2^61 - 1 composite?"
    pairs = [("No", "The number 2^61 - 1 is prime.", problem), ("No", "The number 2^61 - 1 is prime.")]
    assert [v.correct for v in grade_many(pairs, workers=1, progress=False)] == [True, False]


@pytest.mark.parametrize(
    "gold, response, correct",
    [
        # CHAMP P_Number-Theory_58's kind: a case split names the gold's value and another one
        (
            "0 is the only possible value",
            "The possible values are \\(0\\) when \\(n\\) is even, and \\(n+1\\) when \\(n\\) is odd.",
            False,
        ),
        ("1", "The remainder is 1 if k is odd and 0 otherwise.", False),
        # one value under one condition is not a case split
        ("4", "The sum is 4 when x = 2.", True),
        # a gold with cases of its own is left to the value rules
        ("0 if n is even, 1 if n is odd", "It is 0 if n is even, and 1 if n is odd.", True),
    ],
)
def test_a_summary_answering_by_cases_is_not_the_gold_s_single_value(gold, response, correct):
    assert grade(gold, response).correct is correct


def test_conditions_on_where_one_value_occurs_are_not_cases():
    # CHAMP P_Inequality_49 (GPT-4 Turbo, 5-Shot): one value, two conditions where it is reached
    response = (
        "The smallest value of the expression |x+y-z|+|x-y+z|+|-x+y+z|-|x|-|y|-|z| is 0, which occurs when any two "
        "of the variables are equal and the third is zero, or when all three variables are zero."
    )
    assert grade("0", response).correct


def test_the_gold_s_words_in_the_working_do_not_outvote_a_boxed_value():
    # MATH train (pool_numina_cot's planted wrong chain): the event names appear in the working, the box is wrong
    chain = (
        "Rewriting the fractions to have a common denominator of $60,$ we have \\begin{align*}\n"
        "\\text{Kickball: }&\\frac{22}{60} \\\\\n\\text{Picnic: }&\\frac{21}{60} \\\\\n"
        "\\text{Softball: }&\\frac{25}{60}\n\\end{align*} So the order is $\\boxed{\\frac{13}{15}}.$"
    )
    gold = "\\text{Softball, Kickball, Picnic}"
    assert not grade(gold, chain).correct
    assert grade(gold, chain.replace("\\frac{13}{15}", "\\text{Softball, Kickball, Picnic}")).correct


RESTATEMENTS = [
    # (gold, response, problem, expected status): copying the problem's relation is no solution of it
    ("(2, \\infty)", "The answer is $3x - 6 > 0$.", "Solve $3x - 6 > 0$.", "incorrect"),
    ("(2, \\infty)", "So $\\boxed{3x-6>0}$", "Solve the inequality 3x - 6 > 0 over the reals.", "incorrect"),
    ("\\{-2, 2\\}", "The solutions satisfy $x^2 = 4$.", "Find every real x with $x^2 = 4$.", "incorrect"),
    ("(2, \\infty)", "The answer is $x > 2$.", "Solve $3x - 6 > 0$.", "correct"),  # solved
    ("(2, \\infty)", "The answer is $3x - 6 > 0$.", None, "correct"),  # no problem text: nothing to compare with
    ("3x-6>0", "The answer is $3x - 6 > 0$.", "For x = 5, which holds: 3x-6>0 or 3x-6<0?", "correct"),  # the gold
    ("2", "So $x = 2$.", "Solve 3x = 6, knowing that x=25 is excluded.", "correct"),  # x=2 only inside x=25
]


@pytest.mark.parametrize(("gold", "response", "problem", "status"), RESTATEMENTS)
def test_an_answer_that_restates_the_problem_is_no_solution(gold, response, problem, status):
    """The reward hack math-verify's asymmetric set comparison guards against (peer round, issue 33): 3x - 6 > 0
    holds exactly where x > 2 does, so equivalence alone would pay a policy for copying the question."""
    assert grade(gold, response, problem=problem).status == status


@pytest.mark.parametrize(
    "gold, response, correct",
    [
        (r"\sin(2x)", r"\sin 2x", True),  # a number with the letters after it is the argument, as it is read
        (r"2\sin x\cos x", r"\sin 2x", True),
        (r"\cos(3\theta)", r"\cos 3\theta", True),
        (r"\sin(2\pi t)", r"\sin 2\pi t", True),
        (r"1-\frac{3}{4}\sin^{2}(2x)", r"1-\frac{3}{4}\sin^{2}2x", True),
        (r"\ln(2x)", r"\ln 2x", True),
        (r"x\sin(2)", r"\sin 2x", False),  # no longer read as sin(2) times x
        (r"\sin(x)\cos(x)", r"\sin x\cos x", True),  # a letter alone is still one factor ...
        (r"\sin(x)y", r"\sin x y", True),  # ... and the letters after it multiply the value
        (r"\sin(2)\cos(x)", r"\sin 2\cos x", True),  # a function after the number ends the argument
        (r"\sin(2)\cdot x", r"\sin 2\cdot x", True),  # so does an explicit product
        (r"\sum_{k=1}^{3}\sin(2k)", r"\sum_{k=1}^{3}\sin 2k", True),  # a summation index is a letter too
        (r"\sin 2+\sin 4+\sin 6", r"\sum_{k=1}^{3}\sin 2k", True),
    ],
)
def test_a_function_argument_without_brackets(gold, response, correct):
    assert grade(gold, response).correct is correct


@pytest.mark.parametrize(
    "gold, response, correct",
    [
        ("(100,200)", "100200", False),  # two numbers filling a bracket are a pair, not a thousands number
        (r"\left(100,200\right)", "(100, 200)", True),
        ("[100,200]", "100200", False),  # an interval
        (r"\{100,200\}", r"\{200,100\}", True),
        (r"\binom{12}{100}", "0", True),  # a binomial's two arguments
        (r"\binom{200}{100}", "90548514656103281165404177077484163874504589675413336841320", True),
        ("(1,000)", "1000", True),  # a group with a leading zero is still a thousand ...
        ("(1,000,000)", "1000000", True),  # ... and so is a group with two commas
        ("1,000", "1000", True),
        ("x = 100,200", "100200", True),  # outside a bracket the comma still groups thousands
    ],
)
def test_two_numbers_in_a_bracket_are_not_a_thousands_number(gold, response, correct):
    assert grade(gold, response).correct is correct


@pytest.mark.parametrize(
    "gold, response, correct",
    [
        (r"428\text{ square centimeters}", r"-428\text{ square centimeters}", False),  # words alike, sign not
        (r"14 \text{ right triangles}", "There are -14 right triangles.", False),
        (r"-5\text{ degrees}", r"5\text{ degrees}", False),
        (r"428\text{ square centimeters}", "The area is 428 square centimeters.", True),
        ("At least 1 number", "At least one of the three numbers must be divisible by 5.", True),  # one, in words
    ],
)
def test_a_worded_gold_with_a_number_is_not_stated_with_the_other_sign(gold, response, correct):
    assert grade(gold, response).correct is correct


@pytest.mark.parametrize(
    "gold, response, correct",
    [
        ("2", r"The final answer is $\boxed{2(2)}$.", False),  # 2(2) is a product, not 2 restated in brackets
        ("4", r"\boxed{2(2)}", True),
        ("n!", r"\boxed{n! (n!)}", True),  # a value restated after a space still is
        (r"20\text{ square units}", r"2(20\text{ square units})", False),  # a number with its unit is a value ...
        (r"20\text{ square units}", r"20\text{ square units}+1", False),
        (r"20\text{ square units}", "The area is 20 square units.", True),  # ... whose words need not be read
        ("98 values", "There are 98 values of n.", True),
        ("98 values", "There are 97 values of n.", False),
    ],
)
def test_a_product_is_not_a_restatement_and_a_quantity_is_a_value(gold, response, correct):
    assert grade(gold, response).correct is correct


@pytest.mark.parametrize(
    "gold, response, correct",
    [
        ("y > x", "x > y", False),  # lhs - rhs equal up to a factor of -1: the inequality turned round
        ("y > x", "x < y", True),
        (r"3x-6y+9 \le 0", r"-x+2y-3 \le 0", False),
        (r"3x-6y+9 \le 0", r"-x+2y-3 \ge 0", True),
        ("b > a > c", "a > b > c", False),  # a chain compared item by item ...
        ("b > a > c", "c > a > b", False),
        ("b > a > c", "c < a < b", True),  # ... or read the other way round with every operator flipped
        ("C < B < A < D < E", "E > D > A > B > C", True),
        ("C < B < A < D < E", "C < A < B < D < E", False),
        ("SRAC=LRAC", "SRAC>LRAC", False),
        ("SRAC=LRAC", "In the long run, SRAC=LRAC at the optimum.", True),
        ("A > B > C", "A > B > C+1", False),
        ("A > B > C", "The ranking is $A > B > C$ overall.", True),
    ],
)
def test_inequalities_keep_their_direction_and_chains_their_order(gold, response, correct):
    assert grade(gold, response).correct is correct


@pytest.mark.parametrize(
    "response",
    ["Therefore $5$.", "Hence $5$.", "So 5.", "Thus, $x=5$.", "The answer is therefore $5$."],
)
def test_a_short_answer_after_a_connective_word_is_read(response):
    assert grade("5", response).correct is True
    assert grade("6", response).correct is False


@pytest.mark.parametrize(
    "gold, response, correct",
    [
        ("f(0)", "0", False),  # a letter applied to a number is a function's value, not f * 0
        ("I(0)", r"2(I(0))", False),
        (r"I(0) e^{-t/(RC)}", "0", False),
        (r"I(0) e^{-t/(RC)}", r"I(0)e^{-\frac{t}{RC}}", True),
        ("f(-1)", "f(-1)", True),
        ("x(x+1)", "x^2+x", True),  # a letter before a bracket holding more than a number still multiplies
    ],
)
def test_a_letter_applied_to_a_number_is_a_value_of_a_function(gold, response, correct):
    assert grade(gold, response).correct is correct
