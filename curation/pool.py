"""Ingest: a pool of problems and candidate chains, from CHAMP or any JSONL / JSON / parquet / hub source.

A file pool row holds a problem, its gold and one chain (or several: ``lists.chain: explode``), read from the
source's own columns by `curation.pool_rows` (``field_map``, list rules, chat turns, ``gold_from``,
``generator``). Rows that share a problem id add chains to one problem; a row whose gold contradicts an
earlier row of the same problem is rejected, since a problem has one gold. Bad rows become `Reject`s (file,
row, field, reason), so ``read == chains + rejected rows``. Chains are model-written unless the recipe
declares them ``human`` (CHAMP's loader does so for its reference solutions). The manifest records the
columns read, the generators, where each gold came from and how many golds are the chains' own.

Gold overrides (a YAML file: ``problem_id: {was, answer, justification}``) replace wrong gold answers at
ingest. ``was`` must match the gold as loaded, so an override never silently applies to changed data.
Human chains whose final answer was the old gold get the new one (their text derives the right value).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from curation.champ import load_champ_pool
from curation.options import IngestOptions
from curation.pool_rows import CIRCULAR, RowRecord, RowSpec, columns_in, read_row
from curation.schema import HUMAN, Chain
from eval.problem import Problem
from eval.records import DataError, Reject, RowError, iter_rows, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GoldOverride:
    """A corrected gold answer and why."""

    problem_id: str
    was: str
    answer: str
    justification: str

    def to_dict(self) -> dict[str, str]:
        return {
            "problem_id": self.problem_id,
            "was": self.was,
            "answer": self.answer,
            "justification": self.justification,
        }


@dataclass
class Pool:
    """Problems and chains read from one source, with rejected rows and the source's checksum."""

    problems: list[Problem]
    chains: list[Chain]
    source: str
    read: int
    rejects: list[Reject] = field(default_factory=list)
    checksum: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


def load_pool(options: IngestOptions) -> Pool:
    """Read the pool named by ``options.source``.

    Raises:
        DataError: The source is missing or unreadable.
    """
    if options.source == "champ":
        return _load_champ()
    return _load_records_pool(options)


def _load_champ() -> Pool:

    champ = load_champ_pool()
    chains = champ.chains
    checksum = hashlib.sha256("\n".join(f"{c.id}\x1f{c.text}" for c in chains).encode()).hexdigest()
    return Pool(champ.problems, chains, "champ", len(chains), [], checksum, dict(champ.provenance))


def _load_records_pool(options: IngestOptions) -> Pool:
    spec = RowSpec.from_options(options)
    read = ReadRows(options.source)
    for number, raw in iter_rows(options.source, fmt=options.fmt, split=options.split, revision=options.revision):
        if options.limit is not None and read.rows >= options.limit:
            break
        read.add(number, raw, spec)
    read.check_columns(spec)
    pool = Pool(
        list(read.problems.values()),
        read.chains,
        options.source,
        len(read.chains) + len(read.rejects),
        read.rejects,
        _checksum(options),
        {"source": options.source, "split": options.split, "revision": options.revision, "ingest": read.facts(spec)},
    )
    read.warn(spec)
    return pool


def _checksum(options: IngestOptions) -> str:
    if Path(options.source).is_file():
        return sha256_file(options.source)
    return f"hub:{options.source}@{options.revision or 'default'}:{options.split}"


