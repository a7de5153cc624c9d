"""A persistent pool of grading processes for batches that must never stall: the RL reward's grader.

`eval.grading.grader.grade` bounds every symbolic step itself (size limits, then a hard limit on the slow path); this
pool is the second line of defence. It keeps ``workers`` processes alive between batches (forks of multiprocessing's
fork server, a fresh interpreter that imported the grader once; not forks of the trainer, which holds threads a fork
would copy: `worker_context`), hands them pairs one by one, and watches every pair against a
deadline. A worker that overruns it is killed with its whole process group (the grader's symbolic subprocess
included) and replaced, the pair gets a ``timeout`` verdict, and the other pairs go on on the other workers,
so one pathological pair costs one deadline, not the batch.

The deadline counts the worker's own CPU time (``deadline_s``, read from ``/proc``), so a pair that waits for a
core on a loaded machine is not killed for it and verdicts do not depend on what else runs; a wall-clock
backstop (``wall_deadline_s``) still ends a worker that blocks without computing. Where ``/proc`` is absent
the CPU rule falls back to wall-clock time. Waiting on the grader's own symbolic subprocess uses no CPU in the
worker: that step keeps its own limit (`eval.grading.timeouts`).

Each worker has one pair queued behind the one it grades, so it never waits for the parent between pairs; a pair
queued behind one that overruns goes to another worker. A worker that dies on a pair, or a grading function that
raises, gives that pair an ``unparseable`` verdict with the reason and counts as an error. Nothing here evaluates
text: workers call `eval.grading.grader.grade` (or the ``grade_fn`` a caller injects: tests use it to simulate a wedged
grader, since the real one has no input that hangs). Imports no torch.
"""

from __future__ import annotations

import os
import signal
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from eval.grading.grader import Verdict, grade, worker_context
from eval.grading.options import GradeOptions
from eval.grading.timeouts import _cpu_seconds
from eval.niceness import new_session

GradeFn = Callable[..., Verdict]  # called as grade_fn(gold, response, timeout_s=..., problem=...)
Triple = tuple[str, str] | tuple[str, str, str | None]
_POLL_S = 0.02
_MAX_STARTUP_FAILURES = 3
_DEPTH = 2  # pairs in flight per worker: the next one is already there when a verdict goes back
_STARTUP_S = 120.0  # a worker (or the fork server) imports sympy and the grader; on a loaded machine that can be slow


@dataclass(frozen=True)
class BatchResult:
    """One batch's verdicts (in input order) and what grading it cost.

    Attributes:
        verdicts: One `Verdict` per pair.
        seconds: Wall-clock time of the batch, from the moment a worker was ready (start-up is not grading).
        timeouts: Pairs whose worker overran the deadline and was replaced (verdict ``timeout``).
        errors: Pairs whose worker died or whose grading raised (verdict ``unparseable``, the reason says which).
        slowest_s: Wall-clock seconds of the slowest pair, from hand-out to verdict.
    """

    verdicts: list[Verdict]
    seconds: float
    timeouts: int = 0
    errors: int = 0
    slowest_s: float = 0.0

    @property
    def pairs_per_s(self) -> float:
        return len(self.verdicts) / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    started: float = field(default_factory=time.monotonic)
    jobs: deque[int] = field(default_factory=deque)  # pairs sent, in order; the first is being graded
    job_wall: float = 0.0  # when the first one started (its predecessor's verdict came back)
    job_cpu: float | None = None

    def start_head(self) -> None:
        self.job_wall, self.job_cpu = time.monotonic(), _cpu_seconds(self.process.pid)


