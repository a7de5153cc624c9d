"""Benchmarks: a plain spec (from `recipes/benchmark/<name>.yaml`) in, a checksummed problem set out.

Every benchmark loads from the hub by default and from a local file when ``path`` or ``data_dir`` is
given; ``local_file`` names the file in ``data_dir`` (candidates in order: the shared/data layout
``math500.jsonl`` first, then LIMO's ``limo_eval/math.jsonl``). A custom benchmark names its file or hub
id in ``source``. ``field_map`` (``{our_field: source_field}``) applies to files and hub rows alike
(``hub_field_map`` replaces it for hub rows whose fields differ from the file's); a field the map names
but a row lacks keeps the row's own field of our name, so shared/data files load under any map. The
source field ``#row`` is the 1-based row number: files without ids (Minerva, GradeSchool) get stable ids.
``answer_kind`` (`ANSWER_KINDS`) says how answers are graded (`eval.grading.kinds`). The loaded set keeps
the file's SHA-256 (or, from the hub, the id and revision) so a report can say exactly which data produced
a number. `champ_heldout` is built from the CHAMP package instead.

Offline: before a hub download, `eval.records.hub_unreachable` (one probe per process) says whether the
hub can be reached; if not, loading fails at once with `HubOfflineError` naming the way out
(``data_dir=``), instead of the hub client's retries (about 25 s per benchmark). A benchmark with a copy shipped
with limo (``shipped``: MATH500, AIME 2024 / 2025, AMC 2023; `eval.benchmarks.shipped`) loads that copy instead,
when the hub cannot be reached or its load fails (``HF_HUB_OFFLINE=1`` and no cached copy); the loaded set's
``fallback`` says why, and `announce_fallbacks` says it in one line. The hub stays the default where it answers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.benchmarks.champ import champ_package_version, heldout_split, load_champ_problems
from eval.benchmarks.shipped import SHIPPED_DIR, shipped_copy
from eval.problem import PROBLEM_REQUIRED, Problem
from eval.records import (
    DataError,
    HubOfflineError,
    LoadResult,
    RowError,
    hub_unreachable,
    load_records,
    offline_mode,
    sha256_text,
)

log = logging.getLogger(__name__)
ANSWER_KINDS = ("math", "choice", "units", "chinese")


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark comes from and how its fields map to the problem record.

    Attributes:
        name: Registry name (``math500``, ``aime24``, ...).
        hub_id: Hugging Face dataset id.
        split: Dataset split on the hub.
        revision: Hub revision to pin (None: the default branch).
        local_file: File name looked up in ``data_dir``, or a list of candidates (the first present wins).
        field_map: ``{our_field: source_field}`` for files and hub rows (``#row``: the row number).
        where: Keep only rows whose ``field`` contains ``contains`` (e.g. AMC 2023 out of 2022-23).
        loader: ``records`` (hub or file) or ``champ_heldout``.
        protocol: Default sampling protocol for this benchmark (samples, temperature, ...).
        source: A file path or hub id for a custom benchmark (used when no ``data_dir`` file applies).
        hub_field_map: ``field_map`` for hub rows when the hub's fields differ from the file's.
        answer_kind: How answers are graded: one of `ANSWER_KINDS`.
        description: One line for reports (what the set is, its language).
        shipped: The file shipped with limo (`eval.benchmarks.shipped`) read when the hub does not answer.
    """

    name: str
    hub_id: str | None = None
    split: str = "test"
    revision: str | None = None
    local_file: str | list[str] | None = None
    field_map: dict[str, str] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    loader: str = "records"
    protocol: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    hub_field_map: dict[str, str] | None = None
    answer_kind: str = "math"
    description: str | None = None
    shipped: str | None = None

    def __post_init__(self) -> None:
        if self.answer_kind not in ANSWER_KINDS:
            known = ", ".join(ANSWER_KINDS)
            raise ValueError(f"benchmark spec {self.name!r}: answer_kind {self.answer_kind!r} is not one of {known}")

    @property
    def local_files(self) -> list[str]:
        """The ``local_file`` candidates, in order."""
        if not self.local_file:
            return []
        return [self.local_file] if isinstance(self.local_file, str) else list(self.local_file)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> BenchmarkSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(row) - known
        if unknown:
            raise ValueError(f"benchmark spec {row.get('name')!r}: unknown keys {sorted(unknown)}")
        values: dict[str, Any] = {
            k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, (list, tuple)) else v)
            for k, v in row.items()
        }
        values.setdefault("name", "custom")
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
    answer_kind: str = "math"
    fallback: str | None = None  # why the copy shipped with limo was read instead of the hub


