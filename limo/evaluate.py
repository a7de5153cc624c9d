"""`python -m limo.evaluate recipe=<r> [benchmarks=[math500,aime24]] [model.path=...] [limit=N] [data_dir=...]`.

``mode=`` picks one of `limo.eval_modes.MODES`: ``generate`` (default), ``multiturn`` (results in
``eval/<benchmark>/multiturn_<oracle|no_oracle>/``), ``regrade``, ``compare``. Which model: ``model.path=``
given on the command line wins; otherwise ``evaluate.model_path`` (the demo and training recipes set it to
``${output_dir}/train/model``); otherwise ``model.path``. The run-time arguments above are not recipe
settings, so they need not exist in a recipe: `runtime_argv` passes them to Hydra as ``++key=value``.
Expected failures (missing model, unknown benchmark, malformed file, server down) end with one line
(`limo.entry`) and leave results already written intact.
"""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from limo.entry import hydra_entry, reported_errors
from limo.eval_modes import MODES
from limo.eval_setup import RUNTIME_KEYS
from limo.sweeps import job_config


def evaluate(cfg: DictConfig) -> None:
    """Run the mode ``cfg.mode`` names (default ``generate``)."""
    mode = str(cfg.get("mode") or "generate")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODES)}), mode")
    MODES[mode](cfg)


@hydra_entry("evaluate")
def main(cfg: DictConfig) -> None:
    with reported_errors("evaluate", cfg):
        evaluate(job_config(cfg))


def runtime_argv(argv: list[str]) -> list[str]:
    """Pass run-time arguments (``benchmarks=``, ``limit=``, ...) and custom benchmark declarations
    (``benchmark_specs.<name>={source: ..., field_map: {...}, answer_kind: ...}``) as ``++key=value``, so
    any recipe accepts them without declaring them."""
    return [f"++{a}" if _runtime(a) else a for a in argv]


def _runtime(arg: str) -> bool:
    key = arg.split("=", 1)[0]
    return key in RUNTIME_KEYS or (key.startswith("benchmark_specs.") and "=" in arg)


if __name__ == "__main__":
    sys.argv[1:] = runtime_argv(sys.argv[1:])
    main()
