"""What error-correction training is meant to change, measured on graded samples: how often a model writes a
correction, how often a written correction ends right, and what kind of error its wrong answers hold.

- A **correction** is a phrase by which a response takes a step back (`CORRECTION_PHRASES`): "Wait", "let me
  recheck", "let me redo", "I made a mistake", "that is not right", "let me start over", ... — the phrases LEMMA's
  examples use (the small-model recipe's reflections all open with one; a test holds every shipped recipe's phrases
  to this list) and the usual ones a model writes on its own.
- The **error types** of wrong answers come from the arithmetic step verifier
  (`eval.benchmarks.arithmetic_steps.first_wrong_step`): the first wrong step of each wrong sample and its type in
  LEMMA's taxonomy. Where it cannot decide (a story in another phrasing, an unreadable step, no step wrong) the sample
  counts under ``wrong_unlocated`` by reason, so the located and unlocated add up to ``wrong``.

`correction_report` returns the ``corrections`` entry of a benchmark's ``summary.json`` metrics.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from eval.benchmarks.arithmetic_steps import first_wrong_step

CORRECTION_PHRASES = (
    r"(?:^|[.!?]\s+|\n\s*)wait\b|\bwait(?=\s*[,.!:…])",  # "Wait, ..." or "..., wait." — not "wait for the bus"
    r"\blet me (?:re-?check|double[- ]check|check (?:this|that|it|again)|re-?do|redo|fix|correct|reconsider|"
    r"re-?calculate|start (?:over|again)|look (?:at (?:it|this|that) )?again|try again)",
    r"\bI made (?:a|an) (?:mistake|error)",
    r"\b(?:that|this) (?:step )?(?:is|was)(?: not right| wrong| incorrect| a mistake)",
    r"\bthat does not (?:follow|add up)",
    r"\bon second thought\b",
    r"\boops\b",
)
_CORRECTION = re.compile("|".join(f"(?:{p})" for p in CORRECTION_PHRASES), re.IGNORECASE)


def writes_correction(text: str) -> bool:
    """Whether ``text`` holds a correction phrase (`CORRECTION_PHRASES`)."""
    return _CORRECTION.search(text) is not None


def correction_report(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The correction and error-type counts of one benchmark's graded samples.

    Args:
        rows: Sample rows with ``response``, ``correct`` and ``problem`` (rows without a response count as
            writing no correction; a wrong row without a problem text is unlocated, ``no_problem_text``).

    Returns:
        ``samples``; ``with_correction`` and ``correction_rate`` (of all samples); ``corrected_right`` and
        ``corrected_right_rate`` (of the samples with a correction, None when there are none); ``wrong``;
        ``error_types`` (``{type: count}`` over the wrong samples whose first wrong step was located);
        ``wrong_located``; ``wrong_unlocated`` (``{reason: count}``).
    """
    corrected = [r for r in rows if writes_correction(str(r.get("response") or ""))]
    right = sum(bool(r.get("correct")) for r in corrected)
    wrong = [r for r in rows if not r.get("correct")]
    types: Counter[str] = Counter()
    unlocated: Counter[str] = Counter()
    for row in wrong:
        if not row.get("problem"):
            unlocated["no_problem_text"] += 1
            continue
        check = first_wrong_step(str(row["problem"]), str(row.get("response") or ""))
        if check.error_type is not None:
            types[check.error_type] += 1
        else:
            unlocated[str(check.reason_code)] += 1
    return {
        "samples": len(rows),
        "with_correction": len(corrected),
        "correction_rate": len(corrected) / len(rows) if rows else 0.0,
        "corrected_right": right,
        "corrected_right_rate": right / len(corrected) if corrected else None,
        "wrong": len(wrong),
        "error_types": dict(types.most_common()),
        "wrong_located": sum(types.values()),
        "wrong_unlocated": dict(unlocated.most_common()),
    }
