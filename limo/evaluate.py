"""`python -m limo.evaluate recipe=<r> [benchmarks=[math500,aime24]] [model.path=...] [limit=N] [data_dir=...]`.

``mode=`` picks one of `limo.setup.eval_modes.MODES`: ``generate`` (default), ``multiturn`` (results in
``eval/<benchmark>/multiturn_<oracle|no_oracle>/``), ``regrade``, ``compare``; a list (``mode=[generate,multiturn]``)
runs each in turn. Which model: ``model.path=``
given on the command line wins; otherwise ``evaluate.model_path`` (the demo and training recipes set it to
``${output_dir}/train/model``); otherwise ``model.path``. The run-time arguments above (`EVALUATE_RUNTIME`) are not
recipe settings, so they need not exist in a recipe: the entry passes them to Hydra as ``++key=value``.
Expected failures (missing model, unknown benchmark, malformed file, server down) end with one line
(`limo.cli.entry`) and leave results already written intact.
"""

from __future__ import annotations

from omegaconf import DictConfig, ListConfig

from limo.cli.entry import hydra_entry, reported_errors
from limo.cli.overrides import EVALUATE_RUNTIME, forced_runtime
from limo.config.sweeps import job_config


def evaluate(cfg: DictConfig) -> None:
    """Run the mode ``cfg.mode`` names (default ``generate``), or each of a list in turn
    (``mode=[generate,multiturn]``: a run's single-turn answers and its multi-turn episodes in one process)."""
    from limo.setup.eval_modes import MODES  # deferred: --help and the option parser need no grader or sympy

    asked = cfg.get("mode") or "generate"
    modes = [str(m) for m in asked] if isinstance(asked, ListConfig) else [str(asked)]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise ValueError(f"unknown mode {(unknown or [''])[0]!r} (known: {', '.join(MODES)}), mode")
    for mode in modes:
        MODES[mode](cfg)


@hydra_entry("evaluate", EVALUATE_RUNTIME)
def main(cfg: DictConfig) -> None:
    with reported_errors("evaluate", cfg):
        evaluate(job_config(cfg))


def runtime_argv(argv: list[str]) -> list[str]:
    """The run-time arguments and custom benchmark declarations in ``argv`` forced (``++key=value``), as the entry
    point sends them: for `limo.cli.compose.compose`."""
    return forced_runtime(argv, EVALUATE_RUNTIME)


if __name__ == "__main__":
    main()
