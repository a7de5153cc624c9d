"""The one curation runner's state: alive masks over the pool store, counts, rejects streamed, and its shard jobs.

Every method's pool stages run here, on one executor (`curation.executors`: ``local`` in this process by
default, ``ray``, ``slurm``), whatever the pool's size. `RunState` holds no text: an alive flag per chain and
per problem, the pool's compact columns (`curation.pool_store.PoolColumns`), what later stages read of earlier
ones (each stage's output under its name: finished shard jobs to stream again, a few arrays), and one
`StageCount` per stage.
`apply` is the funnel's one rule — a dropped problem takes its alive chains (pool order) with it, then single
chains are dropped, then problems left without a chain (``no_chain_left``) — and writes each drop straight to
the rejects file (ids read back by offset), so ``read = kept + dropped`` reconciles at any pool size.

Per-item work goes through `run_parts`: one shard job over the parts of a pool table that still hold an alive
row (the mask is a file the tasks read), so the same code runs locally, on Ray or on Slurm, and a rerun after a
kill does only the parts without a completion marker. Job folders are named from their inputs (mask, options),
so a rerun with changed late options (``select.n``) reuses every earlier stage's shards. The stages themselves
(`curation.stages`) are each one module: per-item checks, shard task, and the global decision over compact keys.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import os
import pickle
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO, TypeVar

import numpy as np

from curation.executors import ExecutorOptions, ShardJob, read_shards, run_job
from curation.funnel import NO_CHAIN_LEFT, StageCount, check_chained
from curation.options import StudentOptions
from curation.pool.golds import ProblemReader, with_gold
from curation.pool.store import PoolStore, Table, store_items
from curation.schema import Chain
from eval.benchmarks.loader import BenchmarkSpec
from eval.problem import Problem
from eval.records import atomic_writer, json_line

T = TypeVar("T")
DropItem = tuple[int, str, dict[str, Any]]  # (chain or problem index, reason, detail)
ID_BATCH = 8192


@dataclass(frozen=True)
class StageContext:
    """What stages need besides their options: the seed, benchmarks, where jobs write, the executor, and the student
    (``curate.student``, which every signal relative to the student reads: difficulty's, selection's fit)."""

    seed: int
    benchmark_specs: Mapping[str, BenchmarkSpec]
    work_dir: Path
    executor: ExecutorOptions
    student: StudentOptions = field(default_factory=StudentOptions)


def key_run(keys: np.ndarray, key: int) -> tuple[int, int]:
    """The ``[low, high)`` slice of ``key`` in the sorted array ``keys``. The bounds are searched in ``keys``' own
    dtype: given as a Python list they would be int64, and numpy would copy an int32 ``keys`` whole on every call
    (1.2 ms a call on 2.3M pass-count pairs: 1,320 s of the difficulty stage at 10M chains;
    bench/curation/pass_counts.py)."""
    low, high = np.searchsorted(keys, np.array((key, key + 1), dtype=keys.dtype)).tolist()
    return low, high


@dataclass(frozen=True)
class PassCounts:
    """Correct answers and tries per (problem, generator) with at least one try, sorted by problem then generator
    code: 14 bytes per such pair. (An array per generator with a slot per problem grew with generators times
    problems: 0.6 GB for 500 generators over 77k problems.)

    Attributes:
        generators: Generator names by code.
        problem, generator, correct, tries: One entry per pair.
    """

    generators: tuple[str, ...]
    problem: np.ndarray
    generator: np.ndarray
    correct: np.ndarray
    tries: np.ndarray

    @classmethod
    def of_pairs(cls, generators: Sequence[str], parts: Iterable[tuple[np.ndarray, ...]]) -> PassCounts:
        """The counts given as parts of ``(problem, generator code, correct, tries)`` arrays, each (problem,
        generator) pair in one part at most; pairs without a try are left out."""
        columns: list[list[np.ndarray]] = [[np.zeros(0, dtype=t)] for t in (np.int32, np.int16, np.int32, np.int32)]
        for part in parts:
            tried = np.asarray(part[3]) > 0
            for column, values in zip(columns, part, strict=True):
                column.append(np.asarray(values)[tried].astype(column[0].dtype))
        problem, generator, correct, tries = (np.concatenate(column) for column in columns)
        order = np.lexsort((generator, problem))
        return cls(tuple(generators), problem[order], generator[order], correct[order], tries[order])

    def of(self, problem: int) -> dict[str, list[int]]:
        """``{generator: [correct, tries]}`` of one problem (generators with at least one try, in code order)."""
        low, high = key_run(self.problem, problem)
        codes, right, tries = (a[low:high].tolist() for a in (self.generator, self.correct, self.tries))
        return {self.generators[g]: [c, t] for g, c, t in zip(codes, right, tries, strict=True)}


class RunState:
    """Alive flags, counts and rejects of a run over one `PoolStore`.

    Args:
        store: The ingested pool.
        rejects: Where drop rows go, in order (``rejects.jsonl`` being written).
    """

    def __init__(self, store: PoolStore, rejects: TextIO):
        columns = store.columns
        self.store = store
        self.chain_problem = columns.chain_problem
        self.chain_alive = columns.chain_valid.copy()
        self.problem_alive = np.ones(len(columns.problem_subject), dtype=bool)
        self.problem_ids = store.problem_ids()
        order = np.argsort(self.chain_problem, kind="stable")
        self.by_problem = order.astype(np.int32) if len(order) < 2**31 else order  # 4 bytes a chain, not 8
        del order
        self.problem_starts = np.searchsorted(
            self.chain_problem[self.by_problem], np.arange(len(self.problem_ids) + 1)
        )
        self.read = int(store.facts["read"])
        self.dropped = 0  # chains and rows dropped: the right side of the reconciliation
        self.rejected_rows = 0  # every row written to the rejects file (problems too)
        self.funnel: list[StageCount] = []
        self.manifest: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}  # each stage's output by its name (`curation.stages.base.Stage.run`)
        self.totals: dict[str, int] = {}
        self.golds: str | None = None  # the run's decided golds (`curation.pool.golds`), once a stage wrote them
        self._pool_stages: list[StageCount] = []
        self._rejects = rejects
        self._ids = store.ids.reader()  # chain ids for reject rows, read by offset (closed by `close_files`)
        self._clock = time.perf_counter()

    def output(self, stage: str, kind: type[T]) -> T | None:
        """What stage ``stage`` handed on (`curation.stages.run_pool` keeps it), or None when it did not run, was
        off, or handed on something else than a ``kind``."""
        found = self.outputs.get(stage)
        return found if isinstance(found, kind) else None

    # -------------------------------------------------------------------------------------------- counting

    def opened(self, stage: str, enabled: bool) -> StageCount | None:
        """The stage's count, or None when the stage is off (it has then passed everything through)."""
        count = self.begin(stage, enabled)
        if enabled:
            return count
        self.apply(count)
        return None

    def begin(self, stage: str, enabled: bool = True) -> StageCount:
        count = StageCount(
            stage, "chain", enabled, int(self.chain_alive.sum()), problems_in=int(self.problem_alive.sum())
        )
        self.funnel.append(count)
        self._pool_stages.append(count)
        return count

    def close(self, count: StageCount) -> None:
        now = time.perf_counter()
        count.seconds = round(now - self._clock, 3)
        self._clock = now

    def alive_chains_of(self, problem: int) -> np.ndarray:
        members = self.by_problem[self.problem_starts[problem] : self.problem_starts[problem + 1]]
        return members[self.chain_alive[members]]

    def apply(self, count: StageCount, chains: Iterable[DropItem] = (), problems: Iterable[DropItem] = ()) -> None:
        """Drop ``problems`` (with their alive chains), then ``chains``, then problems left with no chain."""
        chain_reasons: Counter[str] = Counter()
        problem_reasons: Counter[str] = Counter()
        for problem, reason, detail in problems:
            if not self.problem_alive[problem]:
                continue
            members = self.alive_chains_of(problem)
            self._write_chains(members, count.stage, reason, {"problem_dropped": True, **detail})
            chain_reasons[reason] += len(members)
            self._drop_problem(problem, count.stage, reason, detail)
            problem_reasons[reason] += 1
        for batch in batches((c for c in chains if self.chain_alive[c[0]]), ID_BATCH):
            for (index, reason, detail), ids in zip(batch, self._ids.read_many(c[0] for c in batch), strict=True):
                self._write_row("chain", ids[0], ids[1], count.stage, reason, detail)
                self.chain_alive[index] = False
                chain_reasons[reason] += 1
        alive = np.bincount(self.chain_problem[self.chain_alive], minlength=len(self.problem_ids))
        for left in np.flatnonzero(self.problem_alive & (alive == 0)).tolist():
            self._drop_problem(left, count.stage, NO_CHAIN_LEFT, {})
            problem_reasons[NO_CHAIN_LEFT] += 1
        count.dropped = dict(sorted(chain_reasons.items()))
        count.problems_dropped = dict(sorted(problem_reasons.items()))
        count.items_out = int(self.chain_alive.sum())
        count.problems_out = int(self.problem_alive.sum())

    def _write_chains(self, members: np.ndarray, stage: str, reason: str, detail: dict[str, Any]) -> None:
        for chain_id, problem_id in self._ids.read_many(members):
            self._write_row("chain", chain_id, problem_id, stage, reason, detail)
        self.chain_alive[members] = False

    def _drop_problem(self, problem: int, stage: str, reason: str, detail: dict[str, Any]) -> None:
        problem_id = self.problem_ids[problem]
        self.problem_alive[problem] = False
        self._write_row("problem", problem_id, problem_id, stage, reason, detail)

    def _write_row(self, kind: str, item: str, problem_id: str | None, stage: str, reason: str, detail: Any) -> None:
        row = {"kind": kind, "id": item, "problem_id": problem_id, "stage": stage, "reason": reason, "detail": detail}
        self._rejects.write(json_line(row) + "\n")  # the row `Drop.to_dict()` gives
        self.dropped += kind in ("chain", "row")
        self.rejected_rows += 1

    def task_store(self) -> dict[str, str]:
        """What a shard task's item names to read the pool: the store, and the run's golds once decided."""
        return {"store": str(self.store.folder), **({"golds": self.golds} if self.golds else {})}

    def problem_rows(self, indices: Iterable[int]) -> Iterator[dict[str, Any]]:
        """Problem rows at ``indices`` (in that order) with the run's golds (`curation.pool.golds.with_gold`)."""
        with ProblemReader(self.store.folder, self.golds) as reader:
            yield from reader.read_many(indices)

    def chain_ids(self, indices: Iterable[int]) -> list[str]:
        return [row[0] for row in self._ids.read_many(indices)]

    def close_files(self) -> None:
        self._ids.close()

    def copy_rejects(self, path: Path) -> int:
        """Append an already written rejects file (ingest's rejected rows); returns its rows."""
        rows = 0
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                self._rejects.write(line)
                rows += 1
        self.dropped += rows
        self.rejected_rows += rows
        return rows

    def reconcile(self) -> dict[str, int]:
        """Check ``read == selected + dropped`` and that each stage starts where the previous one ended.

        Raises:
            AssertionError: The accounting does not add up (a bug, never bad input).
        """
        totals = {"read": self.read, "selected": int(self.chain_alive.sum()), "dropped": self.dropped}
        if self.read != totals["selected"] + self.dropped:
            raise AssertionError(f"curation funnel does not reconcile: {totals}")
        check_chained(self._pool_stages)
        return totals


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``); `curation.stages.run_pool` calls
    it after every stage.

    A stage's transients (Python objects, and numpy arrays under glibc's mmap threshold, which rises to the
    largest array freed so far) are freed into the heap, which keeps their pages: the next stage's peak then
    sits on top of the last one's. On bench/curation/sharded.py's duplicates pool at 1M chains the decontamination
    stage peaked 72 MB lower with the pages handed back after dedup (363 vs 435 MB). Nothing happens where the
    C library has no such call (macOS, musl).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # the process's own symbols: libc's
    except (AttributeError, OSError, TypeError):
        return None


