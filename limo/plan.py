"""`python -m limo.plan recipe=<name> num_gpus=8 [num_nodes=1] [gpu_memory_gb=80]`: will this recipe fit?

Estimates per-GPU memory (model states under the recipe's ZeRO stage via DeepSpeed's estimators,
activations at ``max_length``, the LM head's logits) and CPU memory for offload, then prints what fits on
``num_gpus x gpu_memory_gb``: the recipe as written and the usual alternatives. Runs offline in seconds
(the model shape comes from AutoConfig or the model group's ``shape:``) and starts no processes. A line under the
header says which chat template and end-of-turn token the run uses and where each comes from (the model's own or its
model group's: `limo.models.chat`).

A GRPO recipe (``train.trainer: grpo``) adds the reference model and generation to the memory (activations at
``train.rl.max_prompt_length + max_completion_length``), then the run's plan — completions per step, steps,
generated tokens (`limo.training.rl_plan`) — and its GPU-hours on ``gpu_type``, before anything runs. The prompt
count comes from the prompts file when it exists, else from ``train.rl.expected_prompts``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from curation.rollouts.spend import load_spend_data
from eval.options import OptionsError
from limo.cli.entry import hydra_entry, reported_errors
from limo.config.sweeps import input_path
from limo.models.chat import require_chat_template
from limo.models.tiny import ensure_model
from limo.setup.train import default_trainer
from limo.training.batch_plan import split_global_batch
from limo.training.build import trained_model_path
from limo.training.memory import (
    GenerationSetup,
    alternatives,
    estimate_memory,
    lora_param_count,
    model_shape,
    render_plan,
    run_setup,
)
from limo.training.options import RLOptions, TrainOptions, build_train_options
from limo.training.rl_data import load_prompts
from limo.training.rl_plan import plan_grpo, rl_cost
from limo.training.trainers import TRAINERS

RESERVE_GIB = 4.0  # CUDA context, NCCL buffers, allocator fragmentation


def plan(cfg: DictConfig) -> str:
    """The planner's report for a composed config."""
    section = build_train_options(cfg)
    entry = TRAINERS.get(section.trainer or default_trainer(cfg))  # an unknown name fails in limo.train, not here
    generates = entry is not None and entry.generates
    rl = (section.rl or RLOptions()) if generates else None
    num_gpus, num_nodes = int(cfg.num_gpus), int(cfg.num_nodes)
    per_device, accumulation = split_global_batch(section.global_batch_size, section.args, num_gpus * num_nodes)
    model_cfg = {**OmegaConf.to_container(cfg.model, resolve=True), "path": trained_model_path(str(cfg.model.path))}  # type: ignore[dict-item]
    chat = chat_line(model_cfg)  # first: a tiny model is built there, and its shape read after
    shape, source = model_shape(model_cfg)
    lora = lora_param_count(shape, section.lora.r, list(section.lora.target_modules)) if section.lora else 0
    deepspeed = OmegaConf.to_container(cfg.deepspeed, resolve=True) if cfg.get("deepspeed") else None
    args = dict(section.args)
    if rl is not None:  # GRPO trains on prompt + completion
        args["max_length"] = rl.max_prompt_length + int(args.get("max_completion_length") or 512)
    setup = run_setup(
        args,
        deepspeed,
        cfg.model,
        num_gpus=num_gpus,
        num_nodes=num_nodes,
        per_device_batch=per_device,
        lora_params=lora,
    )
    world = num_gpus * num_nodes
    split = (per_device, accumulation, world)
    generation = generation_setup(args, split, float(cfg.gpu_memory_gb), lora) if rl else None
    estimates = {label: estimate_memory(shape, option, generation) for label, option in alternatives(setup).items()}
    header = (
        f"limo plan: recipe {cfg.name}, {num_nodes} node(s) x {num_gpus} GPU(s), ZeRO stage {setup.zero_stage}"
        f"{' + offload' if setup.offload_optimizer else ''}, {'LoRA' if lora else 'full fine-tune'}, "
        f"max_length {setup.seq_len}, per-device batch {per_device}, "
        f"activation checkpointing {'on' if setup.activation_checkpointing else 'off'}"
        + (f", GRPO generation by {generation.engine}" if generation else "")
    )
    text = header + "\n" + chat + "\n"
    text += render_plan(shape, source, estimates, float(cfg.gpu_memory_gb), RESERVE_GIB)
    if rl is not None:
        text += "\n" + "\n".join(rl_lines(cfg, section, rl, args, (per_device, accumulation), shape.params))
    return text


