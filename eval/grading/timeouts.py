"""A hard time limit for the slow symbolic path: a persistent worker subprocess, killed and replaced on
overrun.

SIGALRM only works in the main thread of the main process; a subprocess works everywhere (threads, pool
workers, which may not fork daemonic children but may start `subprocess.Popen`). The worker speaks
JSON lines over stdin/stdout, is started lazily on first use, and the clock starts only after it said it
is ready, so start-up (imports and a warm-up comparison) never counts against a pair. The fast in-process
path needs no clock: size limits bound it (see `plain_parse`).

The limit counts the worker's own CPU time (read from ``/proc``), not wall-clock time: on a loaded machine a
pair waits for a core without using up its budget, so a verdict does not depend on what else runs (the
registry refactor saw 2 s wall-clock limits expire under a load of 6 on 2 cores). A wall-clock backstop of
`WALL_BACKSTOP_FACTOR` times the limit still ends a worker that blocks without computing. Where ``/proc``
is absent the limit is wall-clock time.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

_STARTUP_TIMEOUT_S = 60.0
WALL_BACKSTOP_FACTOR = 20.0
_POLL_S = 0.05
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class WorkerTimeout(TimeoutError):
    """The worker did not answer within the limit; it has been killed."""


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

    def _running(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc, self._ready = _spawn(), False
        if not self._ready:
            if _read_line(self._proc, _STARTUP_TIMEOUT_S) != "ready":
                self._proc.kill()
                self._proc = None
                raise RuntimeError("symbolic worker failed to start")
            self._ready = True
        return self._proc

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request and wait at most `timeout_s` seconds for its answer.

        Raises:
            WorkerTimeout: The worker overran; it was killed and will be replaced on the next call.
        """
        with self._lock:
            proc = self._running()
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            line = _read_line_within_cpu(proc, timeout_s)
            if line is None:
                proc.kill()
                proc.wait()
                self._proc = None
                raise WorkerTimeout(f"symbolic step over {timeout_s}s of CPU time")
            return dict(json.loads(line))

    def close(self) -> None:
        """Stop the worker if it runs."""
        with self._lock:
            if self._proc is not None:
                self._proc.kill()
                self._proc.wait()
                self._proc = None


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


def _read_line_within_cpu(proc: subprocess.Popen[str], cpu_limit_s: float) -> str | None:
    """The worker's next line, or None once it has spent ``cpu_limit_s`` CPU seconds on it (or the backstop)."""
    started = _cpu_seconds(proc.pid)
    if started is None:
        return _read_line(proc, cpu_limit_s)
    deadline = time.monotonic() + cpu_limit_s * WALL_BACKSTOP_FACTOR
    while time.monotonic() < deadline:
        if _has_output(proc):
            return _read_line(proc, 0.0)
        used = _cpu_seconds(proc.pid)
        if used is None or used - started > cpu_limit_s:
            return None
    return None


def _has_output(proc: subprocess.Popen[str]) -> bool:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], _POLL_S)
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