# ------------------------------------------------------------------------------------------------ jobs


def mask_file(work_dir: Path, mask: np.ndarray) -> str:
    """``mask`` saved under a name from its content (tasks memory-map it; equal masks share a file)."""
    digest = hashlib.sha256(np.packbits(mask).tobytes() + str(len(mask)).encode()).hexdigest()[:16]
    path = work_dir / "masks" / f"{digest}.npy"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, mask)
        tmp.replace(path)
    return str(path)


def run_parts(
    state: RunState,
    context: StageContext,
    name: str,
    function: Callable[[int, Any], Iterable[Any]],
    params: Mapping[str, Any],
    table: str = "chains",
    rows: np.ndarray | None = None,
) -> ShardJob:
    """Run ``function`` over every part of ``table`` that holds an alive row; returns the finished job.

    ``params`` (JSON values: the stage's options, a context path) go into every task's item. ``rows``: a mask of
    the table's rows to visit instead of the alive ones (a stage's second pass over the rows its first one kept).
    """
    alive = rows if rows is not None else state.chain_alive if table == "chains" else state.problem_alive
    source = state.store.chains if table == "chains" else state.store.problems
    mask = mask_file(context.work_dir, alive)
    parts = [p for p in range(source.parts) if alive[source.bounds[p] : source.bounds[p + 1]].any()]
    items = tuple({**state.task_store(), "table": table, "part": p, "mask": mask, **params} for p in parts)
    return run_items(context, name, function, items)


