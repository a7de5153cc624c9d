"""Ingest: a pool of problems and candidate chains, from CHAMP or any JSONL / JSON / CSV / parquet / hub source.

A file pool row holds a problem, its gold and one chain (or several: ``lists.chain: explode``), read from the
source's own columns by `curation.pool.rows` (``field_map``, list rules, chat turns, ``gold_from``,
``generator``). Rows that share a problem id add chains to one problem; a row whose gold contradicts an
earlier row of the same problem is rejected, since a problem has one gold. A row without a gold is rejected
(the reason says how to vote one), unless the recipe votes golds (``curate.stages.majority_gold``): then its
problem is kept with an empty gold for `curation.stages.majority_gold`. Bad rows become `Reject`s (file,
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
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from curation.options import IngestOptions
from curation.pool.champ import load_champ_pool
from curation.pool.rows import OPTIONAL_COLUMNS, RowRecord, RowSpec, columns_in, read_row
from curation.schema import HUMAN, Chain
from eval.problem import Problem
from eval.records import DataError, Reject, RowError, sha256_file

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


def champ_pool() -> Pool:
    """CHAMP, the embedded pool, in memory (the store ingests it from here; file pools stream into the store)."""
    return _load_champ()


def ingest_pool(options: IngestOptions) -> tuple[Pool, list[dict[str, str]], dict[str, str]]:
    """CHAMP with gold overrides applied; returns the pool, overrides applied and input checksums."""
    pool = champ_pool()
    applied: list[dict[str, str]] = []
    checksums = {"pool": pool.checksum or "unknown"}
    if options.gold_overrides:
        path = options.gold_overrides
        applied = apply_gold_overrides(pool, load_gold_overrides(path), path)
        checksums["gold_overrides"] = sha256_file(path)
    return pool, applied, checksums


def _load_champ() -> Pool:

    champ = load_champ_pool()
    chains = champ.chains
    checksum = hashlib.sha256("\n".join(f"{c.id}\x1f{c.text}" for c in chains).encode()).hexdigest()
    return Pool(champ.problems, chains, "champ", len(chains), [], checksum, dict(champ.provenance))


def reader_args(options: IngestOptions) -> dict[str, Any]:
    """The arguments of `eval.records.iter_rows` for a file or hub pool."""
    return {"fmt": options.fmt, "split": options.split, "revision": options.revision}


def pool_checksum(options: IngestOptions) -> str:
    """A file's SHA-256, or the hub id with revision and split."""
    if Path(options.source).is_file():
        return sha256_file(options.source)
    return hub_checksum(options)


def hub_checksum(options: IngestOptions) -> str:
    return f"hub:{options.source}@{options.revision or 'default'}:{options.split}"


def pool_provenance(options: IngestOptions) -> dict[str, Any]:
    return {"source": options.source, "split": options.split, "revision": options.revision}


def gold_conflict(known: Problem | None, record: RowRecord) -> str | None:
    """Why a row whose gold contradicts an earlier row of its problem is rejected (None: no conflict).

    A gold-less row (golds voted) claims nothing and joins its problem; a gold for a problem whose first row
    had none is a conflict too, since the problem's gold is decided by its first row.
    """
    if known is None or known.answer == record.problem.answer or not record.problem.answer:
        return None
    if not known.answer:
        return f"gold {record.problem.answer!r} for problem {known.id}, whose first row has none (its gold is voted)"
    return f"gold {record.problem.answer!r} contradicts {known.answer!r} from an earlier row of problem {known.id}"


def duplicate_chain(source: str, number: int, problem_id: str, chain_id: str) -> Reject:
    """The reject of a chain whose text was seen before for its problem (the rest of its row is kept)."""
    reason = (
        f"the same chain text for problem {problem_id} appears in an earlier row or element (a repeated sample: one "
        "candidate, counted as a try of its generator for pass rates)"
    )
    return Reject(source, number, "chain", reason, "ingest", chain_id)


def check_columns(source: str, spec: RowSpec, counts: RowCounts, kept: bool) -> dict[str, str]:
    """Mapping mistakes, once ingest has read the rows and before any stage runs: one error naming them.

    A column that ``field_map`` names and no row has (any field, not only the required ones) is a typo, not
    bad rows; so is a required column that no row fills when nothing was kept. A declared signal whose
    column is empty in every row is a warning (`unused_signals`), returned for the manifest and report.

    Raises:
        DataError: The pool has no rows, a declared column is in none of them, or (nothing kept) a required
            column is empty in all of them.
    """
    if not counts.rows:
        raise DataError(f"{source}: the pool has no rows (an empty or header-only file); there is nothing to curate")
    present = ", ".join(sorted(counts.columns_named)) or "none"
    for ours in spec.declared:
        if ours == "generator":  # field_map.generator: null reads no column
            names: tuple[str, ...] = (spec.generator_column,) if spec.generator_column else ()
        else:
            names = spec.columns[ours]
        absent = [n for n in names if n not in counts.columns_named and n not in OPTIONAL_COLUMNS]
        if absent:
            raise DataError(
                f"{source}: curate.stages.ingest.field_map.{ours} names column {absent[0]!r}, which none of its "
                f"{counts.rows} rows has; columns present: {present}"
            )
    for ours in () if kept else ("problem", "chain"):
        absent = [n for n in spec.columns[ours] if n not in counts.columns_seen and n not in OPTIONAL_COLUMNS]
        if absent:
            raise DataError(
                f"{source}: required field {ours!r} (source field {absent[0]!r}) is in none of its "
                f"{counts.rows} rows; fields present: {', '.join(sorted(counts.columns_seen)) or 'none'}"
            )
    return unused_signals(source, spec, counts)


