"""A GRPO run's per-prompt reward history, and the two prompt scores read from it.

The history is written by the RL reward while it trains, under the run's ``train/prompt_rewards/`` (the format:
`curation.reward_history`): one rows file per training process and a ``meta.json``.

Per prompt and epoch (``epoch = (step - 1) // steps_per_epoch``) the accuracy is the mean reward of its
completions. Two scores rank prompts by that trajectory:

- ``lim`` (LIMR, Li et al. 2025, arXiv:2502.11886; GAIR-NLP/LIMR ``lim/lim_selection.py``): with ``b_k`` the mean
  accuracy of all prompts in epoch ``k``, ``1 - sum_k (a_k - b_k)^2 / sum_k (1 - b_k)^2``: 1 for a prompt that
  learns exactly as the model does on average. As in LIMR, an epoch that missed a prompt takes the next epoch's
  value (a prompt left out of a dropped partial batch); a prompt still missing an epoch has no score.
- ``history_variance`` (1-shot RLVR, Wang et al. 2025, arXiv:2504.20571; ypwang61/One-Shot-RLVR
  ``data/data_selection.py``, which ranks by ``np.std`` of the same per-epoch accuracies): the standard
  deviation of the trajectory, highest first.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curation.reward_history import HISTORY_DIR, META_FILE, RANK_FILES
from eval.records import DataError, read_jsonl


def history_folder(path: str | Path) -> Path:
    """The history folder itself, or ``<run>/train/prompt_rewards`` when ``path`` is a run directory.

    Raises:
        DataError: Neither holds a ``meta.json``.
    """
    for candidate in (Path(path), Path(path) / HISTORY_DIR):
        if (candidate / META_FILE).is_file():
            return candidate
    raise DataError(
        f"{path}: no per-prompt reward history here (expected {META_FILE} in it or in {HISTORY_DIR}/ under it; "
        "a GRPO run with train.rl.prompt_rewards=true writes one)"
    )


@dataclass(frozen=True)
class RewardHistory:
    """Per-prompt accuracy per epoch, from one run's history folder.

    Attributes:
        folder: Where it was read.
        steps_per_epoch: From ``meta.json``.
        epochs: Epochs with at least one row.
        accuracy: ``{prompt id: [accuracy or None per epoch]}``.
        rows: Reward calls read (after dropping rows a resumed run recomputed).
    """

    folder: str
    steps_per_epoch: int
    epochs: int
    accuracy: dict[str, list[float | None]]
    rows: int


def read_history(path: str | Path) -> RewardHistory:
    """Read every process's rows, keep the last row of each (process, step), average per prompt and epoch.

    Raises:
        DataError: No history there, or a malformed ``meta.json`` or row (the file and row are named).
    """
    folder = history_folder(path)
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    per_epoch = int(meta.get("steps_per_epoch") or 0)
    if per_epoch < 1:
        raise DataError(f"{folder / META_FILE}: steps_per_epoch must be a positive integer, got {per_epoch!r}")
    calls: dict[tuple[str, int], dict[str, Any]] = {}
    for file in sorted(folder.glob(RANK_FILES)):
        for number, row in enumerate(read_jsonl(file, tolerate_torn_tail=True), start=1):
            _check_row(row, file, number)
            calls[(file.name, int(row["step"]))] = row
    sums: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (_, step), row in calls.items():
        for prompt_id, reward in zip(row["ids"], row["rewards"], strict=True):
            total = sums[(str(prompt_id), (step - 1) // per_epoch)]
            total[0] += float(reward)
            total[1] += 1
    epochs = 1 + max((epoch for _, epoch in sums), default=-1)
    accuracy: dict[str, list[float | None]] = defaultdict(lambda: [None] * epochs)
    for (prompt_id, epoch), (reward, count) in sums.items():
        accuracy[prompt_id][epoch] = reward / count
    return RewardHistory(str(folder), per_epoch, epochs, dict(accuracy), len(calls))


def _check_row(row: Any, file: Path, number: int) -> None:
    ok = isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] >= 1
    ok = ok and isinstance(row.get("ids"), list) and isinstance(row.get("rewards"), list)
    if not ok or len(row["ids"]) != len(row["rewards"]):
        raise DataError(f"{file}: row {number}: expected {{step >= 1, ids: [...], rewards: [...]}} of equal lengths")


def filled(trajectory: Sequence[float | None], epochs: int) -> list[float] | None:
    """The first ``epochs`` values with a gap taking the next epoch's value (LIMR); None if one stays empty."""
    values = list(trajectory[:epochs])
    if len(values) < epochs:
        return None
    for k in range(len(values) - 2, -1, -1):
        if values[k] is None:
            values[k] = values[k + 1]
    return None if any(v is None for v in values) else [float(v) for v in values]  # type: ignore[arg-type]


def trajectories(history: RewardHistory, epochs: int | None) -> tuple[dict[str, list[float]], list[str]]:
    """Complete per-epoch trajectories over the first ``epochs`` epochs (None: all), and the ids without one."""
    count = history.epochs if epochs is None else epochs
    complete, incomplete = {}, []
    for prompt_id, trajectory in history.accuracy.items():
        values = filled(trajectory, count)
        if values is None:
            incomplete.append(prompt_id)
        else:
            complete[prompt_id] = values
    return complete, incomplete


def lim_scores(trajectories: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """LIMR's learning-impact score per prompt (see the module docstring); 1.0 each when the average is perfect."""
    if not trajectories:
        return {}
    matrix = np.asarray(list(trajectories.values()), dtype=np.float64)
    baseline = matrix.mean(axis=0)
    worst = float(((1.0 - baseline) ** 2).sum())
    scores = 1.0 - ((matrix - baseline) ** 2).sum(axis=1) / worst if worst > 0 else np.ones(len(matrix))
    return {prompt_id: round(float(s), 6) for prompt_id, s in zip(trajectories, scores, strict=True)}


def variance_scores(trajectories: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """1-shot RLVR's historical-variance score: the standard deviation of each prompt's accuracy trajectory."""
    return {prompt_id: round(float(np.std(values)), 6) for prompt_id, values in trajectories.items()}


def pass_rate_score(rate: float | None) -> float | None:
    """``p (1 - p)``: the variance of a 0/1 reward at pass rate ``p``. GRPO learns from a prompt only when its
    rollouts disagree (equal rewards give zero advantage), and that happens most often at ``p = 1/2``."""
    return None if rate is None else round(rate * (1.0 - rate), 6)