def run_items(
    context: StageContext, name: str, function: Callable[[int, Any], Iterable[Any]], items: tuple[Any, ...]
) -> ShardJob:
    """Run one shard job (CPU: no GPUs reserved) on the run's executor and return it, finished."""
    job = ShardJob(name, function, items, str(context.work_dir / "jobs"))
    run_job(job, replace(context.executor, gpus_per_task=0))
    return job


def rows_of(job: ShardJob) -> Iterator[Any]:
    """A finished job's rows as the JSON lists its shards hold (`rows_as` names their fields)."""
    return read_shards(job)  # type: ignore[return-value]


R = TypeVar("R", bound=tuple)


def rows_as(job: ShardJob, row_type: type[R]) -> Iterator[R]:
    """A finished job's rows as ``row_type`` (a NamedTuple its task yields: JSON keeps it as a list)."""
    return (row_type(*row) for row in read_shards(job))


def options_dict(options: Any) -> dict[str, Any]:
    """A stage's options as JSON values for task items (tasks rebuild them with `eval.options.to_options`)."""
    return asdict(options)


# ------------------------------------------------------------------------------------------------ task plumbing


@lru_cache(maxsize=4)
def load_mask(path: str) -> np.ndarray:
    """A stage's alive mask (one bool per table row), memory-mapped."""
    return np.load(path, mmap_mode="r")


