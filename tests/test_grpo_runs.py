"""GRPO runs whose rewards vary (the toy task of `limo.training.rl_toy`, so every step really updates the model): a
killed run resumed from its checkpoint reproduces the uninterrupted one, and two processes under DeepSpeed ZeRO-3
(torchrun, gloo on CPU) train, gather and save one model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limo.cli.compose import compose
from limo.training.rl_toy import build_toy_model, write_toy_prompts
from tests.launch import run_module
from tests.test_train import _StopAtStep

TINY = [
    "train.system_prompt=null",  # the toy model was trained without a system turn
    "train.global_batch_size=8",
    "train.args.per_device_train_batch_size=4",
    "train.args.num_generations=4",
    "train.args.max_completion_length=6",
    "train.args.learning_rate=1e-3",
    "train.rl.grader_workers=1",
]


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("toy")
    return build_toy_model(folder / "model", steps=40), write_toy_prompts(folder / "prompts.jsonl", count=8)


def _cfg(out: Path, toy: tuple[Path, Path], *extra: str):
    model, prompts = toy
    return compose(
        "rl_demo",
        [f"output_dir={out}", f"train.data={prompts}", f"model.path={model}", "model.build_tiny=false", *TINY, *extra],
    )


def _by_step(history, key):
    return {row["step"]: row[key] for row in history if key in row and "step" in row}


@pytest.mark.slow
def test_a_killed_grpo_run_resumes_where_it_stopped(tmp_path, toy):
    from limo.train import train

    steps = ["train.args.max_steps=4", "train.args.save_strategy=steps", "+train.args.save_steps=2"]
    full = train(_cfg(tmp_path / "full", toy, *steps)).state.log_history
    assert any(_by_step(full, "reward_std").values())  # rollouts disagree: advantages are not all zero, steps update
    stopped = tmp_path / "stopped"
    partial = train(_cfg(stopped, toy, *steps), callbacks=[_StopAtStep(2)])
    assert partial.state.global_step == 2 and (stopped / "train" / "checkpoint-2").is_dir()
    with pytest.raises(FileExistsError, match="train.resume=true"):
        train(_cfg(stopped, toy, *steps))
    resumed = train(_cfg(stopped, toy, *steps, "train.resume=true")).state.log_history
    for key in ("reward", "loss", "completions/mean_length"):
        ours, theirs = _by_step(resumed, key), _by_step(full, key)
        for step in (3, 4):
            assert ours[step] == pytest.approx(theirs[step], rel=1e-5, abs=1e-7), (key, step)
    # the reward history: steps 1-2 from the stopped run, 3-4 from the resumed one, none twice after reading
    from curation.methods.rl_prompts.history import read_history

    history = read_history(stopped)
    assert history.rows == 4 and sum(v is not None for t in history.accuracy.values() for v in t) >= 4


@pytest.mark.slow
def test_two_processes_under_zero3_train_and_save_one_model(tmp_path, repo_root, toy):
    model, prompts = toy
    out = tmp_path / "zero3"
    done = run_module(
        repo_root,
        "limo.train",
        "recipe=rl_demo",
        f"output_dir={out}",
        f"train.data={prompts}",
        f"model.path={model}",
        "model.build_tiny=false",
        *TINY,
        "train.args.per_device_train_batch_size=2",
        "train.args.max_steps=2",
        "deepspeed=zero3",
        two_processes=True,
        timeout=900,
    )
    assert "world size 2: 8 completions/step = 2 per device x 2 accumulation x 2 processes" in done.stdout
    history = json.loads((out / "train" / "log_history.json").read_text())
    assert sorted(_by_step(history, "reward")) == [1, 2] and all("rewards/accuracy/mean" in r for r in history[:2])
    assert sorted(p.name for p in (out / "train" / "prompt_rewards").glob("rank-*.jsonl")) == [
        "rank-0.jsonl",
        "rank-1.jsonl",
    ]
    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(out / "train" / "model")  # the gathered ZeRO-3 weights
    assert sum(p.numel() for p in saved.parameters()) == sum(
        p.numel() for p in AutoModelForCausalLM.from_pretrained(model).parameters()
    )
