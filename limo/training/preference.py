"""Preference training (``train.trainer: dpo``): DPO and DiscoPOP with TRL's `DPOTrainer`.

Reads ``${output_dir}/curate/pairs.jsonl`` (or ``train.data``): rows ``{"prompt", "chosen", "rejected",
"id", "provenance"?}`` with plain strings. They become TRL's conversational form (prompt = the recipe's
system turn + the user turn; chosen / rejected = one assistant turn each), so the chat template and its
EOS wrap every response exactly as in SFT and evaluation.

The loss is TRL's own: ``train.args.loss_type`` (``sigmoid`` for DPO, ``discopop`` for DiscoPOP, whose
per-pair loss with ``z = beta * (chosen log-ratio - rejected log-ratio)`` is
``(1 - sigmoid(z / tau)) * -log sigmoid(z) + sigmoid(z / tau) * exp(-z)``). The DiscoPOP paper reports
divergence at ``beta <= 0.01`` and ``beta >= 2.5``; such a beta gets one warning. A loss found by the
discovery loop (``train.discovered_loss``: a name in a discovery archive) replaces TRL's through the same
trainer-class hook as any custom loss (`limo.training.program_loss`). The rest follows SFT's
run layout: the same batch split, DeepSpeed set-up (gloo on CPU), checkpoints, final model and card.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.records import DataError, RowError, load_records, write_json
from limo.models.tiny import ensure_model
from limo.training import build
from limo.training.data import token_lengths
from limo.training.distributed import process_info
from limo.training.options import TrainRun
from limo.training.program_loss import discovered_trainer_class

log = logging.getLogger(__name__)

FIELDS = ("prompt", "chosen", "rejected")
STABLE_BETA = (0.01, 2.5)  # DiscoPOP paper: training diverged at beta <= 0.01 and beta >= 2.5


@dataclass(frozen=True)
class PairRow:
    """One validated row of pairs.jsonl."""

    id: str
    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class PairData:
    path: str
    checksum: str | None
    pairs: tuple[PairRow, ...]


def _pair_from_row(row: dict[str, Any]) -> PairRow:
    for name in FIELDS:
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            raise RowError("must be a non-empty string", field=name)
    if row["chosen"] == row["rejected"]:
        raise RowError("chosen and rejected are identical", field="rejected")
    return PairRow(str(row["id"]), row["prompt"], row["chosen"], row["rejected"])


def load_pairs(path: str | Path) -> PairData:
    """Read and validate pairs.jsonl.

    Raises:
        DataError: Missing or empty file, or any invalid row (row and field named); nothing is dropped.
    """
    result = load_records(path, _pair_from_row, required=("id", *FIELDS), fmt="jsonl")
    if result.rejects:
        shown = "; ".join(f"row {r.row} field {r.field or '-'}: {r.reason}" for r in result.rejects[:5])
        raise DataError(f"{path}: {len(result.rejects)} of {result.read} rows are invalid: {shown}")
    if not result.kept:
        raise DataError(f"{path}: no preference pairs to train on")
    return PairData(str(path), result.checksum, tuple(result.kept))


def conversational_rows(pairs: Sequence[PairRow], system_prompt: str | None) -> list[dict[str, Any]]:
    """TRL's conversational preference rows, with the recipe's system turn in the prompt."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [
        {
            "id": p.id,
            "prompt": [*system, {"role": "user", "content": p.prompt}],
            "chosen": [{"role": "assistant", "content": p.chosen}],
            "rejected": [{"role": "assistant", "content": p.rejected}],
        }
        for p in pairs
    ]


def check_beta(args: Mapping[str, Any]) -> None:
    """Warn once when a DiscoPOP recipe sets a beta outside the range the paper found stable."""
    loss_types = args.get("loss_type", "sigmoid")
    loss_types = [loss_types] if isinstance(loss_types, str) else list(loss_types)
    beta = float(args.get("beta", 0.1))
    low, high = STABLE_BETA
    if "discopop" in loss_types and (beta <= low or beta >= high):
        log.warning(
            "train.args.beta=%s with loss_type=discopop: the DiscoPOP paper reports divergence at beta <= %s and "
            "beta >= %s (it uses 0.05)",
            beta,
            low,
            high,
        )


def build_dpo_config(args: Mapping[str, Any]):
    """`trl.DPOConfig` from plain arguments (registers the DeepSpeed config before the model is built)."""
    from trl import DPOConfig

    check_beta(args)
    return DPOConfig(**args)


