"""The slow symbolic path's hard limit: a runaway step is killed and replaced, on CPU time, not wall time.

The worker answers a ``spin_s`` request by computing for that many CPU seconds, so these tests check the
limit itself rather than whichever pair happens to be slow today.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from eval.grading.timeouts import SymbolicWorker, WorkerTimeout


@pytest.fixture()
def worker():
    w = SymbolicWorker()
    yield w
    w.close()


def test_runaway_step_is_killed_and_the_worker_replaced(worker):
    assert worker.call({"spin_s": 0.05}, timeout_s=2.0)["reason"] == "spun"
    first = worker._proc.pid
    started = time.monotonic()
    with pytest.raises(WorkerTimeout):
        worker.call({"spin_s": 30.0}, timeout_s=0.5)
    assert time.monotonic() - started < 10.0
    assert worker._proc is None
    assert worker.call({"gold": "1", "pred": "\\frac{2}{2}", "timeout_s": 2.0}, timeout_s=2.0)["status"] == "correct"
    assert worker._proc.pid != first


def test_limit_holds_in_threads(worker):
    """The limit needs no signal: it works from a thread that is not the main one."""
    outcome: list[str] = []

    def run() -> None:
        try:
            worker.call({"spin_s": 30.0}, timeout_s=0.3)
            outcome.append("answered")
        except WorkerTimeout:
            outcome.append("killed")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert outcome == ["killed"]


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="CPU-time accounting reads /proc")
def test_waiting_for_a_core_does_not_use_up_the_limit(worker):
    """Two CPU hogs on the same core as the worker: a 0.4 s step still finishes under a 0.6 s limit."""
    worker.call({"spin_s": 0.01}, timeout_s=2.0)
    pid = worker._proc.pid
    hogs = [
        subprocess.Popen([sys.executable, "-c", "import time\nend=time.time()+20\nwhile time.time()<end: pass"])
        for _ in range(3)
    ]
    try:
        for hog in hogs:
            os.sched_setaffinity(hog.pid, {0})
        os.sched_setaffinity(pid, {0})  # worker and hogs share one core
        started = time.monotonic()
        assert worker.call({"spin_s": 0.4}, timeout_s=0.6)["reason"] == "spun"
        assert time.monotonic() - started > 0.6  # it did wait for the core longer than the limit
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
