"""`tests.cpu_profile`: the suite's per-test CPU table (docs/performance.md's fifth pass) counts the CPU of the
processes a test starts, and not the time it waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.shared_data import REPO_ROOT

SUITE = """
import subprocess, sys, time

def test_burns_in_a_child():
    subprocess.run([sys.executable, "-c", "x = 0\\nfor i in range(4 * 10**7): x += i"], check=True)

def test_waits():
    time.sleep(1.5)
"""


@pytest.mark.slow
def test_a_test_s_children_count_to_its_cpu_and_its_waiting_does_not(tmp_path):
    (tmp_path / "test_metered.py").write_text(SUITE)
    table = tmp_path / "cpu.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.cpu_profile",
         "--cpu-profile", str(table), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    rows = {row["id"].split("::")[1]: row for row in map(json.loads, table.read_text().splitlines())}
    assert set(rows) == {"test_burns_in_a_child", "test_waits"}
    burn, wait = rows["test_burns_in_a_child"], rows["test_waits"]
    assert burn["source"] in ("cgroup", "rusage") and burn["slow"] is False
    assert burn["cpu"] > 0.5, burn  # the child's loop: about 2 s of CPU, however loaded the machine
    assert wait["wall"] >= 1.5 and wait["cpu"] < 0.5, wait
