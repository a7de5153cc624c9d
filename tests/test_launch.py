"""The tests' launcher kills a timed-out command's whole process group (torchrun's workers included)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.launch import run_group

PARENT = (  # a launcher with one worker, both sleeping past the timeout; the worker's pid goes to argv[1]
    "import pathlib, subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "pathlib.Path(sys.argv[1]).write_text(str(child.pid))\n"
    "time.sleep(120)\n"
)


def test_a_timed_out_command_leaves_no_process_behind(tmp_path):
    pid_file = tmp_path / "child.pid"
    with pytest.raises(subprocess.TimeoutExpired):
        run_group([sys.executable, "-c", PARENT, str(pid_file)], timeout=5)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie waits for init: it is gone
    except FileNotFoundError:
        return False
