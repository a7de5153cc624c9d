"""Answer extraction: each rule of the policy in `eval.answers.extract`, in the order it applies."""

from __future__ import annotations

import pytest

from eval.answers.extract import conditioned_value, extract_answer

CASES = [
    ("So the total is $\\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}"),
    ("nested \\boxed{\\frac{\\sqrt{2}}{2}} here", "\\frac{\\sqrt{2}}{2}"),
    ("first \\boxed{1}, much later text. Then finally \\boxed{2}", "2"),
    ("The roots are \\boxed{-2} and \\boxed{1}.", "-2, 1"),
    ("the answer is $\\boxed 5$", "5"),
    ("\\fbox{7}", "7"),
    ("Final Answer: The final answer is $25.5$. I hope it is correct.", "25.5"),
    ("Thus the final answer is 12.", "12"),
    ("We get 6 * 2 = 12.\n\n**Answer:** $12$", "12"),
    ("Work.\n\n# Answer\n\n4\\sqrt{3}", "4\\sqrt{3}"),
    ("Answer: (1, 2)", "(1, 2)"),
    ("The answer is $x = 3$.", "x = 3"),
    ("Answer \\[ 9 \\]", "\\[ 9 \\]"),
    ("2^(n-1)", "2^(n-1)"),
    ("C(10, 5), or equivalently 252", "C(10, 5), or equivalently 252"),
    ("Counting all cases carefully, the number of seatings is 771.", "771"),
    ("There are 29 valid strings of length 6 that have adjacent digits differing by less than or equal to 1.", "29"),
    ("The limit of the sequence exists and is equal to (a + b)/2.", "(a + b)/2"),
    ("After all of that, we conclude that $x < 5$ is the solution.", "x < 5"),
    ("no it is not 10, it is 1,000.99 in total, trust me", "1,000.99"),
    ("Nothing useful here at all.", None),
    ("", None),
    ("<think>scratch</think> The final answer is $\\boxed{36}$<|im_end|>", "36"),
    # Summary sentences seen in CHAMP's model turns.
    ("The values satisfying both conditions are a = 5 and b = -2.", "a = 5 and b = -2"),
    ("The least value of \\(a/b + b/a\\) for positive \\(a\\), \\(b\\) is 2, achieved when \\(a = b\\).", "2"),
    ("The minimum is 0, and it occurs when x = y.", "0"),
    ("No, such a function cannot exist because f(0) would be both 1 and 2.", "No"),
    ("There are 5151 ordered triples (a, b, c) of non-negative integers with a+b+c=100.", "5151"),
    ("The limit of b_n = 1 + ... + 1/n does not exist because b_n exceeds 2 for large n.", "1 + ... + 1/n"),
    # Bare answers that only look like prose.
    ("-(ab + bc + ca)", "-(ab + bc + ca)"),
    ("\\text{Red, Green, Blue}", "\\text{Red, Green, Blue}"),
    ("So the answer is $\n\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}\n$.", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    # Round 2: turn markers, a later final answer, label prefixes, joined boxes, house styles in prose.
    ("The final answer is $12$.<|im_end|>\n<|im_start|>user\nIs it 13?", "12"),
    ("<|im_start|>assistant\nWe get \\boxed{5}.<|eot_id|>ignored 6", "5"),
    ("Case one: $\\boxed{4}$.\n\nCombining the cases, the final answer is $9$.", "9"),
    ("$\\boxed{64}$ is the answer. Before arriving at the final answer is a common slip.", "64"),
    ("The matrix: $\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}$", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("The roots are \\(\\boxed{-3}\\) and \\(\\boxed{4}\\).", "-3, 4"),
    ("So the car costs $12,300 after the discount.", "12,300"),
    ("Final Answer: The farmer keeps 18 sheep.", "18"),
    ("At most two of the three inequalities can hold at once.", "2"),
    ("The sum of the listed coefficients is zero.", "0"),
    ("The values of \\(a\\) and \\(b\\) are \\(a = 3\\) and \\(b = -4\\).", "a = 3, b = -4"),
    ("The factorization is (x + y)(x^2 - xy + y^2).", "(x + y)(x^2 - xy + y^2)"),
    ("Therefore, there are 12 sequences that meet the conditions. I hope it is correct.", "12"),
]

PROBLEM_CASES = [
    # "There are no ..." is a count of zero only when a count was asked.
    ("There are no such pairs below 100.", "How many pairs (a, b) below 100 work?", "0"),
    ("There are no positive integers n with that property.", "What are possible values of n mod 40?", None),
    ("The polynomial has no roots with multiplicity greater than 1.", "How many roots are repeated?", "0"),
    ("There are 144 subsets that have no two successive numbers.", "How many subsets qualify?", "144"),
    # A summary's answer is the number the problem does not mention.
    ("With the 6 points on the circle we can form 20 triangles.", "How many triangles do 6 points give?", "20"),
    # Round 4 (issue 33): forms of CHAMP summaries the grader missed.
    ("It can be factorized as (a+b)(a-b).", "Factorize a^2-b^2.", "(a+b)(a-b)"),
    ("You need at least 12 questions to find the product.", "How many questions do you need at least?", "12"),
    ("A minimum of 7 moves is required.", "How many moves are needed at least?", "7"),
    ("The possible values are 0, meaning n is a multiple of 9.", "What are possible values of n mod 9?", "0"),
    ("The survivor is the one who was originally numbered 73.", "What is the number of the survivor?", "73"),
    ("The count is n factorial, or n!.", "How many orders are there?", "n!"),
    ("$a^2+b^2=7$, since $(a+b)^2-2ab=7$.", "Find a^2+b^2.", "7"),
    ("It is divisible if and only if $k=-3$.", "For what value(s) of k is it divisible?", "k = -3"),
    ("The graph does not have any roots with multiplicity above 1.", "How many roots are repeated?", "0"),
    (
        "The smallest value is the harmonic sum of the first n terms, H_n.",
        "What is the smallest value?",
        "\\sum_{k=1}^{n} \\frac{1}{k}",
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize(("text", "problem", "expected"), PROBLEM_CASES)
def test_extract_answer_with_the_problem(text, problem, expected):
    assert extract_answer(text, problem=problem) == expected


def test_a_condition_on_the_asked_variable_is_its_value_only_when_it_names_one():
    asked = "For what value(s) of k is it divisible?"
    assert conditioned_value("It is divisible if and only if $k=-3$.", asked) == "k = -3"
    assert conditioned_value("It is divisible if and only if $k=-3$ or $k=3$.", asked) is None
    assert conditioned_value("It is divisible if and only if $m=-3$.", asked) is None
    assert conditioned_value("It is divisible if and only if $k=-3$.", "Is it divisible?") is None


def test_peer_suite_forms():
    """Round 4: forms from other checkers' test suites."""
    assert extract_answer("the number is not 10 which is 1,000.99€") == "1,000.99"
    assert extract_answer("Total : 2,74 $") == "2,74"
    assert extract_answer("It has no real roots, but two complex double roots.", problem="How many are double?") != "0"
    assert extract_answer("lambda: 1") != "1"  # a label and a number is an amount only with a currency sign
    assert extract_answer("Answer $ \n 9 \n $") != "9"  # inline math does not span lines ...
    assert extract_answer("Answer $$ \n 9 \n $$") == "9"  # ... display math does
    matrix = extract_answer("So the answer is $\n\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}\n$.")
    assert matrix == "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"  # an environment spans lines by nature
    assert extract_answer("\\boxed{1} papers and \\boxed{2} bins") == "1, 2"


def test_eaten_escapes_are_repaired():
    assert extract_answer("\x0crac{1}{2}") == "\\frac{1}{2}"
    assert extract_answer("3\times 4") == "3\\times 4"


def test_long_and_unbalanced_inputs_are_linear():
    assert extract_answer("\\boxed{" * 30_000) is None  # unclosed boxes, too long to be a bare answer
    assert extract_answer("x" * 200_000 + " The answer is 4.") == "4"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Working.\n\n**Final Answer**\n$$\\sqrt{2}+\\sqrt{3}$$", "\\sqrt{2}+\\sqrt{3}"),  # a bold heading, a display
        ("Working.\n\n**Final Answer**\n\\[\\sqrt{2}+\\sqrt{3}\\]", "\\[\\sqrt{2}+\\sqrt{3}\\]"),
        ("Working.\n\n**Final Answer**: $\\sqrt{2}+\\sqrt{3}$", "\\sqrt{2}+\\sqrt{3}"),
        ("Working.\n\n**Final Answer:** $\\sqrt{2}+\\sqrt{3}$", "\\sqrt{2}+\\sqrt{3}"),
    ],
)
def test_a_bold_final_answer_heading_marks_the_answer(text, expected):
    assert extract_answer(text) == expected


def _math_solutions(shared_data) -> list[str]:
    import json

    rows = (json.loads(line) for line in (shared_data / "math_train.jsonl").read_text().splitlines())
    return [row["solution"] for row in rows if row["solution"]]  # 3,681 of the 7,500 rows carry one


@pytest.mark.shared_data
def test_braces_pair_as_a_scan_of_every_character_would_pair_them(shared_data):
    import random

    from bench.grader.extract_speed import braces_char_by_char  # the definition: every character in turn
    from eval.answers.extract import _matching_braces

    rng = random.Random(0)
    planted = ["".join(rng.choice("\\\\{}a \n") for _ in range(rng.randint(0, 60))) for _ in range(20_000)]
    runs = ["\\" * n + "{x}" + "\\" * m + "}" for n in range(6) for m in range(4)]
    texts = [*_math_solutions(shared_data), *planted, *runs]
    assert sum("\\\\{" in t for t in texts) > 100 and sum("\\{" in t for t in texts) > 1000  # both kinds of brace
    assert [_matching_braces(t) for t in texts] == [braces_char_by_char(t) for t in texts]


@pytest.mark.shared_data
def test_a_text_without_the_word_answer_has_no_marker_and_a_long_s_still_spells_it(shared_data):
    from eval.answers.extract import _MARKER, _from_marker

    solutions = _math_solutions(shared_data)
    without = [t for t in solutions if "answer" not in t.casefold()]
    assert len(without) > len(solutions) // 2 and not any(_MARKER.search(t) for t in without)
    spelt = _from_marker("So the answer is 12.")
    assert spelt and _from_marker("So the anſwer is 12.") == spelt  # the regex reads the long s as an s
    assert _from_marker("Final ANSWER: 7") == ("7", 0, True)