_KEPT_WRITTEN = 4  # the contexts a process keeps: those it wrote (`_WRITTEN`) and those it read (`load_context`)
_WRITTEN: dict[str, Any] = {}  # the contexts this process wrote, by path, oldest first


@lru_cache(maxsize=_KEPT_WRITTEN)
def load_context(path: str) -> Any:
    """What `write_context` pickled at ``path``: the object itself where this process wrote it (a local run's tasks
    run in the driver's process: unpickling a decontamination index there was ~0.1 s of CPU a task), else unpickled.
    Tasks read a context, never change it."""
    if path in _WRITTEN:
        return _WRITTEN[path]
    with open(path, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - written by this run's driver (write_context)


@lru_cache(maxsize=16)
def source_digest(*modules: str) -> str:
    """A digest of the named modules' source files, for the keys of files a driver caches in the work folder: a
    context built by other code is then never reused (job folders are keyed by their inputs only)."""
    digest = hashlib.sha256()
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            digest.update(Path(spec.origin).read_bytes())
    return digest.hexdigest()[:16]


def write_context(folder: Path, key: Any, value: Any) -> str:
    """Pickle ``value`` once to ``<folder>/context-<digest of key>.pkl``; returns the path."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = folder / f"context-{digest}.pkl"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)
    _WRITTEN.pop(str(path), None)
    _WRITTEN[str(path)] = value
    while len(_WRITTEN) > _KEPT_WRITTEN:
        _WRITTEN.pop(next(iter(_WRITTEN)))
    return str(path)


def alive_rows(item: dict[str, Any]) -> Iterator[tuple[int, Any]]:
    """``(index, row)`` for the rows of ``item['part']`` of ``item['table']`` that ``item['mask']`` marks alive
    (problem rows with the run's golds, `curation.pool.golds.with_gold`)."""
    table = Table.open(Path(item["store"]), item["table"])
    mask = load_mask(item["mask"])
    golds = item.get("golds") if item["table"] == "problems" else None
    with open(table.part_path(item["part"]), "rb") as handle:
        for index, line in enumerate(handle, start=table.bounds[item["part"]]):
            if mask[index]:
                row = json.loads(line)
                yield index, with_gold(index, row, golds) if golds else row


def write_rows_file(path: Path, rows: Iterator[Any]) -> None:
    """JSON lines of a driver-side input file for a job (written atomically)."""
    with atomic_writer(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), consumed lazily: a stream never held whole."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def chunked_pairs(first: np.ndarray, second: np.ndarray, size: int = 65_536) -> Iterator[tuple[int, int]]:
    """``zip(first, second)`` as Python ints, converted ``size`` at a time (never a list per element of both)."""
    for start in range(0, len(first), size):
        yield from zip(first[start : start + size].tolist(), second[start : start + size].tolist(), strict=True)


@contextmanager
def items_run(
    problems: Sequence[Problem],
    chains: Sequence[Chain],
    *,
    work_dir: Path | None = None,
    benchmark_specs: Mapping[str, BenchmarkSpec] | None = None,
    executor: ExecutorOptions | None = None,
    seed: int = 0,
) -> Iterator[tuple[RunState, StageContext]]:
    """A run over items held in memory (a bench's or a test's pool, a library caller's texts): their pool store,
    the state and its context, for calling stages directly. Drops go to ``<work_dir>/rejects.jsonl``; without a
    ``work_dir`` everything lives in a temporary folder removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="limo-items-") as scratch:
        folder = Path(work_dir) if work_dir is not None else Path(scratch)
        context = StageContext(seed, benchmark_specs or {}, folder, executor or ExecutorOptions())
        store = store_items(folder, "items", problems, chains, context.executor.shard_rows)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_writer(folder / "rejects.jsonl") as rejects:
            state = RunState(store, rejects)
            yield state, context
            state.close_files()
