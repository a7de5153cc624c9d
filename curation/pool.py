"""Ingest: a pool of problems and candidate chains, from CHAMP or any JSONL / parquet / hub source.

A file pool has one chain per row: ``id, problem, answer, chain`` (plus optional ``subject, generator,
final_answer, prompt_setting``), renamed from the source's own names by ``field_map``. Rows that share a
problem id add chains to one problem; a row whose gold contradicts an earlier row of the same problem is
rejected, since a problem has one gold. Bad rows become `Reject`s (file, row, field, reason).

Gold overrides (a YAML file: ``problem_id: {was, answer, justification}``) replace wrong gold answers at
ingest. ``was`` must match the gold as loaded, so an override never silently applies to changed data.
Human chains whose final answer was the old gold get the new one (their text derives the right value).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from curation.champ import load_champ_pool
from curation.options import IngestOptions
from curation.schema import HUMAN, Chain
from eval.extract import extract_answer
from eval.problem import Problem
from eval.records import DataError, Reject, RowError, load_records, sha256_file


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
    result = load_records(
        options.source,
        lambda row: _row_to_pair(row, options),
        field_map=options.field_map or None,
        required=("problem", "chain"),
        fmt=options.fmt,
        split=options.split,
        revision=options.revision,
    )
    pairs = result.kept[: options.limit] if options.limit else result.kept
    problems: dict[str, Problem] = {}
    chains: list[Chain] = []
    rejects = list(result.rejects)
    seen: set[str] = set()
    for number, (problem, chain) in enumerate(pairs, start=1):
        known = problems.setdefault(problem.id, problem)
        reason = None
        if known.answer != problem.answer:
            reason = f"gold {problem.answer!r} contradicts {known.answer!r} from an earlier row of problem {known.id}"
        elif chain.id in seen:
            reason = f"the same chain text for problem {known.id} appears in an earlier row"
        if reason:
            rejects.append(
                Reject(options.source, number, "chain" if chain.id in seen else "answer", reason, "ingest", chain.id)
            )
            continue
        seen.add(chain.id)
        chains.append(chain)
    read = len(chains) + len(rejects)
    provenance = {"source": options.source, "split": options.split, "revision": options.revision}
    checksum = result.checksum or f"hub:{options.source}@{options.revision or 'default'}:{options.split}"
    return Pool(list(problems.values()), chains, options.source, read, rejects, checksum, provenance)


def _row_to_pair(row: dict[str, Any], options: IngestOptions) -> tuple[Problem, Chain]:
    text = str(row["problem"])
    problem_id = str(row.get("id") or "p_" + hashlib.sha1(text.encode()).hexdigest()[:12])
    chain_text = str(row["chain"])
    answer = row.get("answer")
    if (answer is None or not str(answer).strip()) and options.gold_from_chain:
        answer = extract_answer(chain_text)
    if answer is None or not str(answer).strip():
        raise RowError("no gold answer (field 'answer' is empty and none could be taken from the chain)", "answer")
    generator = str(row.get("generator") or HUMAN)
    problem = Problem(problem_id, text, str(answer).strip(), options.source, subject=_optional_str(row, "subject"))
    digest = hashlib.sha1(chain_text.encode()).hexdigest()[:10]
    chain = Chain(
        id=f"{problem_id}/{generator}/{digest}",
        problem_id=problem_id,
        text=chain_text,
        final_answer=_optional_str(row, "final_answer"),
        generator=generator,
        prompt_setting=_optional_str(row, "prompt_setting"),
        provenance={"source": options.source},
    )
    return problem, chain


def _optional_str(row: dict[str, Any], name: str) -> str | None:
    value = row.get(name)
    return None if value is None or value == "" else str(value)


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
