"""Which rows are one problem: the ``id`` column, or the problem text, decided while ingest streams the pool.

Most pools name a problem per row (``id``: MATH's, OpenR1's ``uuid``) and several rows of one problem share it.
ShareGPT-style sets carry an ``id`` per *conversation* instead: a problem with three attempts has three ids, and
reading them as problem ids splits it into three one-chain problems — every majority vote then has one voter and
drops its problem as ``majority_too_few_votes``. So when an id column is unique per row while problem texts
repeat, chains are grouped by problem text and each row's id is kept as its chain's id
(`curation.pool.rows.RowSpec.grouped_by_text`); ``field_map.id: null`` asks for grouping by text outright.

`IdentityWatch` decides it in the same pass as ingest: while no id has repeated, a problem text seen before under
another id means the ids are per row, and ingest restarts grouped by text (`Regroup`); the rows read so far are
read again — in the usual case, a few hundred. Grouped by text, the watch goes on: an id that repeats after all
(found when the pass is over) means the ids do name problems (the pool has the same text under two problem ids),
and ingest reads the pool once more with the ids as problem ids, for good. The decision is recorded in the
manifest (``pool.provenance.ingest.identity``) and announced once per run (`announce`).
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from collections.abc import Collection
from dataclasses import replace
from typing import Any

import numpy as np

from curation.pool.rows import RowRecord, RowSpec

log = logging.getLogger(__name__)
BY_ID, BY_TEXT = "id", "text"


class Regroup(Exception):  # noqa: N818 - a signal to restart ingest, not an error
    """Ingest must start again with ``spec`` (problems grouped another way); ``why`` says what was found."""

    def __init__(self, spec: RowSpec, why: str):
        super().__init__(why)
        self.spec = spec
        self.why = why


class IdentityWatch:
    """Watches the rows of one ingest pass for ids that do not name problems (see the module docstring).

    Grouped by id, the problem texts seen so far are a set of 64-bit digests, dropped as soon as an id repeats
    (then the ids name problems and nothing is left to watch): the restart comes at the first repeated text.
    Grouped by text, the row ids are an array of 64-bit digests (16 bytes a row with their row numbers), checked
    once the pass is over (`finish`): a repeated id there is rare (two problem ids for one text), and its full
    re-read is the price of not holding a Python object per row.

    Args:
        spec: The pass's row spec; the watch is idle when the pool has no id column, or the recipe asked for
            grouping by text (``field_map.id: null``), or an earlier pass settled the question.
        settled: An earlier pass already reverted to the ids: watch nothing.
    """

    def __init__(self, spec: RowSpec, settled: bool = False):
        self.spec = spec
        self.mode: str | None = None
        if not settled and spec.columns["id"]:
            self.mode = BY_TEXT if spec.row_ids else BY_ID
        self._texts: set[int] = set()
        self._ids = array("Q")
        self._rows = array("q")

    def observe(self, number: int, record: RowRecord, known_problem: bool) -> None:
        """Check row ``number`` (read as ``record``; ``known_problem``: its problem id was seen before).

        Raises:
            Regroup: Grouped by id, a problem text repeats under a new id while no id has repeated.
        """
        if self.mode is None or record.row_id is None:
            return
        if self.mode == BY_TEXT:
            self._ids.append(_key(record.row_id))
            self._rows.append(number)
        elif known_problem:  # an id repeats: ids name problems; nothing more to watch
            self.mode = None
            self._texts.clear()
        else:
            key = _key(record.problem.problem)
            if key in self._texts:
                why = (
                    f"column {self.spec.columns['id'][0]!r} is unique per row while problem texts repeat (row "
                    f"{number} has the problem of an earlier row under another id)"
                )
                raise Regroup(self.spec.grouped_by_text(), why)
            self._texts.add(key)

    def finish(self) -> None:
        """Check the pass's row ids once it is over (grouped by text only).

        Raises:
            Regroup: An id repeats: the ids name problems after all.
        """
        if self.mode != BY_TEXT or not self._ids:
            return
        keys = np.frombuffer(self._ids, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        repeated = np.flatnonzero(keys[order][1:] == keys[order][:-1])
        if len(repeated):
            first, again = (int(self._rows[i]) for i in order[[repeated[0], repeated[0] + 1]])
            why = f"the id of row {again} repeats row {first}'s: the ids name problems"
            raise Regroup(_by_id(self.spec), why)


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _by_id(spec: RowSpec) -> RowSpec:
    return replace(spec, group_by_text=False, row_ids=False)


def identity_facts(spec: RowSpec, why: str | None, present: Collection[str] | None = None) -> dict[str, Any]:
    """What the manifest records of how rows became problems (``pool.provenance.ingest.identity``); ``present``:
    the columns some row has (an ``id`` column no row has groups every row by its text, and is not named)."""
    id_column = spec.columns["id"][0] if spec.columns["id"] else None
    if present is not None and id_column not in present:
        id_column = None
    facts: dict[str, Any] = {
        "problems_by": BY_TEXT if spec.group_by_text or id_column is None else BY_ID,
        "id_column": id_column,
        "chain_ids": "row id" if spec.row_ids else "problem/generator/text digest",
    }
    if why:
        facts["why"] = why
    return facts


def announce(source: str, identity: dict[str, Any] | None) -> None:
    """The one-line notice of a run whose chains were grouped by text because of its id column."""
    if not identity or not identity.get("why") or identity["problems_by"] != BY_TEXT:
        return
    log.warning(
        "%s: chains grouped by problem text, each row's id kept as its chain's id: %s. To group by a column that "
        "names problems, map curate.stages.ingest.field_map.id to it (field_map.id: null groups by text and reads "
        "no id)",
        source,
        identity["why"],
    )
