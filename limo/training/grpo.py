"""RL with verifiable rewards (``train.trainer: grpo``) on TRL's `GRPOTrainer`, from plain inputs (`TrainRun`).

The same run shape as SFT (`limo.training.sft`): read the prompts (``curate/prompts.jsonl`` of the run, or
``train.data``), build the tokenizer and the ``GRPOConfig`` (DeepSpeed dict included) before the model, check
prompt lengths, plan (`limo.training.rl_plan`: completions per step, steps, generated tokens), resume from the last
checkpoint when asked, train, and write ``train/{plan.json,config.yaml,log_history.json,report.md,curves.png,
model/}`` with a model card naming the prompts and the reward. Only rank 0 writes shared files.

The reward is our grader (`limo.training.rl_rewards`): each training process keeps its own grading pool
(`eval.grading.pool`) for the run and closes it at the end, and writes its per-prompt reward rows to
``train/prompt_rewards/rank-<r>.jsonl`` (a fresh run starts them empty; a resumed one appends, and the reader
keeps the last row of a step). Generation runs with transformers on CPU and by default on GPU; TRL's vLLM
(``train.args.use_vllm: true`` with ``vllm_mode: colocate`` or ``server``) is a GRPOConfig field like any other.
The starting model may be an SFT run's: ``model.path=<run dir>`` reads its ``train/model``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curation.reward_history import HISTORY_DIR, META_FILE, history_meta, rank_file
from eval.grading.judge import build_judge
from eval.grading.pool import GraderPool
from eval.records import write_json, write_text_atomic
from limo.models.tiny import ensure_model
from limo.training import build
from limo.training.data import length_report
from limo.training.distributed import ProcessInfo, process_info
from limo.training.options import RLOptions, TrainRun
from limo.training.rl_data import PromptData, check_prompt_lengths, load_prompts, prompt_lengths, prompt_rows
from limo.training.rl_plan import RLPlan, plan_grpo
from limo.training.rl_report import plot_curves, render_card, render_report, step_rows
from limo.training.rl_rewards import AccuracyReward, format_reward

# GRPOConfig fields the model card shows: what shapes an RL run beyond the learning rate
CARD_SETTINGS = (
    "num_generations",
    "temperature",
    "max_completion_length",
    "beta",
    "entropy_coef",
    "loss_type",
    "learning_rate",
    "use_vllm",
)


def run_grpo(run: TrainRun, entry: Any) -> Any:
    """Train on ``run.paths.data`` with GRPO and ``entry``'s arguments (its `limo.training.trainers.Trainer`);
    returns the trainer (tests read its ``state.log_history``)."""
    options, paths, proc = run.options, run.paths, process_info()
    rl = options.rl or RLOptions()
    data = load_prompts(paths.data)
    model_path = ensure_model(run.model)
    tokenizer = build.build_tokenizer(model_path, run.model)
    rows = prompt_rows(data.prompts, options.system_prompt, rl.user_template, rl.repeat)
    split, args = entry.build_args(run, proc.world_size)
    config = build_grpo_config(args)
    lengths = prompt_lengths(tokenizer, rows[:: rl.repeat])
    check_prompt_lengths([p.id for p in data.prompts], lengths, rl.max_prompt_length, data.path)
    plan, checkpoint = plan_run(run, proc, split, args, data, lengths)
    accuracy = build_accuracy_reward(run, rl, proc, resume=checkpoint is not None)
    try:
        trainer = build_grpo_trainer(run, model_path, tokenizer, config, rows, [accuracy, *extra_rewards(rl)])
        result = trainer.train(resume_from_checkpoint=checkpoint)
        build.save_final_model(
            trainer,
            tokenizer,
            paths.model_dir,
            str(run.model["eos_token"]),
            base_path=model_path,
            model_init_kwargs=config.model_init_kwargs or {},
        )
    finally:
        accuracy.close()
    if proc.is_main:
        write_outputs(
            run,
            rl,
            data,
            plan,
            config,
            trainer.state.log_history,
            {**result.metrics, "global_step": result.global_step},
        )
    return trainer


def build_grpo_config(args: dict[str, Any]) -> Any:
    """`trl.GRPOConfig` from plain arguments (registers the DeepSpeed config before the model is built)."""
    from trl import GRPOConfig

    return GRPOConfig(**args)


def plan_run(
    run: TrainRun,
    proc: ProcessInfo,
    split: tuple[int, int],
    args: dict[str, Any],
    data: PromptData,
    lengths: list[int],
) -> tuple[RLPlan, str | None]:
    """The GRPO plan and the checkpoint to resume; rank 0 prints the plan, writes ``plan.json`` and
    ``config.yaml``, and the reward history's ``meta.json``."""
    rl = run.options.rl or RLOptions()
    report = length_report([p.id for p in data.prompts], lengths, rl.max_prompt_length)
    plan = plan_grpo(
        per_device=split[0],
        accumulation=split[1],
        world_size=proc.world_size,
        args=args,
        prompts=len(data.prompts),
        repeat=rl.repeat,
        prompt_tokens_mean=report.mean,
    )
    checkpoint = build.find_resume_checkpoint(run.paths.train_dir, run.options.resume)
    if proc.is_main:
        info = {"path": data.path, "sha256": data.checksum, "kind": "rl_prompts"}
        print(f"[train] prompts {data.path} (sha256 {data.checksum})\n[train] prompt lengths: {report.summary()}")
        print(f"[train] plan: {plan.summary()}", flush=True)
        write_json(run.paths.plan, {"plan": plan.to_dict(), "prompt_lengths": report.to_dict(), "data": info})
        write_text_atomic(run.paths.config, run.config_yaml)
        if rl.prompt_rewards:
            write_history_meta(run, plan, data)
    return plan, checkpoint


