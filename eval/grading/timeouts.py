"""Hard time limits for grading: a deadline for the whole call in the calling thread, and a worker subprocess for
the slow symbolic path.

**The call's deadline** (`run_bounded`). Size limits bound every in-process step (see `plain_parse`,
`numeric`), so the deadline should never fire; it is the guarantee for a path nobody has found yet. One daemon
watchdog thread per process holds the deadlines of the calls in progress; when one passes, it raises
`DeadlineExceeded` in that call's thread (``PyThreadState_SetAsyncExc``), which works in any thread and any
process (SIGALRM only works in the main thread of the main process) and costs nothing until it fires: arming
and settling a deadline is a dictionary entry under a lock. The exception arrives at the thread's next bytecode
boundary, so a single long C call (a huge integer product, a regular expression) is not interrupted: those are
what the size limits are for. It is a `BaseException`, so ``except Exception`` handlers inside sympy do not
swallow it, and it is raised again every `REFIRE_S` until the guarded call has caught it (an ``except:`` that
swallowed one cannot swallow the next); `run_bounded` turns it into `CallTimeout`, after making sure no stray
one is pending. While the thread waits for the worker subprocess, the watchdog leaves it alone (`paused`): the
worker has its own limit, and an exception in the middle of the pipe protocol would desynchronise it.

**The worker** (`SymbolicWorker`, `WorkerPool`). A persistent child process speaking JSON lines over
stdin/stdout, started lazily; a thread that needs one while the others are busy gets its own, so threads never
queue behind each other's limits. The limit counts the worker's own CPU time (read from ``/proc``), not
wall-clock time: on a loaded machine a pair waits for a core without using up its budget, so a verdict does not
depend on what else runs. A wall-clock deadline (the caller's, or `WALL_BACKSTOP_FACTOR` times the limit) ends a
worker that blocks or starves, and also bounds the wait for a worker still starting (which is then left to
finish starting for the next call rather than killed). Where ``/proc`` is absent the limit is wall-clock time.

**Which clock ended a call** is in its reason: every wall-clock expiry says `WALL_CLOCK`, a worker that spent its CPU
budget says "CPU time". Only the first depends on what else runs; `eval.grading.grader.regrade_late` grades such pairs
again inside `wall_backstop`, where a call's wall-clock deadline is `WALL_BACKSTOP_FACTOR` times its limit: the
worker's CPU budget decides the retry, so a pair's verdict does not depend on how loaded the machine was.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

_STARTUP_TIMEOUT_S = 60.0
WALL_BACKSTOP_FACTOR = 20.0
REFIRE_S = 0.25
_POLL_S = 0.05
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
WALL_CLOCK = "(wall clock)"  # in the reason of every timeout a wall-clock deadline caused (load-dependent)
T = TypeVar("T")


class WorkerTimeout(TimeoutError):
    """The worker did not answer within the limit; it has been killed (or is still starting)."""


class CallTimeout(TimeoutError):
    """A `run_bounded` call ran past its deadline and was interrupted."""


class DeadlineExceeded(BaseException):
    """Raised asynchronously in a thread whose `run_bounded` call ran past its deadline (never escapes it)."""


# -- the call's deadline ------------------------------------------------------------------------------------------
try:  # CPython's C API; elsewhere the size limits alone bound a call (announced by ASYNC_DEADLINES)
    _RAISE_IN = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
        ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
    )
    _CLEAR_IN = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
        ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
    )
    ASYNC_DEADLINES = True
except (AttributeError, OSError):  # pragma: no cover - not CPython
    ASYNC_DEADLINES = False


class _Guard:
    """One armed deadline. `caught` is set by a plain attribute store (no bytecode boundary before it)."""

    __slots__ = ("thread_id", "deadline", "next_fire", "lock", "armed", "paused", "caught", "fired")

    def __init__(self, deadline: float):
        self.thread_id = threading.get_ident()
        self.deadline = self.next_fire = deadline
        self.lock = threading.Lock()
        self.armed, self.paused, self.caught, self.fired = True, False, False, 0


class _Watchdog:
    """The per-process thread that fires deadlines (started on first use, again in a forked child)."""

    def __init__(self) -> None:
        self._guards: dict[int, _Guard] = {}
        self._wake = threading.Condition(threading.Lock())
        self._sleeping_until = float("inf")
        self._pid = -1

    def arm(self, limit_s: float) -> _Guard:
        guard = _Guard(time.monotonic() + limit_s)
        with self._wake:
            if self._pid != os.getpid():
                self._start()
            self._guards[id(guard)] = guard
            if guard.next_fire < self._sleeping_until:
                self._wake.notify()
        return guard

    def settle(self, guard: _Guard) -> None:
        """Disarm `guard` and clear an exception fired at its thread but not delivered yet."""
        with guard.lock:
            guard.armed = False
            if guard.fired:
                _CLEAR_IN(guard.thread_id, None)
        with self._wake:
            self._guards.pop(id(guard), None)

    def _start(self) -> None:
        self._pid = os.getpid()
        threading.Thread(target=self._run, name="limo-grading-deadlines", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                due = [g for g in self._guards.values() if g.next_fire <= now]
                if not due:
                    self._sleeping_until = min((g.next_fire for g in self._guards.values()), default=float("inf"))
                    self._wake.wait(None if self._sleeping_until == float("inf") else self._sleeping_until - now)
                    self._sleeping_until = float("inf")
                    continue
            for guard in due:
                self._fire(guard, now)

    def _fire(self, guard: _Guard, now: float) -> None:
        with guard.lock:
            guard.next_fire = now + REFIRE_S
            if guard.armed and not guard.paused and not guard.caught:
                guard.fired += _RAISE_IN(guard.thread_id, DeadlineExceeded)


_WATCHDOG = _Watchdog()
_LOCAL = threading.local()


def run_bounded(fn: Callable[[], T], limit_s: float) -> T:
    """``fn()`` in this thread, interrupted once `limit_s` seconds of wall-clock time have passed.

    Nested calls run under the outermost deadline.

    Raises:
        CallTimeout: The deadline passed first (the call was interrupted at a bytecode boundary).
    """
    if getattr(_LOCAL, "guard", None) is not None or not ASYNC_DEADLINES:
        return fn()
    guard = _WATCHDOG.arm(limit_s)
    _LOCAL.guard = guard
    try:
        try:
            return fn()
        finally:
            _WATCHDOG.settle(guard)
    except DeadlineExceeded:
        guard.caught = True  # first: the watchdog fires no more once this is set
        _settle_quietly(guard)
    finally:
        _LOCAL.guard = None
    raise CallTimeout(f"over the {limit_s:g} s limit {WALL_CLOCK} in this process")


def _settle_quietly(guard: _Guard) -> None:
    """Settle `guard`, absorbing the one exception the watchdog may have fired before it saw `caught`."""
    while True:
        try:
            _WATCHDOG.settle(guard)
            return
        except DeadlineExceeded:
            continue


def remaining_s() -> float | None:
    """Seconds left before the current `run_bounded` deadline in this thread (None outside one)."""
    guard = getattr(_LOCAL, "guard", None)
    return None if guard is None else guard.deadline - time.monotonic()


@contextlib.contextmanager
def wall_backstop() -> Iterator[None]:
    """Inside the block, a grading call in this thread may take `WALL_BACKSTOP_FACTOR` times its limit of wall-clock
    time (`wall_factor`): the retry of a pair whose wall clock ran out on a loaded machine, decided by the symbolic
    worker's CPU budget (its limit is unchanged) rather than by the load again. The size limits still bound the
    in-process steps; the longer deadline stays a hard one."""
    saved = wall_factor()
    _LOCAL.wall_factor = WALL_BACKSTOP_FACTOR
    try:
        yield
    finally:
        _LOCAL.wall_factor = saved


def wall_factor() -> float:
    """How many times its limit a grading call in this thread may take of wall-clock time (1 outside
    `wall_backstop`)."""
    return getattr(_LOCAL, "wall_factor", 1.0)


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No deadline fires in this thread inside the block (a wait that has its own limit, such as the worker's);
    one that passed meanwhile is raised on leaving it."""
    guard = getattr(_LOCAL, "guard", None)
    if guard is None:
        yield
        return
    with guard.lock:
        guard.paused = True
    try:
        yield
    finally:
        with guard.lock:
            guard.paused = False
            guard.next_fire = min(guard.next_fire, max(guard.deadline, time.monotonic()))
        if time.monotonic() >= guard.deadline:
            raise DeadlineExceeded()


