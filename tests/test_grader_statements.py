"""The rules that read answers as text: statements against the question, sets of reals, text-level forms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.grading.forms import choice_letters, decimal_commas, percent_as_fraction, within_stated_rounding
from eval.grading.grader import grade
from eval.grading.plain_parse import parse_plain
from eval.grading.realsets import as_real_set, describes_inequality
from eval.grading.statements import (
    denies_existence,
    gold_kind,
    judge,
    main_clause,
    question_of,
    states_words,
    yes_no_of,
)

QUESTION = "Let B=(2/3)*(4/5)*...*(98/99). Is B greater than 1/20?"


@pytest.mark.parametrize(
    ("problem", "question"),
    [
        (QUESTION, "Is B greater than 1/20"),
        ("Does the limit exist for a_n = 1/n, and if so, find it.", "Does the limit exist for a_n = 1/n"),
        ("For integers a, b, if a+b is even, is a-b always even?", "is a-b always even"),
        ("Could x_1 = 2 (i.e., not 0) stay non-zero? If so, find the period.", "Could x_1 = 2 stay non-zero"),
        ("Find all integer solutions to x^2 = y^3 + 7.", None),
    ],
)
def test_question_of(problem, question):
    assert question_of(problem) == question


@pytest.mark.parametrize(
    ("response", "said"),
    [
        ("Yes, it is.", "yes"),
        ("The product B is greater than 1/20.", "yes"),
        ("The product B is less than 1/20.", "no"),  # an antonym of the question's word
        ("B is not greater than 1/20.", "no"),
        ("B is not less than 1/20.", "yes"),  # two flips
        ("B is greater than 1/20 because each factor is not small.", "yes"),  # the reason's negation is ignored
        ("We cannot determine whether B is greater than 1/20 without more work.", None),  # hedged
        ("The weather is fine.", None),  # does not restate the question
    ],
)
def test_yes_no_of_reads_polarity_against_the_question(response, said):
    assert yes_no_of(response, QUESTION) == said


def test_yes_no_of_compares_relations_written_in_both():
    problem = "The sequence is defined by x_1=2. Must x_n≠0 for all n in the sequence?"
    assert yes_no_of("The sequence does not have x_n=0 for any n in the sequence.", problem) == "yes"
    assert yes_no_of("The sequence is such that $x_n \\neq 0$ for all $n$ in the sequence.", problem) == "yes"
    assert yes_no_of("The sequence has x_n=0 for some n in the sequence.", problem) == "no"


def test_yes_no_needs_the_problem_unless_the_response_says_it():
    assert yes_no_of("The product B is greater than 1/20.", None) is None
    assert yes_no_of("No, B is smaller.", None) == "no"


def test_answering_the_if_so_part_means_yes():
    problem = "Could x_p=x_q for any p≠q, and if so, find the smallest possible value of p+q."
    assert yes_no_of("The smallest possible value of p+q is 12.", problem) == "yes"


@pytest.mark.parametrize(
    ("response", "subject", "denied"),
    [
        ("There are no integer solutions to the equation.", {"solution"}, True),
        ("There does not exist a strictly increasing sequence with that property.", {"sequence"}, True),
        ("The sequence does not have a finite limit.", {"limit"}, True),
        ("The sequence diverges to infinity.", {"limit"}, True),
        ("There are no solutions other than x = 3.", {"solution"}, False),  # singles one out
        ("The only solutions are x = 1 and x = 2.", {"solution"}, False),
        ("There are no primes in the list.", {"sequence"}, False),  # denies something else
    ],
)
def test_denies_existence(response, subject, denied):
    assert denies_existence(response, subject) is denied


@pytest.mark.parametrize(
    ("gold", "response", "stated"),
    [
        ("Monotonically increasing", "The ratio is monotonically increasing.", True),
        ("Monotonically increasing", "The ratio is monotonically decreasing.", False),
        ("Monotonically increasing", "It is neither monotonically increasing nor decreasing.", False),
        ("At least 1 number", "At least one of the three numbers is divisible by 5.", True),
        ("At least 1 number", "At least two of the three numbers are divisible by 5.", False),
        ("Always greater than 20", "The maximum is always greater than 20.", True),
        ("x(n)<y(n-1) for all n≥3", "For all n ≥ 3, x(n) is less than y(n-1).", True),
        ("x(n)<y(n-1) for all n≥3", "x(n) < y(n-1) for some n ≥ 3 and not for all.", False),
    ],
)
def test_states_words(gold, response, stated):
    assert states_words(gold, response) is stated


@pytest.mark.parametrize(
    ("gold", "kind"),
    [
        ("Yes", "yesno"),
        ("No", "yesno"),
        ("Yes, and the sequence is 1/8, 1/64, ...", "yesno"),
        ("No integer solutions", "none"),
        ("The sequence does not exist", "none"),
        ("0 (i.e., no such values)", "none"),
        ("Monotonically increasing", "words"),
        ("2^(n-1)", "value"),
        ("__import__('os').system('echo hi')", "value"),  # code is never a worded gold
    ],
)
def test_gold_kind(gold, kind):
    assert gold_kind(gold) == kind


def test_judge_refuses_long_responses_and_yes_golds_need_their_rest():
    long = "The product B is greater than 1/20. " * 30
    assert judge("Yes", long, QUESTION) is None
    problem = "Is it possible to pick a geometric sequence with sum 1/7, and if so, what is the sequence?"
    assert judge("Yes, and the sequence is 1/8, 1/64, 1/512", "Yes, the sequence is 1/2, 1/4, 1/8.", problem) == (
        False,
        "the sentence answers yes but not the rest of the gold",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-3 <= t <= 5", ("t", [(-3, 5, True, True)])),
        ("t = [-3, 5)", ("t", [(-3, 5, True, False)])),
        ("x > 2", ("x", [(2, "oo", False, False)])),
        ("-x < -2", ("x", [(2, "oo", False, False)])),
        ("3x - 6 >= 0", ("x", [(2, "oo", True, False)])),
        ("2 <= |w| <= 3", ("w", [(-3, -2, True, True), (2, 3, True, True)])),
        ("|x| < 4", ("x", [(-4, 4, False, False)])),
        ("[1, 2) ∪ (3, oo)", (None, [(1, 2, True, False), (3, "oo", False, False)])),
    ],
)
def test_real_sets(text, expected):
    value = parse_plain(text)
    name, spans = as_real_set(value, pairs_are_open=True)
    got = [(s.lo, s.hi, s.lo_closed, s.hi_closed) for s in spans]
    want = [(lo, hi, lc, hc) for lo, hi, lc, hc in expected[1]]
    assert name == expected[0]
    assert [(str(a), str(b), c, d) for a, b, c, d in got] == [(str(a), str(b), c, d) for a, b, c, d in want]


def test_pairs_are_intervals_only_against_inequalities():
    assert as_real_set(parse_plain("(1, 3)")) is None
    assert as_real_set(parse_plain("(1, 3)"), pairs_are_open=True) is not None
    assert describes_inequality(parse_plain("1 < x < 3")) and not describes_inequality(parse_plain("(1, 3)"))


def test_text_level_forms():
    assert choice_letters("\\text{(D)}", "\\text{(D) a non-horizontal line}") == ("D", "D")
    assert choice_letters("C", "C. x = 42") == ("C", "C")
    assert choice_letters("C", "C(10, 5)") is None  # a function, not a choice
    assert decimal_commas("2.74", "2,74") == ("2.74", "2.74")
    assert decimal_commas("2, 74", "2,74") == ("2, 74", "2,74")  # a list stays a list
    assert percent_as_fraction("35\\%") == "(35)/100" and percent_as_fraction("35") is None
    assert within_stated_rounding("5/14, or approximately 35.7%", "35.71\\%")
    assert not within_stated_rounding("5/14, or approximately 35.7%", "35.8%")
    assert not within_stated_rounding("5/14", "0.357")


# -- round 4 (issue 33) ------------------------------------------------------------------------------------------
_ASSETS = Path(__file__).parent / "assets"
R4 = [json.loads(line) for line in (_ASSETS / "grader_cases_r4.jsonl").read_text("utf-8").splitlines() if line]
PEER_STYLE = [
    json.loads(line) for line in (_ASSETS / "grader_cases_peer_style.jsonl").read_text("utf-8").splitlines() if line
]


@pytest.mark.parametrize("row", R4, ids=[f"{i}-{r['category']}" for i, r in enumerate(R4)])
def test_round_4_cases(row):
    """Each round-4 mis-grade, written as a case, and the near misses that guard its fix."""
    assert row["source"] and row["part"] == "tune"
    verdict = grade(row["gold"], row["candidate"], problem=row.get("problem"))
    assert verdict.correct is row["label"], (row["candidate"], verdict)


def test_peer_style_held_out_rows_no_false_positive():
    """Peer-style rows written after round 4's rules changed and graded once: no wrong answer accepted, and at
    least the accuracy measured then (docs/grader.md)."""
    assert len(PEER_STYLE) >= 60 and all(r["part"] == "heldout" for r in PEER_STYLE)
    verdicts = [grade(r["gold"], r["candidate"], problem=r.get("problem")) for r in PEER_STYLE]
    false_positives = [r for r, v in zip(PEER_STYLE, verdicts, strict=True) if v.correct and not r["label"]]
    right = sum(v.correct is r["label"] for r, v in zip(PEER_STYLE, verdicts, strict=True))
    assert false_positives == [] and right / len(PEER_STYLE) >= PEER_STYLE_FLOOR, (right, false_positives)


PEER_STYLE_FLOOR = 0.98  # measured once: 65/66 (the miss, a repeating decimal, was fixed after)


@pytest.mark.parametrize(
    ("response", "said"),
    [
        # a denial and its consequence each say no: read apart, they must agree
        ("The sequence cannot repeat, so there are no p ≠ q with y_p = y_q, and thus no smallest p + q.", "no"),
        ("There are no p ≠ q with y_p = y_q, so the smallest possible value of p + q does not exist.", "no"),
        ("The sequence repeats, so there are p ≠ q with y_p = y_q, and the smallest p + q is 6.", "yes"),
    ],
)
def test_claim_and_consequence_are_read_apart(response, said):
    problem = "Could y_p=y_q for some p≠q, and if so, find the smallest possible value of p+q."
    assert yes_no_of(response, problem) == said


def test_a_concession_is_not_the_claim_and_not_knowing_is_a_hedge():
    problem = "Can the digit sum of a perfect square be 1978?"
    assert (
        main_clause("While it is possible in theory, no square has digit sum 1978.") == "no square has digit sum 1978."
    )
    assert (
        yes_no_of("While it is theoretically possible, it is not known whether such a square exists.", problem) is None
    )


def test_peer_suites_are_read_as_literals_never_run(tmp_path, monkeypatch):
    """`bench/grader_sets.peer_set` reads (gold, prediction, expected) cases out of other checkers' test files
    with `ast`: parametrized pytest cases, NeMo-Skills' pairs (both ways, labelled by the test's name) and
    unittest assertions; code in the files never runs."""
    from bench.grader.grader_sets import peer_set

    suite = tmp_path / "math-verify" / "tests"
    suite.mkdir(parents=True)
    (suite / "test_all.py").write_text(
        "import os\nos.system('touch SHOULD_NOT_EXIST')\n"
        "@pytest.mark.parametrize('gold,pred,expected', [('1', '1.0', 1), ('2', '3', 0), (f'{x}', '4', 1)])\n"
        "def test_numbers(gold, pred, expected):\n"
        "    assert compare_strings(gold, pred, match_types=['expr']) == expected\n"
    )
    nemo = tmp_path / "nemo-skills" / "tests"
    nemo.mkdir(parents=True)
    (nemo / "test_math_equal.py").write_text(
        "@pytest.mark.parametrize('output_pair', [('1/2', 0.5)])\ndef test_correct_examples(output_pair): ...\n"
        "@pytest.mark.parametrize('output_pair', [('x', 'y')])\ndef test_incorrect_examples(output_pair): ...\n"
    )
    mario = tmp_path / "math_evaluation" / "math_evaluation" / "tests"
    mario.mkdir(parents=True)
    (mario / "test_is_equiv.py").write_text(
        "class T:\n    def test_a(self):\n        test_in = '10'\n        test_out = '\\\\$10'\n"
        "        self.assertTrue(_test_is_equiv(test_in, test_out))\n"
        "        for test_in, test_out in [('10m', '10')]: pass\n"
        "        pairs = [('10m', '10')]\n        for test_in, test_out in pairs:\n"
        "            self.assertFalse(_test_is_not_equiv(test_in, test_out))\n"
    )
    monkeypatch.setenv("LIMO_PEER_SUITES", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    rows = peer_set()
    got = {(r["provenance"]["suite"], r["gold"], r["candidate"], r["label"]) for r in rows}
    assert got == {
        ("math-verify", "1", "1.0", True),
        ("math-verify", "2", "3", False),
        ("nemo-skills", "1/2", "0.5", True),
        ("nemo-skills", "0.5", "1/2", True),
        ("nemo-skills", "x", "y", False),
        ("nemo-skills", "y", "x", False),
        ("math_evaluation", "10", "\\$10", True),
        ("math_evaluation", "10m", "10", False),
    }
    assert rows[0]["provenance"]["options"] == {"match_types": ["expr"]}
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists()
