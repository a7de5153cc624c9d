"""The pool on disk for sharded runs: chains, chain ids and problems as JSONL parts, compact columns in memory.

A sharded curation run (`curation.runner`) never holds the pool's texts. Ingest streams the source once
and writes three `Table`s under ``<work>/pool-<digest>/``: ``chains`` (`Chain.to_dict()` rows), ``ids``
(``[chain id, problem id]``, small rows for reject lines) and ``problems`` (`Problem.to_dict()` rows), each cut
into parts of ``rows_per_part`` rows that shard jobs read one part per task. Beside them go the compact
columns every global stage works on (`PoolColumns`: numpy arrays of a few bytes per chain and per problem)
and the byte offset of every row, so that the end of the run reads back only the selected chains.

Ingest keeps `curation.pool.ingest`'s rules exactly (the same row reader `curation.pool_rows.read_row`, gold
overrides, the gold-conflict rule and the manifest's ingest facts), with compact state: problems by id (one
entry per problem), and the "same chain text twice" rule decided after the pass on 128-bit keys of the chain
ids (first row wins), so a rejected duplicate stays in the tables as a row that is never alive. CHAMP
(embedded, small) goes through `curation.stages.ingest` and is written out as it is.

Which rows are one problem (the ``id`` column or the problem text) is decided in the same pass by
`curation.pool.identity`, which restarts the pass when a per-row id column would split problems.

The folder's name carries a digest of the ingest options, the source's checksum (a file's SHA-256, a hub
id with revision, or the CHAMP package version) and the part size; it is written under a temporary name
and renamed when complete, so a rerun reuses a finished ingest and never a partial one; a run that fails while
writing it removes the temporary folder.

A finished store is also linked, file by file (hard links only: no disk while a run holds it, and nothing where the
cache is on another file system), under ``$LIMO_CACHE_DIR/pools/`` (`shared_pools`), its name adding the digest of
limo's `curation` and `eval` code that shard jobs carry (`curation.executors.code_digest`): another run of the same
pool (an ablation's arms, a second recipe, a rerun in a new folder) links it instead of ingesting again (CHAMP: 2.4 s
of CPU, 50 MB). Not for a hub dataset without a revision, whose content the name cannot pin; unused stores are pruned
(`prune_shared`); ``LIMO_POOL_CACHE=0`` turns it off.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import heapq
import json
import os
import shutil
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from curation.executors import code_digest
from curation.funnel import Drop
from curation.options import IngestOptions, StageOptions
from curation.pool.identity import IdentityWatch, Regroup, announce, identity_facts
from curation.pool.ingest import (
    GoldOverride,
    Pool,
    RowCounts,
    check_columns,
    duplicate_chain,
    gold_conflict,
    hub_checksum,
    ingest_facts,
    ingest_pool,
    load_gold_overrides,
    overridden_chain,
    overridden_problem,
    pool_checksum,
    pool_provenance,
    reader_args,
    warn_ingest,
)
from curation.pool.rows import CIRCULAR, RowRecord, RowSpec
from curation.schema import HUMAN, Chain
from eval.backends.model_source import cache_root
from eval.benchmarks.champ import champ_package_version
from eval.problem import Problem
from eval.records import DataError, Reject, atomic_writer, iter_rows, json_line, sha256_file

ROWS_PER_PART = 50_000
STORE_LAYOUT = 2  # in every store's digest: a store another layout wrote is not reused (2: the settings column)
# In every store's digest too: a store an older reader filled is not reused when reading changed what a file gives
# (2: CSV / TSV files, JSON tables, chats with typed parts or reasoning kept apart, Gemini's turns; 3: the facts name
# only the columns a file has, and a file without an id column is grouped by text).
READER_VERSION = 3


@dataclass(frozen=True)
class Table:
    """Rows addressed by a global index, in JSONL parts: part ``i`` holds rows ``bounds[i]:bounds[i+1]``."""

    folder: Path
    name: str
    bounds: tuple[int, ...]

    @classmethod
    def open(cls, folder: Path, name: str) -> Table:
        return cls(folder, name, tuple(json.loads((folder / f"{name}.json").read_text())["bounds"]))

    def __len__(self) -> int:
        return self.bounds[-1]

    @property
    def parts(self) -> int:
        return len(self.bounds) - 1

    def part_path(self, part: int) -> Path:
        return self.folder / f"{self.name}-{part:05d}.jsonl"

    def part_of(self, index: int) -> int:
        return bisect.bisect_right(self.bounds, index) - 1

    def offsets(self) -> np.ndarray:
        return np.load(self.folder / f"{self.name}.offsets.npy", mmap_mode="r")

    def iter_part(self, part: int) -> Iterator[tuple[int, Any]]:
        """``(index, row)`` for every row of one part, in order."""
        with open(self.part_path(part), "rb") as handle:
            for index, line in enumerate(handle, start=self.bounds[part]):
                yield index, json.loads(line)

    def values(self, key: str) -> Iterator[Any]:
        """``row[key]`` of every row, in order (streamed)."""
        for part in range(self.parts):
            for _, row in self.iter_part(part):
                yield row[key]

    def read_many(self, indices: Iterable[int]) -> Iterator[Any]:
        """The rows at ``indices``, in the order given (one seek per row)."""
        with self.reader() as reader:
            yield from reader.read_many(indices)

    def reader(self) -> RowReader:
        return RowReader(self)


class RowReader:
    """Random access to a `Table`'s rows, keeping its offsets mapped and its parts open until closed."""

    def __init__(self, table: Table):
        self.table = table
        self.offsets = table.offsets()
        self.handles: dict[int, Any] = {}

    def read_many(self, indices: Iterable[int]) -> Iterator[Any]:
        for index in indices:
            part = self.table.part_of(int(index))
            handle = self.handles.get(part)
            if handle is None:
                handle = self.handles[part] = open(self.table.part_path(part), "rb")  # noqa: SIM115
            handle.seek(int(self.offsets[index]))
            yield json.loads(handle.readline())

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TableWriter:
    """Appends rows to a `Table` being built, cutting parts every ``rows_per_part`` rows."""

    def __init__(self, folder: Path, name: str, rows_per_part: int):
        self.folder, self.name, self.rows_per_part = folder, name, rows_per_part
        self.bounds = [0]
        self.offsets = array("q")
        self._handle: Any = None
        self._position = 0

    def add(self, row: Any) -> int:
        if self._handle is None or len(self.offsets) - self.bounds[-1] >= self.rows_per_part:
            self._roll()
        line = (json_line(row) + "\n").encode("utf-8")
        self.offsets.append(self._position)
        self._handle.write(line)
        self._position += len(line)
        return len(self.offsets) - 1

    def _roll(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self.bounds.append(len(self.offsets))
        self._handle = open(self.folder / f"{self.name}-{len(self.bounds) - 1:05d}.jsonl", "wb")  # noqa: SIM115
        self._position = 0

    def abandon(self) -> None:
        """Close the part being written without finishing the table (its folder is about to be emptied)."""
        if self._handle is not None:
            self._handle.close()

    def close(self) -> Table:
        if self._handle is None:
            self._roll()
        self._handle.close()
        if len(self.offsets) > self.bounds[-1] or len(self.bounds) == 1:
            self.bounds.append(len(self.offsets))
        np.save(self.folder / f"{self.name}.offsets.npy", np.frombuffer(self.offsets, dtype=np.int64))
        (self.folder / f"{self.name}.json").write_text(json.dumps({"bounds": self.bounds}))
        return Table(self.folder, self.name, tuple(self.bounds))


@dataclass
class PoolColumns:
    """What global stages need per chain and per problem, a few bytes each (never texts).

    Attributes:
        chain_problem: Problem index of each chain.
        chain_generator: Index into ``generators`` of each chain's generator.
        chain_human: The chain is a human solution.
        chain_chars: Characters of each chain's text (s1 diversity ranks by length).
        chain_words: Words of each chain's text (selection's length fallback ranks by them).
        chain_valid: False for rows ingest rejected after writing them (duplicate chain texts): never alive.
        chain_setting: Index into ``settings`` of each chain's prompt setting (None is ``settings[0]``):
            validation's allowed settings are a check over this column, not over the chains' texts.
        problem_subject: Index into ``subjects`` of each problem's subject (None is ``subjects[0]``).
        chain_copies: How many rows held each chain's text for its problem and generator (1, or more where a model
            wrote the same text again): a repeated sample is one candidate but as many tries for pass rates. None
            (a store written before it existed): one each.
    """

    chain_problem: np.ndarray
    chain_generator: np.ndarray
    chain_human: np.ndarray
    chain_chars: np.ndarray
    chain_words: np.ndarray
    chain_valid: np.ndarray
    chain_setting: np.ndarray
    problem_subject: np.ndarray
    generators: list[str]
    subjects: list[str | None]
    settings: list[str | None]
    chain_copies: np.ndarray | None = None

    def save(self, folder: Path) -> None:
        (folder / "columns").mkdir(exist_ok=True)
        for name, value in asdict(self).items():
            if isinstance(value, np.ndarray):
                np.save(folder / "columns" / f"{name}.npy", value)
        names = {"generators": self.generators, "subjects": self.subjects, "settings": self.settings}
        (folder / "names.json").write_text(json.dumps(names))

    @classmethod
    def load(cls, folder: Path) -> PoolColumns:
        arrays = {f.stem: np.load(f) for f in sorted((folder / "columns").glob("*.npy"))}
        return cls(**arrays, **json.loads((folder / "names.json").read_text()))


def column(store_folder: str | Path, name: str) -> np.ndarray:
    """One column of a pool store, memory-mapped (shard tasks read only what they need)."""
    return np.load(Path(store_folder) / "columns" / f"{name}.npy", mmap_mode="r")


@dataclass
class PoolStore:
    """A finished ingest: the tables, the columns and the facts the manifest records.

    Attributes:
        facts: ``source``, ``read`` (chains plus rejected rows), ``checksums``, ``provenance``,
            ``gold_overrides`` (applied, for the manifest), ``pool_domains`` (problems per subject).
    """

    folder: Path
    chains: Table
    ids: Table
    problems: Table
    columns: PoolColumns
    facts: dict[str, Any]

    @classmethod
    def open(cls, folder: Path) -> PoolStore:
        chains, ids, problems = (Table.open(folder, name) for name in ("chains", "ids", "problems"))
        facts = json.loads((folder / "facts.json").read_text())
        return cls(folder, chains, ids, problems, PoolColumns.load(folder), facts)

    @property
    def rejects_path(self) -> Path:
        return self.folder / "ingest_rejects.jsonl"

    def problem_ids(self) -> list[str]:
        """Every problem id, in pool order (one string per problem: the only per-problem text held)."""
        return list(self.problems.values("id"))


# ------------------------------------------------------------------------------------------------ ingest


def open_or_ingest(stages: StageOptions, work_dir: Path, rows_per_part: int = ROWS_PER_PART) -> PoolStore:
    """The pool store for ``stages.ingest``: reused when a finished one with the same digest exists.

    Raises:
        DataError: Unreadable source or overrides, or an override that does not fit the pool.
    """
    checksum = source_checksum(stages)
    key = {
        "ingest": asdict(stages.ingest),
        "source": checksum,
        "rows_per_part": rows_per_part,
        "layout": STORE_LAYOUT,
        "reader": READER_VERSION,
    }
    if stages.majority_gold.enabled:  # gold-less rows are kept (in the key only then: other stores keep their names)
        key["voted_golds"] = True
    if stages.ingest.gold_overrides:
        key["gold_overrides"] = sha256_file(stages.ingest.gold_overrides)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    folder = work_dir / f"pool-{digest}"
    shared = shared_pools(checksum)
    cached = None if shared is None else shared / f"pool-{digest}-{code_digest()}"
    if cached is not None and not folder.is_dir() and cached.is_dir():
        try:
            os.utime(cached)  # its last use, which `prune_shared` goes by
            linked_copy(cached, folder)
        except OSError:  # pruned meanwhile, or another file system: this run ingests its own
            shutil.rmtree(folder, ignore_errors=True)
    if not folder.is_dir():
        folder = write_once(folder, lambda partial: ingest_to(partial, stages, rows_per_part))
        if cached is not None:
            prune_shared(cached.parent)
            with contextlib.suppress(OSError):  # another file system than the run's: nothing is shared
                linked_copy(folder, cached)
    store = PoolStore.open(folder)
    announce(store.facts["source"], store.facts["provenance"].get("ingest", {}).get("identity"))
    return store


def write_once(folder: Path, fill: Callable[[Path], None]) -> Path:
    """``folder`` as ``fill`` writes it into ``.<name>.partial`` beside it, renamed when complete: a finished
    folder is reused, and a partial one (a killed run's) is removed and written again."""
    if not folder.is_dir():
        partial = folder.with_name(f".{folder.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            fill(partial)
        except BaseException:  # a failed or stopped run leaves no half-written folder behind
            shutil.rmtree(partial, ignore_errors=True)
            raise
        partial.rename(folder)
    return folder


SHARED_ENV = "LIMO_POOL_CACHE"  # "0": every run ingests its pool itself


def shared_pools(source_checksum: str) -> Path | None:
    """Where finished pool stores are kept for every run on this machine (``$LIMO_CACHE_DIR/pools``); None where
    ``LIMO_POOL_CACHE=0`` or the source's checksum does not pin its content (a hub dataset without a revision)."""
    if os.environ.get(SHARED_ENV, "1") == "0" or source_checksum.startswith("hub:") and "@default:" in source_checksum:
        return None
    return cache_root() / "pools"


STALE_SECONDS = 3600.0  # a shared store of another code version unused this long goes
UNUSED_SECONDS = 86400.0  # and one of this version: its links are then often the only ones left (a run removed)
PARTIAL_STALE_SECONDS = 7 * 86400.0  # a temporary folder this old is a killed ingest's (a long one may still write)


def prune_shared(shared: Path) -> None:
    """Remove the shared stores another version of the code wrote once unused for `STALE_SECONDS` (this version's
    after `UNUSED_SECONDS`), and temporary folders a killed ingest left after `PARTIAL_STALE_SECONDS` (runs that
    linked a store keep their own links): without it every change to the code, and every run folder removed, would
    leave a copy of its pool behind. Entries other processes rename or remove meanwhile are passed over."""
    if not shared.is_dir():
        return
    now = time.time()
    for path in shared.iterdir():
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:  # renamed into place or removed by another process as this one looked
            continue
        if path.name.endswith(".pruned"):
            stale = True  # a prune that stopped half way
        elif path.name.endswith(".partial"):
            stale = age > PARTIAL_STALE_SECONDS
        else:
            stale = age > (UNUSED_SECONDS if path.name.endswith(f"-{code_digest()}") else STALE_SECONDS)
        if stale:
            # renamed first: a process linking the store sees it whole or not at all (`linked_copy`)
            trash = path if path.name.endswith(".pruned") else path.with_name(f".{path.name}.{os.getpid()}.pruned")
            try:
                path.rename(trash)
            except FileNotFoundError:
                continue
            shutil.rmtree(trash, ignore_errors=True)


def write_shared(folder: Path, fill: Callable[[Path], None]) -> Path:
    """`write_once` for a folder other processes may fill at the same time: each fills a temporary folder of its own;
    the first to finish renames it into place and the others remove theirs and use it."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        fill(partial)
        partial.rename(folder)
    except OSError:
        if not folder.is_dir():
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def linked_copy(source: Path, folder: Path) -> None:
    """``source``'s files as ``folder``, hard links only, written as `write_shared` writes (nothing is left at
    ``folder`` when it fails). A store is never written after ingest, so the links share nothing that changes. A
    store is pruned by renaming it away whole (`prune_shared`), so a link that fails on a missing file means it went
    while this linked it (`FileNotFoundError`); another file system, `OSError` (nothing is copied)."""

    def link(partial: Path) -> None:
        if not source.is_dir():
            raise FileNotFoundError(f"{source}: pruned")
        for path in sorted(source.rglob("*")):
            target = partial / path.relative_to(source)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)  # never a copy: a shared store costs no disk while a run holds it

    write_shared(folder, link)


def source_checksum(stages: StageOptions) -> str:
    """What identifies the source's content: the CHAMP package version, a file's SHA-256, or a hub id."""
    source = stages.ingest.source
    if source == "champ":
        return f"champ:{champ_package_version()}"
    path = Path(source)
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():  # a saved dataset: its files' names, sizes and times
        listing = sorted((str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns) for f in path.rglob("*"))
        return "folder:" + hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    return hub_checksum(stages.ingest)


@dataclass
class _IngestState:
    """What ingest tracks while it streams: problems by id, and per written chain its id key and row number."""

    writers: dict[str, TableWriter]
    overrides: dict[str, GoldOverride]
    overrides_path: str | None = None
    override_errors: dict[str, DataError] = field(default_factory=dict)
    problems: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (index, gold as loaded)
    generators: dict[str, int] = field(default_factory=dict)
    subjects: dict[str | None, int] = field(default_factory=lambda: {None: 0})
    settings: dict[str | None, int] = field(default_factory=lambda: {None: 0})
    chain_problem: array[int] = field(default_factory=lambda: array("i"))
    chain_generator: array[int] = field(default_factory=lambda: array("h"))
    chain_human: array[int] = field(default_factory=lambda: array("b"))
    chain_chars: array[int] = field(default_factory=lambda: array("i"))
    chain_words: array[int] = field(default_factory=lambda: array("i"))
    chain_setting: array[int] = field(default_factory=lambda: array("h"))
    problem_subject: array[int] = field(default_factory=lambda: array("h"))
    id_keys: array[int] = field(default_factory=lambda: array("Q"))  # two 64-bit words per chain
    numbers: array[int] = field(default_factory=lambda: array("q"))  # the row number cross-row rejects carry
    chain_circular: array[int] = field(default_factory=lambda: array("b"))
    chain_origin: array[int] = field(default_factory=lambda: array("h"))  # index into ``origins``
    origins: dict[str, int] = field(default_factory=dict)
    spec: RowSpec | None = None  # a file or hub pool's compiled ingest options (None: CHAMP)
    undeclared_generator: int = 0
    unused_signals: dict[str, str] = field(default_factory=dict)  # `curation.pool.ingest.unused_signals`
    identity_why: str | None = None  # why the problems are grouped as they are (`curation.pool.identity`)
    columns_named: frozenset[str] = frozenset()  # the columns some row of the file has
    contradictions: list[Reject] = field(default_factory=list)
    pool_domains: Counter[str] = field(default_factory=Counter)


def ingest_to(folder: Path, stages: StageOptions, rows_per_part: int) -> None:
    """Stream the pool into ``folder`` (tables, columns, rejects, facts); a pass that finds its problems grouped the
    wrong way (`curation.pool.identity.Regroup`) empties the folder and starts again grouped the other way."""
    options = stages.ingest
    overrides = load_gold_overrides(options.gold_overrides) if options.gold_overrides else []
    spec, why = None, None
    while True:
        writers = _writers(folder, rows_per_part)
        state = _IngestState(writers, {o.problem_id: o for o in overrides}, options.gold_overrides)
        try:
            with atomic_writer(folder / "row_rejects.jsonl") as row_rejects:
                if options.source == "champ":
                    facts = _ingest_champ(state, stages, row_rejects)
                else:
                    settled = spec is not None and not spec.group_by_text  # reverted to the ids: for good
                    facts = _ingest_records(state, stages, row_rejects, spec, settled)
            break
        except Regroup as regroup:
            for writer in writers.values():
                writer.abandon()
            for leftover in folder.iterdir():
                leftover.unlink()
            spec, why = regroup.spec, regroup.why
    state.identity_why = why
    _finish(folder, state, options.source, facts)


def _writers(folder: Path, rows_per_part: int) -> dict[str, TableWriter]:
    return {n: TableWriter(folder, n, rows_per_part) for n in ("chains", "ids", "problems")}


def _finish(folder: Path, state: _IngestState, source: str, facts: dict[str, Any]) -> None:
    """Close the tables, decide cross-row rejects, save the columns and the facts (``read`` counted here)."""
    for writer in state.writers.values():
        writer.close()
    valid, copies = _write_cross_row_rejects(folder, state, source)
    _columns(state, valid, copies).save(folder)
    if state.spec is not None:
        facts["provenance"]["ingest"] = _ingest_facts(state, state.spec, valid)
    facts["read"] = int(valid.sum()) + _count_lines(folder / "ingest_rejects.jsonl")
    facts["pool_domains"] = dict(state.pool_domains)
    (folder / "facts.json").write_text(json.dumps(facts, ensure_ascii=False))


def store_items(
    work_dir: Path,
    source: str,
    problems: Sequence[Problem],
    chains: Sequence[Chain],
    rows_per_part: int = ROWS_PER_PART,
) -> PoolStore:
    """A pool store of items a method already holds (MAmmoTH2's refined pairs, a test's pool), nothing rejected.

    The folder is named from the items' content, so the same items reuse a finished store.
    """
    digest = hashlib.sha256()
    for row in [*(p.to_dict() for p in problems), *(c.to_dict() for c in chains)]:
        digest.update(json_line(row).encode("utf-8") + b"\n")
    digest.update(f"{rows_per_part}/{STORE_LAYOUT}".encode())

    def fill(partial: Path) -> None:
        state = _IngestState(_writers(partial, rows_per_part), {})
        (partial / "row_rejects.jsonl").write_text("")
        for problem in problems:
            _add_problem(state, problem, problem.answer)
        for chain in chains:
            _add_chain(state, chain, 0)
        checksums = {"items": digest.hexdigest()}
        _finish(
            partial, state, source, {"source": source, "checksums": checksums, "provenance": {}, "gold_overrides": []}
        )

    return PoolStore.open(write_once(work_dir / f"items-{digest.hexdigest()[:12]}", fill))


def _ingest_champ(state: _IngestState, stages: StageOptions, row_rejects: Any) -> dict[str, Any]:
    """CHAMP (embedded, small): ingested in memory, then written out."""
    pool, applied, checksums = ingest_pool(stages.ingest)
    for reject in pool.rejects:
        row_rejects.write(json_line(_row_drop(reject)) + "\n")
    for problem in pool.problems:
        _add_problem(state, problem, problem.answer)
    for chain in pool.chains:
        _add_chain(state, chain, 0)
    return {"source": pool.source, "checksums": checksums, "provenance": pool.provenance, "gold_overrides": applied}


def _ingest_records(
    state: _IngestState, stages: StageOptions, row_rejects: Any, spec: RowSpec | None = None, settled: bool = False
) -> dict[str, Any]:
    """A file or hub pool, one row at a time (a repeated chain id is decided after the pass, first row wins).

    ``spec``: the row spec of a restarted pass (None: from the options, its layout from the first row);
    ``settled``: an earlier pass decided how rows are grouped (`curation.pool.identity.IdentityWatch`).

    Raises:
        Regroup: The rows must be grouped into problems the other way.
    """
    options = stages.ingest
    counts = RowCounts()
    resolved = spec is not None
    spec = spec or RowSpec.from_options(options, voted_golds=stages.majority_gold.enabled)
    watch = IdentityWatch(spec, settled)
    for number, raw in iter_rows(options.source, **reader_args(options)):
        if options.limit is not None and counts.rows >= options.limit:
            break
        if not resolved and isinstance(raw, dict):  # the layout, from the first readable row
            spec, resolved = spec.for_row(raw), True
            watch = IdentityWatch(spec, settled)
        record = counts.record(number, raw, spec, options.source)
        if isinstance(record, Reject):
            row_rejects.write(json_line(_row_drop(record)) + "\n")
        else:
            watch.observe(number, record, record.problem.id in state.problems)
            _add_record(state, number, record)
    watch.finish()
    state.unused_signals = check_columns(options.source, spec, counts, len(state.chain_problem) > 0)
    _check_overrides(state, options.source)
    checksums = {"pool": pool_checksum(options)}
    if options.gold_overrides:
        checksums["gold_overrides"] = sha256_file(options.gold_overrides)
    applied = [o.to_dict() for o in state.overrides.values()]
    state.spec, state.undeclared_generator = spec, counts.undeclared_generator
    state.columns_named = frozenset(counts.columns_named)
    provenance = pool_provenance(options)
    return {"source": options.source, "checksums": checksums, "provenance": provenance, "gold_overrides": applied}


def _check_overrides(state: _IngestState, source: str) -> None:
    """The first override (in file order) naming an unknown problem or the wrong old gold, as in-memory ingest."""
    for override in state.overrides.values():
        if override.problem_id not in state.problems:
            raise DataError(
                f"{state.overrides_path}: override {override.problem_id!r}: no such problem in pool {source}"
            )
        if override.problem_id in state.override_errors:
            raise state.override_errors[override.problem_id]


def _add_record(state: _IngestState, number: int, record: RowRecord) -> None:
    problem = record.problem
    known = state.problems.get(problem.id)
    conflict = gold_conflict(None if known is None else Problem(problem.id, "", known[1], ""), record)
    if conflict:
        state.contradictions.append(Reject(problem.source, number, "answer", conflict, "ingest", problem.id))
        return
    if known is None:
        _add_problem(state, _corrected(state, problem), problem.answer)
    origin = state.origins.setdefault(record.gold_origin, len(state.origins))
    for chain, key in zip(record.chains, record.keys or [c.id for c in record.chains], strict=True):
        _add_chain(state, overridden_chain(chain, state.overrides.get(chain.problem_id)), number, key)
        state.chain_circular.append(chain.provenance.get("gold") == CIRCULAR)
        state.chain_origin.append(origin)


def _corrected(state: _IngestState, problem: Problem) -> Problem:
    override = state.overrides.get(problem.id)
    if override is None:
        return problem
    try:
        return overridden_problem(problem, override, str(state.overrides_path))
    except DataError as err:  # raised after the pass, in the overrides file's order
        state.override_errors[problem.id] = err
        return problem


def _add_problem(state: _IngestState, problem: Problem, gold_as_loaded: str) -> None:
    index = state.writers["problems"].add(problem.to_dict())
    state.problems[problem.id] = (index, gold_as_loaded)
    state.problem_subject.append(state.subjects.setdefault(problem.subject, len(state.subjects)))
    state.pool_domains[problem.subject or "unknown"] += 1


def _add_chain(state: _IngestState, chain: Chain, number: int, key: str | None = None) -> None:
    """Write ``chain``; ``key`` (default: its id) is what "the same chain twice" compares (first row wins)."""
    state.writers["chains"].add(chain.to_dict())
    state.writers["ids"].add([chain.id, chain.problem_id])
    state.chain_problem.append(state.problems[chain.problem_id][0])
    state.chain_generator.append(state.generators.setdefault(chain.generator, len(state.generators)))
    state.chain_human.append(chain.generator == HUMAN)
    state.chain_chars.append(len(chain.text))
    state.chain_words.append(len(chain.text.split()))
    state.chain_setting.append(state.settings.setdefault(chain.prompt_setting, len(state.settings)))
    digest = hashlib.blake2b((key or chain.id).encode(), digest_size=16).digest()
    state.id_keys.extend(np.frombuffer(digest, np.uint64))
    state.numbers.append(number)


def first_of_equal(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the rows of ``keys`` (n x w): whether each is the first of its equal rows, and where that first is.

    A stable lexicographic sort keeps equal rows in their order, so each run of equal rows starts with its
    first; memory is the keys plus a few integers per row (`later_equal` bounds it for a whole pool).
    """
    if len(keys) == 0:
        return np.ones(0, dtype=bool), np.zeros(0, dtype=np.int64)
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    group_first = order[np.maximum.accumulate(np.where(starts, np.arange(len(keys)), 0))]
    kept = np.empty(len(keys), dtype=np.int64)
    kept[order] = group_first
    return kept == np.arange(len(keys)), kept


SPLIT_BITS = 4  # `later_equal` sorts a sixteenth of the rows at a time


def later_equal(keys: np.ndarray, split_column: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``keys`` (n x w, uint64) equal to an earlier row, ascending, and where each one's first equal
    row is: `first_of_equal`'s answer, found a sixteenth of the rows at a time.

    Equal rows have equal ``split_column`` values (a digest's word: evenly spread), so the rows are split by
    its top bits and each part sorted alone, in pool order: the transients of the sort (about a hundred bytes
    a row for the whole pool, which grew with the pool past the per-chain columns) are a part's; what stays is
    a byte per row and the answer.
    """
    top = np.empty(len(keys), dtype=np.uint8)
    for start in range(0, len(keys), 1 << 20):  # no 8-byte temporary per row either
        top[start : start + (1 << 20)] = keys[start : start + (1 << 20), split_column] >> np.uint64(64 - SPLIT_BITS)
    later, first = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for part in range(1 << SPLIT_BITS):
        rows = np.flatnonzero(top == part)
        is_first, kept = first_of_equal(keys[rows])
        later.append(rows[~is_first])
        first.append(rows[kept[~is_first]])
    later_rows, first_rows = np.concatenate(later), np.concatenate(first)
    order = np.argsort(later_rows, kind="stable")
    return later_rows[order], first_rows[order]


def _ingest_facts(state: _IngestState, spec: RowSpec, valid: np.ndarray) -> dict[str, Any]:
    """`curation.pool.ingest_facts` over the kept chains, counted in the order the in-memory reader meets them
    (arrays and counts per code: no Python object per chain or row)."""
    numbers = np.frombuffer(state.numbers, dtype=np.int64)[valid]
    first_of_row = np.ones(len(numbers), dtype=bool)
    first_of_row[1:] = numbers[1:] != numbers[:-1]  # a row's chains are written one after another
    del numbers
    generators = _counted(np.frombuffer(state.chain_generator, dtype=np.int16)[valid], list(state.generators))
    origins = _counted(np.frombuffer(state.chain_origin, dtype=np.int16)[valid][first_of_row], list(state.origins))
    circular = int(np.frombuffer(state.chain_circular, dtype=np.int8)[valid].sum())
    warn_ingest(spec.source, spec, state.undeclared_generator, circular, int(valid.sum()))
    facts = ingest_facts(spec, generators, origins, circular, state.unused_signals, state.columns_named)
    facts["identity"] = identity_facts(spec, state.identity_why, state.columns_named)
    return facts


def _counted(codes: np.ndarray, names: list[str]) -> Counter[str]:
    """How often each name's code occurs, names in the order their codes first appear."""
    per_code = np.bincount(codes, minlength=len(names))  # one pass, whatever the number of names
    return Counter({names[code]: int(per_code[code]) for code in _in_first_order(codes)})


def _in_first_order(codes: np.ndarray) -> list[int]:
    """The distinct values of ``codes`` in the order they first appear."""
    values, first = np.unique(codes, return_index=True)
    return values[np.argsort(first)].tolist()


def _write_cross_row_rejects(folder: Path, state: _IngestState, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Mark duplicate chain ids (all but the first row), count each kept chain's copies (itself and its repeats:
    `PoolColumns.chain_copies`), and write every ingest reject in row order.

    Row-level rejects (in the file), contradictions (in row order as read) and duplicate chains (in chain
    order, which is row order) are merged as streams: a pool where sampling repeats chains has a reject per
    repeat, and none of them is held.
    """
    keys = np.frombuffer(state.id_keys, dtype=np.uint64).reshape(-1, 2)
    duplicates, firsts = later_equal(keys, 0)
    valid = np.ones(len(keys), dtype=bool)
    valid[duplicates] = False
    copies = np.minimum(1 + np.bincount(firsts, minlength=len(keys)), np.iinfo(np.uint16).max).astype(np.uint16)
    ids = Table(folder, "ids", tuple(json.loads((folder / "ids.json").read_text())["bounds"]))
    numbers = np.frombuffer(state.numbers, dtype=np.int64)
    repeated = (
        duplicate_chain(source, number, problem_id, chain_id)
        for number, (chain_id, problem_id) in zip(numbers[duplicates].tolist(), ids.read_many(duplicates), strict=True)
    )
    with open(folder / "row_rejects.jsonl", encoding="utf-8") as row_level:
        in_file = ((json.loads(line)["detail"]["row"], line) for line in row_level)
        cross_row = (  # a row is rejected whole (a contradiction) or has its repeats rejected: never both
            ((r.row, json_line(_row_drop(r)) + "\n") for r in rejects) for rejects in (state.contradictions, repeated)
        )
        with atomic_writer(folder / "ingest_rejects.jsonl") as handle:
            handle.writelines(line for _, line in heapq.merge(in_file, *cross_row, key=lambda pair: pair[0]))
    (folder / "row_rejects.jsonl").unlink()
    return valid, copies


def _row_drop(reject: Reject) -> dict[str, Any]:
    """A rejected row as its rejects line (`curation.stages.initial_state` writes the same)."""
    return Drop("row", reject.id or f"row{reject.row}", None, "ingest", "invalid_row", reject.to_dict()).to_dict()


def _columns(state: _IngestState, valid: np.ndarray, copies: np.ndarray) -> PoolColumns:
    """The columns as views of ingest's arrays (saved, then dropped with them: no second copy per chain)."""
    return PoolColumns(
        chain_problem=np.frombuffer(state.chain_problem, dtype=np.int32),
        chain_generator=np.frombuffer(state.chain_generator, dtype=np.int16),
        chain_human=np.frombuffer(state.chain_human, dtype=np.int8).astype(bool),
        chain_chars=np.frombuffer(state.chain_chars, dtype=np.int32),
        chain_words=np.frombuffer(state.chain_words, dtype=np.int32),
        chain_valid=valid,
        chain_setting=np.frombuffer(state.chain_setting, dtype=np.int16),
        problem_subject=np.frombuffer(state.problem_subject, dtype=np.int16),
        generators=list(state.generators),
        subjects=list(state.subjects),
        settings=list(state.settings),
        chain_copies=copies,
    )


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


def read_chains(store: PoolStore, indices: Sequence[int]) -> list[Chain]:
    """The chains at ``indices`` (in that order), read back from disk."""
    return [Chain.from_dict(row) for row in store.chains.read_many(indices)]


def read_problems(store: PoolStore, indices: Sequence[int]) -> list[Problem]:
    return [Problem.from_dict(row) for row in store.problems.read_many(indices)]


def load_pool(options: IngestOptions, work_dir: Path | None = None) -> Pool:
    """A whole pool in memory (the exploration notebook, small pools), read through the pool store, so its rows
    meet exactly the rules every run applies; gold overrides are not applied (the pool as it is); ``work_dir``
    keeps the store.

    Raises:
        DataError: The source is missing or unreadable.
    """
    with tempfile.TemporaryDirectory(prefix="limo-pool-") as scratch:
        store = open_or_ingest(StageOptions(ingest=replace(options, gold_overrides=None)), Path(work_dir or scratch))
        valid = np.flatnonzero(store.columns.chain_valid).tolist()
        problems = read_problems(store, range(len(store.columns.problem_subject)))
        with open(store.rejects_path, encoding="utf-8") as handle:
            rejects = [Reject(**json.loads(line)["detail"]) for line in handle]
        facts = store.facts
        checksum = next(iter(facts["checksums"].values()), None)
        return Pool(
            problems, read_chains(store, valid), facts["source"], facts["read"], rejects, checksum, facts["provenance"]
        )
