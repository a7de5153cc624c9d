"""The GRPO run's plan before anything runs: batch split, steps, completions, tokens, and the GPU-hours they cost.

Counts follow TRL 1.16's ``GRPOTrainer`` (`trl.trainer.utils.RepeatSampler`): a step's global batch counts
*completions* (``per_device_train_batch_size`` x accumulation x processes), ``num_generations`` of them per
prompt. One generation batch (``generation_batch_size`` completions; default one step's worth) is sampled at a
time from ``generation_batch_size / num_generations`` prompts and trains ``steps_per_generation x num_iterations
/ accumulation`` optimizer steps; an incomplete last generation batch of an epoch is dropped. So an epoch of
``rows`` prompt rows (prompts x ``train.rl.repeat``) has ``rows // prompts_per_generation`` generation batches.

GPU-hours (`rl_cost`) are a plan, not a measurement: generation = generated tokens / the vLLM throughput row
of the model size and GPU (`curation/rollouts/spend_data.yaml`, the same table curation's rollouts are priced
with); training = 6 x parameters x tokens for the policy update (per iteration), plus 2 x parameters x tokens
for each extra forward pass (the reference model when ``beta > 0``; the old policy's log-probabilities when
generations are reused), at a stated share of the GPU's peak (`gpu_data.yaml`). Every completion is counted at
``max_completion_length`` (an upper bound: reasoning runs often stop at a third of it), or at
``train.rl.expected_completion_tokens`` when the recipe states one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from curation.rollouts.spend import load_spend_data, lookup_throughput
from eval.records import DataError

GPU_DATA = Path(__file__).with_name("gpu_data.yaml")


class RLPlanError(ValueError):
    """The GRPO batch settings cannot be honoured."""


@dataclass(frozen=True)
class RLPlan:
    """How a GRPO run splits its batches and how much it generates."""

    world_size: int
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    completions_per_step: int
    num_generations: int
    prompts_per_step: float
    generation_batch_size: int
    steps_per_generation: int
    num_iterations: int
    prompts: int
    repeat: int
    steps_per_epoch: int
    total_steps: int
    completions: int
    prompt_tokens_mean: float
    max_completion_length: int

    @property
    def completion_tokens_max(self) -> int:
        return self.completions * self.max_completion_length

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "completion_tokens_max": self.completion_tokens_max}

    def summary(self) -> str:
        return (
            f"world size {self.world_size}: {self.completions_per_step} completions/step = "
            f"{self.per_device_train_batch_size} per device x {self.gradient_accumulation_steps} accumulation x "
            f"{self.world_size} processes = {self.prompts_per_step:g} prompts x {self.num_generations} generations; "
            f"{self.prompts} prompts x {self.repeat} repeat, {self.steps_per_epoch} steps/epoch, {self.total_steps} "
            f"steps; {self.completions:,} completions, at most {self.completion_tokens_max:,} generated tokens "
            f"(max_completion_length {self.max_completion_length}), prompts ~{self.prompt_tokens_mean:,.0f} tokens"
        )


def plan_grpo(
    *,
    per_device: int,
    accumulation: int,
    world_size: int,
    args: dict[str, Any],
    prompts: int,
    repeat: int,
    prompt_tokens_mean: float,
) -> RLPlan:
    """The plan of a GRPO run from its batch split and ``GRPOConfig`` fields (``args``, TRL's defaults otherwise).

    Raises:
        RLPlanError: The global or generation batch is not a multiple of ``num_generations``, or there are fewer
            prompt rows than one generation batch needs.
    """
    generations = int(args.get("num_generations") or 8)
    per_step = per_device * accumulation * world_size
    per_generation_step = per_device * world_size
    generation_batch = int(args.get("generation_batch_size") or 0)
    spg = int(args.get("steps_per_generation") or 0)
    if not generation_batch:
        spg = spg or accumulation
        generation_batch = per_generation_step * spg
    elif not spg:
        spg = generation_batch // per_generation_step
    iterations = int(args.get("num_iterations") or 1)
    _check_divisible(per_step, generation_batch, generations)
    rows, batch_prompts = prompts * repeat, generation_batch // generations
    if rows < batch_prompts:
        raise RLPlanError(
            f"{rows} prompt rows ({prompts} prompts x repeat {repeat}) are fewer than one generation batch needs "
            f"({batch_prompts} prompts = {generation_batch} completions / num_generations {generations}); "
            "raise train.rl.repeat or lower the batch"
        )
    micro_steps = (rows // batch_prompts) * spg * iterations
    steps_per_epoch = max(1, math.ceil(micro_steps / accumulation))
    max_steps = int(args.get("max_steps") or -1)
    epochs = float(args.get("num_train_epochs", 3.0))
    total = max_steps if max_steps > 0 else math.ceil(steps_per_epoch * epochs)
    completions = math.ceil(total * per_step / iterations)
    max_completion = int(args.get("max_completion_length") or 512)
    return RLPlan(
        world_size,
        per_device,
        accumulation,
        per_step,
        generations,
        per_step / generations,
        generation_batch,
        spg,
        iterations,
        prompts,
        repeat,
        steps_per_epoch,
        total,
        completions,
        prompt_tokens_mean,
        max_completion,
    )


def _check_divisible(per_step: int, generation_batch: int, generations: int) -> None:
    batches = (("the global batch (completions per step)", per_step), ("generation_batch_size", generation_batch))
    for name, value in batches:
        if value % generations:
            raise RLPlanError(
                f"{name} {value} is not a multiple of num_generations {generations}: each prompt's "
                f"{generations} completions must fall in one batch; change train.global_batch_size or num_generations"
            )


# ----------------------------------------------------------------------------------------------- GPU-hours


@dataclass(frozen=True)
class RLCost:
    """GPU-hours of a planned GRPO run (see the module docstring for the model)."""

    generation_gpu_hours: float
    training_gpu_hours: float
    generated_tokens: float
    trained_tokens: float
    throughput_source: str
    compute_source: str

    @property
    def total(self) -> float:
        return self.generation_gpu_hours + self.training_gpu_hours

    def lines(self) -> list[str]:
        return [
            f"GPU-hours: {self.total:,.0f} = generation {self.generation_gpu_hours:,.0f} "
            f"({self.generated_tokens:,.0f} generated tokens) + training {self.training_gpu_hours:,.0f} "
            f"({self.trained_tokens:,.0f} tokens through the update)",
            f"  generation priced with: {self.throughput_source}",
            f"  training priced with: {self.compute_source}",
        ]


def rl_cost(
    plan: RLPlan,
    *,
    params: int,
    params_b: float,
    gpu: str,
    tensor_parallel: int = 1,
    beta: float = 0.0,
    completion_tokens: float | None = None,
) -> RLCost:
    """GPU-hours for ``plan`` on ``gpu`` (``params_b``: the model size the throughput table is looked up with).

    Raises:
        ValueError: No throughput row or peak figure for that GPU (the message lists what the tables have).
    """
    row = lookup_throughput(load_spend_data().throughput, params_b, gpu, tensor_parallel)
    per_completion = completion_tokens if completion_tokens is not None else plan.max_completion_length
    generated = plan.completions * per_completion
    generation_hours = generated / row.output_tokens_per_s / 3600 * tensor_parallel
    tokens = plan.completions * (plan.prompt_tokens_mean + per_completion)
    reused = plan.num_iterations > 1 or plan.steps_per_generation > plan.gradient_accumulation_steps
    forwards = (1 if beta > 0 else 0) + (1 if reused else 0)
    flops = (6 * plan.num_iterations + 2 * forwards) * params * tokens
    peak, mfu, source = peak_flops(gpu)
    training_hours = flops / (peak * mfu) / 3600
    return RLCost(
        generation_hours, training_hours, generated, tokens * plan.num_iterations, row.source.split(":")[0], source
    )


def peak_flops(gpu: str) -> tuple[float, float, str]:
    """Peak dense BF16 FLOP/s of ``gpu``, the assumed model-FLOPs utilisation, and their sources (`gpu_data.yaml`).

    Raises:
        ValueError: The file has no entry for ``gpu``.
    """
    data = yaml.safe_load(GPU_DATA.read_text(encoding="utf-8"))
    peaks, mfu = data["peak_bf16_tflops"], data["mfu"]
    if gpu not in peaks:
        raise ValueError(f"{GPU_DATA}: no peak BF16 figure for gpu_type={gpu!r} (listed: {', '.join(sorted(peaks))})")
    try:
        value, utilisation = float(peaks[gpu]["value"]) * 1e12, float(mfu["value"])
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{GPU_DATA}: malformed entry for {gpu!r} or mfu ({err})") from err
    source = f"{gpu} {peaks[gpu]['value']} TFLOP/s BF16 dense at {utilisation:.0%} MFU ({GPU_DATA.name})"
    return value, utilisation, source
