"""SFT with a per-example loss weight and last-turn-only loss (RISE): ``train.trainer: weighted_sft``.

TRL has no hook for per-example weights, so this is the one SFT trainer subclass (docs/architecture.md,
"Conventions": subclass only where TRL has none). Everything else stays TRL's — tokenisation, the chat
template with generation markers, assistant-only labels, truncation, DeepSpeed / accelerate wiring:

1. Two extra dataset columns survive TRL's preparation: ``weight`` (float) and ``last_turn_only`` (bool,
   from ``loss_turns: "last"``).
2. After TRL has built the labels (loss on every assistant turn), ``last_turn_only`` rows keep only the last
   contiguous run of label tokens: the last assistant turn, its end-of-turn token included.
3. The loss is TRL's own — summed token log-probabilities from its fused LM head divided by the number of
   label tokens in the whole global batch (``num_items_in_batch``), times the world size as
   `SFTTrainer.compute_loss` does — with each example's tokens scaled by its weight. With every weight 1.0
   it equals `SFTTrainer`'s loss exactly (tests check this in one process and under 2-process ZeRO-3), and
   it is invariant to how the global batch is split into micro-batches and processes.

Padding-free batches and packing are refused: several examples would share one row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from trl import SFTTrainer

WEIGHT, LAST_TURN_ONLY = "weight", "last_turn_only"
WEIGHTING_NOTE = (
    "Weighted per example (`train.trainer: weighted_sft`): every label token's loss times its example's "
    "`weight`, normalised over the label tokens of the global batch as in plain SFT; rows with "
    "`loss_turns: last` carry loss on their last assistant turn only."
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


def weighted_rows(
    rows: Sequence[Mapping[str, Any]], weights: Sequence[float], loss_turns: Sequence[str]
) -> list[dict[str, Any]]:
    """Chat rows with the ``weight`` and ``last_turn_only`` columns the weighted trainer reads."""
    return [
        {**row, WEIGHT: float(w), LAST_TURN_ONLY: turns == "last"}
        for row, w, turns in zip(rows, weights, loss_turns, strict=True)
    ]


class WeightedCollator:
    """Wrap TRL's collator: pop each example's ``weight`` and return it as a float tensor beside the batch."""

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
        # prompt -> completion rows (a template without generation markers, `limo.training.template`) are labelled on
        # their completion alone, which is the last assistant turn
        if not (args.assistant_only_loss or args.completion_only_loss) and any(prepared[LAST_TURN_ONLY]):
            raise ValueError(
                "loss_turns: last needs train.args.assistant_only_loss=true (without it the labels cover the whole "
                "conversation, and the last assistant turn cannot be told apart)"
            )
        return prepared.map(
            lambda row: {"labels": keep_last_span(row["labels"]) if row[LAST_TURN_ONLY] else row["labels"]},
            remove_columns=[LAST_TURN_ONLY],
            desc="Loss on the last assistant turn",
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise NotImplementedError("WeightedSFTTrainer computes the training loss only")
        weight = inputs.pop(WEIGHT)
        inputs["use_cache"] = False
        outputs = model(**inputs, fused_lm_head=True)
        per_token_loss = -outputs.log_probs * weight.to(outputs.log_probs.dtype)[:, None]
        num_tokens = outputs.label_mask.sum() if num_items_in_batch is None else num_items_in_batch
        loss = per_token_loss.sum() / torch.as_tensor(num_tokens).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        self._log_token_metrics(outputs, inputs)
        return loss

    def _log_token_metrics(self, outputs: Any, inputs: dict[str, Any]) -> None:
        """The entropy / accuracy / token-count metrics `SFTTrainer` logs, computed the same way."""
        mode = "train" if self.model.training else "eval"
        gather = self.accelerator.gather_for_metrics
        valid = gather(outputs.label_mask.sum()).sum()
        entropy = gather(outputs.entropy.detach().sum()).sum()
        correct = gather(outputs.is_top1.sum()).sum()
        self._metrics[mode]["entropy"].append((entropy / valid).item() if valid > 0 else 0.0)
        self._metrics[mode]["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
        if mode == "train":
            self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item() // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
