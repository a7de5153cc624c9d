"""One description of a generator, one way to build it, one resumable cache of what it generated.

Every stage that asks a model for text — curation's rollouts, LEMMA's teacher judge and error injector,
RISE's policy and teacher, MAmmoTH2's extractor and refiner — names its generator with the same
`GenerationOptions` (backend, model, backend arguments, sampling, batch size), builds it with
`build_generator`, and goes through `CachedGenerator`, so that a killed run resumes without asking again.

`build_generator` owns the one rule for ``model``: it is the folder or hub id the ``hf`` and ``vllm``
backends load (``model_path``), the served model name for ``openai``, and a label only for ``replay``
(which answers from ``backend_args``); ``llamacpp`` serves it (a ``.gguf`` file, a ``pkg:`` model or a model
folder, exported once). ``backend_args`` wins over ``model`` when it names the argument
itself, so a recipe can label a generator (``model: Qwen2.5-Math-7B-Instruct``) and load it from a hub id.

The cache is a JSONL file of `Generation` rows keyed by request id, appended batch by batch (fsync per
batch); a rerun reads it (tolerating the one torn line a kill can leave) and generates only the requests
it lacks. Its name carries a hash of what decides the replies (backend, model, sampling and the caller's
context: prompts, seed), so changed settings start a new file instead of reusing stale replies.
``backend_args`` (a server address, a replay file) and ``batch_size`` say where and how fast, not what, and
stay out of the hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from eval.backends.base import Backend, Generation, GenerationRequest, SamplingParams
from eval.backends.registry import build_backend
from eval.records import append_jsonl, read_jsonl, under_cwd_relative

log = logging.getLogger(__name__)
MODEL_ARGUMENT = {"hf": "model_path", "vllm": "model_path", "openai": "model", "llamacpp": "model_path"}
# Backends that start a server of their own and keep its log: `cached_generator` puts the log beside its cache file.
LOG_ARGUMENT = {"llamacpp": "log_path"}


@dataclass(frozen=True)
class GenerationOptions:
    """A generator: which backend and model, how it samples, how many requests go to it at once.

    Attributes:
        backend: Registered backend name (``replay``, ``hf``, ``vllm``, ``openai``, ``llamacpp``).
        model: Model folder or hub id (``hf``, ``vllm``), served model name (``openai``), a GGUF, ``pkg:`` model or
            model folder (``llamacpp``), or a label.
        backend_args: Further constructor arguments (``base_url`` for openai, ``path`` for replay, ...).
        temperature: Sampling temperature (0: greedy).
        top_p: Nucleus sampling mass.
        max_new_tokens: Generation limit per reply.
        batch_size: Requests per backend call, and per append to the cache.
    """

    backend: str = "replay"
    model: str | None = None
    backend_args: dict[str, Any] = field(default_factory=dict)
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 2048
    batch_size: int = 16

    def sampling(self) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens)

    def identity(self) -> dict[str, Any]:
        """What decides the replies (for cache keys and provenance): backend, model and sampling."""
        return {"backend": self.backend, "model": self.model, "sampling": self.sampling().to_dict()}


def build_generator(options: GenerationOptions, *, replay_default: Callable[[], Backend] | None = None) -> Backend:
    """The backend ``options`` name.

    Args:
        options: The generator's settings.
        replay_default: What ``replay`` with no ``backend_args`` serves (a method's stand-in: recorded
            answers, human solutions, a transcript); None: an empty replay that answers nothing.

    Raises:
        ValueError: Unknown backend.
    """
    if options.backend == "replay" and not options.backend_args and replay_default is not None:
        return replay_default()
    args = dict(options.backend_args)
    if options.model is not None and options.backend in MODEL_ARGUMENT:
        args.setdefault(MODEL_ARGUMENT[options.backend], options.model)
    return build_backend(options.backend, **args)


def cache_file(folder: str | Path, task: str, options: GenerationOptions, context: Any = None) -> Path:
    """``<folder>/<task>-<hash>.jsonl``: the hash covers ``options.identity()`` and ``context``; paths under the
    working directory, there and in ``task``, count as relative ones (`under_cwd_relative`: a clone elsewhere finds
    the same file)."""
    identity = under_cwd_relative({"generator": options.identity(), "context": context})
    key = json.dumps(identity, sort_keys=True, default=str)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", under_cwd_relative(task))
    return Path(folder) / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsonl"


class CachedGenerator:
    """A backend whose replies are cached in a JSONL file keyed by request id (resume after a kill).

    Args:
        backend: The backend that generates what the cache lacks.
        path: The cache file (see `cache_file`).
        batch_size: Requests per backend call and per append.
        progress: A progress bar's label while it generates (None: no bar, for callers that generate a few rows
            at a time and report on their own).
    """

    def __init__(self, backend: Backend, path: str | Path, batch_size: int, progress: str | None = None) -> None:
        self.backend, self.path, self.batch_size = backend, Path(path), max(1, batch_size)
        self.name, self.progress = backend.name, progress

    def cached(self) -> dict[str, dict[str, Any]]:
        """Rows already in the cache, by request id."""
        return (
            {r["request_id"]: r for r in read_jsonl(self.path, tolerate_torn_tail=True)} if self.path.exists() else {}
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Replies in request order; only requests the cache lacks reach the backend."""
        done = self.cached()
        missing = [r for r in requests if r.id not in done]
        shown = self.progress is not None and bool(missing)
        with tqdm(
            total=len(requests), initial=len(requests) - len(missing), desc=self.progress, disable=not shown
        ) as bar:
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                rows = [_checked(r, g).to_dict() for r, g in zip(batch, self.backend.generate(batch), strict=True)]
                append_jsonl(self.path, rows)
                done.update((row["request_id"], row) for row in rows)
                bar.update(len(batch))
        log.info("%s: %d cached, %d generated -> %s", self.name, len(requests) - len(missing), len(missing), self.path)
        return [Generation(**done[r.id]) for r in requests]


def _checked(request: GenerationRequest, generation: Generation) -> Generation:
    if generation.request_id != request.id:
        raise RuntimeError(f"backend answered {generation.request_id!r} for request {request.id!r}")
    return generation


def cached_generator(
    options: GenerationOptions,
    folder: str | Path,
    task: str,
    context: Any = None,
    *,
    replay_default: Callable[[], Backend] | None = None,
    progress: str | None = None,
) -> CachedGenerator:
    """`build_generator` behind its cache file ``<folder>/<task>-<hash>.jsonl`` (a server's log beside it);
    ``progress``: a bar with that label while it generates."""
    path = cache_file(folder, task, options, context)
    if options.backend in LOG_ARGUMENT:
        log = {LOG_ARGUMENT[options.backend]: str(path.with_suffix(f".{options.backend}.log"))}
        options = replace(options, backend_args={**log, **options.backend_args})
    backend = build_generator(options, replay_default=replay_default)
    return CachedGenerator(backend, path, options.batch_size, progress)
