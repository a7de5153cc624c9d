"""Per-example loss weights and last-turn-only loss for SFT (RISE): ``train.trainer: weighted_sft``.

TRL's `SFTTrainer` averages token losses over the batch and has no per-example weight. The smallest
extension that keeps everything else TRL's (tokenisation, chat template with generation markers,
assistant-only labels, truncation, DeepSpeed / accelerate wiring) is a subclass that

1. keeps two extra dataset columns through TRL's preparation: ``weight`` (float) and ``last_turn_only``
   (bool, from ``loss_turns: "last"``);
2. after TRL has built the labels (loss on every assistant turn), masks all but the last contiguous run of
   label tokens in ``last_turn_only`` rows — the last assistant turn, its end-of-turn token included;
3. collates ``weight`` into a tensor beside TRL's batch;
4. computes the loss as ``sum_i w_i * l_i / n``: ``l_i`` is example ``i``'s mean token loss over its label
   tokens, ``n`` the examples in the micro-batch. The weights average 1 over the dataset (curation
   normalises them), so this is an unbiased estimate of the dataset's weighted mean loss, and a batch of
   weight-1 rows gives the per-example mean loss.

Gradient accumulation and data parallelism: the trainer reports that the model does not normalise the loss
itself (``model_accepts_loss_kwargs = False``), so `transformers.Trainer` divides each micro-batch loss by
the accumulation steps; DDP and DeepSpeed average gradients over ranks (DeepSpeed with ``scale_wrt_gas``
off, as the Trainer sets it). The result is the mean over the global batch of ``w_i * l_i`` whenever
micro-batches hold equally many examples. The logits are computed in full (not TRL's fused LM head), which
costs memory on long sequences; packing and padding-free batches are refused (examples would share rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from trl import SFTTrainer

WEIGHT, LAST_TURN_ONLY = "weight", "last_turn_only"
WEIGHTING_NOTE = (
    "Weighted per example (`train.trainer: weighted_sft`): each example's mean token loss times its `weight`, "
    "averaged over the batch; rows with `loss_turns: last` carry loss on their last assistant turn only."
)
IGNORE = -100


def keep_last_span(labels: Sequence[int]) -> list[int]:
    """Mask every label token before the last contiguous run of non-ignored labels."""
    out = list(labels)
    end = len(out)
    while end > 0 and out[end - 1] == IGNORE:
        end -= 1
    start = end
    while start > 0 and out[start - 1] != IGNORE:
        start -= 1
    return [IGNORE] * start + out[start:]


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over each row's label tokens (0 for a row without any)."""
    shift_logits, shift_labels = logits[:, :-1, :].float(), labels[:, 1:]
    token_loss = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(shift_labels.shape)
    counts = (shift_labels != IGNORE).sum(dim=1)
    return token_loss.sum(dim=1) / counts.clamp(min=1)


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i * l_i / n`` over the micro-batch."""
    return (weights.to(logits.device, torch.float32) * per_example_loss(logits, labels)).mean()


class WeightedCollator:
    """Wrap TRL's collator: pop ``weight`` from each example and return it as a float tensor."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        weights = [float(example.pop(WEIGHT, 1.0)) for example in examples]
        batch = self.inner(examples)
        batch[WEIGHT] = torch.tensor(weights, dtype=torch.float32)
        return batch


class WeightedSFTTrainer(SFTTrainer):
    """`trl.SFTTrainer` with per-example loss weights and last-assistant-turn-only loss (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        config = kwargs.get("args")
        if config is not None and (getattr(config, "packing", False) or getattr(config, "padding_free", False)):
            raise ValueError("train.trainer=weighted_sft: packing / padding_free would mix examples in one row")
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False  # we normalise per example; the Trainer divides by accumulation
        self.data_collator = WeightedCollator(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        columns: list[str] = list(self._signature_columns or [])
        if WEIGHT not in columns:
            self._signature_columns = [*columns, WEIGHT]  # type: ignore[assignment]

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, *rest: Any, **kwargs: Any) -> Any:
        prepared = super()._prepare_dataset(dataset, processing_class, args, *rest, **kwargs)
        if LAST_TURN_ONLY not in (prepared.column_names or []):
            return prepared
        if not args.assistant_only_loss and any(prepared[LAST_TURN_ONLY]):
            raise ValueError(
                "loss_turns: last needs train.args.assistant_only_loss=true (without it the labels cover the whole "
                "conversation, and the last assistant turn cannot be told apart)"
            )
        return prepared.map(
            lambda row: {"labels": keep_last_span(row["labels"]) if row[LAST_TURN_ONLY] else row["labels"]},
            remove_columns=[LAST_TURN_ONLY],
            desc="Loss on the last assistant turn",
        )

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        weights, labels = inputs.pop(WEIGHT), inputs.pop("labels")
        outputs = model(**inputs, use_cache=False)
        loss = weighted_loss(outputs.logits, labels, weights)
        return (loss, outputs) if return_outputs else loss


def weighted_rows(
    rows: Sequence[Mapping[str, Any]], weights: Sequence[float], loss_turns: Sequence[str]
) -> list[dict]:
    """Chat rows with the ``weight`` and ``last_turn_only`` columns the weighted trainer reads."""
    return [
        {**row, WEIGHT: float(w), LAST_TURN_ONLY: turns == "last"}
        for row, w, turns in zip(rows, weights, loss_turns, strict=True)
    ]