def chat_line(model_cfg: dict[str, Any]) -> str:
    """Which chat template and end-of-turn token the run would use, and where each comes from; a model with neither
    its own template nor the group's is said here, not refused (planning needs no template; training does)."""
    tiny = ensure_model(model_cfg) if model_cfg.get("build_tiny") else None
    try:
        return require_chat_template(model_cfg, tiny).line()
    except OptionsError as err:
        return f"chat template MISSING: limo.train and limo.evaluate will stop ({err})"


def generation_setup(args: dict[str, Any], split: tuple[int, int, int], gpu_gib: float, lora: int) -> GenerationSetup:
    """What GRPO's ``GRPOConfig`` fields say about the reference model and generation (TRL's defaults otherwise);
    ``split`` is (per-device batch, accumulation, world size)."""
    per_device, accumulation, world = split
    engine = "transformers"
    if args.get("use_vllm"):
        engine = "vllm_server" if args.get("vllm_mode", "colocate") == "server" else "vllm_colocate"
    spg = int(args.get("steps_per_generation") or accumulation)
    generation_batch = int(args.get("generation_batch_size") or per_device * world * spg)
    return GenerationSetup(
        reference=float(args.get("beta", 0.0)) > 0 and not lora,
        engine=engine,
        batch=max(1, generation_batch // world),
        seq_len=int(args["max_length"]),
        vllm_share=float(args.get("vllm_gpu_memory_utilization", 0.3)),
        gpu_gib=gpu_gib,
        gather_weights=bool(args.get("ds3_gather_for_generation", True)),
    )


def rl_lines(
    cfg: DictConfig, section: TrainOptions, rl: RLOptions, args: dict[str, Any], split: tuple[int, int], params: int
) -> list[str]:
    """The GRPO run's plan and GPU-hours, or why they cannot be computed yet."""
    prompts = prompt_stats(cfg, section, rl)
    if prompts is None:
        return ["RL plan: the prompts file does not exist yet (curate first) and train.rl.expected_prompts is unset"]
    count, prompt_tokens, where = prompts
    world = int(cfg.num_gpus) * int(cfg.num_nodes)
    grpo = plan_grpo(
        per_device=split[0],
        accumulation=split[1],
        world_size=world,
        args=args,
        prompts=count,
        repeat=rl.repeat,
        prompt_tokens_mean=prompt_tokens,
    )
    cost = rl_cost(
        grpo,
        params=params,
        params_b=params / 1e9,
        gpu=str(cfg.gpu_type),
        beta=float(args.get("beta", 0.0)),
        tensor_parallel=int(args.get("vllm_tensor_parallel_size", 1)),
        completion_tokens=rl.expected_completion_tokens,
    )
    bound = "" if rl.expected_completion_tokens else " (every completion at max_completion_length: an upper bound)"
    return [
        f"RL plan ({where}): {grpo.summary()}",
        *cost.lines(),
        f"  on {world} x {cfg.gpu_type}: about {cost.total / world:,.1f} hours of wall-clock{bound}",
    ]


def prompt_stats(cfg: DictConfig, section: TrainOptions, rl: RLOptions) -> tuple[int, float, str] | None:
    """Prompt count and mean prompt tokens (characters / chars_per_token, system turn included), and their source."""
    path = Path(section.data or input_path(cfg, "curate/prompts.jsonl"))
    per_token = load_spend_data().chars_per_token
    system = len(section.system_prompt or "")
    if path.is_file():
        prompts = load_prompts(path).prompts
        chars = sum(len(rl.user_template.replace("{problem}", p.problem)) + system for p in prompts) / len(prompts)
        return len(prompts), chars / per_token, f"{len(prompts)} prompts in {path}"
    if rl.expected_prompts:
        where = f"train.rl.expected_prompts {rl.expected_prompts}, each at max_prompt_length"
        return rl.expected_prompts, float(rl.max_prompt_length), where
    return None


@hydra_entry("plan")
def main(cfg: DictConfig) -> None:
    with reported_errors("plan", cfg):
        print(plan(cfg))


if __name__ == "__main__":
    main()
