"""`python -m limo.explore [run_dir=outputs/demo/curate]` (`make explore`): the exploration notebook, run.

Executes ``curation/explore.ipynb`` headless (nbclient and ipykernel, which `make setup` installs) on a
curation run's ``curate/`` folder and writes the executed copy, plots included, to
``<run_dir>/explore.ipynb``: it opens in any notebook viewer (Jupyter, VS Code, GitHub) with no kernel. To
explore interactively instead, install the ``explore`` extra (JupyterLab) and start
``LIMO_CURATE_DIR=<run_dir> jupyter lab curation/explore.ipynb``. The notebook resolves a relative
``LIMO_CURATE_DIR`` from where the user started, so ``run_dir`` is passed on absolute.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from eval.records import write_text_atomic
from limo.cli.entry import reported_errors
from limo.cli.usage import exit_if_help

NOTEBOOK = Path(__file__).resolve().parent.parent / "curation" / "explore.ipynb"
DEFAULT_RUN = "outputs/demo/curate"
CELL_TIMEOUT_S = 600


def explore(run_dir: Path) -> Path:
    """Run the notebook on ``run_dir`` and write the executed copy there; returns its path.

    Raises:
        FileNotFoundError: ``run_dir`` holds no curation run (no ``manifest.json``).
        ValueError: A cell failed (the message is the notebook's last error line).
        ImportError: nbclient is not installed (the ``explore`` extra).
    """
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as err:
        raise ImportError(f"limo.explore needs nbclient and ipykernel: pip install -e '.[explore]' ({err})") from None
    if not (run_dir / "manifest.json").is_file():
        raise FileNotFoundError(
            f"{run_dir}: no curation run here (no manifest.json); run `make demo` or pass run_dir=<output_dir>/curate"
        )
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    os.environ["LIMO_CURATE_DIR"] = str(run_dir.resolve())
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError as err:
        lines = [line for line in str(err).splitlines() if line.strip()]
        raise ValueError(f"the notebook failed on {run_dir}: {lines[-1] if lines else err}, {NOTEBOOK}") from None
    out = run_dir / "explore.ipynb"
    write_text_atomic(out, nbformat.writes(notebook))
    return out


def main(argv: list[str]) -> None:
    exit_if_help("explore", argv)
    with reported_errors("explore"):
        unknown = [a for a in argv if not a.startswith("run_dir=")]
        if unknown:
            raise ValueError(f"unknown argument {unknown[0]!r} (limo.explore takes run_dir=<output_dir>/curate)")
        run_dir = next((a.split("=", 1)[1] for a in argv if a.startswith("run_dir=")), DEFAULT_RUN)
        written = explore(Path(run_dir))
        print(
            f"[explore] {written}: the notebook run on {run_dir} (open it in Jupyter, VS Code or any notebook viewer)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
