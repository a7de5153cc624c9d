"""`tests.fork_ranks`, the launcher of the tests' two-process runs but one: each rank gets torchrun's rendezvous
variables, the ranks meet in a gloo process group, and a failing rank ends the run with its status and the other
rank killed, as torchrun ends it (the training runs through it are tests/test_train_distributed.py's and the ZeRO
tests')."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tests.launch import run_group
from tests.shared_data import REPO_ROOT

RANK_MODULE = """
import os, sys, time
rank = int(os.environ["RANK"])
if sys.argv[1:] == ["fail"]:
    if rank == 0:
        open(os.environ["PID_FILE"] + ".part", "w").write(str(os.getpid()))
        os.rename(os.environ["PID_FILE"] + ".part", os.environ["PID_FILE"])
        time.sleep(600)  # past the test's timeout: unless the launcher kills it
    while not os.path.exists(os.environ["PID_FILE"]):
        time.sleep(0.01)
    sys.exit(3)
import torch.distributed as dist
dist.init_process_group("gloo")
total = [rank + 1]
dist.broadcast_object_list(total, src=1)
names = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR")
line = f"{sys.argv[1:]} {' '.join(f'{n}={os.environ[n]}' for n in names)} from rank 1: {total[0]}\\n"
os.write(1, line.encode())  # one write: print's pieces interleave with the other rank's when stdout is unbuffered
dist.destroy_process_group()
"""


def launch(tmp_path: Path, *args: str):
    (tmp_path / "rank_module.py").write_text(RANK_MODULE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)]),
        "PID_FILE": str(tmp_path / "pid"),
    }
    command = [sys.executable, "-m", "tests.fork_ranks", "rank_module", *args]
    return run_group(command, cwd=tmp_path, env=env, timeout=120)


def test_two_forked_ranks_get_torchruns_variables_and_meet_in_one_process_group(tmp_path):
    done = launch(tmp_path, "a=1", "b=2")
    assert done.returncode == 0, done.stderr[-3000:]
    lines = sorted(done.stdout.splitlines())
    common = "WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 from rank 1: 2"
    assert lines == [f"['a=1', 'b=2'] RANK={r} LOCAL_RANK={r} {common}" for r in (0, 1)]


def test_a_failing_rank_ends_the_run_with_its_status_and_the_other_rank_killed(tmp_path):
    done = launch(tmp_path, "fail")  # run_group's timeout (120 s) fails the test if rank 0 is left to sleep
    assert done.returncode == 3, done.stderr[-3000:]
    survivor = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{survivor}").exists() and b"zombie" not in Path(f"/proc/{survivor}/status").read_bytes():
        assert time.monotonic() < deadline, "the other rank outlived the failed one"
        time.sleep(0.05)
