"""The on-disk format of a GRPO run's per-prompt reward history, shared by its writer and its readers.

The RL reward writes it while it trains (`limo.training.rl_rewards`, `limo.training.grpo`); the ``rl_prompts``
curation method reads it to rank prompts (`curation.methods.rl_prompts.history`). It lives here, below both, so that
training imports no curation method. Under the run's ``train/prompt_rewards/``:

- ``rank-<r>.jsonl``: one row per reward call of training process ``r``, ``{"step", "ids", "rewards",
  "timeouts", "errors"}``: the optimizer step the completions train (1-based), each completion's prompt id and
  accuracy reward (1 correct, 0 otherwise), and the grader's time-outs and errors in the call. A resumed run
  recomputes the steps after its checkpoint: for a (process, step) written twice, the last row wins.
- ``meta.json``: ``{"steps_per_epoch", "num_generations", "prompts", "data"}``, written before training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

HISTORY_DIR = "train/prompt_rewards"
META_FILE = "meta.json"
RANK_FILES = "rank-*.jsonl"  # every process's rows, as a glob


def rank_file(rank: int) -> str:
    """The name of process ``rank``'s rows file."""
    return f"rank-{rank}.jsonl"


def history_row(step: int, ids: Sequence[str], rewards: Sequence[float], timeouts: int, errors: int) -> dict[str, Any]:
    """One row of ``rank-<r>.jsonl``."""
    return {
        "step": int(step),
        "ids": list(ids),
        "rewards": [float(r) for r in rewards],
        "timeouts": int(timeouts),
        "errors": int(errors),
    }


def history_meta(steps_per_epoch: int, num_generations: int, prompts: int, data: Mapping[str, Any]) -> dict[str, Any]:
    """``meta.json``: what a reader needs to group the rows into epochs, and the prompts file they came from."""
    return {
        "steps_per_epoch": steps_per_epoch,
        "num_generations": num_generations,
        "prompts": prompts,
        "data": dict(data),
    }
