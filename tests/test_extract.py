"""Answer extraction: each rule of the policy in `eval.extract`, in the order it applies."""

from __future__ import annotations

import pytest

from eval.extract import extract_answer

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
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_long_and_unbalanced_inputs_are_linear():
    assert extract_answer("\\boxed{" * 30_000) is None  # unclosed boxes, too long to be a bare answer
    assert extract_answer("x" * 200_000 + " The answer is 4.") == "4"