@dataclass
class ReadRows:
    """The rows of a file pool as they are read: problems, chains, rejects and what the manifest says of them.

    Rows that share a problem id add chains to one problem; a row whose gold contradicts an earlier row of the
    same problem is rejected, and a chain whose text was seen before for the problem is rejected alone.
    """

    source: str
    problems: dict[str, Problem] = field(default_factory=dict)
    chains: list[Chain] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    rows: int = 0
    columns_seen: set[str] = field(default_factory=set)
    gold_origins: Counter[str] = field(default_factory=Counter)
    undeclared_generator: int = 0
    _chain_ids: set[str] = field(default_factory=set)

    def add(self, number: int, raw: dict[str, Any] | RowError, spec: RowSpec) -> None:
        self.rows += 1
        if isinstance(raw, RowError):
            self.rejects.append(Reject(self.source, number, raw.field, str(raw), "ingest"))
            return
        self.columns_seen.update(k for k, v in raw.items() if v is not None)
        self.undeclared_generator += spec.ignores(raw)
        try:
            record = read_row(raw, spec, number)
        except RowError as err:
            self.rejects.append(Reject(self.source, number, err.field, str(err), "ingest", _row_id(raw, spec)))
            return
        conflict = self._gold_conflict(record)
        if conflict:
            self.rejects.append(Reject(self.source, number, "answer", conflict, "ingest", record.problem.id))
            return
        fresh = self._fresh_chains(record, number)
        if fresh:
            self.problems.setdefault(record.problem.id, record.problem)
            self.gold_origins[record.gold_origin] += 1
            self.chains.extend(fresh)

    def _gold_conflict(self, record: RowRecord) -> str | None:
        known = self.problems.get(record.problem.id)
        if known is None or known.answer == record.problem.answer:
            return None
        return f"gold {record.problem.answer!r} contradicts {known.answer!r} from an earlier row of problem {known.id}"

    def _fresh_chains(self, record: RowRecord, number: int) -> list[Chain]:
        """The row's chains not seen before; a repeated text is rejected as one item (the rest are kept)."""
        fresh = []
        for chain in record.chains:
            if chain.id in self._chain_ids:
                reason = f"the same chain text for problem {record.problem.id} appears in an earlier row or element"
                self.rejects.append(Reject(self.source, number, "chain", reason, "ingest", chain.id))
                continue
            self._chain_ids.add(chain.id)
            fresh.append(chain)
        return fresh

    def check_columns(self, spec: RowSpec) -> None:
        """A required column that no row has is a mapping mistake, not bad rows: one error naming it.

        Raises:
            DataError: Rows were read, none was kept, and a required column is in none of them.
        """
        if not self.rows or self.chains:
            return
        needed = {"problem": spec.columns["problem"], "chain": spec.columns["chain"]}
        for ours, names in needed.items():
            absent = [n for n in names if n not in self.columns_seen]
            if absent:
                raise DataError(
                    f"{self.source}: required field {ours!r} (source field {absent[0]!r}) is in none of its "
                    f"{self.rows} rows; fields present: {', '.join(sorted(self.columns_seen)) or 'none'}"
                )

    def facts(self, spec: RowSpec) -> dict[str, Any]:
        """What the manifest records: columns read, generators, where golds came from, circular golds."""
        circular = sum(1 for c in self.chains if c.provenance.get("gold") == CIRCULAR)
        return {
            "columns": columns_in(spec),
            "lists": dict(spec.lists),
            "generator": {"default": spec.generator, "column": spec.generator_column},
            "generators": dict(Counter(c.generator for c in self.chains).most_common()),
            "gold": {"from_rows": dict(self.gold_origins), "gold_from": spec.gold_from, "circular_chains": circular},
        }

    def warn(self, spec: RowSpec) -> None:
        """One warning per likely mistake: an unread generator column, golds that are the chains' own."""
        if self.undeclared_generator:
            log.warning(
                "%s: column 'generator' is not read (%d rows); who wrote the chains is declared by the recipe: "
                "curate.stages.ingest.field_map.generator: generator, or curate.stages.ingest.generator",
                self.source,
                self.undeclared_generator,
            )
        circular = sum(1 for c in self.chains if c.provenance.get("gold") == CIRCULAR)
        if circular:
            log.warning(
                "%s: %d of %d chains are graded against a gold read from their own text (gold_from: %s), so the "
                "answer check cannot catch a wrong one; they are flagged gold_circular in curated.jsonl",
                self.source,
                circular,
                len(self.chains),
                spec.gold_from,
            )


def _row_id(raw: dict[str, Any], spec: RowSpec) -> str | None:
    value = raw.get(spec.columns["id"][0])
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def load_gold_overrides(path: str | os.PathLike[str]) -> list[GoldOverride]:
    """Read a gold-overrides YAML file.

    Raises:
        DataError: Missing file, or an entry without ``was`` / ``answer`` / ``justification``.
    """
    import yaml

    target = Path(path)
    if not target.is_file():
        raise DataError(f"{target}: gold overrides file not found")
    data = yaml.safe_load(target.read_text(encoding="utf-8")) or {}
    overrides = []
    for problem_id, entry in data.items():
        for key in ("was", "answer", "justification"):
            if not isinstance(entry, dict) or not str(entry.get(key) or "").strip():
                raise DataError(f"{target}: override {problem_id!r}: field {key!r} is missing or empty")
        overrides.append(
            GoldOverride(str(problem_id), str(entry["was"]), str(entry["answer"]), str(entry["justification"]).strip())
        )
    return overrides


def apply_gold_overrides(pool: Pool, overrides: list[GoldOverride], source: str) -> list[dict[str, str]]:
    """Replace wrong golds in ``pool`` (in place); returns what was applied, for the manifest.

    Raises:
        DataError: An override names an unknown problem, or its ``was`` is not the gold as loaded.
    """
    by_id = {p.id: i for i, p in enumerate(pool.problems)}
    applied = []
    for override in overrides:
        if override.problem_id not in by_id:
            raise DataError(f"{source}: override {override.problem_id!r}: no such problem in pool {pool.source}")
        index = by_id[override.problem_id]
        problem = pool.problems[index]
        if problem.answer.strip() != override.was.strip():
            raise DataError(
                f"{source}: override {override.problem_id!r}: expected gold {override.was!r}, "
                f"pool has {problem.answer!r}"
            )
        pool.problems[index] = replace(problem, answer=override.answer)
        applied.append(override.to_dict())
    _update_human_chains(pool, {o.problem_id: o for o in overrides})
    return applied


def _update_human_chains(pool: Pool, overrides: dict[str, GoldOverride]) -> None:
    for index, chain in enumerate(pool.chains):
        override = overrides.get(chain.problem_id)
        if override and chain.generator == HUMAN and (chain.final_answer or "").strip() == override.was.strip():
            pool.chains[index] = replace(chain, final_answer=override.answer)


def overrides_checksum(path: str | os.PathLike[str]) -> str:
    return sha256_file(path)
