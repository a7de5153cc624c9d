"""Validate: reject problems and chains that no later stage should see, each with its reason.

Chains from prompt settings outside ``allowed_settings`` are dropped here (reason
``setting_not_allowed``): for CHAMP only the unaided settings (0-Shot, 5-Shot, No C w/o H) may be
training chains or count toward pass rates, so partial-solution and hint settings (including
"Misleading ...") never reach grading. Human chains have no setting and always pass that check.

A problem longer than ``max_problem_chars`` (a scraped page pasted as a question: 2.5 MB passed before) is
dropped with its chains (``problem_too_long``, its length in the detail), before any stage pays for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from curation.options import StageOptions, ValidateOptions
from curation.runner import RunState, StageContext, alive_rows, options_dict, rows_of, run_parts
from curation.schema import HUMAN, Chain
from eval.options import to_options
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


# ------------------------------------------------------------------------------------------------ shard tasks


def validate_problems(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[problem, reason, characters of its text]`` for every alive problem validation drops."""
    options = to_options(ValidateOptions, item["options"])
    for position, row in alive_rows(item):
        problem = Problem.from_dict(row)
        reason = problem_problem(problem, options)
        if reason:
            yield [position, reason, len(problem.problem)]


def validate_chains(index: int, item: dict[str, Any]) -> Iterator[list[Any]]:
    """``[chain, reason, prompt setting]`` for every alive chain validation drops."""
    options = to_options(ValidateOptions, item["options"])
    for position, row in alive_rows(item):
        chain = Chain.from_dict(row)
        reason = chain_problem(chain, options, {chain.problem_id})  # an alive chain's problem is alive
        if reason:
            yield [position, reason, chain.prompt_setting]


# ------------------------------------------------------------------------------------------------ the stage


def problem_limit(state: RunState, options: StageOptions, context: StageContext) -> None:
    limit = options.ingest.problem_limit
    count = state.begin("problem_limit", limit is not None)
    over: list[int] = np.flatnonzero(state.problem_alive)[limit:].tolist() if limit is not None else []
    state.apply(count, problems=[(p, "problem_limit", {"limit": limit}) for p in over])


def validate(state: RunState, options: StageOptions, context: StageContext) -> None:
    count = state.opened("validate", options.validate.enabled)
    if count is None:
        return
    params = {"options": options_dict(options.validate)}
    problems = run_parts(state, context, "validate-problems", validate_problems, params, table="problems")
    chains = run_parts(state, context, "validate-chains", validate_chains, params)  # before any problem drop
    chain_drops = (
        (c, reason, {"prompt_setting": setting} if setting else {}) for c, reason, setting in rows_of(chains)
    )
    problem_drops = [(p, reason, problem_detail(reason, chars)) for p, reason, chars in rows_of(problems)]
    state.apply(count, chains=chain_drops, problems=problem_drops)
