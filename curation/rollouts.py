"""Fresh rollouts for pass rates: k samples per problem from a generation backend, cached and resumable.

Each (problem, sample index) is one `GenerationRequest` with id ``<problem_id>#<i>`` and its own seed
(`row_seed(seed, problem_id, i)`), so a response does not depend on batch composition. Responses are
appended (`append_jsonl`, fsync per batch) to a cache file whose name carries a hash of everything that
determines them: backend, model, sampling settings, prompt, k and seed. A rerun reads the cache
(tolerating the one torn line a kill can leave), skips every finished row and generates only the rest;
changing any of those settings starts a new file instead of mixing samples.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from curation.funnel import Attempt
from curation.options import RolloutOptions
from eval.backends.base import Backend, GenerationRequest, SamplingParams, row_seed
from eval.problem import Problem
from eval.records import append_jsonl, read_jsonl

log = logging.getLogger(__name__)


def sampling_params(options: RolloutOptions) -> SamplingParams:
    return SamplingParams(temperature=options.temperature, top_p=options.top_p, max_new_tokens=options.max_new_tokens)


def cache_path(cache_dir: str | Path, options: RolloutOptions, seed: int) -> Path:
    """The cache file for these rollout settings (a hash of everything that determines the samples)."""
    key = {
        "backend": options.backend,
        "model": options.model,
        "sampling": sampling_params(options).to_dict(),
        "prompt_template": options.prompt_template,
        "system_prompt": options.system_prompt,
        "k": options.k,
        "seed": seed,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(options.model or options.backend))
    return Path(cache_dir) / f"{slug}-{digest}.jsonl"


def build_requests(problems: Sequence[Problem], options: RolloutOptions, seed: int) -> list[GenerationRequest]:
    """One request per (problem, sample index), in problem order then index order."""
    sampling = sampling_params(options)
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
    problems: Sequence[Problem], backend: Backend, options: RolloutOptions, *, seed: int, cache_dir: str | Path
) -> list[dict[str, Any]]:
    """Generate the missing rollouts (batch by batch, appended to the cache) and return all rows for ``problems``.

    Returns:
        Rows ``{id, problem_id, sample_index, text, finish_reason, num_tokens}``, in request order.
    """
    path = cache_path(cache_dir, options, seed)
    done = {row["id"]: row for row in read_jsonl(path, tolerate_torn_tail=True)} if path.exists() else {}
    requests = build_requests(problems, options, seed)
    missing = [r for r in requests if r.id not in done]
    log.info(
        "rollouts %s: %d cached, %d to generate -> %s", options.model, len(requests) - len(missing), len(missing), path
    )
    for start in range(0, len(missing), options.batch_size):
        batch = missing[start : start + options.batch_size]
        rows = [_row(request, generation) for request, generation in zip(batch, backend.generate(batch), strict=True)]
        append_jsonl(path, rows)
        done.update((row["id"], row) for row in rows)
    return [done[r.id] for r in requests]


def _row(request: GenerationRequest, generation: Any) -> dict[str, Any]:
    if generation.request_id != request.id:
        raise RuntimeError(f"backend answered {generation.request_id!r} for request {request.id!r}")
    return {
        "id": request.id,
        "problem_id": request.meta["problem_id"],
        "sample_index": request.meta["sample_index"],
        "text": generation.text,
        "finish_reason": generation.finish_reason,
        "num_tokens": generation.num_tokens,
    }


def grade_rollouts(
    rows: Sequence[dict[str, Any]], golds: dict[str, str], generator: str, *, workers: int = 2
) -> list[Attempt]:
    """Grade rollout rows into `Attempt`s credited to ``generator``."""
    from eval.grader import grade_many

    verdicts = grade_many([(golds[r["problem_id"]], r["text"]) for r in rows], workers=workers)
    return [
        Attempt(r["problem_id"], r["id"], generator, v.correct, v.extracted)
        for r, v in zip(rows, verdicts, strict=True)
    ]
