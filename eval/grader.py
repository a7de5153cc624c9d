"""The grader's public names (docs/architecture.md, "The grader contract"): ``from eval.grader import grade``.

The grader lives in `eval.grading.grader`, its process pool in `eval.grading.pool`; this module only hands their
names on, so that users' imports do not follow the package's layout.
"""

from eval.grading.grader import (
    DEADLINE_SLACK_S,
    MAX_GOLD_CHARS,
    MAX_PROBLEM_CHARS,
    MAX_RESPONSE_CHARS,
    STATUSES,
    Verdict,
    grade,
    grade_answer,
    grade_many,
    verify,
)
from eval.grading.options import DEFAULT_OPTIONS, GradeOptions
from eval.grading.pool import GraderPool

__all__ = [
    "DEADLINE_SLACK_S",
    "DEFAULT_OPTIONS",
    "MAX_GOLD_CHARS",
    "MAX_PROBLEM_CHARS",
    "MAX_RESPONSE_CHARS",
    "STATUSES",
    "GradeOptions",
    "GraderPool",
    "Verdict",
    "grade",
    "grade_answer",
    "grade_many",
    "verify",
]
