"""Outputs that tests only read, built once per test run rather than once per test module or xdist worker.

`built_once` builds into a folder of the run's temporary root that every xdist worker of ``make test`` sees (the
parent of a worker's own ``basetemp``), under a file lock: the first worker to ask builds, the others wait and read
the same folder. A test that changes such an output copies it first; tests that change a run make their own.
`computed_once` does the same for a value that collecting a module needs (every xdist worker collects every module),
kept on this machine for as long as the files it is computed from are unchanged.
``tests/conftest.py`` puts the tests of each shared output on one worker (`SHARED_RUNS`), so that the others do not
wait on the lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from tests.launch import entry
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
    command = entry("limo.curate", "recipe=champ", f"output_dir={out}", "data_dir=null")
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (out / "stdout.txt").write_text(done.stdout)


def computed_once(name: str, sources: Sequence[Path], compute: Callable[[], Any]) -> Any:
    """``compute()`` (a JSON value) once per content of ``sources`` (files, or folders but their bytecode) on this
    machine: the first process to ask computes it, under a file lock in the system's temporary folder; the others,
    and later runs while those files are unchanged, read it."""
    digest = hashlib.sha256()
    for source in sources:
        files = source.rglob("*") if source.is_dir() else [source]
        for path in sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    cache = Path(tempfile.gettempdir()) / "limo-tests" / f"{name}-{digest.hexdigest()[:20]}.json"
    cache.parent.mkdir(exist_ok=True)
    with FileLock(f"{cache}.lock"):
        if not cache.exists():
            partial = cache.with_suffix(".part")
            partial.write_text(json.dumps(compute()))
            partial.replace(cache)
        return json.loads(cache.read_text())
