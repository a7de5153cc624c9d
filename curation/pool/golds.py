"""The golds a run decided, beside the immutable pool store: the one way every stage reads a problem's gold.

The pool store (`curation.pool.store`) is written once per ingest and shared by every run over the same pool,
so a gold decided by a run (`curation.stages.majority_gold`: voted from the chains for a pool without golds)
cannot go into it. It goes into a golds file in the run's work folder instead: one JSON line per problem the
vote saw, ``{"problem": index, "answer": gold, "source": "majority" | "given", "agreement": share of the votes
equal to that gold, "generators": distinct generators that gave it, ...}``. Every reader of problem rows during a
run goes through `with_gold` (shard tasks through `curation.runner.alive_rows` and `problem_reader`, the driver
through `curation.runner.RunState.problem_rows`), which puts the decided gold in the row's ``answer`` and the vote's
record in ``extra["gold"]``; without a golds file (every run that does not vote) rows are read as stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from curation.pool.store import Table

GOLD_NOTE = ("source", "agreement", "cluster_sizes", "votes", "answered", "generators", "majority", "agrees")


@lru_cache(maxsize=4)
def load_golds(path: str) -> Mapping[int, dict[str, Any]]:
    """A golds file by problem index (cached: every task of a job reads the same file)."""
    with open(path, encoding="utf-8") as handle:
        rows = (json.loads(line) for line in handle)
        return {int(row["problem"]): row for row in rows}


def with_gold(index: int, row: dict[str, Any], golds: str | None) -> dict[str, Any]:
    """Problem ``row`` (at ``index``) with the run's decided gold, or as stored when the run decided none."""
    entry = load_golds(golds).get(index) if golds else None
    if entry is None:
        return row
    note = {k: entry[k] for k in GOLD_NOTE if k in entry}
    return {**row, "answer": entry["answer"], "extra": {**(row.get("extra") or {}), "gold": note}}


def gold_note(extra: Mapping[str, Any]) -> dict[str, Any] | None:
    """The gold record `with_gold` left in a problem's ``extra`` (None: the stored gold, no vote)."""
    return extra.get("gold")


class ProblemReader:
    """Random access to a store's problem rows with the run's golds (`with_gold`), open until closed."""

    def __init__(self, store: str | Path, golds: str | None):
        self._rows = Table.open(Path(store), "problems").reader()
        self._golds = golds

    def read_many(self, indices: Iterable[int]) -> Iterator[dict[str, Any]]:
        listed = [int(i) for i in indices]
        for index, row in zip(listed, self._rows.read_many(listed), strict=True):
            yield with_gold(index, row, self._golds)

    def close(self) -> None:
        self._rows.close()

    def __enter__(self) -> ProblemReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def problem_reader(item: Mapping[str, Any]) -> ProblemReader:
    """The problem rows of a shard task's ``item`` (its ``store``, and ``golds`` when the run voted)."""
    return ProblemReader(item["store"], item.get("golds"))
