"""The answer reader's public name (docs/architecture.md, "The grader contract"): ``from eval.extract import
extract_answer``.

The reader lives in `eval.answers.extract`; this module only hands its name on.
"""

from eval.answers.extract import extract_answer

__all__ = ["extract_answer"]
