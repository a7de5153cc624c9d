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


ENGINE_SUITE = """
import pytest

def test_ray(ray_instance):
    pass

def test_plain_first():
    pass

@pytest.mark.parametrize("cluster_engine", ["ray", "slurm"], indirect=True)
def test_either(cluster_engine):
    pass

def test_slurm(slurm_cluster):
    pass

@pytest.mark.parametrize("i", range(4))
def test_free(i):
    pass
"""
ENGINE_CONFTEST = """
import os

import pytest

from tests.conftest import (  # noqa: F401
    cluster_engine,
    engine,
    pytest_collection_finish,
    pytest_collection_modifyitems,
    pytest_runtest_teardown,
    pytest_sessionfinish,
)


def note(line):
    with open(os.path.join(os.environ["ENGINE_LOG"], os.environ.get("PYTEST_XDIST_WORKER", "main")), "a") as log:
        log.write(line + "\\n")


def fake(name):  # an engine that says when it starts and stops
    note(f"start {name}")
    return name, lambda: note(f"stop {name}")


@pytest.fixture
def ray_instance():
    return engine("ray", lambda: fake("ray"))


@pytest.fixture
def slurm_cluster():
    return engine("slurm", lambda: fake("slurm"))


@pytest.fixture(autouse=True)
def ran(request):
    note(request.node.name)
"""


@pytest.mark.slow
def test_the_cluster_engines_start_once_on_one_worker_and_stop_after_their_last_test(tmp_path):
    """Every test on an engine (through its fixture, or `cluster_engine`'s indirect parameter) runs on one worker,
    first; each engine starts once, and both stop right after the last of them, not at the session's end."""
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_engines.py").write_text(ENGINE_SUITE)
    (tmp_path / "suite" / "conftest.py").write_text(ENGINE_CONFTEST)
    logs = tmp_path / "logs"
    logs.mkdir()
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder", "-q"]
    done = subprocess.run(
        [*command, "-p", "no:cacheprovider", str(tmp_path / "suite")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "ENGINE_LOG": str(logs)},
    )
    assert done.returncode == 0, done.stdout[-2000:]
    lines = {log.name: log.read_text().splitlines() for log in logs.iterdir()}
    [engines] = [worker for worker, seen in lines.items() if "test_ray" in seen]
    seen = lines[engines]
    users = ["test_ray", "test_either[ray]", "test_either[slurm]", "test_slurm"]
    stops = max(seen.index("stop ray"), seen.index("stop slurm"))
    assert [line for line in seen[:stops] if line.startswith("test_")] == users, seen
    assert [line for line in seen if not line.startswith("test_")][-2:] == seen[stops - 1 : stops + 1], seen
    assert seen.count("start ray") == seen.count("start slurm") == 1 and seen.index("start slurm") > seen.index(
        "test_ray"
    )
    others = [line for worker, log in lines.items() if worker != engines for line in log]
    assert all(line.startswith("test_") and line not in users for line in others), lines
    assert sorted(line for log in lines.values() for line in log if line.startswith("test_")) == sorted(
        [*users, "test_plain_first", *(f"test_free[{i}]" for i in range(4))]
    )
