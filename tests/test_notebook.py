"""The exploration notebook runs headless on a small curation run and shows what it promises."""

from __future__ import annotations

import subprocess
import sys

import pytest

NOTEBOOK = "curation/explore.ipynb"


def test_notebook_is_stored_without_outputs(repo_root):
    import nbformat

    notebook = nbformat.read(repo_root / NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.fixture(scope="module")
def small_run(repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("curate")
    command = [sys.executable, "-m", "limo.curate", "recipe=champ", f"output_dir={out}", "curate.stages.select.n=30"]
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out / "curate"


@pytest.mark.slow
def test_notebook_executes_on_a_small_run(repo_root, small_run, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LIMO_CURATE_DIR", str(small_run))
    notebook = nbformat.read(repo_root / NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(repo_root)}}
    ).execute()
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    text = "\n".join(o.get("text", "") for o in outputs)
    assert "30 curated rows" in text
    assert "answer_check" in html and "decontam" in html, "the funnel table lists the stages"
    assert "<b>kept</b>" in html and "<mark" in html, "kept vs dropped with quality cues highlighted"
    assert "duplicate of" in html, "the nearest-duplicates table"
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3, "funnel, distributions and domain plots"
