"""The grader's public names (docs/architecture.md, "The grader contract") import from where users type them.

`eval.grader` and `eval.extract` only hand on names whose code lives in `eval.grading` and `eval.answers`: each name
must be the implementation itself, never a second copy, and must grade as the contract says.
"""

from __future__ import annotations

import eval.extract as extract_face
import eval.grader as grader_face
from eval.answers import extract
from eval.grading import grader, options, pool


def test_every_public_name_is_the_implementation():
    homes = (grader, options, pool)
    for name in grader_face.__all__:
        assert any(getattr(home, name, None) is getattr(grader_face, name) for home in homes), name
    assert extract_face.extract_answer is extract.extract_answer


def test_the_public_names_grade():
    from eval.extract import extract_answer
    from eval.grader import STATUSES, Verdict, grade, grade_many, verify

    assert extract_answer("so the answer is \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert verify("1/2", "0.5") and not verify("1/2", "0.6")
    verdict = grade("1/2", "Thus \\boxed{0.5}")
    assert isinstance(verdict, Verdict) and verdict.correct and verdict.status in STATUSES
    assert [v.correct for v in grade_many([("2", "\\boxed{2}"), ("2", "\\boxed{3}")], workers=1, progress=False)] == [
        True,
        False,
    ]
