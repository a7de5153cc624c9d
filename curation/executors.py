"""One executor layer for curation's sharded jobs: ``local``, ``ray`` or ``slurm``, through datatrove.

A `ShardJob` is a list of shard inputs and one picklable, deterministic function ``function(index, item)``
returning that shard's rows. `run_job` turns the job into a datatrove pipeline of one step and hands it to
datatrove 0.10.1's `LocalPipelineExecutor`, `RayPipelineExecutor` or `SlurmPipelineExecutor` (one datatrove
task = one shard: its ``rank``); we start no process of our own. What we rely on in that version:

- completion markers: after a task's pipeline returns, datatrove writes ``completions/<rank:05d>`` under
  its logging folder, and with ``skip_completed`` (the default) every executor runs only the ranks without
  one, so a rerun after a kill does only the missing shards;
- local runs ranks in this process (``workers=1``) or in a ``multiprocess`` pool (forkserver);
- Ray needs a running instance (`run_job` calls ``ray.init(address=...)`` when none is connected and
  shuts down only an instance it started); each task is an actor in a placement group of
  ``cpus_per_task`` CPUs and ``mem_per_cpu_gb`` x CPUs of memory, and a task whose actor dies
  (pre-emption, Ray's OOM killer) is resubmitted up to 3 times by datatrove. The shard itself runs in a
  process forked inside the actor: if only that process is killed, datatrove waits for it forever (its
  ``time=`` limit, meant for this, raises a ``KeyError`` in 0.10.1, so we do not offer it). Workers
  import the shard function by module name, so its package must be installed on every node;
- Slurm pickles the executor (dill) into the logging folder and submits one job array (``sbatch``,
  ``srun launch_pickled_pipeline``); ``run()`` returns at submission, so `run_job` waits for the array
  to leave ``squeue``. Slurm requeues a task whose node fails or is pre-empted (``--requeue``); a task
  that fails or is killed on its own is not resubmitted: the next `run_job` submits only such shards.

Application errors are not retried anywhere: `run_job` checks the markers afterwards and raises
`ExecutorError` naming the shards without one and where their logs are.

Outputs: shard ``i`` goes to ``<output_dir>/<name>-<digest>/shard-<i:05d>.jsonl``, written to a temporary
file in the same folder, fsynced and renamed, so a killed task never leaves a partial shard. The digest
covers the job's name, function and inputs: changing any of them starts a fresh folder instead of reusing
stale markers. The same job gives byte-identical shard files on every executor (the same code writes them).
The logging folder (datatrove's markers, logs, Slurm scripts) is ``<job folder>/datatrove``; on a cluster
``output_dir`` must be on a filesystem every node shares.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
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
        time_limit: Slurm time limit per array task.
        qos: Slurm QOS; None leaves it to the cluster's default.
        sbatch_args: Extra ``#SBATCH`` directives, e.g. ``{"account": "..."}``.
        env_command: Shell line run before each Slurm task (None: put this interpreter's ``bin`` first on
            ``PATH``, so ``launch_pickled_pipeline`` comes from the same environment).
        poll_seconds: How often `run_job` asks ``squeue`` whether the array is done.
    """

    kind: str = "local"
    workers: int = 1
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2.0
    gpus_per_task: int = 0
    ray_address: str | None = None
    partition: str | None = None
    time_limit: str = "24:00:00"
    qos: str | None = None
    sbatch_args: dict[str, str] = field(default_factory=dict)
    env_command: str | None = None
    poll_seconds: float = 5.0


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
        key = {"name": self.name, "function": _qualified_name(self.function), "items": list(self.items)}
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
    return (
        f"{job.name}: shards {missing} did not finish on {options.kind} (logs under {job.logging_dir / 'logs'}); "
        "a rerun runs only them"
    )


def _cluster_args(job: ShardJob, options: ExecutorOptions) -> dict[str, Any]:
    """The arguments datatrove's Ray and Slurm executors share."""
    return {
        "pipeline": [ShardStep(job)],
        "tasks": len(job.items),
        "workers": options.workers,
        "logging_dir": str(job.logging_dir),
        "cpus_per_task": options.cpus_per_task,
        "gpus_per_task": options.gpus_per_task,
    }


def _run_local(job: ShardJob, options: ExecutorOptions) -> None:
    datatrove = _import_engine("datatrove.executor", "datatrove")
    datatrove.LocalPipelineExecutor(
        [ShardStep(job)], tasks=len(job.items), workers=options.workers, logging_dir=str(job.logging_dir)
    ).run()


def _run_ray(job: ShardJob, options: ExecutorOptions) -> None:
    ray = _import_engine("ray", "ray")
    datatrove = _import_engine("datatrove.executor.ray", "datatrove")

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=options.ray_address, include_dashboard=False)
    try:
        datatrove.RayPipelineExecutor(**_cluster_args(job, options), mem_per_cpu_gb=options.mem_per_cpu_gb).run()
    finally:
        if started_here:
            ray.shutdown()


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


def _wait_for_slurm(job_id: str, poll_seconds: float) -> None:
    """Block until the array ``job_id`` (and the arrays it chains after) has left the queue."""
    while True:
        listed = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i"], capture_output=True, text=True)
        if listed.returncode != 0 and "Invalid job id" not in listed.stderr:
            raise ExecutorError(f"squeue failed for job {job_id}: {listed.stderr.strip()}")
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
