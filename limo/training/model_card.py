"""The model card written next to the final model: recipe, data checksum, batch plan, training metrics.

A model without its recipe and data checksum cannot be reproduced, so the card states both, and the
exact command that trains it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from limo.training.batch_plan import BatchPlan
from limo.training.data import LengthReport


def render_model_card(
    *,
    recipe: str,
    base_model: str,
    data_path: str,
    data_checksum: str | None,
    plan: BatchPlan,
    lengths: LengthReport,
    metrics: Mapping[str, Any],
    system_prompt: str | None,
    lora: bool,
    assistant_only_loss: bool = True,
    weighting: str | None = None,
) -> str:
    """Markdown model card (front matter for the Hub, then the facts a reader needs to reproduce the run)."""
    metric_rows = "\n".join(f"| {key} | {_fmt(value)} |" for key, value in sorted(metrics.items()))
    return f"""---
base_model: {base_model}
library_name: transformers
tags: [limo, sft, trl, reasoning]
---

# {recipe} — fine-tuned with limo

- **Recipe**: `{recipe}` (`python -m limo.train recipe={recipe}`); the resolved config is `../config.yaml`.
- **Base model**: `{base_model}`{" (LoRA adapters merged)" if lora else ""}
- **Training data**: `{data_path}`, sha256 `{data_checksum or "unknown"}`, {lengths.count} examples
- **System prompt**: {f"`{system_prompt}`" if system_prompt else "none (the chat template's default)"}
- **Loss**: {_loss_line(assistant_only_loss)}{" " + weighting if weighting else ""}

## Batch plan

{plan.summary()}

## Token lengths

{lengths.summary()}

## Training metrics

| metric | value |
|---|---|
{metric_rows}
"""


def _loss_line(assistant_only: bool) -> str:
    if assistant_only:
        return "assistant turns only, end-of-turn token included (the model learns to stop)."
    return "every token, prompt included (`assistant_only_loss: false` in the recipe)."


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
