"""Grading by a benchmark's answer kind: the symbolic grader first, then what the kind adds.

`grade_sample` is what the evaluation loop calls for each response. Every kind starts with
`eval.grading.grader.grade`; when that is not ``correct``:
- ``choice`` (and any presented multiple-choice problem): the letter named by the answer, or the one
  option whose text the answer gives, against the gold letter where the right text now stands
  (`eval.benchmarks.choices`); an answer equal in value to the right option's text also counts;
- ``units``: a number with a unit or in scientific notation that rounds to the gold at its stated
  precision (`eval.grading.units`);
- ``chinese``: full-width punctuation and 或 ("or") alternatives (`eval.grading.chinese`).
What the symbolic grader cannot decide stays ``unparseable`` or ``timeout`` — and a gold in Chinese words
that did not match exactly becomes ``unparseable`` ("free-text gold") instead of ``incorrect`` — so the
summary can count it as ungradable (`eval.reports.metrics.UNGRADABLE`) and a model judge, where one is configured,
can take it.
"""

from __future__ import annotations

import re

from eval.answers.extract import extract_answer
from eval.benchmarks.choices import answered_letters
from eval.grading.chinese import alternatives, has_cjk, is_free_text, normalize_cjk
from eval.grading.grader import Verdict, grade, grade_answer
from eval.grading.units import same_quantity


def grade_sample(
    gold: str,
    response: str,
    *,
    kind: str = "math",
    problem: str | None = None,
    options: tuple[str, ...] = (),
    timeout_s: float = 2.0,
) -> Verdict:
    """Grade one response for a benchmark of answer kind ``kind``; never raises.

    Args:
        gold: The gold (a letter, or letters, for a multiple-choice problem as presented).
        response: The model's full response.
        kind: ``math``, ``choice``, ``units`` or ``chinese`` (`eval.benchmarks.loader.ANSWER_KINDS`).
        problem: The question as presented (lets the grader read yes/no statements).
        options: Option texts in presented order when the problem was presented as multiple choice.
        timeout_s: Hard limit for the slow symbolic path.
    """
    try:
        if options:
            return _grade_choice(gold, response, options, problem, timeout_s)
        verdict = grade(gold, response, timeout_s=timeout_s, problem=problem)
        if verdict.correct or verdict.extracted is None:
            return verdict
        if _same_text(gold, verdict.extracted):  # a worded or unparseable gold given back word for word
            return Verdict("correct", True, verdict.extracted, "the gold's own text")
        second = _second_opinion(gold, verdict.extracted, kind, timeout_s)
        return second or _undecided_free_text(gold, verdict)
    except Exception as exc:  # the grader's contract: nothing escapes
        return Verdict("unparseable", False, None, f"internal error: {type(exc).__name__}: {str(exc)[:200]}")


def _grade_choice(
    gold: str, response: str, options: tuple[str, ...], problem: str | None, timeout_s: float
) -> Verdict:
    extracted = extract_answer(response, problem=problem)
    if extracted is None:
        return Verdict("no_answer", False, None, "no answer found in the response")
    said = answered_letters(extracted, options)
    if said is not None:
        status = "correct" if said == gold else "incorrect"
        return Verdict(status, said == gold, extracted, f"choice {said} against {gold} (options shuffled)")
    if len(gold) == 1:
        right = options[ord(gold) - ord("A")]
        if grade_answer(right, extracted, timeout_s=timeout_s).correct:
            return Verdict("correct", True, extracted, "answer equals the right option's text")
    return Verdict("incorrect", False, extracted, "names no option, nor the right option's value")


def _same_text(gold: str, extracted: str) -> bool:
    return normalize_cjk(re.sub(r"\s|\$", "", gold)) == normalize_cjk(re.sub(r"\s|\$", "", extracted))


def _second_opinion(gold: str, extracted: str, kind: str, timeout_s: float) -> Verdict | None:
    if kind == "units":
        outcome = same_quantity(gold, extracted)
        if outcome is not None:
            return Verdict("correct" if outcome[0] else "incorrect", outcome[0], extracted, outcome[1])
    if kind in ("chinese", "choice") or has_cjk(gold + extracted):
        pred = normalize_cjk(extracted)
        forms = alternatives(gold)
        verdicts = [grade_answer(form, pred, timeout_s=timeout_s) for form in forms]
        for verdict in verdicts:
            if verdict.correct:
                return Verdict("correct", True, extracted, "Chinese form: " + verdict.reason)
        if not any(is_free_text(f) for f in forms) and all(v.status == "incorrect" for v in verdicts):
            return Verdict("incorrect", False, extracted, "Chinese form: " + verdicts[0].reason)
    return None


def _undecided_free_text(gold: str, verdict: Verdict) -> Verdict:
    """A gold in Chinese words that did not match is beyond the symbolic grader: undecided, not incorrect."""
    if verdict.status == "incorrect" and is_free_text(gold):
        return Verdict("unparseable", False, verdict.extracted, "free-text gold: the symbolic grader cannot decide")
    return verdict
