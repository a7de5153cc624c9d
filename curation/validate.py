"""Validate: reject problems and chains that no later stage should see, each with its reason.

Chains from prompt settings outside ``allowed_settings`` are dropped here (reason
``setting_not_allowed``): for CHAMP only the unaided settings (0-Shot, 5-Shot, No C w/o H) may be
training chains or count toward pass rates, so partial-solution and hint settings (including
"Misleading ...") never reach grading. Human chains have no setting and always pass that check.

A problem longer than ``max_problem_chars`` (a scraped page pasted as a question: 2.5 MB passed before) is
dropped with its chains (``problem_too_long``, its length in the detail), before any stage pays for it.
"""

from __future__ import annotations

from typing import Any

from curation.funnel import CurationState
from curation.options import ValidateOptions
from curation.schema import HUMAN, Chain
from eval.problem import Problem


def problem_detail(reason: str, chars: int) -> dict[str, Any]:
    """A dropped problem's detail: its length when it was too long."""
    return {"chars": chars} if reason == "problem_too_long" else {}


def problem_problem(problem: Problem, options: ValidateOptions) -> str | None:
    """Why ``problem`` is unusable, or None."""
    if len(problem.problem.strip()) < options.min_problem_chars:
        return "problem_too_short"
    if len(problem.problem) > options.max_problem_chars:
        return "problem_too_long"
    if not problem.answer or not problem.answer.strip():
        return "no_gold_answer"
    return None


def chain_problem(chain: Chain, options: ValidateOptions, problem_ids: set[str]) -> str | None:
    """Why ``chain`` is unusable, or None."""
    if chain.problem_id not in problem_ids:
        return "unknown_problem"
    if options.allowed_settings and chain.generator != HUMAN and chain.prompt_setting not in options.allowed_settings:
        return "setting_not_allowed"
    if not chain.text.strip():
        return "empty_chain"
    if len(chain.text) > options.max_chain_chars:
        return "chain_too_long"
    return None


def run_validate(state: CurationState, options: ValidateOptions) -> None:
    """Drop invalid problems (with their chains) and invalid chains."""
    count = state.begin("validate", options.enabled)
    if not options.enabled:
        state.apply(count)
        return
    problems: dict[str, tuple[str, dict[str, Any]]] = {}
    for problem in state.problems.values():
        reason = problem_problem(problem, options)
        if reason:
            problems[problem.id] = (reason, problem_detail(reason, len(problem.problem)))
    ids = set(state.problems)
    chains: dict[str, tuple[str, dict[str, Any]]] = {}
    for chain in state.chains.values():
        reason = chain_problem(chain, options, ids)
        if reason:
            chains[chain.id] = (reason, {"prompt_setting": chain.prompt_setting} if chain.prompt_setting else {})
    state.apply(count, chains=chains, problems=problems)
