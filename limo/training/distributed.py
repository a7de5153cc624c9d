"""Process-group set-up: world size and rank before anything is built, and DeepSpeed on CPU over gloo.

The batch plan needs the world size before `SFTConfig` exists, so it is read from the launcher's
environment (torchrun / accelerate / deepspeed all set WORLD_SIZE and RANK). DeepSpeed on CPU only
works if accelerate's process state is created first with the gloo backend and the trainer is told to
reuse it (`accelerator_config={"use_configured_state": True}`); a single process with no launcher also
needs the rendezvous variables that a launcher would set (else DeepSpeed reaches for mpi4py).
"""

from __future__ import annotations

import os
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
    PartialState(backend="gloo")
    return {"use_configured_state": True}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
