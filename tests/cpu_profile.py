"""Each test's CPU, every process it starts included: ``python -m pytest -p tests.cpu_profile --cpu-profile FILE ...``
(with ``-n 2`` too: each xdist worker appends its own rows) writes one JSON line a test, setup and teardown included:
its id, wall seconds, CPU seconds, tier (``slow``) and how the CPU was counted (``source``).

Where it can (Linux, cgroup v1's ``cpuacct`` writable: root on the 2-core machines), each test process moves into a
cgroup of its own, ``limo_cpu_profile_<worker>``, so every process a test starts and does not reap (a Ray worker,
llama-server, a torchrun rank) counts to it as well: ``source: cgroup``. Elsewhere the process's own CPU and that of
the children it has reaped: ``source: rusage``, a lower bound. docs/performance.md's fifth pass is this table.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup/cpuacct")


def pytest_addoption(parser):
    parser.addoption("--cpu-profile", metavar="FILE", help="append each test's wall and CPU seconds to FILE (JSONL)")


class Meter:
    """CPU seconds of this process and what it starts: from its own cgroup when one can be made, else rusage."""

    def __init__(self, worker: str) -> None:
        self.usage = CGROUP_ROOT / f"limo_cpu_profile_{worker}" / "cpuacct.usage"
        try:
            self.usage.parent.mkdir(exist_ok=True)
            (self.usage.parent / "cgroup.procs").write_text(str(os.getpid()))
            self.source = "cgroup"
        except OSError:
            self.source = "rusage"

    def seconds(self) -> float:
        if self.source == "cgroup":
            return int(self.usage.read_text()) / 1e9
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    target = item.config.getoption("--cpu-profile")
    if not target:
        yield
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    meter = item.config.stash.get(METER, None)
    if meter is None:
        meter = item.config.stash[METER] = Meter(worker)
    wall, cpu = time.monotonic(), meter.seconds()
    yield
    row = {
        "id": item.nodeid,
        "wall": round(time.monotonic() - wall, 2),
        "cpu": round(meter.seconds() - cpu, 2),
        "slow": item.get_closest_marker("slow") is not None,
        "worker": worker,
        "source": meter.source,
    }
    with open(target, "a", encoding="utf-8") as out:  # one short line a write: the workers' lines do not interleave
        out.write(json.dumps(row) + "\n")


METER = pytest.StashKey[Meter]()