def resolve_source(spec: BenchmarkSpec, *, path: str | None = None, data_dir: str | None = None) -> str:
    """The file or hub id a benchmark loads from: explicit ``path``, else the first ``local_file`` candidate in
    ``data_dir`` (a missing one names every candidate), else ``source``, else the hub id."""
    if path:
        return path
    if data_dir and spec.local_files:
        candidates = [os.path.join(data_dir, name) for name in spec.local_files]
        found = next((c for c in candidates if Path(c).exists()), None)
        if found or len(candidates) == 1:
            return found or candidates[0]  # a single missing file is named by the reader
        raise DataError(f"benchmark {spec.name!r}: none of {', '.join(candidates)} exists")
    if spec.source:
        return spec.source
    if data_dir:
        raise DataError(f"benchmark {spec.name!r} has no local_file, so data_dir={data_dir} cannot serve it")
    if not spec.hub_id:
        raise DataError(f"benchmark {spec.name!r} has no hub_id; pass data_dir=<folder with {_files(spec)}>")
    return spec.hub_id


def _files(spec: BenchmarkSpec) -> str:
    return " or ".join(spec.local_files) or "its file"


def load_benchmark(spec: BenchmarkSpec, *, path: str | None = None, data_dir: str | None = None) -> Benchmark:
    """Load a benchmark's problems: from ``path``, ``data_dir``, ``source`` or the hub, and from the copy shipped with
    limo when the hub does not answer (the result's ``fallback`` says why).

    Raises:
        DataError: Missing file, unreadable source, or no usable rows.
    """
    if spec.loader == "champ_heldout":
        return _load_champ_heldout(spec)
    source = resolve_source(spec, path=path, data_dir=data_dir)
    local = Path(source).exists()
    shipped = spec.shipped if source == spec.hub_id and not local else None
    offline = None if local or path or data_dir else hub_unreachable()
    if offline and shipped:
        return _load_shipped(spec, shipped, f"the hub cannot be reached: {offline}")
    if offline:
        message = f"benchmark {spec.name!r}: offline ({offline}); pass data_dir=<folder with {_files(spec)}>"
        raise HubOfflineError(message + " or set HF_HUB_OFFLINE=1 to use a cached copy", offline)
    field_map = spec.field_map if local or spec.hub_field_map is None else spec.hub_field_map
    try:
        result = _load_rows(spec, source, field_map)
    except DataError as err:
        if not shipped:
            raise
        return _load_shipped(spec, shipped, _hub_failure(err))
    return _benchmark(
        spec, source, result, result.checksum or f"hub:{source}@{spec.revision or 'default'}:{spec.split}"
    )


def _load_rows(spec: BenchmarkSpec, source: str, field_map: Mapping[str, str]) -> LoadResult[Problem]:
    return load_records(
        source,
        lambda row: _problem(row, spec.name),
        field_map=field_map,
        required=PROBLEM_REQUIRED,
        split=spec.split,
        revision=spec.revision,
    )


def _load_shipped(spec: BenchmarkSpec, name: str, reason: str) -> Benchmark:
    """The copy shipped with limo, its sha256 checked (`eval.benchmarks.shipped.shipped_copy`)."""
    path, digest = shipped_copy(name)
    benchmark = _benchmark(spec, str(path), _load_rows(spec, str(path), spec.field_map), digest)
    benchmark.fallback = reason
    return benchmark


def _benchmark(spec: BenchmarkSpec, source: str, result: LoadResult[Problem], checksum: str) -> Benchmark:
    problems = [p for p in result.kept if _matches(p, spec.where)]
    if not problems:
        raise DataError(f"{source}: benchmark {spec.name!r} has no usable rows ({result.counts()})")
    rejects = len(result.rejects)
    return Benchmark(spec.name, problems, source, checksum, result.read, rejects, result.rejects, spec.answer_kind)


def _hub_failure(err: DataError) -> str:
    """Why a hub load failed, short: offline mode without a cached copy, or the loader's own words."""
    if offline_mode():
        return "HF_HUB_OFFLINE is set and the hub cache has no copy"
    return f"the hub load failed: {err}"


def announce_fallbacks(benchmarks: Sequence[Benchmark], what: str) -> None:
    """One warning line naming every benchmark read from the copy shipped with limo, and why (``what``: the
    sentence's verb phrase, e.g. ``screened against``)."""
    used = [b for b in benchmarks if b.fallback]
    if used:
        log.warning(
            "%s the copies of %s shipped with limo (%s; sources and licences: %s; data_dir=<folder> reads your own)",
            what,
            ", ".join(b.name for b in used),
            used[0].fallback,
            SHIPPED_DIR / "NOTICE",
        )


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
        answer=_answer_text(row["answer"]),
        source=name,
        subject=row.get("subject"),
        level=level,
        year=year,
        solution=row.get("solution"),
        extra={k: v for k, v in row.items() if k not in known and isinstance(v, (str, int, float, bool))},
    )


def _answer_text(answer: Any) -> str:
    """The gold as text; a several-part gold given as an object (three of Kaoyan's) as ``key: value; ...``."""
    if isinstance(answer, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in answer.items())
    return str(answer).strip()


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