class GraderPool:
    """``workers`` persistent grading processes with a per-pair deadline; use as a context manager.

    Args:
        workers: Processes to keep.
        timeout_s: The grader's own limit for its slow symbolic step (`eval.grading.grader.grade`'s ``timeout_s``).
        deadline_s: CPU seconds a worker may spend on one pair before it is killed and replaced; default
            ``timeout_s + 1`` (what a bounded `grade` call needs at most).
        wall_deadline_s: Wall-clock backstop per pair (a worker blocked without computing); default
            ``max(30, 10 * deadline_s)``.
        grade_fn: The grading function workers call, ``grade_fn(gold, response, timeout_s=, problem=)``;
            default `eval.grading.grader.grade`. Must be importable by name (workers start from a fresh
            interpreter): tests inject a function that hangs on a marker to simulate a wedged grader.
        options: Comparison options (`eval.grading.options.GradeOptions`) every pair is graded under, passed to
            ``grade_fn`` as ``options=``; None: the grader's defaults (and ``grade_fn`` is called without it).
    """

    def __init__(
        self,
        workers: int = 2,
        timeout_s: float = 2.0,
        *,
        deadline_s: float | None = None,
        wall_deadline_s: float | None = None,
        grade_fn: GradeFn | None = None,
        options: GradeOptions | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"GraderPool: workers must be at least 1, got {workers}")
        self.timeout_s = float(timeout_s)
        self.deadline_s = float(deadline_s if deadline_s is not None else timeout_s + 1.0)
        self.wall_deadline_s = float(
            wall_deadline_s if wall_deadline_s is not None else max(30.0, 10 * self.deadline_s)
        )
        self._grade_fn = grade_fn or grade
        self.options = options
        self._context = worker_context()
        self._workers = [self._spawn() for _ in range(workers)]
        self.replaced = 0  # workers killed or dead and replaced over the pool's life
        self._startup_failures = 0
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)

    def __enter__(self) -> GraderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def workers(self) -> int:
        return len(self._workers)

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(theirs, self._grade_fn, self.options), daemon=True)
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def grade_batch(self, triples: Iterable[Triple]) -> BatchResult:
        """Grade ``(gold, response[, problem])`` pairs; returns once every pair has a verdict.

        Raises:
            RuntimeError: The pool is closed, or no worker could start within two minutes.
        """
        if self._finalizer.alive is False:
            raise RuntimeError("GraderPool: the pool is closed")
        jobs = [(t[0], t[1], t[2] if len(t) > 2 else None) for t in triples]  # type: ignore[misc]
        self.wait_ready()
        run = _Batch(jobs)
        while run.pending or any(w.jobs for w in self._workers):
            self._dispatch(run)
            self._collect(run, wait([w.conn for w in self._workers], timeout=_POLL_S))
            self._enforce_deadlines(run)
        return run.result()

    def wait_ready(self) -> None:
        """Block until at least one worker has started (its imports are not a batch's grading time).

        Raises:
            RuntimeError: No worker started within two minutes, or workers keep dying before they start.
        """
        while not any(w.ready for w in self._workers):
            self._collect(_Batch([]), wait([w.conn for w in self._workers], timeout=_POLL_S))
            if all(time.monotonic() - w.started > _STARTUP_S for w in self._workers):
                raise RuntimeError(f"GraderPool: no grading worker started within {_STARTUP_S:.0f}s")

    def _dispatch(self, run: _Batch) -> None:
        for worker in self._workers:
            while worker.ready and run.pending and len(worker.jobs) < _DEPTH:
                index = run.pending.popleft()
                gold, response, problem = run.jobs[index]
                try:
                    worker.conn.send((index, gold, response, problem, self.timeout_s))
                except OSError:  # it died on the pair it holds: `_collect` reads its EOF and replaces it
                    run.pending.appendleft(index)
                    break
                worker.jobs.append(index)
                if len(worker.jobs) == 1:
                    worker.start_head()

    def _collect(self, run: _Batch, readable: Sequence[Any]) -> None:
        for position, worker in enumerate(self._workers):
            if worker.conn not in readable:
                continue
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                verdict = _died(worker)
                self._check_startup(worker)
                self._replace(position, run, verdict, error=True)
                continue
            if message == "ready":
                worker.ready = True
                continue
            index, verdict = message
            worker.jobs.popleft()  # verdicts come back in the order the pairs were sent
            run.done(index, verdict, time.monotonic() - worker.job_wall, error=verdict.reason.startswith(_RAISED))
            if worker.jobs:
                worker.start_head()

    def _check_startup(self, worker: _Worker) -> None:
        """Raise when workers keep dying before they are ready (a ``grade_fn`` that cannot be imported, say)."""
        if worker.ready:
            return
        self._startup_failures += 1
        if self._startup_failures >= _MAX_STARTUP_FAILURES:
            code = worker.process.exitcode
            raise RuntimeError(
                f"GraderPool: grading workers keep dying before they start (last exit code {code}); workers start "
                "from a fresh interpreter (the fork server or spawn), so a script that starts a pool needs an "
                "`if __name__ == '__main__':` guard"
            )

    def _enforce_deadlines(self, run: _Batch) -> None:
        now = time.monotonic()
        for position, worker in enumerate(self._workers):
            if not worker.jobs:
                continue
            wall = now - worker.job_wall
            cpu = _cpu_seconds(worker.process.pid)
            spent = cpu - worker.job_cpu if cpu is not None and worker.job_cpu is not None else wall
            if spent > self.deadline_s or wall > self.wall_deadline_s:
                reason = (
                    f"grader pool: no verdict within {self.deadline_s:g}s of CPU time "
                    f"({wall:.1f}s wall-clock); the worker was killed and replaced"
                )
                self._replace(position, run, Verdict("timeout", False, None, reason), error=False)

    def _replace(self, position: int, run: _Batch, verdict: Verdict, *, error: bool) -> None:
        worker = self._workers[position]
        if worker.jobs:
            run.done(worker.jobs[0], verdict, time.monotonic() - worker.job_wall, error=error, timeout=not error)
            run.pending.extendleft(reversed(list(worker.jobs)[1:]))  # queued behind the stuck pair: regraded elsewhere
        _kill(worker)
        self._workers[position] = self._spawn()
        self.replaced += 1

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        deadline = time.monotonic() + 2.0
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        self._finalizer()


