"""Exact similarities and nearest neighbours by meaning, the same on every CPU.

- **Similarities are exact.** Unit vectors are kept on a grid of 1/32767 (`normalised`), so every cosine is an
  integer dot product (`cosines`, in float64: below 2**53, exact in any order) and every similarity recorded in
  rejects.jsonl or the funnel, and every decision at a threshold, is the same on every CPU; equal similarities are
  ranked by the lower row (`top_columns`: numpy's partition picks among equal values by its CPU's kernel).
- **Index.** Exact top-k by cosine over the vectors' integer coordinates (int16: 256 dims, 512 MB at 1M
  problems), scored in blocks of queries x blocks of the index, so no all-pairs matrix ever exists. (faiss was used
  when installed: its float scores depend on the CPU, so it no longer is.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

QUERY_BLOCK = 256  # queries scored at a time: float64 scores of 256 queries x 16,384 items, 32 MB
_INDEX_BLOCK = 16_384


UNIT_GRID = 32767  # unit vectors' coordinates are multiples of 1/32767 (`normalised`) ...
_FINE = np.float32(2**20)  # ... found from the row on a grid of 2**-20 of its largest coordinate


def normalised(vectors: np.ndarray) -> np.ndarray:
    """``vectors``' rows scaled to unit length, each coordinate a multiple of ``1 / UNIT_GRID`` (a zero row stays
    zero), computed from integers: the same bits on every CPU. `cosines` of such vectors are exact integer dot
    products, so a similarity, and a decision at a threshold, never depends on the machine's float kernels."""
    vectors = np.asarray(vectors, np.float32)
    peak = np.maximum(np.abs(vectors).max(1, keepdims=True) if vectors.size else 0, np.float32(1e-30))
    fine = np.rint(vectors / peak * _FINE).astype(np.float64)  # integers up to 2**20
    norms = np.sqrt(np.square(fine).sum(1, keepdims=True))  # the squares' sums stay below 2**53: exact
    grid = np.rint(fine * (UNIT_GRID / np.maximum(norms, 1)))
    return (grid / UNIT_GRID).astype(np.float32)


def _grid(vectors: np.ndarray) -> np.ndarray:
    """`normalised` vectors' integer coordinates, as float64 (exact: float32 k / 32767 times 32767 is within 0.004
    of k)."""
    return np.rint(np.asarray(vectors, np.float32) * np.float32(UNIT_GRID)).astype(np.float64)


def to_grid(vectors: np.ndarray) -> np.ndarray:
    """`normalised` vectors stored small: their integer coordinates as int16 (`from_grid` gives them back, the same
    bits)."""
    return _grid(vectors).astype(np.int16)


def from_grid(grid: np.ndarray) -> np.ndarray:
    """The `normalised` vectors of `to_grid`'s integers."""
    return (np.asarray(grid, np.float64) / UNIT_GRID).astype(np.float32)


def cosines(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine similarities (float32) of `normalised` ``queries`` with `normalised` ``vectors``, every one an exact
    integer dot product (below 32767**2 * dimensions < 2**53: no float kernel can change it) over ``UNIT_GRID**2``.
    No vectors (no benchmark item): ``(len(queries), 0)``, whatever shape the empty array has."""
    if len(vectors) == 0:
        return np.zeros((len(queries), 0), np.float32)
    return ((_grid(queries) @ _grid(vectors).T) / UNIT_GRID**2).astype(np.float32)


def top_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """The columns of each row's ``k`` highest ``scores``, highest first, equal scores by the lower column: a total
    order (numpy's partition picks among equal values as its kernel for the CPU does, so ties are broken here)."""
    keep = min(k, scores.shape[1])
    if keep == 0:
        return np.zeros((len(scores), 0), np.int64)
    part = np.argpartition(scores, -keep, axis=1)[:, -keep:]
    kth = np.take_along_axis(scores, part, 1).min(1, keepdims=True)  # the k-th highest value: the same on any CPU
    for row in np.flatnonzero((scores >= kth).sum(1) > keep):  # equal values across the cut: rare
        part[row] = np.lexsort((np.arange(scores.shape[1]), -scores[row]))[:keep]
    order = np.lexsort((part, -np.take_along_axis(scores, part, 1)), axis=1)
    return np.take_along_axis(part, order, 1)


@dataclass
class SemanticIndex:
    """Exact nearest neighbours by cosine similarity over `normalised` vectors, kept as their integer coordinates
    (int16: 512 MB at 1M problems of 256 dimensions) and scored in blocks of queries x blocks of the index with
    exact integer products (`cosines`), so no all-pairs matrix ever exists and no score depends on the CPU.

    Attributes:
        keys: One key per row (a benchmark item, a pool problem id).
        grid: ``(len(keys), dim)`` int16, the vectors times ``UNIT_GRID``.
    """

    keys: list[Any]
    grid: np.ndarray

    @classmethod
    def build(cls, keys: Iterable[Any], vectors: np.ndarray) -> SemanticIndex:
        keys = list(keys)
        if len(keys) != len(vectors):
            raise ValueError(f"semantic index: {len(keys)} keys for {len(vectors)} vectors")
        return cls(keys, to_grid(vectors))

    @classmethod
    def of_grid(cls, keys: Iterable[Any], grid: np.ndarray) -> SemanticIndex:
        """An index of vectors kept as `to_grid` integers."""
        return cls(list(keys), np.asarray(grid, np.int16))

    def nearest(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(similarities, rows)``, each ``(len(queries), min(k, len(index)))``, most similar first (equal
        similarities: the lower row first)."""
        k = min(k, len(self.keys))
        if k == 0 or len(queries) == 0:
            return np.zeros((len(queries), k), np.float32), np.zeros((len(queries), k), np.int64)
        blocks = [self._block(queries[s : s + QUERY_BLOCK], k) for s in range(0, len(queries), QUERY_BLOCK)]
        return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])

    def _block(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        grid = _grid(queries)
        best = np.full((len(queries), 0), -np.inf, np.float32)
        rows = np.zeros((len(queries), 0), np.int64)
        for start in range(0, len(self.keys), _INDEX_BLOCK):
            block = self.grid[start : start + _INDEX_BLOCK].astype(np.float64)
            scores = ((grid @ block.T) / UNIT_GRID**2).astype(np.float32)
            best, rows = _merge_top(best, rows, scores, start, k)
        return best, rows


def _merge_top(
    best: np.ndarray, rows: np.ndarray, scores: np.ndarray, offset: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of the running best and a new block of scores (ties: the lower row first)."""
    part = top_columns(scores, k)
    all_scores = np.concatenate([best, np.take_along_axis(scores, part, 1)], axis=1)
    all_rows = np.concatenate([rows, part + offset], axis=1)
    order = np.lexsort((all_rows, -all_scores), axis=1)[:, :k]
    return np.take_along_axis(all_scores, order, 1), np.take_along_axis(all_rows, order, 1)
