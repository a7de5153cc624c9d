"""Benchmark: does the GRPO loop optimise? The toy task's reward curve over steps, for several seeds, and where a
GRPO step's time goes (generation / reward / update) on CPU with the tiny model.

The toy (`limo.training.rl_toy`): the tiny model trained to answer "Pick a digit." with each digit, boxed or bare,
so at temperature 1 about one completion in ten has the gold 7 and one in two is boxed; GRPO with limo's grader
(``accuracy``) and the ``format`` reward must raise both towards 1. Each seed runs `limo.train` with the
``rl_demo`` recipe's trainer (`train.trainer: grpo`, one process, fp32) on the toy prompts: 8 prompts, 16
completions per step (2 prompts x 8), 8 new tokens, lr 1e-3, no KL. The curve is printed every ``--every`` steps
(accuracy / format, the mean over that step's completions) and drawn into ``--plot`` when given.

Step split: one more run (seed 0, 10 steps) with a `GRPOTrainer` subclass that only times TRL's ``_generate``
(sampling with transformers) and ``_calculate_rewards`` (the grader pool, the format reward); TRL's own
``step_time`` is the whole optimizer step, so update = step_time - generation - reward (log-probabilities, loss,
backward, optimizer). Medians, since two one-off waits fall in single steps (the pool's start, a worker's first
slow-path pair starting the grader's symbolic subprocess).
Command: python bench/training/rl_toy.py [--seeds 0 1 2] [--steps 40] [--plot curve.png]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
for key, value in {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}.items():
    os.environ.setdefault(key, value)

SETTINGS = [
    "model.build_tiny=false",
    "train.system_prompt=null",
    "train.global_batch_size=16",
    "train.args.per_device_train_batch_size=16",
    "train.args.num_generations=8",
    "train.args.max_completion_length=8",
    "train.args.learning_rate=1e-3",
    "train.args.beta=0.0",
    "train.rl.grader_workers=1",
    "+train.args.disable_tqdm=true",
]


def run(model: Path, prompts: Path, out: Path, seed: int, steps: int, trainer_class: type | None = None) -> Any:
    from limo.cli.compose import compose
    from limo.train import train

    shutil.rmtree(out, ignore_errors=True)
    overrides = [
        f"output_dir={out}",
        f"model.path={model}",
        f"train.data={prompts}",
        f"seed={seed}",
        f"train.args.max_steps={steps}",
        *SETTINGS,
    ]
    return train(compose("rl_demo", overrides), trainer_class=trainer_class)


def timed_trainer() -> type:
    """A `GRPOTrainer` that records the seconds of each generation and each reward call (nothing else changes)."""
    from trl import GRPOTrainer

    class TimedGRPOTrainer(GRPOTrainer):
        generation_s: list[float] = []
        reward_s: list[float] = []

        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            out = super()._generate(*args, **kwargs)
            self.generation_s.append(time.perf_counter() - started)
            return out

        def _calculate_rewards(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            out = super()._calculate_rewards(*args, **kwargs)
            self.reward_s.append(time.perf_counter() - started)
            return out

    return TimedGRPOTrainer


def curve(history: list[dict], key: str) -> list[float]:
    return [row[key] for row in history if key in row and "step" in row]


def plot(curves: dict[int, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for seed, series in curves.items():
        for ax, key in zip(axes, ("accuracy", "format"), strict=True):
            ax.plot(range(1, len(series[key]) + 1), series[key], label=f"seed {seed}")
            ax.set_title(f"rewards/{key}/mean")
            ax.set_xlabel("step")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    import transformers

    from limo.training.rl_toy import build_toy_model, write_toy_prompts

    transformers.logging.set_verbosity_error()
    work = Path(tempfile.mkdtemp(prefix="rl_toy-"))
    model, prompts = build_toy_model(work / "model"), write_toy_prompts(work / "prompts.jsonl")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    curves: dict[int, dict[str, list[float]]] = {}
    for seed in args.seeds:
        started = time.perf_counter()
        history = run(model, prompts, work / f"seed{seed}", seed, args.steps).state.log_history
        curves[seed] = {k: curve(history, f"rewards/{k}/mean") for k in ("accuracy", "format")}
        shown = range(0, args.steps, args.every)
        for key in ("accuracy", "format"):
            values = " ".join(f"{curves[seed][key][i]:.2f}" for i in shown if i < len(curves[seed][key]))
            print(f"seed {seed} {key:8s} (steps {', '.join(str(i + 1) for i in shown)}): {values}")
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s")
    if args.plot:
        plot(curves, args.plot)
    timed = timed_trainer()
    state = run(model, prompts, work / "timed", 0, 10, trainer_class=timed).state
    # medians: step 1 waits for the grading pool to start, and a grading worker's first LaTeX-heavy pair starts the
    # grader's symbolic subprocess (about a second, once per worker)
    step = statistics.median(curve(state.log_history, "step_time"))
    generation, reward = statistics.median(timed.generation_s), statistics.median(timed.reward_s)
    update = step - generation - reward
    print(
        f"step split, medians over 10 steps (16 completions x 8 new tokens): step {step * 1000:.0f} ms = generation "
        f"{generation * 1000:.0f} ms ({generation / step:.0%}) + reward {reward * 1000:.0f} ms ({reward / step:.0%})"
        f" + update {update * 1000:.0f} ms ({update / step:.0%})"
    )
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
