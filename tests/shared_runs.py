"""Outputs that tests only read, built once per test run rather than once per test module or xdist worker.

`built_once` builds into a folder of the run's temporary root that every xdist worker of ``make test`` sees (the
parent of a worker's own ``basetemp``), under a file lock: the first worker to ask builds, the others wait and read
the same folder. A test that changes such an output copies it first; tests that change a run make their own.
``tests/conftest.py`` puts the tests of each shared output on one worker (`SHARED_RUNS`), so that the others do not
wait on the lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

from tests.shared_data import REPO_ROOT

# fixture -> the xdist group of the tests that use it (tests/conftest.py)
SHARED_RUNS = ("champ_curation", "taught_model_dir")


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]) -> Path:
    """``<run's temp root>/shared-<name>/out``, made by ``build(folder)`` by whichever worker asks first."""
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / f"shared-{name}"
    with FileLock(f"{folder}.lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder / "out")
            (folder / ".built").touch()
    return folder / "out"


def curate_champ(out: Path) -> None:
    """``python -m limo.curate recipe=champ`` (data_dir=null, the default, said on the command line): its stdout is
    kept beside its output, in ``stdout.txt``."""
    command = [sys.executable, "-m", "limo.curate", "recipe=champ", f"output_dir={out}", "data_dir=null"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (out / "stdout.txt").write_text(done.stdout)