def build_accuracy_reward(run: TrainRun, rl: RLOptions, proc: ProcessInfo, *, resume: bool) -> AccuracyReward:
    """This process's grading pool and judge behind the ``accuracy`` reward, and its reward-history file."""
    pool = GraderPool(workers=rl.grader_workers, timeout_s=rl.grader_timeout_s)
    judge = None
    if rl.grader.uses_judge:
        judge = build_judge(rl.grader.judge, Path(run.paths.train_dir) / "judge", task=f"judge-rank{proc.rank}")
    history = None
    if rl.prompt_rewards:
        folder = Path(run.paths.output_dir) / HISTORY_DIR
        folder.mkdir(parents=True, exist_ok=True)
        history = folder / rank_file(proc.rank)
        if not resume:
            history.write_text("", encoding="utf-8")  # a fresh run: no rows from an earlier one
    return AccuracyReward(pool, rl.grader.policy, judge, history)


def extra_rewards(rl: RLOptions) -> list[Any]:
    """The reward functions after ``accuracy`` (always first), in ``train.rl.rewards`` order."""
    return [format_reward for name in rl.rewards[1:] if name == "format"]


def build_grpo_trainer(
    run: TrainRun, model_path: str, tokenizer: Any, config: Any, rows: list[dict[str, Any]], rewards: list[Any]
) -> Any:
    """TRL's `GRPOTrainer` (or ``run.trainer_class``); it loads policy (and reference, when ``beta > 0``) from
    ``model_path`` with ``config.model_init_kwargs``."""
    from trl import GRPOTrainer

    weights = config.reward_weights
    if weights is not None and len(weights) != len(rewards):
        raise ValueError(
            f"train.args.reward_weights has {len(weights)} weights for {len(rewards)} rewards "
            f"(train.rl.rewards: {[getattr(r, '__name__', r) for r in rewards]})"
        )
    return (run.trainer_class or GRPOTrainer)(
        model=model_path,
        reward_funcs=rewards,
        args=config,
        train_dataset=build.build_dataset(rows),
        processing_class=tokenizer,
        peft_config=build.build_peft_config(run.options.lora),
        callbacks=list(run.callbacks),
    )


def write_history_meta(run: TrainRun, plan: RLPlan, data: PromptData) -> None:
    """``train/prompt_rewards/meta.json``: what a reader needs to group the reward rows into epochs."""
    meta = history_meta(
        plan.steps_per_epoch, plan.num_generations, len(data.prompts), {"path": data.path, "sha256": data.checksum}
    )
    write_text_atomic(Path(run.paths.output_dir) / HISTORY_DIR / META_FILE, json.dumps(meta, indent=1))


def write_outputs(
    run: TrainRun,
    rl: RLOptions,
    data: PromptData,
    plan: RLPlan,
    config: Any,
    log_history: list[dict[str, Any]],
    metrics: dict[str, Any],
) -> None:
    """``log_history.json``, ``report.md`` + ``curves.png`` and the model card."""
    train_dir = Path(run.paths.train_dir)
    write_json(run.paths.log_history, log_history)
    rows = step_rows(log_history)
    plotted = plot_curves(rows, train_dir / "curves.png")
    write_text_atomic(train_dir / "report.md", render_report(run.recipe, plan, rows, plotted))
    last = rows[-1] if rows else {}
    settings = {k: getattr(config, k) for k in CARD_SETTINGS}
    card = render_card(
        recipe=run.recipe,
        base_model=str(run.model["path"]),
        prompts=(data.path, data.checksum, len(data.prompts)),
        rewards=rl.rewards,
        weights=config.reward_weights,
        policy=rl.grader.policy,
        settings=settings,
        plan=plan,
        metrics={**metrics, **{f"last {k}": v for k, v in last.items() if k.startswith(("reward", "rewards/"))}},
        system_prompt=run.options.system_prompt,
        user_template=rl.user_template,
    )
    write_text_atomic(f"{run.paths.model_dir}/README.md", card)
    steps, reward = metrics.get("global_step"), last.get("reward")
    print(f"[train] done: {steps} steps, last reward {reward} -> {run.paths.model_dir}")
