"""The package as a user installs it: a wheel built from the repository, in a fresh venv, run from another folder.

The wheel must carry the shipped recipes (setup.py copies ``recipes/`` into ``limo/recipes``) so that
``python -m limo.<entry> recipe=<shipped>`` works anywhere, and a recipe kept in the user's own folder must be
found through ``--config-dir``, ``--config-path`` and ``hydra.searchpath`` (`limo.config.search_path`). The venv is
fresh (its own site-packages, limo installed there non-editable); only the third-party dependencies come from
the project's venv through a ``.pth`` line, so the test needs no network and installs nothing large.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.test_entry_errors import one_line_error

SKIPPED_ANYWHERE = shutil.ignore_patterns("*.egg-info", "__pycache__", ".*_cache")
SKIPPED_AT_ROOT = {".git", ".venv", "outputs", "build", "dist"}  # curation/outputs is code


def copy_ignore(folder: str, names: list[str]) -> set[str]:
    root = {n for n in names if n in SKIPPED_AT_ROOT} if Path(folder, "pyproject.toml").is_file() else set()
    return root | SKIPPED_ANYWHERE(folder, names)


USER_RECIPE = """\
# @package _global_
# A user's own recipe, outside the package: the MATH layout recipe with the user's pool and no benchmarks.
defaults:
  - pool_math
curate:
  stages:
    ingest:
      source: {pool}
    decontam:
      benchmarks: []
    select:
      n: 3
"""


@pytest.fixture(scope="module")
def installed(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv's python with limo installed from a wheel of the repository (non-editable)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "src"
    shutil.copytree(repo_root, source, ignore=copy_ignore)  # the build writes build/ and egg-info: not into ours
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # pip must not see a checkout's limo.egg-info (on PYTHONPATH or in the working directory) as installed limo
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    build = {"cwd": root, "env": env, "check": True}
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", root / "wheel", source], **build)
    venv = root / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", venv], **build)  # type: ignore[attr-defined]
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True
    )
    wheel = next((root / "wheel").glob("limo-*.whl"))
    subprocess.run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], **build)
    # after the install: pip would take the project venv's (editable) limo for an installed one
    Path(site.stdout.decode().strip(), "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run_installed(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed copy, never a checkout
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run([python, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


SUBJECTS = ("Algebra", "Geometry", "Number Theory")  # pool_math keeps at most 30% of a selection per subject


def user_folder(tmp_path: Path) -> Path:
    """A folder of the user's own: ``conf/recipe/my_pool.yaml`` and a six-problem pool in MATH's layout."""
    pool = tmp_path / "pool.jsonl"
    rows = [
        {"id": f"p{i}", "problem": f"What is {i} plus {i + 3}? Give the sum.", "level": "Level 4",
         "subject": SUBJECTS[i % 3], "answer": str(2 * i + 3),
         "solution": f"We add: {i} + {i + 3} = \\boxed{{{2 * i + 3}}}."}
        for i in range(6)
    ]  # fmt: skip
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    conf = tmp_path / "conf"
    (conf / "recipe").mkdir(parents=True)
    (conf / "recipe" / "my_pool.yaml").write_text(USER_RECIPE.format(pool=pool))
    return conf


@pytest.mark.slow
def test_the_installed_package_is_the_one_imported_and_runs_a_shipped_recipe(installed, tmp_path):
    code = "import limo, limo.config.files as c; print(limo.__file__, c.CONFIG_DIR)"
    where = run_installed(installed, tmp_path, "-c", code)
    module, config_dir = where.stdout.split()
    assert str(installed.parents[1]) in module and Path(config_dir) == Path(module).parent / "recipes"
    done = run_installed(installed, tmp_path, "-m", "limo.plan", "recipe=limo", "num_gpus=8")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "limo plan: recipe limo" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("how", ["--config-dir", "--config-path", "hydra.searchpath"])
def test_the_installed_package_curates_with_a_recipe_from_the_users_folder(installed, tmp_path, how):
    conf = user_folder(tmp_path)
    where = [f"hydra.searchpath=[file://{conf}]"] if how == "hydra.searchpath" else [how, "conf"]  # relative
    out = tmp_path / "run"
    done = run_installed(installed, tmp_path, "-m", "limo.curate", "recipe=my_pool", *where, f"output_dir={out}")
    assert done.returncode == 0, done.stderr[-3000:]
    curated = [json.loads(line) for line in (out / "curate" / "curated.jsonl").read_text().splitlines()]
    assert len(curated) == 3
    if how == "--config-path":
        assert "reading it as a folder of your own recipes" in done.stderr


@pytest.mark.slow
def test_a_missing_recipe_names_every_folder_searched(installed, tmp_path):
    conf = user_folder(tmp_path)
    (conf / "stray.yaml").write_text("# @package _global_\n")
    done = run_installed(installed, tmp_path, "-m", "limo.curate", "recipe=stray", "--config-dir", str(conf))
    line = one_line_error(done, "curate")
    assert f"searched {installed.parents[1]}" in line and f"{conf}/recipe/" in line
    assert f"{conf / 'stray.yaml'} is not read: put it in {conf / 'recipe'}/" in line


@pytest.mark.slow
def test_the_installed_package_carries_the_shipped_benchmark_files(installed, tmp_path):
    """MATH500, AIME 2024 / 2025 and AMC 2023 travel in the wheel with their NOTICE, and load offline from there."""
    code = (
        "from limo.cli.compose import compose; from limo.config.sections import build_benchmark_specs;"
        "from eval.benchmarks.loader import load_benchmark; specs = build_benchmark_specs(compose('demo'));"
        "[print(b.name, len(b.problems), b.source) for b in (load_benchmark(specs[n]) for n in "
        "('math500', 'aime24', 'aime25', 'amc23'))]"
    )
    done = run_installed(installed, tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = [line.split() for line in done.stdout.splitlines()]
    assert [(name, int(n)) for name, n, _ in loaded] == [
        ("math500", 500),
        ("aime24", 30),
        ("aime25", 30),
        ("amc23", 40),
    ]
    assert all(Path(source).is_relative_to(installed.parents[1]) for _, _, source in loaded)
    assert all((Path(source).parent / "NOTICE").is_file() for _, _, source in loaded)
