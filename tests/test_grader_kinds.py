"""Answer kinds graded on golds taken from LIMO's evaluation files (`../shared/data/limo_eval/`, row or
id named in each case): Minerva's units and scientific notation, the Chinese sets' punctuation, 或
alternatives and choice letters, OlympiadBench's lists and intervals; what cannot be decided is counted
as ungradable, never as correct."""

from __future__ import annotations

import pytest

from eval.grading.kinds import grade_sample
from eval.grading.units import split_quantity
from eval.reports.metrics import UNGRADABLE

_PIECEWISE = (
    "$S(x)=\\left\\{\\begin{array}{l}\\frac{e^{-x}}{1-e^{-x}}+(1-x) \\ln (1-x)+x, x \\in(0,1) \\\\ "
    "\\frac{e}{e-1} \\quad, x=1\\end{array}\\right.$"
)
CASES = [
    # (file:row or id, kind, gold, response answer, expected status)
    ("minerva:1", "units", "1.6", "1.6 \\mathrm{~cm}", "correct"),
    ("minerva:1", "units", "1.6", "1.62 \\mathrm{~cm}", "correct"),  # rounds to the gold's stated digit
    ("minerva:1", "units", "1.6", "1.7 \\mathrm{~cm}", "incorrect"),
    ("minerva:2", "units", "4.5e33", "4.5 \\times 10^{33} \\mathrm{erg} \\cdot \\mathrm{s}^{-1}", "correct"),
    ("minerva:2", "units", "4.5e33", "4.5 \\times 10^{34}", "incorrect"),
    ("minerva:5", "units", "0.006", "6 \\times 10^{-3}", "correct"),
    ("minerva:11", "units", "3.83e35", "3.83\\times10^{35} \\mathrm{erg}", "correct"),
    ("minerva:14", "units", "8.7e8", "8.7 \\times 10^{8} \\mathrm{~cm}", "correct"),
    ("minerva:14", "units", "8.7e8", "9.7 \\times 10^{8} \\mathrm{~cm}", "incorrect"),
    ("gaokao:4", "chinese", "必要不充分条件", "必要不充分条件", "correct"),
    ("gaokao:4", "chinese", "必要不充分条件", "充分不必要条件", "unparseable"),  # words: left to a judge
    ("gaokao:12", "chinese", "23 ,57.5", "23, 57.5", "correct"),
    ("gaokao:11", "chinese", "\\frac{1}{2}, -\\frac{1}{2}", "-\\frac{1}{2}, \\frac{1}{2}", "correct"),
    (
        "kaoyan:18",
        "chinese",
        "$\\left(x-\\frac{1}{2}\\right)^{2}+y^{2}=\\frac{1}{4}$ 或 $x^{2}-x+y^{2}=0$．",
        "x^2 - x + y^2 = 0",
        "correct",
    ),
    (
        "kaoyan:18",
        "chinese",
        "$\\left(x-\\frac{1}{2}\\right)^{2}+y^{2}=\\frac{1}{4}$ 或 $x^{2}-x+y^{2}=0$．",
        "x^2 + y^2 = 1",
        "incorrect",
    ),
    ("kaoyan:169", "chinese", "C．", "C", "correct"),
    ("kaoyan:169", "chinese", "C．", "D", "incorrect"),
    ("gradeschool:3", "chinese", "7 \\frac{3}{11}", "\\frac{80}{11}", "correct"),
    ("gradeschool:11", "chinese", "$\\frac{3}{13} > \\frac{9}{40}$", "\\frac{3}{13}>\\frac{9}{40}", "correct"),
    ("gradeschool:11", "chinese", "$\\frac{3}{13} > \\frac{9}{40}$", "\\frac{9}{40}>\\frac{3}{13}", "incorrect"),
    ("gradeschool", "chinese", "360 = 2^3 * 3^2 * 5", "539 = 7^2 * 11", "incorrect"),  # two true identities
    ("olympiadbench:1612", "math", "$(1,8,19), (2,7,13), (4,5,7)$", "(4,5,7), (1,8,19), (2,7,13)", "correct"),
    ("olympiadbench:1612", "math", "$(1,8,19), (2,7,13), (4,5,7)$", "(1,8,19), (2,7,13)", "incorrect"),
    ("olympiadbench", "math", "$69$,$84$", "84, 69", "correct"),
    ("olympiadbench", "math", "$69$,$84$", "69", "incorrect"),
    ("olympiadbench:2243", "math", "(-\\infty,-5)", "x < -5", "correct"),
    ("olympiadbench:2243", "math", "(-\\infty,-5)", "(-\\infty,-5]", "incorrect"),
    ("olympiadbench:2410", "math", "$[\\frac{1}{2}, 8]$", "\\left[0.5, 8\\right]", "correct"),
    (
        "olympiadbench:2298",
        "math",
        "$(-\\sqrt{11},-2)\\cup (\\sqrt{11},9)$",
        "(\\sqrt{11},9)\\cup(-\\sqrt{11},-2)",
        "correct",
    ),
    ("kaoyan:172", "chinese", _PIECEWISE, _PIECEWISE, "correct"),  # \\left\\{ inside \\boxed{} is extracted
    ("olympiadbench:1970", "math", "$(-\\infty, 0) \\cup\\{1\\}$.", "(-\\infty, 0)", "incorrect"),
]


@pytest.mark.parametrize("where, kind, gold, answer, expected", CASES, ids=[f"{c[0]}-{c[4]}" for c in CASES])
def test_answer_kinds_on_real_golds(where, kind, gold, answer, expected):
    verdict = grade_sample(gold, f"So the answer is \\boxed{{{answer}}}.", kind=kind)
    assert verdict.status == expected, (where, verdict)


def test_undecided_is_ungradable_never_correct():
    verdict = grade_sample("必要不充分条件", "\\boxed{既不充分也不必要条件}", kind="chinese")
    assert verdict.status in UNGRADABLE and not verdict.correct


def test_quantities_read_without_evaluating_text():
    assert split_quantity("4.5e33")[:2] == (split_quantity("4.5 \\times 10^{33}") or (0, 0))[:2]
    assert split_quantity("2x") is None and split_quantity("2 + 3 \\mathrm{m}") is None
    assert split_quantity("1" * 500) is None  # size limit before any parsing
    assert split_quantity("__import__('os')") is None