UNUSED_CONSEQUENCE = {
    "difficulty": "no problem has a difficulty, so selection cannot rank by it",
    "subject": "every problem's domain is 'unknown'",
}


def unused_signals(source: str, spec: RowSpec, counts: RowCounts) -> dict[str, str]:
    """Declared signals (``field_map.difficulty`` / ``subject``) whose column is empty in every row: warned."""
    unused = {}
    for ours in UNUSED_CONSEQUENCE:
        if ours in spec.declared and not counts.filled[ours]:
            unused[ours] = f"column {spec.columns[ours][0]!r} is empty in all {counts.rows} rows"
            log.warning(
                "%s: curate.stages.ingest.field_map.%s: %s: %s", source, ours, unused[ours], UNUSED_CONSEQUENCE[ours]
            )
    return unused


def ingest_facts(
    spec: RowSpec,
    generators: Counter[str],
    gold_origins: Counter[str],
    circular: int,
    unused: dict[str, str] | None = None,
    present: Collection[str] | None = None,
) -> dict[str, Any]:
    """What the manifest records: columns read (of ``present``, the columns some row has, when given),
    generators, where golds came from, circular golds, and the declared signals that no row fills
    (`unused_signals`)."""
    return {
        "unused_signals": dict(unused or {}),
        **({"layout": spec.layout} if spec.layout else {}),
        "columns": columns_in(spec, present),
        "lists": dict(spec.lists),
        "generator": {"default": spec.generator, "column": spec.generator_column},
        "generators": dict(generators.most_common()),
        "gold": {"from_rows": dict(gold_origins), "gold_from": spec.gold_from, "circular_chains": circular},
    }


def warn_ingest(source: str, spec: RowSpec, undeclared_generator: int, circular: int, chains: int) -> None:
    """One warning per likely mistake: an unread generator column, golds that are the chains' own."""
    if undeclared_generator:
        log.warning(
            "%s: column 'generator' is not read (%d rows); who wrote the chains is declared by the recipe: "
            "curate.stages.ingest.field_map.generator: generator, or curate.stages.ingest.generator",
            source,
            undeclared_generator,
        )
    if circular:
        log.warning(
            "%s: %d of %d chains are graded against a gold read from their own text (gold_from: %s), so the "
            "answer check cannot catch a wrong one; they are flagged gold_circular in curated.jsonl",
            source,
            circular,
            chains,
            spec.gold_from,
        )


@dataclass
class RowCounts:
    """What ingest counts of the raw rows, in memory or streamed: rows, columns seen, unread generators."""

    rows: int = 0
    columns_seen: set[str] = field(default_factory=set)  # columns with a value in some row
    columns_named: set[str] = field(default_factory=set)  # columns in some row, empty or not
    filled: Counter[str] = field(default_factory=Counter)  # rows that fill difficulty / subject
    undeclared_generator: int = 0

    def record(self, number: int, raw: dict[str, Any] | RowError, spec: RowSpec, source: str) -> RowRecord | Reject:
        """Count one raw row and read it (`curation.pool_rows.read_row`), or the row's reject."""
        self.rows += 1
        if isinstance(raw, RowError):
            return Reject(source, number, raw.field, str(raw), "ingest")
        self.columns_seen.update(k for k, v in raw.items() if v is not None)
        self.columns_named.update(raw)
        self.undeclared_generator += spec.ignores(raw)
        try:
            record = read_row(raw, spec, number)
        except RowError as err:
            return Reject(source, number, err.field, str(err), "ingest", _row_id(raw, spec))
        self.filled["difficulty"] += "difficulty" in record.problem.extra
        self.filled["subject"] += bool(record.problem.subject)
        return record


def _row_id(raw: dict[str, Any], spec: RowSpec) -> str | None:
    if not spec.columns["id"]:  # field_map.id: null
        return None
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
    for override in overrides:
        if override.problem_id not in by_id:
            raise DataError(f"{source}: override {override.problem_id!r}: no such problem in pool {pool.source}")
        index = by_id[override.problem_id]
        pool.problems[index] = overridden_problem(pool.problems[index], override, source)
    by_problem = {o.problem_id: o for o in overrides}
    pool.chains[:] = [overridden_chain(c, by_problem.get(c.problem_id)) for c in pool.chains]
    return [o.to_dict() for o in overrides]


def overridden_problem(problem: Problem, override: GoldOverride, source: str) -> Problem:
    """``problem`` with the corrected gold.

    Raises:
        DataError: The override's ``was`` is not the gold as loaded.
    """
    if problem.answer.strip() != override.was.strip():
        raise DataError(
            f"{source}: override {override.problem_id!r}: expected gold {override.was!r}, pool has {problem.answer!r}"
        )
    return replace(problem, answer=override.answer)


def overridden_chain(chain: Chain, override: GoldOverride | None) -> Chain:
    """A human chain whose final answer was the old gold gets the new one (its text derives the right value)."""
    if override and chain.generator == HUMAN and (chain.final_answer or "").strip() == override.was.strip():
        return replace(chain, final_answer=override.answer)
    return chain
