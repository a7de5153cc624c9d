"""A nice on limo holds for the processes it starts in sessions of their own (`eval.niceness`): llama-server's launch
hook, the discovery sandbox's runs and the grader pool's workers, read from ``/proc/<pid>/autogroup`` (Linux with
autogroup only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists(), reason="no autogroup scheduler here (/proc/self/autogroup)"
)

# A child at nice 7 starts `sleep` in a session of its own, with llama-server's preexec hook or without any, and
# prints the autogroup line of the sleeping process.
LAUNCH = """
import os, subprocess, sys
from eval.backends.llamacpp_server import _die_with_parent
os.nice(7)
if sys.argv[1] == "sandbox":  # the discovery loop's confined candidate runs
    from limo.discovery.sandbox import Limits, _limit_child
    hook = _limit_child(Limits(wall_seconds=60, cpu_seconds=60, memory_bytes=1 << 30))
else:
    hook = _die_with_parent() if sys.argv[1] == "server" else None
child = subprocess.Popen(["sleep", "30"], start_new_session=True, preexec_fn=hook)
print(open(f"/proc/{child.pid}/autogroup").read().strip(), flush=True)
child.kill()
"""

POOL = """
import os
from eval.grading.pool import GraderPool
os.nice(7)
with GraderPool(workers=1) as pool:
    pool.wait_ready()
    worker = pool._workers[0].process.pid
    print(open(f"/proc/{worker}/autogroup").read().strip(), flush=True)
"""


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_a_server_or_a_sandboxed_run_started_in_its_own_session_keeps_limos_nice():
    assert run(LAUNCH, "plain").endswith(" nice 0")  # the kernel's default: a new session's group at nice 0
    assert run(LAUNCH, "server").endswith(" nice 7")
    assert run(LAUNCH, "sandbox").endswith(" nice 7")


def test_the_grader_pool_s_workers_keep_the_nice_of_the_process_that_started_them():
    assert run(POOL).endswith(" nice 7")