# -- the worker subprocess ----------------------------------------------------------------------------------------
class SymbolicWorker:
    """One child process running `eval.grading.latex_fallback`; thread-safe, restarts after a kill."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._ready = False  # the running worker has said "ready"
        self._lock = threading.Lock()

    def prestart(self) -> None:
        """Start the worker now without waiting for it, so that its imports (about a second) overlap the
        caller's own work on another core; the first `call` then waits only for what is left of them."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc, self._ready = _spawn(), False

    def _running(self, deadline: float) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc, self._ready = _spawn(), False
        if not self._ready:
            wait = min(_STARTUP_TIMEOUT_S, deadline - time.monotonic())
            line = _read_line(self._proc, max(wait, 0.0))
            if line is None and wait < _STARTUP_TIMEOUT_S:
                raise WorkerTimeout(f"the symbolic worker was still starting when the limit passed {WALL_CLOCK}")
            if line != "ready":
                self._proc.kill()
                self._proc = None
                raise RuntimeError("symbolic worker failed to start")
            self._ready = True
        return self._proc

    def call(self, request: dict[str, Any], timeout_s: float, deadline: float | None = None) -> dict[str, Any]:
        """Send one request and wait for its answer: at most `timeout_s` seconds of the worker's CPU time, and
        until `deadline` (``time.monotonic()``; default `WALL_BACKSTOP_FACTOR` times the limit from now)
        including the wait for a worker still starting.

        Raises:
            WorkerTimeout: The worker overran (it was killed and will be replaced on the next call), or was
                still starting when the deadline passed.
        """
        deadline = time.monotonic() + timeout_s * WALL_BACKSTOP_FACTOR if deadline is None else deadline
        with self._lock:
            proc = self._running(deadline)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            line = _read_line_within_cpu(proc, timeout_s, deadline)
            if line is None:
                proc.kill()
                proc.wait()
                self._proc = None
                if time.monotonic() >= deadline:
                    raise WorkerTimeout(f"symbolic step past its deadline {WALL_CLOCK}")
                raise WorkerTimeout(f"symbolic step over {timeout_s:g}s of CPU time")
            return dict(json.loads(line))

    def wait_ready(self, timeout_s: float = _STARTUP_TIMEOUT_S) -> None:
        """Start the worker if needed and wait (outside any call's limit) until it has said "ready"."""
        with self._lock:
            self._running(time.monotonic() + timeout_s)

    def close(self) -> None:
        """Stop the worker if it runs."""
        with self._lock:
            if self._proc is not None:
                self._proc.kill()
                self._proc.wait()
                self._proc = None

    def forget(self) -> None:
        """Drop the handle without stopping the process (after a fork: the process is the parent's)."""
        self._proc, self._ready = None, False


