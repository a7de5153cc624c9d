"""The exploration notebook runs headless on curation runs and shows what it promises.

Two runs: the CHAMP run (pass rates, many chains per problem) and a run of a small JSONL pool with one chain
per problem and difficulty off, whose pool file is gone by the time the notebook opens it, pointed at with a
``LIMO_CURATE_DIR`` relative to the folder the user started in (``$PWD``) while the kernel runs in the
notebook's own folder, as Jupyter runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.launch import entry

NOTEBOOK = "curation/explore.ipynb"


def test_notebook_is_stored_without_outputs(repo_root):
    import nbformat

    notebook = nbformat.read(repo_root / NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def execute(repo_root: Path) -> tuple[str, str, list[dict]]:
    """Run the notebook in its own folder; returns its text output, its HTML output and every output."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(repo_root / NOTEBOOK, as_version=4)
    folder = str(repo_root / "curation")
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"], [o for o in outputs if o["output_type"] == "error"]
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    text = "\n".join(o.get("text", "") for o in outputs)
    return text, html, outputs


@pytest.fixture(scope="module")
def small_run(repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("curate")
    command = entry("limo.curate", "recipe=champ", f"output_dir={out}", "curate.stages.select.n=30")
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out / "curate"


@pytest.mark.slow
def test_notebook_executes_on_the_champ_run(repo_root, small_run, monkeypatch):
    monkeypatch.setenv("LIMO_CURATE_DIR", str(small_run))
    text, html, outputs = execute(repo_root)
    assert "30 curated rows" in text
    assert "answer_check" in html and "decontam" in html, "the funnel table lists the stages"
    assert "<b>kept</b>" in html and "<mark" in html, "kept vs dropped with quality cues highlighted"
    assert "duplicate of" in html, "the nearest-duplicates table"
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3, "funnel, distributions and domain plots"


@pytest.fixture(scope="module")
def run_without_difficulty(repo_root, tmp_path_factory) -> Path:
    """A pool with one chain per problem, no difficulty: curated, then its pool file deleted."""
    started_in = tmp_path_factory.mktemp("user")
    pool = started_in / "pool.jsonl"
    rows = [
        {"id": f"q{i}", "problem": f"What is {i} times {i + 3}, computed by hand?", "answer": str(i * (i + 3)),
         "chain": f"First, {i} times {i + 3}. " * (1 + i % 4) + f"So the answer is $\\boxed{{{i * (i + 3)}}}$."}
        for i in range(1, 9)
    ]  # fmt: skip
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    command = [
        sys.executable, "-m", "limo.curate", "recipe=pool_gair_limo", f"output_dir={started_in / 'run'}",
        f"curate.stages.ingest.source={pool}", "curate.stages.ingest.field_map={}", "data_dir=null",
        "++curate.stages.decontam.enabled=false",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    pool.unlink()
    return started_in


@pytest.mark.slow
def test_notebook_executes_on_a_run_without_difficulty_from_where_the_user_started(
    repo_root, run_without_difficulty, monkeypatch
):
    monkeypatch.setenv("PWD", str(run_without_difficulty))
    monkeypatch.setenv("LIMO_CURATE_DIR", "run/curate")
    text, html, outputs = execute(repo_root)
    assert f"run {run_without_difficulty / 'run' / 'curate'}" in text
    assert "8 curated rows" in text
    assert "not in this run: strong-model pass rate" in text
    assert "the pool cannot be read any more" in text and "one chain per problem" in text
    assert "answer_check" in html, "the funnel table"
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2, "funnel and distributions"


@pytest.mark.slow
def test_make_explore_runs_the_notebook_on_a_run_and_writes_the_executed_copy(repo_root, small_run):
    """`make explore CURATE_DIR=...` runs `python -m limo.explore run_dir=...` with what `make setup` installs."""
    import nbformat

    command = [sys.executable, "-m", "limo.explore", f"run_dir={small_run}"]
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    written = small_run / "explore.ipynb"
    assert f"[explore] {written}" in done.stdout
    outputs = [o for cell in nbformat.read(written, as_version=4).cells for o in cell.get("outputs", [])]
    assert "30 curated rows" in "\n".join(o.get("text", "") for o in outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3


def test_explore_without_a_run_is_one_line(repo_root, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "limo.explore", f"run_dir={tmp_path}"], cwd=repo_root, capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stderr.strip() == (
        f"limo.explore: error: {tmp_path}: no curation run here (no manifest.json); run `make demo` or pass "
        "run_dir=<output_dir>/curate"
    )
