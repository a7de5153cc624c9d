"""Map-style stages over processes: a pure per-item function applied to chunks, order preserved.

Every per-item stage (quality scoring, shingling, n-gram lookup) is a pure function of one item and
read-only context, so it shards without coordination: here over a `multiprocessing` pool (fork start, so
context such as a benchmark n-gram index is inherited, not pickled per task), and beyond one machine as a
``map`` over datatrove pipeline steps or `ray.data.Dataset.map_batches` (docs/curation.md). Chunking keeps
inter-process traffic to one message per chunk.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _apply_chunk(args: tuple[Callable[..., Any], Sequence[Any]]) -> list[Any]:
    function, chunk = args
    return [function(item) for item in chunk]


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def map_chunks(function: Callable[[T], R], items: Sequence[T], *, workers: int = 1, chunk_size: int = 2048) -> list[R]:
    """``[function(x) for x in items]``, over ``workers`` forked processes when ``workers > 1``.

    ``function`` must be a module-level function (picklable by name); results keep input order.
    """
    if workers <= 1 or len(items) < 2 * chunk_size:
        return [function(item) for item in items]
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        parts = pool.imap(_apply_chunk, ((function, chunk) for chunk in chunks(items, chunk_size)))
        return [result for part in parts for result in part]
