"""Process-group set-up: world size and rank before anything is built, and DeepSpeed on CPU over gloo.

The batch plan needs the world size before `SFTConfig` exists, so it is read from the launcher's
environment (torchrun / accelerate / deepspeed all set WORLD_SIZE and RANK). DeepSpeed on CPU only
works if accelerate's process state is created first with the gloo backend and the trainer is told to
reuse it (`accelerator_config={"use_configured_state": True}`); a single process with no launcher also
needs the rendezvous variables that a launcher would set (else DeepSpeed reaches for mpi4py).
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in the run."""

    world_size: int
    rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_info() -> ProcessInfo:
    """World size and global rank from the launcher's environment (1 and 0 without a launcher)."""
    return ProcessInfo(world_size=int(os.environ.get("WORLD_SIZE", "1")), rank=int(os.environ.get("RANK", "0")))


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def prepare_cpu_deepspeed() -> dict[str, Any]:
    """Make DeepSpeed run on CPU processes; returns the ``accelerator_config`` the trainer must get.

    Must run before `SFTConfig` is built: accelerate reads ``ACCELERATE_USE_DEEPSPEED`` and the configured
    state when the training arguments set up the device.
    """
    from accelerate import PartialState

    os.environ["ACCELERATE_USE_DEEPSPEED"] = "true"
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    clear_stale_build_lock(SHM_OP)
    skip_shm_op()
    PartialState(backend="gloo")
    return {"use_configured_state": True}


SHM_OP = "deepspeed_shm_comm"  # the op DeepSpeed's CPU backend compiles on first use (init_distributed)


def skip_shm_op() -> None:
    """Keep DeepSpeed's CPU backend from compiling `SHM_OP` when the process group starts. The op is its
    shared-memory all-reduce for ``inference_all_reduce`` (tensor-parallel inference, which limo never runs);
    training's collectives go through gloo with or without it. Marked not compatible, it is not built: the first CPU
    DeepSpeed run of a fresh environment skipped a compile of 19 s on 2 idle cores, 50-70 s beside other work (every
    new virtual environment compiled it again: ninja saw new source paths), and no interrupted compile can leave its
    build lock behind."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__[SHM_OP] = False


STALE_LOCK_S = 900.0  # the op compiles in 1-3 minutes on 2 cores; a lock this old is an interrupted build's


def clear_stale_build_lock(name: str, stale_after_s: float = STALE_LOCK_S) -> str | None:
    """Remove the build lock of torch extension `name` when an interrupted compile left it (older than
    `stale_after_s`): torch waits on such a lock forever, silently, and DeepSpeed's CPU backend builds its shm op
    at start-up, so one Ctrl-C during the first run's compile hung every later run. A younger lock is another
    process's build in progress: said, then waited for. Returns what was said (None: no lock).
    """
    import time

    from torch.utils.cpp_extension import _get_build_directory

    lock = os.path.join(_get_build_directory(name, verbose=False), "lock")
    try:
        age = time.time() - os.path.getmtime(lock)
    except OSError:
        return None
    if age >= stale_after_s:
        with contextlib.suppress(FileNotFoundError):
            os.remove(lock)
        said = f"removed a stale build lock {lock} ({age:.0f} s old: an interrupted compile of {name} left it)"
    else:
        said = f"waiting for another process's build of {name} (lock {lock}, {age:.0f} s old; delete it if none runs)"
    print(f"[train] {said}", file=sys.stderr, flush=True)
    return said


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
