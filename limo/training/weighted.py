"""SFT with a per-example loss weight (the ``weight`` of messages rows; RISE weights turns by reward).

TRL has no hook for per-example weights, so this is the one trainer subclass (STYLE.md: subclass only where
TRL has none). The loss is TRL's own — summed token log-probabilities from its fused LM head divided by the
number of label tokens in the whole global batch (``num_items_in_batch``), times the world size as
`SFTTrainer.compute_loss` does — with each example's tokens scaled by its weight. With every weight 1.0 it
equals `SFTTrainer`'s loss exactly (a test checks this step by step). The weight travels as a dataset
column, kept through TRL's preparation and added to the batch by a wrapping collator. Padding-free batches
(several examples in one row) are refused: their weights would need expanding per token.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer

WEIGHT_COLUMN = "weight"


class _WithWeights:
    """Collator wrapper: pops each example's weight before TRL's collator runs and adds it as a tensor."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        weights = [float(example.pop(WEIGHT_COLUMN)) for example in examples]
        batch = self.inner(examples)
        batch[WEIGHT_COLUMN] = torch.tensor(weights, dtype=torch.float32)
        return batch


class WeightedSFTTrainer(SFTTrainer):
    """`trl.SFTTrainer` whose loss scales every example's tokens by the example's ``weight`` column."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.padding_free:
            raise ValueError("per-example loss weights do not support padding_free / packing; set them to false")
        self.data_collator = _WithWeights(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if WEIGHT_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, WEIGHT_COLUMN]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise NotImplementedError("WeightedSFTTrainer computes the training loss only")
        weight = inputs.pop(WEIGHT_COLUMN)
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
