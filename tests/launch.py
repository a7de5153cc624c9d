"""How tests start an entry point as a user would: ``python -m <module> ...`` in a subprocess, or the same
module in two processes through torchrun (CPU, gloo), with the offline single-thread environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TORCHRUN_TWO = ("torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m")


def run_module(
    repo_root: Path, module: str, *args: str, two_processes: bool = False, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run ``module`` with ``args``; assert it succeeded (the output tails are the failure message)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "DS_ACCELERATOR": "cpu"}
    launcher = TORCHRUN_TWO if two_processes else ()
    command = [sys.executable, "-m", *launcher, module, *args]
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-4000:]
    return done