class WorkerPool:
    """Symbolic workers shared by the threads of a process: an idle one, or a new one when all are busy."""

    def __init__(self) -> None:
        self._idle: list[SymbolicWorker] = []
        self._all: list[SymbolicWorker] = []
        self._lock = threading.Lock()

    def prestart(self) -> None:
        """Start one worker in the background (see `SymbolicWorker.prestart`)."""
        with self._lock:
            if not self._all:
                worker = SymbolicWorker()
                self._all.append(worker)
                self._idle.append(worker)
        self._all[0].prestart()

    def warm(self) -> None:
        """One worker started and ready (its start-up wait counted against no call's limit)."""
        self.prestart()
        self._all[0].wait_ready()

    @contextlib.contextmanager
    def checkout(self) -> Iterator[SymbolicWorker]:
        with self._lock:
            if self._idle:
                worker = self._idle.pop()
            else:
                worker = SymbolicWorker()
                self._all.append(worker)
        try:
            yield worker
        finally:
            with self._lock:
                self._idle.append(worker)

    def close(self) -> None:
        """Stop every worker."""
        with self._lock:
            for worker in self._all:
                worker.close()

    def forget(self) -> None:
        """In a forked child: the workers belong to the parent; this process starts its own when needed."""
        self._lock = threading.Lock()
        for worker in self._all:
            worker.forget()
        self._idle, self._all = [], []


def _spawn() -> subprocess.Popen[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    return subprocess.Popen(
        [sys.executable, "-m", "eval.grading.latex_fallback"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=_repo_root(),
    )


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str | None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not ready:
        return None
    line = proc.stdout.readline()
    return line.strip() if line else None


def _read_line_within_cpu(proc: subprocess.Popen[str], cpu_limit_s: float, deadline: float) -> str | None:
    """The worker's next line, or None once it has spent ``cpu_limit_s`` CPU seconds on it or `deadline` passed."""
    started = _cpu_seconds(proc.pid)
    if started is None:
        return _read_line(proc, max(0.0, min(cpu_limit_s, deadline - time.monotonic())))
    while time.monotonic() < deadline:
        if _has_output(proc, min(_POLL_S, max(0.0, deadline - time.monotonic()))):
            return _read_line(proc, 0.0)
        used = _cpu_seconds(proc.pid)
        if used is None or used - started > cpu_limit_s:
            return None
    return None


def _has_output(proc: subprocess.Popen[str], wait_s: float) -> bool:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], wait_s)
    return bool(ready)


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of ``pid`` from ``/proc/<pid>/stat``; None where that is unavailable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


WORKERS = WorkerPool()  # the process's symbolic workers (`eval.grading.grader` uses them)


def _after_fork_in_child() -> None:
    global _WATCHDOG, _LOCAL
    _WATCHDOG = _Watchdog()  # the thread did not survive the fork; its locks may have been held
    _LOCAL = threading.local()
    WORKERS.forget()  # the parent's pipes: writing to them would answer the parent's requests


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
