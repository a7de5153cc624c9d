"""Benchmarks: a plain spec (from `recipes/benchmark/<name>.yaml`) in, a checksummed problem set out.

Every benchmark loads from the hub by default and from a local file when ``path`` or ``data_dir`` is
given (the layout of ``shared/data/*.jsonl``: id, problem, answer, solution, level, subject, year,
source). The loaded set keeps the file's SHA-256 (or, from the hub, the id and revision) so a report can
say exactly which data produced a number. `champ_heldout` is built from the CHAMP package instead.

Offline: before a hub download, `eval.records.hub_unreachable` (one probe per process) says whether the
hub can be reached; if not, loading fails at once with `HubOfflineError` naming the way out
(``data_dir=``), instead of the hub client's retries (about 25 s per benchmark).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.champ import champ_package_version, heldout_split, load_champ_problems
from eval.problem import PROBLEM_REQUIRED, Problem
from eval.records import DataError, HubOfflineError, LoadResult, RowError, hub_unreachable, load_records, sha256_text


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark comes from and how its fields map to the problem record.

    Attributes:
        name: Registry name (``math500``, ``aime24``, ...).
        hub_id: Hugging Face dataset id.
        split: Dataset split on the hub.
        revision: Hub revision to pin (None: the default branch).
        local_file: File name looked up in ``data_dir``.
        field_map: ``{our_field: source_field}`` for hub rows (local files already use our names).
        where: Keep only rows whose ``field`` contains ``contains`` (e.g. AMC 2023 out of 2022-23).
        loader: ``records`` (hub or file) or ``champ_heldout``.
        protocol: Default sampling protocol for this benchmark (samples, temperature, ...).
    """

    name: str
    hub_id: str | None = None
    split: str = "test"
    revision: str | None = None
    local_file: str | None = None
    field_map: dict[str, str] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    loader: str = "records"
    protocol: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> BenchmarkSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(row) - known
        if unknown:
            raise ValueError(f"benchmark spec {row.get('name')!r}: unknown keys {sorted(unknown)}")
        values: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in row.items()}
        return cls(**values)


@dataclass
class Benchmark:
    """A loaded benchmark: its problems, where they came from, and what was rejected."""

    name: str
    problems: list[Problem]
    source: str
    checksum: str
    read: int = 0
    rejected: int = 0
    rejects: list[Any] = field(default_factory=list)


def resolve_source(spec: BenchmarkSpec, *, path: str | None = None, data_dir: str | None = None) -> str:
    """The file or hub id a benchmark loads from: explicit ``path``, else ``data_dir/local_file``, else hub."""
    if path:
        return path
    if data_dir:
        if not spec.local_file:
            raise DataError(f"benchmark {spec.name!r} has no local_file, so data_dir={data_dir} cannot serve it")
        return os.path.join(data_dir, spec.local_file)
    if not spec.hub_id:
        raise DataError(f"benchmark {spec.name!r} has no hub_id; pass path= or data_dir=")
    return spec.hub_id


def load_benchmark(spec: BenchmarkSpec, *, path: str | None = None, data_dir: str | None = None) -> Benchmark:
    """Load a benchmark's problems.

    Raises:
        DataError: Missing file, unreadable source, or no usable rows.
    """
    if spec.loader == "champ_heldout":
        return _load_champ_heldout(spec)
    source = resolve_source(spec, path=path, data_dir=data_dir)
    local = Path(source).exists()
    offline = None if local or path or data_dir else hub_unreachable()
    if offline:
        file = spec.local_file or "its file"
        message = f"benchmark {spec.name!r}: offline ({offline}); pass data_dir=<folder with {file}>"
        raise HubOfflineError(message + " or set HF_HUB_OFFLINE=1 to use a cached copy", offline)
    field_map = None if local else spec.field_map
    result: LoadResult[Problem] = load_records(
        source,
        lambda row: _problem(row, spec.name),
        field_map=field_map,
        required=PROBLEM_REQUIRED,
        split=spec.split,
        revision=spec.revision,
    )
    problems = [p for p in result.kept if _matches(p, spec.where)]
    if not problems:
        raise DataError(f"{source}: benchmark {spec.name!r} has no usable rows ({result.counts()})")
    checksum = result.checksum or f"hub:{source}@{spec.revision or 'default'}:{spec.split}"
    return Benchmark(spec.name, problems, source, checksum, result.read, len(result.rejects), result.rejects)


def _problem(row: dict[str, Any], name: str) -> Problem:
    level = row.get("level")
    year = row.get("year")
    try:
        year = int(year) if year not in (None, "") else None
    except (TypeError, ValueError) as err:
        raise RowError(f"year {year!r} is not an integer", field="year") from err
    known = {"id", "problem", "answer", "solution", "subject", "level", "year", "source"}
    return Problem(
        id=str(row["id"]),
        problem=str(row["problem"]),
        answer=str(row["answer"]).strip(),
        source=name,
        subject=row.get("subject"),
        level=level,
        year=year,
        solution=row.get("solution"),
        extra={k: v for k, v in row.items() if k not in known and isinstance(v, (str, int, float, bool))},
    )


def _matches(problem: Problem, where: Mapping[str, str]) -> bool:
    if not where:
        return True
    value = problem.to_dict().get(where["field"], problem.extra.get(where["field"]))
    return where["contains"] in str(value)


def _load_champ_heldout(spec: BenchmarkSpec) -> Benchmark:
    problems = load_champ_problems()
    fraction = float(spec.protocol.get("heldout_fraction", 0.2))
    seed = int(spec.protocol.get("heldout_seed", 0))
    held = heldout_split(problems, fraction=fraction, seed=seed)[1]
    ids = ",".join(p.id for p in held)
    checksum = sha256_text(f"champ-dataset=={champ_package_version()}:{fraction}:{seed}:{ids}")
    held = [Problem(**{**p.to_dict(), "source": spec.name}) for p in held]
    return Benchmark(spec.name, held, f"champ-dataset=={champ_package_version()}", checksum, len(problems), 0)
