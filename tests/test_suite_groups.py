"""`make test`'s --dist loadgroup keeps a group's tests on one worker with the pytest and pytest-xdist installed, and
hands out the longest work first.

Under pytest 9, pytest-xdist 3.8's groups silently did nothing (node ids became structured), and conftest's groups
were added after xdist had read them: every module fixture used on both workers was built twice. This runs a small
suite of its own through two workers, as `make test` does, and checks where and in which order each test ran.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.shared_data import REPO_ROOT

SUITE = """
import os, time, pytest

@pytest.fixture(scope="module")
def shared():
    return os.environ.get("PYTEST_XDIST_WORKER")

@pytest.mark.parametrize("i", range(4))
def test_uses_the_module_fixture(shared, i):
    time.sleep(0.2)

@pytest.mark.parametrize("i", range(4))
def test_free(i):
    time.sleep(0.2)

@pytest.mark.slow
def test_slow():
    time.sleep(0.2)
"""


@pytest.mark.slow
def test_a_module_fixture_s_tests_run_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(SUITE)
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_collection_modifyitems  # noqa\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "--no-loadscope-reorder",
            "-v",
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stdout[-2000:]
    ran = re.findall(r"\[(gw\d)\].*PASSED \S*::(test_\w+)(?:\[\d\])?(@\S+)?", done.stdout)
    grouped = {(worker, group) for worker, name, group in ran if name == "test_uses_the_module_fixture"}
    assert len(ran) == 9 and len(grouped) == 1, done.stdout
    assert grouped.pop()[1] == "@module_fixture:test_grouped"
    # Longest first (tests.conftest.dispatch_rank): the group, then the slow test written last, then the rest; each
    # worker's lines come in the order it ran them.
    order = {worker: [name for w, name, _ in ran if w == worker] for worker, _, _ in ran}
    assert sorted(names[0] for names in order.values()) == ["test_slow", "test_uses_the_module_fixture"], order
