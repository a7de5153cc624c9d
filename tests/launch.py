"""How tests start an entry point as a user would: ``python -m <module> ...`` in a subprocess, or the same
module in two processes (CPU, gloo), with the offline single-thread environment. Two processes are torchrun's when a
test asks for ``launcher="torchrun"`` (the way a user starts them); otherwise they are forks of one process that
imported the training stack once (`tests.fork_ranks`: the same rendezvous variables, about 7 s of CPU less per
rank).

Where the test process's warm server runs (`tests.conftest.warm_server`, ``LIMO_WARM_SERVER``), `entry` starts the
module through it (``python -m limo.ablation.warm --run``): the same ``python -m`` run, its streams, folder,
environment and exit status, as a fork of a process that imported the training stack once (about 6 s of CPU less
a training, evaluation or export). Tests that are about how a user's process starts (the README's commands, a
killed run, a comparison with a cold process) start theirs as the user does."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from limo.ablation import warm


def entry(module: str, *args: str) -> list[str]:
    """The command for ``python -m module args ...``: through the warm server when one runs (see the module's text),
    and not where warm workers are switched off (``LIMO_WARM_WORKER=0``: a test that wants cold processes)."""
    if os.environ.get(warm.SERVER) and warm.available():
        return [sys.executable, "-m", "limo.ablation.warm", "--run", module, *args]
    return [sys.executable, "-m", module, *args]


def cold_environment() -> dict[str, str]:
    """This process's environment without the warm server's address: a process started with it imports for itself
    (its own warm workers, its own resource tracker), as a user's does."""
    return {k: v for k, v in os.environ.items() if k != warm.SERVER}


LAUNCHERS = {  # how two processes start
    "torchrun": ("torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"),
    "fork": ("tests.fork_ranks",),
}


def run_module(
    repo_root: Path,
    module: str,
    *args: str,
    two_processes: bool = False,
    launcher: str = "fork",
    timeout: int = 600,
) -> subprocess.CompletedProcess:
    """Run ``module`` with ``args``; assert it succeeded (the output tails are the failure message). With
    ``two_processes``, as two ranks started by ``launcher`` (`LAUNCHERS`)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "DS_ACCELERATOR": "cpu"}
    if two_processes and launcher == "torchrun":
        command = [sys.executable, "-m", *LAUNCHERS[launcher], module, *args]
    else:
        command = entry(*LAUNCHERS[launcher], module, *args) if two_processes else entry(module, *args)
    done = run_group(command, cwd=repo_root, timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-4000:]
    return done


def run_group(command: list[str], *, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(command, capture_output=True, text=True)`` in a session of its own, whose every process is
    killed when `timeout` passes: ``subprocess.run`` kills only its child, and torchrun's workers outlived it (two
    ZeRO-3 trainers of a timed-out test ran on for 25 minutes beside the rest of the suite)."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
