"""Global batch -> per-device batch and gradient accumulation, and the step / token budget of a run.

Recipes state the global batch (what a paper reports); the split depends on the world size, which only
the launcher knows. Step counts follow `transformers.Trainer`: each rank's dataloader yields
``ceil(examples / (world * per_device))`` batches per epoch (no drop_last) and an optimizer step takes
``gradient_accumulation_steps`` of them, the last partial group included.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


class BatchPlanError(ValueError):
    """The batch settings cannot be honoured on this world size."""


@dataclass(frozen=True)
class BatchPlan:
    """How a run splits its global batch and how long it is."""

    world_size: int
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    global_batch_size: int
    examples: int
    epochs: float
    steps_per_epoch: int
    total_steps: int
    tokens_per_step: float
    total_tokens: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"world size {self.world_size}: global batch {self.global_batch_size} = {self.per_device_train_batch_size}"
            f" per device x {self.gradient_accumulation_steps} accumulation x {self.world_size} processes; "
            f"{self.examples} examples, {self.steps_per_epoch} steps/epoch, {self.total_steps} steps; "
            f"~{self.tokens_per_step:,.0f} tokens/step, ~{self.total_tokens:,.0f} tokens in total"
            + self.short_last_step()
        )

    def short_last_step(self) -> str:
        """A note when an epoch's last step is short: with one process it takes the examples left over (a partial
        accumulation); with several, accelerate's ``even_batches`` repeats the epoch's first examples to fill the
        ranks that have none, so that step's loss depends on how the batch is split across processes."""
        left = self.examples % self.global_batch_size if self.global_batch_size else 0
        if not left:
            return ""
        return (
            f"; note: {self.examples} examples is not a multiple of the global batch, so each epoch's last step "
            f"takes {left} of {self.global_batch_size} (with several processes, repeats fill it)"
        )


def split_global_batch(global_batch: int | None, args: dict[str, Any], world_size: int) -> tuple[int, int]:
    """``(per_device_train_batch_size, gradient_accumulation_steps)`` for ``global_batch`` on ``world_size``.

    Args:
        global_batch: ``train.global_batch_size``; None keeps what ``args`` says (TRL defaults otherwise).
        args: ``train.args`` (SFTConfig fields).
        world_size: Number of training processes.

    Raises:
        BatchPlanError: ``global_batch`` is set together with ``gradient_accumulation_steps``, or is not a
            multiple of ``per_device_train_batch_size * world_size``.
    """
    per_device = int(args.get("per_device_train_batch_size") or 1)
    if global_batch is None:
        return per_device, int(args.get("gradient_accumulation_steps") or 1)
    if args.get("gradient_accumulation_steps") is not None:
        raise BatchPlanError(
            "set either train.global_batch_size or train.args.gradient_accumulation_steps, not both: the "
            "accumulation is derived from the global batch and the world size"
        )
    per_step = per_device * world_size
    if global_batch <= 0 or global_batch % per_step:
        raise BatchPlanError(
            f"train.global_batch_size={global_batch} is not a positive multiple of per_device_train_batch_size "
            f"({per_device}) x world size ({world_size}) = {per_step}; choose a global batch divisible by {per_step} "
            "or change the number of processes"
        )
    return per_device, global_batch // per_step


def plan_batches(
    *, per_device: int, accumulation: int, world_size: int, lengths: list[int], epochs: float, max_steps: int = -1
) -> BatchPlan:
    """The step and token budget of a run whose examples have ``lengths`` tokens each.

    Args:
        per_device: Per-device batch size.
        accumulation: Gradient accumulation steps.
        world_size: Number of training processes.
        lengths: Tokens per example (chat-templated).
        epochs: ``num_train_epochs``.
        max_steps: ``max_steps`` (> 0 overrides the epochs).
    """
    effective = per_device * accumulation * world_size
    batches_per_rank = math.ceil(len(lengths) / (per_device * world_size))
    steps_per_epoch = max(1, math.ceil(batches_per_rank / accumulation))
    total_steps = max_steps if max_steps > 0 else math.ceil(steps_per_epoch * epochs)
    examples_per_step = min(effective, len(lengths))
    tokens_per_step = sum(lengths) / len(lengths) * examples_per_step
    return BatchPlan(
        world_size=world_size,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        global_batch_size=effective,
        examples=len(lengths),
        epochs=total_steps / steps_per_epoch if max_steps > 0 else epochs,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        tokens_per_step=tokens_per_step,
        total_tokens=tokens_per_step * total_steps,
    )
