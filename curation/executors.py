"""One executor layer for curation's sharded jobs: ``local``, ``ray`` or ``slurm``, through datatrove.

A `ShardJob` is a list of shard inputs and one picklable, deterministic function ``function(index, item)``
returning that shard's rows. Every method's sharded work is such a job on the run's executor (the pool stages
through `curation.runner.run_parts`, MAmmoTH2's recall through `curation.methods.mammoth2.recall.run_recall`).
Each shard runs through datatrove 0.10.1's per-rank runner (one datatrove task = one shard: its ``rank``),
started by an engine's own machinery; we manage no process ourselves. What we rely on in that version (pinned;
tests/test_datatrove_pin.py):

- completion markers: after a task's pipeline returns, datatrove writes ``completions/<rank:05d>`` under
  its logging folder, and every executor runs only the ranks without one, so a rerun after a kill does only
  the missing shards;
- local runs ranks in this process one after another (``workers=1``: no engine, the same markers; a small
  pool pays no start-up) or through datatrove's runner in the stdlib's `ProcessPoolExecutor` (forkserver):
  datatrove's own ``multiprocess`` pool waits forever for a worker the kernel killed, while the stdlib's
  pool breaks at once (`BrokenProcessPool`); the shards in flight then run again in a fresh pool,
  up to ``executor.retries`` deaths each, and then the run stops naming the shard;
- Ray needs a running instance (`run_job` calls ``ray.init(address=...)`` when none is connected and
  shuts down only an instance it started); each shard is a Ray task (``cpus_per_task`` CPUs,
  ``mem_per_cpu_gb`` x CPUs of memory) running in a Ray worker process, at most ``workers`` at a time. Ray
  resubmits a task whose process died (pre-emption, Ray's or the kernel's OOM killer) up to
  ``executor.retries`` times; then no further shard starts, those in flight finish and the run stops naming
  the shard. (datatrove's Ray executor forks the shard inside its actor and waits forever if only that
  process is killed, so we do not use it.) Workers import
  the shard function by module name, so its package must be installed on every node;
- Slurm pickles the executor (dill) into the logging folder and submits one job array (``sbatch``,
  ``srun launch_pickled_pipeline``); ``run()`` returns at submission, so `run_job` waits for the array
  to leave ``squeue``. Slurm requeues a task whose node fails or is pre-empted (``--requeue``); a task
  that fails or is killed on its own is not resubmitted: the next `run_job` submits only such shards.

Application errors are not retried anywhere: `run_job` checks the markers afterwards and raises
`ExecutorError` naming the shards without one and where their logs are.

Outputs: shard ``i`` goes to ``<output_dir>/<name>-<digest>/shard-<i:05d>.jsonl``, written to a temporary
file in the same folder, fsynced and renamed, so a killed task never leaves a partial shard. The digest
covers the job's name, function and inputs: changing any of them starts a fresh folder instead of reusing
stale markers; so does a change to the code (`code_digest`: every module of the packages shard functions
come from), so a rerun after an upgrade does not reuse shards an older version wrote. The same job gives
byte-identical shard files on every executor (the same code writes them).
The logging folder (datatrove's markers, logs, Slurm scripts) is ``<job folder>/datatrove``; on a cluster
``output_dir`` must be on a filesystem every node shares.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import logging
import multiprocessing
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.records import atomic_writer

log = logging.getLogger(__name__)
EXECUTORS = ("local", "ray", "slurm")
ShardFunction = Callable[[int, Any], Iterable[Mapping[str, Any]]]


class ExecutorError(RuntimeError):
    """A job that did not finish every shard, or an executor that cannot run here."""


@dataclass(frozen=True)
class ExecutorOptions:
    """Where and how a sharded job runs.

    Attributes:
        kind: ``local`` (no service needed), ``ray`` or ``slurm``.
        workers: Shards running at once (local processes, Ray actors, Slurm array throttle); -1: no limit.
        cpus_per_task: CPUs reserved per shard (Ray placement group, ``sbatch --cpus-per-task``).
        mem_per_cpu_gb: Memory per reserved CPU (Ray memory resource, ``sbatch --mem-per-cpu``; Slurm takes
            whole GB).
        gpus_per_task: GPUs per shard (rollout chunks on GPU nodes).
        ray_address: Ray cluster to connect to when none is connected (None: Ray's own discovery, which
            starts a local instance when it finds no cluster).
        partition: Slurm partition (required for ``slurm``).
        gpu_partition: Slurm partition for rollout chunks (None: ``partition``).
        time_limit: Slurm time limit per array task.
        qos: Slurm QOS; None leaves it to the cluster's default.
        sbatch_args: Extra ``#SBATCH`` directives, e.g. ``{"account": "..."}``.
        env_command: Shell line run before each Slurm task (None: put this interpreter's ``bin`` first on
            ``PATH``, so ``launch_pickled_pipeline`` comes from the same environment).
        poll_seconds: How often `run_job` asks ``squeue`` whether the array is done.
        shard_rows: Pool rows (chains, problems) per shard of a sharded curation run: one task each.
        retries: Times a shard whose process died (SIGKILL: the OOM killer, a pre-emption) runs again, on
            local (``workers`` > 1) and Ray; after that the run stops with one line naming the shard.
    """

    kind: str = "local"
    workers: int = 1
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    gpus_per_task: int = 0
    ray_address: str | None = None
    partition: str | None = None
    gpu_partition: str | None = None
    time_limit: str = "24:00:00"
    qos: str | None = None
    sbatch_args: dict[str, str] = field(default_factory=dict)
    env_command: str | None = None
    poll_seconds: float = 5.0
    shard_rows: int = 50_000
    retries: int = 2


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A digest of the source of every module in ``curation`` and ``eval`` (computed once per process)."""
    digest = hashlib.sha256()
    for package in ("curation", "eval"):
        root = Path(importlib.import_module(package).__file__ or "").parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ShardJob:
    """Shards to process: ``function(index, items[index])`` yields shard ``index``'s rows.

    ``function`` must be importable by name (a module-level function, so every engine can pickle it) and
    deterministic; ``items`` must be JSON-serialisable (their digest names the job folder).

    Raises:
        ExecutorError: A nested or lambda function, or an item JSON cannot encode.
    """

    name: str
    function: ShardFunction
    items: tuple[Any, ...]
    output_dir: str
    code: str = field(default_factory=code_digest)  # the driver's, carried to every task with the job

    def __post_init__(self) -> None:
        qualified = _qualified_name(self.function)
        if "<" in qualified:
            raise ExecutorError(f"{self.name}: {qualified} is not importable by name; use a module-level function")
        for index, item in enumerate(self.items):
            try:
                json.dumps(item)
            except (TypeError, ValueError) as err:
                raise ExecutorError(f"{self.name}: shard {index} input is not JSON-serialisable ({err})") from None

    @property
    def digest(self) -> str:
        key = {
            "name": self.name,
            "function": _qualified_name(self.function),
            "items": list(self.items),
            "code": self.code,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def folder(self) -> Path:
        return Path(self.output_dir) / f"{self.name}-{self.digest}"

    @property
    def logging_dir(self) -> Path:
        return self.folder / "datatrove"

    def shard_path(self, index: int) -> Path:
        return self.folder / f"shard-{index:05d}.jsonl"


@dataclass(frozen=True)
class JobResult:
    """What a run did: the shard files (in index order) and which shards ran now or were already done."""

    paths: tuple[Path, ...]
    ran: tuple[int, ...]
    skipped: tuple[int, ...]


def _qualified_name(function: Callable[..., Any]) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"


class ShardStep:
    """The datatrove pipeline step: run one shard (datatrove's ``rank``) and write its rows atomically.

    A plain callable ``(data, rank, world_size)``, as datatrove accepts; a class rather than a closure so
    that pickle, dill and cloudpickle all carry it to Ray actors and Slurm tasks by reference.
    """

    def __init__(self, job: ShardJob):
        self.job = job

    def __call__(self, data: Any, rank: int = 0, world_size: int = 1) -> None:
        if world_size != len(self.job.items):
            raise ExecutorError(f"{self.job.name}: executor has {world_size} tasks for {len(self.job.items)} shards")
        rows = self.job.function(rank, self.job.items[rank])
        write_rows_atomic(self.job.shard_path(rank), rows)

    def __repr__(self) -> str:
        return f"ShardStep({self.job.name}: {_qualified_name(self.job.function)} over {len(self.job.items)} shards)"


def write_rows_atomic(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Stream rows as JSONL into ``path`` atomically (`eval.records.atomic_writer`); returns the row count."""
    count = 0
    with atomic_writer(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_shards(job: ShardJob) -> Iterator[dict[str, Any]]:
    """Every row of a finished job, shard by shard in index order (streamed, one line at a time)."""
    for index in range(len(job.items)):
        with open(job.shard_path(index), encoding="utf-8") as handle:
            for line in handle:
                yield json.loads(line)


def completed_shards(job: ShardJob) -> set[int]:
    """Shards whose datatrove completion marker exists."""
    markers = job.logging_dir / "completions"
    if not markers.is_dir():
        return set()
    return {int(p.name) for p in markers.iterdir() if p.name.isdigit()} & set(range(len(job.items)))


def run_job(job: ShardJob, options: ExecutorOptions) -> JobResult:
    """Run every shard without a completion marker on ``options.kind``; return when all are done.

    Raises:
        ExecutorError: Unknown executor, missing engine or settings, or shards left without a marker
            (the message names them and the log folder).
    """
    if options.kind not in EXECUTORS:
        raise ExecutorError(f"unknown executor {options.kind!r} (known: {', '.join(EXECUTORS)})")
    if not job.items:
        return JobResult((), (), ())
    done_before = completed_shards(job)
    pending = tuple(i for i in range(len(job.items)) if i not in done_before)
    if pending:
        log.info("%s: %d of %d shards to run on %s", job.name, len(pending), len(job.items), options.kind)
        _remove_partial_outputs(job, pending)
        try:
            _RUNNERS[options.kind](job, options)
        except ExecutorError:
            raise
        except Exception as err:  # local raises a shard's own error; say which shards it left undone
            raise ExecutorError(f"{_unfinished(job, options)}: {type(err).__name__}: {err}") from err
    if len(completed_shards(job)) < len(job.items):
        raise ExecutorError(_unfinished(job, options))
    paths = tuple(job.shard_path(i) for i in range(len(job.items)))
    return JobResult(paths, pending, tuple(sorted(done_before)))


def _remove_partial_outputs(job: ShardJob, pending: Iterable[int]) -> None:
    """Delete temporaries a killed task left behind (one driver per job at a time, as datatrove assumes)."""
    for index in pending:
        for partial in job.folder.glob(f".{job.shard_path(index).name}.*.tmp"):
            partial.unlink(missing_ok=True)


def _unfinished(job: ShardJob, options: ExecutorOptions) -> str:
    missing = sorted(set(range(len(job.items))) - completed_shards(job))
    return f"{job.name}: shards {missing} did not finish on {options.kind} ({_logs(job)}); a rerun runs only them"


def _logs(job: ShardJob) -> str:
    """Where the shards' logs are; a shard run in this process (``workers=1``) writes none, its error follows."""
    logs = job.logging_dir / "logs"
    return f"logs under {logs}" if logs.is_dir() else "run in this process, so no log files: the error follows"


def _cluster_args(job: ShardJob, options: ExecutorOptions) -> dict[str, Any]:
    """The arguments of datatrove's Slurm executor that come from the job."""
    return {
        "pipeline": [ShardStep(job)],
        "tasks": len(job.items),
        "workers": options.workers,
        "logging_dir": str(job.logging_dir),
        "cpus_per_task": options.cpus_per_task,
        "gpus_per_task": options.gpus_per_task,
    }


def run_shard_task(job: ShardJob, rank: int) -> None:
    """Run shard ``rank`` through datatrove's per-rank runner (its task log, stats and completion marker).

    What a local pool process and a Ray task execute. A ``started/<rank>`` marker comes first, so that the
    driver knows which shards were in flight when a process died. ``_run_for_rank`` is private: datatrove's public
    way to run one rank (``local_tasks=1, local_rank_offset=rank``) starts a manager process per shard and has every
    shard rewrite the job's one ``stats.json``; pyproject.toml pins datatrove, and tests/test_datatrove_pin.py fails
    (saying what to re-check) when the version or this method's signature changes.
    """
    datatrove = _import_engine("datatrove.executor", "datatrove")
    started = job.logging_dir / "started" / f"{rank:05d}"
    started.parent.mkdir(parents=True, exist_ok=True)
    started.touch()
    executor = datatrove.LocalPipelineExecutor(
        [ShardStep(job)], tasks=len(job.items), workers=1, logging_dir=str(job.logging_dir)
    )
    executor._run_for_rank(rank, local_rank=1)  # local_rank 1: the task's log goes to its file only


def _killed(job: ShardJob, options: ExecutorOptions, rank: int, times: int) -> ExecutorError:
    return ExecutorError(
        f"{job.name}: shard {rank} was killed {times} times (its process died without an error: SIGKILL, e.g. "
        f"the OOM killer) and is not retried again (executor.retries={options.retries}); {_logs(job)}; a rerun "
        "runs only the unfinished shards"
    )


def _run_local_pool(job: ShardJob, options: ExecutorOptions) -> None:
    """``workers`` > 1: the stdlib's process pool, which notices a killed worker (datatrove's waits forever).

    A dead worker breaks the pool, and the pool ends the other shards in flight too. Each of those then
    runs alone, so that the one whose process dies is known for sure; it may die ``retries`` more times
    before the run stops naming it. The shards left run in a fresh pool.
    """
    deaths: dict[int, int] = {}
    unexplained = 0  # breaks with no shard in flight (a worker died before its shard started)
    while todo := [i for i in range(len(job.items)) if i not in completed_shards(job)]:
        workers = min(len(todo), options.workers if options.workers > 0 else len(todo))
        in_flight = _pool_pass(job, todo, workers)
        unexplained += in_flight == [None]
        if unexplained > options.retries:
            raise ExecutorError(f"{_unfinished(job, options)}: worker processes died before starting a shard")
        for rank in [r for r in in_flight if r is not None]:
            while rank not in completed_shards(job):
                if not _pool_pass(job, [rank], 1):
                    continue  # it ran to the end alone (an error of its own is raised)
                deaths[rank] = deaths.get(rank, 0) + 1
                log.warning(
                    "%s: shard %d was killed again (%d of %d retries)", job.name, rank, deaths[rank], options.retries
                )
                if deaths[rank] >= options.retries:
                    raise _killed(job, options, rank, deaths[rank] + 1)


def _pool_pass(job: ShardJob, ranks: list[int], workers: int) -> list[int | None]:
    """Run ``ranks`` in a fresh pool; the shards in flight when a worker died ([] when none did, [None] when
    one died with no shard started).

    A shard's own error cancels the shards not yet started and is raised once the running ones end.
    """
    _remove_partial_outputs(job, ranks)  # a killed shard's temporary file
    for rank in ranks:
        (job.logging_dir / "started" / f"{rank:05d}").unlink(missing_ok=True)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
        futures = [pool.submit(run_shard_task, job, rank) for rank in ranks]
        try:
            for future in as_completed(futures):
                future.result()
        except BrokenProcessPool:
            done = completed_shards(job)
            started: list[int | None] = [
                i for i in ranks if (job.logging_dir / "started" / f"{i:05d}").exists() and i not in done
            ]
            return started or [None]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return []


def _run_local(job: ShardJob, options: ExecutorOptions) -> None:
    if options.workers != 1:
        _run_local_pool(job, options)
        return
    _run_in_process(job)


def _run_in_process(job: ShardJob) -> None:
    """``workers`` == 1: each unfinished shard in this process, in order, with no engine and no start-up.

    A small pool (CHAMP: about ten jobs of one shard) would otherwise pay datatrove's per-job set-up (its
    import, executor file, task log and statistics: about 60 ms a job) for work of a few milliseconds. The
    completion marker is datatrove's (``completions/<rank>``), so a run resumed on any executor skips what
    this one finished; a shard's own error propagates with its traceback.
    """
    markers = job.logging_dir / "completions"
    markers.mkdir(parents=True, exist_ok=True)
    step = ShardStep(job)
    for rank in range(len(job.items)):
        marker = markers / f"{rank:05d}"
        if not marker.exists():
            step(None, rank, len(job.items))
            marker.touch()


def _run_ray(job: ShardJob, options: ExecutorOptions) -> None:
    ray = _import_engine("ray", "ray")
    _import_engine("datatrove.executor", "datatrove")  # each task runs its shard through datatrove's runner

    started_here = not ray.is_initialized()
    if started_here:
        handler = signal.getsignal(signal.SIGTERM)
        ray.init(address=options.ray_address, include_dashboard=False)
        if callable(handler):  # ray.init installs its own SIGTERM handler (log, die): keep the caller's stop
            signal.signal(signal.SIGTERM, handler)
    try:
        _run_ray_tasks(ray, job, options)
    finally:
        if started_here:
            ray.shutdown()


def _run_ray_tasks(ray: Any, job: ShardJob, options: ExecutorOptions) -> None:
    """One Ray task per unfinished shard, at most ``workers`` at a time, each in a Ray worker process.

    Ray resubmits a task whose worker process died up to ``retries`` times (``max_retries``: system
    failures only; a shard's own error is not retried); a shard still dying after that stops the run: no
    further shard starts, the ones in flight finish (their work is kept for the rerun), then the run stops
    naming it. A shard's own error lets the others finish too (`run_job` names it).
    """
    from ray.exceptions import RayTaskError, TaskCancelledError  # deferred: Ray is an optional engine

    task = ray.remote(run_shard_task).options(
        max_retries=options.retries,
        retry_exceptions=False,
        num_cpus=options.cpus_per_task,
        num_gpus=options.gpus_per_task,
        memory=int(options.mem_per_cpu_gb * options.cpus_per_task * 2**30),
    )
    queue = [i for i in range(len(job.items)) if i not in completed_shards(job)]
    limit = options.workers if options.workers > 0 else len(queue)
    running: dict[Any, int] = {}
    killed: ExecutorError | None = None
    while queue or running:
        while queue and len(running) < limit:
            rank = queue.pop(0)
            running[task.remote(job, rank)] = rank
        finished, _ = ray.wait(list(running), num_returns=1)
        rank = running.pop(finished[0])
        try:
            ray.get(finished[0])
        except (RayTaskError, TaskCancelledError) as err:
            log.warning("%s: shard %d failed: %s", job.name, rank, str(err).splitlines()[0])
        except ray.exceptions.RayError:  # the worker process died on every try: start nothing more
            log.warning("%s: shard %d was killed on every try; waiting for the shards in flight", job.name, rank)
            killed = killed or _killed(job, options, rank, options.retries + 1)
            queue.clear()
    if killed is not None:
        raise killed


def _run_slurm(job: ShardJob, options: ExecutorOptions) -> None:
    datatrove = _import_engine("datatrove.executor", "datatrove")
    if not options.partition:
        raise ExecutorError("executor slurm needs a partition (executor.partition=<name>)")
    executor = datatrove.SlurmPipelineExecutor(
        **_cluster_args(job, options),
        partition=options.partition,
        time=options.time_limit,
        qos=options.qos or "",
        mem_per_cpu_gb=max(1, round(options.mem_per_cpu_gb)),
        job_name=f"limo-{job.name}",
        env_command=options.env_command or f"export PATH={Path(sys.executable).parent}:$PATH",
        # a stats job waits on the array with afterok: let Slurm cancel it when a task failed
        sbatch_args={"kill-on-invalid-dep": "yes", **options.sbatch_args},
    )
    executor.run()
    if executor.job_id not in (None, -1):
        _wait_for_slurm(str(executor.job_id), options.poll_seconds)


SQUEUE_TRIES = 5  # squeue failures in a row before the wait gives up (a busy controller answers nothing at times)


def _wait_for_slurm(job_id: str, poll_seconds: float) -> None:
    """Block until the array ``job_id`` (and the arrays it chains after) has left the queue. A failed ``squeue`` is
    asked again, said on stderr, up to `SQUEUE_TRIES` times in a row: a loaded controller once answered nothing,
    status 1, while the job ran on."""
    failures = 0
    while True:
        listed = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i"], capture_output=True, text=True)
        if listed.returncode != 0 and "Invalid job id" not in listed.stderr:
            failures += 1
            reason = listed.stderr.strip() or f"exit status {listed.returncode}, nothing on stderr"
            if failures >= SQUEUE_TRIES:
                raise ExecutorError(f"squeue failed for job {job_id} {failures} times in a row: {reason}")
            print(f"squeue failed for job {job_id} ({reason}): asking again", file=sys.stderr)
            time.sleep(max(poll_seconds, 1.0))
            continue
        failures = 0
        if not listed.stdout.strip():
            return
        time.sleep(poll_seconds)


def _import_engine(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ExecutorError(f"the executors need {package}: pip install -e '.[cluster]' ({err})") from None


_RUNNERS: dict[str, Callable[[ShardJob, ExecutorOptions], None]] = {
    "local": _run_local,
    "ray": _run_ray,
    "slurm": _run_slurm,
}


def shard_ranges(total: int, shards: int) -> list[tuple[int, int]]:
    """Cut ``range(total)`` into ``shards`` contiguous ``(start, stop)`` ranges of near-equal size."""
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    bounds = [total * i // shards for i in range(shards + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(shards) if bounds[i] < bounds[i + 1]]
