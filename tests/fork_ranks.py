"""``python -m tests.fork_ranks <module> [args ...]``: the ranks torchrun starts (``--standalone --nproc_per_node 2
-m <module>``), as forks of one process that imported the training stack once.

The tests' two-process runs (ZeRO-2 and ZeRO-3 against plain data parallel, RISE's weighted loss, GRPO and
DiscoPOP under ZeRO-3) each started torchrun and two interpreters, and each interpreter spent about 7 s of CPU
importing torch, transformers, peft, trl and DeepSpeed before it read its first argument. Here the launcher imports
them once (`limo.ablation.warm.warm_up`, the ablation's warm worker's list, and `DEEPSPEED_MODULES` when the
command names a ``deepspeed=`` config), then forks each rank with the rendezvous variables torchrun gives a worker
of a single-node job (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``GROUP_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and runs the module as ``__main__``, as ``python -m`` does; the rank initialises
its process group itself, after the fork, as a torchrun worker does. What the ranks compute is what they compute
under torchrun (the same variables, the same code); one test still starts its runs through torchrun itself
(`tests.launch.run_module`, ``launcher="torchrun"``), the way a user starts them. A ZeRO-2 run of the demo's tiny
model: 16.7 s of CPU here, 30.3 s through torchrun.

Like torchrun: a rank's output goes to this process's streams; when a rank fails the others are killed and this
process exits with the failed rank's status (a signal as 128 + its number); a rank dies with this process.
"""

from __future__ import annotations

import gc
import importlib
import os
import runpy
import signal
import sys
from collections.abc import Sequence

from eval.backends.llamacpp_server import free_port
from limo.ablation.warm import DEEPSPEED_MODULES, fork_tied, warm_up

RANKS = 2


def rendezvous(rank: int, port: int) -> dict[str, str]:
    """The variables torchrun's agent gives worker ``rank`` of a one-node job of `RANKS` processes."""
    size = str(RANKS)
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": size,
        "LOCAL_WORLD_SIZE": size,
        "GROUP_RANK": "0",
        "GROUP_WORLD_SIZE": "1",
        "ROLE_RANK": str(rank),
        "ROLE_WORLD_SIZE": size,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }


def fork_ranks(port: int) -> int:
    """In each forked rank: its rank. This process never returns: once every rank ended it exits with the first
    failure's status (the other ranks killed) or 0."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pids = []
    for rank in range(RANKS):
        pid = fork_tied()
        if pid == 0:
            os.environ.update(rendezvous(rank, port))
            return rank
        pids.append(pid)
    failed = 0
    while pids:
        pid, status = os.wait()
        pids.remove(pid)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 and not failed:
            failed = code if code > 0 else 128 - code
            for other in pids:
                os.kill(other, signal.SIGKILL)
    sys.exit(failed)


def main(argv: Sequence[str]) -> None:
    module, args = argv[0], list(argv[1:])
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as torchrun sets it for its workers
    if module.startswith("limo."):  # an entry of ours: the training stack (a test's own module imports its own)
        warm_up()
    if any(a.split("=", 1)[0].lstrip("+") == "deepspeed" for a in args):
        for name in DEEPSPEED_MODULES:
            importlib.import_module(name)
    gc.freeze()  # as the warm worker does: the imports' objects are never garbage, nor walked by a rank's collections
    fork_ranks(free_port())
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
