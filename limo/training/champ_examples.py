"""Training examples built from CHAMP's human solutions: data for tests, the benchmark and trying a recipe.

Curation (`limo.curate`) produces the real ``curate/messages.jsonl``; this gives the same row shape
without running it. Each human chain becomes one single-turn example whose answer ends with the gold
answer in ``\\boxed{}``, as the run-directory contract requires.
"""

from __future__ import annotations

from pathlib import Path

from curation.pool.champ import load_champ_pool
from curation.schema import SFTExample
from eval.records import write_jsonl


def champ_human_examples(limit: int | None = None) -> list[SFTExample]:
    """The first ``limit`` CHAMP problems (file order) as examples with their human solution."""

    pool = load_champ_pool()
    chains = {chain.problem_id: chain for chain in pool.human_chains}
    examples = []
    for problem in pool.problems[:limit]:
        chain = chains[problem.id]
        response = chain.text.strip() + "\n\nThe final answer is $\\boxed{" + problem.answer + "}$."
        examples.append(SFTExample.single_turn(problem.id, problem.problem, response))
    return examples


def write_champ_messages(path: str | Path, limit: int | None = None) -> Path:
    """Write ``champ_human_examples(limit)`` as messages.jsonl at ``path``."""
    write_jsonl(path, champ_human_examples(limit))
    return Path(path)