def build_dpo_trainer(
    *,
    model_path: str,
    tokenizer: Any,
    dpo_config: Any,
    dataset: Any,
    peft_config: Any,
    callbacks: Sequence[Any] = (),
    trainer_class: type | None = None,
    eval_dataset: Any = None,
) -> Any:
    """TRL's `DPOTrainer` (or ``trainer_class``, a subclass with its own loss); policy and reference are loaded
    from ``model_path`` (none kept when ref log-probs are precomputed or a LoRA adapter can be switched off).
    ``eval_dataset`` (a dataset or a dict of them) gets reference log-probs too when they are precomputed."""
    from trl import DPOTrainer

    return (trainer_class or DPOTrainer)(
        model=model_path,
        args=dpo_config,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )


def longest_side_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per pair, the chat conversation with its longer response: what ``max_length`` may cut."""
    return [
        {"messages": [*row["prompt"], *max((row["chosen"], row["rejected"]), key=lambda m: len(m[0]["content"]))]}
        for row in rows
    ]


def build_pairs_dataset(rows: Sequence[Mapping[str, Any]], train_dir: str, *, shared: bool):
    """The pairs as a `datasets.Dataset`; ``shared`` puts it on disk under ``train/pairs_dataset``.

    TRL caches precomputed reference log-probs next to the dataset's own files and every rank reads rank 0's
    cache; an in-memory dataset lives in a per-process temporary folder, so with several processes the other
    ranks would look for the cache in their own folder. Rank 0 saves, the others load after it.
    """
    from accelerate import PartialState
    from datasets import Dataset, load_from_disk

    dataset = Dataset.from_list([dict(r) for r in rows])
    if not shared:
        return dataset
    folder = Path(train_dir) / "pairs_dataset"
    state = PartialState()
    with state.main_process_first():
        if state.is_main_process:
            dataset.save_to_disk(str(folder))
    return load_from_disk(str(folder))


def train_preference(run: TrainRun, entry: Any) -> Any:
    """Run DPO / DiscoPOP on ``run.paths.data`` with ``entry``'s arguments (its `limo.training.trainers.Trainer`);
    returns the trainer (tests read ``state.log_history``).

    The sequence mirrors `limo.training.sft.run_sft`: plan and DPOConfig (DeepSpeed dict included) before the
    model. ``run.trainer_class`` replaces TRL's `DPOTrainer` (a subclass with a custom loss, say), as does the
    loss ``train.discovered_loss`` names.
    """
    options, paths, proc = run.options, run.paths, process_info()
    trainer_class = preference_trainer_class(run)  # a bad train.discovered_loss fails before any work
    data = load_pairs(paths.data)
    model_path = ensure_model(run.model)
    tokenizer = build.build_tokenizer(model_path, run.model)
    rows = conversational_rows(data.pairs, options.system_prompt)
    split, args = entry.build_args(run, proc.world_size)
    dpo_config = build_dpo_config(args)
    counts = token_lengths(tokenizer, longest_side_rows(rows))
    data_info = {"path": data.path, "sha256": data.checksum, "kind": "preference_pairs"}
    planned = build.plan_run(run, proc, split, dpo_config, [p.id for p in data.pairs], counts, data_info)
    shared_cache = bool(dpo_config.precompute_ref_log_probs) and proc.world_size > 1
    trainer = build_dpo_trainer(
        model_path=model_path,
        tokenizer=tokenizer,
        dpo_config=dpo_config,
        dataset=build_pairs_dataset(rows, paths.train_dir, shared=shared_cache),
        peft_config=build.build_peft_config(options.lora),
        callbacks=run.callbacks,
        trainer_class=trainer_class,
    )
    result = build.train_and_save(trainer, tokenizer, run, model_path, planned, dpo_config)
    if proc.is_main:
        _write_card(run, data, planned, result, dpo_config, getattr(trainer, "loss_description", None))
        write_json(paths.log_history, trainer.state.log_history)  # as every trainer does: steps, losses, tokens
    return trainer


def preference_trainer_class(run: TrainRun) -> type | None:
    """``run.trainer_class``, or the class ``train.discovered_loss`` names (a loss program from a discovery
    archive, `limo.training.program_loss`), or None for TRL's `DPOTrainer` with ``loss_type``.

    Raises:
        ValueError: Both a trainer class and ``train.discovered_loss`` are given.
    """
    if run.options.discovered_loss is None:
        return run.trainer_class
    if run.trainer_class is not None:
        raise ValueError("train.discovered_loss replaces the trainer class; it cannot be combined with another one")
    return discovered_trainer_class(run.options.discovered_loss, run.paths.output_dir)


def _write_card(
    run: TrainRun, data: PairData, planned: Any, result: Any, dpo_config: Any, loss_description: str | None
) -> None:
    metrics = {
        **result.metrics,
        "global_step": result.global_step,
        "loss_type": loss_description or str(dpo_config.loss_type),
        "beta": dpo_config.beta,
        "discopop_tau": dpo_config.discopop_tau,
    }
    build.write_model_card(run, planned, data.path, data.checksum, metrics)
    log.info("[train] done: %s steps, loss %.4f -> %s", result.global_step, result.training_loss, run.paths.model_dir)
