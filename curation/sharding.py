"""Map-style stages over processes for in-memory runs: a pure per-item function applied to chunks, order kept.

Every per-item stage (quality scoring, shingling, n-gram lookup) is a pure function of one item and
read-only context, so it shards without coordination: here, for a pool held in memory, over a
`multiprocessing` pool of *spawned* processes (context such as a benchmark n-gram index is installed once per
worker by a setup function; items travel in pickled chunks). Beyond one machine, and for pools that do not
fit in memory, the same functions run as shard jobs on datatrove's local, Ray or Slurm executors
(`curation.executors`, `curation.shard_tasks`, `curation.stream_stages`). Chunking keeps inter-process
traffic to one message per chunk.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _apply_chunk(args: tuple[Callable[..., Any], Sequence[Any]]) -> list[Any]:
    function, chunk = args
    return [function(item) for item in chunk]


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), consumed lazily: a stream never held whole."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def map_chunks(
    function: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int = 1,
    chunk_size: int = 2048,
    setup: Callable[..., None] | None = None,
    setup_args: tuple[Any, ...] = (),
) -> list[R]:
    """``[function(x) for x in items]``, over ``workers`` fresh processes when ``workers > 1``.

    ``setup(*setup_args)`` runs once in every process that calls ``function`` (this one included, when
    serial) to install read-only context (options, an n-gram index). ``function`` and ``setup`` must be
    module-level functions; results keep input order.
    """
    if setup is not None:
        setup(*setup_args)
    if workers <= 1 or len(items) < 2 * chunk_size:
        return [function(item) for item in items]
    # spawn, not fork: a forked child allocating into the parent's half-free heap pages copies them (about
    # 0.9 GB per worker with a 1M-chain pool in memory); a fresh process holds only its chunk.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=setup, initargs=setup_args) as pool:
        parts = pool.imap(_apply_chunk, ((function, chunk) for chunk in chunks(items, chunk_size)))
        return [result for part in parts for result in part]
