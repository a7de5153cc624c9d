"""Fresh rollouts: k samples per problem from a generator, cached and resumable (pass rates, LEMMA's wrong chains).

Each (problem, sample index) is one `GenerationRequest` with id ``<problem_id>#<i>`` and its own seed
(`row_seed(seed, problem_id, i)`), so a response does not depend on batch composition. Replies go through
the one generation cache (`eval.generation.CachedGenerator`), whose file name carries a hash of everything
that determines them: backend, model, sampling, prompt, system turn, k and seed. A rerun skips every
finished row and generates only the rest; changing any of those settings starts a new file instead of
mixing samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curation.funnel import Attempt
from curation.options import RolloutOptions
from eval.backends.base import Backend, GenerationRequest, row_seed
from eval.generation import CachedGenerator, cached_generator
from eval.grader import grade_many
from eval.problem import Problem


def rollout_generator(options: RolloutOptions, cache_dir: str | Path, seed: int) -> CachedGenerator:
    """The rollout generator behind its cache file (keyed by the prompts, k and the seed too)."""
    context = {
        "prompt_template": options.prompt_template,
        "system_prompt": options.system_prompt,
        "k": options.k,
        "seed": seed,
    }
    return cached_generator(options.generator, cache_dir, options.generator_name, context)


def build_requests(problems: Sequence[Problem], options: RolloutOptions, seed: int) -> list[GenerationRequest]:
    """One request per (problem, sample index), in problem order then index order."""
    sampling = options.generator.sampling()
    requests = []
    for problem in problems:
        messages: list[dict[str, str]] = []
        if options.system_prompt:
            messages.append({"role": "system", "content": options.system_prompt})
        messages.append({"role": "user", "content": options.prompt_template.format(problem=problem.problem)})
        for index in range(options.k):
            requests.append(
                GenerationRequest(
                    id=f"{problem.id}#{index}",
                    messages=tuple(messages),
                    sampling=sampling,
                    seed=row_seed(seed, problem.id, index),
                    meta={"problem_id": problem.id, "sample_index": index},
                )
            )
    return requests


def run_rollouts(
    problems: Sequence[Problem], generator: Backend, options: RolloutOptions, *, seed: int
) -> list[dict[str, Any]]:
    """Every rollout row for ``problems`` (a `CachedGenerator` generates only what its cache lacks).

    Returns:
        Rows ``{id, problem_id, sample_index, seed, text, finish_reason, num_tokens}``, in request order.
    """
    requests = build_requests(problems, options, seed)
    return [_row(r, g) for r, g in zip(requests, generator.generate(requests), strict=True)]


def _row(request: GenerationRequest, generation: Any) -> dict[str, Any]:
    return {
        "id": request.id,
        "problem_id": request.meta["problem_id"],
        "sample_index": request.meta["sample_index"],
        "seed": request.seed,
        "text": generation.text,
        "finish_reason": generation.finish_reason,
        "num_tokens": generation.num_tokens,
    }


def grade_rollouts(
    rows: Sequence[dict[str, Any]], golds: dict[str, str], generator: str, *, workers: int = 2
) -> list[Attempt]:
    """Grade rollout rows into `Attempt`s credited to ``generator``."""
    verdicts = grade_many([(golds[r["problem_id"]], r["text"]) for r in rows], workers=workers)
    return [
        Attempt(r["problem_id"], r["id"], generator, v.correct, v.extracted)
        for r, v in zip(rows, verdicts, strict=True)
    ]
