"""Supervised fine-tuning (``train.trainer: sft`` / ``weighted_sft``) with TRL, from plain inputs (`TrainRun`).

Reads the messages file, adds the recipe's system prompt, derives per-device batch and accumulation from
the global batch and the world size, builds the `SFTConfig` (DeepSpeed dict included) before the model,
reports token lengths (stopping on truncation), trains with loss on assistant turns only, and writes
``train/{plan.json,config.yaml,log_history.json,model/}``. Every rank computes the same plan from the same
inputs; only rank 0 writes files.
"""

from __future__ import annotations

from typing import Any

from eval.records import write_json
from limo.models.tiny import ensure_model
from limo.training import build
from limo.training.data import chat_rows, load_train_data, token_lengths
from limo.training.distributed import cuda_available, process_info
from limo.training.kernels import cpu_lm_head
from limo.training.options import TrainRun
from limo.training.speed import cpu_estimate
from limo.training.template import loss_layout, system_prompt_note
from limo.training.weighted import WEIGHTING_NOTE, weighted_rows


def run_sft(run: TrainRun, entry: Any) -> Any:
    """Train on ``run.paths.data`` as ``entry`` says (its `limo.training.trainers.Trainer`: per-example weights or
    not, its argument builder); returns the trainer (tests read its ``state.log_history``)."""
    options, paths, proc = run.options, run.paths, process_info()
    weighted = entry.weighted
    data = load_train_data(paths.data)
    build.check_weight_support(entry, [e.weight for e in data.examples], data.path)
    build.check_loss_turns_support(entry, [e.loss_turns for e in data.examples], data.path)
    model_path = ensure_model(run.model)
    tokenizer = build.build_tokenizer(model_path, run.model)
    rows = chat_rows(data.examples, options.system_prompt)
    if weighted:  # weight and last-turn-only columns (limo.training.weighted)
        rows = weighted_rows(rows, [e.weight for e in data.examples], [e.loss_turns for e in data.examples])
    split, args = entry.build_args(run, proc.world_size)
    layout = loss_layout(tokenizer, rows, bool(args.get("assistant_only_loss")))
    sft_config = build.build_sft_config({**args, **layout.args})
    rows = layout.rows
    counts = token_lengths(tokenizer, rows)
    if proc.is_main:
        print(f"[train] template: {layout.note}; {system_prompt_note(tokenizer, options.system_prompt)}", flush=True)
    data_info = {"path": data.path, "sha256": data.checksum}
    planned = build.plan_run(run, proc, split, sft_config, [e.id for e in data.examples], counts, data_info)
    on_gpu = cuda_available()
    note = build.padding_free_note(bool(sft_config.padding_free), sft_config.model_init_kwargs, on_gpu)
    if proc.is_main and note:
        print(f"[train] {note}", flush=True)
    if proc.is_main and not on_gpu:
        estimate = cpu_estimate(model_path, planned.plan.total_tokens, options.lora is not None)
        print(f"[train] {estimate}" if estimate else "[train] estimate: no local safetensors to count", flush=True)
    trainer = build.build_trainer(
        run.trainer_class or build.sft_trainer_class(weighted),
        model_path=model_path,
        tokenizer=tokenizer,
        sft_config=sft_config,
        dataset=build.build_dataset(rows),
        peft_config=build.build_peft_config(options.lora),
        callbacks=run.callbacks,
    )
    with cpu_lm_head(enabled=not on_gpu and not sft_config.torch_compile):  # labelled positions, cache-sized tiles
        result = build.train_and_save(trainer, tokenizer, run, model_path, planned, sft_config)
    if proc.is_main:
        metrics = {**result.metrics, "global_step": result.global_step}
        weighting = WEIGHTING_NOTE if weighted else None
        assistant_only = sft_config.assistant_only_loss or sft_config.completion_only_loss
        build.write_model_card(
            run, planned, data.path, data.checksum, metrics, assistant_only_loss=assistant_only, weighting=weighting
        )
        write_json(paths.log_history, trainer.state.log_history)
        print(f"[train] done: {result.global_step} steps, loss {result.training_loss:.4f} -> {paths.model_dir}")
    return trainer
