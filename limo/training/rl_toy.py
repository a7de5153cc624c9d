"""A toy RL task the tiny model learns on CPU in seconds: answer one fixed digit, in a box.

A random tiny model almost never writes a gradable answer (its tokens are near uniform over the vocabulary),
so every completion would score 0, every advantage would be 0 and GRPO would not move. The toy's starting model
is the tiny model trained (`limo.models.tiny.build_overfit_model`) to answer one prompt with each of the ten
digits, boxed or bare, with equal weight: sampled at temperature 1 it writes one of the twenty answers, so about
one completion in ten has the gold digit and one in two is boxed. The task's prompts ask that question and the
gold is one digit; with the grader (``accuracy``) and ``format`` rewards, GRPO must move the right digit from
~0.1 to ~1 and boxing from ~0.5 to ~1. Tests use it for runs whose rewards vary (so steps really update the
model), ``bench/training/rl_toy.py`` for the reward curve over steps.
"""

from __future__ import annotations

from pathlib import Path

from eval.records import write_jsonl
from limo.models.tiny import build_overfit_model

QUESTION = "Pick a digit."
GOLD = "7"


def toy_pairs() -> list[tuple[str, str]]:
    """The starting model's training pairs: every digit, boxed and bare, for the one question."""
    return [(QUESTION, answer) for d in range(10) for answer in (f"\\boxed{{{d}}}", str(d))]


def build_toy_model(path: str | Path, *, seed: int = 0, steps: int = 120) -> Path:
    """The tiny model trained on `toy_pairs` (about the uniform mixture of its twenty answers)."""
    return build_overfit_model(path, toy_pairs(), seed=seed, steps=steps)


def write_toy_prompts(path: str | Path, count: int = 8, gold: str = GOLD) -> Path:
    """``count`` rows of the task in ``prompts.jsonl`` form (the same question under distinct ids)."""
    provenance = {"source": "limo.training.rl_toy"}
    rows = [{"id": f"toy-{i}", "problem": QUESTION, "gold": gold, "provenance": provenance} for i in range(count)]
    write_jsonl(path, rows)
    return Path(path)