_RAISED = "grader pool: grading raised"


class _Batch:
    """The pairs of one `GraderPool.grade_batch` call and what came back for them."""

    def __init__(self, jobs: list[tuple[str, str, str | None]]) -> None:
        self.jobs = jobs
        self.pending: deque[int] = deque(range(len(jobs)))
        self.verdicts: list[Verdict | None] = [None] * len(jobs)
        self.started = time.perf_counter()
        self.timeouts = self.errors = 0
        self.slowest = 0.0

    def done(self, index: int, verdict: Verdict, seconds: float, *, error: bool, timeout: bool = False) -> None:
        self.verdicts[index] = verdict
        self.slowest = max(self.slowest, seconds)
        self.errors += error
        self.timeouts += timeout

    def result(self) -> BatchResult:
        seconds = time.perf_counter() - self.started
        verdicts = [v for v in self.verdicts if v is not None]
        return BatchResult(verdicts, seconds, self.timeouts, self.errors, self.slowest)


def _died(worker: _Worker) -> Verdict:
    worker.process.join(0.5)
    code = worker.process.exitcode
    return Verdict(
        "unparseable", False, None, f"grader pool: the worker died (exit code {code}) on this pair; replaced"
    )


def _kill(worker: _Worker) -> None:
    """Kill a worker and its process group (the grader's symbolic subprocess goes with it)."""
    pid = worker.process.pid
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        worker.process.kill()
    worker.process.join(5.0)
    worker.conn.close()


def _kill_all(workers: list[_Worker]) -> None:
    for worker in workers:
        if worker.process.is_alive():
            _kill(worker)
        else:
            worker.conn.close()


def _serve(conn: Connection, grade_fn: GradeFn, options: GradeOptions | None = None) -> None:
    """A worker's loop: its own process group, a warm grader, then one verdict per request until ``None``
    (each graded under ``options`` when given)."""
    extra = {} if options is None else {"options": options}
    new_session()  # the pool kills the group: a symbolic subprocess started by the grader dies with its worker
    grade("1", "1")  # imports and caches warm before the first timed pair
    conn.send("ready")
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if request is None:
            return
        index, gold, response, problem, timeout_s = request
        try:
            verdict = grade_fn(gold, response, timeout_s=timeout_s, problem=problem, **extra)
        except Exception as exc:  # a grading function that raises costs this pair, not the worker
            verdict = Verdict("unparseable", False, None, f"{_RAISED} {type(exc).__name__}: {str(exc)[:200]}")
        conn.send((index, verdict))
